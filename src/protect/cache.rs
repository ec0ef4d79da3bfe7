//! The rewrite cache: a statement already seen is not parsed again, and
//! simple-protocol statements that differ only in their literals (as pgbench
//! and many applications send them) share one entry.
//!
//! Literal normalization: the statement's constants, found by PostgreSQL's
//! own scanner, are replaced by `$n` placeholders numbered after its own
//! parameters; the *normalized* text is rewritten once, and each later
//! statement of the same shape gets the cached template with its own
//! literals spliced back at the recorded places. A template is used only
//! if splicing a statement's literals into it gives exactly what rewriting
//! that statement directly gave.
//!
//! One rewrite per miss. The first statement of a new shape is rewritten
//! directly (that answers it) and leaves a *pending* shape: its rewrite and
//! its literals. The second statement of the shape rewrites the normalized
//! text instead of itself; if the first statement's literals spliced into
//! that template give exactly the first statement's rewrite, the template is
//! kept and answers the second statement too; if not, the shape is marked
//! *unshared* and the second statement is rewritten directly (two rewrites,
//! once per shape), as is every later statement of that shape (one rewrite
//! each, cached by exact text).
//!
//! The key ([`KeyOf`]) is a derived `Hash`/`Eq` value over everything the
//! rewrite reads besides the schema snapshot (each snapshot has a cache of
//! its own): the statement's text (or its shape) and every field of
//! [`SessionContext`], taken apart exhaustively, so a field added to the
//! context does not compile here until it is in the key.
//!
//! Concurrent and bounded: a [`quick_cache`] sync cache of at most
//! `capacity` entries (sharded, each shard behind its own read-write lock:
//! a lookup takes one shard's read lock, never a global lock); its eviction
//! (CLOCK-Pro-like, scan-resistant) keeps hot statements when a stream of
//! one-off statements passes through. Statements longer than
//! [`MAX_CACHED_BYTES`] are never cached.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::Equivalent;
use quick_cache::sync::Cache;

use crate::rewrite::parse::{Constants, constants};
use crate::rewrite::{
    Limits, RewriteError, Rewritten, Role, SessionContext, StatementPlan, Visibility,
};

/// Statements longer than this are rewritten every time.
pub const MAX_CACHED_BYTES: usize = 32 * 1024;

/// What a rewrite produced, shareable across sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRewrite {
    /// `None`: send the statement as the client wrote it.
    pub sql: Option<String>,
    pub plans: Vec<StatementPlan>,
}

/// The cache key, generic over how its strings are held: owned in the
/// cache ([`Key`]), borrowed from the session and the statement for a
/// lookup ([`KeyRef`], no allocation). Both instances derive `Hash` from
/// this one definition, and `Box<str>`/`&str` and `Box<[String]>`/
/// `&[String]` hash alike, so equal keys hash alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyOf<Text, List> {
    session: SessionKey<Text, List>,
    statement: StatementKey<Text>,
}

/// Everything of [`SessionContext`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SessionKey<Text, List> {
    role: RoleKey,
    user: Text,
    search_path: List,
    actor: Option<Text>,
    max_statement_bytes: usize,
    hard_delete: bool,
    search_path_unknown: bool,
    search_path_provisional: bool,
    temp_relations: List,
}

