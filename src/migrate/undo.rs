//! DDL of undo (SPEC A5, issue 12 item 6): revert one transaction's
//! INSERTs, UPDATEs and soft deletes from the audit trail.
//!
//! `tombstone.undo(xact, force, dry_run, actor)` reads the transaction's
//! audit rows (found by a BRIN index on the transaction id, nearly free
//! for writers since ids grow with time) and, per row it changed, the
//! first and the last of them: the row before the transaction is the first
//! one's old values (several updates of one row in one transaction —
//! pgMemento's #110 and #81 — revert to the state before the first), or
//! nothing when the first was an insert.
//!
//! It refuses (55000, every conflict listed) when a row the transaction
//! changed was changed again afterwards (a later audit row of that row), or
//! when a row it inserted is now referenced by a live row it did not
//! insert; `force` reverts anyway (later changes of those rows are lost,
//! the audit keeps them). A transaction that restored, purged or erased
//! rows is refused: undo reverts inserts, updates and soft deletes only.
//!
//! Reverting, in one step in the caller's transaction: the soft deletes by
//! `tombstone.restore_action` (parents before children, the SET NULLs put
//! back); each updated row's columns back to their old values; each
//! inserted row soft-deleted (children before parents: it goes to the
//! trash, an operation of its own, not lost). The changes are audited by
//! the tables' triggers, with the given actor. `dry_run` returns the plan
//! and the conflicts and changes nothing.

/// `tombstone.undo` and the index it reads the audit by.
pub const UNDO_DDL: &str = r#"
CREATE INDEX IF NOT EXISTS audit_xact ON tombstone.audit USING brin (((xact_id::text)::bigint));

