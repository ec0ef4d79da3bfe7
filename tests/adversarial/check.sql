-- The adversarial suite's referee, installed by the superuser in each
-- template database after the baseline soft deletes: a copy of every
-- protected row and of tombstone's own tables as they were, and
-- `zz_check.verify(app, t0)`, which lists every way the database now
-- differs from what the promise allows. Owned by the superuser; normal
-- roles have no privilege on any of it. Fixed search_path and schema-
-- qualified built-ins, so an attacker's shadowing objects do not fool it.

CREATE SCHEMA zz_check;
REVOKE ALL ON SCHEMA zz_check FROM PUBLIC;

-- Protected tables of the scenario and the jsonb key of their row `x`.
CREATE TABLE zz_check.tables (
  tbl     regclass PRIMARY KEY,
  nsp     text NOT NULL,
  rel     text NOT NULL,
  keyexpr text NOT NULL
);

CREATE TABLE zz_check.rows (
  tbl     regclass NOT NULL,
  pk      jsonb    NOT NULL,
  img     jsonb    NOT NULL,
  deleted boolean  NOT NULL,
  PRIMARY KEY (tbl, pk)
);

-- tombstone's tables as jsonb rows, before the case.
CREATE TABLE zz_check.tombstone_rows (
  tbl text  NOT NULL,
  j   jsonb NOT NULL
);

CREATE TABLE zz_check.meta (max_audit bigint NOT NULL);

CREATE FUNCTION zz_check.tombstone_tables() RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT t FROM unnest(ARRAY['tombstone.audit', 'tombstone.operations', 'tombstone.operation_rows',
                              'tombstone.bypass_roles', 'tombstone.hard_delete_grants',
                              'tombstone.restores']) t
   WHERE pg_catalog.to_regclass(t) IS NOT NULL
$fn$;

CREATE FUNCTION zz_check.snapshot() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $fn$
DECLARE
  t record;
  tt text;
BEGIN
  INSERT INTO zz_check.tables
  SELECT c.oid::regclass, n.nspname, c.relname,
         'pg_catalog.jsonb_build_object(' ||
           pg_catalog.string_agg(pg_catalog.format('%L, x.%I', a.attname, a.attname), ', ' ORDER BY a.attnum) || ')'
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
   WHERE n.nspname IN ('public', 'billing') AND c.relkind IN ('r', 'p')
     AND EXISTS (SELECT 1 FROM pg_attribute d
                  WHERE d.attrelid = c.oid AND d.attname = 'deleted_at' AND NOT d.attisdropped)
   GROUP BY c.oid, n.nspname, c.relname;
  FOR t IN SELECT * FROM zz_check.tables LOOP
    EXECUTE pg_catalog.format(
      'INSERT INTO zz_check.rows SELECT %L::regclass, %s, pg_catalog.to_jsonb(x), x.deleted_at IS NOT NULL FROM %s x',
      t.tbl, t.keyexpr, t.tbl);
  END LOOP;
  FOR tt IN SELECT * FROM zz_check.tombstone_tables() LOOP
    EXECUTE pg_catalog.format(
      'INSERT INTO zz_check.tombstone_rows SELECT %L, pg_catalog.to_jsonb(x) FROM %s x', tt, tt);
  END LOOP;
  INSERT INTO zz_check.meta SELECT coalesce(max(id), 0) FROM tombstone.audit;
END
$fn$;

