//! DDL of restore previews and conflicts (SPEC B6, issue 12 item 5).
//!
//! A restore can be previewed, changing nothing: per table the rows it
//! would undelete and the rows whose foreign-key columns it would put back
//! (the same counts the restore then reports), and every conflict that
//! would make it fail:
//!
//! - `unique_live`: a restored row would take a key of a unique index
//!   that a row in the index now holds (a live row, for the usual index
//!   partial on `deleted_at IS NULL`);
//! - `unique_restored`: two rows of the restore itself would take the same
//!   key (a key re-used and deleted again: rows of two operations of one
//!   action, or a deleted row's key changed by a bypass session);
//! - `parent_deleted`: a restored row's parent is still deleted by an
//!   operation that does not come back with it (the refusal
//!   `tombstone.restore_blocker` makes, listed for every row).
//!
//! The unique check is one query per unique index (not per row): the
//! restored rows' images (the row as it is now with the soft-delete
//! column, `deleted_by` and the put-back foreign-key columns as the restore
//! would set them) are built once per table, the index's predicate and key
//! expressions are evaluated on them as PostgreSQL would on the updated
//! row, and they are joined against the table's rows that satisfy the
//! predicate now (the index's own lookup), and grouped among themselves.
//! Expression indexes, partial indexes of any predicate, index collations
//! and `NULLS NOT DISTINCT` are followed; primary keys are not checked (a
//! restored row holds its own). An index whose check fails to run (an
//! expression that cannot be evaluated outside the index) is reported as
//! `unchecked` with the reason, and PostgreSQL's own 23505 stays its guard.
//! The keys `tombstone.restore_action` puts back from the application's
//! own SET NULL updates (`tombstone.restore_app_set_null`, run after the
//! operations) are counted by the action's preview but not part of the
//! images.
//!
//! `tombstone.restore` (so `restore_row`) checks its operation's unique
//! keys after the parent check and before changing anything, and
//! `tombstone.restore_action` its whole action's once before restoring
//! the first operation: a conflict raises 23505 (`unique_violation`, what
//! PostgreSQL itself would raise) with every conflict in the DETAIL (at
//! most 20 lines, then how many more) and a HINT.

