//! Operations are recorded by the database, not by the client (SPEC S1).
//!
//! A rewritten soft delete (see `rewrite::delete`) only changes rows: it
//! sets the soft-delete column of the target and its cascade, and the SET
//! NULL / SET DEFAULT columns of children. At the end of that statement the
//! statement-level `AFTER UPDATE` triggers of the tables it changed (owned
//! by tombstone, `SECURITY DEFINER`) read the transition tables and record:
//!
//! - every row whose soft-delete column went from NULL to a time: an
//!   operation row `soft_delete` (and, through the `operation_rows` audit
//!   trigger, its audit row);
//! - every row whose foreign-key columns a SET NULL / SET DEFAULT edge
//!   changed while the parent row it referenced was soft-deleted in this
//!   transaction: `set_null` / `set_default` with the old values, which
//!   restore puts back.
//!
//! All rows one statement changes belong to one operation
//! (`tombstone.statement_operation`): the one named by the statement's hint
//! (`tombstone.operation`, set by the rewritten statement with the target
//! table, the actor and a fresh id, honoured only during that statement),
//! else one per transaction and statement (`stmt_at`). The hint labels the
//! operation; what it holds is read from the rows, so a client that forges
//! the hint changes a label, never the record. The application role holds
//! no privilege on `tombstone.operations` or `operation_rows`, and a
//! soft-delete written by hand in server-side code (`UPDATE … SET deleted_at
//! = now()`, which row-level security allows for live rows) becomes an
//! operation like any other.

use crate::schema::{FkAction, SchemaSnapshot, Table, TableId};

/// The column and the function that group a statement's rows.
pub const OPERATIONS_DDL: &str = r#"
ALTER TABLE tombstone.operations ADD COLUMN IF NOT EXISTS stmt_at timestamptz NOT NULL DEFAULT statement_timestamp();
CREATE INDEX IF NOT EXISTS operations_xact ON tombstone.operations (xact_id);

-- The operation of the current statement: the hinted one (created on first
-- use), else this transaction's for this statement, else a new one.
CREATE OR REPLACE FUNCTION tombstone.statement_operation(s text, t text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  h jsonb;
  op uuid;
BEGIN
  BEGIN
    h := nullif(pg_catalog.current_setting('tombstone.operation', true), '')::jsonb;
    IF h IS NOT NULL AND (h ->> 'stmt')::timestamptz IS DISTINCT FROM pg_catalog.statement_timestamp() THEN
      h := NULL;
    END IF;
    op := (h ->> 'id')::uuid;
  EXCEPTION WHEN others THEN
    h := NULL;
    op := NULL;
  END;
  IF op IS NOT NULL THEN
    IF EXISTS (SELECT 1 FROM tombstone.operations o WHERE o.id = op
                 AND o.xact_id = pg_catalog.pg_current_xact_id() AND o.login_role = session_user
                 AND o.stmt_at = pg_catalog.statement_timestamp()) THEN
      RETURN op;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tombstone.operations o WHERE o.id = op) THEN
      INSERT INTO tombstone.operations (id, table_schema, table_name, actor)
      VALUES (op, coalesce(h ->> 'schema', s), coalesce(h ->> 'table', t),
              coalesce(h ->> 'actor', tombstone.current_actor()));
      RETURN op;
    END IF;
  END IF;
  SELECT o.id INTO op FROM tombstone.operations o
   WHERE o.xact_id = pg_catalog.pg_current_xact_id() AND o.stmt_at = pg_catalog.statement_timestamp()
     AND o.login_role = session_user AND o.kind = 'soft_delete'
   ORDER BY o.created_at LIMIT 1;
  IF op IS NULL THEN
    INSERT INTO tombstone.operations (table_schema, table_name, actor)
    VALUES (s, t, tombstone.current_actor()) RETURNING id INTO op;
  END IF;
  RETURN op;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.statement_operation(text, text) FROM PUBLIC;
"#;

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `jsonb_build_object('k1', <alias>.k1, …)`.
fn key_object(alias: &str, key: &[String]) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|c| format!("{}, {alias}.{}", literal(c), ident(c)))
        .collect();
    format!("pg_catalog.jsonb_build_object({})", parts.join(", "))
}

/// How a row of `tombstone_new` (n) meets its old version (o), and its key
/// as `operation_rows` holds it. Tables without a primary key are matched
/// on everything but `changed`, and keyed by the old row without the
/// soft-delete column (what `rewrite` keys them by).
fn row_match(table: &Table, changed: &[String], sd: Option<&str>) -> (String, String) {
    if table.primary_key.is_empty() {
        let minus: String = changed
            .iter()
            .map(|c| format!(" - {}", literal(c)))
            .collect();
        let key_minus = sd.map(|c| format!(" - {}", literal(c))).unwrap_or_default();
        (
            format!("pg_catalog.to_jsonb(n.*){minus} = pg_catalog.to_jsonb(o.*){minus}"),
            format!("(pg_catalog.to_jsonb(o.*){key_minus})"),
        )
    } else {
        (
            table
                .primary_key
                .iter()
                .map(|c| format!("n.{c} = o.{c}", c = ident(c)))
                .collect::<Vec<_>>()
                .join(" AND "),
            key_object("n", &table.primary_key),
        )
    }
}

