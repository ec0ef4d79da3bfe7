//! Restore one operation: `tombstone.restore(op)` or, by table and key,
//! `tombstone.restore_row(table, key)`; or a whole action (every operation
//! of one transaction): `tombstone.restore_action(xact)`. Each in one
//! transaction of the caller's connection. Their previews
//! (`tombstone.restore_preview`, `restore_row_preview`,
//! `restore_action_preview`) say what each would bring back and every
//! conflict that would stop it, changing nothing.

use tokio_postgres::Client;

use super::{OpsError, TableCount, parse_json, str_field};

mod preview;
pub use preview::{
    ActionPreview, Conflict, OperationRows, Preview, PreviewStatus, Unchecked, preview,
    preview_action,
};

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
    /// The action (transaction) the operation belongs to; `None` inside
    /// an [`ActionOutcome`], which names it once.
    pub action: Option<ActionOf>,
}

/// The action of a restored operation, as the restore left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOf {
    /// The transaction id, as text.
    pub id: String,
    /// How many operations the action has.
    pub operations: i64,
    /// How many of them are still deleted.
    pub pending: i64,
}

/// What restoring an action did.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    pub action: String,
    pub status: Status,
    /// The operations restored now, in the order they were restored.
    pub restored: Vec<Outcome>,
    /// Operations of the action restored before (id, table).
    pub earlier: Vec<(String, String)>,
    /// Rows whose soft delete was undone, all operations together.
    pub rows: i64,
    /// Per table: rows whose foreign key the application itself set to
    /// NULL in the action's transaction, put back.
    pub app_set_null: Vec<TableCount>,
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

/// Restores every operation of action `action` (a transaction id, as
/// text) not restored yet, parents first, in one transaction; `actor` as
/// for [`restore`].
pub async fn restore_action(
    client: &Client,
    action: &str,
    actor: Option<&str>,
) -> Result<ActionOutcome, OpsError> {
    let row = client
        .query_one(
            "SELECT tombstone.restore_action($1::text::xid8, $2)::text",
            &[&action, &actor],
        )
        .await?;
    let text: String = row.get(0);
    let v = parse_json(&text)?;
    let status = status(&v)?;
    let restored = v
        .get("operations")
        .and_then(|o| o.as_array())
        .map(|a| a.iter().map(outcome).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    let app_set_null = table_counts(v.get("foreign_keys_put_back"));
    let earlier = earlier(&v);
    Ok(ActionOutcome {
        action: str_field(&v, "action"),
        status,
        restored,
        earlier,
        rows: v.get("rows").and_then(|r| r.as_i64()).unwrap_or(0),
        app_set_null,
    })
}

/// `[{table, action, rows}, …]`.
fn table_counts(v: Option<&serde_json::Value>) -> Vec<TableCount> {
    v.and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .map(|t| TableCount {
                    table: str_field(t, "table"),
                    action: str_field(t, "action"),
                    rows: t.get("rows").and_then(|r| r.as_i64()).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn status(v: &serde_json::Value) -> Result<Status, OpsError> {
    match v.get("status").and_then(|s| s.as_str()) {
        Some("restored") => Ok(Status::Restored),
        Some("already_restored") => Ok(Status::AlreadyRestored {
            at: str_field(v, "restored_at"),
            by: str_field(v, "restored_by"),
        }),
        other => Err(OpsError::Reply(format!("restore status {other:?}"))),
    }
}

/// Operations of an action restored before (id, table).
fn earlier(v: &serde_json::Value) -> Vec<(String, String)> {
    v.get("already_restored")
        .and_then(|o| o.as_array())
        .map(|a| {
            a.iter()
                .map(|e| (str_field(e, "operation"), str_field(e, "table")))
                .collect()
        })
        .unwrap_or_default()
}

fn outcome(v: &serde_json::Value) -> Result<Outcome, OpsError> {
    let status = status(v)?;
    let tables = table_counts(v.get("tables"));
    Ok(Outcome {
        operation: str_field(v, "operation"),
        table: str_field(v, "table"),
        status,
        rows: v.get("rows").and_then(|r| r.as_i64()).unwrap_or(0),
        tables,
        action: action_of(v),
    })
}

/// The action a reply names for its operation.
fn action_of(v: &serde_json::Value) -> Option<ActionOf> {
    let n = |key: &str| v.get(key).and_then(|n| n.as_i64()).unwrap_or(0);
    v.get("action").and_then(|a| a.as_str()).map(|id| ActionOf {
        id: id.to_string(),
        operations: n("action_operations"),
        pending: n("action_pending"),
    })
}
