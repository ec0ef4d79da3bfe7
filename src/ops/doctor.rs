//! `tombstone doctor`: what is wrong with a database for soft delete, read
//! from the catalog, and the DDL that fixes what can be fixed (which
//! `tombstone migrate --fix` applies).

use std::collections::{BTreeSet, HashMap};

use tokio_postgres::Client;

use crate::config::Config;
use crate::schema::{FkAction, SchemaSnapshot, TableId};

mod escapes;

/// One thing that needs fixing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The tombstone schema lacks these objects (`migrate --apply`).
    SchemaMissing(Vec<String>),
    /// Protected tables without the hard-delete guard trigger.
    GuardMissing { tables: Vec<String> },
    /// Foreign keys to protected parents whose checks (`migrate::fk_checks`)
    /// are missing or were generated for another schema (a table or column
    /// renamed, a key added or changed since `migrate`).
    FkChecksStale { keys: Vec<String> },
    /// A unique index that is not partial on `<soft-delete column> IS NULL`:
    /// re-creating a deleted row's key fails.
    NonPartialUnique {
        table: String,
        index: String,
        definition: String,
        /// Why it cannot be replaced automatically (a foreign key uses it).
        blocked: Option<String>,
    },
    /// Foreign-key columns with no index starting with them: cascades and
    /// purges scan the child table.
    FkWithoutIndex {
        table: String,
        constraint: String,
        columns: Vec<String>,
    },
    /// `ON DELETE CASCADE` from a protected table into one without the
    /// soft-delete column: its rows are left alone by soft deletes.
    ChildWithoutSoftDelete {
        table: String,
        parent: String,
        constraint: String,
    },
    /// `ON DELETE CASCADE` from a table without the soft-delete column into
    /// a protected one (or one the fixes protect): deleting from it is
    /// refused, since PostgreSQL's cascade would remove protected rows.
    ParentWithoutSoftDelete {
        table: String,
        child: String,
        constraint: String,
    },
    /// A table without the soft-delete column that references a protected
    /// one (not by CASCADE) and has had rows deleted, or is a link table
    /// (every column a key; `deletes` 0): an application that deletes such
    /// link rows itself loses them for good.
    LinkRowsDeleted {
        table: String,
        parent: String,
        constraint: String,
        deletes: i64,
    },
    /// A view reading a protected table: the proxy cannot see inside it,
    /// so it shows deleted rows.
    ViewReads { view: String, table: String },
    /// A function whose body reads (or deletes from) a protected table.
    FunctionUses {
        function: String,
        table: String,
        deletes: bool,
    },
    /// A login role that row-level security does not bind (a superuser, a
    /// `BYPASSRLS` role, or a member of one: `via`), other than tombstone's
    /// owner and the bypass roles: connected directly it sees soft-deleted
    /// rows.
    BypassLogin {
        role: String,
        /// The role itself is a superuser (else `BYPASSRLS`, or `via`).
        superuser: bool,
        /// The roles it can `SET ROLE` to, each with whether it is a
        /// superuser; empty when the role itself skips the policies.
        via: Vec<(String, bool)>,
    },
    /// A protected table whose row-level security is off, not forced, or
    /// lacks tombstone's policies (`migrate --apply`).
    RlsMissing { table: String, gaps: Vec<String> },
    /// A `SECURITY DEFINER` function owned by a role that skips row-level
    /// security, callable by normal roles.
    DefinerBypasses {
        function: String,
        owner: String,
        owner_superuser: bool,
        /// `EXECUTE` is granted to PUBLIC.
        public: bool,
        /// Normal roles that may call it.
        callers: Vec<String>,
    },
    /// The database's edge set (`tombstone.edges`, which restore, purge
    /// and erase follow) is not this configuration's (the rewriter's):
    /// `tombstone.edge_rules` holds another `rules.toml`'s edges.
    GraphDiffers {
        /// Edges only the database follows.
        only_database: Vec<String>,
        /// Edges only this configuration's snapshot follows.
        only_config: Vec<String>,
    },
    /// A view over protected tables owned by a role that skips row-level
    /// security, readable by normal roles.
    ViewBypasses {
        view: String,
        materialized: bool,
        owner: String,
        owner_superuser: bool,
        tables: Vec<String>,
        /// A privilege on it is granted to PUBLIC.
        public: bool,
        /// Normal roles that may read or write through it.
        readers: Vec<String>,
    },
}

