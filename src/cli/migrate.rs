//! `tombstone migrate [--apply]`: print, or apply in one transaction, the
//! DDL that creates the `tombstone` schema.

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
    let config = match &args.db.config {
        Some(path) => match crate::config::Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tombstone: {e}");
                return ExitCode::from(2);
            }
        },
        None => crate::config::Config::default(),
    };
    let steps = migrate::plan(&config);
    if !args.apply {
        print!("{}", migrate::script(&steps));
        return ExitCode::SUCCESS;
    }
    let url = match args.db.resolve() {
        Ok((_, url)) => url,
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
