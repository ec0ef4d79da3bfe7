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
        // A decision that read a literal is only ever cached for the exact
        // text: sharing it by shape would hand it to statements with other
        // literals (a harmless DO body's pass to any DO block).
        let shareable = !direct.reads_literals;
        let direct = Arc::new(CachedRewrite {
            sql: match direct.sql {
                Cow::Borrowed(_) => None,
                Cow::Owned(s) => Some(s),
            },
            plans: direct.statements,
        });
        if shareable
            && let Some(n) = normalized
            && let Ok(shape) = rewrite(&n.text, snapshot, session)
            && !shape.reads_literals
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

/// What a session's rewrites depend on besides the text: every field of
/// the session context (role and visibility, login user, search path,
/// actor, hard-delete permission, limits). Built from the whole value, so a
/// field added later is part of the key without anyone remembering to add
/// it; `Debug` quotes and escapes every string, so no two contexts share a
/// key.
pub fn cache_context(session: &SessionContext) -> String {
    format!("{session:?}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::{Role, Visibility};

    fn protection() -> Protection {
        let snapshot = crate::rewrite::tests::scenario();
        Protection::new("db".into(), snapshot, &Config::default())
    }

    fn through_cache(
        p: &Protection,
        sql: &str,
        s: &SessionContext,
    ) -> Result<Option<String>, String> {
        p.rewrite(sql, s, &cache_context(s))
            .map(|r| r.sql.clone())
            .map_err(|e| e.sqlstate().to_string())
    }

    /// Every statement is decided as the uncached rewriter decides it, in
    /// this order, with a warm cache: a harmless first statement of each
    /// shape must not turn the later ones' refusals into passes.
    #[test]
    fn literals_the_decision_reads_are_never_normalized_away() {
        let p = protection();
        let s = SessionContext::normal("app");
        let cases = [
            "DO $$BEGIN EXECUTE 'SELECT 1'; END$$",
            "DO $$BEGIN PERFORM * FROM projects; END$$",
            "DO 'BEGIN NULL; END'",
            "DO 'BEGIN DELETE FROM tasks; END'",
            "DO LANGUAGE plpgsql $$BEGIN NULL; END$$",
            "DO LANGUAGE plpgsql $$BEGIN UPDATE tasks SET done = true; END$$",
            "SELECT set_config('application_name', 'x', false)",
            "SELECT set_config('tombstone.client_addr', '6.6.6.6', false)",
            "SELECT set_config('application_name', 'y', false)",
            "SELECT set_config('tombstone.visibility', 'all', false)",
            "SET application_name = 'a'",
            "SET tombstone.client_addr = '1.2.3.4'",
            "ALTER SYSTEM SET work_mem = '1MB'",
            "ALTER SYSTEM SET work_mem = 'projects'",
        ];
        for sql in cases {
            let fresh = crate::rewrite::rewrite(sql, &p.current().snapshot, &s)
                .map(|r| match r.sql {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(t) => Some(t),
                })
                .map_err(|e| e.sqlstate().to_string());
            assert_eq!(through_cache(&p, sql, &s), fresh, "{sql}");
        }
        // The refusals above really are refusals (the test can fail).
        assert!(through_cache(&p, cases[1], &s).is_err());
        assert!(through_cache(&p, cases[3], &s).is_err());
        assert!(through_cache(&p, cases[7], &s).is_err());
        // Each DO block was cached for its exact text only.
        let (_, normalized_hits, _) = p.cache_counts();
        assert_eq!(normalized_hits, 0);
    }

    #[test]
    fn plain_literals_still_share_a_template() {
        let p = protection();
        let s = SessionContext::normal("app");
        let a = through_cache(&p, "SELECT name FROM projects WHERE id = 1", &s);
        let b = through_cache(&p, "SELECT name FROM projects WHERE id = 2", &s);
        assert_eq!(
            b,
            Ok(Some(
                "SELECT name FROM projects WHERE (id = 2) AND projects.deleted_at IS NULL".into()
            )),
            "{a:?}"
        );
        assert_eq!(p.cache_counts().1, 1);
    }

    #[test]
    fn every_session_field_is_part_of_the_key() {
        let normal = SessionContext::normal("app");
        let variants = [
            SessionContext {
                role: Role::Bypass {
                    visibility: Visibility::Setting,
                },
                ..normal.clone()
            },
            SessionContext {
                role: Role::Bypass {
                    visibility: Visibility::All,
                },
                ..normal.clone()
            },
            SessionContext {
                user: "other".into(),
                ..normal.clone()
            },
            SessionContext {
                search_path: vec!["billing".into()],
                ..normal.clone()
            },
            SessionContext {
                search_path: vec!["a,b".into()],
                ..normal.clone()
            },
            SessionContext {
                actor: Some("alice".into()),
                ..normal.clone()
            },
            SessionContext {
                hard_delete: true,
                ..normal.clone()
            },
            SessionContext {
                limits: crate::rewrite::Limits {
                    max_statement_bytes: 10,
                },
                ..normal.clone()
            },
        ];
        let mut keys: Vec<String> = variants.iter().map(cache_context).collect();
        keys.push(cache_context(&normal));
        let count = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), count);
        // `["a", "b"]` and `["a,b"]` differ too.
        let two = SessionContext {
            search_path: vec!["a".into(), "b".into()],
            ..normal.clone()
        };
        assert_ne!(cache_context(&two), cache_context(&variants[4]));

        // A bypass session's cached rewrite never serves a normal one.
        let p = protection();
        let sql = "SELECT name FROM projects WHERE id = 1";
        let bypass = &variants[1];
        assert_eq!(through_cache(&p, sql, bypass), Ok(None));
        assert_eq!(
            through_cache(&p, sql, &normal),
            Ok(Some(
                "SELECT name FROM projects WHERE (id = 1) AND projects.deleted_at IS NULL".into()
            ))
        );
    }
}