/// A fix: DDL for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// `schema.table` it changes.
    pub table: String,
    pub sql: String,
    /// The soft-delete column it adds, if any (the table becomes protected).
    pub adds_column: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// `schema.table (column)`.
    pub protected: Vec<String>,
    /// The cascade plan, one tree per protected table with children.
    pub cascade: Vec<String>,
    pub problems: Vec<Problem>,
    /// DDL fixing the fixable problems (not the schema and guard, which
    /// `migrate` always installs).
    pub fixes: Vec<Fix>,
}

impl Problem {
    /// The problem in plain words.
    pub fn describe(&self) -> String {
        match self {
            Problem::SchemaMissing(objects) => format!(
                "the tombstone schema is missing or incomplete (missing: {}); run tombstone migrate --apply",
                objects.join(", ")
            ),
            Problem::GuardMissing { tables } => format!(
                "no hard-delete guard trigger on {}: a DELETE run directly against PostgreSQL removes their rows for good; run tombstone migrate --apply",
                tables.join(", ")
            ),
            Problem::FkChecksStale { keys } => format!(
                "the checks that keep rows from referencing soft-deleted parents are missing or out of date for {}: inserts may fail or go unchecked, and deferred keys are checked at the statement; run tombstone migrate --apply",
                keys.join(", ")
            ),
            Problem::NonPartialUnique {
                table,
                index,
                definition,
                blocked,
            } => {
                let mut s = format!(
                    "{table}: unique index {index} is not partial on the soft-delete column IS NULL, so a deleted row's value cannot be used again ({definition})"
                );
                if let Some(why) = blocked {
                    s.push_str(&format!("; not fixed automatically: {why}"));
                }
                s
            }
            Problem::FkWithoutIndex {
                table,
                constraint,
                columns,
            } => format!(
                "{table}: foreign key {constraint} ({}) has no index: cascades and purges scan the whole table",
                columns.join(", ")
            ),
            Problem::ChildWithoutSoftDelete {
                table,
                parent,
                constraint,
            } => format!(
                "{table} has no soft-delete column but {parent} cascades into it ({constraint}): its rows stay when their parent is soft-deleted"
            ),
            Problem::ParentWithoutSoftDelete {
                table,
                child,
                constraint,
            } => format!(
                "{table} has no soft-delete column but cascades into protected {child} ({constraint}): deleting from it is refused, since PostgreSQL's cascade would remove protected rows for good"
            ),
            Problem::LinkRowsDeleted {
                table,
                parent,
                constraint,
                deletes,
            } => {
                let why = if *deletes > 0 {
                    format!("has had {deletes} rows deleted")
                } else {
                    "is a link table (every column a key)".to_string()
                };
                format!(
                    "{table} has no soft-delete column, references protected {parent} ({constraint}) and {why}: rows an application deletes there (an ORM's link rows) are gone for good and a restore cannot bring them back"
                )
            }
            Problem::ViewReads { view, table } => format!(
                "view {view} reads protected table {table}: tombstone cannot filter inside it, so it shows deleted rows"
            ),
            Problem::FunctionUses {
                function,
                table,
                deletes,
            } => format!(
                "function {function} {} protected table {table}: tombstone cannot see inside function bodies",
                if *deletes { "deletes from" } else { "reads" }
            ),
            Problem::BypassLogin {
                role,
                superuser,
                via,
            } => {
                let sees = "row-level security does not apply to it, so connected to the database directly (not through the proxy) it sees and changes soft-deleted rows";
                let meant = "if it is meant to see the trash, list it in roles.bypass (tombstone.bypass_roles)";
                if via.is_empty() && *superuser {
                    format!(
                        "role {role} is a superuser that can log in: {sees}; give applications and people normal roles, or, {meant}"
                    )
                } else if via.is_empty() {
                    format!(
                        "role {role} can log in with BYPASSRLS and has privileges on protected tables: {sees}; ALTER ROLE {role} NOBYPASSRLS, or, {meant}"
                    )
                } else {
                    let roles: Vec<String> = via
                        .iter()
                        .map(|(r, su)| {
                            format!("{r} ({})", if *su { "superuser" } else { "BYPASSRLS" })
                        })
                        .collect();
                    let names: Vec<&str> = via.iter().map(|(r, _)| r.as_str()).collect();
                    format!(
                        "login role {role} can SET ROLE to {}, and then {sees}; REVOKE {} FROM {role}, or, {meant}",
                        roles.join(", "),
                        names.join(", ")
                    )
                }
            }
            Problem::RlsMissing { table, gaps } => format!(
                "{table}: {}: SQL that runs inside the server for a normal role (functions, views, DO blocks) sees or changes its soft-deleted rows; run tombstone migrate --apply",
                gaps.join("; ")
            ),
            Problem::DefinerBypasses {
                function,
                owner,
                owner_superuser,
                public,
                callers,
            } => format!(
                "SECURITY DEFINER function {function} is owned by {owner} ({}) and executable by {}: it runs as a role that row-level security does not bind, so what it reads or changes includes soft-deleted rows; make a normal role own it (ALTER FUNCTION ... OWNER TO), or REVOKE EXECUTE on it FROM PUBLIC and normal roles",
                bypass_kind(*owner_superuser),
                escapes::who(*public, callers)
            ),
            Problem::GraphDiffers {
                only_database,
                only_config,
            } => {
                let list = |edges: &[String]| {
                    if edges.is_empty() {
                        "none".to_string()
                    } else {
                        edges.join("; ")
                    }
                };
                format!(
                    "the cascade edges restore, purge and erase follow (tombstone.edges) are not this rules.toml's: only in the database: {}; only in rules.toml: {}; `tombstone serve` with this rules.toml writes them back at its next schema reload, `tombstone migrate --apply --config rules.toml` now",
                    list(only_database),
                    list(only_config)
                )
            }
            Problem::ViewBypasses {
                view,
                materialized,
                owner,
                owner_superuser,
                tables,
                public,
                readers,
            } => {
                let head = format!(
                    "{} {view} over protected {} {} is owned by {owner} ({}) and readable by {}",
                    if *materialized {
                        "materialized view"
                    } else {
                        "view"
                    },
                    if tables.len() == 1 { "table" } else { "tables" },
                    tables.join(", "),
                    bypass_kind(*owner_superuser),
                    escapes::who(*public, readers)
                );
                if *materialized {
                    format!(
                        "{head}: it holds what its owner saw at the last refresh, soft-deleted rows included; make a normal role own it and refresh it, or REVOKE its privileges FROM PUBLIC and normal roles"
                    )
                } else {
                    format!(
                        "{head}: PostgreSQL applies its tables' row-level security as the view's owner, who skips it, so the view shows soft-deleted rows to every role that may read it; ALTER VIEW {view} SET (security_invoker = true), or make a normal role own it"
                    )
                }
            }
        }
    }
}

