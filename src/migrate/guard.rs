//! DDL of the operations side, part two: the guard that makes PostgreSQL
//! itself refuse physical deletes of protected rows, and the only two ways
//! past it, purge and erase.
//!
//! A physical delete passes the guard only inside a transaction holding a
//! row of `tombstone.hard_delete_grants` stamped (by a trigger, so it cannot
//! be forged) with the guard function's owner as `current_user` — which is
//! only true inside tombstone's own `SECURITY DEFINER` functions
//! `purge_batch` and `erase`. They remove the grant before returning. The
//! guard is an AFTER DELETE statement trigger with a transition table, so
//! it also audits every purged or erased row (cascades included), drops
//! their `operation_rows`, applies the `ON DELETE` of the edges
//! `rules.toml` adds (`tombstone.edges`, source `rules`: PostgreSQL knows
//! no such foreign key), and for erase redacts their audit rows.

use crate::schema::SchemaSnapshot;

/// Grants, the guard function, `purge_batch`, `purge_candidates`,
/// `purge_operations` and `erase`.
pub const GUARD_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS tombstone;

CREATE TABLE IF NOT EXISTS tombstone.hard_delete_grants (
  xact_id    xid8  NOT NULL DEFAULT pg_current_xact_id(),
  reason     text  NOT NULL CHECK (reason IN ('purge', 'erase')),
  actor      text  NOT NULL,
  granted_by text  NOT NULL DEFAULT current_user,
  counts     jsonb NOT NULL DEFAULT '{}'
);
REVOKE ALL ON tombstone.hard_delete_grants FROM PUBLIC;

CREATE OR REPLACE FUNCTION tombstone.stamp_hard_delete_grant() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.granted_by := current_user;
  NEW.xact_id := pg_current_xact_id();
  RETURN NEW;
END
$fn$;

CREATE OR REPLACE TRIGGER tombstone_stamp BEFORE INSERT OR UPDATE ON tombstone.hard_delete_grants
  FOR EACH ROW EXECUTE FUNCTION tombstone.stamp_hard_delete_grant();

CREATE OR REPLACE FUNCTION tombstone.guard_hard_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  g record;
  e record;
  referenced boolean;
  keyx text;
  n bigint;
  qualified text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
