//! `tombstone restore <operation-id>`, `tombstone restore --table T --key
//! '{"id": 42}'` (one operation) or `tombstone restore --action <id>`
//! (every operation one transaction made): bring back what was
//! soft-deleted. With `--dry-run`, say what would come back and every
//! conflict that would stop it, changing nothing.

use std::process::ExitCode;

use super::database::{DatabaseArgs, operation_id, os_user};
use crate::ops::restore::{
    ActionOutcome, ActionPreview, Conflict, Outcome, Preview, PreviewStatus, Status, Target,
    Unchecked, preview, preview_action, restore, restore_action,
};
use crate::ops::{OpsError, TableCount};

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
    /// Change nothing: list per table what would come back and every
    /// conflict (a unique key a live row holds now, a parent still
    /// deleted by another operation). Exit status 1 when there is one.
    #[arg(long)]
    dry_run: bool,
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
    if args.dry_run {
        let printed = match &what {
            What::Operation(target) => preview(&client, target).await.map(|p| {
                let clean = p.conflicts.is_empty();
                (operation_preview(&p), clean)
            }),
            What::Action(action) => preview_action(&client, action).await.map(|p| {
                let clean = p.conflicts.is_empty();
                (action_preview(&p), clean)
            }),
        };
        return match printed {
            Ok((text, clean)) => {
                print!("{text}");
                if clean {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => refused(&e),
        };
    }
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
        Err(e) => refused(&e),
    }
}

/// Prints why it did not happen and exits 1.
fn refused(e: &OpsError) -> ExitCode {
    super::fail(&e.to_string());
    ExitCode::FAILURE
}

/// Per table, what came back.
fn tables(out: &Outcome, indent: &str) -> String {
    table_lines(&out.tables, indent)
}