fn bypass_kind(superuser: bool) -> &'static str {
    if superuser { "superuser" } else { "BYPASSRLS" }
}

/// A SQL identifier, quoted.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", ident(schema), ident(table))
}

/// Reads the catalog and reports.
pub async fn examine(
    client: &Client,
    config: &Config,
    snapshot: &SchemaSnapshot,
) -> Result<Report, tokio_postgres::Error> {
    let mut report = Report::default();
    for t in snapshot.tables().iter().filter(|t| t.is_protected()) {
        let column = t
            .soft_delete
            .as_ref()
            .map(|s| s.column.as_str())
            .unwrap_or_default();
        report
            .protected
            .push(format!("{}.{} ({column})", t.schema, t.name));
    }
    report.cascade = cascade_trees(snapshot);

    let mut missing: Vec<String> = crate::migrate::missing_objects(client)
        .await?
        .into_iter()
        .map(str::to_string)
        .collect();
    let event: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'tombstone_schema_change')",
            &[],
        )
        .await?
        .get(0);
    if !event {
        missing.push("the schema-change event trigger".to_string());
    }
    let ddl_guards: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_event_trigger
              WHERE evtname IN ('tombstone_ddl_guard', 'tombstone_ddl_guard_drop') AND evtenabled <> 'D'",
            &[],
        )
        .await?
        .get(0);
    if ddl_guards < 2 {
        missing.push(
            "the DDL guard event triggers (tombstone_ddl_guard, tombstone_ddl_guard_drop)"
                .to_string(),
        );
    }
    graph(client, snapshot, &mut report).await?;
    let recorded: Option<BTreeSet<(String, String)>> = if client
        .query_one(
            "SELECT to_regclass('tombstone.protected_tables') IS NOT NULL",
            &[],
        )
        .await?
        .get(0)
    {
        Some(
            client
                .query(
                    "SELECT table_schema, table_name FROM tombstone.protected_tables",
                    &[],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        )
    } else {
        None
    };
    if let Some(recorded) = recorded {
        for t in snapshot
            .tables()
            .iter()
            .filter(|t| t.is_protected() && matches!(t.kind, 'r' | 'p'))
            .filter(|t| !recorded.contains(&(t.schema.clone(), t.name.clone())))
        {
            missing.push(format!(
                "the DDL guard's record of {}.{} (protected since the last migrate)",
                t.schema, t.name
            ));
        }
    }
    if !missing.is_empty() {
        report.problems.push(Problem::SchemaMissing(missing));
    }
    guards(client, snapshot, &mut report).await?;
    fk_checks(client, snapshot, &mut report).await?;
    // First the tables the fixes protect: their unique and foreign-key
    // indexes are checked as if they were protected already, and the
    // columns are added before the indexes that name them.
    let deletes = deletes_per_table(client).await?;
    let soon = children_without_column(config, snapshot, &deletes, &mut report);
    unique_indexes(client, snapshot, &soon, &mut report).await?;
    fk_indexes(client, snapshot, &soon, &mut report).await?;
    views(client, snapshot, &mut report).await?;
    functions(client, snapshot, &mut report).await?;
    escapes::examine(client, config, snapshot, &mut report).await?;
    Ok(report)
}