BEGIN
  SELECT * INTO g FROM tombstone.hard_delete_grants
   WHERE xact_id = pg_current_xact_id() AND granted_by = current_user LIMIT 1;
  IF NOT FOUND OR TG_OP = 'TRUNCATE' THEN
    RAISE EXCEPTION 'tombstone: % on protected table % is refused', TG_OP, qualified
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Rows of protected tables are removed physically only by tombstone purge (after the retention) and tombstone erase.',
            HINT = 'Delete through the tombstone proxy (a soft delete), or use tombstone erase --table … --key … to erase a record now.';
  END IF;
  keyx := tombstone.key_of(TG_RELID, 'o');
  EXECUTE format(
    'WITH d AS (SELECT %1$s AS pk FROM tombstone_old o),
          r AS (DELETE FROM tombstone.operation_rows r
                 WHERE r.table_schema = %2$L AND r.table_name = %3$L AND r.pk = ANY (ARRAY(SELECT pk FROM d))
                 RETURNING r.pk, r.op_id),
          a AS (INSERT INTO tombstone.audit (table_schema, table_name, pk, action, actor, op_id)
                SELECT %2$L, %3$L, d.pk, %4$L, %5$L, ro.op_id
                  FROM d LEFT JOIN (SELECT DISTINCT ON (pk) pk, op_id FROM r) ro ON ro.pk = d.pk
                RETURNING 1)
     SELECT count(*) FROM a',
    keyx, TG_TABLE_SCHEMA, TG_TABLE_NAME, g.reason, g.actor) INTO n;
  -- Edges rules.toml adds are no foreign keys PostgreSQL applies: what
  -- their ON DELETE says happens here, for the rows just removed, as
  -- PostgreSQL does it for its own (a cascade into a protected child
  -- fires that child's guard in turn).
  FOR e IN SELECT x.name, x.child, x.child_table, x.on_delete, x.child_columns,
                  (SELECT string_agg(format('c.%I = o.%I', k.ccol, k.pcol), ' AND ')
                     FROM unnest(x.child_columns, x.parent_columns) AS k(ccol, pcol)) AS on_clause
             FROM tombstone.edges x WHERE x.source = 'rules' AND x.parent = TG_RELID ORDER BY x.name LOOP
    IF e.on_delete = 'cascade' THEN
      EXECUTE format('DELETE FROM %s c WHERE EXISTS (SELECT 1 FROM tombstone_old o WHERE %s)', e.child, e.on_clause);
    ELSIF e.on_delete IN ('set_null', 'set_default') THEN
      EXECUTE format('UPDATE %s c SET %s WHERE EXISTS (SELECT 1 FROM tombstone_old o WHERE %s)', e.child,
        (SELECT string_agg(format('%I = %s', col, CASE WHEN e.on_delete = 'set_null' THEN 'NULL' ELSE 'DEFAULT' END), ', ')
           FROM unnest(e.child_columns) AS col),
        e.on_clause);
    ELSE
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s c WHERE EXISTS (SELECT 1 FROM tombstone_old o WHERE %s))',
        e.child, e.on_clause) INTO referenced;
      IF referenced THEN
        RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" on table "%"',
            TG_TABLE_NAME, e.name, e.child_table
          USING ERRCODE = 'foreign_key_violation',
                DETAIL = format('Rows of %s still reference the deleted rows of %s (an edge soft_delete.add_edges adds, on delete %s).',
                                e.child, qualified, e.on_delete);
      END IF;
    END IF;
  END LOOP;
  IF g.reason = 'erase' THEN
    EXECUTE format(
      'UPDATE tombstone.audit a SET old_values = NULL, new_values = NULL
        WHERE a.table_schema = %2$L AND a.table_name = %3$L
          AND a.pk = ANY (ARRAY(SELECT %1$s FROM tombstone_old o))
          AND (a.old_values IS NOT NULL OR a.new_values IS NOT NULL)',
      keyx, TG_TABLE_SCHEMA, TG_TABLE_NAME);
  END IF;
  UPDATE tombstone.hard_delete_grants
     SET counts = counts || jsonb_build_object(qualified, coalesce((counts ->> qualified)::bigint, 0) + n)
   WHERE xact_id = pg_current_xact_id();
  RETURN NULL;
END
$fn$;

-- Protected children whose rows still reference a row keep it (cascade,
-- restrict and no-action edges): `AND NOT EXISTS (…)` per edge, for row `x`.
-- Every edge of tombstone.edges counts, also a catalog foreign key
-- rules.toml removes from cascades: PostgreSQL still enforces it when the
-- row goes physically (it would cascade into, or refuse for, its child).
CREATE OR REPLACE FUNCTION tombstone.purge_blockers(tbl regclass) RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(string_agg(format(' AND NOT EXISTS (SELECT 1 FROM %s c WHERE %s)', e.child, e.on_clause), ''), '')
    FROM (SELECT e.child,
                 (SELECT string_agg(format('c.%I = x.%I', k.ccol, k.pcol), ' AND ')
                    FROM unnest(e.child_columns, e.parent_columns) AS k(ccol, pcol)) AS on_clause
            FROM tombstone.edges e
           WHERE e.parent = tbl AND e.on_delete IN ('cascade', 'restrict', 'no_action')
             AND tombstone.soft_delete_column(e.child) IS NOT NULL) e
$fn$;

-- One purge batch of one table, in the caller's (short) transaction: at
-- most `batch_size` rows soft-deleted more than `older_than` ago that no
-- protected row references any more. Returns how many were removed.
CREATE OR REPLACE FUNCTION tombstone.purge_batch(tbl regclass, older_than interval, batch_size int,
                                                 actor text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  sd text := tombstone.soft_delete_column(tbl);
  n bigint;
  who text := coalesce(nullif(actor, ''), tombstone.current_actor());
BEGIN
  PERFORM tombstone.require_bypass('purge');
  IF sd IS NULL THEN
    RAISE EXCEPTION 'tombstone: % is not a protected table', tbl USING ERRCODE = 'wrong_object_type';
  END IF;
  INSERT INTO tombstone.hard_delete_grants (reason, actor) VALUES ('purge', who);
  EXECUTE format(
    'DELETE FROM %1$s d WHERE d.ctid IN (
       SELECT x.ctid FROM %1$s x WHERE x.%2$I < now() - $1%3$s LIMIT $2 FOR UPDATE OF x SKIP LOCKED)',
    tbl, sd, tombstone.purge_blockers(tbl))
  USING older_than, batch_size;
  GET DIAGNOSTICS n = ROW_COUNT;
  DELETE FROM tombstone.hard_delete_grants WHERE xact_id = pg_current_xact_id();
  RETURN n;
