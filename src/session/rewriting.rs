//! The rewriting intercepts of a protected session: every statement goes
//! through the rewriter (via the cache), refusals become server-side errors,
//! and each statement's reply plan reaches the reply side in order.
//!
//! Refused statements are replaced by a call to `tombstone.refuse()`, so
//! the error comes from the server in its proper place in the reply stream
//! and aborts the client's transaction exactly as a real error would.
//!
//! `search_path` (docs/rewrite.md, "search_path"): the proxy does not model
//! how the server changes it (transactions, savepoints, errors, SET LOCAL,
//! set_config in expressions, DO blocks, procedures, SET ROLE). After any
//! statement that may change it, and at every ReadyForQuery of a
//! transaction that did, the session's value is *stale*; before the next
//! statement that needs names resolved, the proxy waits for the server to
//! answer everything sent so far and asks it (`current_schemas(true)`, the
//! effective path with `$user` expanded and `pg_temp` and `pg_catalog` where
//! they apply), swallowing the answer. When it cannot ask — mid-pipeline,
//! in a failed transaction, the question failed — the statement is rewritten
//! with the path *unknown*: names of protected tables without a schema are
//! refused.
//!
//! The same question lists the relations of the session's temporary schema
//! when it has one (`pg_temp` is searched first unless the path lists it):
//! an unqualified name of one of them is the session's own table, not the
//! protected one. Statements that may change which names it shadows count
//! as path changes (`rewrite::temp`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot, watch};

use super::intercept::{BackendIntercept, FrontendIntercept, Inbound, Outbound, Upstream};
use super::replies::{Expect, ReplyTracker, TagRename};
use crate::protect::Protection;
use crate::protect::cache::CachedRewrite;
use crate::rewrite::parse::constants;
use crate::rewrite::{ReplyPlan, RewriteError, SessionContext, StatementPlan, parse_search_path};
use crate::wire::extended::{self, Parse, Target};
use crate::wire::{Frame, WireError, tag};

/// Named portals remembered at most; beyond that the oldest are forgotten
/// (PostgreSQL drops portals at transaction end, the proxy cannot see that).
const MAX_PORTALS: usize = 4096;

/// The proxy's own question. One row with the schemas names are looked up
/// in, in order, each quoted as needed, joined with `, `, and the name of
/// the session's temporary schema (NULL while it has none); then one row
/// per relation of that schema (third column), none without one: the
/// condition on `pg_my_temp_schema()` is a one-time filter, so a session
/// without temporary objects does not scan `pg_class`.
pub const LEARN_SEARCH_PATH: &str = "SELECT pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.quote_ident(s) FROM pg_catalog.unnest(pg_catalog.current_schemas(true)) WITH ORDINALITY AS u(s, o) ORDER BY o), ', '), (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()), NULL::pg_catalog.name UNION ALL (SELECT NULL, NULL, c.relname FROM pg_catalog.pg_class c WHERE pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0::pg_catalog.oid AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() LIMIT 10001)";

/// Temporary relations a session keeps track of at most; with more, its
/// names are unknown (statements naming protected tables without a schema
/// are refused).
const MAX_TEMP_RELATIONS: usize = 10_000;

/// The answer to [`LEARN_SEARCH_PATH`].
#[derive(Debug, Default)]
pub struct Learned {
    /// The effective path, as `current_schemas(true)` lists it.
    path: Option<String>,
    /// The session's temporary schema (`pg_temp_N`), if it has one.
    temp_schema: Option<String>,
    /// Names of the relations in it.
    temp_names: Vec<String>,
}

impl Learned {
    /// The path for the rewriter (`pg_temp_N` as `pg_temp`) and the
    /// temporary relations' names, sorted; `None` when too many.
    fn into_parts(self) -> Option<(Vec<String>, Vec<String>)> {
        let mut path = parse_search_path(self.path.as_deref()?);
        if let Some(temp) = &self.temp_schema {
            for s in path.iter_mut().filter(|s| *s == temp) {
                *s = "pg_temp".to_string();
            }
        }
        if self.temp_names.len() > MAX_TEMP_RELATIONS {
            return None;
        }
        let mut names = self.temp_names;
        names.sort();
        names.dedup();
        Some((path, names))
    }
}