/// The soft-delete column of a table that is protected, or that a fix of
/// this report protects (`soon`).
fn soft_delete_column(
    snapshot: &SchemaSnapshot,
    soon: &HashMap<TableId, String>,
    schema: &str,
    table: &str,
) -> Option<String> {
    let id = snapshot.lookup(schema, table)?;
    match &snapshot.table(id).soft_delete {
        Some(sd) => Some(sd.column.clone()),
        None => soon.get(&id).cloned(),
    }
}

fn protected_name(snapshot: &SchemaSnapshot, schema: &str, table: &str) -> Option<TableId> {
    snapshot
        .lookup(schema, table)
        .filter(|&id| snapshot.table(id).is_protected())
}

async fn guards(
    client: &Client,
    snapshot: &SchemaSnapshot,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let guarded: BTreeSet<(String, String)> = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_trigger t
               JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE t.tgname = 'tombstone_guard_delete'",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let tables: Vec<String> = snapshot
        .tables()
        .iter()
        .filter(|t| t.is_protected() && matches!(t.kind, 'r' | 'p'))
        .filter(|t| !guarded.contains(&(t.schema.clone(), t.name.clone())))
        .map(|t| format!("{}.{}", t.schema, t.name))
        .collect();
    if !tables.is_empty() {
        report.problems.push(Problem::GuardMissing { tables });
    }
    Ok(())
}

async fn fk_checks(
    client: &Client,
    snapshot: &SchemaSnapshot,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let installed: std::collections::HashMap<String, String> = client
        .query(
            "SELECT p.proname::text, p.prosrc FROM pg_proc p
              WHERE p.pronamespace = to_regnamespace('tombstone')
                AND (p.proname LIKE 'fk\\_child\\_%' OR p.proname LIKE 'fk\\_parent\\_%')
                AND EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgfoid = p.oid AND t.tgenabled <> 'D')",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut keys: Vec<String> = crate::migrate::fk_checks::expected(snapshot)
        .into_iter()
        .filter(|c| installed.get(&c.function) != Some(&c.body))
        .map(|c| c.key)
        .collect();
    keys.dedup();
    if !keys.is_empty() {
        report.problems.push(Problem::FkChecksStale { keys });
    }
    Ok(())
}

