//! The DDL guard (SPEC S4): event triggers that make PostgreSQL itself
//! refuse, for normal sessions, DDL that would remove soft-delete
//! protection, through the proxy or on a direct connection.
//!
//! `migrate` records every protected table in `tombstone.protected_tables`
//! with its protection state as the catalog has it after the plan ran
//! (`tombstone.protection_state`: the soft-delete column's type and
//! default, the `tombstone_*` triggers and policies with a fingerprint of
//! each and whether the triggers are enabled, the row-level security
//! flags, the parent tables). Nothing here names tombstone's own triggers
//! or policies: whatever `migrate` installed is what is kept.
//!
//! After every DDL command (`ddl_command_end`) the tables it touched are
//! compared with their record, and on `sql_drop` the dropped objects are
//! checked. A session is *allowed* when its login role (`session_user`) is
//! a superuser, a member of the owner of schema `tombstone`, or a member of
//! a role in `tombstone.bypass_roles`; any other session gets 42501 naming
//! those roles when a command would:
//!
//! - drop, rename, retype, or give a non-null default to the soft-delete
//!   column (dropping its default is allowed);
//! - drop, rename or move (`SET SCHEMA`) a protected table that holds
//!   soft-deleted rows neither restored nor purged (`tombstone.operation_rows`
//!   without a `tombstone.restores` row; purge removes its rows' records) —
//!   retention is not known to the database, so any such row counts;
//! - drop, rename, replace or disable (`DISABLE TRIGGER name/USER/ALL`,
//!   `ENABLE REPLICA TRIGGER`) a recorded trigger;
//! - drop, rename or alter a recorded policy, `DISABLE ROW LEVEL SECURITY`
//!   or `NO FORCE ROW LEVEL SECURITY` where migrate turned them on, or add a
//!   permissive policy next to a recorded permissive one (it would widen it);
//! - create (or `CREATE OR REPLACE`) a BEFORE UPDATE or BEFORE DELETE row
//!   trigger on a protected table, or replace the function such a trigger
//!   runs (it could veto or change the soft delete);
//! - create a rule on a protected table (`DO INSTEAD` bypasses the rewrite);
//! - make a protected table inherit from, or become a partition of, another
//!   table (its soft-deleted rows would show through the parent);
//! - drop anything in schema `tombstone`, or the schema.
//!
//! Allowed sessions pass and their change becomes the new record, so a
//! superuser's deliberate change does not block later migrations of the
//! application; a normal session's change that passes (say, enabling a
//! trigger a superuser disabled) is not recorded. Owner changes are allowed (with FORCE ROW LEVEL SECURITY the
//! owner is bound by the policies too).

use crate::schema::SchemaSnapshot;

/// The registry, the helper functions, the two guard functions and their
/// event triggers.
pub const DDL_GUARD_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS tombstone;

-- What migrate protected, and how (see tombstone.protection_state).
CREATE TABLE IF NOT EXISTS tombstone.protected_tables (
  table_oid    oid   PRIMARY KEY,
  table_schema text  NOT NULL,
  table_name   text  NOT NULL,
  column_name  text  NOT NULL,
  state        jsonb NOT NULL
);
REVOKE ALL ON tombstone.protected_tables FROM PUBLIC;

-- Only its owner (migrate, and the guard functions, which run as it) and
-- superusers write it, whatever has been granted on it.
CREATE OR REPLACE FUNCTION tombstone.protected_tables_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF current_user <> (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID)
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = current_user AND rolsuper) THEN
    RAISE EXCEPTION 'tombstone: % on tombstone.protected_tables is refused: only tombstone migrate and the DDL guard write it', TG_OP
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$fn$;

CREATE OR REPLACE TRIGGER tombstone_protected_tables_write
  BEFORE INSERT OR UPDATE OR DELETE ON tombstone.protected_tables
  FOR EACH ROW EXECUTE FUNCTION tombstone.protected_tables_write();
CREATE OR REPLACE TRIGGER tombstone_protected_tables_truncate
  BEFORE TRUNCATE ON tombstone.protected_tables
  FOR EACH STATEMENT EXECUTE FUNCTION tombstone.protected_tables_write();

