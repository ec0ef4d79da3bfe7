//! Functions that run SQL text are refused for normal sessions, whatever
//! their argument and however they are spelled; bypass sessions may call
//! them.

use super::*;

const CALLS: &[&str] = &[
    "SELECT query_to_xml('SELECT name FROM projects', true, false, '')",
    "SELECT query_to_xml('SELECT 1', true, false, '')",
    "SELECT query_to_xml('SELECT name FROM pro' || 'jects', true, false, '')",
    "SELECT query_to_xml(convert_from(decode('53454c454354', 'hex'), 'UTF8'), true, false, '')",
    "SELECT pg_catalog.query_to_xml($1, true, false, '')",
    "SELECT \"query_to_xml\"('SELECT 1', true, false, '')",
    "SELECT QUERY_TO_XML('SELECT 1', true, false, '')",
    "SELECT Query_To_Xml_And_XmlSchema('SELECT 1', true, false, '')",
    "SELECT query_to_xmlschema('SELECT 1', true, false, '')",
    "SELECT table_to_xml('projects', true, false, '')",
    "SELECT table_to_xml('projects'::regclass, true, false, '')",
    "SELECT table_to_xmlschema('tasks', true, false, '')",
    "SELECT table_to_xml_and_xmlschema('tasks', true, false, '')",
    "SELECT schema_to_xml('public', true, false, '')",
    "SELECT schema_to_xmlschema('public', true, false, '')",
    "SELECT schema_to_xml_and_xmlschema('public', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT database_to_xmlschema(true, false, '')",
    "SELECT database_to_xml_and_xmlschema(true, false, '')",
    "SELECT cursor_to_xml('c', 10, true, false, '')",
    "SELECT cursor_to_xmlschema('c', true, false, '')",
    "SELECT * FROM query_to_xml('SELECT 1', true, false, '') AS x",
    "SELECT id FROM tags WHERE name = (SELECT query_to_xml('SELECT 1', true, false, '')::text)",
    "WITH q AS (SELECT table_to_xml('tags', true, false, '')) SELECT * FROM q",
    "INSERT INTO tags (id, name) SELECT 1, query_to_xml('SELECT 1', true, false, '')::text",
    "SELECT * FROM ts_stat('SELECT to_tsvector(title) FROM tasks')",
    "SELECT ts_rewrite('a & b'::tsquery, 'SELECT t, s FROM aliases')",
    "SELECT * FROM crosstab('SELECT 1, 2, 3') AS ct(a int, b int)",
    "SELECT * FROM dblink('dbname=x', 'SELECT name FROM projects') AS t(name text)",
    "SELECT dblink_exec('DELETE FROM projects')",
    "SELECT ext.dblink_open('c', 'SELECT 1')",
    "EXPLAIN SELECT query_to_xml('SELECT 1', true, false, '')",
    "PREPARE p AS SELECT query_to_xml($1, true, false, '')",
    "SELECT 1; SELECT query_to_xml('SELECT 1', true, false, '')",
];

#[test]
fn sql_text_functions_are_refused_for_normal_sessions() {
    for sql in CALLS {
        refused(sql, "42501");
    }
    let snap = scenario();
    let e = rewrite(CALLS[0], &snap, &session()).unwrap_err();
    assert!(e.message().contains("query_to_xml"), "{e}");
}

#[test]
fn the_precheck_parses_every_spelling() {
    let snap = SchemaSnapshot::build(Catalog::default(), &SnapshotOptions::default());
    for sql in CALLS {
        assert!(crate::rewrite::may_need_rewrite(sql, &snap), "{sql}");
    }
    for name in crate::rewrite::sql_text::SQL_TEXT_FUNCTIONS {
        let sql = format!("SELECT {}(1)", name.to_uppercase());
        assert!(crate::rewrite::may_need_rewrite(&sql, &snap), "{sql}");
        refused(&sql, "42501");
    }
}

#[test]
fn bypass_sessions_and_lookalikes_pass() {
    let snap = scenario();
    let admin = bypass(Visibility::Setting);
    for sql in [
        "SELECT query_to_xml('SELECT 1', true, false, '')",
        "SELECT table_to_xml('projects', true, false, '')",
    ] {
        assert!(rewrite(sql, &snap, &admin).is_ok(), "{sql}");
    }
    // The three-argument ts_rewrite runs no SQL; names that merely
    // contain a listed one are other functions.
    unchanged("SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)");
    unchanged("SELECT my_query_to_xml('x')");
    unchanged("SELECT 'query_to_xml'");
}