async fn unique_indexes(
    client: &Client,
    snapshot: &SchemaSnapshot,
    soon: &HashMap<TableId, String>,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, ic.relname::text, pg_get_indexdef(i.indexrelid),
                    pg_get_expr(i.indpred, i.indrelid), con.conname::text,
                    (SELECT string_agg(f.conname || ' on ' || f.conrelid::regclass::text, ', ')
                       FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_class ic ON ic.oid = i.indexrelid
               LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                                          AND con.contype = 'u'
              WHERE i.indisunique AND NOT i.indisprimary
              ORDER BY 1, 2, 3",
            &[],
        )
        .await?;
    for row in rows {
        let (schema, table, index): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let Some(sd) = soft_delete_column(snapshot, soon, &schema, &table) else {
            continue;
        };
        let definition: String = row.get(3);
        let predicate: Option<String> = row.get(4);
        let live_only = predicate
            .as_deref()
            .is_some_and(|p| p.contains(&format!("{sd} IS NULL")));
        if live_only {
            continue;
        }
        let constraint: Option<String> = row.get(5);
        let used_by: Option<String> = row.get(6);
        let name = format!("{schema}.{table}");
        let blocked = used_by.map(|fks| format!("foreign keys need it whole ({fks})"));
        if blocked.is_none() {
            let (base, new_predicate) = match &predicate {
                Some(p) => (
                    definition
                        .find(" WHERE ")
                        .map(|at| definition[..at].to_string())
                        .unwrap_or_else(|| definition.clone()),
                    format!("({p}) AND {} IS NULL", ident(&sd)),
                ),
                None => (definition.clone(), format!("{} IS NULL", ident(&sd))),
            };
            let drop = match &constraint {
                Some(c) => format!(
                    "ALTER TABLE {} DROP CONSTRAINT {};",
                    qualified(&schema, &table),
                    ident(c)
                ),
                None => format!("DROP INDEX {};", qualified(&schema, &index)),
            };
            report.fixes.push(Fix {
                table: name.clone(),
                sql: format!("{drop}\n{base} WHERE {new_predicate};"),
                adds_column: None,
            });
        }
        report.problems.push(Problem::NonPartialUnique {
            table: name,
            index,
            definition,
            blocked,
        });
    }
    Ok(())
}

async fn fk_indexes(
    client: &Client,
    snapshot: &SchemaSnapshot,
    soon: &HashMap<TableId, String>,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT con.conname::text, n.nspname::text, c.relname::text, pn.nspname::text, pc.relname::text,
                    (SELECT array_agg(a.attname::text ORDER BY k.ord)
                       FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum)
               FROM pg_constraint con
               JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
              WHERE con.contype = 'f' AND con.conparentid = 0
                AND NOT EXISTS (
                  SELECT 1 FROM pg_index i WHERE i.indrelid = con.conrelid
                     AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] @> con.conkey
                     AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] <@ con.conkey)
              ORDER BY 2, 3, 1",
            &[],
        )
        .await?;
    for row in rows {
        let (pschema, ptable): (String, String) = (row.get(3), row.get(4));
        if soft_delete_column(snapshot, soon, &pschema, &ptable).is_none() {
            continue;
        }
        let (constraint, schema, table): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let columns: Vec<String> = row.get::<_, Option<Vec<String>>>(5).unwrap_or_default();
        let mut index = format!("{table}_{}_idx", columns.join("_"));
        while index.len() > 63 {
            index.pop();
        }
        let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        report.fixes.push(Fix {
            table: format!("{schema}.{table}"),
            sql: format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({});",
                ident(&index),
                qualified(&schema, &table),
                cols.join(", ")
            ),
            adds_column: None,
        });
        report.problems.push(Problem::FkWithoutIndex {
            table: format!("{schema}.{table}"),
            constraint,
            columns,
        });
    }
    Ok(())
}

