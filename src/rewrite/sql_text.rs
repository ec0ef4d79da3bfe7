//! Functions that execute SQL text or read whole tables by name inside the
//! server, where the proxy cannot add its predicates: the `*_to_xml`
//! family (`query_to_xml('SELECT …')`, `table_to_xml('projects', …)`,
//! `cursor_to_xml(…)` over a cursor opened by a function), `ts_stat` and
//! `ts_rewrite` with a query, `tablefunc`'s `crosstab` and `connectby`, and
//! `dblink`'s calls. Their argument can be built at run time
//! (concatenation, `convert_from(decode(…))`, a column's value), so a
//! constant check would be a check of one spelling: a normal session's
//! call is refused always (42501), whatever the argument. Bypass sessions
//! may call them.
//!
//! Matched by the function's own name, case-insensitively and in any
//! schema (`pg_catalog.query_to_xml`, `"query_to_xml"`, `QUERY_TO_XML`,
//! an extension's schema). The names are also precheck words
//! ([`super::PRECHECK`]), so a statement naming one is always parsed.

use pg_query::protobuf::FuncCall;

use super::Role;
use super::error::RewriteError;
use super::reads::{Res, Walker};
use super::tree::strings;

/// Built-ins and common extension functions that run SQL text (or read a
/// table, schema or database by name) inside the server.
pub(crate) const SQL_TEXT_FUNCTIONS: &[&str] = &[
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
    "ts_stat",
    "crosstab",
    "crosstab2",
    "crosstab3",
    "crosstab4",
    "connectby",
    "dblink",
    "dblink_exec",
    "dblink_open",
    "dblink_fetch",
    "dblink_send_query",
    "dblink_get_result",
];

/// `ts_rewrite(query, select_text)` runs its second argument; the
/// three-argument form does not.
pub(crate) const TS_REWRITE: &str = "ts_rewrite";

impl<'a> Walker<'a> {
    /// Refuses a normal session's call of a function that runs SQL text.
    pub fn sql_text_call(&self, f: &FuncCall) -> Res<()> {
        if matches!(self.session.role, Role::Bypass { .. }) {
            return Ok(());
        }
        let Some(name) = strings(&f.funcname).last().map(|s| s.to_lowercase()) else {
            return Ok(());
        };
        let runs_sql = SQL_TEXT_FUNCTIONS.contains(&name.as_str())
            || (name == TS_REWRITE && f.args.len() == 2);
        if runs_sql {
            return Err(RewriteError::FailClosed {
                what: format!("function {name}, which runs SQL text or reads a table by name,"),
            });
        }
        Ok(())
    }
}