/// [`Role`] and [`Visibility`] (which do not implement `Hash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RoleKey {
    Normal,
    Bypass(VisibilityKey),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum VisibilityKey {
    Active,
    Deleted,
    All,
    Setting,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum StatementKey<Text> {
    /// The exact text.
    Exact(Text),
    /// A literal-normalized shape. `base` is the statement's own highest
    /// `$n` (placeholders are numbered after it), so `id = 3 LIMIT 21` (no
    /// parameters) and `id = $1 LIMIT 21` (one) never share an entry
    /// although both normalize to `id = $1 LIMIT $2`.
    Shape { base: u32, text: Text },
}

/// The key as the cache holds it.
type Key = KeyOf<Box<str>, Box<[String]>>;
/// The key of a lookup, borrowed.
type KeyRef<'a> = KeyOf<&'a str, &'a [String]>;

impl<'a> KeyRef<'a> {
    fn new(session: &'a SessionContext, statement: StatementKey<&'a str>) -> KeyRef<'a> {
        // Exhaustive on purpose: a new field is a compile error here.
        let SessionContext {
            role,
            user,
            search_path,
            actor,
            limits: Limits {
                max_statement_bytes,
            },
            hard_delete,
            search_path_unknown,
            search_path_provisional,
            temp_relations,
        } = session;
        KeyOf {
            session: SessionKey {
                role: role_key(*role),
                user,
                search_path,
                actor: actor.as_deref(),
                max_statement_bytes: *max_statement_bytes,
                hard_delete: *hard_delete,
                search_path_unknown: *search_path_unknown,
                search_path_provisional: *search_path_provisional,
                temp_relations,
            },
            statement,
        }
    }

    fn exact(session: &'a SessionContext, sql: &'a str) -> KeyRef<'a> {
        KeyRef::new(session, StatementKey::Exact(sql))
    }

    fn shape(session: &'a SessionContext, normalized: &'a Normalized) -> KeyRef<'a> {
        KeyRef::new(
            session,
            StatementKey::Shape {
                base: normalized.base,
                text: &normalized.text,
            },
        )
    }

    fn to_owned(&self) -> Key {
        let s = &self.session;
        KeyOf {
            session: SessionKey {
                role: s.role,
                user: s.user.into(),
                search_path: s.search_path.into(),
                actor: s.actor.map(Into::into),
                max_statement_bytes: s.max_statement_bytes,
                hard_delete: s.hard_delete,
                search_path_unknown: s.search_path_unknown,
                search_path_provisional: s.search_path_provisional,
                temp_relations: s.temp_relations.into(),
            },
            statement: match self.statement {
                StatementKey::Exact(t) => StatementKey::Exact(t.into()),
                StatementKey::Shape { base, text } => StatementKey::Shape {
                    base,
                    text: text.into(),
                },
            },
        }
    }
}

impl Key {
    fn as_ref(&self) -> KeyRef<'_> {
        let s = &self.session;
        KeyOf {
            session: SessionKey {
                role: s.role,
                user: &s.user,
                search_path: &s.search_path,
                actor: s.actor.as_deref(),
                max_statement_bytes: s.max_statement_bytes,
                hard_delete: s.hard_delete,
                search_path_unknown: s.search_path_unknown,
                search_path_provisional: s.search_path_provisional,
                temp_relations: &s.temp_relations,
            },
            statement: match &self.statement {
                StatementKey::Exact(t) => StatementKey::Exact(t),
                StatementKey::Shape { base, text } => StatementKey::Shape { base: *base, text },
            },
        }
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self == key.as_ref()
    }
}

fn role_key(role: Role) -> RoleKey {
    match role {
        Role::Normal => RoleKey::Normal,
        Role::Bypass { visibility } => RoleKey::Bypass(match visibility {
            Visibility::Active => VisibilityKey::Active,
            Visibility::Deleted => VisibilityKey::Deleted,
            Visibility::All => VisibilityKey::All,
            Visibility::Setting => VisibilityKey::Setting,
        }),
    }
}

#[derive(Debug, Clone)]
enum Entry {
    /// The exact text's rewrite.
    Exact(Arc<CachedRewrite>),
    /// A shape seen once, waiting for a second statement to build and
    /// check its template.
    Pending(Arc<Pending>),
    /// A shape's checked template.
    Template(Arc<Template>),
    /// A shape whose statements are cached by their exact text only.
    Unshared,
}

/// The first statement of a shape: what rewriting it gave, and its literals.
#[derive(Debug)]
pub struct Pending {
    direct: Arc<CachedRewrite>,
    literals: Vec<Box<str>>,
}

/// A normalized shape's rewrite with holes for literals.
#[derive(Debug)]
struct Template {
    text: String,
    /// (start, end, literal index) of each placeholder in `text`.
    holes: Vec<(usize, usize, usize)>,
    unchanged: bool,
    plans: Vec<StatementPlan>,
}

impl Template {
    /// The template with `literals` at its holes; `None` if a hole names
    /// a literal that is not there.
    fn fill<S: AsRef<str>>(&self, literals: &[S]) -> Option<CachedRewrite> {
        let sql = match self.unchanged {
            true => None,
            false => Some(splice(&self.text, &self.holes, literals)?),
        };
        Some(CachedRewrite {
            sql,
            plans: self.plans.clone(),
        })
    }
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
    /// `None`: caching disabled (capacity 0).
    entries: Option<Cache<Key, Entry>>,
}

