//! `tombstone trash [--table T] [--since …] [--format table|json]`: the
//! operations that can be restored, newest first, those of one transaction
//! (an action of several operations) under their action.

use std::process::ExitCode;

use super::database::DatabaseArgs;
use super::fail;
use crate::ops::trash::{Action, Entry, Filter, Since, SinceError, list};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct TrashArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Only deletes on this table (`schema.table` or a name), with the
    /// other operations of their actions.
    #[arg(long)]
    table: Option<String>,
    /// Only deletes since: a duration back from now ("2h", "30m", "7d") or
    /// a timestamp ("2026-01-31 12:00+00").
    #[arg(long)]
    since: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub async fn run(args: TrashArgs) -> ExitCode {
    let (_, client) = match args.db.open().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let filter = Filter {
        table: args.table,
        since: args.since.as_deref().map(Since::parse),
    };
    if let Some(since) = &filter.since {
        match since.check(&client).await {
            Ok(()) => {}
            Err(SinceError::Ops(e)) => {
                fail(&e.to_string());
                return ExitCode::FAILURE;
            }
            Err(e) => {
                fail(&format!("--since {e}"));
                return ExitCode::from(2);
            }
        }
    }
    let actions = match list(&client, &filter).await {
        Ok(e) => e,
        Err(e) => {
            fail(&e.to_string());
            return ExitCode::FAILURE;
        }
    };
    match args.format {
        Format::Json => println!("{}", json(&actions)),
        Format::Table => print!("{}", table(&actions)),
    }
    ExitCode::SUCCESS
}

/// One object per operation, newest first, each naming its action and how
/// many operations that action has in the trash.
fn json(actions: &[Action]) -> serde_json::Value {
    serde_json::Value::Array(
        actions
            .iter()
            .flat_map(|a| {
                a.operations.iter().map(move |e| {
                    serde_json::json!({
                        "operation": e.operation,
                        "action": a.id,
                        "action_operations": a.operations.len(),
                        "table": e.table,
                        "keys": e.keys,
                        "target_rows": e.target_rows,
                        "deleted_at": e.deleted_at,
                        "actor": e.actor,
                        "login_role": e.login_role,
                        "rows": e.cascaded.iter().map(|(t, n)| (t.clone(), serde_json::json!(n)))
                            .collect::<serde_json::Map<_, _>>(),
                    })
                })
            })
            .collect(),
    )
}

/// An operation's two lines: id, time, table, actor, keys; rows per table.
fn entry_lines(e: &Entry) -> String {
    let mut key = e
        .keys
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if e.target_rows > e.keys.len() as i64 {
        key.push_str(&format!(" … ({} rows)", e.target_rows));
    }
    let rows = e
        .cascaded
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{:<36}  {:<20}  {:<20}  {:<16}  {}\n{:<36}  rows: {rows}\n",
        e.operation, e.deleted_at, e.table, e.actor, key, ""
    )
}

fn table(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "the trash is empty\n".to_string();
    }
    let mut out = format!(
        "{:<36}  {:<20}  {:<20}  {:<16}  {}\n",
        "operation", "deleted at (UTC)", "table", "actor", "key"
    );
    for a in actions {
        if a.operations.len() > 1 {
            out.push_str(&format!(
                "action {}: {} operations of one transaction, in statement order; restore them together: tombstone restore --action {}\n",
                a.id,
                a.operations.len(),
                a.id
            ));
            for e in &a.operations {
                out.push_str(&entry_lines(e));
            }
            out.push('\n');
        } else {
            for e in &a.operations {
                out.push_str(&entry_lines(e));
            }
        }
    }
    out
}
