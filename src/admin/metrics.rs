//! `/metrics`: the process's [`Metrics`](crate::metrics::Metrics) in
//! Prometheus' text format, plus the rewrite cache's counters and two
//! counts read from the protected database at scrape time (operations and
//! restores are recorded there by whoever does them: this proxy, another
//! one, the CLI, a bypass role's own SQL).
//!
//! The database part has a short timeout: a slow or unreachable database
//! leaves it out (`tombstone_database_scrape_success 0`) and the rest of
//! the scrape still answers at once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AdminState;
use crate::metrics::{gauge, header as metric_header, sample};

/// How long a scrape waits for the database's counts.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The content type Prometheus asks for (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counts of tombstone's own tables, read at scrape time.
struct DatabaseCounts {
    operations: i64,
    restored: i64,
}

pub async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let mut out = String::with_capacity(8 * 1024);
    let cache = state.protection.as_ref().map(|p| p.cache_metrics());
    state.metrics.render(&mut out, cache);
    if let Some(url) = &state.config.database.url {
        let counts = tokio::time::timeout(DATABASE_TIMEOUT, database_counts(url)).await;
        let counts = match counts {
            Ok(Ok(c)) => Some(c),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "/metrics: cannot read tombstone.operations");
                None
            }
            Err(_) => {
                tracing::debug!("/metrics: the database did not answer in time");
                None
            }
        };
        gauge(
            &mut out,
            "tombstone_database_scrape_success",
            "1 when this scrape read tombstone.operations and tombstone.restores from database.url (within 2 s), else 0 and their gauges are absent.",
            i64::from(counts.is_some()),
        );
        if let Some(c) = counts {
            gauge(
                &mut out,
                "tombstone_operations",
                "Operations (soft deletes and their cascades) recorded in tombstone.operations by any process and not yet purged, read at scrape time.",
                c.operations,
            );
            metric_header(
                &mut out,
                "tombstone_restored_operations",
                "Of those, operations restored (rows of tombstone.restores), by this proxy, another one, the CLI or SQL, read at scrape time.",
                "gauge",
            );
            sample(&mut out, "tombstone_restored_operations", c.restored);
        }
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], out)
}

async fn database_counts(url: &str) -> Result<DatabaseCounts, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| crate::pg_error::describe(&e))?;
    let driver = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM tombstone.operations), (SELECT count(*) FROM tombstone.restores)",
            &[],
        )
        .await
        .map_err(|e| crate::pg_error::describe(&e));
    drop(client);
    let _ = driver.await;
    let row = row?;
    let operations = row.try_get(0).map_err(|e| e.to_string())?;
    let restored = row.try_get(1).map_err(|e| e.to_string())?;
    Ok(DatabaseCounts {
        operations,
        restored,
    })
}