/// The result of a lookup.
pub enum Lookup {
    Hit(Arc<CachedRewrite>),
    Miss(Miss),
}

/// What a miss needs done; hand it to [`RewriteCache::fill`].
pub enum Miss {
    /// Rewrite the statement; cache it by its exact text (if cacheable).
    Plain,
    /// The first statement of a shape: rewrite it, remember the shape.
    NewShape(Normalized),
    /// The second statement of a shape: rewrite the shape, check it
    /// against the first statement's rewrite.
    SecondOfShape(Normalized, Arc<Pending>),
}

/// A statement with its literals replaced by placeholders.
pub struct Normalized {
    pub text: String,
    constants: Constants,
    /// The statement's own highest `$n`.
    base: u32,
}

/// Rewrites one text: the statement, or a normalized shape.
pub type RewriteText<'f> = &'f dyn for<'s> Fn(&'s str) -> Result<Rewritten<'s>, RewriteError>;

impl RewriteCache {
    pub fn new(capacity: usize) -> RewriteCache {
        RewriteCache {
            entries: (capacity > 0).then(|| Cache::new(capacity)),
        }
    }

    /// Looks `sql` up, first as it is, then by its normalized shape.
    pub fn lookup(&self, session: &SessionContext, sql: &str, stats: &CacheStats) -> Lookup {
        let miss = |m: Miss| {
            stats.misses.fetch_add(1, Ordering::Relaxed);
            Lookup::Miss(m)
        };
        let Some(entries) = &self.entries else {
            return miss(Miss::Plain);
        };
        if sql.len() > MAX_CACHED_BYTES {
            return miss(Miss::Plain);
        }
        if let Some(Entry::Exact(hit)) = entries.get(&KeyRef::exact(session, sql)) {
            stats.exact_hits.fetch_add(1, Ordering::Relaxed);
            return Lookup::Hit(hit);
        }
        let Some(normalized) = normalize(sql) else {
            return miss(Miss::Plain);
        };
        match entries.get(&KeyRef::shape(session, &normalized)) {
            Some(Entry::Template(t)) => {
                match literal_texts(sql, &normalized.constants).and_then(|l| t.fill(&l)) {
                    Some(hit) => {
                        stats.normalized_hits.fetch_add(1, Ordering::Relaxed);
                        Lookup::Hit(Arc::new(hit))
                    }
                    None => miss(Miss::Plain),
                }
            }
            Some(Entry::Pending(p)) => miss(Miss::SecondOfShape(normalized, p)),
            Some(Entry::Unshared) => miss(Miss::Plain),
            Some(Entry::Exact(_)) | None => miss(Miss::NewShape(normalized)),
        }
    }

    /// Answers a miss with one call of `rewrite` (two, once per shape, when
    /// a shape's template does not check) and fills the cache.
    pub fn fill(
        &self,
        session: &SessionContext,
        sql: &str,
        miss: Miss,
        rewrite: RewriteText<'_>,
    ) -> Result<Arc<CachedRewrite>, RewriteError> {
        let new_shape = match miss {
            Miss::Plain => None,
            Miss::NewShape(normalized) => Some(normalized),
            Miss::SecondOfShape(normalized, pending) => {
                let template = rewrite(&normalized.text)
                    .ok()
                    .and_then(|shape| checked_template(&normalized, shape, &pending));
                let answer = template.as_ref().and_then(|t| {
                    literal_texts(sql, &normalized.constants).and_then(|l| t.fill(&l))
                });
                let entry = match template {
                    Some(t) => Entry::Template(Arc::new(t)),
                    None => Entry::Unshared,
                };
                self.put(KeyRef::shape(session, &normalized), entry);
                if let Some(answer) = answer {
                    return Ok(Arc::new(answer));
                }
                None
            }
        };
        let direct = rewrite(sql)?;
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
        if sql.len() <= MAX_CACHED_BYTES {
            self.put(KeyRef::exact(session, sql), Entry::Exact(direct.clone()));
        }
        if let Some(normalized) = new_shape {
            let entry = match literal_texts(sql, &normalized.constants) {
                Some(literals) if shareable => Entry::Pending(Arc::new(Pending {
                    direct: direct.clone(),
                    literals: literals.into_iter().map(Into::into).collect(),
                })),
                _ => Entry::Unshared,
            };
            self.put(KeyRef::shape(session, &normalized), entry);
        }
        Ok(direct)
    }