-- May this session change protection? (session_user: SET ROLE does not help.)
CREATE OR REPLACE FUNCTION tombstone.ddl_allowed() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = session_user AND rolsuper)
      OR pg_catalog.pg_has_role(session_user,
           (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'tombstone'), 'MEMBER')
      OR EXISTS (SELECT 1 FROM tombstone.bypass_roles b JOIN pg_catalog.pg_roles r ON r.rolname = b.role_name
                  WHERE pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
$fn$;

-- Who may, in words: 'a superuser, "owner" (the owner of schema tombstone) or a member of "r1", "r2"'.
CREATE OR REPLACE FUNCTION tombstone.ddl_allowed_roles() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT 'a superuser, "' || pg_catalog.pg_get_userbyid(n.nspowner) || '" (the owner of schema tombstone)'
         || coalesce(' or a member of ' || (SELECT pg_catalog.string_agg('"' || b.role_name || '"', ', ' ORDER BY b.role_name)
                                              FROM tombstone.bypass_roles b), '')
    FROM pg_catalog.pg_namespace n WHERE n.nspname = 'tombstone'
$fn$;

CREATE OR REPLACE FUNCTION tombstone.refuse_ddl(what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  RAISE EXCEPTION 'tombstone: cannot % as role "%": only % may', what, session_user, tombstone.ddl_allowed_roles()
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'It would remove soft-delete protection. If it is meant, run it as one of those roles.';
END
$fn$;

-- Soft-deleted rows of a table that are neither restored nor purged.
CREATE OR REPLACE FUNCTION tombstone.pending_soft_deletes(s text, t text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT pg_catalog.count(*) FROM tombstone.operation_rows r
   WHERE r.table_schema = s AND r.table_name = t AND r.action = 'soft_delete'
     AND NOT EXISTS (SELECT 1 FROM tombstone.restores x WHERE x.op_id = r.op_id)
$fn$;

-- The protection of table `rel` with soft-delete column `col`, as jsonb.
CREATE OR REPLACE FUNCTION tombstone.protection_state(rel oid, col text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT pg_catalog.jsonb_build_object(
    'column', (SELECT pg_catalog.jsonb_build_object(
                        'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                        'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid))
                 FROM pg_catalog.pg_attribute a
                 LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped),
    'triggers', (SELECT coalesce(pg_catalog.jsonb_object_agg(t.tgname, pg_catalog.jsonb_build_object(
                          'def', pg_catalog.md5(pg_catalog.concat_ws('|', t.tgtype, t.tgfoid::pg_catalog.regprocedure,
                                   pg_catalog.encode(t.tgargs, 'hex'), t.tgattr, t.tgoldtable, t.tgnewtable,
                                   t.tgqual::text, t.tgdeferrable, t.tginitdeferred)),
                          'enabled', t.tgenabled IN ('O', 'A'))), '{}')
                   FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = rel AND NOT t.tgisinternal AND t.tgname LIKE 'tombstone\_%'),
    'policies', (SELECT coalesce(pg_catalog.jsonb_object_agg(p.polname, pg_catalog.md5(pg_catalog.concat_ws('|',
                          p.polcmd, p.polpermissive, p.polroles::text,
                          pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                          pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)))), '{}')
                   FROM pg_catalog.pg_policy p
                  WHERE p.polrelid = rel AND p.polname LIKE 'tombstone\_%'),
    'rls', c.relrowsecurity,
    'force_rls', c.relforcerowsecurity,
    'parents', (SELECT coalesce(pg_catalog.jsonb_agg(i.inhparent::pg_catalog.regclass::text ORDER BY 1), '[]')
                  FROM pg_catalog.pg_inherits i WHERE i.inhrelid = rel))
  FROM pg_catalog.pg_class c WHERE c.oid = rel
$fn$;

-- ddl_command_end: compare what the command touched with the record.
CREATE OR REPLACE FUNCTION tombstone.ddl_guard_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  allowed boolean := tombstone.ddl_allowed();
  cmd record;
  rel oid;
  cur record;
  p record;
  t record;
  st jsonb;
  k text;
  v jsonb;
  tbl text;
  n bigint;
BEGIN
  FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
    rel := NULL;
    IF cmd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN
      rel := cmd.objid;
    ELSIF cmd.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
      SELECT tg.tgrelid INTO rel FROM pg_catalog.pg_trigger tg WHERE tg.oid = cmd.objid;
    ELSIF cmd.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
      SELECT pol.polrelid INTO rel FROM pg_catalog.pg_policy pol WHERE pol.oid = cmd.objid;
    ELSIF cmd.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
      SELECT rw.ev_class INTO rel FROM pg_catalog.pg_rewrite rw WHERE rw.oid = cmd.objid;
    ELSIF cmd.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND NOT allowed THEN
      SELECT tg.tgname, pg_catalog.format('%I.%I', pt.table_schema, pt.table_name) AS tbl INTO t
        FROM pg_catalog.pg_trigger tg JOIN tombstone.protected_tables pt ON pt.table_oid = tg.tgrelid
       WHERE tg.tgfoid = cmd.objid AND NOT tg.tgisinternal
         AND (tg.tgtype & 3) = 3 AND (tg.tgtype & 24) <> 0
       LIMIT 1;
      IF FOUND THEN
        PERFORM tombstone.refuse_ddl(pg_catalog.format(
          'replace function %s, which BEFORE trigger %I of protected table %s runs', cmd.object_identity, t.tgname, t.tbl));
      END IF;
    END IF;
    CONTINUE WHEN rel IS NULL;
    -- ALTER TABLE parent ATTACH PARTITION protected: the command names the parent.
    IF NOT allowed AND cmd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN
      SELECT pg_catalog.format('%I.%I', pt.table_schema, pt.table_name) AS tbl INTO t
        FROM pg_catalog.pg_inherits i JOIN tombstone.protected_tables pt ON pt.table_oid = i.inhrelid
       WHERE i.inhparent = rel
         AND NOT coalesce((pt.state -> 'parents') ? (i.inhparent::pg_catalog.regclass::text), false)
       LIMIT 1;
      IF FOUND THEN
        PERFORM tombstone.refuse_ddl(pg_catalog.format(
          'make protected table %s inherit from or become a partition of %s (its soft-deleted rows would show through the parent)',
          t.tbl, rel::pg_catalog.regclass));
      END IF;
    END IF;
    SELECT ns.nspname::text AS s, c.relname::text AS t INTO cur
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace WHERE c.oid = rel;
    CONTINUE WHEN NOT FOUND;
    SELECT * INTO p FROM tombstone.protected_tables pt WHERE pt.table_oid = rel;
    IF NOT FOUND THEN
      -- Restored from a dump: the same table under a new oid.
      SELECT * INTO p FROM tombstone.protected_tables pt
       WHERE pt.table_schema = cur.s AND pt.table_name = cur.t
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = pt.table_oid);
      CONTINUE WHEN NOT FOUND;
      UPDATE tombstone.protected_tables SET table_oid = rel WHERE table_oid = p.table_oid;
    END IF;
    tbl := pg_catalog.format('%I.%I', p.table_schema, p.table_name);
    st := tombstone.protection_state(rel, p.column_name);
    IF NOT allowed THEN
      IF cur.s <> p.table_schema OR cur.t <> p.table_name THEN
        n := tombstone.pending_soft_deletes(p.table_schema, p.table_name);
        IF n > 0 THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format(
            'rename or move protected table %s to %I.%I while it holds %s soft-deleted rows that are neither restored nor purged',
            tbl, cur.s, cur.t, n));
        END IF;
      END IF;
      IF pg_catalog.jsonb_typeof(p.state -> 'column') = 'object' THEN
        IF pg_catalog.jsonb_typeof(st -> 'column') IS DISTINCT FROM 'object' THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format(
            'drop or rename soft-delete column %I of protected table %s', p.column_name, tbl));
        ELSIF (st #> '{column,type}') <> (p.state #> '{column,type}') THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format(
            'change the type of soft-delete column %I of protected table %s from %s to %s',
            p.column_name, tbl, p.state #>> '{column,type}', st #>> '{column,type}'));
        ELSIF (st #>> '{column,default}') IS NOT NULL
              AND (st #>> '{column,default}') IS DISTINCT FROM (p.state #>> '{column,default}') THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format(
            'set a default (%s) on soft-delete column %I of protected table %s',
            st #>> '{column,default}', p.column_name, tbl));
        END IF;
      END IF;
      FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(p.state -> 'triggers') e LOOP
        IF NOT ((st -> 'triggers') ? k) THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format('drop or rename trigger %I of protected table %s', k, tbl));
        ELSIF (st #> ARRAY['triggers', k, 'def']) <> (v -> 'def') THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format('replace trigger %I of protected table %s', k, tbl));
        ELSIF (v ->> 'enabled')::boolean AND NOT (st #>> ARRAY['triggers', k, 'enabled'])::boolean THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format('disable trigger %I of protected table %s', k, tbl));
        END IF;
      END LOOP;
      FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(p.state -> 'policies') e LOOP
        IF NOT ((st -> 'policies') ? k) THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format('drop or rename policy %I of protected table %s', k, tbl));
        ELSIF (st -> 'policies' -> k) <> v THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format('alter policy %I of protected table %s', k, tbl));
        END IF;
      END LOOP;
      IF (p.state ->> 'rls')::boolean AND NOT (st ->> 'rls')::boolean THEN
        PERFORM tombstone.refuse_ddl(pg_catalog.format('disable row level security on protected table %s', tbl));
      END IF;
      IF (p.state ->> 'force_rls')::boolean AND NOT (st ->> 'force_rls')::boolean THEN
        PERFORM tombstone.refuse_ddl(pg_catalog.format('turn off FORCE ROW LEVEL SECURITY on protected table %s', tbl));
      END IF;
      IF NOT ((st -> 'parents') <@ (p.state -> 'parents')) THEN
        PERFORM tombstone.refuse_ddl(pg_catalog.format(
          'make protected table %s inherit from or become a partition of %s (its soft-deleted rows would show through the parent)',
          tbl, st -> 'parents'));
      END IF;
      IF cmd.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
        SELECT tg.tgname, tg.tgtype INTO t FROM pg_catalog.pg_trigger tg WHERE tg.oid = cmd.objid;
        IF FOUND AND NOT ((p.state -> 'triggers') ? t.tgname::text)
           AND (t.tgtype & 3) = 3 AND (t.tgtype & 24) <> 0 THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format(
            'create BEFORE UPDATE or BEFORE DELETE row trigger %I on protected table %s (it could veto or change the soft delete)',
            t.tgname, tbl));
        END IF;
      ELSIF cmd.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
        SELECT pol.polname, pol.polpermissive INTO t FROM pg_catalog.pg_policy pol WHERE pol.oid = cmd.objid;
        IF FOUND AND t.polpermissive AND NOT ((p.state -> 'policies') ? t.polname::text)
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy q
                        WHERE q.polrelid = rel AND q.polpermissive AND (p.state -> 'policies') ? q.polname::text) THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format(
            'create or alter permissive policy %I on protected table %s (it would widen tombstone''s policies)',
            t.polname, tbl));
        END IF;
      ELSIF cmd.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
        PERFORM tombstone.refuse_ddl(pg_catalog.format(
          'create a rule on protected table %s (a rule can bypass the soft delete)', tbl));
      END IF;
    END IF;
    -- Names follow a rename that passed; the state is re-recorded only
    -- for allowed sessions (a normal session cannot ratchet it either way).
    UPDATE tombstone.protected_tables
       SET table_schema = cur.s, table_name = cur.t, state = CASE WHEN allowed THEN st ELSE state END
     WHERE table_oid = rel;
  END LOOP;
