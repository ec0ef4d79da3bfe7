//! `tombstone purge [--dry-run] [--batch-size N]`: physically delete what
//! was soft-deleted longer ago than the retention (`[retention]`).

use std::process::ExitCode;

use super::database::{DatabaseArgs, os_user};
use super::fail;
use crate::ops::purge::{Options, PurgeError, purge};

#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Print how many rows are older than the retention; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rows per batch (each batch is its own transaction). Default:
    /// retention.purge_batch_size (1000).
    #[arg(long)]
    batch_size: Option<u32>,
    /// Stop after this many batches; the next run continues.
    #[arg(long)]
    max_batches: Option<u64>,
    /// Who is purging, for the audit trail. Default: your OS user.
    #[arg(long)]
    actor: Option<String>,
}

pub async fn run(args: PurgeArgs) -> ExitCode {
    let (config, client) = match args.db.open().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let snapshot = match crate::schema::load::load(
        &client,
        &crate::protect::snapshot_options(&config),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            fail(&format!(
                "cannot read the schema: {}",
                crate::pg_error::describe(&e)
            ));
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        batch_size: args
            .batch_size
            .unwrap_or(config.retention.purge_batch_size)
            .max(1),
        dry_run: args.dry_run,
        max_batches: args.max_batches,
        actor: args.actor.or_else(os_user),
    };
    match purge(&client, &snapshot, &config.retention, &options).await {
        Ok(report) => {
            let verb = if args.dry_run {
                "older than the retention (dry run, nothing deleted)"
            } else {
                "purged"
            };
            if report.tables.is_empty() {
                println!("nothing to purge");
            }
            for t in &report.tables {
                println!("{:<32} {:>8}  {verb}", t.table, t.rows);
            }
            if !args.dry_run {
                println!(
                    "{} batches, {} operation records removed",
                    report.batches, report.operations
                );
            }
            if report.stopped_early {
                println!("stopped after --max-batches; run again to continue");
            }
            ExitCode::SUCCESS
        }
        Err(PurgeError::Busy) => {
            fail("another purge is running on this database; try again later");
            ExitCode::FAILURE
        }
        Err(PurgeError::Ops(e)) => {
            fail(&e.to_string());
            ExitCode::FAILURE
        }
    }
}