-- Everything wrong since the snapshot, as one line each. `app` is the
-- attacking role, `t0` the server time when the case began.
CREATE FUNCTION zz_check.verify(app text, t0 timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $fn$
DECLARE
  t record;
  tt text;
  a0 bigint := (SELECT max_audit FROM zz_check.meta);
  msg text;
  problems text[];
BEGIN
  FOR t IN SELECT * FROM zz_check.tables ORDER BY nsp, rel LOOP
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', t.nsp, t.rel)) IS DISTINCT FROM t.tbl THEN
      RETURN NEXT t.nsp || '.' || t.rel || ': table dropped or replaced, with all its rows';
      CONTINUE;
    END IF;
    BEGIN
      EXECUTE pg_catalog.format($q$
        WITH cur AS MATERIALIZED (
               SELECT %2$s AS pk, pg_catalog.to_jsonb(x) AS img, x.deleted_at AS del FROM %1$s x),
             base AS MATERIALIZED (
               SELECT b.pk, b.img, b.deleted FROM zz_check.rows b WHERE b.tbl = %3$L::regclass),
             aud AS MATERIALIZED (
               SELECT a.* FROM tombstone.audit a
                WHERE a.id > %4$s AND a.table_schema = %5$L AND a.table_name = %6$L),
             changed AS (
               SELECT c.*, b.pk IS NULL AS is_new, coalesce(b.deleted, false) AS was_deleted
                 FROM cur c LEFT JOIN base b ON b.pk = c.pk
                WHERE b.pk IS NULL OR NOT (c.img @> b.img))
        SELECT pg_catalog.array_remove(ARRAY[
          (SELECT pg_catalog.format('%%s row(s) physically removed, e.g. %%s', count(*), min(b.pk::text))
             FROM base b WHERE NOT EXISTS (SELECT 1 FROM cur c WHERE c.pk = b.pk) HAVING count(*) > 0),
          (SELECT pg_catalog.format('%%s soft-deleted row(s) revived or changed, e.g. %%s now %%s',
                                    count(*), min(c.pk::text), min(c.img::text))
             FROM changed c WHERE c.was_deleted HAVING count(*) > 0),
          (SELECT pg_catalog.format('%%s row(s) changed without an audit row, e.g. %%s', count(*), min(c.pk::text))
             FROM changed c WHERE NOT EXISTS (SELECT 1 FROM aud a WHERE a.pk = c.pk) HAVING count(*) > 0),
          (SELECT pg_catalog.format('%%s row(s) newly soft-deleted with deleted_at outside the case (%%s .. now), e.g. %%s',
                                    count(*), %7$L, min(c.pk::text || ' at ' || c.del::text))
             FROM changed c
            WHERE c.del IS NOT NULL AND NOT c.was_deleted
              AND NOT (c.del >= %7$L::timestamptz AND c.del <= pg_catalog.now())
           HAVING count(*) > 0),
          (SELECT pg_catalog.format('%%s row(s) newly soft-deleted without an operation or soft_delete audit row, e.g. %%s',
                                    count(*), min(c.pk::text))
             FROM changed c
            WHERE c.del IS NOT NULL AND NOT c.was_deleted
              AND (NOT EXISTS (SELECT 1 FROM tombstone.operation_rows r
                                WHERE r.table_schema = %5$L AND r.table_name = %6$L AND r.pk = c.pk
                                  AND r.action = 'soft_delete')
                   OR NOT EXISTS (SELECT 1 FROM aud a WHERE a.pk = c.pk AND a.action = 'soft_delete'))
           HAVING count(*) > 0),
          (SELECT pg_catalog.format('%%s audit row(s) for rows that do not exist, e.g. %%s %%s',
                                    count(*), min(a.action), min(a.pk::text))
             FROM aud a WHERE NOT EXISTS (SELECT 1 FROM cur c WHERE c.pk = a.pk) HAVING count(*) > 0),
          (SELECT pg_catalog.format('%%s soft_delete audit row(s) for rows that are live, e.g. %%s', count(*), min(a.pk::text))
             FROM aud a JOIN cur c ON c.pk = a.pk
            WHERE a.action = 'soft_delete' AND c.del IS NULL HAVING count(*) > 0),
          (SELECT pg_catalog.format('%%s audit row(s) whose old/new values are not whole rows, e.g. %%s %%s old %%s new %%s',
                                    count(*), min(a.action), min(a.pk::text), min(a.old_values::text), min(a.new_values::text))
             FROM aud a
            WHERE (a.action <> 'insert' AND (a.old_values IS NULL OR NOT (a.old_values ?& ARRAY(SELECT pg_catalog.jsonb_object_keys(c0.img)))))
               OR a.new_values IS NULL OR NOT (a.new_values ?& ARRAY(SELECT pg_catalog.jsonb_object_keys(c0.img)))
               OR NOT (a.new_values @> a.pk)
           HAVING count(*) > 0),
          (SELECT pg_catalog.format('%%s row(s) whose latest audit image differs from the row, e.g. %%s audit %%s row %%s',
                                    count(*), min(l.pk::text), min(l.new_values::text), min(c.img::text))
             FROM (SELECT DISTINCT ON (a.pk) a.pk, a.new_values FROM aud a
                    WHERE a.new_values IS NOT NULL ORDER BY a.pk, a.id DESC) l
             JOIN cur c ON c.pk = l.pk
            WHERE pg_catalog.to_jsonb(pg_catalog.jsonb_populate_record(NULL::%1$s, l.new_values)) IS DISTINCT FROM c.img
           HAVING count(*) > 0)
        ], NULL)
        FROM (SELECT (SELECT img FROM cur LIMIT 1) AS img) c0
      $q$, t.tbl, t.keyexpr, t.tbl, a0, t.nsp, t.rel, t0) INTO problems;
      FOREACH msg IN ARRAY coalesce(problems, '{}') LOOP
        RETURN NEXT t.nsp || '.' || t.rel || ': ' || msg;
      END LOOP;
    EXCEPTION WHEN others THEN
      RETURN NEXT t.nsp || '.' || t.rel || ': cannot be checked (' || SQLERRM || ')';
    END;
  END LOOP;

  -- Audit rows of the case: written by the attacker's login, with its true
  -- address, about protected tables, and no action a normal role may take.
  RETURN QUERY
    SELECT pg_catalog.format('audit row %s (%s %s.%s %s): login_role %s, not %s', a.id, a.action,
                             a.table_schema, a.table_name, a.pk, a.login_role, app)
      FROM tombstone.audit a WHERE a.id > a0 AND a.login_role IS DISTINCT FROM app;
  RETURN QUERY
    SELECT pg_catalog.format('audit row %s (%s %s.%s %s): client_addr %s is not the client''s', a.id, a.action,
                             a.table_schema, a.table_name, a.pk, a.client_addr)
      FROM tombstone.audit a
     WHERE a.id > a0 AND a.client_addr IS NOT NULL
       AND a.client_addr::text NOT IN ('127.0.0.1', '127.0.0.1/32', '::1', '::1/128');
  RETURN QUERY
    SELECT pg_catalog.format('audit row %s: action %s by a normal role', a.id, a.action)
      FROM tombstone.audit a WHERE a.id > a0 AND a.action IN ('restore', 'purge', 'erase');
  RETURN QUERY
    SELECT pg_catalog.format('audit row %s names %s.%s, not a protected table', a.id, a.table_schema, a.table_name)
      FROM tombstone.audit a
     WHERE a.id > a0
       AND NOT EXISTS (SELECT 1 FROM zz_check.tables z WHERE z.nsp = a.table_schema AND z.rel = a.table_name)
       -- A table the case itself had migrate protect.
       AND NOT EXISTS (SELECT 1 FROM tombstone.protected_tables p
                        WHERE p.table_schema = a.table_schema AND p.table_name = a.table_name);
  IF pg_catalog.to_regclass('tombstone.operations') IS NOT NULL THEN
    RETURN QUERY EXECUTE
      'SELECT pg_catalog.format(''operation %s on %s.%s: login_role %s, not %s'', o.id, o.table_schema, o.table_name,
                                  pg_catalog.to_jsonb(o) ->> ''login_role'', $1)
         FROM tombstone.operations o
        WHERE pg_catalog.to_jsonb(o) ? ''login_role'' AND pg_catalog.to_jsonb(o) ->> ''login_role'' IS DISTINCT FROM $1
          AND NOT EXISTS (SELECT 1 FROM zz_check.tombstone_rows b
                           WHERE b.tbl = ''tombstone.operations'' AND b.j ->> ''id'' = o.id::text)' USING app;
  END IF;

  -- Nothing tombstone had before the case was changed or removed; the
  -- bypass list and the hard-delete grants got nothing new.
  FOR tt IN SELECT * FROM zz_check.tombstone_tables() LOOP
    EXECUTE pg_catalog.format(
      'SELECT pg_catalog.format(''%%s row(s) of %%s changed or removed'', count(*), %1$L)
         FROM zz_check.tombstone_rows b
        WHERE b.tbl = %1$L AND NOT EXISTS (SELECT 1 FROM %1$s x WHERE pg_catalog.to_jsonb(x) = b.j)
       HAVING count(*) > 0', tt) INTO msg;
    IF msg IS NOT NULL THEN
      RETURN NEXT msg;
    END IF;
    IF tt IN ('tombstone.bypass_roles', 'tombstone.hard_delete_grants') THEN
      EXECUTE pg_catalog.format(
        'SELECT pg_catalog.format(''%%s new row(s) in %%s, e.g. %%s'', count(*), %1$L, min(pg_catalog.to_jsonb(x)::text))
           FROM %1$s x
          WHERE NOT EXISTS (SELECT 1 FROM zz_check.tombstone_rows b WHERE b.tbl = %1$L AND b.j = pg_catalog.to_jsonb(x))
         HAVING count(*) > 0', tt) INTO msg;
      IF msg IS NOT NULL THEN
        RETURN NEXT msg;
      END IF;
    END IF;
  END LOOP;
END
$fn$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA zz_check FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA zz_check FROM PUBLIC;
