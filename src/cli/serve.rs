//! `tombstone serve`: load the config, bind, proxy until SIGTERM; SIGHUP
//! reloads the config for new sessions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use super::config_file::{ConfigArgs, explain};
use super::fail;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::server::{self, Shared};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// `tombstone check`: loads the file as `serve` would, without starting.
pub fn check(args: ServeArgs) -> ExitCode {
    let file = args.config.file();
    match file.load() {
        Ok(_) => {
            println!("{}: ok", file.path().display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            fail(&explain(&file, &e));
            ExitCode::from(2)
        }
    }
}

pub async fn run(args: ServeArgs) -> ExitCode {
    let file = args.config.file();
    let config = match file.load() {
        Ok(c) => c,
        Err(e) => {
            fail(&explain(&file, &e));
            return ExitCode::from(2);
        }
    };
    crate::logging::init(&config.log);
    proxy(
        config,
        Until::Signals {
            reload: file.path().to_path_buf(),
        },
    )
    .await
}

/// How a proxy started by [`proxy`] is told to stop.
pub(super) enum Until {
    /// `serve`: SIGTERM or SIGINT stops it, SIGHUP reloads `reload`.
    Signals { reload: PathBuf },
    /// `demo`: the caller says when (a send, or dropping the sender). The
    /// proxy's listen address goes to `ready` once it accepts clients;
    /// dropping it unsent means the startup failed (the reason is printed).
    Told {
        ready: oneshot::Sender<SocketAddr>,
        stop: oneshot::Receiver<()>,
    },
}

/// Starts everything `config` asks for (protection, scheduled purge,
/// cache notifications, the admin listener), listens, and proxies until
/// `until` says stop; the exit code is `serve`'s.
pub(super) async fn proxy(config: Config, until: Until) -> ExitCode {
    let metrics = Arc::new(Metrics::default());
    let protection = match &config.database.url {
        None => {
            tracing::warn!(
                "no database.url configured: tombstone relays every session unchanged (no soft delete, no audit)"
            );
            None
        }
        Some(url) => match crate::protect::start(&config, url, metrics.clone()).await {
            Ok(p) => Some(p),
            Err(e) => {
                fail(&e);
                return ExitCode::from(2);
            }
        },
    };
    if let (Some(url), Some(_)) = (&config.database.url, &protection) {
        let schedule =
            crate::ops::schedule::run(url.clone(), Arc::new(config.clone()), metrics.clone());
        tokio::spawn(schedule);
        tokio::spawn(crate::ops::invalidate::run(
            url.clone(),
            config.notify.channel.clone(),
            config.notify.redis.clone(),
        ));
    }
    let shared = match Shared::from_config(&config, protection.clone(), metrics.clone()) {
        Ok(s) => s,
        Err(e) => {
            fail(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let admin = crate::admin::AdminState {
        config: std::sync::Arc::new(config.clone()),
        protection: protection.clone(),
        metrics,
    };
    match crate::admin::bind(std::sync::Arc::new(admin)).await {
        Ok(Some(task)) => {
            tokio::spawn(task);
        }
        Ok(None) => {}
        Err(e) => {
            fail(&e);
            return ExitCode::from(2);
        }
    }
    let listener = match TcpListener::bind(config.listen.address).await {
        Ok(l) => l,
        Err(e) => {
            fail(&format!(
                "listen.address: cannot listen on {}: {e}",
                config.listen.address
            ));
            return ExitCode::from(2);
        }
    };
    let upstream = shared.upstream.address();
    let (current, sessions_take) = tokio::sync::watch::channel(shared);
    let stop: Pin<Box<dyn Future<Output = ()> + Send>> = match until {
        Until::Signals { reload } => {
            let (mut term, mut int, hup) = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(t), Ok(i), Ok(h)) => (t, i, h),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                    fail(&format!("cannot install signal handlers: {e}"));
                    return ExitCode::FAILURE;
                }
            };
            tokio::spawn(reload_on_hangup(hup, reload, config.clone(), current));
            Box::pin(async move {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            })
        }
        Until::Told { ready, stop } => {
            // Nothing replaces the shared state: no reloads.
            drop(current);
            let _ = ready.send(config.listen.address);
            Box::pin(async move {
                let _ = stop.await;
            })
        }
    };
    tracing::info!(
        listen = %config.listen.address,
        upstream = %upstream,
        tls = config.listen.tls.is_some(),
        "tombstone listening"
    );
    server::serve(listener, sessions_take, config.listen.shutdown_grace, stop).await;
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

/// On every SIGHUP, reads the config file again. A file that does not load
/// is logged with its reason and changes nothing. One that loads applies to
/// sessions opened from then on: `[listen.tls]` certificates,
/// `listen.max_message_bytes`, `[upstream]` and `[timeouts]`; running
/// sessions keep what they started with. The other keys take effect at the
/// next start, and the log names the sections that changed.
async fn reload_on_hangup(
    mut hup: tokio::signal::unix::Signal,
    path: PathBuf,
    mut running: Config,
    current: tokio::sync::watch::Sender<std::sync::Arc<Shared>>,
) {
    while hup.recv().await.is_some() {
        tracing::info!(config = %path.display(), "SIGHUP received: reloading the configuration");
        let new = match Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "configuration not reloaded: the running configuration stays");
                continue;
            }
        };
        let shared = match current.borrow().reloaded(&new) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "configuration not reloaded: the running configuration stays");
                continue;
            }
        };
        current.send_replace(shared);
        let restart = needs_restart(&running, &new);
        if restart.is_empty() {
            tracing::info!("configuration reloaded: new sessions use it");
        } else {
            tracing::warn!(
                sections = %restart.join(", "),
                "configuration reloaded for new sessions; these changed sections take effect at the next start"
            );
        }
        running = apply_reloadable(running, new);
    }
}

/// The sections of `new` that differ from `old` and are not reloaded.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let mut out = Vec::new();
    if old.listen.address != new.listen.address {
        out.push("listen.address");
    }
    if old.listen.shutdown_grace != new.listen.shutdown_grace {
        out.push("listen.shutdown_grace");
    }
    for (name, changed) in [
        ("log", differs(&old.log, &new.log)),
        ("database", differs(&old.database, &new.database)),
        ("soft_delete", differs(&old.soft_delete, &new.soft_delete)),
        ("roles", differs(&old.roles, &new.roles)),
        ("audit", differs(&old.audit, &new.audit)),
        ("retention", differs(&old.retention, &new.retention)),
        ("parser", differs(&old.parser, &new.parser)),
        ("cache", differs(&old.cache, &new.cache)),
        ("admin", differs(&old.admin, &new.admin)),
    ] {
        if changed {
            out.push(name);
        }
    }
    out
}

/// What runs after a reload: `new`'s reloaded keys, `old`'s others (so the
/// next reload compares against what really runs).
fn apply_reloadable(old: Config, new: Config) -> Config {
    let mut running = old;
    running.listen.tls = new.listen.tls;
    running.listen.max_message_bytes = new.listen.max_message_bytes;
    running.upstream = new.upstream;
    running.timeouts = new.timeouts;
    running
}
