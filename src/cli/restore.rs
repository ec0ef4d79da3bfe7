//! `tombstone restore <operation-id>`, `tombstone restore --table T --key
//! '{"id": 42}'` (one operation) or `tombstone restore --action <id>`
//! (every operation one transaction made): bring back what was
//! soft-deleted.

use std::process::ExitCode;

use super::database::{DatabaseArgs, operation_id, os_user};
use crate::ops::restore::{ActionOutcome, Outcome, Status, Target, restore, restore_action};

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// The operation id, or its first characters (from `tombstone trash`).
    #[arg(required_unless_present_any = ["table", "action"], conflicts_with_all = ["table", "key", "action"])]
    operation: Option<String>,
    /// The table of the row whose delete to undo (`schema.table` or a name).
    #[arg(long, requires = "key", conflicts_with = "action")]
    table: Option<String>,
    /// The row's primary key as JSON: '{"id": 42}' (every column of a
    /// composite key).
    #[arg(long, requires = "table")]
    key: Option<String>,
    /// An action id (from `tombstone trash`): restore every operation that
    /// one transaction made, parents first, in one transaction.
    #[arg(long, value_name = "ID")]
    action: Option<String>,
    /// Who is restoring, for the audit trail. Default: your OS user.
    #[arg(long)]
    actor: Option<String>,
}

/// One operation, or a whole action.
enum What {
    Operation(Target),
    Action(String),
}

pub async fn run(args: RestoreArgs) -> ExitCode {
    if let Some(action) = &args.action
        && action.parse::<u64>().is_err()
    {
        eprintln!(
            "tombstone: --action takes an action id, a number from `tombstone trash` (\"{action}\" is not one){}",
            if action.contains('-') {
                format!("; to restore operation {action} alone: tombstone restore {action}")
            } else {
                String::new()
            }
        );
        return ExitCode::from(2);
    }
    let what = match (args.action, args.operation, args.table, args.key) {
        (Some(action), _, _, _) => What::Action(action),
        (None, Some(op), _, _) => What::Operation(Target::Operation(op)),
        (None, None, Some(table), Some(key)) => What::Operation(Target::Row { table, key }),
        _ => {
            eprintln!("tombstone: pass an operation id, --table and --key, or --action");
            return ExitCode::from(2);
        }
    };
    let (_, client) = match args.db.open().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let what = match what {
        What::Operation(Target::Operation(op)) => match operation_id(&client, &op).await {
            Ok(id) => What::Operation(Target::Operation(id)),
            Err(code) => return code,
        },
        other => other,
    };
    let actor = args.actor.or_else(os_user);
    let printed = match &what {
        What::Operation(target) => restore(&client, target, actor.as_deref())
            .await
            .map(|out| operation_report(&out)),
        What::Action(action) => restore_action(&client, action, actor.as_deref())
            .await
            .map(|out| action_report(&out)),
    };
    match printed {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tombstone: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Per table, what came back.
fn tables(out: &Outcome, indent: &str) -> String {
    let mut text = String::new();
    for t in &out.tables {
        let what = if t.action == "soft_delete" {
            "undeleted"
        } else {
            "foreign keys put back"
        };
        text.push_str(&format!("{indent}{:<32} {:>8}  {what}\n", t.table, t.rows));
    }
    text
}

/// One operation's restore, and the action it belongs to when that has
/// other operations.
fn operation_report(out: &Outcome) -> String {
    let mut text = match &out.status {
        Status::Restored => format!(
            "restored operation {} ({}): {} rows\n{}",
            out.operation,
            out.table,
            out.rows,
            tables(out, "  ")
        ),
        Status::AlreadyRestored { at, by } => format!(
            "operation {} ({}) was already restored at {at} by {by}; nothing to do\n",
            out.operation, out.table
        ),
    };
    if let Some(action) = out.action.as_ref().filter(|a| a.operations > 1) {
        text.push_str(&format!(
            "operation {} is one of the {} operations of action {} (one transaction)",
            out.operation, action.operations, action.id
        ));
        if action.pending > 0 {
            text.push_str(&format!(
                "; {} still deleted: tombstone restore --action {} restores them\n",
                action.pending, action.id
            ));
        } else {
            text.push_str("; none of them is still deleted\n");
        }
    }
    text
}

/// An action's restore: its operations in the order they came back.
fn action_report(out: &ActionOutcome) -> String {
    let mut text = match &out.status {
        Status::Restored => {
            let mut text = format!(
                "restored action {}: {} operation{}, {} rows\n",
                out.action,
                out.restored.len(),
                if out.restored.len() == 1 { "" } else { "s" },
                out.rows
            );
            for op in &out.restored {
                text.push_str(&format!(
                    "  operation {} ({}): {} rows\n{}",
                    op.operation,
                    op.table,
                    op.rows,
                    tables(op, "    ")
                ));
            }
            for t in &out.app_set_null {
                text.push_str(&format!(
                    "  {:<32} {:>8}  foreign keys the application set to NULL put back\n",
                    t.table, t.rows
                ));
            }
            text
        }
        Status::AlreadyRestored { at, by } => format!(
            "action {} ({} operation{}) was already restored at {at} by {by}; nothing to do\n",
            out.action,
            out.earlier.len(),
            if out.earlier.len() == 1 { "" } else { "s" }
        ),
    };
    if out.status == Status::Restored && !out.earlier.is_empty() {
        let ops: Vec<String> = out
            .earlier
            .iter()
            .map(|(op, table)| format!("{op} ({table})"))
            .collect();
        text.push_str(&format!("  restored before: {}\n", ops.join(", ")));
    }
    text
}
