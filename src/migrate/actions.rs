//! DDL of actions (SPEC B6): everything one transaction soft-deleted.
//!
//! ORMs cascade in the application (Django's collector, Rails'
//! `dependent: :destroy`, SQLAlchemy's ORM cascades, Hibernate's
//! `CascadeType.REMOVE`): one `author.delete()` is several DELETE
//! statements in one transaction, so several operations. An *action* is
//! every soft-delete operation of one transaction; its id is that
//! transaction's id (`tombstone.operations.xact_id`, an `xid8`, shown as
//! its decimal text), the same id `tombstone.audit.xact_id` carries, so
//! one number finds the action's operations and its audit rows. xid8 never
//! wraps, so the id stays unique in the database for good.
//!
//! `tombstone.restore_action(action, actor)` restores every operation of
//! the action not restored yet, in the caller's transaction, each by
//! `tombstone.restore_operation` (what `tombstone.restore` runs: audited,
//! and recorded in `tombstone.restores`, as a single restore is), parents
//! before children whatever order the application deleted them in, after
//! checking the unique keys of the whole action's rows at once
//! (`src/migrate/preview.rs`); `tombstone.trash_actions(since, tbl)`
//! lists the trash by action. Both are `SECURITY DEFINER`, with a fixed
//! `search_path`, and refuse (42501) what `tombstone.require_bypass`
//! refuses.

