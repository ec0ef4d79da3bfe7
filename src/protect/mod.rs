//! What makes a session protected: the current schema snapshot, the rewrite
//! cache that goes with it, and the settings sessions need (bypass roles).
//!
//! Sessions read the current [`Generation`] lock-free (`ArcSwap`); the
//! schema watcher swaps in a new one when the schema changes, so a refresh
//! never blocks a query in flight. A new generation starts with an empty
//! cache.

pub mod cache;
pub mod pool;
mod start;
pub mod watch;

pub use start::start;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::rewrite::{RewriteError, SessionContext, rewrite};
use crate::schema::{ExtraEdge, FkAction, SchemaSnapshot, SnapshotOptions};
use cache::{CacheStats, CachedRewrite, Lookup, Miss, RewriteCache};
use pool::ParserPool;

/// One schema snapshot and its cache.
pub struct Generation {
    pub snapshot: SchemaSnapshot,
    pub cache: RewriteCache,
}

/// Shared by every session of the protected database.
pub struct Protection {
    current: ArcSwap<Generation>,
    capacity: usize,
    pub stats: Arc<CacheStats>,
    /// The protected database's name.
    pub database: String,
    pub options: SnapshotOptions,
    pub bypass_roles: Vec<String>,
    /// `roles.bypass_hard_delete`: bypass sessions' DELETE is physical.
    pub bypass_hard_delete: bool,
    /// Asks the watcher to re-read the schema now (e.g. after DDL).
    pub refresh: tokio::sync::Notify,
    /// Where cache misses are parsed (never on an async worker).
    pub parsers: ParserPool,
    /// `tombstone.proxy_key`: signs the client address sessions carry to
    /// the server (`migrate::identity`). Empty: unsigned (the server then
    /// records the address it sees).
    pub addr_key: Vec<u8>,
    /// The process's metrics (`serve` installs its own; a fresh set
    /// otherwise).
    pub metrics: Arc<Metrics>,
}

