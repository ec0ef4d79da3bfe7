//! The SQL rewriter: statement text + schema snapshot + session → the text to
//! send upstream and a plan for adjusting the reply. Pure: no I/O, no
//! globals. Only `parse` touches the parser library.

pub mod cascade;
mod cascade_sql;
mod constraints;
mod delete;
pub mod edits;
pub mod error;
mod guard;
pub mod parse;
mod reads;
mod returning;
mod revive;
mod settings;
pub(crate) mod sql_text;
mod statements;
mod temp;
pub mod tokens;
pub mod tree;
mod verify;
mod walk;
mod walk_mut;

#[cfg(test)]
pub(crate) mod tests;

use std::borrow::Cow;

pub use error::RewriteError;
pub(crate) use guard::is_tombstone_name;
pub use temp::may_drop_temp;

use crate::schema::SchemaSnapshot;
use parse::ParseError;
use reads::Walker;

/// Which rows a bypass session sees (`SET tombstone.visibility`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Visibility {
    /// Live rows only (what normal sessions always get).
    #[default]
    Active,
    /// Soft-deleted rows only (the trash).
    Deleted,
    /// Everything.
    All,
    /// Whatever the session's `tombstone.visibility` setting says when the
    /// statement runs (`active`, `deleted`, else everything): the
    /// predicate reads it server-side, so `SET`, `SET LOCAL`, `RESET` and
    /// rollbacks behave exactly as PostgreSQL makes them. What the proxy
    /// gives bypass sessions.
    Setting,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    #[default]
    Normal,
    Bypass {
        visibility: Visibility,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longer statements that may name a protected table are refused (54000).
    pub max_statement_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_statement_bytes: 4 << 20,
        }
    }
}

/// What the rewriter needs to know about the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionContext {
    pub role: Role,
    /// Login user, for `"$user"` in the search path.
    pub user: String,
    /// `search_path` entries as PostgreSQL lists them (unquoted names,
    /// `$user` allowed).
    pub search_path: Vec<String>,
    /// Actor for operations; `None`: `tombstone.actor` setting, else
    /// `session_user`, evaluated by the database.
    pub actor: Option<String>,
    pub limits: Limits,
    /// `roles.bypass_hard_delete`: a bypass session's DELETE is a real
    /// DELETE. Ignored for normal sessions.
    pub hard_delete: bool,
    /// The session cannot know the server's `search_path` for this
    /// statement (it may have changed and could not be re-read): a
    /// statement that names a protected (or tombstone) table without a
    /// schema is refused, since the name could mean another table.
    pub search_path_unknown: bool,
    /// The path was changed inside the current transaction: a `COMMIT`,
    /// `ROLLBACK` or `ROLLBACK TO` inside the statement string may undo the
    /// change, so later statements of the string resolve as unknown.
    pub search_path_provisional: bool,
    /// Relations of the session's temporary schema whose names a table of
    /// the snapshot (or one of tombstone's) also has, sorted. PostgreSQL
    /// looks in `pg_temp` first unless the path lists it later: there such
    /// a name is the session's own table, with no predicate and no soft
    /// delete. In `search_path` the session's `pg_temp_N` reads `pg_temp`.
    pub temp_relations: Vec<String>,
}

impl SessionContext {
    /// A normal session with the default `"$user", public` search path.
    pub fn normal(user: &str) -> SessionContext {
        SessionContext {
            role: Role::Normal,
            user: user.to_string(),
            search_path: vec!["$user".to_string(), "public".to_string()],
            actor: None,
            limits: Limits::default(),
            hard_delete: false,
            search_path_unknown: false,
            search_path_provisional: false,
            temp_relations: Vec::new(),
        }
    }

    /// An unqualified relation `name` is one of the session's temporary
    /// relations (when its schema comes first in the path).
    pub fn is_temp_relation(&self, name: &str) -> bool {
        self.temp_relations
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }

    fn resolved_search_path(&self) -> Vec<String> {
        self.search_path
            .iter()
            .map(|s| {
                if s == "$user" {
                    self.user.clone()
                } else {
                    s.clone()
                }
            })
            .collect()
    }
}

/// What the wire layer must change in the reply to one statement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReplyPlan {
    /// Forward the reply as is.
    #[default]
    Unchanged,
    /// Rename the command tag's verb, keeping the count:
    /// `UPDATE 3` → `DELETE 3`. Row descriptions and rows are already what
    /// the client expects (also for `Describe`).
    RenameTag {
        from: &'static str,
        to: &'static str,
    },
    /// `EXECUTE name`: apply the plan recorded when `name` was prepared
    /// with SQL `PREPARE` (see [`StatementPlan::prepared`]).
    AsPrepared { name: String },
}

