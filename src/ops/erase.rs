//! Right to erasure: `tombstone.erase(table, key)` hard-deletes one record
//! and what its foreign keys cascade to, and redacts their audit rows.

use tokio_postgres::Client;

use super::{OpsError, parse_json, str_field};

#[derive(Debug, Clone)]
pub struct Outcome {
    /// `schema.table` of the record.
    pub table: String,
    /// Rows removed per protected table (cascade included).
    pub rows: Vec<(String, i64)>,
}

/// Erases the row of `table` with `key` (JSON, `{"id": 42}`).
pub async fn erase(
    client: &Client,
    table: &str,
    key: &str,
    actor: Option<&str>,
) -> Result<Outcome, OpsError> {
    let row = client
        .query_one(
            "SELECT tombstone.erase($1, $2::text::jsonb, $3)::text",
            &[&table, &key, &actor],
        )
        .await?;
    let v = parse_json(row.get::<_, &str>(0))?;
    let mut rows: Vec<(String, i64)> = v
        .get("rows")
        .and_then(|r| r.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, n)| (k.clone(), n.as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    rows.sort();
    Ok(Outcome {
        table: str_field(&v, "table"),
        rows,
    })
}