/// PL/pgSQL statements for the `AFTER UPDATE` trigger of table `id`
/// (transition tables `tombstone_old`, `tombstone_new`): records its soft deletes and its SET NULL / SET DEFAULT
/// changes. Empty when the table has neither.
pub fn recording(snapshot: &SchemaSnapshot, id: TableId) -> String {
    let table = snapshot.table(id);
    let s = literal(&table.schema);
    let t = literal(&table.name);
    let mut out = String::new();
    if let Some(soft) = &table.soft_delete {
        let col = ident(&soft.column);
        let mut changed = vec![soft.column.clone()];
        if let Some(by) = &soft.by_column {
            changed.push(by.clone());
        }
        let (on, key) = row_match(table, &changed, Some(&soft.column));
        out.push_str(&format!(
            "  WITH k AS MATERIALIZED (SELECT {key} AS pk FROM tombstone_new n JOIN tombstone_old o ON {on}\n                          \
                                     WHERE n.{col} IS NOT NULL AND o.{col} IS NULL),\n       \
                  op AS (SELECT tombstone.statement_operation({s}, {t}) AS id WHERE EXISTS (SELECT 1 FROM k))\n  \
             INSERT INTO tombstone.operation_rows (op_id, table_schema, table_name, action, pk, old_values)\n  \
             SELECT op.id, {s}, {t}, 'soft_delete', k.pk, NULL FROM op, k;\n"
        ));
    }
    for fk in snapshot.foreign_keys().iter().filter(|fk| {
        fk.child == id && matches!(fk.on_delete, FkAction::SetNull | FkAction::SetDefault)
    }) {
        let parent = snapshot.table(fk.parent);
        let Some(parent_sd) = &parent.soft_delete else {
            continue;
        };
        let cols: Vec<&String> = if fk.set_columns.is_empty() {
            fk.child_columns.iter().collect()
        } else {
            fk.set_columns.iter().collect()
        };
        let owned: Vec<String> = cols.iter().map(|c| (*c).clone()).collect();
        let (on, key) = row_match(table, &owned, None);
        let action = if fk.on_delete == FkAction::SetDefault {
            "set_default"
        } else {
            "set_null"
        };
        let referenced = fk
            .child_columns
            .iter()
            .map(|c| format!("o.{} IS NOT NULL", ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let changed = cols
            .iter()
            .map(|c| format!("n.{c} IS DISTINCT FROM o.{c}", c = ident(c)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let parent_join = fk
            .child_columns
            .iter()
            .zip(&fk.parent_columns)
            .map(|(cc, pc)| format!("p.{} = o.{}", ident(pc), ident(cc)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let parent_rel = format!("{}.{}", ident(&parent.schema), ident(&parent.name));
        let old = cols
            .iter()
            .map(|c| format!("{}, o.{}", literal(c), ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "  WITH k AS MATERIALIZED (SELECT {key} AS pk, pg_catalog.jsonb_build_object({old}) AS old\n                          \
                                     FROM tombstone_new n JOIN tombstone_old o ON {on}\n                         \
                                    WHERE {referenced} AND ({changed})\n                           \
                                      AND EXISTS (SELECT 1 FROM {pq} p WHERE {parent_join} AND p.{pcol} = pg_catalog.now())),\n       \
                  op AS (SELECT tombstone.statement_operation({ps}, {pt}) AS id WHERE EXISTS (SELECT 1 FROM k))\n  \
             INSERT INTO tombstone.operation_rows (op_id, table_schema, table_name, action, pk, old_values)\n  \
             SELECT op.id, {s}, {t}, '{action}', k.pk, k.old FROM op, k;\n",
            ps = literal(&parent.schema),
            pt = literal(&parent.name),
            pq = parent_rel,
            pcol = ident(&parent_sd.column),
        ));
    }
    out
}

/// Triggers recording SET NULL / SET DEFAULT changes on tables that are not
/// protected themselves (protected tables record in their audit trigger).
pub fn unprotected_children(snapshot: &SchemaSnapshot) -> String {
    let mut sql = String::new();
    for (id, table) in snapshot.tables().iter().enumerate() {
        if table.is_protected() {
            continue;
        }
        let body = recording(snapshot, id);
        if body.is_empty() {
            continue;
        }
        let rel = format!("{}.{}", ident(&table.schema), ident(&table.name));
        let f =
            super::triggers::fitted_name(format!("operation_rows_{}_{}", table.schema, table.name));
        sql.push_str(&format!(
            "CREATE OR REPLACE FUNCTION tombstone.{f}() RETURNS trigger\n\
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$\n\
             BEGIN\n{body}  RETURN NULL;\nEND\n$fn$;\n\
             CREATE OR REPLACE TRIGGER tombstone_operation_rows AFTER UPDATE ON {rel}\n  \
               REFERENCING OLD TABLE AS tombstone_old NEW TABLE AS tombstone_new FOR EACH STATEMENT\n  \
               EXECUTE FUNCTION tombstone.{f}();\n"
        ));
    }
    sql
}