/// One line per table: rows undeleted, or rows whose foreign keys were
/// put back.
fn table_lines(counts: &[TableCount], indent: &str) -> String {
    let mut text = String::new();
    for t in counts {
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

/// Conflicts printed in full; the rest are counted (the SQL preview lists
/// every one).
const SHOWN_CONFLICTS: usize = 50;

/// One line per conflict, then the unique indexes not checked.
fn conflict_lines(conflicts: &[Conflict], unchecked: &[Unchecked], sql: &str) -> String {
    let mut text = String::new();
    if !conflicts.is_empty() {
        text.push_str(&format!(
            "{} conflict{}: the restore would fail\n",
            conflicts.len(),
            if conflicts.len() == 1 { "" } else { "s" }
        ));
    }
    for c in conflicts.iter().take(SHOWN_CONFLICTS) {
        let line = match c {
            Conflict::Unique {
                table,
                key,
                index,
                index_key,
                holder,
                holder_restored: false,
            } => format!(
                "{table} {key}: unique key {index_key} of {index} is held by live row {holder} (delete it or change its key first)"
            ),
            Conflict::Unique {
                table,
                key,
                index,
                index_key,
                holder,
                holder_restored: true,
            } => format!(
                "{table} {key}: unique key {index_key} of {index} is also the key of {holder}, which comes back too (change one of their keys first)"
            ),
            Conflict::ParentDeleted {
                table,
                key,
                parent_table,
                parent_key,
                deleted_by: None,
                ..
            } => format!(
                "{table} {key}: its parent {parent_table} {parent_key} is still deleted (not by a recorded operation; restore it by hand first)"
            ),
            Conflict::ParentDeleted {
                table,
                key,
                parent_table,
                parent_key,
                deleted_by: Some(op),
                deleted_by_action,
                deleted_by_action_operations,
                same_action,
                ..
            } => {
                let action = deleted_by_action.as_deref().unwrap_or_default();
                let then = if *same_action {
                    format!("of the same action {action}: tombstone restore --action {action}")
                } else if *deleted_by_action_operations > 1 {
                    format!(
                        "of action {action}: restore it first, tombstone restore --action {action}"
                    )
                } else {
                    format!("restore it first: tombstone restore {op}")
                };
                format!(
                    "{table} {key}: its parent {parent_table} {parent_key} is still deleted by operation {op} ({then})"
                )
            }
        };
        text.push_str(&format!("  {line}\n"));
    }
    if conflicts.len() > SHOWN_CONFLICTS {
        text.push_str(&format!(
            "  ... and {} more ({sql} lists them all)\n",
            conflicts.len() - SHOWN_CONFLICTS
        ));
    }
    for u in unchecked {
        text.push_str(&format!(
            "not checked: unique index {} of {} ({}); PostgreSQL's own check still applies\n",
            u.index, u.table, u.reason
        ));
    }
    text
}

/// One operation's preview.
fn operation_preview(p: &Preview) -> String {
    let op = &p.restores;
    let mut text = match &p.status {
        PreviewStatus::AlreadyRestored { at, by } => {
            return format!(
                "operation {} ({}) was already restored at {at} by {by}; nothing to do\n",
                op.operation, op.table
            );
        }
        PreviewStatus::Ready => format!(
            "dry run: restoring operation {} ({}) would bring back {} rows, no conflicts\n",
            op.operation, op.table, op.rows
        ),
        PreviewStatus::Conflicts => format!(
            "dry run: restoring operation {} ({}) would bring back {} rows, but it would fail\n",
            op.operation, op.table, op.rows
        ),
    };
    text.push_str(&table_lines(&op.tables, "  "));
    text.push_str(&conflict_lines(
        &p.conflicts,
        &p.unchecked,
        &format!("SELECT tombstone.restore_preview('{}')", op.operation),
    ));
    if let Some(action) = p.action.as_ref().filter(|a| a.operations > 1) {
        text.push_str(&format!(
            "operation {} is one of the {} operations of action {} ({} still deleted): tombstone restore --action {} --dry-run previews them all\n",
            op.operation, action.operations, action.id, action.pending, action.id
        ));
    }
    text.push_str("nothing was changed\n");
    text
}

/// An action's preview: its operations in the order they would come back.
fn action_preview(p: &ActionPreview) -> String {
    let n = p.operations.len();
    let mut text = match &p.status {
        PreviewStatus::AlreadyRestored { at, by } => {
            return format!(
                "action {} ({} operation{}) was already restored at {at} by {by}; nothing to do\n",
                p.action,
                p.earlier.len(),
                if p.earlier.len() == 1 { "" } else { "s" }
            );
        }
        PreviewStatus::Ready => format!(
            "dry run: restoring action {} would bring back {n} operation{}, {} rows, no conflicts\n",
            p.action,
            if n == 1 { "" } else { "s" },
            p.rows
        ),
        PreviewStatus::Conflicts => format!(
            "dry run: restoring action {} would bring back {n} operation{}, {} rows, but it would fail\n",
            p.action,
            if n == 1 { "" } else { "s" },
            p.rows
        ),
    };
    for op in &p.operations {
        text.push_str(&format!(
            "  operation {} ({}): {} rows\n{}",
            op.operation,
            op.table,
            op.rows,
            table_lines(&op.tables, "    ")
        ));
    }
    for t in &p.app_set_null {
        text.push_str(&format!(
            "  {:<32} {:>8}  foreign keys the application set to NULL put back\n",
            t.table, t.rows
        ));
    }
    if !p.earlier.is_empty() {
        let ops: Vec<String> = p
            .earlier
            .iter()
            .map(|(op, table)| format!("{op} ({table})"))
            .collect();
        text.push_str(&format!("  restored before: {}\n", ops.join(", ")));
    }
    text.push_str(&conflict_lines(
        &p.conflicts,
        &p.unchecked,
        &format!("SELECT tombstone.restore_action_preview('{}')", p.action),
    ));
    text.push_str("nothing was changed\n");
    text
}
