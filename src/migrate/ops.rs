//! DDL of the operations side, part one: who may use it, the helpers that
//! read the catalog at run time, restore and trash. The CLI (`src/ops/`)
//! calls these functions, so `tombstone restore` and `SELECT
//! tombstone.restore(…)` in a bypass session are one implementation.
//!
//! Every entry point is `SECURITY DEFINER` (it updates tombstone's own
//! tables, which applications may only read) with a fixed `search_path`,
//! and starts with `tombstone.require_bypass`, which raises 42501 unless
//! the *login* role (`session_user`) is a superuser, owns the tombstone
//! schema, or is a member of a role in `tombstone.bypass_roles` (written
//! by `serve` from `roles.bypass`).

/// Bypass roles, restores, helpers, `tombstone.restore` (and its body,
/// `tombstone.restore_operation`), `tombstone.restore_row` (and
/// `tombstone.row_operation`) and `tombstone.trash`.
pub const OPS_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS tombstone;

-- roles.bypass of rules.toml, written by `tombstone serve` at startup.
CREATE TABLE IF NOT EXISTS tombstone.bypass_roles (role_name text PRIMARY KEY);

-- One row per restored operation; restoring twice finds it and does nothing.
CREATE TABLE IF NOT EXISTS tombstone.restores (
  op_id       uuid        PRIMARY KEY REFERENCES tombstone.operations (id) ON DELETE CASCADE,
  actor       text        NOT NULL,
  login_role  text        NOT NULL DEFAULT session_user,
  xact_id     xid8        NOT NULL DEFAULT pg_current_xact_id(),
  restored_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION tombstone.require_bypass(what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND rolsuper)
     OR pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'tombstone'), 'MEMBER')
     OR EXISTS (SELECT 1 FROM tombstone.bypass_roles b JOIN pg_roles r ON r.rolname = b.role_name
                 WHERE pg_has_role(session_user, r.oid, 'MEMBER')) THEN
    RETURN;
  END IF;
  RAISE EXCEPTION 'tombstone: permission denied for %: role "%" is not a member of a bypass role', what, session_user
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'roles.bypass in rules.toml names the roles whose members see the trash, restore, purge and erase.';
END
$fn$;

