//! Server-side sessions of the trash page: a random id (`ring::rand`, 256
//! bits) in an `HttpOnly; SameSite=Strict` cookie, the logged-in role, its
//! PostgreSQL connection and a per-session CSRF token. Sessions expire
//! after [`IDLE`] without a request and [`LIFETIME`] after login; logout
//! ends one at once. Nothing is stored on disk: a restart logs everyone out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "tombstone_admin";
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// … and this long after login, whatever happens.
pub const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// At most this many sessions at once; the oldest goes first.
const MAX_SESSIONS: usize = 256;

/// Who is logged in, and how.
pub struct Session {
    /// The PostgreSQL role (or `admin.token` for a token login): the
    /// audit's actor of what this session restores.
    pub actor: String,
    /// The token for every POST of this session (hex).
    pub csrf: String,
    /// The connection the session's queries run on: the role's own, or,
    /// for a token login, `database.url`'s.
    pub client: Arc<tokio_postgres::Client>,
    created: Instant,
    seen: Instant,
}

/// Every live session, by id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// What a handler gets for a valid session.
#[derive(Clone)]
pub struct Current {
    pub id: String,
    pub actor: String,
    pub csrf: String,
    pub client: Arc<tokio_postgres::Client>,
}

impl Sessions {
    /// Starts a session; its id (for the cookie), or `None` when no random
    /// id can be made.
    pub fn create(&self, actor: String, client: tokio_postgres::Client) -> Option<String> {
        let id = crate::admin::random_hex(32)?;
        let csrf = crate::admin::random_hex(32)?;
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        expire(&mut map, now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                actor,
                csrf,
                client: Arc::new(client),
                created: now,
                seen: now,
            },
        );
        Some(id)
    }

    /// The session `id` names, if it is live (its idle clock restarts), and
    /// its connection is still open.
    pub fn get(&self, id: &str) -> Option<Current> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        expire(&mut map, now);
        let s = map.get_mut(id)?;
        if s.client.is_closed() {
            map.remove(id);
            return None;
        }
        s.seen = now;
        Some(Current {
            id: id.to_string(),
            actor: s.actor.clone(),
            csrf: s.csrf.clone(),
            client: s.client.clone(),
        })
    }

    /// Ends session `id` (its connection closes with it).
    pub fn remove(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

fn expire(map: &mut HashMap<String, Session>, now: Instant) {
    map.retain(|_, s| {
        now.duration_since(s.seen) < IDLE && now.duration_since(s.created) < LIFETIME
    });
}

/// The session id of a `Cookie` header, if it has ours.
pub fn cookie_id(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `Set-Cookie` for session `id`.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.as_secs()
    )
}

/// `Set-Cookie` that removes ours.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether `a` and `b` are equal, in time that depends on their lengths
/// only, not on where they differ (CSRF tokens, the admin token).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        assert_eq!(cookie_id("a=1; tombstone_admin=ab12; b=2"), Some("ab12"));
        assert_eq!(cookie_id("tombstone_admin=<x>"), None);
        assert_eq!(cookie_id("other=ab"), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
