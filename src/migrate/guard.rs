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
//! no such foreign key), and for erase (and a purge with
//! `audit.redact_on_purge`) redacts their audit rows. A purge with
//! `retention.archive` also copies every removed row, with its operation,
//! to `tombstone.archive` (same transaction) or to a temporary table the
//! CLI drains with `tombstone.purge_archived()` into JSON Lines files
//! before it commits (`src/ops/archive.rs`).
//!
//! Everything the guard does is set-based over the statement's transition
//! table: the context the audit rows carry (login role, client address,
//! application, transaction) is computed once per statement, not by the
//! audit table's per-row defaults, and `operation_rows` is joined, not
//! probed key by key.

use crate::schema::SchemaSnapshot;

/// Grants, the archive table, the guard function, `purge_batch`,
/// `purge_archived`, `purge_candidates`, `purge_operations` and `erase`.
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
-- Version 7: where a purge archives what it removes, and whether it
-- redacts their audit rows.
ALTER TABLE tombstone.hard_delete_grants
  ADD COLUMN IF NOT EXISTS archive text CHECK (archive IN ('table', 'files')),
  ADD COLUMN IF NOT EXISTS redact  boolean NOT NULL DEFAULT false;

-- What purge removed, when retention.archive is "table": one row per
-- purged row (cascades included), written in the purge batch's own
-- transaction. Readable by bypass roles only, like the audit trail.
CREATE TABLE IF NOT EXISTS tombstone.archive (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  purged_at    timestamptz NOT NULL DEFAULT now(),
  op_id        uuid,
  table_schema text        NOT NULL,
  table_name   text        NOT NULL,
  pk           jsonb       NOT NULL,
  deleted_at   timestamptz,
  row_values   jsonb       NOT NULL,
  actor        text        NOT NULL,
  xact_id      xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX IF NOT EXISTS archive_row ON tombstone.archive (table_schema, table_name, pk);
CREATE INDEX IF NOT EXISTS archive_op ON tombstone.archive (op_id) WHERE op_id IS NOT NULL;
REVOKE ALL ON tombstone.archive FROM PUBLIC;

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
  keys jsonb;
  sd text;
  archive_cte text := '';
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
  sd := tombstone.soft_delete_column(TG_RELID);
  IF g.archive = 'table' THEN
    archive_cte := format(
      ', x AS (INSERT INTO tombstone.archive (op_id, table_schema, table_name, pk, deleted_at, row_values, actor)
               SELECT j.op_id, %L, %L, j.pk, j.deleted_at, j.row_values, %L FROM j RETURNING 1)',
      TG_TABLE_SCHEMA, TG_TABLE_NAME, g.actor);
  ELSIF g.archive = 'files' THEN
    archive_cte := format(
      ', x AS (INSERT INTO pg_temp.tombstone_purge_archive (op_id, table_schema, table_name, pk, deleted_at, row_values)
               SELECT j.op_id, %L, %L, j.pk, j.deleted_at, j.row_values FROM j RETURNING 1)',
      TG_TABLE_SCHEMA, TG_TABLE_NAME);
  END IF;
  -- One audit row per removed row, with the operation that soft-deleted
  -- it (its operation_rows go); the context once, as parameters.
  EXECUTE format(
    'WITH d AS MATERIALIZED (SELECT %1$s AS pk, %6$s AS deleted_at, %7$s AS row_values FROM tombstone_old o),
          r AS (DELETE FROM tombstone.operation_rows r USING d
                 WHERE r.table_schema = %2$L AND r.table_name = %3$L AND r.pk = d.pk
                 RETURNING r.pk, r.op_id, r.action),
          ro AS (SELECT DISTINCT ON (pk) pk, op_id FROM r ORDER BY pk, action <> ''soft_delete''),
          j AS MATERIALIZED (SELECT d.pk, d.deleted_at, d.row_values, ro.op_id FROM d LEFT JOIN ro ON ro.pk = d.pk),
          a AS (INSERT INTO tombstone.audit (table_schema, table_name, pk, action, actor, login_role,
                                             client_addr, application_name, xact_id, op_id)
                SELECT %2$L, %3$L, j.pk, %4$L, %5$L, $1, $2, $3, $4, j.op_id FROM j
                RETURNING 1)%8$s
     SELECT count(*) FROM a',
    keyx, TG_TABLE_SCHEMA, TG_TABLE_NAME, g.reason, g.actor,
    CASE WHEN sd IS NULL THEN 'NULL::timestamptz' ELSE format('o.%I', sd) END,
    CASE WHEN g.archive IS NULL THEN 'NULL::jsonb' ELSE 'to_jsonb(o)' END,
    archive_cte)
  INTO n
  USING session_user::text, tombstone.client_addr(), current_setting('application_name', true), pg_current_xact_id();
  IF tombstone.notify_channel() IS NOT NULL THEN
    EXECUTE format('SELECT jsonb_agg(%s) FROM tombstone_old o', keyx) INTO keys;
    PERFORM tombstone.notify_change(g.reason, TG_TABLE_SCHEMA, TG_TABLE_NAME, NULL, keys);
  END IF;
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
  IF g.reason = 'erase' OR g.redact THEN
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
-- protected row references any more. `archive_to` 'table' copies them to
-- tombstone.archive, 'files' to a temporary table that
-- tombstone.purge_archived() drains (the caller writes them out before it
-- commits); `redact_audit` clears the old/new values of their audit rows.
-- Returns how many were removed. The rows are found by one scan and
-- removed by ctid (a TID scan, not a join over the whole table).
CREATE OR REPLACE FUNCTION tombstone.purge_batch(tbl regclass, older_than interval, batch_size int,
                                                 actor text DEFAULT NULL, archive_to text DEFAULT NULL,
                                                 redact_audit boolean DEFAULT false) RETURNS bigint
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
  IF archive_to IS NOT NULL AND archive_to NOT IN ('table', 'files') THEN
    RAISE EXCEPTION 'tombstone: archive_to must be ''table'', ''files'' or NULL, not %', archive_to
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF archive_to = 'files' THEN
    CREATE TEMP TABLE IF NOT EXISTS tombstone_purge_archive
      (op_id uuid, table_schema text, table_name text, pk jsonb, deleted_at timestamptz, row_values jsonb)
      ON COMMIT DROP;
  END IF;
  INSERT INTO tombstone.hard_delete_grants (reason, actor, archive, redact)
    VALUES ('purge', who, archive_to, coalesce(redact_audit, false));
  EXECUTE format(
    'DELETE FROM %1$s d WHERE d.ctid = ANY (ARRAY(
       SELECT x.ctid FROM %1$s x WHERE x.%2$I < now() - $1%3$s LIMIT $2 FOR UPDATE OF x SKIP LOCKED))',
    tbl, sd, tombstone.purge_blockers(tbl))
  USING older_than, batch_size;
  GET DIAGNOSTICS n = ROW_COUNT;
  DELETE FROM tombstone.hard_delete_grants WHERE xact_id = pg_current_xact_id();
  RETURN n;
