//! Previews of restores: `tombstone.restore_preview(op)`,
//! `tombstone.restore_row_preview(table, key)` and
//! `tombstone.restore_action_preview(xact)` say what the restore would
//! bring back, per table, and every conflict that would stop it (a unique
//! key another row holds, a parent still deleted), changing nothing.

use tokio_postgres::Client;

use super::{ActionOf, Target, action_of, earlier, table_counts};
use crate::ops::{OpsError, TableCount, parse_json, str_field};

/// What a restore would do, from its preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewStatus {
    /// It would restore: no conflict.
    Ready,
    /// It would fail: `conflicts` says why.
    Conflicts,
    /// It had been restored before (by `by`, at `at`); it would do nothing.
    AlreadyRestored { at: String, by: String },
}

/// Something that would make a restore fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// A restored row (`table`, `key`) would take key `index_key` of
    /// unique index `index`, which `holder` holds: a live row, or (with
    /// `holder_restored`) another row this restore brings back too.
    Unique {
        table: String,
        key: serde_json::Value,
        index: String,
        index_key: String,
        holder: serde_json::Value,
        holder_restored: bool,
    },
    /// A restored row's parent is still deleted, by operation `deleted_by`
    /// (`None`: by no recorded operation) of action `deleted_by_action`
    /// (of `deleted_by_action_operations` operations); `same_action`: the
    /// restore's own action (restore the action; in an action's preview,
    /// its operations wait for each other).
    ParentDeleted {
        /// The operation of the restore the row comes back with.
        operation: String,
        table: String,
        key: serde_json::Value,
        parent_table: String,
        parent_key: serde_json::Value,
        deleted_by: Option<String>,
        deleted_by_action: Option<String>,
        deleted_by_action_operations: i64,
        same_action: bool,
    },
}

/// A unique index the preview could not check (PostgreSQL's own 23505
/// still guards it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    pub table: String,
    pub index: String,
    pub reason: String,
}

/// One operation's part of a preview: what it would bring back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRows {
    pub operation: String,
    /// The table the operation deleted from (its target).
    pub table: String,
    /// Rows it would undelete.
    pub rows: i64,
    /// Per table: rows it would undelete, rows it would put foreign keys back on.
    pub tables: Vec<TableCount>,
}

/// The preview of one operation's restore.
#[derive(Debug, Clone)]
pub struct Preview {
    pub status: PreviewStatus,
    pub restores: OperationRows,
    pub conflicts: Vec<Conflict>,
    pub unchecked: Vec<Unchecked>,
    /// The action of the operation, as [`Outcome::action`].
    pub action: Option<ActionOf>,
}

/// The preview of an action's restore.
#[derive(Debug, Clone)]
pub struct ActionPreview {
    pub action: String,
    pub status: PreviewStatus,
    /// Its operations still deleted, in the order the restore would bring
    /// them back.
    pub operations: Vec<OperationRows>,
    /// Operations of the action restored before (id, table).
    pub earlier: Vec<(String, String)>,
    /// Rows it would undelete, all operations together.
    pub rows: i64,
    /// Per table: rows whose foreign key the application itself set to
    /// NULL in the action's transaction, that it would put back.
    pub app_set_null: Vec<TableCount>,
    pub conflicts: Vec<Conflict>,
    pub unchecked: Vec<Unchecked>,
}

/// What restoring `target` would do, changing nothing.
pub async fn preview(client: &Client, target: &Target) -> Result<Preview, OpsError> {
    let row = match target {
        Target::Operation(id) => {
            client
                .query_one(
                    "SELECT tombstone.restore_preview($1::text::uuid)::text",
                    &[id],
                )
                .await?
        }
        Target::Row { table, key } => {
            client
                .query_one(
                    "SELECT tombstone.restore_row_preview($1, $2::text::jsonb)::text",
                    &[table, key],
                )
                .await?
        }
    };
    let text: String = row.get(0);
    let v = parse_json(&text)?;
    Ok(Preview {
        status: preview_status(&v)?,
        restores: operation_rows(&v),
        conflicts: conflicts(&v)?,
        unchecked: unchecked(&v),
        action: action_of(&v),
    })
}

