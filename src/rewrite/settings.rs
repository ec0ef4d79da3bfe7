//! Session settings the rewriter follows or guards:
//!
//! - `SET [SESSION|LOCAL] search_path`, `RESET search_path`, `RESET ALL`,
//!   `DISCARD ALL` (and `set_config('search_path', …)` with literals): the
//!   statement passes unchanged; its plan carries a [`SessionChange`] so the
//!   wire layer resolves later statements' names with the new path.
//! - `tombstone.visibility`: bypass sessions only (SPEC B2); the value is
//!   checked here (22023) and read server-side by their predicates.
//! - `tombstone.client_addr`: set by the proxy at login, never by a client
//!   (it would falsify the audit trail).
//! - `tombstone.actor` and every other setting pass through.

use pg_query::NodeRef;
use pg_query::protobuf::{self as pb, DiscardStmt, FuncCall, Node, VariableSetStmt, a_const};

use super::error::RewriteError;
use super::reads::{Res, Walker};
use super::tree::{self, node, strings};
use super::{Role, SessionChange};

pub(crate) const VISIBILITY: &str = "tombstone.visibility";
pub(crate) const CLIENT_ADDR: &str = "tombstone.client_addr";

/// The values `tombstone.visibility` accepts (empty: the default, `all`).
const VISIBILITY_VALUES: &[&str] = &["active", "deleted", "all", ""];

impl<'a> Walker<'a> {
    fn is_bypass(&self) -> bool {
        matches!(self.session.role, Role::Bypass { .. })
    }

    /// `SET` / `RESET`: refused, followed, or passed through.
    pub fn variable_set(&mut self, n: &VariableSetStmt) -> Res<Option<SessionChange>> {
        use pb::VariableSetKind as K;
        let name = n.name.to_lowercase();
        let kind = K::try_from(n.kind).unwrap_or(K::Undefined);
        if kind == K::VarResetAll {
            return Ok(Some(SessionChange::ResetSearchPath));
        }
        let local = n.is_local;
        match name.as_str() {
            // `$user` in the path is the current user.
            "role" | "session_authorization" => Ok(Some(SessionChange::Unknown)),
            CLIENT_ADDR => Err(RewriteError::SettingDenied {
                name,
                bypass_only: false,
            }),
            VISIBILITY => {
                if !self.is_bypass() {
                    return Err(RewriteError::SettingDenied {
                        name,
                        bypass_only: true,
                    });
                }
                if kind == K::VarSetValue {
                    let value = match n.args.as_slice() {
                        [v] => self.const_string(v),
                        _ => None,
                    };
                    check_visibility(value)?;
                }
                Ok(None)
            }
            "search_path" => Ok(match kind {
                K::VarSetValue => {
                    let path: Option<Vec<String>> = n
                        .args
                        .iter()
                        .map(|a| {
                            self.const_string(a)
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                        })
                        .collect();
                    // An empty entry or another form: PostgreSQL decides
                    // what it means; the session re-reads it.
                    Some(match path {
                        Some(p) if local => SessionChange::LocalSearchPath(p),
                        Some(p) => SessionChange::SearchPath(p),
                        None => SessionChange::Unknown,
                    })
                }
                K::VarSetDefault | K::VarReset => Some(match local {
                    true => SessionChange::LocalResetSearchPath,
                    false => SessionChange::ResetSearchPath,
                }),
                K::Undefined | K::VarSetCurrent | K::VarSetMulti | K::VarResetAll => {
                    Some(SessionChange::Unknown)
                }
            }),
            _ => Ok(None),
        }
    }

    /// `DISCARD ALL` resets every setting.
    pub fn discard(&mut self, n: &DiscardStmt) -> Option<SessionChange> {
        (pb::DiscardMode::try_from(n.target) == Ok(pb::DiscardMode::DiscardAll))
            .then_some(SessionChange::ResetSearchPath)
    }

