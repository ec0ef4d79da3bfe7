//! Cancel keys: the proxy gives each client a key of its own and remembers
//! which server backend it stands for.
//!
//! Clients never learn the server's real process id and secret; a
//! CancelRequest with a key the proxy did not hand out goes nowhere.

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

    /// Makes a fresh client key for `server` (same secret length, as the
    /// client's protocol version expects) and records it.
    pub fn register(&self, server: BackendKey) -> CancelGuard {
        let mut map = self.lock();
        loop {
            let mut secret = vec![0u8; server.secret.len()];
            rand::fill(&mut secret[..]);
            let key = BackendKey {
                pid: rand::random::<i32>() & i32::MAX,
                secret: Bytes::from(secret),
            };
            if !map.contains_key(&key) {
                map.insert(key.clone(), server);
                return CancelGuard {
                    registry: self.clone(),
                    key,
                };
            }
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
        assert_ne!(client, server);
        assert_eq!(registry.lookup(&client), Some(server));
        drop(guard);
        assert_eq!(registry.lookup(&client), None);
    }
}
