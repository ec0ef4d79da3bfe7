//! The attack table. One `c(…)` line per case:
//!
//! `c(class, name, setups, protocols, needs, expectation, steps)`
//!
//! - setups: `A` (the app role holds only DML grants on its tables, plus
//!   what `tombstone migrate --apply` grants), `B` (the app role owns the
//!   application tables), `AB` both.
//! - protocols: `S` simple query, `E` extended (Parse/Bind/Execute), `SE`
//!   each (two runs).
//! - needs: the defence the case depends on (see `NEEDS` in
//!   `adversarial.rs`); "" when it should hold with what main has had since
//!   before issue 9.
//! - expectation (judged on the attack steps, in order):
//!   - `Refused(codes)`: some step fails with one of `codes`, every step
//!     before it succeeded; later steps are not run (the attack is stopped).
//!   - `Twin`: every step's result (rows, command tag count, SQLSTATE)
//!     equals the same step on the hard-delete twin.
//!   - `RefusedOrTwin(codes)`: each step equals the twin's, until one is
//!     refused with one of `codes` (then the rest are not run).
//!   - `Succeeds(check)`: every step succeeds and `check` (run by the
//!     superuser on the protected database) returns true.
//!   - `RefusedOrSucceeds(codes, check)`: refused as above, or succeeds
//!     with `check` true.
//!
//!   And always, afterwards, the referee (`check.sql`, run as superuser):
//!   no protected row physically removed, no soft-deleted row revived or
//!   changed, every changed row audited, every new soft delete inside the
//!   case's time with an operation, audit rows only by the app's login
//!   role from its true address about real changes of protected tables,
//!   and tombstone's own tables untouched but for new operations and audit.
//!
//! Step syntax: SQL, optionally after prefixes:
//! - `@setup` — must succeed on both databases; not judged.
//! - `@twin` — under `RefusedOrTwin`, this step must equal the twin's (a
//!   refusal does not count): the app's ordinary statement after the trap
//!   was laid must work, and work correctly.
//! - `@1` — the app's second connection through the proxy.
//! - `@direct` — the app's own connection straight to PostgreSQL.
//! - `@opts` — through the proxy, with `options=-c tombstone.client_addr=6.6.6.6
//!   -c tombstone.login_role=postgres` in the startup packet.
//! - `@su` — the superuser, straight to the database (both twins).
//! - `@migrate` — `tombstone migrate --apply` on the protected database.
//! - `@sleep` — 1.5 s, for the proxy's schema refresh.
//! - `@prepare:NAME SQL` — Parse only (extended protocol), never executed
//!   unless `@execute:NAME` follows.
//! - `SQL ||| p1 ||| p2` — extended protocol with text parameters.
//!
//! `{app}` in SQL is replaced by the app role's name.
//!
//! The baseline, before every case (soft deletes through the proxy on the
//! protected database, real DELETEs on the twin): project 2 (cascading to
//! its 500 tasks, their comments, attachments, time entries, its documents,
//! versions, invoices, members), task 1000 (project 1), user 7, category 3.
//! Tasks are interleaved: ids 2, 5, 8, … (id % 3 = 2) belong to project 2
//! and are soft-deleted; all others are live unless a case deletes them.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// No case needs setup A alone today; kept so one can.
    #[allow(dead_code)]
    A,
    B,
    AB,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    S,
    E,
    SE,
}

#[derive(Clone, Copy, Debug)]
pub enum Expect {
    Refused(&'static [&'static str]),
    Twin,
    RefusedOrTwin(&'static [&'static str]),
    Succeeds(&'static str),
    RefusedOrSucceeds(&'static [&'static str], &'static str),
}

pub struct Case {
    pub class: &'static str,
    pub name: &'static str,
    pub on: On,
    pub proto: Proto,
    pub needs: &'static str,
    pub expect: Expect,
    pub steps: &'static [&'static str],
}

use Expect::*;
use On::*;
use Proto::*;

/// insufficient_privilege: every documented refusal of these attacks.
const P: &[&str] = &["42501"];
/// MERGE: refused as unsupported (W5) or as a write to the soft-delete column.
const PM: &[&str] = &["42501", "0A000"];
/// COPY FROM into a table under row-level security: PostgreSQL refuses it
/// for roles the policies bind (0A000).
const PC: &[&str] = &["42501", "0A000"];
/// Dropping or retyping the soft-delete column without CASCADE: PostgreSQL
/// refuses first, since tombstone's policies depend on it (2BP01, 0A000).
const PD: &[&str] = &["42501", "2BP01", "0A000"];

const fn c(
    class: &'static str,
    name: &'static str,
    on: On,
    proto: Proto,
    needs: &'static str,
    expect: Expect,
    steps: &'static [&'static str],
) -> Case {
    Case {
        class,
        name,
        on,
        proto,
        needs,
        expect,
        steps,
    }
}

const ESC: &str = "privilege escalation";
const READ: &str = "reading deleted rows in the server";
const XML: &str = "functions that run SQL text";
const PATH: &str = "search_path drift";
const ALIAS: &str = "column alias lists";
const HIDE: &str = "hiding and un-hiding";
const BUILTIN: &str = "shadowed built-ins";
const FORGE: &str = "forged audit";
const DDL: &str = "app-owned tables: protection-removing DDL";
const CACHE: &str = "cache poisoning";
const TRUNC: &str = "TRUNCATE";
const PHYS: &str = "physical deletes";
const BASE: &str = "baseline: the app's own work";

