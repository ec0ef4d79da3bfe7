//! The server: what every session shares, the accept loop, and shutdown.

mod listener;
pub mod shutdown;

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::cancel::CancelRegistry;
use crate::config::{Config, TimeoutsConfig};
use crate::metrics::Metrics;
use crate::protect::Protection;
use crate::tls::{self, TlsError};
use crate::upstream::Upstream;
use crate::wire::Limits;

pub use listener::serve;
pub use shutdown::{Phase, ShutdownSignal};

/// Everything sessions share, built once from the config.
pub struct Shared {
    /// Present when `[listen.tls]` is configured.
    pub tls_acceptor: Option<TlsAcceptor>,
    pub upstream: Upstream,
    pub cancels: CancelRegistry,
    /// Limits on what clients send.
    pub client_limits: Limits,
    pub timeouts: TimeoutsConfig,
    /// Present when `database.url` names a protected database.
    pub protection: Option<Arc<Protection>>,
    /// The process's metrics (the same value `protection` and the admin
    /// listener hold).
    pub metrics: Arc<Metrics>,
}

impl Shared {
    /// Builds the shared state; fails on unreadable certificates.
    pub fn from_config(
        config: &Config,
        protection: Option<Arc<Protection>>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Shared>, TlsError> {
        let tls_acceptor = config.listen.tls.as_ref().map(tls::acceptor).transpose()?;
        let upstream_tls = tls::upstream(&config.upstream)?;
        Ok(Arc::new(Shared {
            tls_acceptor,
            upstream: Upstream::new(&config.upstream, upstream_tls, &config.timeouts),
            cancels: CancelRegistry::default(),
            client_limits: Limits {
                max_message: config.listen.max_message_bytes,
            },
            timeouts: config.timeouts.clone(),
            protection,
            metrics,
        }))
    }

    /// The shared state for sessions opened after a reload: `config`'s
    /// certificates, upstream, limits and timeouts, with this state's cancel
    /// registry (keys of running sessions stay valid), protection and
    /// metrics.
    pub fn reloaded(&self, config: &Config) -> Result<Arc<Shared>, TlsError> {
        let tls_acceptor = config.listen.tls.as_ref().map(tls::acceptor).transpose()?;
        let upstream_tls = tls::upstream(&config.upstream)?;
        Ok(Arc::new(Shared {
            tls_acceptor,
            upstream: Upstream::new(&config.upstream, upstream_tls, &config.timeouts),
            cancels: self.cancels.clone(),
            client_limits: Limits {
                max_message: config.listen.max_message_bytes,
            },
            timeouts: config.timeouts.clone(),
            protection: self.protection.clone(),
            metrics: self.metrics.clone(),
        }))
    }
}