/// Builds the two halves for one session.
pub fn intercepts(
    protection: Arc<Protection>,
    mut session: SessionContext,
) -> (RewritingFrontend, RewritingBackend) {
    let (tx, rx) = mpsc::unbounded_channel();
    session.hard_delete = protection.bypass_hard_delete;
    let protection_for_backend = protection.clone();
    let paths = Arc::new(PathSync::default());
    let (ready_tx, ready_rx) = watch::channel(0u64);
    (
        RewritingFrontend {
            protection,
            session,
            paths: paths.clone(),
            ready_sent: 0,
            ready_seen: ready_rx,
            in_batch: false,
            statements: HashMap::new(),
            portals: HashMap::new(),
            path_statements: HashSet::new(),
            path_portals: HashSet::new(),
            portal_order: Vec::new(),
            sql_prepared: HashMap::new(),
            temp_names: Vec::new(),
            filtered_for: std::sync::Weak::new(),
            replies: tx,
        },
        RewritingBackend {
            protection: protection_for_backend,
            messages: rx,
            tracker: ReplyTracker::default(),
            ddl_seen: false,
            ready_seen: 0,
            ready_tx,
            paths,
            learning: None,
        },
    )
}

/// What the two halves share about `search_path`.
#[derive(Debug, Default)]
struct PathSync {
    /// The session's value may be wrong: re-read before resolving names.
    stale: AtomicBool,
    /// Numbers of the first and the last ReadyForQuery ending a message
    /// that may have changed the path, while their transaction may still
    /// undo it (`None`: no such change pending).
    pending: Mutex<Option<(u64, u64)>>,
    /// Status of the last ReadyForQuery (`I`, `T`, `E`).
    status: AtomicU8,
}

impl PathSync {
    /// A message ending with ReadyForQuery `ready` may change the path.
    fn changed(&self, ready: u64) {
        self.stale.store(true, Ordering::Release);
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        *p = Some(match *p {
            Some((first, last)) => (first.min(ready), last.max(ready)),
            None => (ready, ready),
        });
    }

    /// ReadyForQuery number `n` with transaction status `status`: from the
    /// first pending change on, each one may have undone it (ROLLBACK,
    /// ROLLBACK TO, COMMIT ending a SET LOCAL, an error); an idle one after
    /// the last change ends the watch.
    fn ready(&self, n: u64, status: u8) {
        self.status.store(status, Ordering::Release);
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((first, last)) = *p
            && n >= first
        {
            self.stale.store(true, Ordering::Release);
            if status == b'I' && n >= last {
                *p = None;
            }
        }
    }