CREATE OR REPLACE FUNCTION tombstone.undo(xact xid8, force boolean DEFAULT false, dry_run boolean DEFAULT false,
                                          actor text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  who text := coalesce(nullif(actor, ''), tombstone.current_actor());
  k bigint := xact::text::bigint;
  prev text := current_setting('tombstone.actor', true);
  t record;
  e record;
  rel regclass;
  sd text;
  cols text;
  later record;
  conflicts jsonb := '[]';
  n_conflicts bigint := 0;
  updates jsonb := '[]';
  inserts jsonb := '[]';
  deletes jsonb;
  has_deletes boolean;
  remaining text[];
  ready text[];
  n bigint;
  msg text;
BEGIN
  PERFORM tombstone.require_bypass('undo');
  IF NOT EXISTS (SELECT 1 FROM tombstone.audit a WHERE (a.xact_id::text)::bigint = k) THEN
    RAISE EXCEPTION 'tombstone: transaction % changed nothing the audit trail recorded%', xact,
        CASE pg_catalog.pg_xact_status(xact) WHEN 'in progress' THEN ' (it is still in progress)'
                                             WHEN 'aborted' THEN ' (it rolled back)' ELSE '' END
      USING ERRCODE = 'no_data_found',
            HINT = 'tombstone.audit.xact_id names the transactions; tables whose updates or inserts are not audited cannot be undone.';
  END IF;
  IF pg_catalog.pg_xact_status(xact) IS DISTINCT FROM 'committed' THEN
    RAISE EXCEPTION 'tombstone: cannot undo transaction %: it is %', xact,
        coalesce(pg_catalog.pg_xact_status(xact), 'too old to know')
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Only a committed transaction can be undone.';
  END IF;
  SELECT string_agg(DISTINCT a.action, ', ') INTO msg FROM tombstone.audit a
   WHERE (a.xact_id::text)::bigint = k AND a.action IN ('restore', 'purge', 'erase');
  IF msg IS NOT NULL THEN
    RAISE EXCEPTION 'tombstone: cannot undo transaction %: it did % (undo reverts inserts, updates and soft deletes)', xact, msg
      USING ERRCODE = 'feature_not_supported';
  END IF;

  -- Conflicts: rows changed again afterwards, rows it inserted that live
  -- rows of other transactions now reference.
  FOR t IN SELECT a.table_schema, a.table_name, a.pk, max(a.id) AS last_id, min(a.at) AS at
             FROM tombstone.audit a WHERE (a.xact_id::text)::bigint = k
            GROUP BY 1, 2, 3 LOOP
    SELECT a2.xact_id, a2.action, a2.at, a2.actor INTO later FROM tombstone.audit a2
     WHERE a2.table_schema = t.table_schema AND a2.table_name = t.table_name AND a2.pk = t.pk
       AND a2.at >= t.at AND a2.id > t.last_id AND a2.xact_id <> xact
     ORDER BY a2.id LIMIT 1;
    IF FOUND THEN
      n_conflicts := n_conflicts + 1;
      IF n_conflicts <= 20 THEN
        conflicts := conflicts || jsonb_build_object('table', t.table_schema || '.' || t.table_name, 'key', t.pk,
          'conflict', 'changed_later', 'by_transaction', later.xact_id::text, 'action', later.action,
          'at', later.at, 'actor', later.actor);
      END IF;
    END IF;
  END LOOP;
  FOR t IN SELECT DISTINCT a.table_schema, a.table_name FROM tombstone.audit a
            WHERE (a.xact_id::text)::bigint = k AND a.action = 'insert' LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    FOR e IN SELECT ed.child, ed.child_schema, ed.child_table,
                    (SELECT string_agg(format('p.%I = c.%I', x.pcol, x.ccol), ' AND ')
                       FROM unnest(ed.parent_columns, ed.child_columns) AS x(pcol, ccol)) AS on_clause
               FROM tombstone.edges ed WHERE ed.parent = rel LOOP
      sd := tombstone.soft_delete_column(e.child);
      EXECUTE format(
        'SELECT count(*) FROM (SELECT DISTINCT ON (i.pk) i.pk FROM tombstone.audit i
                                WHERE (i.xact_id::text)::bigint = $1 AND i.action = ''insert''
                                  AND i.table_schema = %1$L AND i.table_name = %2$L ORDER BY i.pk, i.id) r
           JOIN %3$s p ON %4$s JOIN %5$s c ON %6$s
          WHERE %7$s AND NOT EXISTS (SELECT 1 FROM tombstone.audit ci
                                      WHERE (ci.xact_id::text)::bigint = $1 AND ci.action = ''insert''
                                        AND ci.table_schema = %8$L AND ci.table_name = %9$L AND ci.pk = %10$s)',
        t.table_schema, t.table_name, rel, tombstone.key_match(rel, 'p', 'r.pk'), e.child, e.on_clause,
        CASE WHEN sd IS NULL THEN 'true' ELSE format('c.%I IS NULL', sd) END,
        e.child_schema, e.child_table, tombstone.key_of(e.child, 'c'))
      INTO n USING k;
      IF n > 0 THEN
        n_conflicts := n_conflicts + 1;
        IF n_conflicts <= 20 THEN
          conflicts := conflicts || jsonb_build_object('table', t.table_schema || '.' || t.table_name,
            'conflict', 'referenced', 'by_table', e.child_schema || '.' || e.child_table, 'rows', n);
        END IF;
      END IF;
    END LOOP;
  END LOOP;

  -- The plan: per table, rows updated and rows inserted (by the first
  -- change of each row in the transaction), and the soft deletes.
  SELECT coalesce(jsonb_agg(jsonb_build_object('table', f.tbl, 'rows', f.n) ORDER BY f.tbl)
                    FILTER (WHERE f.first_action = 'update'), '[]'),
         coalesce(jsonb_agg(jsonb_build_object('table', f.tbl, 'rows', f.n) ORDER BY f.tbl)
                    FILTER (WHERE f.first_action = 'insert'), '[]')
    INTO updates, inserts
    FROM (SELECT x.table_schema || '.' || x.table_name AS tbl, x.first_action, count(*) AS n
            FROM (SELECT DISTINCT ON (a.table_schema, a.table_name, a.pk) a.table_schema, a.table_name, a.action AS first_action
                    FROM tombstone.audit a WHERE (a.xact_id::text)::bigint = k
                   ORDER BY a.table_schema, a.table_name, a.pk, a.id) x
           GROUP BY 1, 2) f;
  has_deletes := EXISTS (SELECT 1 FROM tombstone.operations o WHERE o.xact_id = xact AND o.kind = 'soft_delete');

  IF dry_run THEN
    RETURN jsonb_build_object('transaction', xact::text, 'status', 'preview', 'updates', updates,
      'inserts', inserts, 'soft_deletes', has_deletes, 'conflicts', conflicts, 'conflict_count', n_conflicts);
  END IF;
  IF n_conflicts > 0 AND NOT force THEN
    SELECT string_agg(CASE c ->> 'conflict'
                        WHEN 'changed_later' THEN format('  %s %s changed again by transaction %s (%s, %s, by %s)',
                             c ->> 'table', c -> 'key', c ->> 'by_transaction', c ->> 'action', c ->> 'at', c ->> 'actor')
                        ELSE format('  %s: %s rows it inserted are referenced by live rows of %s',
                             c ->> 'table', c ->> 'rows', c ->> 'by_table') END, E'\n')
      INTO msg FROM jsonb_array_elements(conflicts) c;
    RAISE EXCEPTION E'tombstone: cannot undo transaction %: % conflict%:\n%', xact, n_conflicts,
        CASE WHEN n_conflicts = 1 THEN '' ELSE 's' END,
        msg || CASE WHEN n_conflicts > 20 THEN format(E'\n… and %s more', n_conflicts - 20) ELSE '' END
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'Nothing was changed.',
            HINT = 'Nothing was changed. --force (force => true) reverts those rows anyway; the audit keeps what they were.';
  END IF;

  PERFORM pg_catalog.set_config('tombstone.actor', who, true);
  -- 1. The soft deletes, parents first, with the SET NULLs.
  IF has_deletes THEN
    deletes := tombstone.restore_action(xact, who);
  END IF;

  -- 2. Updated rows back to what they were before the transaction.
  FOR t IN SELECT DISTINCT a.table_schema, a.table_name FROM tombstone.audit a
            WHERE (a.xact_id::text)::bigint = k AND a.action = 'update' ORDER BY 1, 2 LOOP
    rel := to_regclass(format('%I.%I', t.table_schema, t.table_name));
    CONTINUE WHEN rel IS NULL;
    SELECT string_agg(format('%I = (s.old).%I', at.attname, at.attname), ', ' ORDER BY at.attnum) INTO cols
      FROM pg_attribute at
     WHERE at.attrelid = rel AND at.attnum > 0 AND NOT at.attisdropped
       AND at.attgenerated = '' AND at.attidentity <> 'a';
    EXECUTE format(
      'WITH f AS (SELECT DISTINCT ON (a.pk) a.pk, a.action, a.old_values FROM tombstone.audit a
                   WHERE (a.xact_id::text)::bigint = $1 AND a.table_schema = %1$L AND a.table_name = %2$L
                   ORDER BY a.pk, a.id),
            s AS (SELECT y.ctid AS row_id, jsonb_populate_record(y, f.old_values) AS old
                    FROM f JOIN %3$s y ON %4$s WHERE f.action = ''update'')
       UPDATE %3$s x SET %5$s FROM s WHERE x.ctid = s.row_id',
      t.table_schema, t.table_name, rel, tombstone.key_match(rel, 'y', 'f.pk'), cols)
    USING k;
  END LOOP;

  -- 3. Inserted rows to the trash, children before parents.
  SELECT array_agg(DISTINCT format('%I.%I', a.table_schema, a.table_name)) INTO remaining
    FROM tombstone.audit a WHERE (a.xact_id::text)::bigint = k AND a.action = 'insert';
  WHILE cardinality(coalesce(remaining, '{}')) > 0 LOOP
    SELECT array_agg(r) INTO ready FROM unnest(remaining) r
     WHERE NOT EXISTS (SELECT 1 FROM tombstone.edges ed
                        WHERE ed.parent = to_regclass(r) AND ed.child <> ed.parent
                          AND ed.child::text = ANY (SELECT to_regclass(q)::text FROM unnest(remaining) q));
    IF ready IS NULL THEN
      ready := remaining;  -- a cycle: all at once
    END IF;
    FOREACH msg IN ARRAY ready LOOP
      rel := to_regclass(msg);
      CONTINUE WHEN rel IS NULL;
      sd := tombstone.soft_delete_column(rel);
      CONTINUE WHEN sd IS NULL;
      EXECUTE format(
        'UPDATE %1$s y SET %2$I = pg_catalog.now()
           FROM (SELECT DISTINCT ON (a.pk) a.pk, a.action FROM tombstone.audit a
                  WHERE (a.xact_id::text)::bigint = $1 AND a.table_schema = %3$L AND a.table_name = %4$L
                  ORDER BY a.pk, a.id) f
          WHERE f.action = ''insert'' AND %5$s AND y.%2$I IS NULL',
        rel, sd, (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel),
        (SELECT c.relname FROM pg_class c WHERE c.oid = rel), tombstone.key_match(rel, 'y', 'f.pk'))
      USING k;
    END LOOP;
    SELECT array_agg(r) INTO remaining FROM unnest(remaining) r WHERE NOT (r = ANY (ready));
  END LOOP;
  PERFORM pg_catalog.set_config('tombstone.actor', coalesce(prev, ''), true);

  RETURN jsonb_build_object('transaction', xact::text, 'status', 'undone', 'updates', updates,
    'inserts', inserts, 'soft_deletes', coalesce(deletes, 'null'::jsonb), 'conflicts', conflicts,
    'conflict_count', n_conflicts, 'forced', force AND n_conflicts > 0, 'undone_by', who);
END
$fn$;
"#;
