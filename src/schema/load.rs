//! Catalog loader: the only I/O of the schema layer. Four queries on
//! `pg_catalog` give a [`Catalog`]; [`SchemaSnapshot::build`] does the rest.

use super::{
    Catalog, Column, FkAction, FkTiming, RawForeignKey, RawTable, RawUniqueIndex, SchemaSnapshot,
    SnapshotOptions,
};

const SKIP_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

fn tables_sql() -> String {
    format!(
        "SELECT n.nspname::text, c.relname::text, c.relkind::text,
           coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{{}}'),
           coalesce((SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) FROM pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{{}}'),
           coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                     FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord), pg_attribute a
                     WHERE i.indrelid = c.oid AND i.indisprimary
                       AND a.attrelid = c.oid AND a.attnum = k.attnum), '{{}}'),
           coalesce((SELECT array_agg(a.attgenerated <> '' OR a.attidentity = 'a' ORDER BY a.attnum)
                     FROM pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{{}}'),
           EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgenabled <> 'D'
                     AND t.tgname IN ('tombstone_audit_update', 'tombstone_operation_rows'))
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {SKIP_SCHEMAS}"
    )
}

/// `FROM … WHERE …` of tombstone's constraint triggers for the key `con`
/// (`migrate::fk_checks`): on table `relid`, running a `tombstone.<prefix>*`
/// function, with the key's schema, child table and name as arguments.
fn fk_check_triggers(relid: &str, prefix: &str) -> String {
    format!(
        "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                    WHERE t.tgrelid = {relid} AND NOT t.tgisinternal AND t.tgconstraint <> 0
                      AND p.pronamespace = to_regnamespace('tombstone') AND p.proname LIKE '{prefix}%'
                      AND t.tgargs = convert_to(n.nspname::text, 'UTF8') || '\\x00'::bytea
                                     || convert_to(c.relname::text, 'UTF8') || '\\x00'::bytea
                                     || convert_to(con.conname::text, 'UTF8') || '\\x00'::bytea"
    )
}

fn foreign_keys_sql(with_set_columns: bool) -> String {
    let set_columns = if with_set_columns {
        "coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                   FROM unnest(con.confdelsetcols) WITH ORDINALITY k(attnum, ord), pg_attribute a
                   WHERE a.attrelid = con.conrelid AND a.attnum = k.attnum), '{}')"
    } else {
        "'{}'::text[]"
    };
    let parent_check = fk_check_triggers("con.confrelid", "fk\\_parent\\_");
    let child_check = fk_check_triggers("con.conrelid", "fk\\_child\\_");
    format!(
        "SELECT con.conname::text, n.nspname::text, c.relname::text, pn.nspname::text, pc.relname::text,
           (SELECT array_agg(a.attname::text ORDER BY k.ord)
              FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord), pg_attribute a
              WHERE a.attrelid = con.conrelid AND a.attnum = k.attnum),
           (SELECT array_agg(a.attname::text ORDER BY k.ord)
              FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord), pg_attribute a
              WHERE a.attrelid = con.confrelid AND a.attnum = k.attnum),
           con.confdeltype::text,
           {set_columns},
           con.condeferrable, con.condeferred,
           EXISTS (SELECT 1 {parent_check}),
           (SELECT t.tgname::text {child_check} LIMIT 1)
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
         WHERE con.contype = 'f' AND con.conparentid = 0 AND {SKIP_SCHEMAS}"
    )
}

fn unique_indexes_sql() -> String {
    format!(
        "SELECT n.nspname::text, c.relname::text, ic.relname::text,
           coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                     FROM unnest((i.indkey::int2[])[0:i.indnkeyatts - 1]) WITH ORDINALITY k(attnum, ord), pg_attribute a
                     WHERE a.attrelid = i.indrelid AND a.attnum = k.attnum), '{{}}'),
           0 = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]) OR i.indexprs IS NOT NULL,
           pg_get_expr(i.indpred, i.indrelid),
           NOT i.indimmediate
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class ic ON ic.oid = i.indexrelid
         WHERE i.indisunique AND i.indisvalid AND {SKIP_SCHEMAS}"
    )
}

/// Names of functions and procedures a statement may call that could
/// change session settings: all but the system schemas' and tombstone's.
fn functions_sql() -> String {
    format!(
        "SELECT DISTINCT p.proname::text FROM pg_proc p
         JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE {SKIP_SCHEMAS} AND n.nspname <> 'tombstone'"
    )
}

/// Read the catalog facts over an open connection.
pub async fn load_catalog(
    client: &tokio_postgres::Client,
) -> Result<Catalog, tokio_postgres::Error> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?
        .get(0);
    let mut catalog = Catalog::default();
    for row in client.query(tables_sql().as_str(), &[]).await? {
        let names: Vec<String> = row.get(3);
        let types: Vec<String> = row.get(4);
        let default_only: Vec<bool> = row.get(6);
        let kind: String = row.get(2);
        catalog.tables.push(RawTable {
            schema: row.get(0),
            name: row.get(1),
            kind: kind.chars().next().unwrap_or('r'),
            columns: names
                .into_iter()
                .zip(types)
                .enumerate()
                .map(|(i, (name, type_sql))| Column {
                    name,
                    type_sql,
                    default_only: default_only.get(i).copied().unwrap_or(false),
                })
                .collect(),
            primary_key: row.get(5),
            records_operations: row.get(7),
        });
    }
    for row in client
        .query(foreign_keys_sql(version >= 150000).as_str(), &[])
        .await?
    {
        let action: String = row.get(7);
        catalog.foreign_keys.push(RawForeignKey {
            name: row.get(0),
            child: (row.get(1), row.get(2)),
            parent: (row.get(3), row.get(4)),
            child_columns: row.get::<_, Option<Vec<String>>>(5).unwrap_or_default(),
            parent_columns: row.get::<_, Option<Vec<String>>>(6).unwrap_or_default(),
            on_delete: FkAction::from_catalog(&action),
            set_columns: row.get(8),
            timing: FkTiming::from_catalog(row.get(9), row.get(10)),
            parent_checked: row.get(11),
            child_check: row.get(12),
        });
    }
    for row in client.query(functions_sql().as_str(), &[]).await? {
        catalog.functions.push(row.get(0));
    }
    for row in client.query(unique_indexes_sql().as_str(), &[]).await? {
        let has_expressions: bool = row.get(4);
        catalog.unique_indexes.push(RawUniqueIndex {
            table: (row.get(0), row.get(1)),
            name: row.get(2),
            columns: if has_expressions {
                Vec::new()
            } else {
                row.get(3)
            },
            predicate: row.get(5),
            deferrable: row.get(6),
        });
    }
    Ok(catalog)
}

/// Load a snapshot over an open connection.
pub async fn load(
    client: &tokio_postgres::Client,
    options: &SnapshotOptions,
) -> Result<SchemaSnapshot, tokio_postgres::Error> {
    Ok(SchemaSnapshot::build(load_catalog(client).await?, options))
}