/// What restoring action `action` would do, changing nothing.
pub async fn preview_action(client: &Client, action: &str) -> Result<ActionPreview, OpsError> {
    let row = client
        .query_one(
            "SELECT tombstone.restore_action_preview($1::text::xid8)::text",
            &[&action],
        )
        .await?;
    let text: String = row.get(0);
    let v = parse_json(&text)?;
    let operations = v
        .get("operations")
        .and_then(|o| o.as_array())
        .map(|a| a.iter().map(operation_rows).collect())
        .unwrap_or_default();
    Ok(ActionPreview {
        action: str_field(&v, "action"),
        status: preview_status(&v)?,
        operations,
        earlier: earlier(&v),
        rows: v.get("rows").and_then(|r| r.as_i64()).unwrap_or(0),
        app_set_null: table_counts(v.get("foreign_keys_put_back")),
        conflicts: conflicts(&v)?,
        unchecked: unchecked(&v),
    })
}

fn operation_rows(v: &serde_json::Value) -> OperationRows {
    OperationRows {
        operation: str_field(v, "operation"),
        table: str_field(v, "table"),
        rows: v.get("rows").and_then(|r| r.as_i64()).unwrap_or(0),
        tables: table_counts(v.get("tables")),
    }
}

fn preview_status(v: &serde_json::Value) -> Result<PreviewStatus, OpsError> {
    match v.get("status").and_then(|s| s.as_str()) {
        Some("ready") => Ok(PreviewStatus::Ready),
        Some("conflicts") => Ok(PreviewStatus::Conflicts),
        Some("already_restored") => Ok(PreviewStatus::AlreadyRestored {
            at: str_field(v, "restored_at"),
            by: str_field(v, "restored_by"),
        }),
        other => Err(OpsError::Reply(format!("preview status {other:?}"))),
    }
}

/// A string field that may be JSON null.
fn opt_str(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| x.as_str()).map(str::to_string)
}

fn conflicts(v: &serde_json::Value) -> Result<Vec<Conflict>, OpsError> {
    let Some(list) = v.get("conflicts").and_then(|c| c.as_array()) else {
        return Ok(Vec::new());
    };
    let json = |c: &serde_json::Value, key: &str| c.get(key).cloned().unwrap_or_default();
    list.iter()
        .map(|c| match c.get("kind").and_then(|k| k.as_str()) {
            Some(kind @ ("unique_live" | "unique_restored")) => Ok(Conflict::Unique {
                table: str_field(c, "table"),
                key: json(c, "key"),
                index: str_field(c, "index"),
                index_key: str_field(c, "index_key"),
                holder: json(c, "holder"),
                holder_restored: kind == "unique_restored",
            }),
            Some("parent_deleted") => Ok(Conflict::ParentDeleted {
                operation: str_field(c, "operation"),
                table: str_field(c, "table"),
                key: json(c, "key"),
                parent_table: str_field(c, "parent_table"),
                parent_key: json(c, "parent_key"),
                deleted_by: opt_str(c, "deleted_by"),
                deleted_by_action: opt_str(c, "deleted_by_action"),
                deleted_by_action_operations: c
                    .get("deleted_by_action_operations")
                    .and_then(|n| n.as_i64())
                    .unwrap_or(0),
                same_action: c
                    .get("same_action")
                    .and_then(|b| b.as_bool())
                    .unwrap_or(false),
            }),
            other => Err(OpsError::Reply(format!("conflict kind {other:?}"))),
        })
        .collect()
}

fn unchecked(v: &serde_json::Value) -> Vec<Unchecked> {
    v.get("unchecked")
        .and_then(|u| u.as_array())
        .map(|a| {
            a.iter()
                .map(|u| Unchecked {
                    table: str_field(u, "table"),
                    index: str_field(u, "index"),
                    reason: str_field(u, "reason"),
                })
                .collect()
        })
        .unwrap_or_default()
}
