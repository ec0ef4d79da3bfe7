//! The rewrite cache: a statement already seen is not parsed again, and
//! simple-protocol statements that differ only in their literals (as pgbench
//! and many applications send them) share one entry.
//!
//! Literal normalization: the statement's constants, found by PostgreSQL's
//! own scanner, are replaced by `$n` placeholders numbered after its own
//! parameters; the *normalized* text is rewritten once, and each later
//! statement of the same shape gets the cached template with its own
//! literals spliced back at the recorded places. A template is cached only
//! if splicing the first statement's literals gives exactly what rewriting
//! that statement directly gives; otherwise the exact text is cached.
//!
//! Bounded: an LRU of at most `capacity` entries, statements longer than
//! [`MAX_CACHED_BYTES`] are never cached.

use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use crate::rewrite::StatementPlan;
use crate::rewrite::parse::{Constants, constants};

/// Statements longer than this are rewritten every time.
pub const MAX_CACHED_BYTES: usize = 32 * 1024;

/// What a rewrite produced, shareable across sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRewrite {
    /// `None`: send the statement as the client wrote it.
    pub sql: Option<String>,
    pub plans: Vec<StatementPlan>,
}

#[derive(Debug)]
enum Entry {
    /// The exact text's rewrite.
    Exact(Arc<CachedRewrite>),
    /// A normalized shape: the rewritten text with holes for literals.
    Template {
        text: String,
        /// (start, end, literal index) of each placeholder in `text`.
        holes: Vec<(usize, usize, usize)>,
        unchanged: bool,
        plans: Vec<StatementPlan>,
    },
}

/// Hit and miss counters.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub exact_hits: AtomicU64,
    pub normalized_hits: AtomicU64,
    pub misses: AtomicU64,
}