/// A change to the session the rewriter must follow for later statements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// `SET [SESSION] search_path …`: the new entries (unquoted names).
    SearchPath(Vec<String>),
    /// `SET LOCAL search_path …`: in force until the transaction ends.
    LocalSearchPath(Vec<String>),
    /// `RESET search_path`, `SET search_path TO DEFAULT`, `RESET ALL`,
    /// `DISCARD ALL`: back to the value the session started with.
    ResetSearchPath,
    /// `SET LOCAL search_path TO DEFAULT`: the session's start value until
    /// the transaction ends.
    LocalResetSearchPath,
    /// The statement may change `search_path` (or what `$user` means) in
    /// a way the proxy cannot follow: `set_config('search_path', …)`
    /// (it runs only where and when the expression is evaluated), a value
    /// that is not a constant, `DO`, `CALL`, `SET ROLE`,
    /// `SET SESSION AUTHORIZATION`; or it may change which names the
    /// session's temporary schema shadows (`CREATE TEMP TABLE tasks`, a
    /// `DROP` while one is shadowed, see `reads::Walker::temp_change`).
    /// The session re-reads the server's value.
    Unknown,
}

/// The plan for one statement of the input, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatementPlan {
    pub reply: ReplyPlan,
    /// `PREPARE name AS …`: remember `(name, plan)` for later `EXECUTE`.
    pub prepared: Option<(String, ReplyPlan)>,
    /// The statement changes what later statements are rewritten for.
    pub session: Option<SessionChange>,
}

/// The result of rewriting a query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewritten<'a> {
    /// The text to send upstream; borrowed when nothing changed.
    pub sql: Cow<'a, str>,
    /// One plan per statement when any statement needs reply changes;
    /// empty when every statement's reply is forwarded unchanged.
    pub statements: Vec<StatementPlan>,
    /// The decision read the content of a literal (a DO body, a
    /// `set_config` or `SET` value, the text of a statement kind checked by
    /// its words) or the text could not be parsed: a statement that
    /// differs only in its literals may be decided differently, so the
    /// rewrite cache must never share this result by literal-normalized
    /// shape (see `protect::cache`).
    pub reads_literals: bool,
}

impl Rewritten<'_> {
    pub fn is_unchanged(&self) -> bool {
        matches!(self.sql, Cow::Borrowed(_)) && self.statements.is_empty()
    }
}

/// The session's temporary schema as a `search_path` entry: `pg_temp`
/// (what a client writes, and what the session makes of its `pg_temp_N`).
pub fn is_temp_schema(s: &str) -> bool {
    s == "pg_temp"
        || s.strip_prefix("pg_temp_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `"$user", public` → `["$user", "public"]`.
pub fn parse_search_path(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| {
            let p = p.trim();
            match p.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                Some(q) => q.replace("\"\"", "\""),
                None => p.to_lowercase(),
            }
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// True when `rewrite` would have to parse `sql`; false means it comes back
/// unchanged. Cheap: one pass over the text, no parse.
pub fn may_need_rewrite(sql: &str, snapshot: &SchemaSnapshot) -> bool {
    snapshot.may_mention_guarded(sql, &PRECHECK) || snapshot.may_call_user_function(sql)
}

/// Words besides table names that make a statement worth parsing:
/// `EXECUTE` (a prepared soft delete), session settings the proxy follows
/// or guards (`search_path`, `tombstone.*`, `set_config`, `RESET ALL`,
/// `DISCARD ALL`), `SET CONSTRAINTS`; [`PRECHECK`] adds the functions that run SQL text.
/// tombstone's table names are listed too (the snapshot adds the actual
/// ones), so that they are parsed even before the snapshot knows them.
const PRECHECK_WORDS: &[&str] = &[
    "execute",
    "tombstone",
    "search_path",
    "set_config",
    "reset",
    "discard",
    "audit",
    "operations",
    "operation_rows",
    "audit_settings",
    // Statements that may change search_path or what `$user` means.
    "do",
    "call",
    "role",
    "authorization",
    // SET CONSTRAINTS <key>: the key's child-side check is added beside it.
    "constraints",
];

/// [`PRECHECK_WORDS`] and the functions that run SQL text
/// ([`sql_text::SQL_TEXT_FUNCTIONS`], `ts_rewrite`): one list, so the
/// pre-check scans the text once.
static PRECHECK: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut words = PRECHECK_WORDS.to_vec();
    words.extend_from_slice(sql_text::SQL_TEXT_FUNCTIONS);
    words.push(sql_text::TS_REWRITE);
    words
});

/// Rewrite `sql` (one or more statements) for a session.
///
/// Text that cannot name a watched table comes back borrowed without being
/// parsed. Syntax errors in such text are left for PostgreSQL to report;
/// syntax errors in text that may name a protected table are returned as
/// [`RewriteError::Syntax`] (42601) so that nothing unparsed reaches a
/// protected table.
pub fn rewrite<'a>(
    sql: &'a str,
    snapshot: &SchemaSnapshot,
    session: &SessionContext,
) -> Result<Rewritten<'a>, RewriteError> {
    if !may_need_rewrite(sql, snapshot) {
        return Ok(Rewritten {
            sql: Cow::Borrowed(sql),
            statements: Vec::new(),
            reads_literals: false,
        });
    }
    if sql.len() > session.limits.max_statement_bytes {
        return Err(RewriteError::TooLarge {
            size: sql.len(),
            limit: session.limits.max_statement_bytes,
        });
    }
    match parse::on_big_stack(|| rewrite_parsed(sql, snapshot, session)) {
        Some(r) => r,
        None => Err(RewriteError::TooComplex {
            // (The text tests look for: a panic, on whichever stack.)
            detail: "the parser thread failed".into(),
        }),
    }
}

