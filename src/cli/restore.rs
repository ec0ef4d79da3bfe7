//! `tombstone restore <operation-id>` or `tombstone restore --table T --key
//! '{"id": 42}'`: bring back what one operation soft-deleted.

use std::process::ExitCode;

use super::database::{DatabaseArgs, os_user};
use crate::ops::restore::{Status, Target, restore};

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// The operation id (from `tombstone trash`).
    #[arg(required_unless_present = "table", conflicts_with_all = ["table", "key"])]
    operation: Option<String>,
    /// The table of the row whose delete to undo (`schema.table` or a name).
    #[arg(long, requires = "key")]
    table: Option<String>,
    /// The row's primary key as JSON: '{"id": 42}' (every column of a
    /// composite key).
    #[arg(long, requires = "table")]
    key: Option<String>,
    /// Who is restoring, for the audit trail. Default: your OS user.
    #[arg(long)]
    actor: Option<String>,
}

pub async fn run(args: RestoreArgs) -> ExitCode {
    let target = match (args.operation, args.table, args.key) {
        (Some(op), _, _) => Target::Operation(op),
        (None, Some(table), Some(key)) => Target::Row { table, key },
        _ => {
            eprintln!("tombstone: pass an operation id, or --table and --key");
            return ExitCode::from(2);
        }
    };
    let (_, client) = match args.db.open().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let actor = args.actor.or_else(os_user);
    match restore(&client, &target, actor.as_deref()).await {
        Ok(out) => {
            match out.status {
                Status::Restored => {
                    println!(
                        "restored operation {} ({}): {} rows",
                        out.operation, out.table, out.rows
                    );
                    for t in &out.tables {
                        let what = if t.action == "soft_delete" {
                            "undeleted"
                        } else {
                            "foreign keys put back"
                        };
                        println!("  {:<32} {:>8}  {what}", t.table, t.rows);
                    }
                }
                Status::AlreadyRestored { at, by } => {
                    println!(
                        "operation {} ({}) was already restored at {at} by {by}; nothing to do",
                        out.operation, out.table
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tombstone: {e}");
            ExitCode::FAILURE
        }
    }
}
