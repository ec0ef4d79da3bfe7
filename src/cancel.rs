//! Cancel keys: the proxy gives each client a key of its own and remembers
//! which server backend it stands for.
//!
//! The process id is the server's own, so it matches `pg_backend_pid()`,
//! the pid of `NOTIFY` messages and `pg_stat_activity` (drivers and pools
//! compare them); the secret is the proxy's, so the client never learns the
//! server's and a CancelRequest with a key the proxy did not hand out goes
//! nowhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::wire::BackendKey;

/// Proxy key → server key, for every live session.
#[derive(Debug, Default, Clone)]
pub struct CancelRegistry {
    keys: Arc<Mutex<HashMap<BackendKey, BackendKey>>>,
}

/// Removes a session's key when the session ends.
#[derive(Debug)]
pub struct CancelGuard {
    registry: CancelRegistry,
    key: BackendKey,
}

impl CancelGuard {
    /// The key to give the client.
    pub fn client_key(&self) -> &BackendKey {
        &self.key
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.key);
    }
}

impl CancelRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BackendKey, BackendKey>> {
        // The map stays consistent even if a holder panicked mid-insert.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a fresh client key for `server`: its real pid, a secret of
    /// the proxy's own (same length, as the client's protocol version
    /// expects). Records it.
    pub fn register(&self, server: BackendKey) -> CancelGuard {
        let mut map = self.lock();
        let mut attempts = 0;
        let key = loop {
            let mut secret = vec![0u8; server.secret.len()];
            rand::fill(&mut secret[..]);
            let key = BackendKey {
                pid: server.pid,
                secret: Bytes::from(secret),
            };
            attempts += 1;
            // A server that sends no secret leaves nothing to draw: the key
            // is then its pid alone, and a reused pid takes the entry over.
            let fresh = key.secret != server.secret && !map.contains_key(&key);
            if fresh || server.secret.is_empty() || attempts >= 16 {
                break key;
            }
        };
        map.insert(key.clone(), server);
        CancelGuard {
            registry: self.clone(),
            key,
        }
    }

    /// The server key behind a client key, if that session is still open.
    pub fn lookup(&self, client: &BackendKey) -> Option<BackendKey> {
        self.lock().get(client).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_and_expire_with_the_guard() {
        let registry = CancelRegistry::default();
        let server = BackendKey {
            pid: 77,
            secret: Bytes::from_static(&[1, 2, 3, 4]),
        };
        let guard = registry.register(server.clone());
        let client = guard.client_key().clone();
        assert_eq!(client.secret.len(), 4);
        assert_eq!(client.pid, server.pid);
        assert_ne!(client.secret, server.secret);
        assert_eq!(registry.lookup(&client), Some(server));
        drop(guard);
        assert_eq!(registry.lookup(&client), None);
    }
}