/// Tables without the soft-delete column that a soft delete cannot treat
/// as PostgreSQL's hard delete would, each with the fix that protects it
/// (the closure: a table the fixes protect counts as protected for the
/// next one, so one `migrate --fix` makes the graph whole):
/// - a child that a protected table cascades into (its rows would stay
///   visible when their parent is soft-deleted);
/// - a parent that cascades into a protected table (deleting from it is
///   refused: its cascade would remove protected rows for good);
/// - a child that references a protected table with another action and is
///   deleted from (`pg_stat_user_tables.n_tup_del`): an ORM that deletes
///   link rows itself loses them for good, where a protected link table
///   keeps them for the restore of the transaction's action.
fn children_without_column(
    config: &Config,
    snapshot: &SchemaSnapshot,
    deletes: &HashMap<(String, String), i64>,
    report: &mut Report,
) -> HashMap<TableId, String> {
    let name_of = |id: TableId| {
        let t = snapshot.table(id);
        format!("{}.{}", t.schema, t.name)
    };
    let candidate = |id: TableId| {
        let t = snapshot.table(id);
        !t.is_protected()
            && matches!(t.kind, 'r' | 'p')
            && !config.soft_delete.exclude.contains(&name_of(id))
    };
    let mut will: BTreeSet<TableId> = (0..snapshot.tables().len())
        .filter(|&id| snapshot.table(id).is_protected())
        .collect();
    let mut fixed: Vec<TableId> = Vec::new();
    loop {
        let mut found = None;
        for fk in snapshot.foreign_keys() {
            let (p, c) = (fk.parent, fk.child);
            let problem = if will.contains(&p) && !will.contains(&c) && candidate(c) {
                if fk.on_delete == FkAction::Cascade {
                    Some((
                        c,
                        Problem::ChildWithoutSoftDelete {
                            table: name_of(c),
                            parent: name_of(p),
                            constraint: fk.name.clone(),
                        },
                    ))
                } else {
                    let t = snapshot.table(c);
                    let n = deletes
                        .get(&(t.schema.clone(), t.name.clone()))
                        .copied()
                        .unwrap_or(0);
                    (n > 0 || is_link_table(snapshot, c)).then_some(n).map(|n| {
                        (
                            c,
                            Problem::LinkRowsDeleted {
                                table: name_of(c),
                                parent: name_of(p),
                                constraint: fk.name.clone(),
                                deletes: n,
                            },
                        )
                    })
                }
            } else if will.contains(&c)
                && !will.contains(&p)
                && candidate(p)
                && fk.on_delete == FkAction::Cascade
            {
                Some((
                    p,
                    Problem::ParentWithoutSoftDelete {
                        table: name_of(p),
                        child: name_of(c),
                        constraint: fk.name.clone(),
                    },
                ))
            } else {
                None
            };
            if problem.is_some() {
                found = problem;
                break;
            }
        }
        let Some((id, problem)) = found else {
            break;
        };
        will.insert(id);
        fixed.push(id);
        report.problems.push(problem);
        // The other reasons the same table needs the column.
        for fk in snapshot.foreign_keys() {
            if fk.child == id
                && fk.on_delete == FkAction::Cascade
                && will.contains(&fk.parent)
                && !report.problems.iter().any(|x| matches!(x, Problem::ChildWithoutSoftDelete { constraint, .. } if *constraint == fk.name))
            {
                report.problems.push(Problem::ChildWithoutSoftDelete {
                    table: name_of(id),
                    parent: name_of(fk.parent),
                    constraint: fk.name.clone(),
                });
            }
        }
    }
    let mut soon = HashMap::new();
    for id in fixed {
        let t = snapshot.table(id);
        let name = name_of(id);
        let column = config
            .soft_delete
            .columns
            .get(&name)
            .unwrap_or(&config.soft_delete.column)
            .clone();
        soon.insert(id, column.clone());
        report.fixes.push(Fix {
            table: name,
            sql: format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} timestamptz;",
                qualified(&t.schema, &t.name),
                ident(&column)
            ),
            adds_column: Some(column),
        });
    }
    soon
}