impl CacheStats {
    /// (exact hits, normalized hits, misses).
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.exact_hits.load(Ordering::Relaxed),
            self.normalized_hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// The cache for one schema snapshot (a new snapshot starts empty).
pub struct RewriteCache {
    lru: Option<Mutex<LruCache<String, Arc<Entry>>>>,
}

/// The result of a lookup.
pub enum Lookup {
    Hit(Arc<CachedRewrite>),
    /// Not cached; `normalized` is the shape to rewrite and fill, when the
    /// statement has literals and is small enough.
    Miss(Option<Normalized>),
}

/// A statement with its literals replaced by placeholders.
pub struct Normalized {
    pub text: String,
    constants: Constants,
    /// The statement's own highest `$n`: placeholders are numbered after
    /// it. Part of the cache key, so `id = 3 LIMIT 21` (no parameters) and
    /// `id = $1 LIMIT 21` (one parameter) never share an entry although
    /// both normalize to `id = $1 LIMIT $2`.
    base: u32,
}

impl Normalized {
    fn key(&self, context: &str) -> String {
        key(context, 'N', &format!("{}\u{0}{}", self.base, self.text))
    }
}

impl RewriteCache {
    pub fn new(capacity: usize) -> RewriteCache {
        RewriteCache {
            lru: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, LruCache<String, Arc<Entry>>>> {
        self.lru
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Looks `sql` up, first as it is, then by its normalized shape.
    pub fn lookup(&self, context: &str, sql: &str, stats: &CacheStats) -> Lookup {
        if self.lru.is_none() || sql.len() > MAX_CACHED_BYTES {
            stats.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss(None);
        }
        if let Some(Entry::Exact(hit)) = self
            .lock()
            .and_then(|mut l| l.get(&key(context, 'E', sql)).cloned())
            .as_deref()
        {
            stats.exact_hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Hit(hit.clone());
        }
        let Some(normalized) = normalize(sql) else {
            stats.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss(None);
        };
        let entry = self
            .lock()
            .and_then(|mut l| l.get(&normalized.key(context)).cloned());
        if let Some(entry) = entry
            && let Entry::Template {
                text,
                holes,
                unchanged,
                plans,
            } = entry.as_ref()
        {
            let spliced = match unchanged {
                true => Some(None),
                false => splice(text, holes, sql, &normalized.constants).map(Some),
            };
            if let Some(sql) = spliced {
                stats.normalized_hits.fetch_add(1, Ordering::Relaxed);
                return Lookup::Hit(Arc::new(CachedRewrite {
                    sql,
                    plans: plans.clone(),
                }));
            }
        }
        stats.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss(Some(normalized))
    }

    /// Caches the rewrite of the exact text.
    pub fn insert_exact(&self, context: &str, sql: &str, rewrite: Arc<CachedRewrite>) {
        if sql.len() <= MAX_CACHED_BYTES
            && let Some(mut lru) = self.lock()
        {
            lru.put(key(context, 'E', sql), Arc::new(Entry::Exact(rewrite)));
        }
    }

    /// Caches the rewrite of a normalized shape, if splicing `sql`'s own
    /// literals into it reproduces `direct` (the rewrite of `sql` itself).
    /// Returns whether it was cached.
    pub fn insert_template(
        &self,
        context: &str,
        sql: &str,
        normalized: &Normalized,
        shape_rewrite: (Cow<'_, str>, Vec<StatementPlan>),
        direct: &CachedRewrite,
    ) -> bool {
        let (text, plans) = shape_rewrite;
        if plans != direct.plans {
            return false;
        }
        let entry = match text {
            Cow::Borrowed(_) => {
                if direct.sql.is_some() {
                    return false;
                }
                Entry::Template {
                    text: String::new(),
                    holes: Vec::new(),
                    unchanged: true,
                    plans,
                }
            }
            Cow::Owned(text) => {
                let Ok(found) = constants(&text) else {
                    return false;
                };
                let holes: Vec<(usize, usize, usize)> = found
                    .params
                    .iter()
                    .filter(|(_, _, n)| *n > normalized.base)
                    .map(|&(s, e, n)| (s, e, (n - normalized.base - 1) as usize))
                    .collect();
                if holes
                    .iter()
                    .any(|h| h.2 >= normalized.constants.literals.len())
                {
                    return false;
                }
                let spliced = splice(&text, &holes, sql, &normalized.constants);
                if spliced.is_none() || direct.sql != spliced {
                    return false;
                }
                Entry::Template {
                    text,
                    holes,
                    unchanged: false,
                    plans,
                }
            }
        };
        match self.lock() {
            Some(mut lru) => {
                lru.put(normalized.key(context), Arc::new(entry));
                true
            }
            None => false,
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().map(|l| l.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn key(context: &str, kind: char, text: &str) -> String {
    let mut k = String::with_capacity(context.len() + text.len() + 2);
    k.push_str(context);
    k.push(kind);
    k.push('\u{0}');
    k.push_str(text);
    k
}

/// Replaces each literal by `$n`, numbered after the statement's own
/// parameters. `None` when it has no literals or cannot be scanned.
pub fn normalize(sql: &str) -> Option<Normalized> {
    let constants = constants(sql).ok()?;
    if constants.literals.is_empty() {
        return None;
    }
    let base = constants.params.iter().map(|p| p.2).max().unwrap_or(0);
    let mut text = String::with_capacity(sql.len());
    let mut at = 0;
    for (i, &(start, end)) in constants.literals.iter().enumerate() {
        text.push_str(sql.get(at..start)?);
        // `$` is no operator character, so `x=$1` still scans as `=`, `$1`.
        // Where a placeholder would merge with its neighbours (`N'x'` →
        // `N$1`), the template check in `insert_template` refuses it.
        text.push('$');
        text.push_str(&(base as usize + 1 + i).to_string());
        at = end;
    }
    text.push_str(sql.get(at..)?);
    Some(Normalized {
        text,
        constants,
        base,
    })
}

/// The template with `sql`'s literals at its holes; `None` if a hole names
/// a literal `sql` does not have.
fn splice(
    template: &str,
    holes: &[(usize, usize, usize)],
    sql: &str,
    found: &Constants,
) -> Option<String> {
    let mut sorted: Vec<&(usize, usize, usize)> = holes.iter().collect();
    sorted.sort_by_key(|h| h.0);
    let mut out = String::with_capacity(template.len() + sql.len() / 4);
    let mut at = 0;
    for &&(start, end, index) in &sorted {
        out.push_str(template.get(at..start)?);
        let &(ls, le) = found.literals.get(index)?;
        out.push_str(sql.get(ls..le)?);
        at = end;
    }
    out.push_str(template.get(at..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(sql: Option<&str>) -> CachedRewrite {
        CachedRewrite {
            sql: sql.map(str::to_string),
            plans: Vec::new(),
        }
    }

    #[test]
    fn normalizes_literals_after_existing_parameters() {
        let n = normalize("SELECT * FROM t WHERE a = $1 AND b = 'x' AND c = 3").unwrap();
        assert_eq!(n.text, "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3");
        assert!(normalize("SELECT * FROM t WHERE a = $1").is_none());
    }

    #[test]
    fn template_hit_splices_new_literals() {
        let cache = RewriteCache::new(10);
        let stats = CacheStats::default();
        let first = "SELECT * FROM t WHERE id = 1";
        let Lookup::Miss(Some(n)) = cache.lookup("c", first, &stats) else {
            panic!("expected a normalizable miss");
        };
        // A pretend rewrite that adds a predicate and repeats the literal.
        let shape: Cow<str> = Cow::Owned(format!("{} AND live AND id2 = $1", n.text));
        let direct_first = direct(Some("SELECT * FROM t WHERE id = 1 AND live AND id2 = 1"));
        assert!(cache.insert_template("c", first, &n, (shape, Vec::new()), &direct_first));
        match cache.lookup("c", "SELECT * FROM t WHERE id = 42", &stats) {
            Lookup::Hit(r) => assert_eq!(
                r.sql.as_deref(),
                Some("SELECT * FROM t WHERE id = 42 AND live AND id2 = 42")
            ),
            Lookup::Miss(_) => panic!("expected a normalized hit"),
        }
        assert_eq!(stats.snapshot(), (0, 1, 1));
        // Another context does not share the entry.
        assert!(matches!(
            cache.lookup("other", "SELECT * FROM t WHERE id = 42", &stats),
            Lookup::Miss(_)
        ));
    }

    #[test]
    fn template_that_does_not_reproduce_the_direct_rewrite_is_refused() {
        let cache = RewriteCache::new(10);
        let stats = CacheStats::default();
        let sql = "SELECT 'a'";
        let Lookup::Miss(Some(n)) = cache.lookup("c", sql, &stats) else {
            panic!()
        };
        let shape: Cow<str> = Cow::Owned("SELECT $1 FROM live".to_string());
        assert!(!cache.insert_template(
            "c",
            sql,
            &n,
            (shape, Vec::new()),
            &direct(Some("SELECT 'b' FROM live"))
        ));
        assert!(matches!(cache.lookup("c", sql, &stats), Lookup::Miss(_)));
    }

    #[test]
    fn exact_entries_and_capacity() {
        let cache = RewriteCache::new(2);
        let stats = CacheStats::default();
        for i in 0..3 {
            cache.insert_exact("c", &format!("SELECT {i} FROM $1"), Arc::new(direct(None)));
        }
        assert_eq!(cache.len(), 2);
        assert!(matches!(
            cache.lookup("c", "SELECT 2 FROM $1", &stats),
            Lookup::Hit(_)
        ));
        let disabled = RewriteCache::new(0);
        disabled.insert_exact("c", "x", Arc::new(direct(None)));
        assert!(disabled.is_empty());
    }

    #[test]
    fn literal_and_parameter_in_the_same_place_never_share_an_entry() {
        let cache = RewriteCache::new(10);
        let stats = CacheStats::default();
        let with_literals = "SELECT id FROM projects WHERE id = 3 LIMIT 21";
        let Lookup::Miss(Some(n)) = cache.lookup("c", with_literals, &stats) else {
            panic!()
        };
        let shape: Cow<str> = Cow::Owned(format!("{} AND live", n.text));
        let direct_first = direct(Some(
            "SELECT id FROM projects WHERE id = 3 LIMIT 21 AND live",
        ));
        assert!(cache.insert_template("c", with_literals, &n, (shape, Vec::new()), &direct_first));
        // Same normalized text, but `$1` is the client's parameter here.
        match cache.lookup(
            "c",
            "SELECT id FROM projects WHERE id = $1 LIMIT 21",
            &stats,
        ) {
            Lookup::Miss(_) => {}
            Lookup::Hit(h) => panic!("a parameterized statement hit a literal template: {h:?}"),
        }
        match cache.lookup("c", "SELECT id FROM projects WHERE id = 4 LIMIT 5", &stats) {
            Lookup::Hit(h) => assert_eq!(
                h.sql.as_deref(),
                Some("SELECT id FROM projects WHERE id = 4 LIMIT 5 AND live")
            ),
            Lookup::Miss(_) => panic!("expected a normalized hit"),
        }
    }

    #[test]
    fn oversized_statements_are_not_cached() {
        let cache = RewriteCache::new(10);
        let big = format!("SELECT '{}'", "x".repeat(MAX_CACHED_BYTES));
        cache.insert_exact("c", &big, Arc::new(direct(None)));
        assert!(cache.is_empty());
    }
}