    /// A function call anywhere in a walked statement: `set_config` of a
    /// guarded or followed setting.
    pub fn function_call(&mut self, f: &FuncCall) -> Res<()> {
        let names: Vec<&str> = strings(&f.funcname);
        let is_set_config = match names.as_slice() {
            [name] | ["pg_catalog", name] => name.eq_ignore_ascii_case("set_config"),
            _ => false,
        };
        if !is_set_config {
            // A user-defined function may call set_config('search_path', …).
            if let Some(name) = names.last()
                && self.snap.is_user_function(name)
            {
                self.session_change = Some(SessionChange::Unknown);
            }
            return Ok(());
        }
        let args = &f.args;
        let Some(name) = args.first().and_then(|v| self.const_string(v)) else {
            return Err(RewriteError::FailClosed {
                what: "set_config with a setting name that is not a literal".into(),
            });
        };
        let name = name.to_lowercase();
        let value = args.get(1).and_then(|v| self.const_string(v));
        let local = args.get(2).and_then(|v| self.const_bool(v));
        match name.as_str() {
            CLIENT_ADDR => Err(RewriteError::SettingDenied {
                name,
                bypass_only: false,
            }),
            VISIBILITY if !self.is_bypass() => Err(RewriteError::SettingDenied {
                name,
                bypass_only: true,
            }),
            VISIBILITY => {
                if args
                    .get(1)
                    .is_some_and(|a| matches!(node(a), Some(NodeRef::AConst(_))))
                {
                    check_visibility(value)?;
                }
                Ok(())
            }
            // Runs where and as often as the expression is evaluated (a
            // CASE branch, once per row, not at all): never followed, the
            // session re-reads the server's value.
            "search_path" => {
                let _ = (value, local);
                self.session_change = Some(SessionChange::Unknown);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A statement after which a `search_path` changed in the transaction may
/// no longer hold.
/// That is COMMIT, ROLLBACK, ROLLBACK TO, PREPARE TRANSACTION.
pub(crate) fn ends_or_undoes(n: NodeRef<'_>) -> bool {
    use pb::TransactionStmtKind as K;
    let NodeRef::TransactionStmt(t) = n else {
        return false;
    };
    match K::try_from(t.kind) {
        Ok(
            K::TransStmtCommit
            | K::TransStmtRollback
            | K::TransStmtRollbackTo
            | K::TransStmtPrepare,
        ) => true,
        Ok(
            K::Undefined
            | K::TransStmtBegin
            | K::TransStmtStart
            | K::TransStmtSavepoint
            | K::TransStmtRelease
            | K::TransStmtCommitPrepared
            | K::TransStmtRollbackPrepared,
        ) => false,
        // A kind this build does not know: assume the worst.
        Err(_) => true,
    }
}

impl<'a> Walker<'a> {
    /// Under an unknown `search_path`: refuses a statement that names a
    /// protected table, or one of tombstone's, without a schema (it could
    /// resolve to a table the proxy did not rewrite for).
    pub(crate) fn refuse_path_dependent(&self, root: NodeRef<'_>) -> Res<()> {
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            if let NodeRef::RangeVar(rv) = n
                && rv.schemaname.is_empty()
            {
                {
                    let name = rv.relname.as_str();
                    let protected = self.snap.tables().iter().any(|t| {
                        t.name == name
                            && (t.is_protected() || t.schema == crate::schema::TOMBSTONE_SCHEMA)
                    });
                    if protected || super::guard::is_tombstone_name(name) {
                        return Err(RewriteError::FailClosed {
                            what: format!(
                                "table name {name} without a schema after a search_path change tombstone cannot follow here"
                            ),
                        });
                    }
                }
            }
            tree::children(n, &mut stack);
        }
        Ok(())
    }
}

fn check_visibility(value: Option<&str>) -> Res<()> {
    match value {
        Some(v) if VISIBILITY_VALUES.contains(&v) => Ok(()),
        other => Err(RewriteError::InvalidSetting {
            name: VISIBILITY.into(),
            value: other.unwrap_or("?").to_string(),
        }),
    }
}

impl<'a> Walker<'a> {
    /// A string constant (`'x'`, or an identifier in `SET`), possibly cast
    /// (`'x'::text`). Reading one makes the decision depend on literals.
    pub(crate) fn const_string<'v>(&mut self, v: &'v Node) -> Option<&'v str> {
        self.reads_literals = true;
        const_string(v)
    }

    fn const_bool(&mut self, v: &Node) -> Option<bool> {
        self.reads_literals = true;
        const_bool(v)
    }

    /// The text of a `String` node that came from a literal (a DO body).
    pub(crate) fn literal_text<'v>(&mut self, s: &'v pb::String) -> &'v str {
        self.reads_literals = true;
        &s.sval
    }
}

fn const_string(v: &Node) -> Option<&str> {
    match node(v)? {
        NodeRef::AConst(c) => match &c.val {
            Some(a_const::Val::Sval(s)) => Some(&s.sval),
            _ => None,
        },
        NodeRef::TypeCast(c) => const_string(c.arg.as_deref()?),
        _ => None,
    }
}

fn const_bool(v: &Node) -> Option<bool> {
    match node(v)? {
        NodeRef::AConst(c) => match &c.val {
            Some(a_const::Val::Boolval(b)) => Some(b.boolval),
            _ => None,
        },
        NodeRef::TypeCast(c) => const_bool(c.arg.as_deref()?),
        _ => None,
    }
}