    fn provisional(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// From the client half to the server half, in order.
#[derive(Debug)]
pub enum ToBackend {
    Expect(Expect),
    /// The next reply (up to its ReadyForQuery) answers
    /// [`LEARN_SEARCH_PATH`]: swallow it, hand over the answer.
    Learn(oneshot::Sender<Option<Learned>>),
}

/// Client → server half.
pub struct RewritingFrontend {
    protection: Arc<Protection>,
    /// Everything the rewrite depends on besides the text; the cache key
    /// is built from it at each lookup.
    session: SessionContext,
    paths: Arc<PathSync>,
    /// ReadyForQuery messages the server owes so far (one per Query,
    /// Sync and FunctionCall sent, and per question of the proxy's own).
    ready_sent: u64,
    /// ReadyForQuery messages received so far (written by the server half).
    ready_seen: watch::Receiver<u64>,
    /// Extended-protocol messages were sent since the last Sync.
    in_batch: bool,
    /// Protocol-level prepared statements: name → reply change.
    statements: HashMap<Vec<u8>, Option<TagRename>>,
    portals: HashMap<Vec<u8>, Option<TagRename>>,
    /// Prepared statements and portals that may change `search_path` each
    /// time they are executed.
    path_statements: HashSet<Vec<u8>>,
    path_portals: HashSet<Vec<u8>>,
    portal_order: Vec<Vec<u8>>,
    /// SQL-level `PREPARE name`: name → reply change for `EXECUTE name`.
    sql_prepared: HashMap<String, Option<TagRename>>,
    /// Relations of the session's temporary schema, as last learned;
    /// `session.temp_relations` holds those the snapshot's names shadow.
    temp_names: Vec<String>,
    /// The generation `session.temp_relations` was filtered for.
    filtered_for: std::sync::Weak<crate::protect::Generation>,
    replies: mpsc::UnboundedSender<ToBackend>,
}

/// Server → client half.
pub struct RewritingBackend {
    protection: Arc<Protection>,
    messages: mpsc::UnboundedReceiver<ToBackend>,
    tracker: ReplyTracker,
    /// DDL completed since the last idle ReadyForQuery.
    ddl_seen: bool,
    /// ReadyForQuery messages seen so far.
    ready_seen: u64,
    ready_tx: watch::Sender<u64>,
    paths: Arc<PathSync>,
    /// Answering [`LEARN_SEARCH_PATH`]: where the answer goes, and the
    /// answer so far (`None` after an error).
    learning: Option<(oneshot::Sender<Option<Learned>>, Option<Learned>)>,
}

impl FrontendIntercept for RewritingFrontend {
    async fn statement(
        &mut self,
        frame: Frame,
        upstream: &mut Upstream<'_>,
    ) -> Result<Outbound, WireError> {
        let at_boundary = !self.in_batch;
        match frame.tag() {
            tag::QUERY => self.query(frame, at_boundary, upstream).await,
            _ => {
                let out = self.parse(frame, at_boundary, upstream).await;
                self.in_batch = true;
                out
            }
        }
    }

    fn other(&mut self, frame: Frame) -> Result<Outbound, WireError> {
        match frame.tag() {
            tag::BIND => {
                let (portal, statement) = extended::bind_names(&frame)?;
                let plan = self.statements.get(statement).copied().flatten();
                match self.path_statements.contains(statement) {
                    true => self.path_portals.insert(portal.to_vec()),
                    false => self.path_portals.remove(portal),
                };
                self.remember_portal(portal.to_vec(), plan);
                self.in_batch = true;
            }
            tag::EXECUTE => {
                let portal = extended::execute_portal(&frame)?;
                let plan = self.portals.get(portal).copied().flatten();
                if self.path_portals.contains(portal) {
                    self.paths.changed(self.ready_sent + 1);
                }
                self.expect(Expect::Execute(plan));
                self.in_batch = true;
            }
            tag::SYNC => {
                self.ready_sent += 1;
                self.in_batch = false;
                self.expect(Expect::Ready)
            }
            // A function called by OID may be set_config.
            tag::FUNCTION_CALL => {
                self.ready_sent += 1;
                self.paths.changed(self.ready_sent);
                self.expect(Expect::Ready)
            }
            tag::CLOSE => {
                match extended::target(&frame)? {
                    Target::Statement(name) => {
                        self.statements.remove(name);
                        self.path_statements.remove(name);
                    }
                    Target::Portal(name) => {
                        self.portals.remove(name);
                        self.path_portals.remove(name);
                    }
                }
                self.in_batch = true;
            }
            tag::DESCRIBE | tag::FLUSH => self.in_batch = true,
            _ => {}
        }
        Ok(Outbound::Forward(frame))
    }
}

impl RewritingFrontend {
    fn expect(&self, e: Expect) {
        // The receiver lives as long as the session's relay.
        let _ = self.replies.send(ToBackend::Expect(e));
    }

    fn remember_portal(&mut self, name: Vec<u8>, plan: Option<TagRename>) {
        if !name.is_empty() && !self.portals.contains_key(&name) {
            self.portal_order.push(name.clone());
            if self.portal_order.len() > MAX_PORTALS {
                let oldest = self.portal_order.remove(0);
                self.portals.remove(&oldest);
            }
        }
        self.portals.insert(name, plan);
    }

    async fn query(
        &mut self,
        frame: Frame,
        at_boundary: bool,
        upstream: &mut Upstream<'_>,
    ) -> Result<Outbound, WireError> {
        let text = extended::query_text(&frame)?;
        let rewritten = self.rewrite(text, at_boundary, upstream).await;
        self.ready_sent += 1;
        let changes = self.changes_path(text, &rewritten);
        if changes {
            self.paths.changed(self.ready_sent);
        }
        let rewritten = match rewritten {
            Ok(r) => r,
            Err(e) => {
                self.protection.metrics.refused(&e);
                self.expect(Expect::Query(Default::default()));
                return Ok(Outbound::Replace(vec![extended::query(
                    refusal(&e, 0).as_bytes(),
                )]));
            }
        };
        let Some(result) = rewritten else {
            self.expect(Expect::Query(Default::default()));
            return Ok(Outbound::Forward(frame));
        };
        let renames = result.plans.iter().map(|p| self.reply_change(p)).collect();
        self.expect(Expect::Query(renames));
        Ok(match &result.sql {
            Some(sql) => Outbound::Replace(vec![extended::query(sql.as_bytes())]),
            None => Outbound::Forward(frame),
        })
    }

    async fn parse(
        &mut self,
        frame: Frame,
        at_boundary: bool,
        upstream: &mut Upstream<'_>,
    ) -> Result<Outbound, WireError> {
        let parse = Parse::decode(&frame)?;
        let rewritten = self.rewrite(parse.query, at_boundary, upstream).await;
        // Prepared, not executed, but it may be (the batch's Sync, not yet
        // counted, ends it) or be executed later (its Sync is then the
        // executing batch's, which marks the path stale again: see
        // `Expect::Execute` handling in `other`).
        let changes_path = self.changes_path(parse.query, &rewritten);
        if changes_path {
            self.paths.changed(self.ready_sent + 1);
        }
        let (plan, replacement) = match rewritten {
            Ok(None) => (None, None),
            Ok(Some(result)) => (
                result.plans.first().and_then(|p| self.reply_change(p)),
                result.sql.clone(),
            ),
            Err(e) => {
                self.protection.metrics.refused(&e);
                // Scanning may take long (a refused statement can be huge):
                // on the parser pool too.
                let params = match std::str::from_utf8(parse.query) {
                    Ok(q) => {
                        let q = q.to_string();
                        self.protection
                            .parsers
                            .run(move || {
                                constants(&q)
                                    .ok()
                                    .and_then(|c| c.params.iter().map(|p| p.2).max())
                            })
                            .await
                            .ok()
                            .flatten()
                            .unwrap_or(0)
                    }
                    Err(_) => 0,
                };
                (None, Some(refusal(&e, params)))
            }
        };
        let out = match replacement {
            Some(sql) => Outbound::Replace(vec![parse.with_query(sql.as_bytes())]),
            None => Outbound::Forward(frame.clone()),
        };
        match changes_path {
            true => self.path_statements.insert(parse.name.to_vec()),
            false => self.path_statements.remove(parse.name),
        };
        self.statements.insert(parse.name.to_vec(), plan);
        Ok(out)
    }

    /// The statement may change `search_path` (or the temporary relations
    /// the session knows of): the session's value is stale from the
    /// ReadyForQuery that ends its message on.
    fn changes_path(
        &self,
        text: &[u8],
        rewritten: &Result<Option<Arc<CachedRewrite>>, RewriteError>,
    ) -> bool {
        matches!(rewritten, Ok(Some(r)) if r.plans.iter().any(|p| p.session.is_some()))
            || crate::rewrite::may_drop_temp(text, &self.session)
    }

    /// `Ok(None)`: forward unchanged with no reply changes.
    /// `Ok(Some(r))`: the shared cache entry; `r.sql` is the replacement
    /// text, if any.
    async fn rewrite(
        &mut self,
        text: &[u8],
        at_boundary: bool,
        upstream: &mut Upstream<'_>,
    ) -> Result<Option<Arc<CachedRewrite>>, RewriteError> {
        let sql = match std::str::from_utf8(text) {
            Ok(s) => s,
            Err(_) => {
                // Not UTF-8 (a LATIN1 client, say): pass it through if it
                // cannot name a protected table, refuse otherwise.
                let lossy = String::from_utf8_lossy(text);
                if crate::rewrite::may_need_rewrite(&lossy, &self.protection.current().snapshot) {
                    return Err(RewriteError::Unsupported {
                        what: "a statement that is not valid UTF-8 and names a protected table"
                            .into(),
                    });
                }
                return Ok(None);
            }
        };
        if !crate::rewrite::may_need_rewrite(sql, &self.protection.current().snapshot) {
            return Ok(None);
        }
        self.settle_search_path(at_boundary, upstream).await;
        let result = self
            .protection
            .rewrite_async(sql, &self.session)
            .await
            .inspect_err(|e| {
                if let RewriteError::Unverified { reason } = e {
                    // A rewriter bug caught before anything was sent.
                    tracing::error!(%reason, statement = %sql, "rewrite refused by its check");
                }
            })?;
        for plan in &result.plans {
            if let Some((name, prepared)) = &plan.prepared {
                let change = self.reply_plan_change(prepared);
                self.sql_prepared.insert(name.clone(), change);
            }
        }
        if result.sql.is_some() {
            self.protection.metrics.rewrites.inc();
        }
        if result.sql.is_none() && result.plans.is_empty() {
            return Ok(None);
        }
        Ok(Some(result))
    }

    /// Makes `self.session` say what the server's `search_path` is when the
    /// statement runs: re-read when stale, or unknown if it cannot be.
    async fn settle_search_path(&mut self, at_boundary: bool, upstream: &mut Upstream<'_>) {
        let mut unknown = false;
        let generation = self.protection.current();
        let stale = self.paths.stale.load(Ordering::Acquire);
        // A table the snapshot did not have may have been created (or
        // protected) since the temporary names were learned, and one of
        // them may shadow it: learn them again when the session can ask
        // (until then, what was learned stands).
        let refresh = self.session.search_path.iter().any(|s| s == "pg_temp")
            && !std::ptr::eq(self.filtered_for.as_ptr(), Arc::as_ptr(&generation));
        if stale || (refresh && at_boundary) {
            match at_boundary {
                true => match self.learn_search_path(upstream).await {
                    Some((path, names)) => {
                        self.session.search_path = path;
                        self.temp_names = names;
                        self.paths.stale.store(false, Ordering::Release);
                    }
                    None if stale => unknown = true,
                    // Ask again next time.
                    None => return self.settled(false),
                },
                false => unknown = true,
            }
        }
        if !unknown {
            self.session.temp_relations = shadowing(&self.temp_names, &generation.snapshot);
            self.filtered_for = Arc::downgrade(&generation);
        }
        self.settled(unknown);
    }

    fn settled(&mut self, unknown: bool) {
        self.session.search_path_unknown = unknown;
        self.session.search_path_provisional = self.paths.provisional();
    }

    /// Asks the server, once everything sent so far is answered: the path
    /// and the temporary relations' names. `None` in a failed transaction
    /// or when the question fails.
    async fn learn_search_path(
        &mut self,
        upstream: &mut Upstream<'_>,
    ) -> Option<(Vec<String>, Vec<String>)> {
        let owed = self.ready_sent;
        // What the client pipelined before this statement (the Syncs of
        // earlier batches, earlier Queries) may still sit in the relay's
        // write buffer: unflushed, the server never answers it and the
        // wait below never ends.
        upstream.flush().await.ok()?;
        self.ready_seen.wait_for(|&n| n >= owed).await.ok()?;
        // Still stale? A ReadyForQuery after the wait may have said so;
        // a failed transaction answers nothing but errors.
        if self.paths.status.load(Ordering::Acquire) == b'E' {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.replies.send(ToBackend::Learn(tx)).ok()?;
        self.ready_sent += 1;
        upstream
            .send(&extended::query(LEARN_SEARCH_PATH.as_bytes()))
            .await
            .ok()?;
        rx.await.ok().flatten()?.into_parts()
    }

    fn reply_change(&self, plan: &StatementPlan) -> Option<TagRename> {
        self.reply_plan_change(&plan.reply)
    }

    fn reply_plan_change(&self, plan: &ReplyPlan) -> Option<TagRename> {
        match plan {
            ReplyPlan::Unchanged => None,
            ReplyPlan::RenameTag { from, to } => Some(TagRename { from, to }),
            ReplyPlan::AsPrepared { name } => self.sql_prepared.get(name).copied().flatten(),
        }
    }
}

impl BackendIntercept for RewritingBackend {
    fn reply(&mut self, frame: Frame) -> Inbound {
        self.other(frame)
    }

    fn other(&mut self, frame: Frame) -> Inbound {
        while let Ok(m) = self.messages.try_recv() {
            match m {
                ToBackend::Expect(e) => self.tracker.expect(e),
                ToBackend::Learn(tx) => self.learning = Some((tx, Some(Learned::default()))),
            }
        }
        if frame.tag() == tag::READY_FOR_QUERY {
            self.ready_seen += 1;
            let status = frame.body().first().copied().unwrap_or(b'I');
            if self.learning.is_none() {
                self.paths.ready(self.ready_seen, status);
            } else {
                self.paths.status.store(status, Ordering::Release);
            }
        }
        if let Some(swallowed) = self.learn_reply(&frame) {
            // Published after the bookkeeping, so that the client half
            // sees this ReadyForQuery's effects once it wakes up.
            if frame.tag() == tag::READY_FOR_QUERY {
                self.ready_tx.send_replace(self.ready_seen);
            }
            return swallowed;
        }
        match frame.tag() {
            tag::COMMAND_COMPLETE if extended::command_tag(&frame).is_ok_and(is_ddl) => {
                self.ddl_seen = true;
            }
            // Committed (or rolled back): let the watcher look now rather
            // than at its next notification or tick.
            tag::READY_FOR_QUERY if frame.body().first() == Some(&b'I') && self.ddl_seen => {
                self.ddl_seen = false;
                self.protection.refresh.notify_one();
            }
            _ => {}
        }
        let ready = frame.tag() == tag::READY_FOR_QUERY;
        let was_update = frame.tag() == tag::COMMAND_COMPLETE
            && extended::command_tag(&frame).is_ok_and(|t| t.starts_with(b"UPDATE "));
        let frame = self.tracker.on_server(frame);
        if was_update
            && let Ok(t) = extended::command_tag(&frame)
            && t.starts_with(b"DELETE ")
        {
            // Only the soft-delete rewrite renames UPDATE to DELETE.
            self.protection.metrics.soft_deleted(t);
        }
        let out = Inbound::Forward(frame);
        if ready {
            self.ready_tx.send_replace(self.ready_seen);
        }
        out
    }
}

impl RewritingBackend {
    /// The answer to [`LEARN_SEARCH_PATH`], message by message: swallowed
    /// (`Some`), except asynchronous messages, which the client gets.
    fn learn_reply(&mut self, frame: &Frame) -> Option<Inbound> {
        let (_, value) = self.learning.as_mut()?;
        match frame.tag() {
            b'D' => {
                let row = super::setup::data_row(frame.body());
                *value = value.take().zip(row).and_then(|(mut l, row)| {
                    match <[Option<String>; 3]>::try_from(row).ok()? {
                        [None, None, Some(name)] => l.temp_names.push(name),
                        [Some(path), temp, None] if l.path.is_none() => {
                            l.path = Some(path);
                            l.temp_schema = temp;
                        }
                        _ => return None,
                    }
                    Some(l)
                });
            }
            tag::ERROR_RESPONSE => *value = None,
            tag::READY_FOR_QUERY => {
                if let Some((tx, value)) = self.learning.take() {
                    let _ = tx.send(value);
                }
            }
            // NoticeResponse, NotificationResponse, ParameterStatus.
            b'N' | b'A' | b'S' => return None,
            _ => {}
        }
        Some(Inbound::Replace(Vec::new()))
    }
}

/// The temporary relations named like a table of the snapshot or one of
/// tombstone's: those the rewriter must know of.
fn shadowing(names: &[String], snapshot: &crate::schema::SchemaSnapshot) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    let known: HashSet<&str> = snapshot.tables().iter().map(|t| t.name.as_str()).collect();
    names
        .iter()
        .filter(|n| known.contains(n.as_str()) || crate::rewrite::is_tombstone_name(n))
        .cloned()
        .collect()
}

/// Command tags of statements that can change what the snapshot holds.
fn is_ddl(tag_text: &[u8]) -> bool {
    [&b"CREATE "[..], b"ALTER ", b"DROP ", b"COMMENT"]
        .iter()
        .any(|p| tag_text.starts_with(p))
}

/// SQL that makes the server raise the rewriter's error. It references
/// `$1…$params` so that a Bind with the client's parameters still matches.
pub fn refusal(e: &RewriteError, params: u32) -> String {
    let mut sql = format!(
        "SELECT tombstone.refuse({}, {}, {})",
        literal(e.sqlstate()),
        literal(&e.message()),
        e.hint().map(literal).unwrap_or_else(|| "NULL".to_string())
    );
    if params > 0 {
        let list: Vec<String> = (1..=params).map(|n| format!("${n}")).collect();
        sql.push_str(&format!(" FROM (SELECT {}) AS params", list.join(", ")));
    }
    sql
}

/// A string literal that means the same whatever
/// `standard_conforming_strings` says.
fn literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_sql_quotes_and_keeps_parameters() {
        let e = RewriteError::FailClosed {
            what: "DO block naming \"projects\" with it's \\ quote".into(),
        };
        let sql = refusal(&e, 2);
        assert!(
            sql.starts_with("SELECT tombstone.refuse(E'42501', E'DO block"),
            "{sql}"
        );
        assert!(sql.contains("it''s \\\\ quote"), "{sql}");
        assert!(sql.ends_with("FROM (SELECT $1, $2) AS params"), "{sql}");
        assert!(!refusal(&e, 0).contains("FROM"));
    }
}
