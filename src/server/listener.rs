//! The accept loop: one task per client, and a bounded graceful stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Phase, Shared, ShutdownSignal};
use crate::session;

/// After the grace period, how long forced sessions get to say goodbye.
const FORCE_WAIT: Duration = Duration::from_secs(5);

/// Accepts clients until `stop` resolves, then drains: no new clients,
/// idle sessions close at once, the rest get `grace` to finish their
/// transactions, then are closed. Each new session takes the shared state
/// `shared` holds when it is accepted (a reload replaces it; running
/// sessions keep theirs).
pub async fn serve(
    listener: TcpListener,
    shared: watch::Receiver<Arc<Shared>>,
    grace: Duration,
    stop: impl Future<Output = ()>,
) {
    let signal = ShutdownSignal::default();
    let mut sessions = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let shared = shared.borrow().clone();
                    shared.metrics.sessions_accepted.inc();
                    if let Err(e) = shared.timeouts.keepalive(&tcp) {
                        tracing::debug!(error = %e, "cannot set TCP keepalive on a client socket");
                    }
                    let phase = signal.subscribe();
                    sessions.spawn(session::run(tcp, peer, shared, phase));
                }
                // Out of file descriptors and the like: wait, don't spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            () = &mut stop => break,
        }
    }
    drop(listener);
    tracing::info!(open_sessions = sessions.len(), grace = ?grace, "shutting down: no new connections");
    signal.set(Phase::Draining);
    if tokio::time::timeout(grace, drain(&mut sessions))
        .await
        .is_err()
    {
        tracing::warn!(
            open_sessions = sessions.len(),
            "grace period over: closing remaining sessions"
        );
        signal.set(Phase::Force);
        if tokio::time::timeout(FORCE_WAIT, drain(&mut sessions))
            .await
            .is_err()
        {
            sessions.abort_all();
        }
    }
    tracing::info!("shutdown complete");
}

async fn drain(sessions: &mut JoinSet<()>) {
    while sessions.join_next().await.is_some() {}
}
