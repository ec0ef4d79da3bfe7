//! `[cache]`: the rewrite cache.

use serde::Deserialize;

/// `[cache]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Rewritten statements kept (least recently used are dropped first).
    /// Default `10000`; `0` disables the cache.
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { capacity: 10_000 }
    }
}
