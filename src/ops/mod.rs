//! The operations side: trash, restore, purge, erase and doctor. Library
//! code that returns values; `src/cli/` prints them. Restore, trash, purge
//! and erase call the SQL functions `tombstone migrate` installs
//! (`src/migrate/ops.rs`, `src/migrate/guard.rs`), so the CLI and a bypass
//! session's `SELECT tombstone.restore(…)` share one implementation.

pub mod archive;
pub mod doctor;
pub mod edges;
pub mod erase;
pub mod invalidate;
pub mod purge;
pub mod restore;
pub mod roles;
pub mod schedule;
pub mod trash;
pub mod undo;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// PostgreSQL (or tombstone's SQL functions) refused: the message is
    /// for the operator (without the `tombstone: ` the SQL functions put
    /// before it), the SQLSTATE says what kind of refusal, the detail and
    /// hint what the server added.
    #[error("{message} (SQLSTATE {sqlstate}){}", crate::pg_error::details(detail.as_deref(), hint.as_deref()))]
    Refused {
        sqlstate: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    /// The connection failed.
    #[error("{}", crate::pg_error::describe(.0))]
    Database(tokio_postgres::Error),
    /// A reply tombstone could not read.
    #[error("unexpected reply from the database: {0}")]
    Reply(String),
}

impl OpsError {
    /// The SQLSTATE of a refusal.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            OpsError::Refused { sqlstate, .. } => Some(sqlstate),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for OpsError {
    fn from(e: tokio_postgres::Error) -> OpsError {
        match e.as_db_error() {
            Some(db) => OpsError::Refused {
                sqlstate: db.code().code().to_string(),
                message: db
                    .message()
                    .strip_prefix("tombstone: ")
                    .unwrap_or(db.message())
                    .to_string(),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
            },
            None => OpsError::Database(e),
        }
    }
}

/// Parses the jsonb (as text) a tombstone function returned.
fn parse_json(text: &str) -> Result<serde_json::Value, OpsError> {
    serde_json::from_str(text).map_err(|e| OpsError::Reply(format!("{e}: {text}")))
}

/// A string field of a JSON object, or "".
fn str_field(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_string()
}

/// Rows per table, as the SQL functions report them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// `schema.table`.
    pub table: String,
    /// `soft_delete` or `set_null` (restore), the reason (purge, erase).
    pub action: String,
    pub rows: i64,
}
