//! `tombstone migrate [--apply]`: print, or apply in one transaction, the
//! DDL that creates the `tombstone` schema and the audit triggers of the
//! protected tables.

use std::process::ExitCode;

use super::database::{DatabaseArgs, connect};
use crate::migrate;

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Apply the DDL (in one transaction) instead of printing it.
    #[arg(long)]
    apply: bool,
}

pub async fn run(args: MigrateArgs) -> ExitCode {
    let (config, url) = match args.db.resolve() {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("tombstone: {e}");
            return ExitCode::from(2);
        }
    };
    let mut client = match connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tombstone: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = crate::protect::snapshot_options(&config);
    let snapshot = match crate::schema::load::load(&client, &options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tombstone: cannot read the schema: {e}");
            return ExitCode::FAILURE;
        }
    };
    let steps = migrate::plan(&config, Some(&snapshot));
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
            let detail = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string());
            eprintln!("tombstone: migration failed, nothing was changed: {detail}");
            ExitCode::FAILURE
        }
    }
}