/// `tombstone.restore_blockers`, `tombstone.restore_unique_conflicts`,
/// `tombstone.restore_check_unique`, `tombstone.restore_counts` and the
/// previews `tombstone.restore_preview`, `tombstone.restore_row_preview`,
/// `tombstone.restore_action_preview`.
pub const PREVIEW_DDL: &str = r#"
-- Every row operations `ops` soft-deleted whose parent (through an edge of
-- tombstone.edges to a protected table) is deleted and does not come back
-- with them, with the operation that deleted that parent (the newest not
-- restored; NULL: none recorded) and its action: what
-- tombstone.restore_blocker finds first, all of it.
CREATE OR REPLACE FUNCTION tombstone.restore_blockers(ops uuid[])
RETURNS TABLE (op_id uuid, child_table text, child_key jsonb, parent_table text, parent_key jsonb,
               blocker uuid, blocker_action xid8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
  t record;
  fk record;
  rel regclass;
  psd text;
BEGIN
  FOR t IN SELECT DISTINCT r.table_schema, r.table_name FROM tombstone.operation_rows r
            WHERE r.op_id = ANY (ops) AND r.action = 'soft_delete' ORDER BY 1, 2 LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    FOR fk IN SELECT e.parent, e.parent_schema AS pschema, e.parent_table AS pname,
                     (SELECT string_agg(format('p.%I = c.%I', k.pcol, k.ccol), ' AND ')
                        FROM unnest(e.parent_columns, e.child_columns) AS k(pcol, ccol)) AS on_clause
                FROM tombstone.edges e
               WHERE e.child = rel AND e.followed ORDER BY e.name LOOP
      psd := tombstone.soft_delete_column(fk.parent);
      CONTINUE WHEN psd IS NULL;
      -- The blocked rows first (fenced), then the operation that deleted
      -- each one's parent: the lookup runs only for rows that wait. The
      -- "comes back too" test is a subplan (as in restore_blocker), so it
      -- stays an index lookup by key whatever the estimates.
      RETURN QUERY EXECUTE format(
        'SELECT w.op_id, %11$L::text, w.pk, %12$L::text, w.ppk, b.op_id, b.xact_id
           FROM (SELECT r.op_id, r.pk, %1$s AS ppk
                   FROM (SELECT * FROM tombstone.operation_rows WHERE op_id = ANY ($1) OFFSET 0) r
                   JOIN %2$s c ON %3$s JOIN %4$s p ON %5$s
                  WHERE r.action = ''soft_delete'' AND r.table_schema = %6$L AND r.table_name = %7$L
                    AND p.%8$I IS NOT NULL
                    AND NOT coalesce((SELECT true FROM tombstone.operation_rows pr
                                       WHERE pr.table_schema = %9$L AND pr.table_name = %10$L AND pr.pk = %1$s
                                         AND pr.op_id = ANY ($1) AND pr.action = ''soft_delete'' LIMIT 1), false)
                 OFFSET 0) w
           LEFT JOIN LATERAL (
             SELECT r2.op_id, po.xact_id
               FROM tombstone.operation_rows r2 JOIN tombstone.operations po ON po.id = r2.op_id
              WHERE r2.table_schema = %9$L AND r2.table_name = %10$L AND r2.pk = w.ppk
                AND r2.action = ''soft_delete''
                AND NOT EXISTS (SELECT 1 FROM tombstone.restores s WHERE s.op_id = r2.op_id)
              ORDER BY po.created_at DESC, po.stmt_at DESC LIMIT 1) b ON true
          ORDER BY w.pk',
        tombstone.key_of(fk.parent, 'p'), rel, tombstone.key_match(rel, 'c', 'r.pk'), fk.parent, fk.on_clause,
        t.table_schema, t.table_name, psd, fk.pschema, fk.pname,
        t.table_schema || '.' || t.table_name, fk.pschema || '.' || fk.pname)
      USING ops;
    END LOOP;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_blockers(uuid[]) FROM PUBLIC;

-- Every unique key a restore of operations `ops` (all together) would
-- break: per table with restored rows, per unique index that is not the
-- primary key, one query. `kind` is `unique_live` (a row the index holds
-- now, `holder`, has the key a restored row, `row_key`, would take),
-- `unique_restored` (two restored rows would take the same key; `holder`
-- is the first of them), or `unchecked` (the check of that index could
-- not run; `reason`). `index_key` reads like PostgreSQL's DETAIL:
-- `(email)=(ann@example.com)`.
CREATE OR REPLACE FUNCTION tombstone.restore_unique_conflicts(ops uuid[])
RETURNS TABLE (kind text, table_name text, row_key jsonb, index_name text, index_key text, holder jsonb,
               reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
  t record;
  ix record;
  rel regclass;
  sd text;
  by_col text;
  img text;
  k int;
  e text;
  coll text;
  keys text;
  joins text;
  nonnull text;
  vals text;
  cols text;
  part_by text;
  found jsonb;
BEGIN
  FOR t IN SELECT DISTINCT r.table_schema, r.table_name FROM tombstone.operation_rows r
            WHERE r.op_id = ANY (ops) ORDER BY 1, 2 LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    img := NULL;
    FOR ix IN SELECT i.indexrelid, ic.relname::text AS name, i.indnkeyatts, i.indkey, i.indcollation,
                     pg_get_expr(i.indpred, i.indrelid) AS pred,
                     coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct
                FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
               WHERE i.indrelid = rel AND i.indisunique AND NOT i.indisprimary AND i.indislive AND i.indisready
               ORDER BY ic.relname LOOP
      IF img IS NULL THEN
        -- The restored rows' images, once per table: every row a restore
        -- of `ops` undeletes or puts foreign keys back on (a row in both
        -- gets both), as the table's row type.
        sd := tombstone.soft_delete_column(rel);
        by_col := tombstone.deleted_by_column(rel);
        img := format(
          'WITH src AS (%1$s
             SELECT y.tableoid AS toid, y.ctid AS tid, r.pk, to_jsonb(y.*) AS base,
                    coalesce((SELECT jsonb_object_agg(f.key, f.value)
                                FROM jsonb_each(CASE WHEN jsonb_typeof(r.old_values) = ''object''
                                                     THEN r.old_values ELSE ''{}'' END) f
                               WHERE r.action = ''set_default'' OR to_jsonb(y.*) -> f.key = ''null''::jsonb),
                             ''{}'') AS patch
             %2$s),
           g AS (SELECT s.toid, s.tid, (array_agg(s.pk))[1] AS pk, (array_agg(s.base))[1] AS base,
                        (SELECT jsonb_object_agg(f.key, f.value)
                           FROM unnest(array_agg(s.patch)) p(j) CROSS JOIN LATERAL jsonb_each(p.j) f) AS patch
                   FROM src s GROUP BY s.toid, s.tid),
           img AS MATERIALIZED (
             SELECT x.*, g.toid AS "tombstone.toid", g.tid AS "tombstone.tid", g.pk AS "tombstone.pk"
               FROM g CROSS JOIN LATERAL jsonb_populate_record(NULL::%3$s, g.base || g.patch) x
              WHERE g.patch IS NOT NULL)',
          CASE WHEN sd IS NULL THEN '' ELSE format(
            'SELECT y.tableoid AS toid, y.ctid AS tid, r.pk, to_jsonb(y.*) AS base, jsonb_build_object(%1$L, NULL%2$s) AS patch
             %3$s
             UNION ALL ',
            sd, CASE WHEN by_col IS NULL THEN '' ELSE format(', %L, NULL', by_col) END,
            tombstone.restore_rows_from(rel, t.table_schema, t.table_name, sd)) END,
          tombstone.restore_fk_rows_from(rel, t.table_schema, t.table_name), rel);
      END IF;

      -- The index's key, evaluated on the image (`img`, bare column
      -- names) and on the table's rows (`l`, bare column names too: the
      -- image side's columns are all named "tombstone.*").
      keys := NULL; joins := NULL; nonnull := NULL; vals := NULL; cols := NULL; part_by := NULL;
      FOR k IN 0 .. ix.indnkeyatts - 1 LOOP
        IF ix.indkey[k] = 0 THEN
          e := '(' || pg_get_indexdef(ix.indexrelid, k + 1, false) || ')';
          coll := CASE WHEN ix.indcollation[k] = 0 THEN '' ELSE
                    (SELECT format(' COLLATE %I.%I', cn.nspname, co.collname)
                       FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                      WHERE co.oid = ix.indcollation[k]) END;
        ELSE
          SELECT format('%I', a.attname),
                 CASE WHEN ix.indcollation[k] = 0 OR ix.indcollation[k] = a.attcollation THEN '' ELSE
                   (SELECT format(' COLLATE %I.%I', cn.nspname, co.collname)
                      FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                     WHERE co.oid = ix.indcollation[k]) END
            INTO e, coll
            FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum = ix.indkey[k];
        END IF;
        keys := concat_ws(', ', keys, format('%s%s AS "tombstone.k%s"', e, coll, k));
        joins := concat_ws(' AND ', joins,
                   format(CASE WHEN ix.nulls_not_distinct THEN '%s%s IS NOT DISTINCT FROM i."tombstone.k%s"'
                               ELSE '%s%s = i."tombstone.k%s"' END, e, coll, k));
        nonnull := concat_ws(' AND ', nonnull, format('"tombstone.k%s" IS NOT NULL', k));
        vals := concat_ws(', ', vals, format('i."tombstone.k%s"::text', k));
        part_by := concat_ws(', ', part_by, format('i."tombstone.k%s"', k));
        cols := concat_ws(', ', cols, pg_get_indexdef(ix.indexrelid, k + 1, true));
      END LOOP;

      BEGIN
        EXECUTE format(
          '%1$s
           SELECT coalesce(jsonb_agg(c ORDER BY c.kind, c.row_key), ''[]'') FROM (
             SELECT ''unique_live''::text AS kind, i."tombstone.pk" AS row_key, %6$s AS index_key, %7$s AS holder
               FROM (SELECT * FROM (SELECT %2$s, "tombstone.pk", "tombstone.toid", "tombstone.tid" FROM img %3$s) i0 %4$s) i
               JOIN %8$s l ON %5$s%9$s
              WHERE NOT EXISTS (SELECT 1 FROM img z WHERE z."tombstone.toid" = l.tableoid AND z."tombstone.tid" = l.ctid)
             UNION ALL
             SELECT ''unique_restored'', d.row_key, d.index_key, d.holder FROM (
               SELECT i."tombstone.pk" AS row_key, %6$s AS index_key,
                      first_value(i."tombstone.pk") OVER w AS holder, row_number() OVER w AS n
                 FROM (SELECT * FROM (SELECT %2$s, "tombstone.pk" FROM img %3$s) i0 %4$s) i
               WINDOW w AS (PARTITION BY %10$s ORDER BY i."tombstone.pk")) d
              WHERE d.n > 1) c',
          img, keys,
          CASE WHEN ix.pred IS NULL THEN '' ELSE 'WHERE (' || ix.pred || ')' END,
          CASE WHEN ix.nulls_not_distinct THEN '' ELSE 'WHERE ' || nonnull END,
          joins,
          format('%L || array_to_string(ARRAY[%s], '', '', ''null'') || '')''', '(' || cols || ')=(', vals),
          tombstone.key_of(rel, 'l'), rel,
          CASE WHEN ix.pred IS NULL THEN '' ELSE ' AND (' || ix.pred || ')' END,
          part_by)
        INTO found USING ops;
      EXCEPTION WHEN OTHERS THEN
        kind := 'unchecked';
        table_name := t.table_schema || '.' || t.table_name;
        row_key := NULL;
        index_name := ix.name;
        index_key := '(' || cols || ')';
        holder := NULL;
        reason := SQLERRM;
        RETURN NEXT;
        CONTINUE;
      END;
      RETURN QUERY
        SELECT x.kind, t.table_schema || '.' || t.table_name, x.row_key, ix.name, x.index_key, x.holder, NULL::text
          FROM jsonb_to_recordset(found) AS x(kind text, row_key jsonb, index_key text, holder jsonb);
    END LOOP;
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_unique_conflicts(uuid[]) FROM PUBLIC;