/// Every column of the table is part of its primary key or of a foreign
/// key, and it has two foreign keys or more: a many-to-many link table
/// (Django's automatic through tables), whose rows applications delete.
fn is_link_table(snapshot: &SchemaSnapshot, id: TableId) -> bool {
    let t = snapshot.table(id);
    let fks: Vec<_> = snapshot
        .foreign_keys()
        .iter()
        .filter(|fk| fk.child == id && fk.in_catalog)
        .collect();
    fks.len() >= 2
        && t.columns.iter().all(|c| {
            t.primary_key.contains(&c.name)
                || fks.iter().any(|fk| fk.child_columns.contains(&c.name))
        })
}

/// Rows deleted per table since the statistics were reset.
async fn deletes_per_table(
    client: &Client,
) -> Result<HashMap<(String, String), i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT schemaname::text, relname::text, n_tup_del FROM pg_catalog.pg_stat_user_tables",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect())
}

async fn views(
    client: &Client,
    snapshot: &SchemaSnapshot,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT DISTINCT vn.nspname::text, v.relname::text, tn.nspname::text, t.relname::text
               FROM pg_rewrite r
               JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                               AND d.refclassid = 'pg_class'::regclass
               JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
               JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
              WHERE v.oid <> t.oid AND v.relkind IN ('v', 'm')
              ORDER BY 1, 2, 3, 4",
            &[],
        )
        .await?;
    for row in rows {
        let (ts, tt): (String, String) = (row.get(2), row.get(3));
        if protected_name(snapshot, &ts, &tt).is_some() {
            report.problems.push(Problem::ViewReads {
                view: format!("{}.{}", row.get::<_, String>(0), row.get::<_, String>(1)),
                table: format!("{ts}.{tt}"),
            });
        }
    }
    Ok(())
}

/// Words of a function body, lower-cased: identifiers with their dots.
fn words(src: &str) -> Vec<String> {
    src.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

async fn functions(
    client: &Client,
    snapshot: &SchemaSnapshot,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT n.nspname::text || '.' || p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                    p.prosrc
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               JOIN pg_language l ON l.oid = p.prolang
              WHERE l.lanname IN ('sql', 'plpgsql')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tombstone')
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                   AND d.objid = p.oid AND d.deptype = 'e')
              ORDER BY 1",
            &[],
        )
        .await?;
    for row in rows {
        let function: String = row.get(0);
        let body = words(row.get::<_, Option<&str>>(1).unwrap_or_default());
        for t in snapshot.tables().iter().filter(|t| t.is_protected()) {
            let bare = t.name.to_lowercase();
            let full = format!("{}.{}", t.schema.to_lowercase(), bare);
            let names = |w: &str| w == bare || w == full;
            if !body.iter().any(|w| names(w)) {
                continue;
            }
            let deletes = body
                .windows(3)
                .any(|w| w[0] == "delete" && w[1] == "from" && names(&w[2]))
                || body
                    .windows(4)
                    .any(|w| w[0] == "delete" && w[1] == "from" && w[2] == "only" && names(&w[3]));
            report.problems.push(Problem::FunctionUses {
                function: function.clone(),
                table: format!("{}.{}", t.schema, t.name),
                deletes,
            });
        }
    }
    Ok(())
}

/// One edge in words, as [`graph`] compares them.
fn edge_words(
    child: (&str, &str),
    child_columns: &[String],
    parent: (&str, &str),
    parent_columns: &[String],
    on_delete: &str,
) -> String {
    format!(
        "{}.{} ({}) -> {}.{} ({}) on delete {on_delete}",
        child.0,
        child.1,
        child_columns.join(", "),
        parent.0,
        parent.1,
        parent_columns.join(", ")
    )
}

