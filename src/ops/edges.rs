//! `rules.toml`'s edge rules into `tombstone.edge_rules`, where the view
//! `tombstone.edges` (the graph restore, purge and erase follow) reads
//! them. `serve` writes its own at startup and checks them on every
//! schema reload, so a `migrate` with another configuration (or a second
//! proxy with other rules) is undone within one reload and logged.

use tokio_postgres::Client;

use crate::schema::edges::{EdgeRules, RULE_COLUMNS, RuleRow};

/// The rows `tombstone.edge_rules` holds now, as [`EdgeRules::rows`] sorts them.
pub async fn installed_rules(client: &Client) -> Result<Vec<RuleRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!("SELECT {RULE_COLUMNS} FROM tombstone.edge_rules ORDER BY kind, ord"),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| RuleRow {
            kind: r.get(0),
            ord: r.get(1),
            name: r.get(2),
            child_schema: r.get(3),
            child_table: r.get(4),
            child_columns: r.get(5),
            parent_schema: r.get(6),
            parent_table: r.get(7),
            parent_columns: r.get(8),
            on_delete: r.get(9),
        })
        .collect())
}

/// What the table held when [`sync_edge_rules`] replaced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// The rules that were there, in words.
    pub before: Vec<String>,
    /// The rules written, in words.
    pub after: Vec<String>,
}

/// Makes `tombstone.edge_rules` hold exactly `rules`, in one transaction;
/// `None` when it already did (nothing is written then).
pub async fn sync_edge_rules(
    client: &Client,
    rules: &EdgeRules,
) -> Result<Option<Replaced>, tokio_postgres::Error> {
    let wanted = rules.rows();
    let have = installed_rules(client).await?;
    if have == wanted {
        return Ok(None);
    }
    client.batch_execute("BEGIN").await?;
    let written = client
        .batch_execute(&format!(
            "LOCK TABLE tombstone.edge_rules IN EXCLUSIVE MODE;\n{}COMMIT",
            rules.write_sql()
        ))
        .await;
    if let Err(e) = written {
        // Leave the connection usable (the watcher keeps it).
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(e);
    }
    Ok(Some(Replaced {
        before: have.iter().map(RuleRow::describe).collect(),
        after: wanted.iter().map(RuleRow::describe).collect(),
    }))
}
