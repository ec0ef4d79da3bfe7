//! What makes a session protected: the current schema snapshot, the rewrite
//! cache that goes with it, and the settings sessions need (bypass roles).
//!
//! Sessions read the current [`Generation`] lock-free (`ArcSwap`); the
//! schema watcher swaps in a new one when the schema changes, so a refresh
//! never blocks a query in flight. A new generation starts with an empty
//! cache.

pub mod cache;
mod start;
pub mod watch;

pub use start::start;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::rewrite::{RewriteError, SessionContext, rewrite};
use crate::schema::{ExtraEdge, FkAction, SchemaSnapshot, SnapshotOptions};
use cache::{CacheStats, CachedRewrite, Lookup, RewriteCache};

/// One schema snapshot and its cache.
pub struct Generation {
    pub snapshot: SchemaSnapshot,
    pub cache: RewriteCache,
}

/// Shared by every session of the protected database.
pub struct Protection {
    current: ArcSwap<Generation>,
    capacity: usize,
    pub stats: CacheStats,
    /// The protected database's name.
    pub database: String,
    pub options: SnapshotOptions,
    pub bypass_roles: Vec<String>,
    /// `roles.bypass_hard_delete`: bypass sessions' DELETE is physical.
    pub bypass_hard_delete: bool,
    /// Asks the watcher to re-read the schema now (e.g. after DDL).
    pub refresh: tokio::sync::Notify,
}

impl Protection {
    pub fn new(database: String, snapshot: SchemaSnapshot, config: &Config) -> Protection {
        Protection {
            current: ArcSwap::from_pointee(Generation {
                snapshot,
                cache: RewriteCache::new(config.cache.capacity),
            }),
            capacity: config.cache.capacity,
            stats: CacheStats::default(),
            database,
            options: snapshot_options(config),
            bypass_roles: config.roles.bypass.clone(),
            bypass_hard_delete: config.roles.bypass_hard_delete,
            refresh: tokio::sync::Notify::new(),
        }
    }

    /// The generation in force now.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Installs a new snapshot (with an empty cache).
    pub fn replace_snapshot(&self, snapshot: SchemaSnapshot) {
        self.current.store(Arc::new(Generation {
            snapshot,
            cache: RewriteCache::new(self.capacity),
        }));
    }

    /// Rewrites `sql` for a session, through the cache. `context` must
    /// identify everything about the session the rewrite depends on (see
    /// [`cache_context`]).
    pub fn rewrite(
        &self,
        sql: &str,
        session: &SessionContext,
        context: &str,
    ) -> Result<Arc<CachedRewrite>, RewriteError> {
        let generation = self.current.load();
        let snapshot = &generation.snapshot;
        if !crate::rewrite::may_need_rewrite(sql, snapshot) {
            return Ok(Arc::new(CachedRewrite {
                sql: None,
                plans: Vec::new(),
            }));
        }
        let normalized = match generation.cache.lookup(context, sql, &self.stats) {
            Lookup::Hit(hit) => return Ok(hit),
            Lookup::Miss(n) => n,
        };
        let direct = rewrite(sql, snapshot, session)?;
        let direct = Arc::new(CachedRewrite {
            sql: match direct.sql {
                Cow::Borrowed(_) => None,
                Cow::Owned(s) => Some(s),
            },
            plans: direct.statements,
        });
        if let Some(n) = normalized
            && let Ok(shape) = rewrite(&n.text, snapshot, session)
            && generation.cache.insert_template(
                context,
                sql,
                &n,
                (shape.sql, shape.statements),
                &direct,
            )
        {
            return Ok(direct);
        }
        generation.cache.insert_exact(context, sql, direct.clone());
        Ok(direct)
    }

    /// Hit rate so far, as (exact hits, normalized hits, misses).
    pub fn cache_counts(&self) -> (u64, u64, u64) {
        self.stats.snapshot()
    }

    /// Resets the counters (benchmarks measure one run at a time).
    pub fn reset_counts(&self) {
        self.stats.exact_hits.store(0, Ordering::Relaxed);
        self.stats.normalized_hits.store(0, Ordering::Relaxed);
        self.stats.misses.store(0, Ordering::Relaxed);
    }
}

/// What a session's rewrites depend on besides the text: its role,
/// visibility, hard-delete permission and search path (entries joined with
/// a NUL, which no name can contain).
pub fn cache_context(session: &SessionContext) -> String {
    format!(
        "{:?}|{}|{}|{}",
        session.role,
        session.hard_delete,
        session.user,
        session.search_path.join("\u{0}")
    )
}

/// `[soft_delete]` as the snapshot builder takes it.
pub fn snapshot_options(config: &Config) -> SnapshotOptions {
    let sd = &config.soft_delete;
    let split = |q: &str| -> (String, String) {
        match q.split_once('.') {
            Some((s, t)) => (s.to_string(), t.to_string()),
            None => ("public".to_string(), q.to_string()),
        }
    };
    SnapshotOptions {
        column: sd.column.clone(),
        deleted_by_column: sd.deleted_by_column.clone(),
        exclude: sd.exclude.iter().map(|t| split(t)).collect(),
        column_overrides: sd
            .columns
            .iter()
            .map(|(t, c)| (split(t), c.clone()))
            .collect(),
        remove_edges: sd.remove_edges.clone(),
        add_edges: sd
            .add_edges
            .iter()
            .map(|e| ExtraEdge {
                child: split(&e.child),
                child_columns: e.child_columns.clone(),
                parent: split(&e.parent),
                parent_columns: e.parent_columns.clone(),
                on_delete: match e.on_delete {
                    crate::config::EdgeAction::Cascade => FkAction::Cascade,
                    crate::config::EdgeAction::SetNull => FkAction::SetNull,
                    crate::config::EdgeAction::SetDefault => FkAction::SetDefault,
                    crate::config::EdgeAction::Restrict => FkAction::Restrict,
                    crate::config::EdgeAction::NoAction => FkAction::NoAction,
                },
            })
            .collect(),
    }
}