/// The graph the database's functions follow (`tombstone.edges`) against
/// the snapshot's, which the rewriter follows: one graph, or a problem.
async fn graph(
    client: &Client,
    snapshot: &SchemaSnapshot,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let installed: bool = client
        .query_one("SELECT to_regclass('tombstone.edges') IS NOT NULL", &[])
        .await?
        .get(0);
    if !installed {
        return Ok(());
    }
    let mut database: Vec<String> = client
        .query(
            "SELECT child_schema, child_table, child_columns, parent_schema, parent_table, parent_columns, on_delete
               FROM tombstone.edges WHERE followed",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let (cs, ct, ps, pt): (String, String, String, String) =
                (r.get(0), r.get(1), r.get(3), r.get(4));
            let (cc, pc): (Vec<String>, Vec<String>) = (r.get(2), r.get(5));
            edge_words((&cs, &ct), &cc, (&ps, &pt), &pc, r.get(6))
        })
        .collect();
    let mut config: Vec<String> = snapshot
        .foreign_keys()
        .iter()
        .map(|fk| {
            let (c, p) = (snapshot.table(fk.child), snapshot.table(fk.parent));
            edge_words(
                (&c.schema, &c.name),
                &fk.child_columns,
                (&p.schema, &p.name),
                &fk.parent_columns,
                fk.on_delete.word(),
            )
        })
        .collect();
    database.sort();
    config.sort();
    if database == config {
        return Ok(());
    }
    let only_database: Vec<String> = database
        .iter()
        .filter(|e| !config.contains(e))
        .cloned()
        .collect();
    let only_config: Vec<String> = config
        .iter()
        .filter(|e| !database.contains(e))
        .cloned()
        .collect();
    if only_database.is_empty() && only_config.is_empty() {
        // The same edges, one listed twice: the same graph.
        return Ok(());
    }
    report.problems.push(Problem::GraphDiffers {
        only_database,
        only_config,
    });
    Ok(())
}

fn action_word(action: FkAction) -> &'static str {
    match action {
        FkAction::Cascade => "cascade",
        FkAction::SetNull => "set null",
        FkAction::SetDefault => "set default",
        FkAction::Restrict => "restrict",
        FkAction::NoAction => "no action",
    }
}

/// One tree per protected table with children: what a soft delete of one
/// of its rows does, following CASCADE edges down.
pub fn cascade_trees(snapshot: &SchemaSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    for id in 0..snapshot.tables().len() {
        let t = snapshot.table(id);
        if !t.is_protected() || snapshot.children_of(id).next().is_none() {
            continue;
        }
        let mut tree = format!("{}.{}\n", t.schema, t.name);
        let mut path = vec![id];
        branch(snapshot, id, "", &mut path, &mut tree);
        out.push(tree);
    }
    out
}

fn branch(
    snapshot: &SchemaSnapshot,
    id: TableId,
    prefix: &str,
    path: &mut Vec<TableId>,
    out: &mut String,
) {
    let mut children: Vec<_> = snapshot.children_of(id).collect();
    children.sort_by_key(|fk| {
        let c = snapshot.table(fk.child);
        (c.schema.clone(), c.name.clone(), fk.name.clone())
    });
    let last = children.len().saturating_sub(1);
    for (i, fk) in children.into_iter().enumerate() {
        let child = snapshot.table(fk.child);
        let (elbow, more) = if i == last {
            ("└─", "   ")
        } else {
            ("├─", "│  ")
        };
        let note = if !child.is_protected() {
            match fk.on_delete {
                FkAction::Cascade => "  (no soft-delete column: left alone)",
                _ => "",
            }
        } else if path.contains(&fk.child) {
            "  (recursive)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{prefix}{elbow} {} {}.{} ({}){note}\n",
            action_word(fk.on_delete),
            child.schema,
            child.name,
            fk.child_columns.join(", ")
        ));
        if fk.on_delete == FkAction::Cascade && child.is_protected() && !path.contains(&fk.child) {
            path.push(fk.child);
            branch(snapshot, fk.child, &format!("{prefix}{more}"), path, out);
            path.pop();
        }
    }
}

/// The fixes for `tables` (`schema.table` names; all when `None`).
pub fn select_fixes(report: &Report, tables: Option<&[String]>) -> Vec<Fix> {
    report
        .fixes
        .iter()
        .filter(|f| {
            tables.is_none_or(|ts| {
                ts.iter()
                    .any(|t| *t == f.table || f.table.split_once('.').is_some_and(|(_, n)| n == t))
            })
        })
        .cloned()
        .collect()
}
