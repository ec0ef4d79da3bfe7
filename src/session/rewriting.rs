//! The rewriting intercepts of a protected session: every statement goes
//! through the rewriter (via the cache), refusals become server-side errors,
//! and each statement's reply plan reaches the reply side in order.
//!
//! Refused statements are replaced by a call to `tombstone.refuse()`, so
//! the error comes from the server in its proper place in the reply stream
//! and aborts the client's transaction exactly as a real error would.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::intercept::{BackendIntercept, FrontendIntercept, Inbound, Outbound};
use super::replies::{Expect, ReplyTracker, TagRename};
use crate::protect::Protection;
use crate::protect::cache::CachedRewrite;
use crate::rewrite::parse::constants;
use crate::rewrite::{ReplyPlan, RewriteError, SessionChange, SessionContext, StatementPlan};
use crate::wire::extended::{self, Parse, Target};
use crate::wire::{Frame, WireError, tag};

/// Named portals remembered at most; beyond that the oldest are forgotten
/// (PostgreSQL drops portals at transaction end, the proxy cannot see that).
const MAX_PORTALS: usize = 4096;

/// Builds the two halves for one session.
pub fn intercepts(
    protection: Arc<Protection>,
    mut session: SessionContext,
) -> (RewritingFrontend, RewritingBackend) {
    let (tx, rx) = mpsc::unbounded_channel();
    session.hard_delete = protection.bypass_hard_delete;
    let context = crate::protect::cache_context(&session);
    let protection_for_backend = protection.clone();
    let idle = Arc::new(AtomicU64::new(0));
    (
        RewritingFrontend {
            protection,
            paths: SearchPaths {
                login: session.search_path.clone(),
                session: session.search_path.clone(),
                local: None,
            },
            session,
            context,
            ready_sent: 0,
            idle: idle.clone(),
            statements: HashMap::new(),
            portals: HashMap::new(),
            portal_order: Vec::new(),
            sql_prepared: HashMap::new(),
            replies: tx,
        },
        RewritingBackend {
            protection: protection_for_backend,
            expectations: rx,
            tracker: ReplyTracker::default(),
            ddl_seen: false,
            ready_seen: 0,
            idle,
        },
    )
}

/// The session's `search_path` as the rewriter follows it (see
/// docs/rewrite.md, "search_path"): the value at login, the value of the
/// last `SET [SESSION]`, and a `SET LOCAL` value with the number of the
/// ReadyForQuery that ends the message that set it.
#[derive(Debug)]
struct SearchPaths {
    login: Vec<String>,
    session: Vec<String>,
    local: Option<(u64, Vec<String>)>,
}

impl SearchPaths {
    fn current(&self) -> &[String] {
        self.local.as_ref().map_or(&self.session, |(_, p)| p)
    }

    /// `ready`: the number of the ReadyForQuery that will end the message
    /// carrying the change.
    fn apply(&mut self, change: &SessionChange, ready: u64) {
        match change {
            SessionChange::SearchPath(p) => {
                self.session = p.clone();
                self.local = None;
            }
            SessionChange::ResetSearchPath => {
                self.session = self.login.clone();
                self.local = None;
            }
            SessionChange::LocalSearchPath(p) => self.local = Some((ready, p.clone())),
            SessionChange::LocalResetSearchPath => self.local = Some((ready, self.login.clone())),
        }
    }

    /// A `SET LOCAL` ends with its transaction: at the first idle
    /// ReadyForQuery at or after the one that ended its message.
    fn transaction_ended(&mut self, last_idle_ready: u64) {
        if self
            .local
            .as_ref()
            .is_some_and(|(from, _)| last_idle_ready >= *from)
        {
            self.local = None;
        }
    }
}

/// Client → server half.
pub struct RewritingFrontend {
    protection: Arc<Protection>,
    session: SessionContext,
    context: String,
    paths: SearchPaths,
    /// ReadyForQuery messages the server owes so far (one per Query,
    /// Sync and FunctionCall sent).
    ready_sent: u64,
    /// Number of the last ReadyForQuery with status idle (written by the
    /// server half).
    idle: Arc<AtomicU64>,
    /// Protocol-level prepared statements: name → reply change.
    statements: HashMap<Vec<u8>, Option<TagRename>>,
    portals: HashMap<Vec<u8>, Option<TagRename>>,
    portal_order: Vec<Vec<u8>>,
    /// SQL-level `PREPARE name`: name → reply change for `EXECUTE name`.
    sql_prepared: HashMap<String, Option<TagRename>>,
    replies: mpsc::UnboundedSender<Expect>,
}

/// Server → client half.
pub struct RewritingBackend {
    protection: Arc<Protection>,
    expectations: mpsc::UnboundedReceiver<Expect>,
    tracker: ReplyTracker,
    /// DDL completed since the last idle ReadyForQuery.
    ddl_seen: bool,
    /// ReadyForQuery messages seen so far.
    ready_seen: u64,
    /// Shared with the client half: number of the last idle one.
    idle: Arc<AtomicU64>,
}

impl FrontendIntercept for RewritingFrontend {
    async fn statement(&mut self, frame: Frame) -> Result<Outbound, WireError> {
        match frame.tag() {
            tag::QUERY => self.query(frame).await,
            _ => self.parse(frame).await,
        }
    }