    fn put(&self, key: KeyRef<'_>, entry: Entry) {
        if let Some(entries) = &self.entries {
            entries.insert(key.to_owned(), entry);
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map(Cache::len).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The template a shape's rewrite gives, if it may be shared: the shape's
/// rewrite read no literal, its plans are the first statement's, and the
/// first statement's literals spliced into it give exactly the first
/// statement's rewrite.
fn checked_template(
    normalized: &Normalized,
    shape: Rewritten<'_>,
    pending: &Pending,
) -> Option<Template> {
    if shape.reads_literals || shape.statements != pending.direct.plans {
        return None;
    }
    let template = match shape.sql {
        Cow::Borrowed(_) => Template {
            text: String::new(),
            holes: Vec::new(),
            unchanged: true,
            plans: shape.statements,
        },
        Cow::Owned(text) => {
            let found = constants(&text).ok()?;
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
                return None;
            }
            // The scanner gives them in order, so `splice` can walk them.
            debug_assert!(holes.windows(2).all(|w| w[0].1 <= w[1].0));
            Template {
                text,
                holes,
                unchanged: false,
                plans: shape.statements,
            }
        }
    };
    match template.fill(&pending.literals) {
        Some(check) if check == *pending.direct => Some(template),
        _ => None,
    }
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
        // `N$1`), the template check refuses the shape.
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

/// The text of each of `sql`'s literals, in order.
fn literal_texts<'s>(sql: &'s str, found: &Constants) -> Option<Vec<&'s str>> {
    found
        .literals
        .iter()
        .map(|&(start, end)| sql.get(start..end))
        .collect()
}

/// The template with the literals at its holes (in text order); `None` if
/// a hole names a literal that is not there or the holes are out of order.
fn splice<S: AsRef<str>>(
    template: &str,
    holes: &[(usize, usize, usize)],
    literals: &[S],
) -> Option<String> {
    let extra: usize = literals.iter().map(|l| l.as_ref().len()).sum();
    let mut out = String::with_capacity(template.len() + extra);
    let mut at = 0;
    for &(start, end, index) in holes {
        out.push_str(template.get(at..start)?);
        out.push_str(literals.get(index)?.as_ref());
        at = end;
    }
    out.push_str(template.get(at..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::rewrite::{ReplyPlan, Role, Visibility};

    fn owned(sql: String) -> Result<Rewritten<'static>, RewriteError> {
        Ok(Rewritten {
            sql: Cow::Owned(sql),
            statements: Vec::new(),
            reads_literals: false,
        })
    }

    /// A pretend rewriter that adds a predicate repeating the statement's
    /// last word (`id = 1` → `… AND live AND id2 = 1`), recording each text
    /// it is given.
    struct Pretend {
        calls: RefCell<Vec<String>>,
    }

    impl Pretend {
        fn new() -> Pretend {
            Pretend {
                calls: RefCell::new(Vec::new()),
            }
        }

        fn rewrite<'s>(&self, s: &'s str) -> Result<Rewritten<'s>, RewriteError> {
            self.calls.borrow_mut().push(s.to_string());
            let last = s.rsplit(' ').next().unwrap_or("");
            owned(format!("{s} AND live AND id2 = {last}"))
        }

        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.calls.borrow_mut())
        }
    }

    /// Looks up and, on a miss, fills: what a session's statement gets.
    fn through(
        cache: &RewriteCache,
        s: &SessionContext,
        sql: &str,
        stats: &CacheStats,
        rewrite: RewriteText<'_>,
    ) -> Result<Option<String>, RewriteError> {
        match cache.lookup(s, sql, stats) {
            Lookup::Hit(hit) => Ok(hit.sql.clone()),
            Lookup::Miss(miss) => cache.fill(s, sql, miss, rewrite).map(|r| r.sql.clone()),
        }
    }

    fn session() -> SessionContext {
        SessionContext::normal("app")
    }

    #[test]
    fn normalizes_literals_after_existing_parameters() {
        let n = normalize("SELECT * FROM t WHERE a = $1 AND b = 'x' AND c = 3").unwrap();
        assert_eq!(n.text, "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3");
        assert!(normalize("SELECT * FROM t WHERE a = $1").is_none());
    }

    #[test]
    fn one_rewrite_per_miss_and_the_second_statement_builds_the_template() {
        let cache = RewriteCache::new(100);
        let stats = CacheStats::default();
        let p = Pretend::new();
        let rw: RewriteText<'_> = &|s| p.rewrite(s);
        let s = session();
        let first = "SELECT * FROM t WHERE id = 1";
        assert_eq!(
            through(&cache, &s, first, &stats, rw)
                .ok()
                .flatten()
                .as_deref(),
            Some("SELECT * FROM t WHERE id = 1 AND live AND id2 = 1")
        );
        assert_eq!(p.take(), [first]);
        // Again: an exact hit.
        assert!(matches!(cache.lookup(&s, first, &stats), Lookup::Hit(_)));
        // The second statement of the shape: one rewrite, of the shape.
        assert_eq!(
            through(&cache, &s, "SELECT * FROM t WHERE id = 42", &stats, rw)
                .ok()
                .flatten()
                .as_deref(),
            Some("SELECT * FROM t WHERE id = 42 AND live AND id2 = 42")
        );
        assert_eq!(p.take(), ["SELECT * FROM t WHERE id = $1"]);
        // Every later one: a normalized hit, no rewrite.
        assert_eq!(
            through(&cache, &s, "SELECT * FROM t WHERE id = 'x'", &stats, rw)
                .ok()
                .flatten()
                .as_deref(),
            Some("SELECT * FROM t WHERE id = 'x' AND live AND id2 = 'x'")
        );
        assert!(p.take().is_empty());
        assert_eq!(stats.snapshot(), (1, 1, 2));
    }

    #[test]
    fn a_template_that_does_not_reproduce_the_first_rewrite_is_never_used() {
        let cache = RewriteCache::new(100);
        let stats = CacheStats::default();
        let calls = RefCell::new(Vec::new());
        // Rewrites a placeholder differently from a literal.
        let rw: RewriteText<'_> = &|s| {
            calls.borrow_mut().push(s.to_string());
            match s.contains('$') {
                true => owned(format!("{s} FROM other")),
                false => owned(format!("{s} FROM live")),
            }
        };
        let s = session();
        assert_eq!(
            through(&cache, &s, "SELECT 'a'", &stats, rw)
                .ok()
                .flatten()
                .as_deref(),
            Some("SELECT 'a' FROM live")
        );
        // The second statement: the shape is tried once, refused, and the
        // statement rewritten directly.
        assert_eq!(
            through(&cache, &s, "SELECT 'b'", &stats, rw)
                .ok()
                .flatten()
                .as_deref(),
            Some("SELECT 'b' FROM live")
        );
        assert_eq!(*calls.borrow(), ["SELECT 'a'", "SELECT $1", "SELECT 'b'"]);
        // Later ones: one rewrite each, never the shape again.
        calls.borrow_mut().clear();
        assert_eq!(
            through(&cache, &s, "SELECT 'c'", &stats, rw)
                .ok()
                .flatten()
                .as_deref(),
            Some("SELECT 'c' FROM live")
        );
        assert_eq!(*calls.borrow(), ["SELECT 'c'"]);
        assert_eq!(stats.snapshot().1, 0);
    }

    #[test]
    fn plans_that_differ_refuse_the_template() {
        let cache = RewriteCache::new(100);
        let stats = CacheStats::default();
        let rw: RewriteText<'_> = &|s| {
            Ok(Rewritten {
                sql: Cow::Owned(format!("{s} AND live")),
                statements: match s.contains('$') {
                    true => vec![StatementPlan {
                        reply: ReplyPlan::RenameTag {
                            from: "UPDATE",
                            to: "DELETE",
                        },
                        ..StatementPlan::default()
                    }],
                    false => Vec::new(),
                },
                reads_literals: false,
            })
        };
        let s = session();
        let _ = through(&cache, &s, "DELETE FROM t WHERE id = 1", &stats, rw);
        let _ = through(&cache, &s, "DELETE FROM t WHERE id = 2", &stats, rw);
        match cache.lookup(&s, "DELETE FROM t WHERE id = 3", &stats) {
            Lookup::Miss(Miss::Plain) => {}
            _ => panic!("the shape should be unshared"),
        }
    }

    #[test]
    fn a_decision_that_read_a_literal_is_cached_for_its_exact_text_only() {
        let cache = RewriteCache::new(100);
        let stats = CacheStats::default();
        let calls = RefCell::new(Vec::new());
        let rw: RewriteText<'_> = &|s| {
            calls.borrow_mut().push(s.to_string());
            Ok(Rewritten {
                sql: Cow::Borrowed(s),
                statements: Vec::new(),
                reads_literals: true,
            })
        };
        let s = session();
        for body in ["'BEGIN NULL; END'", "'BEGIN DELETE FROM t; END'", "'x'"] {
            let sql = format!("DO {body}");
            assert_eq!(through(&cache, &s, &sql, &stats, rw).ok(), Some(None));
        }
        // Each statement was rewritten itself, the shape never.
        assert_eq!(calls.borrow().len(), 3);
        assert!(calls.borrow().iter().all(|c| !c.contains('$')));
        assert!(matches!(
            cache.lookup(&s, "DO 'BEGIN NULL; END'", &stats),
            Lookup::Hit(_)
        ));
    }

    #[test]
    fn refusals_are_not_cached() {
        let cache = RewriteCache::new(100);
        let stats = CacheStats::default();
        let rw: RewriteText<'_> = &|_| Err(RewriteError::Unsupported { what: "x".into() });
        let s = session();
        assert!(through(&cache, &s, "DELETE FROM t", &stats, rw).is_err());
        assert!(through(&cache, &s, "DELETE FROM t WHERE id = 1", &stats, rw).is_err());
        assert!(cache.is_empty());
    }

    /// Contexts that differ from `SessionContext::normal("app")` in exactly
    /// one field, each field (and each role and visibility) at least once.
    fn one_field_changed() -> Vec<(&'static str, SessionContext)> {
        let normal = session();
        let with = |name, f: &dyn Fn(&mut SessionContext)| {
            let mut s = normal.clone();
            f(&mut s);
            assert_ne!(s, normal, "{name}");
            (name, s)
        };
        let bypass = |v| Role::Bypass { visibility: v };
        vec![
            with("role active", &|s| s.role = bypass(Visibility::Active)),
            with("role deleted", &|s| s.role = bypass(Visibility::Deleted)),
            with("role all", &|s| s.role = bypass(Visibility::All)),
            with("role setting", &|s| s.role = bypass(Visibility::Setting)),
            with("user", &|s| s.user = "other".into()),
            with("search_path", &|s| s.search_path = vec!["billing".into()]),
            with("search_path one entry", &|s| {
                s.search_path = vec!["a,b".into()]
            }),
            with("search_path two entries", &|s| {
                s.search_path = vec!["a".into(), "b".into()]
            }),
            with("actor", &|s| s.actor = Some("alice".into())),
            with("actor empty", &|s| s.actor = Some(String::new())),
            with("limits", &|s| s.limits.max_statement_bytes = 10),
            with("hard_delete", &|s| s.hard_delete = true),
            with("search_path_unknown", &|s| s.search_path_unknown = true),
            with("search_path_provisional", &|s| {
                s.search_path_provisional = true
            }),
            with("temp_relations", &|s| {
                s.temp_relations = vec!["tasks".into()]
            }),
        ]
    }

    #[test]
    fn contexts_that_differ_in_any_one_field_never_share_an_entry() {
        let cache = RewriteCache::new(1000);
        let stats = CacheStats::default();
        let mut contexts = one_field_changed();
        contexts.push(("normal", session()));
        let exact = "SELECT * FROM t WHERE id = $1";
        let first = "SELECT * FROM t WHERE id = 1";
        let second = "SELECT * FROM t WHERE id = 2";
        // Each context's entries say which context made them.
        for (name, s) in &contexts {
            let rw: RewriteText<'_> = &|sql| owned(format!("{sql} /* {name} */"));
            for sql in [exact, first, second] {
                let _ = through(&cache, s, sql, &stats, rw);
            }
        }
        let no_rewrite: RewriteText<'_> = &|_| {
            Err(RewriteError::Unsupported {
                what: "a miss".into(),
            })
        };
        for (name, s) in &contexts {
            // An equal context built anew finds its own entries, exact and
            // by shape, and nobody else's.
            let again = s.clone();
            assert_eq!(
                through(&cache, &again, exact, &stats, no_rewrite)
                    .ok()
                    .flatten(),
                Some(format!("{exact} /* {name} */")),
                "{name}"
            );
            let third = "SELECT * FROM t WHERE id = 3";
            assert_eq!(
                through(&cache, &again, third, &stats, no_rewrite)
                    .ok()
                    .flatten(),
                Some(format!("{third} /* {name} */")),
                "{name}"
            );
        }
        // And a context no entry was made for finds nothing.
        let mut unseen = session();
        unseen.user = "nobody".into();
        assert!(matches!(
            cache.lookup(&unseen, exact, &stats),
            Lookup::Miss(Miss::Plain)
        ));
        assert!(matches!(
            cache.lookup(&unseen, first, &stats),
            Lookup::Miss(Miss::NewShape(_))
        ));
    }

    #[test]
    fn borrowed_and_owned_keys_hash_alike() {
        use std::hash::BuildHasher;
        let hasher = std::collections::hash_map::RandomState::new();
        let mut contexts = one_field_changed();
        contexts.push(("normal", session()));
        for (name, s) in &contexts {
            let n = normalize("SELECT 1").unwrap();
            for key in [KeyRef::exact(s, "SELECT 1"), KeyRef::shape(s, &n)] {
                let owned = key.to_owned();
                assert_eq!(hasher.hash_one(&key), hasher.hash_one(&owned), "{name}");
                assert!(key.equivalent(&owned), "{name}");
            }
        }
        let (a, b) = (&contexts[0].1, &contexts[1].1);
        assert!(!KeyRef::exact(a, "x").equivalent(&KeyRef::exact(b, "x").to_owned()));
    }

    #[test]
    fn literal_and_parameter_in_the_same_place_never_share_an_entry() {
        let cache = RewriteCache::new(10);
        let stats = CacheStats::default();
        let p = Pretend::new();
        let rw: RewriteText<'_> = &|s| p.rewrite(s);
        let s = session();
        let _ = through(
            &cache,
            &s,
            "SELECT id FROM projects WHERE id = 3 LIMIT 21",
            &stats,
            rw,
        );
        let _ = through(
            &cache,
            &s,
            "SELECT id FROM projects WHERE id = 4 LIMIT 22",
            &stats,
            rw,
        );
        p.take();
        // Same normalized text, but `$1` is the client's parameter here.
        match cache.lookup(&s, "SELECT id FROM projects WHERE id = $1 LIMIT 21", &stats) {
            Lookup::Miss(_) => {}
            Lookup::Hit(h) => panic!("a parameterized statement hit a literal template: {h:?}"),
        }
        match cache.lookup(&s, "SELECT id FROM projects WHERE id = 5 LIMIT 5", &stats) {
            Lookup::Hit(h) => assert_eq!(
                h.sql.as_deref(),
                Some("SELECT id FROM projects WHERE id = 5 LIMIT 5 AND live AND id2 = 5")
            ),
            Lookup::Miss(_) => panic!("expected a normalized hit"),
        }
    }

    #[test]
    fn bounded_and_disabled() {
        let capacity = 64;
        let cache = RewriteCache::new(capacity);
        let s = session();
        let stats = CacheStats::default();
        let rw: RewriteText<'_> = &|sql| owned(format!("{sql} AND live"));
        for i in 0..10 * capacity {
            let _ = through(&cache, &s, &format!("SELECT {i} FROM $1"), &stats, rw);
            assert!(cache.len() <= capacity, "{} entries", cache.len());
        }
        // The latest is there.
        let last = format!("SELECT {} FROM $1", 10 * capacity - 1);
        assert!(matches!(cache.lookup(&s, &last, &stats), Lookup::Hit(_)));
        let disabled = RewriteCache::new(0);
        let _ = through(&disabled, &s, "SELECT 1 FROM $1", &stats, rw);
        assert!(disabled.is_empty());
    }

    #[test]
    fn oversized_statements_are_not_cached() {
        let cache = RewriteCache::new(10);
        let stats = CacheStats::default();
        let big = format!("SELECT '{}'", "x".repeat(MAX_CACHED_BYTES));
        let rw: RewriteText<'_> = &|sql| owned(format!("{sql} AND live"));
        assert!(through(&cache, &session(), &big, &stats, rw).is_ok());
        assert!(cache.is_empty());
    }
}
