//! Keeping the schema snapshot current without a restart: re-read it when
//! the event trigger NOTIFYs, when a session saw DDL pass, and periodically;
//! swap it in only when the catalog really changed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use super::Protection;
use crate::schema::{Catalog, SchemaSnapshot, load};

/// Reads the catalog and builds a snapshot.
pub async fn load_snapshot(
    client: &tokio_postgres::Client,
    protection_options: &crate::schema::SnapshotOptions,
) -> Result<(Catalog, SchemaSnapshot), tokio_postgres::Error> {
    let catalog = load::load_catalog(client).await?;
    let snapshot = SchemaSnapshot::build(catalog.clone(), protection_options);
    Ok((catalog, snapshot))
}

/// Watches the schema until the process ends. Reconnects after errors,
/// serving the last good snapshot meanwhile.
pub async fn run(
    protection: Arc<Protection>,
    url: String,
    channel: String,
    interval: Option<Duration>,
    mut last: Catalog,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match watch_once(&protection, &url, &channel, interval, &mut last).await {
            Ok(()) => return,
            Err(e) => {
                protection.metrics.schema_refresh_errors.inc();
                tracing::warn!(error = %e, retry_in = ?backoff, "schema watcher lost its connection; serving the last snapshot");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn watch_once(
    protection: &Protection,
    url: &str,
    channel: &str,
    interval: Option<Duration>,
    last: &mut Catalog,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let (notify_tx, mut notify_rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = notify_tx.send(n.payload().to_string());
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await?;
    // A change may have happened while we were not listening.
    reload(protection, &client, last, "watcher connected").await?;
    let period = interval.unwrap_or(Duration::from_secs(24 * 3600));
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        let reason = tokio::select! {
            n = notify_rx.recv() => match n {
                Some(tag) => format!("schema change notification ({tag})"),
                None => break,
            },
            _ = tick.tick(), if interval.is_some() => "periodic check".to_string(),
            () = protection.refresh.notified() => "DDL seen by a session".to_string(),
        };
        // Coalesce a burst of notifications (a migration) into one reload.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while notify_rx.try_recv().is_ok() {}
        reload(protection, &client, last, &reason).await?;
    }
    // The connection ended: report it through the driver's result.
    match driver.await {
        Ok(Err(e)) => Err(e),
        _ => client.batch_execute("SELECT 1").await,
    }
}

async fn reload(
    protection: &Protection,
    client: &tokio_postgres::Client,
    last: &mut Catalog,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    let (catalog, snapshot) = load_snapshot(client, &protection.options).await?;
    // The database's graph (tombstone.edges) takes its rules.toml half from
    // tombstone.edge_rules: if a migrate or another proxy wrote other rules,
    // this proxy's (the rewriter's) go back, loudly.
    match crate::ops::edges::sync_edge_rules(client, snapshot.edge_rules()).await {
        Ok(Some(replaced)) => tracing::warn!(
            reason,
            found = ?replaced.before,
            written = ?replaced.after,
            "tombstone.edge_rules held other rules.toml edges than this proxy's (a migrate or another proxy with another rules.toml?); wrote this proxy's back, so restore, purge and erase follow the rewriter's graph"
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(
            reason,
            error = %e,
            "cannot check tombstone.edge_rules; restore, purge and erase may follow other rules.toml edges than the rewriter until it succeeds"
        ),
    }
    // serve checked the version at startup; a migrate since (another
    // binary's) is reported on every reload until this proxy is replaced.
    let installed = crate::migrate::version::installed(client).await?;
    if let Some(refusal) = crate::migrate::version::mismatch(installed.as_ref(), "…") {
        tracing::error!(
            reason,
            "{refusal}; restart tombstone with a matching binary"
        );
    }
    if catalog != *last {
        let protected = snapshot
            .tables()
            .iter()
            .filter(|t| t.is_protected())
            .count();
        protection.replace_snapshot(snapshot);
        protection.metrics.schema_refreshes.inc();
        *last = catalog;
        tracing::info!(
            reason,
            protected_tables = protected,
            "schema snapshot refreshed"
        );
    } else {
        tracing::debug!(reason, "schema unchanged");
    }
    Ok(())
}
