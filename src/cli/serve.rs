//! `tombstone serve`: load the config, bind, proxy until SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::server::{self, Shared};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Path to rules.toml.
    #[arg(long, short, default_value = "rules.toml", env = "TOMBSTONE_CONFIG")]
    config: PathBuf,
}

pub async fn run(args: ServeArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tombstone: {e}");
            return ExitCode::from(2);
        }
    };
    crate::logging::init(&config.log);
    let protection = match &config.database.url {
        None => {
            tracing::warn!(
                "no database.url configured: tombstone relays every session unchanged (no soft delete, no audit)"
            );
            None
        }
        Some(url) => match crate::protect::start(&config, url).await {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("tombstone: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if let (Some(url), Some(_)) = (&config.database.url, &protection) {
        let schedule = crate::ops::schedule::run(url.clone(), std::sync::Arc::new(config.clone()));
        tokio::spawn(schedule);
    }
    let shared = match Shared::from_config(&config, protection.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tombstone: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(config.listen.address).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "tombstone: listen.address: cannot listen on {}: {e}",
                config.listen.address
            );
            return ExitCode::from(2);
        }
    };
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("tombstone: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        listen = %config.listen.address,
        upstream = %shared.upstream.address(),
        tls = config.listen.tls.is_some(),
        "tombstone listening"
    );
    let stop = async {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    };
    server::serve(listener, shared, config.listen.shutdown_grace, stop).await;
    if let Some(p) = protection {
        let (exact, normalized, misses) = p.cache_counts();
        tracing::info!(
            exact_hits = exact,
            normalized_hits = normalized,
            misses,
            "rewrite cache"
        );
    }
    ExitCode::SUCCESS
}