/// [`rewrite`], kept for callers on a parser-pool thread: `rewrite` no
/// longer starts a thread (it runs on the caller's stack when that has
/// [`parse::PARSER_STACK`] left, as the pool's threads do), so the two are
/// the same.
pub fn rewrite_on_parser_stack<'a>(
    sql: &'a str,
    snapshot: &SchemaSnapshot,
    session: &SessionContext,
) -> Result<Rewritten<'a>, RewriteError> {
    rewrite(sql, snapshot, session)
}

/// The check every rewrite passes before it is sent (`verify`), on its own:
/// `rewritten` must be what tombstone may send for the one statement `sql`.
/// For measuring the check (`benches/coldpath.rs`) and for tools; `rewrite`
/// runs it itself. Call on a thread with a [`parse::PARSER_STACK`] stack.
pub fn verify_rewrite(
    sql: &str,
    rewritten: &str,
    snapshot: &SchemaSnapshot,
    session: &SessionContext,
) -> Result<(), RewriteError> {
    let parsed = match parse::parse(sql) {
        Ok(p) => p,
        Err(ParseError::Syntax(message)) => return Err(RewriteError::Syntax { message }),
        Err(ParseError::TooComplex(detail)) => return Err(RewriteError::TooComplex { detail }),
    };
    let [stmt] = parsed.statements.as_slice() else {
        return Err(RewriteError::Unsupported {
            what: "checking more than one statement at once".into(),
        });
    };
    let Some(tree) = stmt.tree.as_ref().map(|t| t.to_ref()) else {
        return Ok(());
    };
    Walker::new(sql, &parsed.tokens, snapshot, session).verify(tree, rewritten)
}

fn rewrite_parsed<'a>(
    sql: &'a str,
    snapshot: &SchemaSnapshot,
    session: &SessionContext,
) -> Result<Rewritten<'a>, RewriteError> {
    let parsed = match parse::parse(sql) {
        Ok(p) => p,
        Err(ParseError::Syntax(message)) => {
            if snapshot.may_mention_watched(sql) {
                return Err(RewriteError::Syntax { message });
            }
            // Not understood: whatever decided this, it was not a walk of
            // the tree, so the literals may matter.
            return Ok(Rewritten {
                sql: Cow::Borrowed(sql),
                statements: Vec::new(),
                reads_literals: true,
            });
        }
        Err(ParseError::TooComplex(detail)) => return Err(RewriteError::TooComplex { detail }),
    };
    let mut walker = Walker::new(sql, &parsed.tokens, snapshot, session);
    let mut plans = Vec::with_capacity(parsed.statements.len());
    let mut path_unknown = session.search_path_unknown;
    let mut provisional = session.search_path_provisional;
    for stmt in &parsed.statements {
        walker.soft_deletes = 0;
        walker.session_change = None;
        let Some(tree) = stmt.tree.as_ref().map(|t| t.to_ref()) else {
            plans.push(StatementPlan::default());
            continue;
        };
        if path_unknown {
            walker.refuse_path_dependent(tree)?;
        }
        let mut plan = walker.statement(tree, stmt.start, stmt.end)?;
        // Every rewritten statement is checked before it can be sent.
        if walker.edits.any_within(stmt.start, stmt.end) {
            let text = walker.render(stmt.start, stmt.end)?;
            walker.verify(tree, &text)?;
        }
        if plan.session.is_none() {
            plan.session = walker.session_change.take();
        }
        if plan.session.is_none() && walker.temp_change(tree) {
            plan.session = Some(SessionChange::Unknown);
        }
        // Later statements of the same string resolve names with the new
        // path when a plain SET gave it; after anything else that changes
        // it (a reset to a value the rewriter does not hold, set_config, DO
        // …) they resolve as unknown.
        match &plan.session {
            Some(SessionChange::SearchPath(p) | SessionChange::LocalSearchPath(p)) => {
                walker.search_path = SessionContext {
                    search_path: p.clone(),
                    ..session.clone()
                }
                .resolved_search_path();
                path_unknown = false;
                provisional = true;
            }
            Some(_) => {
                path_unknown = true;
                provisional = true;
            }
            None => {}
        }
        if provisional && settings::ends_or_undoes(tree) {
            path_unknown = true;
        }
        plans.push(plan);
    }
    let statements = if plans.iter().all(|p| *p == StatementPlan::default()) {
        Vec::new()
    } else {
        plans
    };
    if walker.edits.is_empty() {
        return Ok(Rewritten {
            sql: Cow::Borrowed(sql),
            statements,
            reads_literals: walker.reads_literals,
        });
    }
    let text = walker.render(0, sql.len())?;
    Ok(Rewritten {
        sql: Cow::Owned(text),
        statements,
        reads_literals: walker.reads_literals,
    })
}
