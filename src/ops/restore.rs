//! Restore one operation: `tombstone.restore(op)` or, by table and key,
//! `tombstone.restore_row(table, key)`, in one transaction of the caller's
//! connection.

use tokio_postgres::Client;

use super::{OpsError, TableCount, parse_json, str_field};

/// What to restore.
#[derive(Debug, Clone)]
pub enum Target {
    /// An operation id (a uuid, as text).
    Operation(String),
    /// The operation whose target was this row: `schema.table` (or a bare
    /// name one protected table has) and its key as JSON, `{"id": 42}`.
    Row { table: String, key: String },
}

/// How it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The rows are back.
    Restored,
    /// It had been restored before (by `by`, at `at`); nothing changed.
    AlreadyRestored { at: String, by: String },
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub operation: String,
    /// The table the operation deleted from (its target).
    pub table: String,
    pub status: Status,
    /// Rows whose soft delete was undone.
    pub rows: i64,
    /// Per table: soft-deleted rows brought back, SET NULL rows put back.
    pub tables: Vec<TableCount>,
}

/// Restores `target`; `actor` is who is doing it (the audit's actor),
/// default `tombstone.current_actor()` (the login role).
pub async fn restore(
    client: &Client,
    target: &Target,
    actor: Option<&str>,
) -> Result<Outcome, OpsError> {
    let row = match target {
        Target::Operation(id) => {
            client
                .query_one(
                    "SELECT tombstone.restore($1::text::uuid, $2)::text",
                    &[id, &actor],
                )
                .await?
        }
        Target::Row { table, key } => {
            client
                .query_one(
                    "SELECT tombstone.restore_row($1, $2::text::jsonb, $3)::text",
                    &[table, key, &actor],
                )
                .await?
        }
    };
    let text: String = row.get(0);
    outcome(&parse_json(&text)?)
}

fn outcome(v: &serde_json::Value) -> Result<Outcome, OpsError> {
    let status = match v.get("status").and_then(|s| s.as_str()) {
        Some("restored") => Status::Restored,
        Some("already_restored") => Status::AlreadyRestored {
            at: str_field(v, "restored_at"),
            by: str_field(v, "restored_by"),
        },
        other => return Err(OpsError::Reply(format!("restore status {other:?}"))),
    };
    let tables = v
        .get("tables")
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .map(|t| TableCount {
                    table: str_field(t, "table"),
                    action: str_field(t, "action"),
                    rows: t.get("rows").and_then(|r| r.as_i64()).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Outcome {
        operation: str_field(v, "operation"),
        table: str_field(v, "table"),
        status,
        rows: v.get("rows").and_then(|r| r.as_i64()).unwrap_or(0),
        tables,
    })
}