END
$fn$;

-- sql_drop: dropped protected tables, soft-delete columns, recorded
-- triggers and policies, and tombstone's own objects.
CREATE OR REPLACE FUNCTION tombstone.ddl_guard_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  allowed boolean := tombstone.ddl_allowed();
  o record;
  p record;
  dropped oid[];
  n bigint;
  kind text;
BEGIN
  SELECT coalesce(pg_catalog.array_agg(d.objid), '{}') INTO dropped
    FROM pg_catalog.pg_event_trigger_dropped_objects() d
   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0;
  FOR o IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() LOOP
    IF NOT allowed AND (o.schema_name = 'tombstone' OR (o.object_type = 'schema' AND o.object_identity = 'tombstone')) THEN
      PERFORM tombstone.refuse_ddl(pg_catalog.format('drop %s %s, which belongs to tombstone', o.object_type, o.object_identity));
    END IF;
    IF o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND o.objsubid = 0 THEN
      SELECT * INTO p FROM tombstone.protected_tables pt
       WHERE pt.table_oid = o.objid OR (pt.table_schema = o.schema_name AND pt.table_name = o.object_name);
      CONTINUE WHEN NOT FOUND;
      IF NOT allowed THEN
        n := tombstone.pending_soft_deletes(p.table_schema, p.table_name);
        IF n > 0 THEN
          PERFORM tombstone.refuse_ddl(pg_catalog.format(
            'drop protected table %I.%I while it holds %s soft-deleted rows that are neither restored nor purged',
            p.table_schema, p.table_name, n));
        END IF;
      END IF;
      DELETE FROM tombstone.protected_tables WHERE table_oid = p.table_oid;
    ELSIF o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN
      CONTINUE WHEN o.objid = ANY (dropped);
      SELECT * INTO p FROM tombstone.protected_tables pt WHERE pt.table_oid = o.objid;
      CONTINUE WHEN NOT FOUND OR o.address_names[3] IS DISTINCT FROM p.column_name;
      IF NOT allowed THEN
        PERFORM tombstone.refuse_ddl(pg_catalog.format(
          'drop soft-delete column %I of protected table %I.%I', p.column_name, p.table_schema, p.table_name));
      END IF;
      UPDATE tombstone.protected_tables SET state = tombstone.protection_state(table_oid, column_name)
       WHERE table_oid = p.table_oid;
    ELSIF o.classid IN ('pg_catalog.pg_trigger'::pg_catalog.regclass, 'pg_catalog.pg_policy'::pg_catalog.regclass) THEN
      kind := CASE WHEN o.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN 'trigger' ELSE 'policy' END;
      SELECT * INTO p FROM tombstone.protected_tables pt
       WHERE pt.table_schema = o.address_names[1] AND pt.table_name = o.address_names[2];
      CONTINUE WHEN NOT FOUND OR p.table_oid = ANY (dropped)
                    OR NOT coalesce((p.state -> CASE kind WHEN 'trigger' THEN 'triggers' ELSE 'policies' END)
                                    ? o.address_names[3], false);
      IF NOT allowed THEN
        PERFORM tombstone.refuse_ddl(pg_catalog.format(
          'drop %s %I of protected table %I.%I', kind, o.address_names[3], p.table_schema, p.table_name));
      END IF;
      UPDATE tombstone.protected_tables SET state = tombstone.protection_state(table_oid, column_name)
       WHERE table_oid = p.table_oid;
    END IF;
  END LOOP;
