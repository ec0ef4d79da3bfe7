//! Retention purge: physically delete what was soft-deleted longer ago
//! than the retention, children before parents along the snapshot's edge
//! set (the one FK graph; `tombstone.purge_blockers` keeps a parent any
//! edge of `tombstone.edges` still references), in bounded batches, each its own short
//! transaction (`tombstone.purge_batch`). Nothing is remembered between
//! batches, so an interrupted run simply resumes the next time. One purge
//! at a time per database: a session advisory lock.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio_postgres::Client;

use super::{OpsError, TableCount};
use crate::config::RetentionConfig;
use crate::schema::{SchemaSnapshot, TableId};

/// The advisory lock key (`hashtext('tombstone.purge')` is not stable
/// across versions; a constant is).
pub const LOCK_KEY: i64 = 0x746f_6d62_7075_7267; // "tombpurg"

#[derive(Debug, Clone)]
pub struct Options {
    pub batch_size: u32,
    /// Count instead of deleting.
    pub dry_run: bool,
    /// Stop after this many (non-empty) batches; the rest waits for the
    /// next run.
    pub max_batches: Option<u64>,
    /// The audit's actor.
    pub actor: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Rows removed per table (dry run: rows older than the retention).
    pub tables: Vec<TableCount>,
    pub batches: u64,
    /// Operation records removed (restored or fully purged ones).
    pub operations: i64,
    /// True when `max_batches` stopped the run early.
    pub stopped_early: bool,
}

/// Why no purge ran.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("another tombstone purge is running on this database")]
    Busy,
    #[error(transparent)]
    Ops(#[from] OpsError),
}

impl From<tokio_postgres::Error> for PurgeError {
    fn from(e: tokio_postgres::Error) -> PurgeError {
        PurgeError::Ops(e.into())
    }
}

/// Protected tables, children before parents (cycles: in catalog order).
pub fn purge_order(snapshot: &SchemaSnapshot) -> Vec<TableId> {
    let protected: BTreeSet<TableId> = (0..snapshot.tables().len())
        .filter(|&id| snapshot.table(id).is_protected())
        .collect();
    let mut done: BTreeSet<TableId> = BTreeSet::new();
    let mut order = Vec::new();
    while done.len() < protected.len() {
        let before = order.len();
        for &id in &protected {
            if done.contains(&id) {
                continue;
            }
            // Ready when every protected child (other than itself) is done.
            let ready = snapshot
                .children_of(id)
                .filter(|fk| fk.child != id && protected.contains(&fk.child))
                .all(|fk| done.contains(&fk.child));
            if ready {
                order.push(id);
            }
        }
        for id in &order[before..] {
            done.insert(*id);
        }
        if order.len() == before {
            // A cycle: take the rest as they come.
            for &id in &protected {
                if done.insert(id) {
                    order.push(id);
                }
            }
        }
    }
    order
}

fn quoted(schema: &str, table: &str) -> String {
    format!(
        "\"{}\".\"{}\"",
        schema.replace('"', "\"\""),
        table.replace('"', "\"\"")
    )
}

/// Runs one purge over `snapshot`'s protected tables.
pub async fn purge(
    client: &Client,
    snapshot: &SchemaSnapshot,
    retention: &RetentionConfig,
    options: &Options,
) -> Result<Report, PurgeError> {
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
        .await?
        .get(0);
    if !locked {
        return Err(PurgeError::Busy);
    }
    let result = run(client, snapshot, retention, options).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    let report = result?;
    unlocked?;
    Ok(report)
}

async fn run(
    client: &Client,
    snapshot: &SchemaSnapshot,
    retention: &RetentionConfig,
    options: &Options,
) -> Result<Report, PurgeError> {
    let mut report = Report::default();
    let batch = i32::try_from(options.batch_size.max(1)).unwrap_or(i32::MAX);
    for id in purge_order(snapshot) {
        let table = snapshot.table(id);
        let name = quoted(&table.schema, &table.name);
        let keep = secs(retention.keep_for(&table.schema, &table.name));
        let mut rows = 0i64;
        if options.dry_run {
            rows = client
                .query_one(
                    "SELECT tombstone.purge_candidates($1::text::regclass, make_interval(secs => $2))",
                    &[&name, &keep],
                )
                .await?
                .get(0);
        } else {
            loop {
                if options.max_batches.is_some_and(|m| report.batches >= m) {
                    report.stopped_early = true;
                    break;
                }
                let n: i64 = client
                    .query_one(
                        "SELECT tombstone.purge_batch($1::text::regclass, make_interval(secs => $2), $3, $4)",
                        &[&name, &keep, &batch, &options.actor],
                    )
                    .await?
                    .get(0);
                if n == 0 {
                    break;
                }
                report.batches += 1;
                rows += n;
            }
        }
        if rows > 0 {
            report.tables.push(TableCount {
                table: format!("{}.{}", table.schema, table.name),
                action: "purge".to_string(),
                rows,
            });
        }
        if report.stopped_early {
            return Ok(report);
        }
    }
    if !options.dry_run {
        report.operations = client
            .query_one(
                "SELECT tombstone.purge_operations(make_interval(secs => $1))",
                &[&secs(retention.shortest())],
            )
            .await?
            .get(0);
    }
    Ok(report)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
