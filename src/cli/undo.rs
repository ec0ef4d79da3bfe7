//! `tombstone undo <transaction> [--dry-run] [--force]`: revert what one
//! transaction inserted, updated and soft-deleted, from the audit trail.

use std::process::ExitCode;

use super::database::{DatabaseArgs, os_user};
use super::fail;
use crate::ops::undo::{TableRows, undo};

#[derive(Debug, clap::Args)]
pub struct UndoArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// The transaction id (`tombstone.audit.xact_id`; an action's id in
    /// `tombstone trash`).
    transaction: String,
    /// Show what would be reverted and every conflict; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Revert rows changed again since (their later changes are lost; the
    /// audit keeps them).
    #[arg(long)]
    force: bool,
    /// Who is undoing, for the audit trail. Default: your OS user.
    #[arg(long)]
    actor: Option<String>,
}

pub async fn run(args: UndoArgs) -> ExitCode {
    let transaction = args.transaction.trim();
    if transaction.is_empty() || !transaction.bytes().all(|b| b.is_ascii_digit()) {
        fail(&format!(
            "{transaction:?} is not a transaction id (a number, as tombstone.audit.xact_id and tombstone trash show it)"
        ));
        return ExitCode::from(2);
    }
    let (_, client) = match args.db.open().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let actor = args.actor.or_else(os_user);
    match undo(
        &client,
        transaction,
        args.force,
        args.dry_run,
        actor.as_deref(),
    )
    .await
    {
        Ok(out) => {
            let verb = if out.status == "preview" {
                "would undo"
            } else {
                "undid"
            };
            println!("{verb} transaction {}", out.transaction);
            if out.soft_deletes {
                println!("  its soft deletes: restored as action {}", out.transaction);
            }
            print_rows(&out.updates, "rows set back to their values before it");
            print_rows(&out.inserts, "rows it inserted, sent to the trash");
            if out.conflict_count > 0 {
                println!(
                    "{} conflict{}{}:",
                    out.conflict_count,
                    if out.conflict_count == 1 { "" } else { "s" },
                    if out.status == "preview" {
                        " (undo refuses them without --force)"
                    } else {
                        " (reverted anyway: --force)"
                    }
                );
                for c in &out.conflicts {
                    println!("  {c}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            fail(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

fn print_rows(rows: &[TableRows], what: &str) {
    for t in rows {
        println!("  {:<32} {:>8}  {what}", t.table, t.rows);
    }
}
