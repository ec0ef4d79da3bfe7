//! Auditing INSERT and UPDATE on protected tables: one statement-level
//! AFTER trigger per table and operation, reading the transition tables, so
//! audit rows are written set-based by the very statement that made the
//! change (a rollback removes them), whether it came through tombstone or
//! not. Soft deletes and restores are audited by their own statements (with
//! the operation id), so the UPDATE trigger skips rows whose only change is
//! the soft-delete column flipping between NULL and a time, and the SET NULL
//! columns an operation changed (or a restore of it puts back).
//!
//! Which tables and operations are audited is read at run time from
//! `tombstone.audit_settings`, which `serve` fills from `[audit]` in
//! rules.toml; a missing row means "audit".

use crate::schema::SchemaSnapshot;

/// The settings table, the actor and settings functions, and the audit of
/// soft deletes from `tombstone.operation_rows`.
pub const AUDIT_FUNCTIONS_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS tombstone;

CREATE TABLE IF NOT EXISTS tombstone.audit_settings (
  table_schema text    NOT NULL,
  table_name   text    NOT NULL,
  inserts      boolean NOT NULL,
  updates      boolean NOT NULL,
  PRIMARY KEY (table_schema, table_name)
);

-- %XX escapes, as sqlcommenter writes values.
CREATE OR REPLACE FUNCTION tombstone.url_decode(s text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
  out bytea := '';
  i int := 1;
BEGIN
  WHILE i <= length(s) LOOP
    IF substr(s, i, 1) = '%' AND substr(s, i + 1, 2) ~ '^[0-9A-Fa-f]{2}$' THEN
      out := out || decode(substr(s, i + 1, 2), 'hex');
      i := i + 3;
    ELSE
      out := out || convert_to(substr(s, i, 1), 'UTF8');
      i := i + 1;
    END IF;
  END LOOP;
  RETURN convert_from(out, 'UTF8');
EXCEPTION WHEN others THEN
  RETURN s;
END
$fn$;

-- Who is acting: a sqlcommenter `actor='…'` on the statement, else
-- `tombstone.actor` set in the session or transaction, else the login role.
CREATE OR REPLACE FUNCTION tombstone.current_actor() RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(
    tombstone.url_decode(substring(current_query() FROM $re$/\*[^*]*\mactor='([^']*)'[^*]*\*/$re$)),
    nullif(current_setting('tombstone.actor', true), ''),
    session_user::text)
$fn$;

CREATE OR REPLACE FUNCTION tombstone.audit_enabled(s text, t text, op text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(
    (SELECT CASE WHEN op = 'INSERT' THEN inserts ELSE updates END
       FROM tombstone.audit_settings WHERE table_schema = s AND table_name = t),
    (SELECT CASE WHEN op = 'INSERT' THEN inserts ELSE updates END
       FROM tombstone.audit_settings WHERE table_schema = '*' AND table_name = '*'),
    true)
$fn$;

-- Soft deletes are audited from what the rewritten statement records in
-- tombstone.operation_rows: at the end of that statement, one audit row per
-- soft-deleted or SET NULL/DEFAULT row, with the operation id, the row as
-- it is now (new values) and as it was (old values: the soft-delete columns
-- back to NULL, or the recorded old foreign-key values).
CREATE OR REPLACE FUNCTION tombstone.audit_operation_rows() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  t record;
  rel regclass;
  args text[];
  sd text;
  by_col text;
  pk_join text;
  actor text := tombstone.current_actor();
BEGIN
  FOR t IN SELECT DISTINCT table_schema, table_name FROM tombstone_new_rows WHERE op_id IS NOT NULL LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    SELECT string_to_array(encode(tg.tgargs, 'escape'), '\000') INTO args
      FROM pg_trigger tg WHERE tg.tgrelid = rel AND tg.tgname = 'tombstone_audit_update';
    sd := coalesce(args[1], 'deleted_at');
    by_col := coalesce(args[2], 'deleted_by');
    SELECT string_agg(format('x.%I = (r.pk ->> %L)::%s', a.attname, a.attname,
                             format_type(a.atttypid, a.atttypmod)), ' AND ') INTO pk_join
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = rel AND i.indisprimary;
    CONTINUE WHEN pk_join IS NULL;
    EXECUTE format(
      'INSERT INTO tombstone.audit (table_schema, table_name, pk, action, old_values, new_values, actor, op_id)
       SELECT r.table_schema, r.table_name, r.pk, r.action,
              CASE WHEN r.action = ''soft_delete''
                   THEN xj.j || jsonb_build_object(%L, NULL)
                        || CASE WHEN xj.j ? %L THEN jsonb_build_object(%L, NULL) ELSE ''{}''::jsonb END
                   ELSE xj.j || coalesce(r.old_values, ''{}''::jsonb) END,
              xj.j, %L, r.op_id
       FROM tombstone_new_rows r
       JOIN %s x ON %s
       CROSS JOIN LATERAL (SELECT to_jsonb(x.*) AS j OFFSET 0) xj
       WHERE r.op_id IS NOT NULL AND r.table_schema = %L AND r.table_name = %L',
      sd, by_col, by_col, actor, rel, pk_join, t.table_schema, t.table_name);
  END LOOP;
  IF tombstone.notify_channel() IS NOT NULL THEN
    FOR t IN SELECT r.op_id, r.table_schema, r.table_name, jsonb_agg(r.pk) AS keys FROM tombstone_new_rows r
              WHERE r.op_id IS NOT NULL AND r.action = 'soft_delete' GROUP BY 1, 2, 3 LOOP
      PERFORM tombstone.notify_change('soft_delete', t.table_schema, t.table_name, t.op_id, t.keys);
    END LOOP;
  END IF;
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE TRIGGER tombstone_audit_operation_rows AFTER INSERT ON tombstone.operation_rows
  REFERENCING NEW TABLE AS tombstone_new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION tombstone.audit_operation_rows();
"#;

/// A SQL identifier, quoted.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The INSERT and UPDATE triggers of every protected table in `snapshot`,
/// each with a function of its own: static SQL, so PL/pgSQL plans it once
/// per session instead of at every statement. A table protected after the
/// last migrate has no audit triggers until migrate runs again. The
/// triggers carry the soft-delete column, the deleted-by
/// column and the key columns as arguments, which the operation-rows audit
/// reads.
pub fn audit_triggers(snapshot: &SchemaSnapshot) -> String {
    let mut sql = String::new();
    for (id, table) in snapshot
        .tables()
        .iter()
        .enumerate()
        .filter(|(_, t)| t.is_protected())
    {
        let Some(soft) = &table.soft_delete else {
            continue;
        };
        let by = soft.by_column.as_deref().unwrap_or("deleted_by");
        let mut args = vec![literal(&soft.column), literal(by)];
        args.extend(table.primary_key.iter().map(|c| literal(c)));
        let args = args.join(", ");
        let name = format!("{}.{}", ident(&table.schema), ident(&table.name));
        let insert_fn = function_name("insert", &table.schema, &table.name);
        let update_fn = function_name("update", &table.schema, &table.name);
        sql.push_str(&insert_function(
            &insert_fn,
            &table.schema,
            &table.name,
            &table.primary_key,
        ));
        sql.push_str(&update_function(
            &update_fn,
            &table.schema,
            &table.name,
            &table.primary_key,
            &soft.column,
            by,
            &super::operations::recording(snapshot, id),
        ));
        sql.push_str(&format!(
            "CREATE OR REPLACE TRIGGER tombstone_audit_insert AFTER INSERT ON {name}\n  \
             REFERENCING NEW TABLE AS tombstone_new FOR EACH STATEMENT\n  \
             EXECUTE FUNCTION tombstone.{insert_fn}({args});\n\
             CREATE OR REPLACE TRIGGER tombstone_audit_update AFTER UPDATE ON {name}\n  \
             REFERENCING OLD TABLE AS tombstone_old NEW TABLE AS tombstone_new FOR EACH STATEMENT\n  \
             EXECUTE FUNCTION tombstone.{update_fn}({args});\n"
        ));
    }
    sql
}

/// `audit_<op>_<schema>_<table>`, quoted, shortened with a hash when it
/// would pass PostgreSQL's 63-byte limit.
fn function_name(op: &str, schema: &str, table: &str) -> String {
    fitted_name(format!("audit_{op}_{schema}_{table}"))
}

/// `full`, quoted, shortened with a hash when it would pass PostgreSQL's
/// 63-byte limit.
pub(super) fn fitted_name(full: String) -> String {
    if full.len() <= 63 {
        return ident(&full);
    }
    // FNV-1a: stable across runs and platforms.
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut cut = 50;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    ident(&format!("{}_{:08x}", &full[..cut], hash as u32))
}

/// `jsonb_build_object('k1', <alias>.k1, …)`, or `'{}'` without a key.
fn key_object(alias: &str, key: &[String]) -> String {
    if key.is_empty() {
        return "'{}'::jsonb".to_string();
    }
    let parts: Vec<String> = key
        .iter()
        .map(|c| format!("{}, {alias}.{}", literal(c), ident(c)))
        .collect();
    format!("jsonb_build_object({})", parts.join(", "))
}

fn insert_function(name: &str, schema: &str, table: &str, key: &[String]) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION tombstone.{name}() RETURNS trigger LANGUAGE plpgsql AS $fn$\n\
         BEGIN\n  \
           IF tombstone.audit_enabled({s}, {t}, 'INSERT') THEN\n    \
             INSERT INTO tombstone.audit (table_schema, table_name, pk, action, new_values, actor)\n    \
             SELECT {s}, {t}, {pk}, 'insert', to_jsonb(n.*), a.actor\n    \
             FROM tombstone_new n, (SELECT tombstone.current_actor() AS actor OFFSET 0) a;\n  \
           END IF;\n  \
           RETURN NULL;\n\
         END\n$fn$;\n",
        s = literal(schema),
        t = literal(table),
        pk = key_object("n", key),
    )
}