    fn other(&mut self, frame: Frame) -> Result<Outbound, WireError> {
        match frame.tag() {
            tag::BIND => {
                let (portal, statement) = extended::bind_names(&frame)?;
                let plan = self.statements.get(statement).copied().flatten();
                self.remember_portal(portal.to_vec(), plan);
            }
            tag::EXECUTE => {
                let portal = extended::execute_portal(&frame)?;
                let plan = self.portals.get(portal).copied().flatten();
                self.expect(Expect::Execute(plan));
            }
            tag::SYNC | tag::FUNCTION_CALL => {
                self.ready_sent += 1;
                self.expect(Expect::Ready)
            }
            tag::CLOSE => match extended::target(&frame)? {
                Target::Statement(name) => {
                    self.statements.remove(name);
                }
                Target::Portal(name) => {
                    self.portals.remove(name);
                }
            },
            _ => {}
        }
        Ok(Outbound::Forward(frame))
    }
}

impl RewritingFrontend {
    fn expect(&self, e: Expect) {
        // The receiver lives as long as the session's relay.
        let _ = self.replies.send(e);
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

    async fn query(&mut self, frame: Frame) -> Result<Outbound, WireError> {
        let text = extended::query_text(&frame)?;
        let rewritten = self.rewrite(text).await;
        self.ready_sent += 1;
        let rewritten = match rewritten {
            Ok(r) => r,
            Err(e) => {
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

    async fn parse(&mut self, frame: Frame) -> Result<Outbound, WireError> {
        let parse = Parse::decode(&frame)?;
        let (plan, replacement) = match self.rewrite(parse.query).await {
            Ok(None) => (None, None),
            Ok(Some(result)) => (
                result.plans.first().and_then(|p| self.reply_change(p)),
                result.sql.clone(),
            ),
            Err(e) => {
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
        self.statements.insert(parse.name.to_vec(), plan);
        Ok(out)
    }

    /// `Ok(None)`: forward unchanged with no reply changes.
    /// `Ok(Some(r))`: the shared cache entry; `r.sql` is the replacement
    /// text, if any.
    async fn rewrite(&mut self, text: &[u8]) -> Result<Option<Arc<CachedRewrite>>, RewriteError> {
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
        self.follow_transaction_end();
        let result = self
            .protection
            .rewrite_async(sql, &self.session, &self.context)
            .await?;
        let mut path_changed = false;
        for plan in &result.plans {
            if let Some((name, prepared)) = &plan.prepared {
                let change = self.reply_plan_change(prepared);
                self.sql_prepared.insert(name.clone(), change);
            }
            if let Some(change) = &plan.session {
                self.paths.apply(change, self.ready_sent + 1);
                path_changed = true;
            }
        }
        if path_changed {
            self.update_search_path();
        }
        if result.sql.is_none() && result.plans.is_empty() {
            return Ok(None);
        }
        Ok(Some(result))
    }

    /// Drops a `SET LOCAL` search path whose transaction has ended.
    fn follow_transaction_end(&mut self) {
        if self.paths.local.is_some() {
            self.paths
                .transaction_ended(self.idle.load(Ordering::Acquire));
            self.update_search_path();
        }
    }

    /// Makes the rewriter (and the cache key) use the path in force.
    fn update_search_path(&mut self) {
        if self.session.search_path.as_slice() != self.paths.current() {
            self.session.search_path = self.paths.current().to_vec();
            self.context = crate::protect::cache_context(&self.session);
        }
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
        while let Ok(e) = self.expectations.try_recv() {
            self.tracker.expect(e);
        }
        match frame.tag() {
            tag::COMMAND_COMPLETE if extended::command_tag(&frame).is_ok_and(is_ddl) => {
                self.ddl_seen = true;
            }
            // Committed (or rolled back): let the watcher look now rather
            // than at its next notification or tick.
            tag::READY_FOR_QUERY => {
                self.ready_seen += 1;
                if frame.body().first() == Some(&b'I') {
                    self.idle.store(self.ready_seen, Ordering::Release);
                    // Committed (or rolled back): let the watcher look now
                    // rather than at its next notification or tick.
                    if self.ddl_seen {
                        self.ddl_seen = false;
                        self.protection.refresh.notify_one();
                    }
                }
            }
            _ => {}
        }
        Inbound::Forward(self.tracker.on_server(frame))
    }
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
    fn search_paths_follow_set_local_until_the_transaction_ends() {
        let v = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut paths = SearchPaths {
            login: v(&["$user", "public"]),
            session: v(&["$user", "public"]),
            local: None,
        };
        paths.apply(&SessionChange::SearchPath(v(&["app"])), 1);
        assert_eq!(paths.current(), v(&["app"]));
        // SET LOCAL in the message ended by ReadyForQuery 3.
        paths.apply(&SessionChange::LocalSearchPath(v(&["billing"])), 3);
        paths.transaction_ended(2); // an earlier message's idle RFQ
        assert_eq!(paths.current(), v(&["billing"]));
        paths.transaction_ended(5);
        assert_eq!(paths.current(), v(&["app"]));
        paths.apply(&SessionChange::LocalResetSearchPath, 6);
        assert_eq!(paths.current(), v(&["$user", "public"]));
        paths.apply(&SessionChange::SearchPath(v(&["x"])), 6);
        assert_eq!(paths.current(), v(&["x"]));
        paths.apply(&SessionChange::ResetSearchPath, 7);
        assert_eq!(paths.current(), v(&["$user", "public"]));
    }

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
