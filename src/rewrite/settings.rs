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

use serde_json::Value;

use super::error::RewriteError;
use super::reads::{Res, Walker};
use super::tree::{boolean, field, int, list, node, text};
use super::{Role, SessionChange};

pub(crate) const VISIBILITY: &str = "tombstone.visibility";
pub(crate) const CLIENT_ADDR: &str = "tombstone.client_addr";

/// `VariableSetStmt.kind` values (PostgreSQL's `VariableSetKind`).
const VAR_SET_VALUE: i64 = 1;
const VAR_SET_DEFAULT: i64 = 2;
const VAR_RESET: i64 = 5;
const VAR_RESET_ALL: i64 = 6;
/// `DiscardStmt.target` for `DISCARD ALL`.
const DISCARD_ALL: i64 = 1;
/// `TransactionStmt.kind` values that end a transaction or roll part of
/// it back (COMMIT, ROLLBACK, ROLLBACK TO, PREPARE TRANSACTION): a
/// `search_path` set inside it may be undone.
const TRANS_UNDOING: &[i64] = &[3, 4, 7, 8];

/// The values `tombstone.visibility` accepts (empty: the default, `all`).
const VISIBILITY_VALUES: &[&str] = &["active", "deleted", "all", ""];

impl<'a> Walker<'a> {
    fn is_bypass(&self) -> bool {
        matches!(self.session.role, Role::Bypass { .. })
    }

    /// `SET` / `RESET`: refused, followed, or passed through.
    pub fn variable_set(&mut self, n: &Value) -> Res<Option<SessionChange>> {
        let name = text(n, "name").to_lowercase();
        let kind = int(n, "kind");
        if kind == VAR_RESET_ALL {
            return Ok(Some(SessionChange::ResetSearchPath));
        }
        let local = boolean(n, "is_local");
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
                if kind == VAR_SET_VALUE {
                    let value = match list(n, "args") {
                        [v] => self.const_string(v),
                        _ => None,
                    };
                    check_visibility(value)?;
                }
                Ok(None)
            }
            "search_path" => Ok(match kind {
                VAR_SET_VALUE => {
                    let path: Option<Vec<String>> = list(n, "args")
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
                VAR_SET_DEFAULT | VAR_RESET => Some(match local {
                    true => SessionChange::LocalResetSearchPath,
                    false => SessionChange::ResetSearchPath,
                }),
                _ => Some(SessionChange::Unknown),
            }),
            _ => Ok(None),
        }
    }

    /// `DISCARD ALL` resets every setting.
    pub fn discard(&mut self, n: &Value) -> Option<SessionChange> {
        (int(n, "target") == DISCARD_ALL).then_some(SessionChange::ResetSearchPath)
    }

    /// A function call anywhere in a walked statement: `set_config` of a
    /// guarded or followed setting.
    pub fn function_call(&mut self, f: &Value) -> Res<()> {
        let names: Vec<&str> = list(f, "funcname")
            .iter()
            .filter_map(|s| node(s).map(|(_, s)| text(s, "sval")))
            .collect();
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
        let args = list(f, "args");
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
                if args.get(1).is_some_and(is_const) {
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
pub(crate) fn ends_or_undoes(tree: &Value) -> bool {
    matches!(node(tree), Some(("TransactionStmt", t)) if TRANS_UNDOING.contains(&int(t, "kind")))
}

impl<'a> Walker<'a> {
    /// Under an unknown `search_path`: refuses a statement that names a
    /// protected table, or one of tombstone's, without a schema (it could
    /// resolve to a table the proxy did not rewrite for).
    pub(crate) fn refuse_path_dependent(&self, v: &Value) -> Res<()> {
        match v {
            Value::Array(items) => items.iter().try_for_each(|i| self.refuse_path_dependent(i)),
            Value::Object(map) => {
                if map.contains_key("relname")
                    && map.contains_key("relpersistence")
                    && text(v, "schemaname").is_empty()
                {
                    let name = text(v, "relname");
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
                map.values().try_for_each(|c| self.refuse_path_dependent(c))
            }
            _ => Ok(()),
        }
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

fn is_const(v: &Value) -> bool {
    matches!(node(v), Some(("AConst", _)))
}

impl<'a> Walker<'a> {
    /// A string constant (`'x'`, or an identifier in `SET`), possibly cast
    /// (`'x'::text`). Reading one makes the decision depend on literals.
    pub(crate) fn const_string<'v>(&mut self, v: &'v Value) -> Option<&'v str> {
        self.reads_literals = true;
        const_string(v)
    }

    fn const_bool(&mut self, v: &Value) -> Option<bool> {
        self.reads_literals = true;
        const_bool(v)
    }

    /// The text of a `String` node that came from a literal (a DO body).
    pub(crate) fn literal_text<'v>(&mut self, s: &'v Value) -> &'v str {
        self.reads_literals = true;
        text(s, "sval")
    }
}

fn const_string(v: &Value) -> Option<&str> {
    match node(v)? {
        ("AConst", c) => field(field(c, "val"), "Sval")
            .get("sval")
            .and_then(Value::as_str),
        ("TypeCast", c) => const_string(field(c, "arg")),
        _ => None,
    }
}

fn const_bool(v: &Value) -> Option<bool> {
    match node(v)? {
        ("AConst", c) => field(field(c, "val"), "Boolval")
            .get("boolval")
            .and_then(Value::as_bool),
        ("TypeCast", c) => const_bool(field(c, "arg")),
        _ => None,
    }
}