END
$fn$;

-- The rows purge_batch(…, 'files', …) removed in this transaction, for
-- the caller to write out before it commits; empties the list.
CREATE OR REPLACE FUNCTION tombstone.purge_archived()
RETURNS TABLE (op_id uuid, table_schema text, table_name text, pk jsonb, deleted_at timestamptz, row_values jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
  PERFORM tombstone.require_bypass('purge');
  IF to_regclass('pg_temp.tombstone_purge_archive') IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY DELETE FROM pg_temp.tombstone_purge_archive a
    RETURNING a.op_id, a.table_schema, a.table_name, a.pk, a.deleted_at, a.row_values;
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
  d int := 0;
  e record;
  t record;
  b record;
  sd text;
  counts jsonb;
  who text := coalesce(nullif(actor, ''), tombstone.current_actor());
BEGIN
  PERFORM tombstone.require_bypass('erase');
  rel := tombstone.resolve_table(tbl);
  IF tombstone.soft_delete_column(rel) IS NULL THEN
    RAISE EXCEPTION 'tombstone: % is not a protected table', rel USING ERRCODE = 'wrong_object_type';
  END IF;
  -- What goes: the row, and along every edge (the catalog's foreign keys
  -- and rules.toml's) from what goes: CASCADE children (PostgreSQL removes
  -- them), and NO ACTION / RESTRICT children that are soft-deleted (they
  -- go first, explicitly: the trash of an ORM that cascades itself, whose
  -- keys say NO ACTION). A live NO ACTION / RESTRICT child blocks, named.
  CREATE TEMP TABLE IF NOT EXISTS tombstone_erase_set
    (rel regclass, pk jsonb, depth int, explicit boolean, PRIMARY KEY (rel, pk)) ON COMMIT DROP;
  TRUNCATE tombstone_erase_set;
  EXECUTE format('INSERT INTO tombstone_erase_set SELECT %L::regclass, %s, 0, false FROM %s x WHERE %s',
                 rel, tombstone.key_of(rel, 'x'), rel, tombstone.key_match(rel, 'x', '$1'))
    USING key;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n = 0 THEN
    RAISE EXCEPTION 'tombstone: % has no row with key %', rel, key USING ERRCODE = 'no_data_found';
  END IF;
  LOOP
    n := 0;
    FOR e IN SELECT ed.name, ed.parent, ed.child, ed.on_delete,
                    (SELECT string_agg(format('c.%I = p.%I', k.ccol, k.pcol), ' AND ')
                       FROM unnest(ed.child_columns, ed.parent_columns) AS k(ccol, pcol)) AS on_clause
               FROM tombstone.edges ed
              WHERE ed.on_delete IN ('cascade', 'restrict', 'no_action')
                AND ed.parent IN (SELECT s.rel FROM tombstone_erase_set s WHERE s.depth = d) LOOP
      sd := tombstone.soft_delete_column(e.child);
      IF e.on_delete <> 'cascade' THEN
        -- A live child that is not going anyway blocks.
        EXECUTE format(
          'SELECT %1$s AS child_key, %2$s AS parent_key
             FROM tombstone_erase_set s JOIN %3$s p ON %4$s JOIN %5$s c ON %6$s
            WHERE s.rel = %7$L::regclass AND s.depth = $1 AND %8$s
              AND NOT EXISTS (SELECT 1 FROM tombstone_erase_set s2 WHERE s2.rel = %9$L::regclass AND s2.pk = %1$s)
            LIMIT 1',
          tombstone.key_of(e.child, 'c'), tombstone.key_of(e.parent, 'p'), e.parent,
          tombstone.key_match(e.parent, 'p', 's.pk'), e.child, e.on_clause, e.parent,
          CASE WHEN sd IS NULL THEN 'true' ELSE format('c.%I IS NULL', sd) END, e.child)
        INTO b USING d;
        IF b.child_key IS NOT NULL THEN
          RAISE EXCEPTION 'tombstone: cannot erase % %: % % references % % (foreign key %, ON DELETE %) and is live',
              rel, key, e.child, b.child_key, e.parent, b.parent_key, e.name, upper(replace(e.on_delete, '_', ' '))
            USING ERRCODE = 'foreign_key_violation',
                  HINT = format('Delete or erase that row first (tombstone erase --table %s --key %L), or point it elsewhere; soft-deleted children are erased along.',
                                e.child, b.child_key);
        END IF;
        IF sd IS NULL THEN
          CONTINUE;
        END IF;
        -- RESTRICT is checked at once, before a cascade could take the
        -- child: children already going by a cascade are removed first too.
        IF e.on_delete = 'restrict' THEN
          EXECUTE format(
            'UPDATE tombstone_erase_set s2 SET explicit = true
               FROM tombstone_erase_set s JOIN %1$s p ON %2$s JOIN %3$s c ON %4$s
              WHERE s.rel = %5$L::regclass AND s.depth = $1 AND s2.rel = %6$L::regclass AND s2.pk = %7$s',
            e.parent, tombstone.key_match(e.parent, 'p', 's.pk'), e.child, e.on_clause, e.parent, e.child,
            tombstone.key_of(e.child, 'c'))
          USING d;
        END IF;
      END IF;
      EXECUTE format(
        'INSERT INTO tombstone_erase_set
         SELECT DISTINCT %1$L::regclass, %2$s, $1 + 1, %3$s
           FROM tombstone_erase_set s JOIN %4$s p ON %5$s JOIN %1$s c ON %6$s
          WHERE s.rel = %4$L::regclass AND s.depth = $1
         ON CONFLICT DO NOTHING',
        e.child, tombstone.key_of(e.child, 'c'), (e.on_delete <> 'cascade')::text, e.parent,
        tombstone.key_match(e.parent, 'p', 's.pk'), e.on_clause)
      USING d;
    END LOOP;
    EXIT WHEN NOT EXISTS (SELECT 1 FROM tombstone_erase_set s WHERE s.depth = d + 1);
    d := d + 1;
    IF d > 1000 THEN
      RAISE EXCEPTION 'tombstone: cannot erase % %: its cascade is deeper than 1000 levels', rel, key
        USING ERRCODE = 'program_limit_exceeded';
    END IF;
  END LOOP;

  INSERT INTO tombstone.hard_delete_grants (reason, actor) VALUES ('erase', who);
  -- The children PostgreSQL would not take (or would refuse) first, the
  -- deepest first; then the row, with its cascade.
  FOR t IN SELECT s.rel, s.depth FROM tombstone_erase_set s WHERE s.explicit
            GROUP BY s.rel, s.depth ORDER BY s.depth DESC, s.rel::text LOOP
    EXECUTE format('DELETE FROM %1$s x USING tombstone_erase_set s
                     WHERE s.rel = %2$L::regclass AND s.depth = $1 AND s.explicit AND %3$s',
                   t.rel, t.rel, tombstone.key_match(t.rel, 'x', 's.pk'))
      USING t.depth;
  END LOOP;
  EXECUTE format('DELETE FROM %s x WHERE %s', rel, tombstone.key_match(rel, 'x', '$1')) USING key;
  GET DIAGNOSTICS n = ROW_COUNT;
  SELECT g.counts INTO counts FROM tombstone.hard_delete_grants g WHERE g.xact_id = pg_current_xact_id();
  DELETE FROM tombstone.hard_delete_grants WHERE xact_id = pg_current_xact_id();
  TRUNCATE tombstone_erase_set;
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