END
$fn$;

-- How many rows of `tbl` were soft-deleted more than `older_than` ago
-- (what a purge would remove at most; --dry-run).
CREATE OR REPLACE FUNCTION tombstone.purge_candidates(tbl regclass, older_than interval) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  sd text := tombstone.soft_delete_column(tbl);
  n bigint;
BEGIN
  PERFORM tombstone.require_bypass('purge');
  IF sd IS NULL THEN
    RETURN 0;
  END IF;
  EXECUTE format('SELECT count(*) FROM %s x WHERE x.%I < now() - $1', tbl, sd) INTO n USING older_than;
  RETURN n;
END
$fn$;

-- Operations older than `older_than` that are restored or have no
-- soft-deleted row left: their records go (the audit trail keeps the story).
CREATE OR REPLACE FUNCTION tombstone.purge_operations(older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  n bigint;
BEGIN
  PERFORM tombstone.require_bypass('purge');
  DELETE FROM tombstone.operations o
   WHERE o.created_at < now() - older_than
     AND (EXISTS (SELECT 1 FROM tombstone.restores s WHERE s.op_id = o.id)
          OR NOT EXISTS (SELECT 1 FROM tombstone.operation_rows r
                          WHERE r.op_id = o.id AND r.action = 'soft_delete'));
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$fn$;

-- Right to erasure: hard-deletes one row of a protected table now, live or
-- soft-deleted, with what its foreign keys cascade to; the audit rows of
-- every removed protected row lose their old/new values (who, when, table
-- and key stay). Returns the rows removed per protected table.
CREATE OR REPLACE FUNCTION tombstone.erase(tbl text, key jsonb, actor text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  rel regclass;
  n bigint;
  counts jsonb;
  who text := coalesce(nullif(actor, ''), tombstone.current_actor());
BEGIN
  PERFORM tombstone.require_bypass('erase');
  rel := tombstone.resolve_table(tbl);
  IF tombstone.soft_delete_column(rel) IS NULL THEN
    RAISE EXCEPTION 'tombstone: % is not a protected table', rel USING ERRCODE = 'wrong_object_type';
  END IF;
  INSERT INTO tombstone.hard_delete_grants (reason, actor) VALUES ('erase', who);
  EXECUTE format('DELETE FROM %s x WHERE %s', rel, tombstone.key_match(rel, 'x', '$1')) USING key;
  GET DIAGNOSTICS n = ROW_COUNT;
  SELECT g.counts INTO counts FROM tombstone.hard_delete_grants g WHERE g.xact_id = pg_current_xact_id();
  DELETE FROM tombstone.hard_delete_grants WHERE xact_id = pg_current_xact_id();
  IF n = 0 THEN
    RAISE EXCEPTION 'tombstone: % has no row with key %', rel, key USING ERRCODE = 'no_data_found';
  END IF;
  RETURN jsonb_build_object('table', rel::text, 'key', key, 'rows', coalesce(counts, '{}'::jsonb));
END
$fn$;
"#;

/// A SQL identifier, quoted.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The guard triggers of every protected table in `snapshot`.
pub fn guard_triggers(snapshot: &SchemaSnapshot) -> String {
    let mut sql = String::new();
    for table in snapshot.tables().iter().filter(|t| t.is_protected()) {
        if !matches!(table.kind, 'r' | 'p') {
            continue;
        }
        let name = format!("{}.{}", ident(&table.schema), ident(&table.name));
        sql.push_str(&format!(
            "CREATE OR REPLACE TRIGGER tombstone_guard_delete AFTER DELETE ON {name}\n  \
             REFERENCING OLD TABLE AS tombstone_old FOR EACH STATEMENT\n  \
             EXECUTE FUNCTION tombstone.guard_hard_delete();\n\
             CREATE OR REPLACE TRIGGER tombstone_guard_truncate BEFORE TRUNCATE ON {name}\n  \
             FOR EACH STATEMENT EXECUTE FUNCTION tombstone.guard_hard_delete();\n"
        ));
    }
    sql
}
