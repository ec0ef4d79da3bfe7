//! The purge schedule `serve` runs: every `retention.purge_interval`,
//! one purge over the schema as it is then. Several proxies on one
//! database take turns by the advisory lock; the one that finds it taken
//! skips its turn. A long purge logs its progress every ten seconds.

use std::sync::Arc;

use super::purge::{Options, Progress, PurgeError, purge};
use crate::config::Config;
use crate::metrics::Metrics;

/// Runs forever (spawn it); the first purge waits one interval. Purges
/// that run and the rows they remove are counted in `metrics`.
pub async fn run(url: String, config: Arc<Config>, metrics: Arc<Metrics>) {
    let Some(every) = config.retention.purge_interval else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let outcome = once(&url, &config).await;
        if let Ok(Some(rows)) = outcome {
            metrics.purges.inc();
            metrics.purged_rows.add(u64::try_from(rows).unwrap_or(0));
        }
        match outcome {
            Ok(Some(rows)) if rows > 0 => tracing::info!(rows, "scheduled purge removed rows"),
            Ok(_) => tracing::debug!("scheduled purge: nothing to do or another proxy purges"),
            Err(e) => tracing::warn!(error = %e, "scheduled purge failed; will retry"),
        }
    }
}

/// One scheduled purge; `None` when another purge holds the lock.
async fn once(url: &str, config: &Config) -> Result<Option<i64>, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let options = crate::protect::snapshot_options(config);
    let result = async {
        let snapshot = crate::schema::load::load(&client, &options)
            .await
            .map_err(|e| e.to_string())?;
        let opts = Options {
            batch_size: config.retention.purge_batch_size,
            dry_run: false,
            max_batches: None,
            actor: Some("tombstone purge (scheduled)".to_string()),
        };
        let mut last = std::time::Duration::ZERO;
        let mut log = |p: &Progress<'_>| {
            if p.elapsed >= last + std::time::Duration::from_secs(10) {
                last = p.elapsed;
                tracing::info!(
                    table = p.table,
                    table_rows = p.table_rows,
                    rows = p.total_rows,
                    rows_per_second = p.rate().round(),
                    "scheduled purge in progress"
                );
            }
        };
        match purge(
            &client,
            &snapshot,
            &config.retention,
            &config.audit,
            &opts,
            &mut log,
        )
        .await
        {
            Ok(report) => Ok(Some(report.tables.iter().map(|t| t.rows).sum())),
            Err(PurgeError::Busy) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
    .await;
    drop(client);
    let _ = driver.await;
    result
}
