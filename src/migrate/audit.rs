//! DDL of the audit trail: one row per changed row, partitioned by month so
//! that writes stay fast as it grows and retention drops whole partitions.

/// The audit table, its default partition, indexes, and the functions that
/// create monthly partitions ahead of time and drop expired ones.
pub const AUDIT_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS tombstone;

CREATE TABLE IF NOT EXISTS tombstone.audit (
  id               bigint      GENERATED ALWAYS AS IDENTITY,
  at               timestamptz NOT NULL DEFAULT now(),
  table_schema     text        NOT NULL,
  table_name       text        NOT NULL,
  pk               jsonb       NOT NULL,
  action           text        NOT NULL CHECK (action IN
                     ('insert', 'update', 'soft_delete', 'set_null', 'set_default',
                      'restore', 'purge', 'erase')),
  old_values       jsonb,
  new_values       jsonb,
  actor            text        NOT NULL DEFAULT session_user,
  login_role       text        NOT NULL DEFAULT session_user,
  client_addr      text        DEFAULT nullif(current_setting('tombstone.client_addr', true), ''),
  application_name text        DEFAULT current_setting('application_name', true),
  xact_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
  op_id            uuid,
  PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);

CREATE TABLE IF NOT EXISTS tombstone.audit_default PARTITION OF tombstone.audit DEFAULT;
CREATE INDEX IF NOT EXISTS audit_row ON tombstone.audit (table_schema, table_name, pk);
CREATE INDEX IF NOT EXISTS audit_op ON tombstone.audit (op_id) WHERE op_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_at ON tombstone.audit (at);

-- Monthly partitions tombstone.audit_yYYYYmMM from this month to `ahead`
-- months later; existing ones are kept.
CREATE OR REPLACE FUNCTION tombstone.ensure_audit_partitions(ahead int DEFAULT 3)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
  month_start date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  created int := 0;
  part text;
BEGIN
  FOR i IN 0..ahead LOOP
    part := format('audit_y%sm%s', to_char(month_start, 'YYYY'), to_char(month_start, 'MM'));
    IF to_regclass(format('tombstone.%I', part)) IS NULL THEN
      EXECUTE format(
        'CREATE TABLE tombstone.%I PARTITION OF tombstone.audit FOR VALUES FROM (%L) TO (%L)',
        part, month_start::timestamp AT TIME ZONE 'UTC',
        (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC');
      created := created + 1;
    END IF;
    month_start := (month_start + interval '1 month')::date;
  END LOOP;
  RETURN created;
END
$fn$;

-- Drops monthly partitions that end before `cutoff`; returns how many.
CREATE OR REPLACE FUNCTION tombstone.drop_audit_partitions(cutoff timestamptz)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
  r record;
  dropped int := 0;
BEGIN
  FOR r IN
    SELECT c.relname,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'tombstone.audit'::regclass AND c.relname ~ '^audit_y[0-9]{4}m[0-9]{2}$'
  LOOP
    IF r.upper_bound <= cutoff THEN
      EXECUTE format('DROP TABLE tombstone.%I', r.relname);
      dropped := dropped + 1;
    END IF;
  END LOOP;
  RETURN dropped;
END
$fn$;

SELECT tombstone.ensure_audit_partitions(3);
"#;
