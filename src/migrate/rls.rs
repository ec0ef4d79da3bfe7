//! Row-level security on protected tables (SPEC S2): the database's own
//! wall behind the proxy's rewriting.
//!
//! SQL that runs inside the server for a normal role — DO blocks, functions
//! of any language, views (the app's own ones too: with `FORCE ROW LEVEL
//! SECURITY` a table's owner is bound as well), rules, cursors, dynamic
//! `EXECUTE`, `query_to_xml`, statements prepared before protection — is
//! planned with these policies on every protected table:
//!
//! | policy (restrictive)  | command | lets a normal role …                               |
//! |-----------------------|---------|----------------------------------------------------|
//! | `tombstone_select`    | SELECT  | read live rows (and rows this transaction deleted) |
//! | `tombstone_insert`    | INSERT  | insert live rows only                              |
//! | `tombstone_update`    | UPDATE  | change live rows; set the column to NULL or `now()`|
//! | `tombstone_delete`    | DELETE  | physically delete live rows only (the hard-delete guard decides the rest) |
//!
//! plus `tombstone_rows` (permissive, `true`) when the table has no
//! permissive policy of its own, since restrictive policies only narrow
//! what a permissive one allows. An application's own policies keep their
//! meaning: ours are AND-ed to them.
//!
//! Why each clause:
//! - a soft delete is `UPDATE … SET deleted_at = now()`; PostgreSQL checks
//!   the new row against the SELECT policy too, so `deleted_at = now()`
//!   (the transaction's timestamp) passes both. A normal role can thus soft
//!   delete a live row — what the proxy's rewrite does — but not back-date
//!   one (purge fodder), un-delete one, or touch a deleted one. A row it
//!   deleted stays visible to its own transaction until commit: no more than
//!   it could read the moment before;
//! - bypass roles, superusers and the owner of schema `tombstone` see and
//!   change everything (`tombstone.sees_all()`, once per statement);
//! - reviving a soft-deleted row by re-inserting its key (see
//!   `rewrite::revive`: `INSERT … ON CONFLICT (<pk>) DO UPDATE`) needs the
//!   conflicting row to pass the SELECT and UPDATE policies, which
//!   PostgreSQL checks before the `DO UPDATE … WHERE`. So a `BEFORE INSERT`
//!   row trigger (`tombstone_revive`, `SECURITY DEFINER`) looks the new
//!   row's key up and, when a soft-deleted row holds it, records that key
//!   for this backend and statement (`tombstone.revive_mark`); the policies
//!   let exactly that row through for the rest of the statement
//!   (`tombstone.reviving`). The GUC `tombstone.reviving` only says "look":
//!   the record is in an owner-only table. What this opens: during one
//!   INSERT of a soft-deleted row's key, that row (as it was) is readable
//!   and revivable by the inserting statement — what reviving it does
//!   anyway.
//!
//! Roles with `BYPASSRLS` and superusers skip policies; `doctor` names the
//! login roles that do.

use crate::schema::SchemaSnapshot;

/// The functions the policies call and the revive record.
pub const RLS_FUNCTIONS_DDL: &str = r#"
DO $tombstone_rls_role$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = current_user AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'tombstone migrate: role "%" can neither bypass row-level security nor is a superuser', current_user
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Run migrate as a superuser, or ALTER ROLE ... BYPASSRLS: tombstone''s own functions (restore, purge, audit) must see soft-deleted rows.';
  END IF;
END
$tombstone_rls_role$;

-- Does this session see and change soft-deleted rows? (session_user: SET
-- ROLE does not help; the same roles as tombstone.require_bypass.)
CREATE OR REPLACE FUNCTION tombstone.sees_all() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = session_user AND (rolsuper OR rolbypassrls))
      OR pg_catalog.pg_has_role(session_user,
           (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'tombstone'), 'MEMBER')
      OR EXISTS (SELECT 1 FROM tombstone.bypass_roles b JOIN pg_catalog.pg_roles r ON r.rolname = b.role_name
                  WHERE pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
$fn$;

-- Keys being revived, per backend and statement (see tombstone.revive_mark).
CREATE UNLOGGED TABLE IF NOT EXISTS tombstone.reviving (
  pid          int         NOT NULL,
  stmt         timestamptz NOT NULL,
  table_schema text        NOT NULL,
  table_name   text        NOT NULL,
  pk           jsonb       NOT NULL
);
CREATE INDEX IF NOT EXISTS reviving_pid ON tombstone.reviving (pid);

-- Called by the tombstone_revive trigger for an inserted key held by a
-- soft-deleted row: lets that row pass the policies for the rest of this
-- statement. Not callable by normal roles.
CREATE OR REPLACE FUNCTION tombstone.revive_mark(s text, t text, key jsonb) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  DELETE FROM tombstone.reviving WHERE pid = pg_catalog.pg_backend_pid() AND stmt <> pg_catalog.statement_timestamp();
  INSERT INTO tombstone.reviving VALUES (pg_catalog.pg_backend_pid(), pg_catalog.statement_timestamp(), s, t, key);
  PERFORM pg_catalog.set_config('tombstone.reviving', 'on', true);
  RETURN true;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.revive_mark(text, text, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION tombstone.reviving(s text, t text, key jsonb) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT EXISTS (SELECT 1 FROM tombstone.reviving r
                  WHERE r.pid = pg_catalog.pg_backend_pid() AND r.stmt = pg_catalog.statement_timestamp()
                    AND r.table_schema = s AND r.table_name = t AND r.pk = key)
$fn$;
"#;

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `jsonb_build_object('k1', k1, …)` over the bare key columns.
pub fn key_object(prefix: &str, key: &[String]) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|c| format!("{}, {prefix}{}", literal(c), ident(c)))
        .collect();
    format!("pg_catalog.jsonb_build_object({})", parts.join(", "))
}