/// `tombstone.restore_action` and `tombstone.trash_actions`.
pub const ACTIONS_DDL: &str = r#"
-- The application's own SET NULLs of action `action_id` undone (issue 12
-- item 2): ORMs null a child's key themselves before deleting its parent
-- (Django's SET_NULL, Rails' dependent: :nullify), as an UPDATE of that
-- transaction. Its audit rows (same transaction, same `at`: the
-- transaction's time) say which rows and what the key was; a row whose key
-- columns went from a parent the action soft-deleted to NULL, and are
-- still NULL, gets them back. Run by restore_action after the operations
-- (the parents are live again). The UPDATEs are audited by the tables'
-- own triggers, as updates by `who`. Returns the rows per table. With
-- `dry`, changes nothing and returns the rows it would put back (what
-- tombstone.restore_action_preview lists).
CREATE OR REPLACE FUNCTION tombstone.restore_app_set_null(action_id xid8, who text, dry boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  at_ts timestamptz;
  e record;
  prev text := current_setting('tombstone.actor', true);
  was_null text;
  still_null text;
  parent_on text;
  sets text;
  q text;
  n bigint;
  tables jsonb := '[]';
BEGIN
  SELECT min(o.created_at) INTO at_ts FROM tombstone.operations o
   WHERE o.xact_id = action_id AND o.kind = 'soft_delete';
  IF at_ts IS NULL THEN
    RETURN tables;
  END IF;
  IF NOT dry THEN
    PERFORM pg_catalog.set_config('tombstone.actor', who, true);
  END IF;
  FOR e IN SELECT DISTINCT ed.child, ed.child_schema, ed.child_table, ed.parent, ed.parent_schema,
                  ed.parent_table, ed.child_columns, ed.parent_columns
             FROM tombstone.edges ed
            WHERE EXISTS (SELECT 1 FROM tombstone.operation_rows r JOIN tombstone.operations o ON o.id = r.op_id
                           WHERE o.xact_id = action_id AND r.action = 'soft_delete'
                             AND r.table_schema = ed.parent_schema AND r.table_name = ed.parent_table)
            ORDER BY ed.child_schema, ed.child_table LOOP
    SELECT string_agg(format('a.new_values -> %L = ''null''::jsonb AND a.old_values -> %L <> ''null''::jsonb', c, c), ' AND '),
           string_agg(format('y.%I IS NULL', c), ' AND '),
           string_agg(format('%I = (s.old).%I', c, c), ', ')
      INTO was_null, still_null, sets
      FROM unnest(e.child_columns) c;
    SELECT string_agg(format('p.%I = (a.old).%I', k.pcol, k.ccol), ' AND ')
      INTO parent_on
      FROM unnest(e.parent_columns, e.child_columns) AS k(pcol, ccol);
    q := format(
      'WITH a AS (SELECT DISTINCT ON (a.pk) a.pk, jsonb_populate_record(NULL::%1$s, a.old_values) AS old
                    FROM tombstone.audit a
                   WHERE a.at = $2 AND a.xact_id = $1 AND a.action = ''update''
                     AND a.table_schema = %2$L AND a.table_name = %3$L AND %4$s
                   ORDER BY a.pk, a.id),
            s AS (SELECT y.ctid AS row_id, a.old
                    FROM a JOIN %1$s y ON %5$s JOIN %6$s p ON %7$s
                   WHERE %8$s
                     AND EXISTS (SELECT 1 FROM tombstone.operation_rows r JOIN tombstone.operations o ON o.id = r.op_id
                                  WHERE o.xact_id = $1 AND r.action = ''soft_delete''
                                    AND r.table_schema = %9$L AND r.table_name = %10$L AND r.pk = %11$s))
       %12$s',
      e.child, e.child_schema, e.child_table, was_null, tombstone.key_match(e.child, 'y', 'a.pk'),
      e.parent, parent_on, still_null, e.parent_schema, e.parent_table, tombstone.key_of(e.parent, 'p'),
      CASE WHEN dry THEN 'SELECT count(DISTINCT s.row_id) FROM s'
           ELSE format('UPDATE %s x SET %s FROM s WHERE x.ctid = s.row_id', e.child, sets) END);
    IF dry THEN
      EXECUTE q INTO n USING action_id, at_ts;
    ELSE
      EXECUTE q USING action_id, at_ts;
      GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    IF n > 0 THEN
      tables := tables || jsonb_build_object('table', e.child_schema || '.' || e.child_table,
                                             'action', 'set_null', 'rows', n);
    END IF;
  END LOOP;
  IF NOT dry THEN
    PERFORM pg_catalog.set_config('tombstone.actor', coalesce(prev, ''), true);
  END IF;
  RETURN tables;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.restore_app_set_null(xid8, text, boolean) FROM PUBLIC;

-- Restores action `action_id`: every soft-delete operation that
-- transaction made and nobody restored yet. Parents before children: each
-- pass restores, newest statement first (applications delete children
-- before parents), every pending operation whose rows' parents are live
-- or came back in an earlier pass; an operation still waiting for a
-- parent that another operation of the action holds is retried in the
-- next pass. A pass that restores nothing ends it with 55000, naming the
-- row and the parent that block, and nothing stays restored (the
-- caller's transaction gets the error). Before the first pass, a row of
-- the action that would take a unique key another row holds (a live one,
-- or another row of the action) ends it with 23505, listing every such
-- conflict. An action whose operations are all restored already is a
-- no-op ("already_restored").
CREATE OR REPLACE FUNCTION tombstone.restore_action(action_id xid8, actor text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  who text := coalesce(nullif(actor, ''), tombstone.current_actor());
  n_ops bigint;
  pending uuid[];
  waiting uuid[];
  earlier jsonb;
  op uuid;
  res jsonb;
  b record;
  bx xid8;
  restored jsonb := '[]';
  total bigint := 0;
  err_message text;
  err_detail text;
  err_hint text;
  app_set_null jsonb;
BEGIN
  PERFORM tombstone.require_bypass('restore');
  -- Every operation of the action, locked in one order: a concurrent
  -- restore of this action, or of one of its operations, waits here.
  PERFORM 1 FROM tombstone.operations o
    WHERE o.xact_id = action_id AND o.kind = 'soft_delete' ORDER BY o.id FOR UPDATE;
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
      'restored_at', (SELECT max(e ->> 'restored_at') FROM jsonb_array_elements(earlier) e),
      'restored_by', (SELECT string_agg(DISTINCT e ->> 'restored_by', ', ') FROM jsonb_array_elements(earlier) e));
  END IF;

  -- No row of the whole action may take a unique key another row holds
  -- (rows of two of its operations included): checked once, before
  -- anything changes, so each operation's restore below skips it.
  PERFORM tombstone.restore_check_unique(pending, format('action %s', action_id),
    format('tombstone restore --action %s --dry-run (SQL: SELECT tombstone.restore_action_preview(''%s''))',
           action_id, action_id));

  LOOP
    waiting := '{}';
    FOREACH op IN ARRAY pending LOOP
      BEGIN
        res := tombstone.restore_operation(op, who, false);
        restored := restored || jsonb_build_array(res - 'action' - 'action_operations' - 'action_pending');
        total := total + coalesce((res ->> 'rows')::bigint, 0);
      EXCEPTION WHEN object_not_in_prerequisite_state THEN
        -- A parent still deleted (by an operation restored in a later
        -- pass, or not at all); the sub-block's changes are undone.
        GET STACKED DIAGNOSTICS err_message = MESSAGE_TEXT, err_detail = PG_EXCEPTION_DETAIL,
                                err_hint = PG_EXCEPTION_HINT;
        waiting := waiting || op;
      END;
    END LOOP;
    EXIT WHEN cardinality(waiting) = 0;
    IF cardinality(waiting) = cardinality(pending) THEN
      -- No progress: say what blocks the first waiting operation.
      SELECT * INTO b FROM tombstone.restore_blocker(waiting[1]);
      IF NOT FOUND THEN
        RAISE EXCEPTION 'tombstone: cannot restore action %: %', action_id, regexp_replace(err_message, '^tombstone: ', '')
          USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = coalesce(err_detail, ''), HINT = coalesce(err_hint, '');
      END IF;
      SELECT po.xact_id INTO bx FROM tombstone.operations po WHERE po.id = b.blocker;
      IF b.blocker IS NULL THEN
        RAISE EXCEPTION 'tombstone: cannot restore action %: operation % restores % %, which references % %, still deleted (not by a recorded operation)',
            action_id, waiting[1], b.child_table, b.child_key, b.parent_table, b.parent_key
          USING ERRCODE = 'object_not_in_prerequisite_state',
                DETAIL = 'Nothing was restored: an action comes back whole or not at all.',
                HINT = 'Restore the parent row first.';
      ELSIF bx = action_id THEN
        RAISE EXCEPTION 'tombstone: cannot restore action %: its operations wait for each other (operation % restores % %, which references % %, deleted by operation % of this action)',
            action_id, waiting[1], b.child_table, b.child_key, b.parent_table, b.parent_key, b.blocker
          USING ERRCODE = 'object_not_in_prerequisite_state',
                DETAIL = format('Nothing was restored: an action comes back whole or not at all. Operations waiting: %s.',
                                array_to_string(waiting, ', ')),
                HINT = 'Rows of different statements of this transaction reference each other (a table that references itself); bring the parent rows back by hand in a bypass session, then restore the action.';
      ELSE
        RAISE EXCEPTION 'tombstone: cannot restore action %: operation % restores % %, which references % %, still deleted by operation %',
            action_id, waiting[1], b.child_table, b.child_key, b.parent_table, b.parent_key, b.blocker
          USING ERRCODE = 'object_not_in_prerequisite_state',
                DETAIL = 'Nothing was restored: an action comes back whole or not at all.',
                HINT = CASE WHEN tombstone.action_size(bx) > 1
                            THEN format('Restore action %s first (tombstone restore --action %s), then this one.', bx, bx)
                            ELSE format('Restore operation %s first (tombstone restore %s), then this action.', b.blocker, b.blocker) END;
      END IF;
    END IF;
    pending := waiting;
  END LOOP;

  app_set_null := tombstone.restore_app_set_null(action_id, who);
  RETURN jsonb_build_object('action', action_id::text, 'status', 'restored',
    'operations', restored, 'already_restored', earlier, 'rows', total,
    'foreign_keys_put_back', app_set_null, 'restored_by', who);
END
$fn$;

-- The trash by action, newest first: the id (what restore_action takes),
-- when, who (the operations' actors, distinct, comma-separated), the
-- login role, and its operations in the trash in statement order, each
-- with its table, target keys (at most 10), target rows and rows per table
-- (what tombstone.trash says of it). With `tbl`, the actions that have an
-- operation on that table, with all their operations.
CREATE OR REPLACE FUNCTION tombstone.trash_actions(since timestamptz DEFAULT NULL, tbl text DEFAULT NULL)
RETURNS TABLE (action text, deleted_at timestamptz, actor text, login_role text, operations jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  target text;
BEGIN
  PERFORM tombstone.require_bypass('trash');
  IF tbl IS NOT NULL THEN
    SELECT ns.nspname || '.' || c.relname INTO target
      FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
     WHERE c.oid = tombstone.resolve_table(tbl);
  END IF;
  RETURN QUERY
  SELECT x.action, max(x.deleted_at), string_agg(DISTINCT x.actor, ', '), min(x.login_role),
         jsonb_agg(jsonb_build_object('operation', x.op_id, 'table', x.table_name, 'keys', x.keys,
                                      'target_rows', x.target_rows, 'actor', x.actor,
                                      'rows', coalesce(x.cascaded, '{}'::jsonb))
                   ORDER BY x.ord)
    FROM tombstone.trash(since, NULL) WITH ORDINALITY AS x(op_id, table_name, keys, target_rows, deleted_at,
                                                          actor, login_role, cascaded, action, action_operations, ord)
   GROUP BY x.action
  HAVING target IS NULL OR bool_or(x.table_name = target)
   ORDER BY min(x.ord);
END
$fn$;
"#;
