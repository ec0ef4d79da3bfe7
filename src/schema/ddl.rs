//! DDL of the `tombstone` schema objects that rewritten statements use.
//! Idempotent; `tombstone migrate` and the tests install it.

/// Operations (one per soft-deleting statement execution), the rows each one
/// touched, the function that raises 23503 for RESTRICT/NO ACTION, and the one that
/// raises 23505 when an INSERT meets a live row (see `rewrite::revive`).
pub const REWRITER_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS tombstone;

CREATE TABLE IF NOT EXISTS tombstone.operations (
  id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  kind         text        NOT NULL DEFAULT 'soft_delete',
  table_schema text        NOT NULL,
  table_name   text        NOT NULL,
  actor        text,
  login_role   text        NOT NULL DEFAULT session_user,
  xact_id      xid8        NOT NULL DEFAULT pg_current_xact_id(),
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS operations_created_at ON tombstone.operations (created_at);

CREATE TABLE IF NOT EXISTS tombstone.operation_rows (
  op_id        uuid  NOT NULL REFERENCES tombstone.operations (id) ON DELETE CASCADE,
  table_schema text  NOT NULL,
  table_name   text  NOT NULL,
  action       text  NOT NULL CHECK (action IN ('soft_delete', 'set_null', 'set_default')),
  pk           jsonb NOT NULL,
  old_values   jsonb
);
CREATE INDEX IF NOT EXISTS operation_rows_op ON tombstone.operation_rows (op_id);
CREATE INDEX IF NOT EXISTS operation_rows_row ON tombstone.operation_rows (table_schema, table_name, pk);

CREATE OR REPLACE FUNCTION tombstone.fk_violation(
  parent_table text, constraint_name text, child_table text, key_columns text, key_values text)
RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "%" on table "%"',
      parent_table, constraint_name, child_table
    USING ERRCODE = 'foreign_key_violation',
          DETAIL = format('Key (%s)=(%s) is still referenced from table "%s".', key_columns, key_values, child_table),
          HINT = 'tombstone: the row is soft-deleted only when no live row references it (ON DELETE RESTRICT / NO ACTION).',
          CONSTRAINT = constraint_name,
          TABLE = child_table;
END
$fn$;

CREATE OR REPLACE FUNCTION tombstone.unique_violation(
  table_schema text, table_name text, constraint_name text, key_columns text, key_values text)
RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'duplicate key value violates unique constraint "%"', constraint_name
    USING ERRCODE = 'unique_violation',
          DETAIL = format('Key (%s)=(%s) already exists.', key_columns, key_values),
          CONSTRAINT = constraint_name,
          TABLE = table_name,
          SCHEMA = table_schema;
END
$fn$;
"#;