END
$fn$;

REVOKE ALL ON FUNCTION tombstone.ddl_allowed(), tombstone.ddl_allowed_roles(), tombstone.refuse_ddl(text),
  tombstone.pending_soft_deletes(text, text), tombstone.protection_state(oid, text),
  tombstone.ddl_guard_end(), tombstone.ddl_guard_drop() FROM PUBLIC;

DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'tombstone_ddl_guard') THEN
    CREATE EVENT TRIGGER tombstone_ddl_guard ON ddl_command_end
      EXECUTE FUNCTION tombstone.ddl_guard_end();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'tombstone_ddl_guard_drop') THEN
    CREATE EVENT TRIGGER tombstone_ddl_guard_drop ON sql_drop
      EXECUTE FUNCTION tombstone.ddl_guard_drop();
  END IF;
END
$do$;
"#;

/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Refills `tombstone.protected_tables` with the protected tables of
/// `snapshot` as the catalog has them now: run after every step that
/// installs triggers or policies.
pub fn protected_tables_registry(snapshot: Option<&SchemaSnapshot>) -> String {
    let mut sql = String::from("DELETE FROM tombstone.protected_tables;\n");
    let rows: Vec<String> = snapshot
        .map(|s| s.tables())
        .unwrap_or_default()
        .iter()
        .filter(|t| t.is_protected() && matches!(t.kind, 'r' | 'p'))
        .filter_map(|t| {
            let soft = t.soft_delete.as_ref()?;
            Some(format!(
                "({}, {}, {})",
                literal(&t.schema),
                literal(&t.name),
                literal(&soft.column)
            ))
        })
        .collect();
    if !rows.is_empty() {
        sql.push_str(&format!(
            "INSERT INTO tombstone.protected_tables (table_oid, table_schema, table_name, column_name, state)\n\
             SELECT c.oid, v.s, v.t, v.col, tombstone.protection_state(c.oid, v.col)\n  \
             FROM (VALUES\n  {}) AS v (s, t, col)\n  \
             JOIN pg_catalog.pg_namespace ns ON ns.nspname = v.s\n  \
             JOIN pg_catalog.pg_class c ON c.relnamespace = ns.oid AND c.relname = v.t;\n",
            rows.join(",\n  ")
        ));
    }
    sql
}
