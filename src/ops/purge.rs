//! Retention purge: physically delete what was soft-deleted longer ago
//! than the retention, children before parents along the snapshot's edge
//! set (the one FK graph; `tombstone.purge_blockers` keeps a parent any
//! edge of `tombstone.edges` still references), in bounded batches, each its own short
//! transaction (`tombstone.purge_batch`). Nothing is remembered between
//! batches, so an interrupted run simply resumes the next time. One purge
//! at a time per database: a session advisory lock.
//!
//! With `retention.archive` every removed row is kept first, with its
//! operation: in `tombstone.archive` by the batch's own statement, or in
//! JSON Lines files written and fsynced inside the batch's transaction,
//! before its COMMIT ([`super::archive`]). With `audit.redact_on_purge`
//! (by default when the table's retention is shorter than the audit's) the
//! batch also clears the old/new values of the removed rows' audit rows.
//! The caller sees progress after every batch ([`Progress`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::archive::{ArchiveError, ArchiveFiles};
use super::{OpsError, TableCount};
use crate::config::{ArchiveTo, AuditConfig, RetentionConfig};
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

/// Where a run is, after each batch (and once per table at its end).
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// `schema.table`.
    pub table: &'a str,
    /// Rows of this table removed so far.
    pub table_rows: i64,
    /// Rows removed so far in the run.
    pub total_rows: i64,
    /// Since the run started.
    pub elapsed: Duration,
    /// The table is done.
    pub table_done: bool,
}

impl Progress<'_> {
    /// Rows per second over the run so far.
    pub fn rate(&self) -> f64 {
        rate(self.total_rows, self.elapsed)
    }
}

/// `rows` over `elapsed`, per second (0 before any time passed).
pub fn rate(rows: i64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { rows as f64 / secs } else { 0.0 }
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
    /// Rows written to the archive (table or files).
    pub archived: i64,
    /// The archive files written to.
    pub archive_files: Vec<String>,
    /// How long the run took.
    pub elapsed: Duration,
}

/// Why no purge ran.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("another tombstone purge is running on this database")]
    Busy,
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// An archive file could not be written: the batch was rolled back.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
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

/// Runs one purge over `snapshot`'s protected tables, calling `progress`
/// after every batch.
pub async fn purge(
    client: &Client,
    snapshot: &SchemaSnapshot,
    retention: &RetentionConfig,
    audit: &AuditConfig,
    options: &Options,
    progress: &mut (dyn FnMut(&Progress<'_>) + Send),
) -> Result<Report, PurgeError> {
    // Before anything is deleted: an archive directory that cannot be one
    // stops the run here.
    let files = match &retention.archive {
        Some(a) if a.to == ArchiveTo::Files && !options.dry_run => {
            let dir = a.directory.as_deref().unwrap_or(std::path::Path::new("."));
            Some(ArchiveFiles::open(dir, a.file_per.unwrap_or_default())?)
        }
        _ => None,
    };
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
        .await?
        .get(0);
    if !locked {
        return Err(PurgeError::Busy);
    }
    let result = run(
        client,
        snapshot,
        retention,
        audit,
        options,
        files.as_ref(),
        progress,
    )
    .await;
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
    audit: &AuditConfig,
    options: &Options,
    files: Option<&ArchiveFiles>,
    progress: &mut (dyn FnMut(&Progress<'_>) + Send),
) -> Result<Report, PurgeError> {
    let started = Instant::now();
    let mut report = Report::default();
    let batch = i32::try_from(options.batch_size.max(1)).unwrap_or(i32::MAX);
    let archive_to: Option<String> = retention.archive.as_ref().map(|a| match a.to {
        ArchiveTo::Table => "table".to_string(),
        ArchiveTo::Files => "files".to_string(),
    });
    let mut total = 0i64;
    for id in purge_order(snapshot) {
        let table = snapshot.table(id);
        let name = quoted(&table.schema, &table.name);
        let qualified = format!("{}.{}", table.schema, table.name);
        let keep_for = retention.keep_for(&table.schema, &table.name);
        let keep = secs(keep_for);
        let redact = audit.redacts_on_purge(keep_for);
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
                let n = match files {
                    None => {
                        client
                            .query_one(
                                "SELECT tombstone.purge_batch($1::text::regclass, make_interval(secs => $2), $3, $4, $5, $6)",
                                &[&name, &keep, &batch, &options.actor, &archive_to, &redact],
                            )
                            .await?
                            .get(0)
                    }
                    Some(files) => {
                        let (n, path) =
                            batch_to_files(client, files, &name, keep, batch, options, redact)
                                .await?;
                        if let Some(path) = path
                            && !report.archive_files.contains(&path)
                        {
                            report.archive_files.push(path);
                        }
                        n
                    }
                };
                if n == 0 {
                    break;
                }
                report.batches += 1;
                rows += n;
                total += n;
                if archive_to.is_some() {
                    report.archived += n;
                }
                progress(&Progress {
                    table: &qualified,
                    table_rows: rows,
                    total_rows: total,
                    elapsed: started.elapsed(),
                    table_done: false,
                });
            }
        }
        if rows > 0 {
            progress(&Progress {
                table: &qualified,
                table_rows: rows,
                total_rows: total,
                elapsed: started.elapsed(),
                table_done: true,
            });
            report.tables.push(TableCount {
                table: qualified,
                action: "purge".to_string(),
                rows,
            });
        }
        if report.stopped_early {
            report.elapsed = started.elapsed();
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
    report.elapsed = started.elapsed();
    Ok(report)
}

/// One batch archived to files: the delete, then the removed rows written
/// and fsynced, then COMMIT — any failure before it rolls the batch back.
/// Returns the rows removed and the file written.
async fn batch_to_files(
    client: &Client,
    files: &ArchiveFiles,
    name: &str,
    keep: f64,
    batch: i32,
    options: &Options,
    redact: bool,
) -> Result<(i64, Option<String>), PurgeError> {
    client.batch_execute("BEGIN").await?;
    let result = async {
        let n: i64 = client
            .query_one(
                "SELECT tombstone.purge_batch($1::text::regclass, make_interval(secs => $2), $3, $4, 'files', $5)",
                &[&name, &keep, &batch, &options.actor, &redact],
            )
            .await?
            .get(0);
        let lines: Vec<String> = client
            .query(
                "SELECT jsonb_build_object('operation', op_id, 'table', table_schema || '.' || table_name,
                                           'key', pk, 'deleted_at', deleted_at, 'row', row_values,
                                           'purged_at', now())::text
                   FROM tombstone.purge_archived()",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let path = if lines.is_empty() {
            None
        } else {
            Some(files.append(&lines)?.display().to_string())
        };
        Ok::<_, PurgeError>((n, path))
    }
    .await;
    match result {
        Ok(done) => {
            client.batch_execute("COMMIT").await?;
            Ok(done)
        }
        Err(e) => {
            // The connection may be gone; the rollback is best effort (a
            // lost connection rolls back by itself).
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
