//! `tombstone migrate [--apply] [--fix] [--tables …]`: print, or apply in
//! one transaction, the DDL that creates the `tombstone` schema, the audit
//! and guard triggers of the protected tables and, with `--fix` (or
//! `--tables`), the changes to the application's tables that `doctor`
//! reports (soft-delete columns, partial unique indexes, FK indexes).

use std::process::ExitCode;

use super::database::DatabaseArgs;
use super::fail;
use crate::migrate::{self, Step};
use crate::ops::doctor::{Fix, examine, select_fixes};
use crate::pg_error::describe;
use crate::schema::{Column, SchemaSnapshot, load};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Apply the DDL (in one transaction) instead of printing it.
    #[arg(long)]
    apply: bool,
    /// Also fix the application's tables as `tombstone doctor` reports.
    #[arg(long)]
    fix: bool,
    /// Fix only these tables (`schema.table` or a name; implies --fix).
    #[arg(long, value_delimiter = ',')]
    tables: Vec<String>,
}

pub async fn run(args: MigrateArgs) -> ExitCode {
    let (config, mut client) = match args.db.open().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let fix = args.fix || !args.tables.is_empty();
    let only = (!args.tables.is_empty()).then_some(args.tables.as_slice());
    let steps = match planned(&client, &config, fix, only).await {
        Ok(Planned { steps, fixes_left }) => {
            if fixes_left > 0 {
                fail(&format!(
                    "{fixes_left} schema fixes not included (see tombstone doctor); add --fix to include them"
                ));
            }
            steps
        }
        Err(e) => {
            fail(&e);
            return ExitCode::FAILURE;
        }
    };
    if !args.apply {
        print!("{}", migrate::script(&steps));
        return ExitCode::SUCCESS;
    }
    match migrate::apply(&mut client, &steps).await {
        Ok(()) => {
            for step in &steps {
                println!("applied: {}", step.name);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            fail(&format!(
                "migration failed, nothing was changed: {}",
                describe(&e)
            ));
            ExitCode::FAILURE
        }
    }
}

/// What `migrate` would apply to the database `client` is connected to.
pub(super) struct Planned {
    pub steps: Vec<Step>,
    /// How many of doctor's fixes were left out (without `fix`).
    pub fixes_left: usize,
}

/// The steps `migrate` prints or applies: the tombstone schema and the
/// triggers of the protected tables and, with `fix`, doctor's fixes (of
/// the tables in `only`, when given). `tombstone demo` migrates with it.
pub(super) async fn planned(
    client: &tokio_postgres::Client,
    config: &crate::config::Config,
    fix: bool,
    only: Option<&[String]>,
) -> Result<Planned, String> {
    let options = crate::protect::snapshot_options(config);
    let catalog = load::load_catalog(client)
        .await
        .map_err(|e| format!("cannot read the schema: {}", describe(&e)))?;
    let snapshot = SchemaSnapshot::build(catalog.clone(), &options);
    let mut fixes_left = 0;
    let fixes: Vec<Fix> = match examine(client, config, &snapshot).await {
        Ok(report) if fix => select_fixes(&report, only),
        Ok(report) => {
            fixes_left = report.fixes.len();
            Vec::new()
        }
        Err(e) => return Err(format!("cannot read the catalog: {}", describe(&e))),
    };
    // The triggers are planned for the tables as they will be: a table
    // getting its soft-delete column is protected from this migration on.
    let mut after = catalog;
    for fix in &fixes {
        let Some(column) = &fix.adds_column else {
            continue;
        };
        let Some((schema, name)) = fix.table.split_once('.') else {
            continue;
        };
        for t in after.tables.iter_mut() {
            if t.schema == schema && t.name == name && !t.columns.iter().any(|c| &c.name == column)
            {
                t.columns.push(Column {
                    name: column.clone(),
                    type_sql: "timestamp with time zone".to_string(),
                    default_only: false,
                });
            }
        }
    }
    let after = SchemaSnapshot::build(after, &options);
    let mut steps = migrate::plan(config, Some(&after));
    if !fixes.is_empty() {
        let sql: Vec<String> = fixes
            .iter()
            .map(|f| format!("-- {}\n{}", f.table, f.sql))
            .collect();
        let at = steps
            .iter()
            .position(|s| s.name == migrate::AUDIT_TRIGGERS_STEP)
            .unwrap_or(steps.len());
        steps.insert(
            at,
            Step {
                name: "schema fixes (tombstone doctor)",
                sql: sql.join("\n"),
            },
        );
    }
    Ok(Planned { steps, fixes_left })
}