-- The soft-delete column of a table: the one its audit trigger names
-- (migrate writes rules.toml's choice there), else `deleted_at` if present.
CREATE OR REPLACE FUNCTION tombstone.soft_delete_column(rel regclass) RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(
    (SELECT (string_to_array(encode(tg.tgargs, 'escape'), '\000'))[1] FROM pg_trigger tg
      WHERE tg.tgrelid = rel AND tg.tgname = 'tombstone_audit_update'),
    (SELECT 'deleted_at'::text FROM pg_attribute a
      WHERE a.attrelid = rel AND a.attname = 'deleted_at' AND a.attnum > 0 AND NOT a.attisdropped))
$fn$;

CREATE OR REPLACE FUNCTION tombstone.deleted_by_column(rel regclass) RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT a.attname::text FROM pg_attribute a
   WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
     AND a.attname = coalesce(
       (SELECT (string_to_array(encode(tg.tgargs, 'escape'), '\000'))[2] FROM pg_trigger tg
         WHERE tg.tgrelid = rel AND tg.tgname = 'tombstone_audit_update'), 'deleted_by')
$fn$;

-- SQL matching row alias `x` to the jsonb key expression `j`
-- (`x.id = (j ->> 'id')::bigint AND …`); tables without a primary key are
-- keyed by the whole row minus the soft-delete column, as the rewriter does.
CREATE OR REPLACE FUNCTION tombstone.key_match(rel regclass, x text, j text) RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(
    (SELECT string_agg(format('%s.%I = (%s ->> %L)::%s', x, a.attname, j, a.attname,
                              format_type(a.atttypid, a.atttypmod)), ' AND ' ORDER BY a.attnum)
       FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = rel AND i.indisprimary),
    format('(to_jsonb(%s) - %L) = %s', x, tombstone.soft_delete_column(rel), j))
$fn$;

-- SQL building the jsonb key of row alias `x`.
CREATE OR REPLACE FUNCTION tombstone.key_of(rel regclass, x text) RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(
    (SELECT 'jsonb_build_object(' || string_agg(format('%L, %s.%I', a.attname, x, a.attname), ', ' ORDER BY a.attnum) || ')'
       FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = rel AND i.indisprimary),
    format('(to_jsonb(%s) - %L)', x, tombstone.soft_delete_column(rel)))
$fn$;

-- `schema.table`, or a bare name that one protected table has.
CREATE OR REPLACE FUNCTION tombstone.resolve_table(name text) RETURNS regclass
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  rel regclass;
  n int;
BEGIN
  IF position('.' in name) > 0 THEN
    SELECT c.oid INTO rel FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
     WHERE ns.nspname = split_part(name, '.', 1) AND c.relname = substr(name, position('.' in name) + 1)
       AND c.relkind IN ('r', 'p');
  ELSE
    SELECT count(*) INTO n FROM pg_class c
     WHERE c.relname = name AND c.relkind IN ('r', 'p') AND tombstone.soft_delete_column(c.oid) IS NOT NULL;
    IF n > 1 THEN
      RAISE EXCEPTION 'tombstone: table name "%" is ambiguous', name
        USING ERRCODE = 'ambiguous_alias', HINT = 'Write it as schema.table.';
    END IF;
    SELECT c.oid INTO rel FROM pg_class c
     WHERE c.relname = name AND c.relkind IN ('r', 'p') AND tombstone.soft_delete_column(c.oid) IS NOT NULL;
  END IF;
  IF rel IS NULL THEN
    RAISE EXCEPTION 'tombstone: no protected table "%"', name USING ERRCODE = 'undefined_table';
  END IF;
  RETURN rel;
END
$fn$;

-- The first row operation `op` soft-deleted whose parent (through an edge
-- of tombstone.edges, the graph the rewriter cascades along, to a protected
-- table) is deleted and does not come back with it, and the operation that
-- deleted that parent (NULL: none recorded, or all restored). No row:
-- nothing stands in the way of restoring `op`.
CREATE OR REPLACE FUNCTION tombstone.restore_blocker(op uuid)
RETURNS TABLE (child_table text, child_key jsonb, parent_table text, parent_key jsonb, blocker uuid)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  t record;
  fk record;
  rel regclass;
  psd text;
  cpk jsonb;
  ppk jsonb;
BEGIN
  FOR t IN SELECT DISTINCT r.table_schema, r.table_name FROM tombstone.operation_rows r
            WHERE r.op_id = op AND r.action = 'soft_delete' ORDER BY 1, 2 LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    FOR fk IN SELECT e.parent, e.parent_schema AS pschema, e.parent_table AS pname,
                     (SELECT string_agg(format('p.%I = c.%I', k.pcol, k.ccol), ' AND ')
                        FROM unnest(e.parent_columns, e.child_columns) AS k(pcol, ccol)) AS on_clause
                FROM tombstone.edges e
               WHERE e.child = rel AND e.followed ORDER BY e.name LOOP
      psd := tombstone.soft_delete_column(fk.parent);
      CONTINUE WHEN psd IS NULL;
      cpk := NULL;
      EXECUTE format(
        'SELECT r.pk, %1$s
           FROM (SELECT * FROM tombstone.operation_rows WHERE op_id = $1 OFFSET 0) r
           JOIN %2$s c ON %3$s JOIN %4$s p ON %5$s
          WHERE r.action = ''soft_delete'' AND r.table_schema = %6$L AND r.table_name = %7$L
            AND p.%8$I IS NOT NULL
            AND NOT coalesce((SELECT true FROM tombstone.operation_rows pr
                               WHERE pr.table_schema = %9$L AND pr.table_name = %10$L AND pr.pk = %1$s
                                 AND pr.op_id = $1 AND pr.action = ''soft_delete'' LIMIT 1), false)
          LIMIT 1',
        tombstone.key_of(fk.parent, 'p'), rel, tombstone.key_match(rel, 'c', 'r.pk'), fk.parent, fk.on_clause,
        t.table_schema, t.table_name, psd, fk.pschema, fk.pname)
      INTO cpk, ppk USING op;
      IF cpk IS NOT NULL THEN
        child_table := t.table_schema || '.' || t.table_name;
        child_key := cpk;
        parent_table := fk.pschema || '.' || fk.pname;
        parent_key := ppk;
        SELECT r.op_id INTO blocker
          FROM tombstone.operation_rows r JOIN tombstone.operations po ON po.id = r.op_id
         WHERE r.table_schema = fk.pschema AND r.table_name = fk.pname AND r.pk = ppk
           AND r.action = 'soft_delete'
           AND NOT EXISTS (SELECT 1 FROM tombstone.restores s WHERE s.op_id = r.op_id)
         ORDER BY po.created_at DESC, po.stmt_at DESC LIMIT 1;
        RETURN NEXT;
        RETURN;
      END IF;
    END LOOP;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_blocker(uuid) FROM PUBLIC;

-- How many soft-delete operations transaction `x` made: its action's size.
CREATE OR REPLACE FUNCTION tombstone.action_size(x xid8) RETURNS bigint
LANGUAGE sql STABLE AS $fn$
  SELECT count(*) FROM tombstone.operations o WHERE o.xact_id = x AND o.kind = 'soft_delete'
$fn$;
REVOKE ALL ON FUNCTION tombstone.action_size(xid8) FROM PUBLIC;

-- The rows of operations `$1` (a uuid[] parameter of the statement) that
-- a restore of table `rel` undeletes, as `FROM … WHERE …` text with `r`
-- (the operation row), `o` (its operation) and `y` (the table's row):
-- still deleted, and not deleted again by a later operation since (a row
-- deleted by its operation has its deleted_at = the operation's time, so
-- the exact check runs only for the others). The op_id subquery is fenced
-- (OFFSET 0) so the plan stays a scan of these operations' rows whatever
-- the statistics say. tombstone.restore, its preview and its unique-key
-- check all select through this one text.
CREATE OR REPLACE FUNCTION tombstone.restore_rows_from(rel regclass, sch text, tbl text, sd text) RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT format(
    'FROM (SELECT * FROM tombstone.operation_rows WHERE op_id = ANY ($1) OFFSET 0) r
       JOIN (SELECT id, created_at FROM tombstone.operations WHERE id = ANY ($1)) o ON o.id = r.op_id
       JOIN %1$s y ON %2$s
      WHERE r.action = ''soft_delete''
        AND r.table_schema = %3$L AND r.table_name = %4$L AND y.%5$I IS NOT NULL
        AND (y.%5$I = o.created_at OR NOT coalesce((
          SELECT true FROM tombstone.operation_rows r2 JOIN tombstone.operations o2 ON o2.id = r2.op_id
           WHERE r2.table_schema = %3$L AND r2.table_name = %4$L AND r2.pk = r.pk
             AND r2.action = ''soft_delete'' AND o2.created_at > o.created_at
             AND NOT EXISTS (SELECT 1 FROM tombstone.restores s2 WHERE s2.op_id = o2.id)
           LIMIT 1), false))',
    rel, tombstone.key_match(rel, 'y', 'r.pk'), sch, tbl, sd)
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_rows_from(regclass, text, text, text) FROM PUBLIC;

-- The rows of operations `$1` whose foreign-key columns the operations set
-- to NULL / DEFAULT, as `FROM … WHERE …` text (`r`, `y` as above).
CREATE OR REPLACE FUNCTION tombstone.restore_fk_rows_from(rel regclass, sch text, tbl text) RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT format(
    'FROM (SELECT * FROM tombstone.operation_rows WHERE op_id = ANY ($1) OFFSET 0) r
       JOIN %1$s y ON %2$s
      WHERE r.action IN (''set_null'', ''set_default'')
        AND r.table_schema = %3$L AND r.table_name = %4$L',
    rel, tombstone.key_match(rel, 'y', 'r.pk'), sch, tbl)
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_fk_rows_from(regclass, text, text) FROM PUBLIC;

-- The SET list putting back the columns operations `ops` set to NULL /
-- DEFAULT on table `sch.tbl` (row alias `x`, operation row `s`); NULL
-- when they recorded none. A SET NULL column the application has set
-- again since is left alone.
CREATE OR REPLACE FUNCTION tombstone.restore_fk_sets(ops uuid[], rel regclass, sch text, tbl text) RETURNS text
LANGUAGE sql STABLE AS $fn$
  SELECT string_agg(format(
           '%1$I = CASE WHEN s.old_values ? %2$L AND (x.%1$I IS NULL OR s.action = ''set_default'')
                        THEN (jsonb_populate_record(NULL::%3$s, s.old_values)).%1$I ELSE x.%1$I END',
           k.col, k.col, rel), ', ')
    FROM (SELECT DISTINCT jsonb_object_keys(r.old_values) AS col FROM tombstone.operation_rows r
           WHERE r.op_id = ANY (ops) AND r.table_schema = sch AND r.table_name = tbl
             AND r.action IN ('set_null', 'set_default') AND jsonb_typeof(r.old_values) = 'object') k
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_fk_sets(uuid[], regclass, text, text) FROM PUBLIC;

-- Brings back exactly what operation `op` soft-deleted (target and cascade)
-- and the columns it set to NULL/DEFAULT, in the caller's transaction,
-- with `who` as the audit's actor. The body of tombstone.restore and of
-- each step of tombstone.restore_action; callable only by them (no
-- privilege for anyone else). Refuses (55000) when a restored row's parent
-- is still deleted by another operation, naming it, and the action command
-- when that operation is of the same transaction; with `check_unique`,
-- then refuses (23505) when a restored row would take a unique key a live
-- row holds now (or another restored row), listing every conflict
-- (tombstone.restore_check_unique); restore_action checks its whole action
-- once instead. A second restore is a no-op ("already_restored"). The
-- reply names the operation's action (its transaction's id) and how many
-- of that action's operations there are and are still deleted.
CREATE OR REPLACE FUNCTION tombstone.restore_operation(op uuid, who text, check_unique boolean) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  o record;
  done record;
  t record;
  b record;
  bx xid8;
  rel regclass;
  sd text;
  by_col text;
  sets text;
  n bigint;
  total bigint := 0;
  tables jsonb := '[]';
  action_ops bigint;
  action_pending bigint;
BEGIN
  SELECT * INTO o FROM tombstone.operations WHERE id = op FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tombstone: no operation %', op
      USING ERRCODE = 'no_data_found',
            HINT = 'tombstone trash lists the operations that can be restored; purged ones are gone.';
  END IF;
  SELECT * INTO done FROM tombstone.restores r WHERE r.op_id = op;
  IF FOUND THEN
    SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM tombstone.restores s WHERE s.op_id = a.id))
      INTO action_ops, action_pending
      FROM tombstone.operations a WHERE a.xact_id = o.xact_id AND a.kind = 'soft_delete';
    RETURN jsonb_build_object('operation', op, 'status', 'already_restored',
      'table', o.table_schema || '.' || o.table_name, 'rows', 0, 'tables', '[]'::jsonb,
      'restored_at', done.restored_at, 'restored_by', done.actor,
      'action', o.xact_id::text, 'action_operations', action_ops, 'action_pending', action_pending);
  END IF;

  -- Every parent of a row this operation deleted must be live or come
  -- back with it.
  SELECT * INTO b FROM tombstone.restore_blocker(op);
  IF FOUND THEN
    SELECT po.xact_id INTO bx FROM tombstone.operations po WHERE po.id = b.blocker;
    IF b.blocker IS NULL THEN
      RAISE EXCEPTION 'tombstone: cannot restore operation %: % % references % %, which is still deleted (not by a recorded operation)',
          op, b.child_table, b.child_key, b.parent_table, b.parent_key
        USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Restore the parent row first.';
    ELSIF bx = o.xact_id THEN
      RAISE EXCEPTION 'tombstone: cannot restore operation %: % % references % %, which is still deleted by operation % of the same action % (one transaction deleted both)',
          op, b.child_table, b.child_key, b.parent_table, b.parent_key, b.blocker, bx
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = format('Restore the whole action, parents first: tombstone restore --action %s (SQL: SELECT tombstone.restore_action(''%s'')); or operation %s first.',
                            bx, bx, b.blocker);
    ELSE
      RAISE EXCEPTION 'tombstone: cannot restore operation %: % % references % %, which is still deleted by operation %',
          op, b.child_table, b.child_key, b.parent_table, b.parent_key, b.blocker
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = format('Restore operation %s first (tombstone restore %s).', b.blocker, b.blocker)
                     || CASE WHEN tombstone.action_size(bx) > 1
                             THEN format(' It is part of action %s (%s operations in one transaction): tombstone restore --action %s restores them all.',
                                         bx, tombstone.action_size(bx), bx)
                             ELSE '' END;
    END IF;
  END IF;

  -- No restored row may take a unique key another row holds.
  IF check_unique THEN
    PERFORM tombstone.restore_check_unique(ARRAY[op], format('operation %s', op),
      format('tombstone restore %s --dry-run (SQL: SELECT tombstone.restore_preview(''%s''))', op, op));
  END IF;

  -- Recorded first: the audit trigger skips the SET NULL undo below by it.
  INSERT INTO tombstone.restores (op_id, actor) VALUES (op, who);

  FOR t IN SELECT DISTINCT r.table_schema, r.table_name FROM tombstone.operation_rows r
            WHERE r.op_id = op AND r.action = 'soft_delete' ORDER BY 1, 2 LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    sd := tombstone.soft_delete_column(rel);
    CONTINUE WHEN sd IS NULL;
    by_col := tombstone.deleted_by_column(rel);
    EXECUTE format(
      'WITH s AS (SELECT y.ctid AS row_id, r.pk, to_jsonb(y.*) AS old_row %1$s),
            u AS (UPDATE %2$s x SET %3$I = NULL%4$s FROM s WHERE x.ctid = s.row_id
                  RETURNING s.pk, s.old_row, to_jsonb(x.*) AS new_row)
       INSERT INTO tombstone.audit (table_schema, table_name, pk, action, old_values, new_values, actor, op_id)
       SELECT %5$L, %6$L, u.pk, ''restore'', u.old_row, u.new_row, $2, $3 FROM u',
      tombstone.restore_rows_from(rel, t.table_schema, t.table_name, sd), rel, sd,
      CASE WHEN by_col IS NULL THEN '' ELSE format(', %I = NULL', by_col) END,
      t.table_schema, t.table_name)
    USING ARRAY[op], who, op;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    IF n > 0 AND tombstone.notify_channel() IS NOT NULL THEN
      PERFORM tombstone.notify_change('restore', t.table_schema, t.table_name, op,
        (SELECT jsonb_agg(r.pk) FROM tombstone.operation_rows r
          WHERE r.op_id = op AND r.action = 'soft_delete'
            AND r.table_schema = t.table_schema AND r.table_name = t.table_name));
    END IF;
    tables := tables || jsonb_build_object('table', t.table_schema || '.' || t.table_name,
                                           'action', 'soft_delete', 'rows', n);
  END LOOP;

  -- Columns the operation set to NULL / DEFAULT get their old values back
  -- (a SET NULL column the application has set again since is left alone).
  FOR t IN SELECT DISTINCT r.table_schema, r.table_name FROM tombstone.operation_rows r
            WHERE r.op_id = op AND r.action IN ('set_null', 'set_default') ORDER BY 1, 2 LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    sets := tombstone.restore_fk_sets(ARRAY[op], rel, t.table_schema, t.table_name);
    CONTINUE WHEN sets IS NULL;
    EXECUTE format(
      'WITH s AS (SELECT y.ctid AS row_id, r.pk, r.action, r.old_values, to_jsonb(y.*) AS old_row %1$s),
            u AS (UPDATE %2$s x SET %3$s FROM s WHERE x.ctid = s.row_id
                  RETURNING s.pk, s.old_row, to_jsonb(x.*) AS new_row)
       INSERT INTO tombstone.audit (table_schema, table_name, pk, action, old_values, new_values, actor, op_id)
       SELECT %4$L, %5$L, u.pk, ''restore'', u.old_row, u.new_row, $2, $3 FROM u',
      tombstone.restore_fk_rows_from(rel, t.table_schema, t.table_name), rel, sets, t.table_schema, t.table_name)
    USING ARRAY[op], who, op;
    GET DIAGNOSTICS n = ROW_COUNT;
    tables := tables || jsonb_build_object('table', t.table_schema || '.' || t.table_name,
                                           'action', 'set_null', 'rows', n);
  END LOOP;

  SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM tombstone.restores s WHERE s.op_id = a.id))
    INTO action_ops, action_pending
    FROM tombstone.operations a WHERE a.xact_id = o.xact_id AND a.kind = 'soft_delete';
  RETURN jsonb_build_object('operation', op, 'status', 'restored',
    'table', o.table_schema || '.' || o.table_name, 'rows', total, 'tables', tables,
    'restored_by', who,
    'action', o.xact_id::text, 'action_operations', action_ops, 'action_pending', action_pending);
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_operation(uuid, text, boolean) FROM PUBLIC;