impl Protection {
    /// Fails only if the parser threads cannot be started.
    pub fn new(
        database: String,
        snapshot: SchemaSnapshot,
        config: &Config,
    ) -> std::io::Result<Protection> {
        Ok(Protection {
            current: ArcSwap::from_pointee(Generation {
                snapshot,
                cache: RewriteCache::new(config.cache.capacity),
            }),
            capacity: config.cache.capacity,
            stats: Arc::new(CacheStats::default()),
            database,
            options: snapshot_options(config),
            bypass_roles: config.roles.bypass.clone(),
            bypass_hard_delete: config.roles.bypass_hard_delete,
            refresh: tokio::sync::Notify::new(),
            parsers: ParserPool::new(config.parser.thread_count(), config.parser.queue_len())?,
            addr_key: Vec::new(),
            metrics: Arc::new(Metrics::default()),
        })
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

    /// Rewrites `sql` for a session, through the cache (keyed by the
    /// statement and the whole session context, see [`cache`]). Cache hits
    /// are answered here; a miss (and every statement too long to cache)
    /// is parsed on the parser pool while the caller's async worker goes
    /// on serving others.
    pub async fn rewrite_async(
        &self,
        sql: &str,
        session: &SessionContext,
    ) -> Result<Arc<CachedRewrite>, RewriteError> {
        let job = match self.lookup_or_job(sql, session) {
            Ok(hit) => return Ok(hit),
            Err(job) => *job,
        };
        match self.parsers.run(move || job.run()).await {
            Ok(r) => r,
            Err(e) => Err(RewriteError::TooComplex {
                detail: e.to_string(),
            }),
        }
    }

    /// The same as [`Self::rewrite_async`], parsing on the calling thread
    /// (for the CLI, tests and benchmarks, never for sessions; the parse
    /// gets its big stack from `stacker`, see `rewrite::parse::on_big_stack`).
    pub fn rewrite(
        &self,
        sql: &str,
        session: &SessionContext,
    ) -> Result<Arc<CachedRewrite>, RewriteError> {
        match self.lookup_or_job(sql, session) {
            Ok(hit) => Ok(hit),
            Err(job) => job.run(),
        }
    }

    /// A cache hit, or the job that rewrites the miss.
    fn lookup_or_job(
        &self,
        sql: &str,
        session: &SessionContext,
    ) -> Result<Arc<CachedRewrite>, Box<MissJob>> {
        let generation = self.current.load_full();
        let miss = match self.lookup(&generation, sql, session) {
            Ok(hit) => return Ok(hit),
            Err(miss) => miss,
        };
        Err(Box::new(MissJob {
            metrics: self.metrics.clone(),
            generation,
            sql: sql.to_string(),
            session: session.clone(),
            miss,
        }))
    }

    /// The cheap part, run where the caller is: the precheck and the cache.
    /// Statements too long to cache are not even scanned here (the job
    /// does the precheck). `Err`: a miss, and what it needs done.
    fn lookup(
        &self,
        generation: &Generation,
        sql: &str,
        session: &SessionContext,
    ) -> Result<Arc<CachedRewrite>, Miss> {
        if sql.len() > cache::MAX_CACHED_BYTES {
            // Not looked up: count it here.
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return Err(Miss::Plain);
        }
        if !crate::rewrite::may_need_rewrite(sql, &generation.snapshot) {
            return Ok(unchanged());
        }
        match generation.cache.lookup(session, sql, &self.stats) {
            Lookup::Hit(hit) => Ok(hit),
            Lookup::Miss(miss) => Err(miss),
        }
    }

    /// The cache's counters, for `/metrics`.
    pub fn cache_metrics(&self) -> crate::metrics::CacheCounts {
        let (exact_hits, normalized_hits, misses) = self.stats.snapshot();
        crate::metrics::CacheCounts {
            exact_hits,
            normalized_hits,
            misses,
        }
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

fn unchanged() -> Arc<CachedRewrite> {
    Arc::new(CachedRewrite {
        sql: None,
        plans: Vec::new(),
    })
}

/// A cache miss to rewrite, owning what it needs (it runs on a parser
/// thread).
struct MissJob {
    metrics: Arc<Metrics>,
    generation: Arc<Generation>,
    sql: String,
    session: SessionContext,
    miss: Miss,
}

impl MissJob {
    /// Rewrites the statement (or its shape: one rewrite per miss) and
    /// fills the cache.
    fn run(self) -> Result<Arc<CachedRewrite>, RewriteError> {
        let MissJob {
            metrics,
            generation,
            sql,
            session,
            miss,
        } = self;
        let started = std::time::Instant::now();
        let snapshot = &generation.snapshot;
        let rewrite_text: cache::RewriteText<'_> = &|text| rewrite(text, snapshot, &session);
        let result = generation.cache.fill(&session, &sql, miss, rewrite_text);
        metrics.rewrite_seconds.observe(started.elapsed());
        result
    }
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
        match Protection::new("db".into(), snapshot, &Config::default()) {
            Ok(p) => p,
            Err(e) => panic!("parser threads: {e}"),
        }
    }

    fn through_cache(
        p: &Protection,
        sql: &str,
        s: &SessionContext,
    ) -> Result<Option<String>, String> {
        p.rewrite(sql, s)
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
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(t) => Some(t),
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
        let expected = |id: u32| {
            Ok(Some(format!(
                "SELECT name FROM projects WHERE (id = {id}) AND projects.deleted_at IS NULL"
            )))
        };
        // The first is rewritten itself, the second builds the template
        // (and is answered by it), the third is a normalized hit.
        for id in 1..=3 {
            let sql = format!("SELECT name FROM projects WHERE id = {id}");
            assert_eq!(through_cache(&p, &sql, &s), expected(id), "{sql}");
        }
        assert_eq!(p.cache_counts(), (0, 1, 2));
    }

    /// Through the real rewriter: a context that differs from a cached one
    /// in one field gets what the rewriter gives for that context, not the
    /// cached entry (the key test is in `cache`).
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
                actor: Some("alice".into()),
                ..normal.clone()
            },
            SessionContext {
                role: Role::Bypass {
                    visibility: Visibility::All,
                },
                hard_delete: true,
                ..normal.clone()
            },
            SessionContext {
                temp_relations: vec!["projects".into()],
                ..normal.clone()
            },
            SessionContext {
                search_path_unknown: true,
                ..normal.clone()
            },
            SessionContext {
                limits: crate::rewrite::Limits {
                    max_statement_bytes: 10,
                },
                ..normal.clone()
            },
        ];
        let statements = [
            "SELECT name FROM projects WHERE id = 1",
            "SELECT name FROM projects WHERE id = 2",
            "SELECT name FROM projects WHERE id = $1",
            "DELETE FROM projects WHERE id = $1",
        ];
        let p = protection();
        let fresh = |sql: &str, s: &SessionContext| {
            crate::rewrite::rewrite(sql, &p.current().snapshot, s)
                .map(|r| match r.sql {
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(t) => Some(t),
                })
                .map_err(|e| e.sqlstate().to_string())
        };
        let mut differ = 0;
        for sql in statements {
            let _ = through_cache(&p, sql, &normal);
        }
        for v in &variants {
            for sql in statements {
                let got = through_cache(&p, sql, v);
                assert_eq!(got, fresh(sql, v), "{sql} {v:?}");
                if got != fresh(sql, &normal) {
                    differ += 1;
                }
            }
        }
        // The variants really are decided differently (the test can fail).
        assert!(differ >= 10, "{differ}");
    }
}