-- Raises 23505 when restoring operations `ops` would break a unique key
-- (tombstone.restore_unique_conflicts): `what` names the restore
-- ('operation …', 'action …'), `preview` the command that lists every
-- conflict. The DETAIL has one line per conflict, at most 20.
CREATE OR REPLACE FUNCTION tombstone.restore_check_unique(ops uuid[], what text, preview text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  n bigint;
  among bigint;
  lines text;
BEGIN
  SELECT count(*), count(*) FILTER (WHERE c.kind = 'unique_restored'),
         string_agg(c.line, E'\n' ORDER BY c.ord) FILTER (WHERE c.ord <= 20)
    INTO n, among, lines
    FROM (SELECT row_number() OVER () AS ord, u.kind,
                 CASE u.kind
                   WHEN 'unique_live' THEN format('%s %s: %s of index %s is held by live row %s',
                                                  u.table_name, u.row_key, u.index_key, u.index_name, u.holder)
                   ELSE format('%s %s: %s of index %s is also the key of %s, which this restore brings back too',
                               u.table_name, u.row_key, u.index_key, u.index_name, u.holder) END AS line
            FROM tombstone.restore_unique_conflicts(ops) u WHERE u.kind <> 'unchecked') c;
  IF n = 0 THEN
    RETURN;
  END IF;
  RAISE EXCEPTION 'tombstone: cannot restore %: % unique key conflict%', what, n, CASE WHEN n = 1 THEN '' ELSE 's' END
    USING ERRCODE = 'unique_violation',
          DETAIL = lines || CASE WHEN n > 20 THEN format(E'\n... and %s more', n - 20) ELSE '' END
                   || E'\nNothing was restored.',
          HINT = 'Delete the live row that holds each key, or change its key, then restore again'
                 || CASE WHEN among > 0
                         THEN '; of rows of the restore that would take the same key, change the key of all but one in a bypass session first'
                         ELSE '' END
                 || format('. %s lists every conflict.', preview);
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_check_unique(uuid[], text, text) FROM PUBLIC;

-- Per table, what tombstone.restore_operation(op) would report: rows it
-- would undelete (`soft_delete`) and rows whose foreign-key columns it
-- would put back (`set_null`), through the same selections.
CREATE OR REPLACE FUNCTION tombstone.restore_counts(op uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  t record;
  rel regclass;
  sd text;
  n bigint;
  tables jsonb := '[]';
BEGIN
  FOR t IN SELECT DISTINCT r.table_schema, r.table_name FROM tombstone.operation_rows r
            WHERE r.op_id = op AND r.action = 'soft_delete' ORDER BY 1, 2 LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    sd := tombstone.soft_delete_column(rel);
    CONTINUE WHEN sd IS NULL;
    EXECUTE 'SELECT count(DISTINCT y.ctid) ' || tombstone.restore_rows_from(rel, t.table_schema, t.table_name, sd)
      INTO n USING ARRAY[op];
    tables := tables || jsonb_build_object('table', t.table_schema || '.' || t.table_name,
                                           'action', 'soft_delete', 'rows', n);
  END LOOP;
  FOR t IN SELECT DISTINCT r.table_schema, r.table_name FROM tombstone.operation_rows r
            WHERE r.op_id = op AND r.action IN ('set_null', 'set_default') ORDER BY 1, 2 LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    CONTINUE WHEN tombstone.restore_fk_sets(ARRAY[op], rel, t.table_schema, t.table_name) IS NULL;
    EXECUTE 'SELECT count(DISTINCT y.ctid) ' || tombstone.restore_fk_rows_from(rel, t.table_schema, t.table_name)
      INTO n USING ARRAY[op];
    tables := tables || jsonb_build_object('table', t.table_schema || '.' || t.table_name,
                                           'action', 'set_null', 'rows', n);
  END LOOP;
  RETURN tables;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_counts(uuid) FROM PUBLIC;

-- A parent_deleted conflict of the restore of action `x` (NULL: of one
-- operation) from a row of tombstone.restore_blockers (as jsonb).
CREATE OR REPLACE FUNCTION tombstone.restore_parent_conflict(b jsonb, same xid8) RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
  SELECT jsonb_build_object('kind', 'parent_deleted', 'operation', b -> 'op_id',
    'table', b -> 'child_table', 'key', b -> 'child_key',
    'parent_table', b -> 'parent_table', 'parent_key', b -> 'parent_key',
    'deleted_by', b -> 'blocker', 'deleted_by_action', b -> 'blocker_action',
    'deleted_by_action_operations',
      CASE WHEN b ->> 'blocker_action' IS NULL THEN 0 ELSE tombstone.action_size((b ->> 'blocker_action')::xid8) END,
    'same_action', coalesce((b ->> 'blocker_action')::xid8 = same, false))
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_parent_conflict(jsonb, xid8) FROM PUBLIC;

-- The unique conflicts of restoring `ops`, as the preview lists them.
CREATE OR REPLACE FUNCTION tombstone.restore_unique_json(ops uuid[], OUT conflicts jsonb, OUT unchecked jsonb)
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(jsonb_agg(jsonb_build_object('kind', u.kind, 'table', u.table_name, 'key', u.row_key,
                                               'index', u.index_name, 'index_key', u.index_key, 'holder', u.holder))
                    FILTER (WHERE u.kind <> 'unchecked'), '[]'),
         coalesce(jsonb_agg(jsonb_build_object('table', u.table_name, 'index', u.index_name,
                                               'index_key', u.index_key, 'reason', u.reason))
                    FILTER (WHERE u.kind = 'unchecked'), '[]')
    FROM tombstone.restore_unique_conflicts(ops) u
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_unique_json(uuid[]) FROM PUBLIC;

-- What tombstone.restore(op) would do, changing nothing: status `ready`
-- (it would restore), `conflicts` (it would fail: every conflict listed)
-- or `already_restored`; per table the rows it would undelete and put
-- foreign keys back on (`tables`, as restore's reply has them) and their
-- sum of undeleted rows (`rows`); `conflicts` (parent_deleted,
-- unique_live, unique_restored) and their count; `unchecked` unique
-- indexes; the operation's action as restore's reply names it.
CREATE OR REPLACE FUNCTION tombstone.restore_preview(op uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  o record;
  done record;
  tables jsonb;
  blocked jsonb;
  u record;
  conflicts jsonb;
  action_ops bigint;
  action_pending bigint;
BEGIN
  PERFORM tombstone.require_bypass('restore');
  SELECT * INTO o FROM tombstone.operations WHERE id = op;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tombstone: no operation %', op
      USING ERRCODE = 'no_data_found',
            HINT = 'tombstone trash lists the operations that can be restored; purged ones are gone.';
  END IF;
  SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM tombstone.restores s WHERE s.op_id = a.id))
    INTO action_ops, action_pending
    FROM tombstone.operations a WHERE a.xact_id = o.xact_id AND a.kind = 'soft_delete';
  SELECT * INTO done FROM tombstone.restores r WHERE r.op_id = op;
  IF FOUND THEN
    RETURN jsonb_build_object('operation', op, 'status', 'already_restored',
      'table', o.table_schema || '.' || o.table_name, 'rows', 0, 'tables', '[]'::jsonb,
      'conflicts', '[]'::jsonb, 'conflict_count', 0, 'unchecked', '[]'::jsonb,
      'restored_at', done.restored_at, 'restored_by', done.actor,
      'action', o.xact_id::text, 'action_operations', action_ops, 'action_pending', action_pending);
  END IF;
  tables := tombstone.restore_counts(op);
  SELECT coalesce(jsonb_agg(tombstone.restore_parent_conflict(to_jsonb(b), o.xact_id)), '[]') INTO blocked
    FROM tombstone.restore_blockers(ARRAY[op]) b;
  SELECT * INTO u FROM tombstone.restore_unique_json(ARRAY[op]);
  conflicts := blocked || u.conflicts;
  RETURN jsonb_build_object('operation', op,
    'status', CASE WHEN jsonb_array_length(conflicts) = 0 THEN 'ready' ELSE 'conflicts' END,
    'table', o.table_schema || '.' || o.table_name,
    'rows', (SELECT coalesce(sum((x ->> 'rows')::bigint), 0) FROM jsonb_array_elements(tables) x
              WHERE x ->> 'action' = 'soft_delete'),
    'tables', tables, 'conflicts', conflicts, 'conflict_count', jsonb_array_length(conflicts),
    'unchecked', u.unchecked,
    'action', o.xact_id::text, 'action_operations', action_ops, 'action_pending', action_pending);
END
$fn$;

-- The preview of tombstone.restore_row(tbl, key).
CREATE OR REPLACE FUNCTION tombstone.restore_row_preview(tbl text, key jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  PERFORM tombstone.require_bypass('restore');
  RETURN tombstone.restore_preview(tombstone.row_operation(tbl, key));
END
$fn$;

-- What tombstone.restore_action(action_id) would do, changing nothing:
-- its pending operations in the order the restore would bring them back
-- (parents first, as its passes would), each with its tables and rows;
-- the application's own SET NULLs it would put back
-- (`foreign_keys_put_back`, tombstone.restore_app_set_null); the
-- operations restored before; `conflicts`: parents deleted outside
-- the action, parents its operations hold for each other in a cycle
-- (`same_action`), and unique keys the whole action's rows would break;
-- `unchecked` unique indexes.
CREATE OR REPLACE FUNCTION tombstone.restore_action_preview(action_id xid8) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  n_ops bigint;
  pending uuid[];
  earlier jsonb;
  op uuid;
  opr record;
  blk jsonb;
  waits jsonb := '{}';
  waiting jsonb := '{}';
  outside jsonb := '{}';
  per_op jsonb := '{}';
  conflicts jsonb := '[]';
  done uuid[] := '{}';
  progress boolean;
  stuck uuid[];
  ordered jsonb := '[]';
  total bigint := 0;
  tables jsonb;
  rows bigint;
  u record;
BEGIN
  PERFORM tombstone.require_bypass('restore');
  SELECT count(*),
         array_agg(o.id ORDER BY o.stmt_at DESC, o.id) FILTER (WHERE s.op_id IS NULL),
         coalesce(jsonb_agg(jsonb_build_object('operation', o.id, 'table', o.table_schema || '.' || o.table_name,
                                               'restored_at', s.restored_at, 'restored_by', s.actor)
                            ORDER BY o.stmt_at, o.id) FILTER (WHERE s.op_id IS NOT NULL), '[]')
    INTO n_ops, pending, earlier
    FROM tombstone.operations o LEFT JOIN tombstone.restores s ON s.op_id = o.id
   WHERE o.xact_id = action_id AND o.kind = 'soft_delete';
  IF n_ops = 0 THEN
    RAISE EXCEPTION 'tombstone: no action %', action_id
      USING ERRCODE = 'no_data_found',
            HINT = 'tombstone trash lists the actions that can be restored (the id of each, and its operations); purged ones are gone.';
  END IF;
  IF pending IS NULL THEN
    RETURN jsonb_build_object('action', action_id::text, 'status', 'already_restored',
      'operations', '[]'::jsonb, 'already_restored', earlier, 'rows', 0,
      'conflicts', '[]'::jsonb, 'conflict_count', 0, 'unchecked', '[]'::jsonb,
      'restored_at', (SELECT max(e ->> 'restored_at') FROM jsonb_array_elements(earlier) e),
      'restored_by', (SELECT string_agg(DISTINCT e ->> 'restored_by', ', ') FROM jsonb_array_elements(earlier) e));
  END IF;

  -- Per pending operation: what it brings back, the parents it waits for
  -- (held by other pending operations of this action) and those deleted
  -- outside it (conflicts).
  FOREACH op IN ARRAY pending LOOP
    SELECT * INTO opr FROM tombstone.operations WHERE id = op;
    tables := tombstone.restore_counts(op);
    SELECT coalesce(sum((x ->> 'rows')::bigint), 0) INTO rows FROM jsonb_array_elements(tables) x
     WHERE x ->> 'action' = 'soft_delete';
    total := total + rows;
    per_op := per_op || jsonb_build_object(op::text, jsonb_build_object('operation', op,
      'table', opr.table_schema || '.' || opr.table_name, 'rows', rows, 'tables', tables));
    SELECT coalesce(jsonb_agg(to_jsonb(b)), '[]') INTO blk FROM tombstone.restore_blockers(ARRAY[op]) b;
    waits := waits || jsonb_build_object(op::text,
      (SELECT coalesce(jsonb_agg(DISTINCT e -> 'blocker'), '[]') FROM jsonb_array_elements(blk) e
        WHERE (e ->> 'blocker')::uuid = ANY (pending)));
    outside := outside || jsonb_build_object(op::text,
      (SELECT coalesce(jsonb_agg(tombstone.restore_parent_conflict(e, action_id)), '[]') FROM jsonb_array_elements(blk) e
        WHERE e ->> 'blocker' IS NULL OR NOT (e ->> 'blocker')::uuid = ANY (pending)));
    conflicts := conflicts || (outside -> op::text);
    -- The rows that wait, kept for the cycle report below.
    waiting := waiting || jsonb_build_object(op::text,
      (SELECT coalesce(jsonb_agg(e), '[]') FROM jsonb_array_elements(blk) e
        WHERE (e ->> 'blocker')::uuid = ANY (pending)));
  END LOOP;

  -- The order restore_action's passes take: newest statement first, each
  -- operation once every parent it waits for is back.
  LOOP
    progress := false;
    FOREACH op IN ARRAY pending LOOP
      CONTINUE WHEN op = ANY (done) OR jsonb_array_length(outside -> op::text) > 0;
      IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(waits -> op::text) w
                      WHERE NOT w::uuid = ANY (done)) THEN
        done := done || op;
        ordered := ordered || (per_op -> op::text);
        progress := true;
      END IF;
    END LOOP;
    EXIT WHEN NOT progress;
  END LOOP;
  stuck := ARRAY(SELECT p FROM unnest(pending) WITH ORDINALITY AS x(p, ord) WHERE NOT p = ANY (done) ORDER BY ord);
  IF jsonb_array_length(conflicts) = 0 THEN
    -- Nothing outside blocks: what is left waits for each other.
    FOREACH op IN ARRAY stuck LOOP
      conflicts := conflicts
        || (SELECT coalesce(jsonb_agg(tombstone.restore_parent_conflict(e, action_id)), '[]')
              FROM jsonb_array_elements(waiting -> op::text) e);
    END LOOP;
  END IF;
  FOREACH op IN ARRAY stuck LOOP
    ordered := ordered || (per_op -> op::text);
  END LOOP;

  SELECT * INTO u FROM tombstone.restore_unique_json(pending);
  conflicts := conflicts || u.conflicts;
  RETURN jsonb_build_object('action', action_id::text,
    'status', CASE WHEN jsonb_array_length(conflicts) = 0 THEN 'ready' ELSE 'conflicts' END,
    'operations', ordered, 'already_restored', earlier, 'rows', total,
    'foreign_keys_put_back', tombstone.restore_app_set_null(action_id, NULL, true),
    'conflicts', conflicts, 'conflict_count', jsonb_array_length(conflicts), 'unchecked', u.unchecked);
END
$fn$;
"#;
