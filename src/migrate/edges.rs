//! The one FK graph, in the database: `tombstone.edges` is the effective
//! edge set — the catalog's foreign keys as they are now, minus those
//! `rules.toml` removes, plus those it adds — that restore, purge and erase
//! follow, the same set the rewriter's snapshot holds
//! (`SchemaSnapshot::foreign_keys`).
//!
//! Only the `rules.toml` half is stored: `tombstone.edge_rules`, which
//! `migrate` writes from its configuration and `serve` from its own at
//! startup and on every schema reload (`ops::edges`). The catalog half is
//! read live from `pg_constraint` by the view, so a DDL change is in it the
//! moment it commits; it cannot go stale. Both objects belong to
//! tombstone's owner; nobody else has a privilege on them (SPEC S1), and
//! only tombstone's `SECURITY DEFINER` functions read them.
//!
//! Columns of the view: `name` (constraint name, or `rules.toml child ->
//! parent`), `source` (`catalog` or `rules`), `followed` (false for a
//! catalog foreign key `rules.toml` removes: cascades, restore and doctor
//! ignore it, but PostgreSQL still enforces it on physical deletes, so
//! purge still keeps a parent it references), `child` / `parent`
//! (regclass, and schema and table names), their columns, and `on_delete`
//! (`cascade`, `set_null`, `set_default`, `restrict`, `no_action`).

use crate::schema::SchemaSnapshot;

/// `tombstone.edge_rules` and the view `tombstone.edges`. Runs before the
/// functions that read them (SQL functions are checked at creation).
pub const EDGES_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS tombstone;

-- soft_delete.add_edges (kind 'add') and soft_delete.remove_edges (kind
-- 'remove') of rules.toml, as migrate and serve write them.
CREATE TABLE IF NOT EXISTS tombstone.edge_rules (
  kind           text    NOT NULL CHECK (kind IN ('add', 'remove')),
  ord            integer NOT NULL,
  name           text    NOT NULL,
  child_schema   text,
  child_table    text,
  child_columns  text[],
  parent_schema  text,
  parent_table   text,
  parent_columns text[],
  on_delete      text    CHECK (on_delete IN ('cascade', 'set_null', 'set_default', 'restrict', 'no_action')),
  PRIMARY KEY (kind, ord),
  CHECK (kind = 'remove'
         OR (child_schema IS NOT NULL AND child_table IS NOT NULL AND parent_schema IS NOT NULL
             AND parent_table IS NOT NULL AND on_delete IS NOT NULL
             AND pg_catalog.cardinality(child_columns) > 0
             AND pg_catalog.cardinality(child_columns) = pg_catalog.cardinality(parent_columns)))
);
REVOKE ALL ON tombstone.edge_rules FROM PUBLIC;

-- The effective edge set. The catalog half skips the schemas the snapshot
-- loader skips; an added edge whose tables do not exist (yet) is left out,
-- as the snapshot leaves it out.
CREATE OR REPLACE VIEW tombstone.edges AS
SELECT con.conname::text AS name, 'catalog'::text AS source,
       NOT EXISTS (SELECT 1 FROM tombstone.edge_rules r
                    WHERE r.kind = 'remove' AND r.name = con.conname::text) AS followed,
       con.conrelid::pg_catalog.regclass AS child, cn.nspname::text AS child_schema, cc.relname::text AS child_table,
       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS child_columns,
       con.confrelid::pg_catalog.regclass AS parent, pn.nspname::text AS parent_schema, pc.relname::text AS parent_table,
       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS parent_columns,
       CASE con.confdeltype WHEN 'c' THEN 'cascade' WHEN 'n' THEN 'set_null' WHEN 'd' THEN 'set_default'
                            WHEN 'r' THEN 'restrict' ELSE 'no_action' END AS on_delete
  FROM pg_catalog.pg_constraint con
  JOIN pg_catalog.pg_class cc ON cc.oid = con.conrelid
  JOIN pg_catalog.pg_namespace cn ON cn.oid = cc.relnamespace
  JOIN pg_catalog.pg_class pc ON pc.oid = con.confrelid
  JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
 WHERE con.contype = 'f' AND con.conparentid = 0
   AND cn.nspname NOT IN ('pg_catalog', 'information_schema')
   AND cn.nspname NOT LIKE 'pg\_toast%' AND cn.nspname NOT LIKE 'pg\_temp\_%'
   AND pn.nspname NOT IN ('pg_catalog', 'information_schema')
   AND pn.nspname NOT LIKE 'pg\_toast%' AND pn.nspname NOT LIKE 'pg\_temp\_%'
UNION ALL
SELECT r.name, 'rules'::text, true,
       cc.oid::pg_catalog.regclass, r.child_schema, r.child_table, r.child_columns,
       pc.oid::pg_catalog.regclass, r.parent_schema, r.parent_table, r.parent_columns,
       r.on_delete
  FROM tombstone.edge_rules r
  JOIN pg_catalog.pg_namespace cn ON cn.nspname = r.child_schema
  JOIN pg_catalog.pg_class cc ON cc.relnamespace = cn.oid AND cc.relname = r.child_table
                             AND cc.relkind IN ('r', 'p', 'v', 'm', 'f')
  JOIN pg_catalog.pg_namespace pn ON pn.nspname = r.parent_schema
  JOIN pg_catalog.pg_class pc ON pc.relnamespace = pn.oid AND pc.relname = r.parent_table
                             AND pc.relkind IN ('r', 'p', 'v', 'm', 'f')
 WHERE r.kind = 'add';
REVOKE ALL ON tombstone.edges FROM PUBLIC;
"#;

/// `migrate`'s write of its configuration's edge rules (the ones the
/// snapshot it planned with applied).
pub fn rules_step(snapshot: &SchemaSnapshot) -> String {
    snapshot.edge_rules().write_sql()
}
