//! The trash: operations not restored and not yet purged, newest first,
//! from `tombstone.trash(since, table)`.

use std::time::Duration;

use tokio_postgres::Client;

use super::{OpsError, parse_json};

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
    /// timestamptz.
    pub fn parse(text: &str) -> Since {
        match humantime::parse_duration(text) {
            Ok(d) => Since::Ago(d),
            Err(_) => Since::At(text.to_string()),
        }
    }
}

/// One operation in the trash.
#[derive(Debug, Clone)]
pub struct Entry {
    pub operation: String,
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

pub async fn list(client: &Client, filter: &Filter) -> Result<Vec<Entry>, OpsError> {
    const COLUMNS: &str = "op_id::text, table_name, keys::text, target_rows,
        to_char(deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
        coalesce(actor, ''), login_role, coalesce(cascaded, '{}')::text";
    let rows = match &filter.since {
        None => {
            client
                .query(
                    &format!("SELECT {COLUMNS} FROM tombstone.trash(NULL, $1)"),
                    &[&filter.table],
                )
                .await?
        }
        Some(Since::Ago(d)) => {
            let secs = d.as_secs_f64();
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM tombstone.trash(now() - make_interval(secs => $1), $2)"
                    ),
                    &[&secs, &filter.table],
                )
                .await?
        }
        Some(Since::At(at)) => {
            client
                .query(
                    &format!("SELECT {COLUMNS} FROM tombstone.trash($1::text::timestamptz, $2)"),
                    &[at, &filter.table],
                )
                .await?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let keys = parse_json(row.get::<_, &str>(2))?;
        let cascaded = parse_json(row.get::<_, &str>(7))?;
        let mut per_table: Vec<(String, i64)> = cascaded
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        per_table.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.push(Entry {
            operation: row.get(0),
            table: row.get(1),
            keys: keys.as_array().cloned().unwrap_or_default(),
            target_rows: row.get(3),
            deleted_at: row.get(4),
            actor: row.get(5),
            login_role: row.get(6),
            cascaded: per_table,
        });
    }
    Ok(out)
}
