//! Table-driven rewriter tests: `check(sql, expected)` on the scenario schema.

mod aliases;
mod cascade;
mod clauses;
mod constraints;
pub mod corpus;
mod delete;
mod mangled;
mod revive;
mod select;
mod session;
mod sql_text;
mod temp;
mod writes;

use super::{Role, SessionContext, Visibility, rewrite};
use crate::schema::{Catalog, FkAction, SchemaSnapshot, SnapshotOptions};

/// The reference scenario schema (tests/scenario/schema.sql), without a
/// database.
pub fn scenario() -> SchemaSnapshot {
    SchemaSnapshot::build(scenario_catalog(), &SnapshotOptions::default())
}

// `scenario_catalog()`: the catalog facts of [`scenario`], shared with the
// bench and proven equal to what the catalog loader reads from
// tests/scenario/schema.sql by `tests/scenario_catalog.rs`.
include!("../../../tests/scenario/catalog.rs");

pub fn session() -> SessionContext {
    SessionContext::normal("app")
}

/// Rewrite with a normal session; assert the output and that it parses.
#[track_caller]
pub fn check(sql: &str, expected: &str) {
    check_with(sql, expected, &session());
}

#[track_caller]
pub fn check_with(sql: &str, expected: &str, session: &SessionContext) {
    check_in(&scenario(), sql, expected, session);
}

#[track_caller]
pub fn check_in(snap: &SchemaSnapshot, sql: &str, expected: &str, session: &SessionContext) {
    let out = match rewrite(sql, snap, session) {
        Ok(r) => r.sql.into_owned(),
        Err(e) => panic!("rewrite of {sql:?} failed: {e}"),
    };
    assert_eq!(out, expected, "\ninput: {sql}");
    assert!(
        pg_query::parse(&out, 0).is_ok(),
        "output does not parse: {out}"
    );
}

/// The statement comes back borrowed, byte for byte.
#[track_caller]
pub fn unchanged(sql: &str) {
    let snap = scenario();
    let out = rewrite(sql, &snap, &session()).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert!(
        matches!(out.sql, std::borrow::Cow::Borrowed(_)),
        "changed: {sql} -> {}",
        out.sql
    );
}

/// The statement is refused with `sqlstate`.
#[track_caller]
pub fn refused(sql: &str, sqlstate: &str) {
    let snap = scenario();
    match rewrite(sql, &snap, &session()) {
        Ok(r) => panic!("{sql} was accepted: {}", r.sql),
        Err(e) => assert_eq!(e.sqlstate(), sqlstate, "{sql}: {e}"),
    }
}

pub fn bypass(visibility: Visibility) -> SessionContext {
    SessionContext {
        role: Role::Bypass { visibility },
        ..session()
    }
}

#[test]
fn constants_are_found_by_the_real_scanner() {
    let sql = "SELECT 'it''s', E'a\\'b', $$dollar$$, 42, 4.2e1, B'01', X'ff', $2 -- '$9 not here'\n FROM t WHERE id = $1 /* 7 */";
    let c = crate::rewrite::parse::constants(sql).unwrap();
    let texts: Vec<&str> = c.literals.iter().map(|&(s, e)| &sql[s..e]).collect();
    assert_eq!(
        texts,
        [
            "'it''s'",
            "E'a\\'b'",
            "$$dollar$$",
            "42",
            "4.2e1",
            "B'01'",
            "X'ff'"
        ]
    );
    let params: Vec<(&str, u32)> = c.params.iter().map(|&(s, e, n)| (&sql[s..e], n)).collect();
    assert_eq!(params, [("$2", 2), ("$1", 1)]);
}
