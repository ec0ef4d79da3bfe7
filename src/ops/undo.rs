//! `tombstone.undo(xact, force, dry_run, actor)`: revert one transaction's
//! inserts, updates and soft deletes from the audit trail (SPEC A5; the SQL
//! is `migrate::undo`), in one transaction of the caller's connection.

use tokio_postgres::Client;

use super::OpsError;

/// Per table, how many rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRows {
    pub table: String,
    pub rows: i64,
}

/// What undo did, or (dry run) would do.
#[derive(Debug, Clone)]
pub struct UndoOutcome {
    pub transaction: String,
    /// `undone` or `preview`.
    pub status: String,
    /// Rows set back to their values before the transaction.
    pub updates: Vec<TableRows>,
    /// Rows the transaction inserted, sent to the trash.
    pub inserts: Vec<TableRows>,
    /// The transaction soft-deleted rows (restored as its action).
    pub soft_deletes: bool,
    /// Conflicts, as the database words them (at most 20), and how many.
    pub conflicts: Vec<String>,
    pub conflict_count: i64,
}

pub async fn undo(
    client: &Client,
    xact: &str,
    force: bool,
    dry_run: bool,
    actor: Option<&str>,
) -> Result<UndoOutcome, OpsError> {
    let row = client
        .query_one(
            "SELECT tombstone.undo($1::text::xid8, $2, $3, $4)::text",
            &[&xact, &force, &dry_run, &actor],
        )
        .await?;
    let text: String = row.get(0);
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| OpsError::Reply(format!("undo: {e}")))?;
    let str_of = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let rows = |k: &str| -> Vec<TableRows> {
        v.get(k)
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .map(|t| TableRows {
                        table: str_of(t, "table"),
                        rows: t.get("rows").and_then(|r| r.as_i64()).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let conflicts = v
        .get("conflicts")
        .and_then(|x| x.as_array())
        .map(|a| a.iter().map(describe_conflict).collect())
        .unwrap_or_default();
    Ok(UndoOutcome {
        transaction: str_of(&v, "transaction"),
        status: str_of(&v, "status"),
        updates: rows("updates"),
        inserts: rows("inserts"),
        soft_deletes: match v.get("soft_deletes") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::Null) | None => false,
            Some(_) => true,
        },
        conflicts,
        conflict_count: v
            .get("conflict_count")
            .and_then(|n| n.as_i64())
            .unwrap_or(0),
    })
}

fn describe_conflict(c: &serde_json::Value) -> String {
    let s = |k: &str| {
        c.get(k).map(|x| match x {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    match c.get("conflict").and_then(|x| x.as_str()) {
        Some("changed_later") => format!(
            "{} {} changed again by transaction {} ({}, {}, by {})",
            s("table").unwrap_or_default(),
            s("key").unwrap_or_default(),
            s("by_transaction").unwrap_or_default(),
            s("action").unwrap_or_default(),
            s("at").unwrap_or_default(),
            s("actor").unwrap_or_default()
        ),
        _ => format!(
            "{}: {} rows it inserted are referenced by live rows of {}",
            s("table").unwrap_or_default(),
            s("rows").unwrap_or_default(),
            s("by_table").unwrap_or_default()
        ),
    }
}
