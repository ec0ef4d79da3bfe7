//! The trash: operations not restored and not yet purged, grouped by
//! action (the transaction that made them), newest first, from
//! `tombstone.trash_actions(since, table)`.

use std::time::Duration;

use tokio_postgres::Client;

use super::{OpsError, parse_json, str_field};

/// Which operations to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only operations on this table (`schema.table` or a bare name).
    pub table: Option<String>,
    /// Only operations since this moment.
    pub since: Option<Since>,
}

/// `--since`: a duration back from now (`2h`, `7days`) or a timestamp.
#[derive(Debug, Clone)]
pub enum Since {
    Ago(Duration),
    At(String),
}

impl Since {
    /// `"2h"` → `Ago`, anything else is left for PostgreSQL to read as a
    /// timestamptz ([`Since::check`] asks it whether it can).
    pub fn parse(text: &str) -> Since {
        match humantime::parse_duration(text) {
            Ok(d) => Since::Ago(d),
            Err(_) => Since::At(text.to_string()),
        }
    }

    /// A timestamp PostgreSQL cannot read is refused here, with the forms
    /// that are accepted, before it reaches the trash query.
    pub async fn check(&self, client: &Client) -> Result<(), SinceError> {
        let Since::At(text) = self else {
            return Ok(());
        };
        match client
            .query_one("SELECT $1::text::timestamptz", &[text])
            .await
        {
            Ok(_) => Ok(()),
            // Class 22: data exception (invalid_datetime_format,
            // datetime_field_overflow, …).
            Err(e) if e.code().is_some_and(|c| c.code().starts_with("22")) => {
                Err(SinceError::NotATime {
                    value: text.clone(),
                    reason: e
                        .as_db_error()
                        .map(|d| d.message().to_string())
                        .unwrap_or_default(),
                })
            }
            Err(e) => Err(SinceError::Ops(e.into())),
        }
    }
}

/// Why a `since` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SinceError {
    /// Neither a duration nor a timestamp.
    #[error(
        "\"{value}\" is neither a duration nor a timestamp ({reason}): write a duration back from now, such as 2h, 30m or 7d, or a timestamp, such as '2026-01-31 12:00+00'"
    )]
    NotATime { value: String, reason: String },
    #[error(transparent)]
    Ops(#[from] OpsError),
}

/// An operation of the trash an id prefix matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub operation: String,
    pub table: String,
    /// When, UTC, ISO 8601.
    pub deleted_at: String,
    pub actor: String,
}

/// Why an operation id (or prefix) names no single operation.
#[derive(Debug, thiserror::Error)]
pub enum PrefixError {
    #[error(
        "\"{0}\" is not an operation id: write the id, or its first characters, as tombstone trash shows it (hexadecimal digits and -)"
    )]
    Malformed(String),
    #[error(
        "no operation in the trash has an id starting with {0} (tombstone trash lists them; one restored or purged is no longer there: name it by its whole id)"
    )]
    Unknown(String),
    #[error("{}", ambiguous(.prefix, .candidates, *.more))]
    Ambiguous {
        prefix: String,
        /// The first [`CANDIDATES_SHOWN`], newest first.
        candidates: Vec<Candidate>,
        /// Whether there are more than those.
        more: bool,
    },
    #[error(transparent)]
    Ops(#[from] OpsError),
}

/// How many candidates an ambiguous prefix lists.
pub const CANDIDATES_SHOWN: usize = 10;

fn ambiguous(prefix: &str, candidates: &[Candidate], more: bool) -> String {
    let mut text = format!(
        "operation id prefix {prefix} is ambiguous: {} operations in the trash start with it; give more of the id:",
        if more {
            format!("more than {CANDIDATES_SHOWN}")
        } else {
            candidates.len().to_string()
        }
    );
    for c in candidates {
        text.push_str(&format!(
            "\n  {}  {}  {}  {}",
            c.operation, c.deleted_at, c.table, c.actor
        ));
    }
    text
}