fn update_function(
    name: &str,
    schema: &str,
    table: &str,
    key: &[String],
    sd: &str,
    by: &str,
    recording: &str,
) -> String {
    let (join, first) = match key.first() {
        Some(first) => (
            key.iter()
                .map(|c| format!("n.{c} = o.{c}", c = ident(c)))
                .collect::<Vec<_>>()
                .join(" AND "),
            ident(first),
        ),
        None => ("false".to_string(), ident(sd)),
    };
    // A flip of the soft-delete column alone is audited by its operation:
    // NULL → time is recorded as a soft delete just above (whoever wrote
    // it), time → NULL is left out only when a restore of this transaction
    // brought that row back; any other un-hide (a bypass role's, by hand) is
    // audited as an update (SPEC W9). Tables without a primary key are
    // keyed differently in `operation_rows`, so their flips are left to the
    // operation as before.
    let recorded = if key.is_empty() {
        String::new()
    } else {
        format!(
            "\n                            AND (o.{sdi} IS NULL OR EXISTS (SELECT 1 FROM tombstone.operation_rows r JOIN tombstone.operations op ON op.id = r.op_id\n                                        \
             WHERE r.table_schema = {s} AND r.table_name = {t} AND r.pk = {pk_new} AND r.action = 'soft_delete'\n                                          \
             AND EXISTS (SELECT 1 FROM tombstone.restores s WHERE s.op_id = op.id AND s.xact_id = pg_current_xact_id())))",
            s = literal(schema),
            t = literal(table),
            pk_new = key_object("n", key),
            sdi = ident(sd),
        )
    };
    format!(
        "CREATE OR REPLACE FUNCTION tombstone.{name}() RETURNS trigger LANGUAGE plpgsql AS $fn$\n\
         BEGIN\n\
         {recording}  \
           IF tombstone.audit_enabled({s}, {t}, 'UPDATE') THEN\n    \
             INSERT INTO tombstone.audit (table_schema, table_name, pk, action, old_values, new_values, actor)\n    \
             SELECT {s}, {t}, CASE WHEN n.{first} IS NULL THEN {pk_old} ELSE {pk_new} END, 'update',\n           \
                    to_jsonb(o.*), to_jsonb(n.*), a.actor\n    \
             FROM tombstone_new n FULL JOIN tombstone_old o ON {join},\n         \
                  (SELECT tombstone.current_actor() AS actor OFFSET 0) a\n    \
             WHERE (o.{first} IS NULL OR n.{first} IS NULL\n            \
                    OR NOT ((o.{sdi} IS NULL) <> (n.{sdi} IS NULL)\n                    \
                            AND to_jsonb(o.*) - {sdl} - {byl} = to_jsonb(n.*) - {sdl} - {byl}{recorded}))\n      \
               AND NOT EXISTS (\n        \
                 SELECT 1 FROM tombstone.operation_rows r JOIN tombstone.operations op ON op.id = r.op_id\n        \
                 WHERE (op.xact_id = pg_current_xact_id()\n                \
                        OR EXISTS (SELECT 1 FROM tombstone.restores s\n                \
                                    WHERE s.op_id = op.id AND s.xact_id = pg_current_xact_id()))\n          \
                   AND r.action IN ('set_null', 'set_default')\n          \
                   AND r.table_schema = {s} AND r.table_name = {t} AND r.pk = {pk_new});\n  \
           END IF;\n  \
           RETURN NULL;\n\
         END\n$fn$;\n",
        s = literal(schema),
        t = literal(table),
        pk_old = key_object("o", key),
        pk_new = key_object("n", key),
        sdi = ident(sd),
        sdl = literal(sd),
        byl = literal(by),
        recorded = recorded,
        recording = recording,
    )
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn function_names_fit_postgres_limits() {
        assert_eq!(
            function_name("update", "public", "tasks"),
            "\"audit_update_public_tasks\""
        );
        let long = function_name(
            "insert",
            "a_very_long_schema_name_indeed",
            "and_an_even_longer_table_name_too",
        );
        assert!(long.len() <= 65, "{long}");
        assert_ne!(
            long,
            function_name(
                "insert",
                "a_very_long_schema_name_indeed",
                "and_an_even_longer_table_name_to0"
            )
        );
    }
}