-- Restores operation `op` (tombstone.restore_operation, unique keys
-- checked), audited with `actor` (default: tombstone.current_actor()).
CREATE OR REPLACE FUNCTION tombstone.restore(op uuid, actor text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM tombstone.require_bypass('restore');
  RETURN tombstone.restore_operation(op, coalesce(nullif(actor, ''), tombstone.current_actor()), true);
END
$fn$;

-- The operation that soft-deleted one row, given its table and key
-- (`'{"id": 42}'`, composite keys with every column): the newest not
-- restored, else the newest. The row must be that operation's target, not
-- a row it cascaded to (55000, naming the operation and its action).
CREATE OR REPLACE FUNCTION tombstone.row_operation(tbl text, key jsonb) RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  rel regclass;
  s text;
  t text;
  k jsonb;
  found_op uuid;
  found_xact xid8;
  target text;
BEGIN
  rel := tombstone.resolve_table(tbl);
  SELECT ns.nspname, c.relname INTO s, t FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
   WHERE c.oid = rel;
  EXECUTE format('SELECT %s FROM jsonb_populate_record(NULL::%s, $1) x', tombstone.key_of(rel, 'x'), rel)
    INTO k USING key;
  SELECT r.op_id, o.xact_id, o.table_schema || '.' || o.table_name INTO found_op, found_xact, target
    FROM tombstone.operation_rows r JOIN tombstone.operations o ON o.id = r.op_id
   WHERE r.table_schema = s AND r.table_name = t AND r.pk = k AND r.action = 'soft_delete'
   ORDER BY (EXISTS (SELECT 1 FROM tombstone.restores x WHERE x.op_id = r.op_id)), o.created_at DESC
   LIMIT 1;
  IF found_op IS NULL THEN
    RAISE EXCEPTION 'tombstone: no operation deleted %.% %', s, t, k
      USING ERRCODE = 'no_data_found', HINT = 'tombstone trash lists the operations that can be restored.';
  END IF;
  IF target <> s || '.' || t THEN
    RAISE EXCEPTION 'tombstone: %.% % was deleted as part of operation % (a delete on %)', s, t, k, found_op, target
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = format('Restore that operation: tombstone restore %s', found_op)
                   || CASE WHEN tombstone.action_size(found_xact) > 1
                           THEN format(' (or its whole action, %s operations in one transaction: tombstone restore --action %s)',
                                       tombstone.action_size(found_xact), found_xact)
                           ELSE '' END;
  END IF;
  RETURN found_op;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.row_operation(text, jsonb) FROM PUBLIC;

-- Restores the operation that soft-deleted one row, given its table and
-- key (tombstone.row_operation finds it).
CREATE OR REPLACE FUNCTION tombstone.restore_row(tbl text, key jsonb, actor text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM tombstone.require_bypass('restore');
  RETURN tombstone.restore(tombstone.row_operation(tbl, key), actor);
END
$fn$;

-- The trash: operations not restored whose rows are not purged yet, newest
-- first (one transaction's in statement order), with the target's keys (at
-- most 10), how many target rows, the rows per table the operation
-- touched, and its action: the id of the transaction that made it (what
-- tombstone.restore_action takes) and how many of that action's
-- operations are in the trash, whatever `since` and `tbl` say.
CREATE OR REPLACE FUNCTION tombstone.trash(since timestamptz DEFAULT NULL, tbl text DEFAULT NULL)
RETURNS TABLE (op_id uuid, table_name text, keys jsonb, target_rows bigint, deleted_at timestamptz,
               actor text, login_role text, cascaded jsonb, action text, action_operations bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
  rel regclass;
  s text;
  t text;
BEGIN
  PERFORM tombstone.require_bypass('trash');
  IF tbl IS NOT NULL THEN
    rel := tombstone.resolve_table(tbl);
    SELECT ns.nspname, c.relname INTO s, t FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
     WHERE c.oid = rel;
  END IF;
  RETURN QUERY
  SELECT o.id, o.table_schema || '.' || o.table_name,
         (SELECT coalesce(jsonb_agg(k.pk), '[]') FROM (
            SELECT r.pk FROM tombstone.operation_rows r
             WHERE r.op_id = o.id AND r.action = 'soft_delete'
               AND r.table_schema = o.table_schema AND r.table_name = o.table_name LIMIT 10) k),
         (SELECT count(*) FROM tombstone.operation_rows r
           WHERE r.op_id = o.id AND r.action = 'soft_delete'
             AND r.table_schema = o.table_schema AND r.table_name = o.table_name),
         o.created_at, o.actor, o.login_role,
         (SELECT jsonb_object_agg(c.name, c.n) FROM (
            SELECT r.table_schema || '.' || r.table_name
                   || CASE WHEN r.action = 'soft_delete' THEN '' ELSE ' (' || r.action || ')' END AS name,
                   count(*) AS n
              FROM tombstone.operation_rows r WHERE r.op_id = o.id GROUP BY 1) c),
         o.xact_id::text,
         (SELECT count(*) FROM tombstone.operations a
           WHERE a.xact_id = o.xact_id AND a.kind = 'soft_delete'
             AND NOT EXISTS (SELECT 1 FROM tombstone.restores x WHERE x.op_id = a.id)
             AND EXISTS (SELECT 1 FROM tombstone.operation_rows r WHERE r.op_id = a.id AND r.action = 'soft_delete'))
    FROM tombstone.operations o
   WHERE o.kind = 'soft_delete'
     AND (since IS NULL OR o.created_at >= since)
     AND (tbl IS NULL OR (o.table_schema = s AND o.table_name = t))
     AND NOT EXISTS (SELECT 1 FROM tombstone.restores x WHERE x.op_id = o.id)
     AND EXISTS (SELECT 1 FROM tombstone.operation_rows r WHERE r.op_id = o.id AND r.action = 'soft_delete')
   ORDER BY o.created_at DESC, o.xact_id DESC, o.stmt_at, o.id;
END
$fn$;
"#;