#[rustfmt::skip]
pub const CASES: &[Case] = &[
    // --- the app's own ordinary work must keep working (and be audited) ---
    c(BASE, "soft delete with RETURNING", AB, SE, "privileges", Twin, &["DELETE FROM tasks WHERE id = 28 RETURNING id, title"]),
    c(BASE, "cascading soft delete", AB, S, "privileges", Twin, &["DELETE FROM projects WHERE id = 1", "SELECT count(*) FROM tasks", "SELECT count(*) FROM comments"]),
    c(BASE, "update and insert are audited", AB, SE, "privileges", Twin, &["UPDATE tasks SET title = 'renamed' WHERE id = 27", "INSERT INTO tags (name) VALUES ('new tag')", "INSERT INTO teams (id, name) VALUES (100, 'new team')"]),
    c(BASE, "reads see live rows only", AB, SE, "", Twin, &["SELECT count(*) FROM tasks", "SELECT name FROM projects ORDER BY id", "SELECT email FROM users WHERE email = 'user7@example.com'"]),
    c(BASE, "ordinary migration: add column and index", B, S, "schemaver", Succeeds("SELECT count(*) = 1 FROM pg_attribute WHERE attrelid = 'tasks'::regclass AND attname = 'note'"), &["ALTER TABLE tasks ADD COLUMN note text", "CREATE INDEX tasks_title ON tasks (title)", "ALTER TABLE tasks ALTER COLUMN title SET DEFAULT 'untitled'", "CREATE TABLE public.new_things (id int PRIMARY KEY, deleted_at timestamptz)"]),
    // --- privilege escalation ---
    c(ESC, "insert into bypass_roles", AB, SE, "privileges", Refused(P), &["INSERT INTO tombstone.bypass_roles VALUES (session_user)"]),
    c(ESC, "insert into bypass_roles from DO", AB, S, "privileges", Refused(P), &["DO $$BEGIN INSERT INTO tombstone.bypass_roles VALUES (session_user); END$$"]),
    c(ESC, "insert into bypass_roles from DO, dynamic", AB, S, "privileges", Refused(P), &["DO $$BEGIN EXECUTE 'INSERT INTO tombstone.' || 'bypass_roles VALUES (session_user)'; END$$"]),
    c(ESC, "bypass_roles from DO, then erase", AB, S, "privileges", Refused(P), &["DO $$BEGIN INSERT INTO tombstone.bypass_roles VALUES (session_user); END$$", "SELECT tombstone.erase('projects', '{\"id\": 1}')"]),
    c(ESC, "bypass_roles from DO, then purge", AB, S, "privileges", Refused(P), &["DO $$BEGIN INSERT INTO tombstone.bypass_roles VALUES (session_user); END$$", "SELECT tombstone.purge_batch('comments', '0 seconds', 100000)"]),
    c(ESC, "bypass_roles from DO, then restore", AB, S, "privileges", Refused(P), &["DO $$BEGIN EXECUTE 'INSERT INTO tombstone.bypass_roles VALUES (session_user)'; END$$", "SELECT tombstone.restore_row('projects', '{\"id\": 2}')"]),
    c(ESC, "erase without escalation", AB, SE, "", Refused(P), &["SELECT tombstone.erase('projects', '{\"id\": 1}')"]),
    c(ESC, "restore without escalation", AB, SE, "", Refused(P), &["SELECT tombstone.restore_row('tasks', '{\"id\": 2}')"]),
    c(ESC, "trash without escalation", AB, SE, "", Refused(P), &["SELECT * FROM tombstone.trash()"]),
    c(ESC, "hard_delete_grants, then DELETE in DO", AB, S, "privileges", Refused(P), &["DO $$BEGIN INSERT INTO tombstone.hard_delete_grants (reason, actor) VALUES ('erase', 'x'); DELETE FROM tasks WHERE id = 3; END$$"]),
    c(ESC, "insert into hard_delete_grants", AB, SE, "privileges", Refused(P), &["INSERT INTO tombstone.hard_delete_grants (reason, actor) VALUES ('purge', 'x')"]),
    c(ESC, "direct: insert into bypass_roles", AB, S, "privileges", Refused(P), &["@direct INSERT INTO tombstone.bypass_roles VALUES (session_user)"]),
    c(ESC, "direct: hard_delete_grants then DELETE", AB, S, "privileges", Refused(P), &["@direct BEGIN", "@direct INSERT INTO tombstone.hard_delete_grants (reason, actor) VALUES ('erase', 'x')", "@direct DELETE FROM tasks WHERE id = 3", "@direct COMMIT"]),
    c(ESC, "read the audit trail", AB, SE, "privileges", Refused(P), &["SELECT count(*) FROM tombstone.audit"]),
    c(ESC, "read operations", AB, SE, "privileges", Refused(P), &["SELECT * FROM tombstone.operations"]),
    c(ESC, "read operation_rows from DO, dynamic", AB, S, "privileges", Refused(P), &["DO $$DECLARE n bigint; BEGIN EXECUTE 'SELECT count(*) FROM tombstone.operation_rows' INTO n; END$$"]),
    c(ESC, "direct: read the audit trail", AB, S, "privileges", Refused(P), &["@direct SELECT count(*) FROM tombstone.audit"]),
    c(ESC, "direct: read bypass_roles", AB, S, "privileges", Refused(P), &["@direct SELECT * FROM tombstone.bypass_roles"]),
    c(ESC, "direct: insert an operation", AB, S, "privileges+sentinel", Refused(P), &["@direct INSERT INTO tombstone.operations (table_schema, table_name) VALUES ('public', 'tasks')"]),
    // --- reading soft-deleted rows from server-side code ---
    c(READ, "DO static SELECT", AB, SE, "rls", RefusedOrTwin(P), &["DO $$DECLARE n bigint; BEGIN SELECT count(*) INTO n FROM projects WHERE id = 2; IF n > 0 THEN RAISE EXCEPTION 'leak: % deleted row(s)', n USING ERRCODE = 'TS001'; END IF; END$$"]),
    c(READ, "DO dynamic EXECUTE", AB, SE, "rls", RefusedOrTwin(P), &["DO $$DECLARE n bigint; BEGIN EXECUTE 'SELECT count(*) FROM projects WHERE id = 2' INTO n; IF n > 0 THEN RAISE EXCEPTION 'leak: % deleted row(s)', n USING ERRCODE = 'TS001'; END IF; END$$"]),
    c(READ, "DO EXECUTE format()", AB, S, "rls", RefusedOrTwin(P), &["DO $$DECLARE n bigint; BEGIN EXECUTE format('SELECT count(*) FROM %I WHERE id = 2', 'projects') INTO n; IF n > 0 THEN RAISE EXCEPTION 'leak: % deleted row(s)', n USING ERRCODE = 'TS001'; END IF; END$$"]),
    c(READ, "DO EXECUTE concatenation", AB, S, "rls", RefusedOrTwin(P), &["DO $$DECLARE n bigint; BEGIN EXECUTE 'SELECT count(*) FROM proj' || 'ects WHERE id = 2' INTO n; IF n > 0 THEN RAISE EXCEPTION 'leak: % deleted row(s)', n USING ERRCODE = 'TS001'; END IF; END$$"]),
    c(READ, "DO EXECUTE convert_from(decode(hex))", AB, S, "rls", RefusedOrTwin(P), &["DO $$DECLARE n bigint; BEGIN EXECUTE convert_from(decode('53454c45435420636f756e74282a292046524f4d2070726f6a65637473205748455245206964203d2032', 'hex'), 'UTF8') INTO n; IF n > 0 THEN RAISE EXCEPTION 'leak: % deleted row(s)', n USING ERRCODE = 'TS001'; END IF; END$$"]),
    c(READ, "DO FOR loop over a cascade", AB, S, "rls", RefusedOrTwin(P), &["DO $$DECLARE r record; n bigint := 0; BEGIN FOR r IN EXECUTE 'SELECT id FROM tasks WHERE project_id = 2' LOOP n := n + 1; END LOOP; IF n > 0 THEN RAISE EXCEPTION 'leak: % deleted row(s)', n USING ERRCODE = 'TS001'; END IF; END$$"]),
    c(READ, "own temp view", AB, SE, "rls", RefusedOrTwin(P), &["CREATE TEMP VIEW v_projects AS SELECT id, name FROM projects", "SELECT name FROM v_projects WHERE id = 2", "SELECT count(*) FROM v_projects"]),
    c(READ, "own security_barrier view", AB, S, "rls", RefusedOrTwin(P), &["CREATE TEMP VIEW v_tasks WITH (security_barrier) AS SELECT id, title, project_id FROM tasks", "SELECT count(*) FROM v_tasks", "SELECT count(*) FROM v_tasks WHERE project_id = 2"]),
    c(READ, "own security_invoker view", AB, S, "rls", RefusedOrTwin(P), &["CREATE TEMP VIEW v_tasks WITH (security_invoker = true) AS SELECT id, title, project_id FROM tasks", "SELECT count(*) FROM v_tasks"]),
    c(READ, "view in public owned by the app", B, S, "rls", RefusedOrTwin(P), &["CREATE VIEW public.v_comments AS SELECT id, task_id, body FROM comments", "SELECT count(*) FROM v_comments", "SELECT count(*) FROM v_comments WHERE task_id = 2"]),
    c(READ, "SQL function", AB, SE, "rls", RefusedOrTwin(P), &["CREATE FUNCTION pg_temp.n_tasks() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM tasks'", "SELECT pg_temp.n_tasks()"]),
    c(READ, "BEGIN ATOMIC function", AB, S, "rls", RefusedOrTwin(P), &["CREATE FUNCTION pg_temp.n_projects() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM projects; END", "SELECT pg_temp.n_projects()"]),
    c(READ, "plpgsql function, dynamic SQL", AB, S, "rls", RefusedOrTwin(P), &["CREATE FUNCTION pg_temp.names(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$BEGIN RETURN QUERY EXECUTE q; END$$", "SELECT * FROM pg_temp.names('SELECT name FROM projects WHERE id = 2')"]),
    c(READ, "SECURITY DEFINER function owned by the app", B, S, "rls", RefusedOrTwin(P), &["CREATE FUNCTION public.sd_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM documents'", "SELECT public.sd_count()"]),
    c(READ, "rule DO INSTEAD SELECT", AB, S, "rls", RefusedOrTwin(P), &["CREATE TEMP TABLE bait (id int)", "CREATE RULE leak AS ON INSERT TO bait DO INSTEAD SELECT name FROM projects WHERE id = 2", "INSERT INTO bait VALUES (1)"]),
    c(READ, "DECLARE CURSOR", AB, SE, "", RefusedOrTwin(P), &["BEGIN", "DECLARE c CURSOR FOR SELECT name FROM projects WHERE id = 2", "FETCH ALL FROM c", "COMMIT"]),
    c(READ, "refcursor from a function", AB, S, "rls", RefusedOrTwin(P), &["CREATE FUNCTION pg_temp.rc() RETURNS refcursor LANGUAGE plpgsql AS $$DECLARE c refcursor := 'rc1'; BEGIN OPEN c FOR SELECT name FROM projects WHERE id = 2; RETURN c; END$$", "BEGIN", "SELECT pg_temp.rc()", "FETCH ALL FROM rc1", "COMMIT"]),
    c(READ, "refcursor with dynamic query in DO", AB, S, "rls", RefusedOrTwin(P), &["BEGIN", "DO $$DECLARE c refcursor := 'rc2'; BEGIN OPEN c FOR EXECUTE 'SELECT title FROM tasks WHERE id = 2'; END$$", "FETCH ALL FROM rc2", "COMMIT"]),
    c(READ, "PREPARE before the table was protected", AB, S, "rls", RefusedOrTwin(P), &["@setup @su CREATE TABLE public.notes (id int PRIMARY KEY, body text)", "@setup @su INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 3) g", "@setup @su GRANT ALL ON public.notes TO {app}", "PREPARE p AS SELECT body FROM notes ORDER BY id", "@su ALTER TABLE public.notes ADD COLUMN deleted_at timestamptz", "@migrate", "@sleep", "DELETE FROM notes WHERE id = 2", "EXECUTE p"]),
    c(READ, "Parse before the table was protected", AB, E, "rls", RefusedOrTwin(P), &["@setup @su CREATE TABLE public.notes (id int PRIMARY KEY, body text)", "@setup @su INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 3) g", "@setup @su GRANT ALL ON public.notes TO {app}", "@prepare:early SELECT body FROM notes ORDER BY id", "@su ALTER TABLE public.notes ADD COLUMN deleted_at timestamptz", "@migrate", "@sleep", "DELETE FROM notes WHERE id = 2", "@execute:early"]),
    // --- functions that run SQL text: refused for normal sessions ---
    c(XML, "query_to_xml", AB, SE, "decisions", Refused(P), &["SELECT query_to_xml('SELECT name FROM projects WHERE id = 2', false, false, '')"]),
    c(XML, "query_to_xml, concatenated text", AB, S, "decisions", Refused(P), &["SELECT query_to_xml('SELECT name FROM ' || 'projects', false, false, '')"]),
    c(XML, "query_to_xml, hex-decoded text", AB, S, "decisions", Refused(P), &["SELECT query_to_xml(convert_from(decode('53454c454354206e616d652046524f4d2070726f6a65637473205748455245206964203d2032', 'hex'), 'UTF8'), false, false, '')"]),
    c(XML, "query_to_xml, text as a parameter", AB, E, "decisions", Refused(P), &["SELECT query_to_xml($1::text, false, false, '') ||| SELECT name FROM projects WHERE id = 2"]),
    c(XML, "table_to_xml", AB, SE, "decisions", Refused(P), &["SELECT table_to_xml('projects', false, false, '')"]),
    c(XML, "table_to_xml_and_xmlschema", AB, S, "decisions", Refused(P), &["SELECT table_to_xml_and_xmlschema('public.tasks'::regclass, false, false, '')"]),
    c(XML, "schema_to_xml", AB, S, "decisions", Refused(P), &["SELECT schema_to_xml('public', false, false, '')"]),
    c(XML, "cursor_to_xml on a function's cursor", AB, S, "decisions", Refused(P), &["@setup CREATE FUNCTION pg_temp.rc3() RETURNS refcursor LANGUAGE plpgsql AS $$DECLARE c refcursor := 'rc3'; BEGIN OPEN c FOR EXECUTE 'SELECT name FROM projects'; RETURN c; END$$", "BEGIN", "SELECT pg_temp.rc3()", "SELECT cursor_to_xml('rc3', 100, false, false, '')"]),
    c(XML, "query_to_xml inside DO", AB, S, "rls", RefusedOrTwin(P), &["DO $$DECLARE x xml; BEGIN x := query_to_xml('SELECT name FROM projects WHERE id = 2', false, false, ''); IF x::text LIKE '%Project 2%' THEN RAISE EXCEPTION 'leak: %', x USING ERRCODE = 'TS001'; END IF; END$$"]),
    // --- search_path drift ---
    c(PATH, "SET in a rolled-back transaction", AB, SE, "decisions", RefusedOrTwin(P), &["BEGIN", "SET search_path = billing", "ROLLBACK", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "SET in an aborted transaction", AB, SE, "decisions", RefusedOrTwin(P), &["BEGIN", "SELECT 1 / 0", "SET search_path = billing", "ROLLBACK", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "SET inside a rolled-back savepoint", AB, S, "decisions", RefusedOrTwin(P), &["BEGIN", "SAVEPOINT s", "SET search_path = billing", "ROLLBACK TO SAVEPOINT s", "SELECT name FROM projects WHERE id = 2", "COMMIT"]),
    c(PATH, "SET LOCAL then COMMIT", AB, S, "decisions", RefusedOrTwin(P), &["BEGIN", "SET LOCAL search_path = billing", "COMMIT", "SELECT title FROM tasks WHERE id = 2"]),
    c(PATH, "set_config with a literal", AB, SE, "decisions", RefusedOrTwin(P), &["SET search_path = billing", "SELECT set_config('search_path', 'public', false)", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "set_config with a non-literal", AB, SE, "decisions", RefusedOrTwin(P), &["SET search_path = billing", "SELECT set_config('search_path', 'pub' || 'lic', false)", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "set_config with a parameter", AB, E, "decisions", RefusedOrTwin(P), &["SET search_path = billing", "SELECT set_config('search_path', $1::text, false) ||| public", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "set_config inside DO", AB, S, "decisions", RefusedOrTwin(P), &["SET search_path = billing", "DO $$BEGIN PERFORM set_config('search_path', 'public', false); END$$", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "SET by EXECUTE inside DO", AB, S, "decisions", RefusedOrTwin(P), &["SET search_path = billing", "DO $$BEGIN EXECUTE 'SET search_path = public'; END$$", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "Parse of a SET never executed", AB, E, "decisions", RefusedOrTwin(P), &["@prepare:never SET search_path = billing", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "temp table shadowing, dropped in DO", AB, S, "decisions+temp-tables", RefusedOrTwin(P), &["CREATE TEMP TABLE projects (id bigint, name text)", "SELECT count(*) FROM projects", "DO $$BEGIN DROP TABLE pg_temp.projects; END$$", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "temp table shadowing, ON COMMIT DROP", AB, SE, "decisions+temp-tables", RefusedOrTwin(P), &["BEGIN", "CREATE TEMP TABLE projects (id bigint, name text) ON COMMIT DROP", "COMMIT", "SELECT name FROM projects WHERE id = 2"]),
    c(PATH, "temp table shadowing is honoured", AB, S, "decisions+temp-tables", RefusedOrTwin(P), &["CREATE TEMP TABLE tasks (id bigint, title text)", "INSERT INTO tasks VALUES (2, 'mine')", "SELECT title FROM tasks WHERE id = 2", "DELETE FROM tasks WHERE id = 2", "SELECT count(*) FROM public.tasks"]),
    c(PATH, "search_path through the startup options", AB, S, "decisions", RefusedOrTwin(P), &["@path SELECT title FROM tasks WHERE id = 2", "@path SELECT count(*) FROM tasks"]),
    // --- column alias lists ---
    c(ALIAS, "deleted_at names another column", AB, SE, "decisions", RefusedOrTwin(P), &["SELECT count(*) FROM tasks AS t(id, project_id, deleted_at, title)"]),
    c(ALIAS, "quoted deleted_at alias", AB, S, "decisions", RefusedOrTwin(P), &["SELECT count(*) FROM projects p(id, team_id, category_id, \"deleted_at\")"]),
    c(ALIAS, "alias list in a join", AB, SE, "decisions", RefusedOrTwin(P), &["SELECT count(*) FROM projects p JOIN tasks AS t(a, b, deleted_at) ON t.b = p.id"]),
    c(ALIAS, "alias list in a CTE", AB, S, "decisions", RefusedOrTwin(P), &["WITH x AS (SELECT * FROM comments c(i, t, deleted_at)) SELECT count(*) FROM x"]),
    c(ALIAS, "alias list in DELETE USING", AB, S, "decisions", RefusedOrTwin(P), &["DELETE FROM time_entries e USING tasks AS t(tid, pid, deleted_at) WHERE e.task_id = t.tid AND t.pid = 2"]),
    c(ALIAS, "alias list in UPDATE FROM", AB, SE, "decisions", RefusedOrTwin(P), &["UPDATE documents d SET title = 'x' FROM projects AS p(pid, a, b, deleted_at) WHERE d.project_id = p.pid AND p.pid = 2"]),
    // --- hiding and un-hiding, changing soft-deleted rows ---
    c(HIDE, "deleted_at to the past", AB, SE, "sentinel", Refused(P), &["UPDATE tasks SET deleted_at = '2000-01-01' WHERE id = 3"]),
    c(HIDE, "deleted_at to the future", AB, S, "sentinel", Refused(P), &["UPDATE tasks SET deleted_at = '2999-01-01' WHERE id = 3"]),
    // A soft delete written by hand: allowed by the policy, and recorded
    // as an operation (audited soft_delete, restorable) by the triggers.
    c(HIDE, "deleted_at to now() is a recorded soft delete", AB, S, "sentinel", RefusedOrSucceeds(P, "SELECT EXISTS (SELECT 1 FROM tombstone.operation_rows r JOIN tombstone.audit a ON a.op_id = r.op_id AND a.pk = r.pk WHERE r.table_name = 'tasks' AND r.pk = '{\"id\": 3}' AND a.action = 'soft_delete')"), &["UPDATE tasks SET deleted_at = now() WHERE id = 3"]),
    c(HIDE, "deleted_at to NULL (un-delete)", AB, SE, "", RefusedOrTwin(P), &["UPDATE tasks SET deleted_at = NULL WHERE id = 2"]),
    c(HIDE, "un-delete from DO", AB, S, "rls", RefusedOrTwin(P), &["DO $$BEGIN UPDATE tasks SET deleted_at = NULL WHERE id = 2; END$$", "SELECT title FROM tasks WHERE id = 2"]),
    c(HIDE, "un-delete a cascade from DO, dynamic", AB, S, "rls", RefusedOrTwin(P), &["DO $$BEGIN EXECUTE 'UPDATE projects SET deleted_at = NULL WHERE id = 2'; EXECUTE 'UPDATE tasks SET deleted_at = NULL WHERE project_id = 2'; END$$", "SELECT count(*) FROM tasks"]),
    c(HIDE, "hide from DO", AB, S, "sentinel", Refused(P), &["DO $$BEGIN UPDATE tasks SET deleted_at = '2000-01-01' WHERE id = 3; END$$"]),
    c(HIDE, "hide from DO, dynamic", AB, S, "sentinel", Refused(P), &["DO $$BEGIN EXECUTE 'UPDATE tasks SET deleted_at = ' || quote_literal('2000-01-01') || ' WHERE id = 3'; END$$"]),
    c(HIDE, "hide via UPDATE … FROM", AB, S, "sentinel", Refused(P), &["UPDATE tasks t SET deleted_at = '2000-01-01' FROM projects p WHERE p.id = t.project_id AND p.id = 1 AND t.id = 4"]),
    c(HIDE, "un-delete via UPDATE … FROM", AB, S, "", RefusedOrTwin(P), &["UPDATE tasks t SET deleted_at = NULL FROM projects p WHERE t.project_id = p.id AND t.id = 2"]),
    c(HIDE, "hide via INSERT … ON CONFLICT DO UPDATE", AB, SE, "sentinel", Refused(P), &["INSERT INTO tasks (id, project_id, title) VALUES (3, 1, 'x') ON CONFLICT (id) DO UPDATE SET deleted_at = '2000-01-01'"]),
    c(HIDE, "hide via MERGE", AB, S, "sentinel", Refused(PM), &["MERGE INTO tasks t USING (SELECT 3 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET deleted_at = '2000-01-01'"]),
    c(HIDE, "un-delete via MERGE", AB, S, "", RefusedOrTwin(PM), &["MERGE INTO tasks t USING (SELECT 2 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET deleted_at = NULL"]),
    c(HIDE, "MERGE … DELETE", AB, S, "", RefusedOrTwin(PM), &["MERGE INTO tasks t USING (SELECT 3 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE"]),
    c(HIDE, "INSERT with deleted_at set", AB, SE, "rls", Refused(P), &["INSERT INTO tasks (project_id, title, deleted_at) VALUES (1, 'hidden', '2000-01-01')"]),
    c(HIDE, "INSERT … SELECT with deleted_at set", AB, S, "rls", Refused(P), &["INSERT INTO comments (task_id, body, deleted_at) SELECT 1, 'hidden', now()"]),
    c(HIDE, "INSERT with deleted_at from DO", AB, S, "rls", Refused(P), &["DO $$BEGIN INSERT INTO tasks (project_id, title, deleted_at) VALUES (1, 'hidden', '2000-01-01'); END$$"]),
    c(HIDE, "COPY FROM with deleted_at", AB, S, "rls", Refused(PC), &["@copy COPY tasks (project_id, title, deleted_at) FROM STDIN ||| 1\thidden\t2000-01-01\n"]),
    c(HIDE, "change a soft-deleted row", AB, SE, "privileges", Twin, &["UPDATE tasks SET title = 'pwned' WHERE id = 2", "UPDATE projects SET name = 'pwned' WHERE id = 2"]),
    c(HIDE, "change soft-deleted rows from DO", AB, S, "rls", RefusedOrTwin(P), &["DO $$BEGIN UPDATE tasks SET title = 'pwned' WHERE id = 2; EXECUTE 'UPDATE comments SET body = ''pwned'' WHERE task_id = 2'; END$$"]),
    c(HIDE, "change soft-deleted rows from a function", AB, S, "rls", RefusedOrTwin(P), &["CREATE FUNCTION pg_temp.u() RETURNS bigint LANGUAGE sql AS 'WITH u AS (UPDATE tasks SET title = ''x'' WHERE project_id = 2 RETURNING 1) SELECT count(*) FROM u'", "SELECT pg_temp.u()"]),
    c(HIDE, "change soft-deleted rows via a rule", AB, S, "rls", RefusedOrTwin(P), &["CREATE TEMP TABLE bait (id int)", "CREATE RULE upd AS ON INSERT TO bait DO INSTEAD UPDATE documents SET title = 'pwned' WHERE project_id = 2", "INSERT INTO bait VALUES (1)"]),
    c(HIDE, "DO sentinel 'infinity' is an audited soft delete", AB, S, "sentinel", RefusedOrSucceeds(P, "SELECT t.deleted_at IS NOT NULL AND t.deleted_at < 'infinity' AND (SELECT bool_and(c.deleted_at = t.deleted_at) FROM comments c WHERE c.task_id = 7) FROM tasks t WHERE t.id = 7"), &["DO $$BEGIN UPDATE tasks SET deleted_at = 'infinity' WHERE id = 7; END$$"]),
    // Row-level security lets a normal role set the soft-delete column to
    // `now()` only (a soft delete the triggers record): any other value,
    // 'infinity' included, is refused by the policy.
    c(HIDE, "direct: 'infinity' is refused", AB, S, "privileges+sentinel", Refused(P), &["@direct UPDATE tasks SET deleted_at = 'infinity' WHERE id = 6"]),
    c(HIDE, "client writes the sentinel itself", AB, S, "sentinel", RefusedOrSucceeds(P, "SELECT deleted_at IS NOT NULL AND deleted_at < 'infinity' FROM tasks WHERE id = 7"), &["UPDATE tasks SET deleted_at = 'infinity' WHERE id = 7"]),
    c(HIDE, "direct: hide", AB, S, "sentinel", Refused(P), &["@direct UPDATE tasks SET deleted_at = '2000-01-01' WHERE id = 3"]),
    c(HIDE, "direct: un-delete", AB, S, "privileges+rls", Twin, &["@direct UPDATE tasks SET deleted_at = NULL WHERE id = 2", "@direct UPDATE projects SET deleted_at = NULL WHERE id = 2"]),
    c(HIDE, "direct: change a soft-deleted row", AB, S, "privileges+rls", Twin, &["@direct UPDATE comments SET body = 'pwned' WHERE task_id = 2"]),
    c(HIDE, "direct: read", AB, S, "rls", Twin, &["@direct SELECT count(*) FROM tasks", "@direct SELECT name FROM projects WHERE id = 2"]),
    // --- shadowed built-ins (CREATE on public: the app owns its schema) ---
    c(BUILTIN, "public.now() back-dates soft deletes", B, S, "privileges+qualified", RefusedOrTwin(P), &["CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$", "SET search_path = public, pg_catalog", "@twin DELETE FROM tasks WHERE id = 10", "@twin DELETE FROM projects WHERE id = 3"]),
    c(BUILTIN, "public.now() and the DO sentinel", B, S, "qualified", RefusedOrSucceeds(P, "SELECT deleted_at > '2001-01-01' AND deleted_at < 'infinity' FROM tasks WHERE id = 9"), &["CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$", "SET search_path = public, pg_catalog", "DO $$BEGIN UPDATE tasks SET deleted_at = 'infinity' WHERE id = 9; END$$"]),
    c(BUILTIN, "public.to_jsonb empties audit values", B, S, "privileges+qualified", RefusedOrTwin(P), &["CREATE FUNCTION public.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS $$SELECT '{}'::jsonb$$", "SET search_path = public, pg_catalog", "@twin DELETE FROM tasks WHERE id = 10", "@twin UPDATE tasks SET title = 'renamed' WHERE id = 13"]),
    c(BUILTIN, "public.jsonb_build_object forges keys", B, S, "privileges+qualified", RefusedOrTwin(P), &["CREATE FUNCTION public.jsonb_build_object(text, bigint) RETURNS jsonb LANGUAGE sql AS $$SELECT '{\"id\": 1}'::jsonb$$", "SET search_path = public, pg_catalog", "@twin DELETE FROM tasks WHERE id = 12", "@twin UPDATE tasks SET done = NOT done WHERE id = 13"]),
    c(BUILTIN, "public.to_regclass hides soft deletes from the audit", B, S, "privileges+qualified", RefusedOrTwin(P), &["CREATE FUNCTION public.to_regclass(text) RETURNS regclass LANGUAGE sql AS $$SELECT NULL::regclass$$", "SET search_path = public, pg_catalog", "@twin DELETE FROM tasks WHERE id = 16"]),
    c(BUILTIN, "public.current_setting forges the address", B, S, "privileges+qualified", RefusedOrTwin(P), &["CREATE FUNCTION public.current_setting(text, boolean) RETURNS text LANGUAGE sql AS $$SELECT '6.6.6.6'::text$$", "SET search_path = public, pg_catalog", "@twin DELETE FROM tasks WHERE id = 15", "@twin UPDATE tasks SET title = 'x' WHERE id = 16"]),
    c(BUILTIN, "operator = in public", B, S, "privileges+qualified", RefusedOrTwin(P), &["CREATE FUNCTION public.ts_eq(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true'", "CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.ts_eq)", "SET search_path = public, pg_catalog", "@twin DELETE FROM tasks WHERE id BETWEEN 19 AND 19", "SELECT count(*) FROM pg_catalog.pg_class WHERE relname OPERATOR(pg_catalog.=) 'tasks'"]),
    // --- forged audit ---
    c(FORGE, "SET tombstone.client_addr", AB, SE, "", Refused(P), &["SET tombstone.client_addr = '6.6.6.6'"]),
    c(FORGE, "RESET tombstone.client_addr", AB, S, "", Refused(P), &["RESET tombstone.client_addr"]),
    c(FORGE, "set_config('tombstone.client_addr') literal", AB, SE, "", Refused(P), &["SELECT set_config('tombstone.client_addr', '6.6.6.6', false)"]),
    c(FORGE, "set_config('tombstone.client_addr') non-literal, then a change", AB, S, "privileges+audit-identity", RefusedOrTwin(P), &["SELECT set_config('tombstone.' || 'client_addr', '6.6.6.6', false)", "@twin DELETE FROM tasks WHERE id = 18"]),
    c(FORGE, "set_config in DO, then a soft delete", AB, S, "privileges+audit-identity", RefusedOrTwin(P), &["DO $$BEGIN PERFORM set_config('tombstone.client_addr', '6.6.6.6', false); END$$", "@twin DELETE FROM tasks WHERE id = 19"]),
    c(FORGE, "set_config is_local in a transaction", AB, S, "privileges+audit-identity", RefusedOrTwin(P), &["BEGIN", "SELECT set_config('tombstone.client' || '_addr', '6.6.6.6', true)", "@twin UPDATE tasks SET title = 'y' WHERE id = 22", "COMMIT"]),
    c(FORGE, "client_addr and login_role in the startup packet", AB, S, "privileges+audit-identity", RefusedOrTwin(P), &["@opts UPDATE tasks SET title = 'o' WHERE id = 21", "@opts DELETE FROM tasks WHERE id = 22"]),
    c(FORGE, "tombstone.login_role setting", AB, S, "privileges+audit-identity", RefusedOrTwin(P), &["SELECT set_config('tombstone.' || 'login_role', 'postgres', false)", "@twin DELETE FROM tasks WHERE id = 25"]),
    c(FORGE, "actor is the client's to set, login and address are not", AB, S, "privileges+audit-identity", Succeeds("SELECT count(*) = 1 FROM tombstone.audit WHERE table_name = 'tasks' AND pk = '{\"id\": 24}' AND action = 'soft_delete' AND actor = 'alice' AND login_role = '{app}' AND client_addr = '127.0.0.1'"), &["SET tombstone.actor = 'alice'", "DELETE FROM tasks WHERE id = 24"]),
    c(FORGE, "insert an erase audit row from DO", AB, S, "privileges", Refused(P), &["DO $$BEGIN INSERT INTO tombstone.audit (table_schema, table_name, pk, action, actor) VALUES ('public', 'projects', '{\"id\": 1}', 'erase', 'alice'); END$$"]),
    c(FORGE, "insert an audit row", AB, SE, "", Refused(P), &["INSERT INTO tombstone.audit (table_schema, table_name, pk, action, actor, login_role, client_addr) VALUES ('public', 'tasks', '{\"id\": 1}', 'soft_delete', 'alice', 'postgres', '6.6.6.6')"]),
    c(FORGE, "update audit rows from DO", AB, S, "privileges", Refused(P), &["DO $$BEGIN UPDATE tombstone.audit SET client_addr = '6.6.6.6'; END$$"]),
    c(FORGE, "delete audit rows from DO, dynamic", AB, S, "privileges", Refused(P), &["DO $$BEGIN EXECUTE 'DELETE FROM tombstone.' || 'audit'; END$$"]),
    c(FORGE, "direct: insert an audit row", AB, S, "privileges", Refused(P), &["@direct INSERT INTO tombstone.audit (table_schema, table_name, pk, action, actor) VALUES ('public', 'projects', '{\"id\": 1}', 'erase', 'alice')"]),
    c(FORGE, "direct: set_config then a change", AB, S, "privileges+audit-identity", RefusedOrTwin(P), &["@direct SELECT set_config('tombstone.client_addr', '6.6.6.6', false)", "@twin @direct UPDATE tasks SET title = 'z' WHERE id = 25"]),
    c(FORGE, "direct: truncate the audit trail", AB, S, "privileges", Refused(P), &["@direct TRUNCATE tombstone.audit"]),
    // --- app-owned tables: DDL that removes protection ---
    c(DDL, "drop deleted_at", B, SE, "schemaver", Refused(PD), &["ALTER TABLE tasks DROP COLUMN deleted_at"]),
    c(DDL, "drop deleted_at, CASCADE", B, S, "schemaver", Refused(P), &["ALTER TABLE comments DROP COLUMN deleted_at CASCADE"]),
    c(DDL, "rename deleted_at", B, S, "schemaver", Refused(P), &["ALTER TABLE tasks RENAME COLUMN deleted_at TO gone"]),
    c(DDL, "retype deleted_at", B, S, "schemaver", Refused(PD), &["ALTER TABLE tasks ALTER COLUMN deleted_at TYPE text"]),
    c(DDL, "drop deleted_at from DO", B, S, "schemaver", Refused(P), &["DO $$BEGIN EXECUTE 'ALTER TABLE projects DROP COLUMN deleted_at CASCADE'; END$$"]),
    c(DDL, "DISABLE TRIGGER USER, then DELETE in DO", B, S, "schemaver", Refused(P), &["ALTER TABLE tasks DISABLE TRIGGER USER", "DO $$BEGIN EXECUTE 'DELETE FROM tasks WHERE id = 28'; END$$"]),
    c(DDL, "DISABLE TRIGGER ALL, then a direct DELETE", B, S, "schemaver", Refused(P), &["ALTER TABLE comments DISABLE TRIGGER ALL", "@direct DELETE FROM comments WHERE task_id = 2"]),
    c(DDL, "disable the audit trigger", B, S, "schemaver", Refused(P), &["ALTER TABLE tasks DISABLE TRIGGER tombstone_audit_update", "UPDATE tasks SET title = 'unaudited' WHERE id = 31"]),
    c(DDL, "drop the guard trigger", B, S, "schemaver", Refused(P), &["DROP TRIGGER tombstone_guard_delete ON tasks", "@direct DELETE FROM tasks WHERE id = 30"]),
    c(DDL, "BEFORE UPDATE trigger keeps the row live", B, S, "schemaver", Refused(P), &["CREATE FUNCTION public.keep() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.deleted_at := NULL; RETURN NEW; END$$", "CREATE TRIGGER keep BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION public.keep()", "DELETE FROM tasks WHERE id = 31"]),
    c(DDL, "BEFORE UPDATE trigger vetoes the soft delete", B, S, "schemaver", Refused(P), &["CREATE FUNCTION public.veto() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$", "CREATE TRIGGER veto BEFORE UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION public.veto()", "DELETE FROM projects WHERE id = 1"]),
    c(DDL, "NO FORCE ROW LEVEL SECURITY", B, S, "schemaver+rls", Refused(P), &["ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY", "@direct SELECT count(*) FROM tasks WHERE id = 2"]),
    c(DDL, "DISABLE ROW LEVEL SECURITY", B, S, "schemaver+rls", Refused(P), &["ALTER TABLE projects DISABLE ROW LEVEL SECURITY", "@direct SELECT name FROM projects WHERE id = 2"]),
    c(DDL, "DROP POLICY", B, S, "rls+schemaver", Refused(P), &["DROP POLICY tombstone_select ON tasks", "@direct SELECT count(*) FROM tasks WHERE id = 2"]),
    c(DDL, "ALTER POLICY", B, S, "rls+schemaver", Refused(P), &["ALTER POLICY tombstone_select ON tasks USING (true)", "@direct SELECT count(*) FROM tasks WHERE id = 2"]),
    c(DDL, "extra permissive policy", B, S, "rls+schemaver", RefusedOrTwin(P), &["CREATE POLICY open_all ON projects FOR SELECT USING (true)", "@direct SELECT name FROM projects WHERE id = 2", "@direct UPDATE projects SET deleted_at = NULL WHERE id = 2"]),
    c(DDL, "CREATE RULE on a protected table", B, S, "schemaver", Refused(P), &["CREATE RULE nothing AS ON UPDATE TO tasks DO INSTEAD NOTHING", "DELETE FROM tasks WHERE id = 34"]),
    c(DDL, "drop a table holding soft-deleted rows", B, SE, "schemaver", Refused(P), &["DROP TABLE document_versions"]),
    c(DDL, "drop a table holding soft-deleted rows, CASCADE", B, S, "schemaver", Refused(P), &["DROP TABLE projects CASCADE"]),
    // --- cache poisoning ---
    c(CACHE, "harmless DO, then a reading DO elsewhere", AB, SE, "decisions+rls", RefusedOrTwin(P), &["DO $$BEGIN EXECUTE 'SELECT 1'; END$$", "@1 DO $$DECLARE n bigint; BEGIN EXECUTE 'SELECT count(*) FROM projects WHERE id = 2' INTO n; IF n > 0 THEN RAISE EXCEPTION 'leak: % deleted row(s)', n USING ERRCODE = 'TS001'; END IF; END$$"]),
    c(CACHE, "harmless DO, then an un-deleting DO elsewhere", AB, SE, "decisions+rls", RefusedOrTwin(P), &["DO $$BEGIN PERFORM 1; END$$", "@1 DO $$BEGIN UPDATE tasks SET deleted_at = NULL WHERE id = 2; END$$", "@1 SELECT title FROM tasks WHERE id = 2"]),
    c(CACHE, "harmless DO, then a hard-deleting DO", AB, S, "decisions", RefusedOrTwin(P), &["DO $$BEGIN PERFORM 1; END$$", "@1 DO $$BEGIN DELETE FROM tasks WHERE id = 33; END$$"]),
    c(CACHE, "harmless query_to_xml, then a reading one", AB, SE, "decisions", RefusedOrTwin(P), &["SELECT query_to_xml('SELECT 1', false, false, '')", "@1 SELECT query_to_xml('SELECT name FROM projects WHERE id = 2', false, false, '')"]),
    c(CACHE, "harmless alias, then deleted_at alias", AB, SE, "decisions", RefusedOrTwin(P), &["SELECT count(*) FROM tasks AS t(id, project_id, x) WHERE id > 1", "@1 SELECT count(*) FROM tasks AS t(id, project_id, deleted_at) WHERE id > 1"]),
    c(CACHE, "harmless deleted_at write, then a hiding one", AB, SE, "decisions+sentinel", RefusedOrTwin(P), &["UPDATE tasks SET deleted_at = NULL WHERE id = 1", "@1 UPDATE tasks SET deleted_at = '2000-01-01' WHERE id = 3"]),
    c(CACHE, "visibility setting from DO", AB, S, "decisions+rls", RefusedOrTwin(P), &["DO $$BEGIN PERFORM set_config('tombstone.visibility', 'all', false); END$$", "SELECT count(*) FROM tasks"]),
    c(CACHE, "visibility setting", AB, SE, "", Refused(P), &["SELECT set_config('tombstone.visibility', 'all', false)"]),
    // --- TRUNCATE ---
    c(TRUNC, "TRUNCATE", AB, SE, "", Refused(P), &["TRUNCATE tasks"]),
    c(TRUNC, "TRUNCATE ONLY", AB, S, "", Refused(P), &["TRUNCATE ONLY comments"]),
    c(TRUNC, "TRUNCATE CASCADE", AB, S, "", Refused(P), &["TRUNCATE projects CASCADE"]),
    c(TRUNC, "TRUNCATE several tables, one unprotected", AB, S, "", Refused(P), &["TRUNCATE tags, task_tags, attachments"]),
    c(TRUNC, "TRUNCATE quoted and qualified, RESTART IDENTITY", AB, S, "", Refused(P), &["TRUNCATE TABLE \"billing\".\"invoices\" RESTART IDENTITY"]),
    c(TRUNC, "TRUNCATE through a view", AB, S, "", RefusedOrTwin(P), &["CREATE TEMP VIEW tv AS SELECT * FROM time_entries", "TRUNCATE tv"]),
    c(TRUNC, "TRUNCATE from DO", AB, S, "", Refused(P), &["DO $$BEGIN TRUNCATE tasks CASCADE; END$$"]),
    c(TRUNC, "TRUNCATE from DO, dynamic", AB, S, "", Refused(P), &["DO $$BEGIN EXECUTE 'TRUNCATE ' || 'comm' || 'ents'; END$$"]),
    c(TRUNC, "direct TRUNCATE", AB, S, "", Refused(P), &["@direct TRUNCATE documents CASCADE"]),
    // --- physical deletes from server-side code ---
    c(PHYS, "DELETE from DO", AB, S, "", Refused(P), &["DO $$BEGIN DELETE FROM tasks WHERE id = 34; END$$"]),
    c(PHYS, "DELETE from DO, dynamic", AB, S, "", Refused(P), &["DO $$BEGIN EXECUTE 'DELETE FROM ' || 'tasks WHERE id = 37'; END$$"]),
    c(PHYS, "cascading DELETE from DO", AB, S, "", Refused(P), &["DO $$BEGIN EXECUTE 'DELETE FROM projects WHERE id = 1'; END$$"]),
    c(PHYS, "DELETE in a SQL function", AB, SE, "", Refused(P), &["CREATE FUNCTION pg_temp.del() RETURNS void LANGUAGE sql AS 'DELETE FROM attachments WHERE task_id = 36'", "SELECT pg_temp.del()"]),
    c(PHYS, "DELETE in a SECURITY DEFINER function owned by the app", B, S, "", Refused(P), &["CREATE FUNCTION public.sd_del() RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN EXECUTE 'DELETE FROM tasks WHERE id = 37'; END$$", "SELECT public.sd_del()"]),
    c(PHYS, "DELETE of soft-deleted rows from a function", AB, S, "", Refused(P), &["CREATE FUNCTION pg_temp.purge_mine() RETURNS void LANGUAGE plpgsql AS $$BEGIN EXECUTE 'DELETE FROM comments WHERE task_id = 2'; END$$", "SELECT pg_temp.purge_mine()"]),
    c(PHYS, "DELETE through a rule", AB, S, "", Refused(P), &["CREATE TEMP TABLE bait (id int)", "CREATE RULE del AS ON INSERT TO bait DO INSTEAD DELETE FROM tasks WHERE id = 40", "INSERT INTO bait VALUES (1)"]),
    c(PHYS, "direct DELETE", AB, S, "", Refused(P), &["@direct DELETE FROM tasks WHERE id = 39"]),
    c(PHYS, "direct DELETE of soft-deleted rows", AB, S, "", Refused(P), &["@direct DELETE FROM projects WHERE id = 2"]),
    c(PHYS, "writable CTE DELETE is soft", AB, SE, "privileges", Twin, &["WITH d AS (DELETE FROM tasks WHERE id = 40 RETURNING id) SELECT count(*) FROM d"]),
];