/// The operation `text` names: a whole id as it is (the SQL functions say
/// whether it exists), or a prefix of exactly one operation id in the trash
/// (`tombstone.trash()`, which every role that may restore may call: the
/// CLI needs no right on tombstone's tables).
pub async fn resolve_operation(client: &Client, text: &str) -> Result<String, PrefixError> {
    let digits = text.chars().filter(|c| *c != '-').count();
    let hex = !text.is_empty() && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !hex {
        return Err(PrefixError::Malformed(text.to_string()));
    }
    if digits == 32 {
        return Ok(text.to_string());
    }
    let prefix = text.to_ascii_lowercase();
    let rows = client
        .query(
            "SELECT op_id::text,
                    table_name,
                    to_char(deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    coalesce(actor, '')
               FROM tombstone.trash()
              WHERE starts_with(op_id::text, $1)
              ORDER BY deleted_at DESC, op_id
              LIMIT $2",
            &[&prefix, &(CANDIDATES_SHOWN as i64 + 1)],
        )
        .await
        .map_err(OpsError::from)?;
    let mut candidates: Vec<Candidate> = rows
        .iter()
        .map(|r| Candidate {
            operation: r.get(0),
            table: r.get(1),
            deleted_at: r.get(2),
            actor: r.get(3),
        })
        .collect();
    match candidates.len() {
        0 => Err(PrefixError::Unknown(prefix)),
        1 => Ok(candidates.remove(0).operation),
        n => {
            candidates.truncate(CANDIDATES_SHOWN);
            Err(PrefixError::Ambiguous {
                prefix,
                candidates,
                more: n > CANDIDATES_SHOWN,
            })
        }
    }
}

/// One operation in the trash.
#[derive(Debug, Clone)]
pub struct Entry {
    pub operation: String,
    /// The action (transaction id) the operation belongs to.
    pub action: String,
    /// `schema.table` the statement deleted from.
    pub table: String,
    /// Keys of the target rows (at most 10), as JSON.
    pub keys: Vec<serde_json::Value>,
    /// How many target rows.
    pub target_rows: i64,
    /// When, UTC, ISO 8601.
    pub deleted_at: String,
    pub actor: String,
    pub login_role: String,
    /// Rows per table (`schema.table`, or `schema.table (set_null)`).
    pub cascaded: Vec<(String, i64)>,
}

/// One action in the trash: the operations one transaction made that are
/// still deleted, in statement order.
#[derive(Debug, Clone)]
pub struct Action {
    /// The transaction id, as text: what `tombstone restore --action` takes.
    pub id: String,
    /// When, UTC, ISO 8601.
    pub deleted_at: String,
    /// The operations' actors, distinct, comma-separated.
    pub actor: String,
    pub login_role: String,
    pub operations: Vec<Entry>,
}

/// The trash by action, newest first (`tombstone.trash_actions`). With a
/// table filter, the actions that have an operation on that table, with
/// all their operations.
pub async fn list(client: &Client, filter: &Filter) -> Result<Vec<Action>, OpsError> {
    const COLUMNS: &str = "action,
        to_char(deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
        coalesce(actor, ''), login_role, operations::text";
    let rows = match &filter.since {
        None => {
            client
                .query(
                    &format!("SELECT {COLUMNS} FROM tombstone.trash_actions(NULL, $1)"),
                    &[&filter.table],
                )
                .await?
        }
        Some(Since::Ago(d)) => {
            let secs = d.as_secs_f64();
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM tombstone.trash_actions(now() - make_interval(secs => $1), $2)"
                    ),
                    &[&secs, &filter.table],
                )
                .await?
        }
        Some(Since::At(at)) => {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM tombstone.trash_actions($1::text::timestamptz, $2)"
                    ),
                    &[at, &filter.table],
                )
                .await?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.get(0);
        let deleted_at: String = row.get(1);
        let login_role: String = row.get(3);
        let operations = parse_json(row.get::<_, &str>(4))?;
        let operations = operations
            .as_array()
            .ok_or_else(|| OpsError::Reply(format!("trash operations of action {id}")))?
            .iter()
            .map(|op| entry(op, &id, &deleted_at, &login_role))
            .collect();
        out.push(Action {
            id: id.clone(),
            deleted_at,
            actor: row.get(2),
            login_role,
            operations,
        });
    }
    Ok(out)
}

/// One element of `trash_actions`' `operations`.
fn entry(op: &serde_json::Value, action: &str, deleted_at: &str, login_role: &str) -> Entry {
    let mut cascaded: Vec<(String, i64)> = op
        .get("rows")
        .and_then(|r| r.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    cascaded.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Entry {
        operation: str_field(op, "operation"),
        action: action.to_string(),
        table: str_field(op, "table"),
        keys: op
            .get("keys")
            .and_then(|k| k.as_array())
            .cloned()
            .unwrap_or_default(),
        target_rows: op.get("target_rows").and_then(|n| n.as_i64()).unwrap_or(0),
        deleted_at: deleted_at.to_string(),
        actor: str_field(op, "actor"),
        login_role: login_role.to_string(),
        cascaded,
    }
}