/// The policies of every protected table in `snapshot`, replaced on every
/// run, and row-level security turned on and forced.
pub fn policies(snapshot: &SchemaSnapshot) -> String {
    let mut sql = String::new();
    for table in snapshot.tables().iter().filter(|t| t.is_protected()) {
        let Some(soft) = &table.soft_delete else {
            continue;
        };
        let rel = format!("{}.{}", ident(&table.schema), ident(&table.name));
        let col = ident(&soft.column);
        let all = "(SELECT tombstone.sees_all())";
        let reviving = if table.primary_key.is_empty() {
            String::new()
        } else {
            format!(
                " OR (pg_catalog.current_setting('tombstone.reviving', true) = 'on' AND tombstone.reviving({}, {}, {}))",
                literal(&table.schema),
                literal(&table.name),
                key_object("", &table.primary_key)
            )
        };
        let now = format!("{col} = pg_catalog.now()");
        if !table.primary_key.is_empty() {
            // `enable_seqscan = off`: PL/pgSQL plans the probe once, and on
            // a table that was empty when it was planned that is a
            // sequential scan, repeated for every row a bulk INSERT adds
            // (quadratic: 10,000 rows took 5.3 s instead of 47 ms). Off,
            // it is always the primary-key index.
            let f = super::triggers::fitted_name(format!("revive_{}_{}", table.schema, table.name));
            let on: Vec<String> = table
                .primary_key
                .iter()
                .map(|c| format!("x.{} = NEW.{}", ident(c), ident(c)))
                .collect();
            sql.push_str(&format!(
                "CREATE OR REPLACE FUNCTION tombstone.{f}() RETURNS trigger
                 LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $fn$
                 BEGIN
                     IF EXISTS (SELECT 1 FROM {rel} x WHERE {on} AND x.{col} IS NOT NULL) THEN
                         PERFORM tombstone.revive_mark({}, {}, {});
                     END IF;
                     RETURN NEW;
                 END
$fn$;
                 CREATE OR REPLACE TRIGGER tombstone_revive BEFORE INSERT ON {rel}
                     FOR EACH ROW EXECUTE FUNCTION tombstone.{f}();
",
                literal(&table.schema),
                literal(&table.name),
                key_object("NEW.", &table.primary_key),
                on = on.join(" AND "),
            ));
        }
        sql.push_str(&format!(
            "ALTER TABLE {rel} ENABLE ROW LEVEL SECURITY;\n\
             ALTER TABLE {rel} FORCE ROW LEVEL SECURITY;\n\
             DROP POLICY IF EXISTS tombstone_select ON {rel};\n\
             DROP POLICY IF EXISTS tombstone_insert ON {rel};\n\
             DROP POLICY IF EXISTS tombstone_update ON {rel};\n\
             DROP POLICY IF EXISTS tombstone_delete ON {rel};\n\
             DROP POLICY IF EXISTS tombstone_rows ON {rel};\n\
             CREATE POLICY tombstone_select ON {rel} AS RESTRICTIVE FOR SELECT\n  \
               USING ({col} IS NULL OR {now} OR {all}{reviving});\n\
             CREATE POLICY tombstone_insert ON {rel} AS RESTRICTIVE FOR INSERT\n  \
               WITH CHECK ({col} IS NULL OR {all});\n\
             CREATE POLICY tombstone_update ON {rel} AS RESTRICTIVE FOR UPDATE\n  \
               USING ({col} IS NULL OR {all}{reviving})\n  \
               WITH CHECK ({col} IS NULL OR {now} OR {all});\n\
             CREATE POLICY tombstone_delete ON {rel} AS RESTRICTIVE FOR DELETE\n  \
               USING ({col} IS NULL OR {all});\n\
             DO $tombstone_rows$BEGIN\n  \
               IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid = {oid}::pg_catalog.regclass AND polpermissive) THEN\n    \
                 CREATE POLICY tombstone_rows ON {rel} AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true);\n  \
               END IF;\nEND$tombstone_rows$;\n",
            oid = literal(&rel),
        ));
    }
    sql
}
