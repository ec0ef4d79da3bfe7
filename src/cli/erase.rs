//! `tombstone erase --table T --key '{"id": 42}'`: right to erasure — the
//! record and its cascade are physically deleted now, and their audit rows
//! lose their old/new values.

use std::process::ExitCode;

use super::database::{DatabaseArgs, os_user};
use super::fail;
use crate::ops::erase::erase;

#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// `schema.table` (or a name one protected table has).
    #[arg(long)]
    table: String,
    /// The primary key as JSON: '{"id": 42}'.
    #[arg(long)]
    key: String,
    /// Who is erasing, for the audit trail. Default: your OS user.
    #[arg(long)]
    actor: Option<String>,
}

pub async fn run(args: EraseArgs) -> ExitCode {
    let (_, client) = match args.db.open().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let actor = args.actor.or_else(os_user);
    match erase(&client, &args.table, &args.key, actor.as_deref()).await {
        Ok(out) => {
            println!("erased {} {}", out.table, args.key);
            for (table, n) in &out.rows {
                println!("  {table:<32} {n:>8}  rows deleted, audit values redacted");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            fail(&e.to_string());
            ExitCode::FAILURE
        }
    }
}
