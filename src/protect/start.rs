//! Turning protection on at `serve` startup: check the database has the
//! tombstone schema at this binary's version, load the first snapshot,
//! write `rules.toml`'s bypass roles, audit settings and edge rules where
//! the database's functions read them, start the schema watcher and the
//! audit maintenance task.

use std::sync::Arc;
use std::time::Duration;

use super::{Protection, watch};
use crate::config::Config;

/// How often audit partitions are created ahead and expired ones dropped.
const AUDIT_MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// Connects to `database.url`, verifies, loads and starts watching. The
/// error is a sentence for the operator.
pub async fn start(
    config: &Config,
    url: &str,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Arc<Protection>, String> {
    let database = config
        .database
        .name()
        .ok_or_else(|| "database.url must name a database".to_string())?;
    let shown = crate::config::redact_url(url);
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| {
            format!(
                "database.url: cannot connect to {shown}: {}",
                crate::pg_error::describe(&e)
            )
        })?;
    let driver = tokio::spawn(connection);
    let installed = crate::migrate::version::installed_locked(&mut client)
        .await
        .map_err(|e| {
            format!(
                "database.url: cannot read the tombstone schema version of {shown}: {}",
                crate::pg_error::describe(&e)
            )
        })?;
    if let Some(refusal) = crate::migrate::version::mismatch(installed.as_ref(), &shown) {
        return Err(format!("database `{database}`: {refusal}"));
    }
    let missing = crate::migrate::missing_objects(&client)
        .await
        .map_err(|e| {
            format!(
                "database.url: cannot read the catalog of {shown}: {}",
                crate::pg_error::describe(&e)
            )
        })?;
    if !missing.is_empty() {
        return Err(format!(
            "database `{database}` lacks the tombstone schema (missing: {}); run `tombstone migrate --apply --database-url …` first",
            missing.join(", ")
        ));
    }
    sync_audit_settings(&client, &config.audit)
        .await
        .map_err(|e| {
            format!(
                "database.url: cannot write tombstone.audit_settings: {}",
                crate::pg_error::describe(&e)
            )
        })?;
    client
        .execute(
            "INSERT INTO tombstone.settings (name, value) VALUES ('notify_channel', $1)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&config.notify.channel],
        )
        .await
        .map_err(|e| {
            format!(
                "database.url: cannot write tombstone.settings: {}",
                crate::pg_error::describe(&e)
            )
        })?;
    crate::ops::roles::sync_bypass_roles(&client, &config.roles.bypass)
        .await
        .map_err(|e| {
            format!(
                "database.url: cannot write tombstone.bypass_roles: {}",
                crate::pg_error::describe(&e)
            )
        })?;
    let addr_key: Vec<u8> = client
        .query_opt("SELECT key FROM tombstone.proxy_key LIMIT 1", &[])
        .await
        .map_err(|e| format!("database.url: cannot read tombstone.proxy_key (run `tombstone migrate --apply`; the role needs the rights of tombstone's owner): {}", crate::pg_error::describe(&e)))?
        .map(|row| row.get(0))
        .unwrap_or_default();
    let options = super::snapshot_options(config);
    let (catalog, snapshot) = watch::load_snapshot(&client, &options).await.map_err(|e| {
        format!(
            "database.url: cannot load the schema of {shown}: {}",
            crate::pg_error::describe(&e)
        )
    })?;
    // restore, purge and erase follow tombstone.edges: the same rules.toml
    // edges as this snapshot's (the watcher re-checks them on every reload).
    match crate::ops::edges::sync_edge_rules(&client, snapshot.edge_rules()).await {
        Ok(Some(replaced)) => tracing::info!(
            before = ?replaced.before,
            after = ?replaced.after,
            "rules.toml edges written to tombstone.edge_rules"
        ),
        Ok(None) => {}
        Err(e) => {
            return Err(format!(
                "database.url: cannot write tombstone.edge_rules: {}",
                crate::pg_error::describe(&e)
            ));
        }
    }
    let protected = snapshot
        .tables()
        .iter()
        .filter(|t| t.is_protected())
        .count();
    drop(client);
    let _ = driver.await;
    tracing::info!(%database, protected_tables = protected, "schema snapshot loaded");

    let mut protection = Protection::new(database, snapshot, config)
        .map_err(|e| format!("cannot start the parser threads ([parser]): {e}"))?;
    protection.addr_key = addr_key;
    protection.metrics = metrics;
    let protection = Arc::new(protection);
    tokio::spawn(watch::run(
        protection.clone(),
        url.to_string(),
        config.database.notify_channel.clone(),
        config.database.refresh_interval,
        catalog,
    ));
    tokio::spawn(audit_maintenance(url.to_string(), config.audit.retention));
    Ok(protection)
}

/// Writes `[audit]` into `tombstone.audit_settings`, where the audit
/// triggers read it: the defaults as `('*', '*')`, then per-table overrides.
async fn sync_audit_settings(
    client: &tokio_postgres::Client,
    audit: &crate::config::AuditConfig,
) -> Result<(), tokio_postgres::Error> {
    let mut rows: Vec<(String, String, bool, bool)> =
        vec![("*".into(), "*".into(), audit.inserts, audit.updates)];
    for qualified in audit.tables.keys() {
        if let Some((schema, table)) = qualified.split_once('.') {
            rows.push((
                schema.to_string(),
                table.to_string(),
                audit.audits_inserts(qualified),
                audit.audits_updates(qualified),
            ));
        }
    }
    client
        .batch_execute("BEGIN; DELETE FROM tombstone.audit_settings")
        .await?;
    for (schema, table, inserts, updates) in &rows {
        client
            .execute(
                "INSERT INTO tombstone.audit_settings (table_schema, table_name, inserts, updates) VALUES ($1, $2, $3, $4)",
                &[schema, table, inserts, updates],
            )
            .await?;
    }
    client.batch_execute("COMMIT").await
}

/// Keeps monthly audit partitions ahead of time and drops expired ones.
async fn audit_maintenance(url: String, retention: Option<Duration>) {
    let mut tick = tokio::time::interval(AUDIT_MAINTENANCE_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = maintain_audit(&url, retention).await {
            tracing::warn!(error = %e, "audit partition maintenance failed; will retry");
        }
    }
}

async fn maintain_audit(
    url: &str,
    retention: Option<Duration>,
) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let created: i32 = client
        .query_one("SELECT tombstone.ensure_audit_partitions(3)", &[])
        .await?
        .get(0);
    let dropped: i32 = match retention {
        Some(keep) => {
            let secs = keep.as_secs() as f64;
            client
                .query_one(
                    "SELECT tombstone.drop_audit_partitions(now() - make_interval(secs => $1))",
                    &[&secs],
                )
                .await?
                .get(0)
        }
        None => 0,
    };
    if created > 0 || dropped > 0 {
        tracing::info!(created, dropped, "audit partitions maintained");
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}
