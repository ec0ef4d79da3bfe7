//! Graceful shutdown: a phase every session watches.

use tokio::sync::watch;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// No new clients; sessions close as soon as they are idle (outside a
    /// transaction, nothing in flight).
    Draining,
    /// The grace period is over: close every session now.
    Force,
}

/// The sending side, held by the server.
#[derive(Debug)]
pub struct ShutdownSignal {
    tx: watch::Sender<Phase>,
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        ShutdownSignal {
            tx: watch::channel(Phase::Running).0,
        }
    }
}

impl ShutdownSignal {
    /// A receiver for one session.
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.tx.subscribe()
    }

    pub fn set(&self, phase: Phase) {
        self.tx.send_replace(phase);
    }
}

/// Waits until `phase` is at least `target`.
pub async fn reached(rx: &mut watch::Receiver<Phase>, target: Phase) {
    let rank = |p: Phase| match p {
        Phase::Running => 0,
        Phase::Draining => 1,
        Phase::Force => 2,
    };
    // An error means the server is gone: treat that as Force.
    let _ = rx.wait_for(|p| rank(*p) >= rank(target)).await;
}
