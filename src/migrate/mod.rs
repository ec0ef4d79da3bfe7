//! The `tombstone` schema: what `tombstone migrate` installs and what
//! `serve` checks for at startup.
//!
//! Every step is idempotent (`IF NOT EXISTS`, `CREATE OR REPLACE`), so
//! running the migration twice changes nothing; `apply` runs all steps in
//! one transaction. The plan starts with the version check and upgrade
//! (`version.rs`) and ends by recording the protected tables for the DDL
//! guard (`ddl_guard.rs`) and the schema version.

mod actions;
mod audit;
mod ddl_guard;
pub mod edges;
pub mod fk_checks;
mod guard;
pub mod identity;
mod notify;
mod operations;
mod ops;
mod preview;
pub mod privileges;
pub mod rls;
mod support;
mod triggers;
mod undo;
pub mod version;

pub use actions::ACTIONS_DDL;
pub use audit::AUDIT_DDL;
pub use ddl_guard::{DDL_GUARD_DDL, protected_tables_registry};
pub use fk_checks::fk_checks;
pub use guard::{GUARD_DDL, guard_triggers};
pub use ops::OPS_DDL;
pub use preview::PREVIEW_DDL;
pub use support::{REFUSE_DDL, schema_change_trigger};
pub use triggers::{AUDIT_FUNCTIONS_DDL, audit_triggers};
pub use version::SCHEMA_VERSION;

use crate::config::Config;
use crate::schema::SchemaSnapshot;

/// The name of the step with the audit triggers (schema fixes go before it).
pub const AUDIT_TRIGGERS_STEP: &str = "audit triggers on protected tables";

/// The name of the first step: the advisory lock, the version check, and
/// the drops of an older version's objects.
pub const UPGRADE_STEP: &str = "lock, version check, upgrade of an older tombstone schema";
/// The name of the step creating the edge set (`tombstone.edges`).
pub const EDGES_STEP: &str = "the FK graph (tombstone.edge_rules, the view tombstone.edges)";
/// The name of the step with the foreign-key constraint triggers.
pub const FK_CHECKS_STEP: &str = "foreign keys to soft-deleted parents (constraint triggers tombstone_fk_*, tombstone.fk_child_*, tombstone.fk_parent_*)";
/// The name of the row-level security step.
pub const RLS_STEP: &str = "row-level security on protected tables (policies tombstone_*)";

/// One named piece of DDL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub sql: String,
}

/// The steps that create or update the `tombstone` schema; with a
/// snapshot, also the audit triggers of its protected tables.
pub fn plan(config: &Config, snapshot: Option<&SchemaSnapshot>) -> Vec<Step> {
    let mut steps = vec![
        Step {
            name: UPGRADE_STEP,
            sql: version::upgrade_step(),
        },
        Step {
            name: EDGES_STEP,
            sql: edges::EDGES_DDL.to_string(),
        },
        Step {
            name: "operations (tombstone.operations, tombstone.operation_rows, tombstone.fk_violation)",
            sql: crate::schema::ddl::REWRITER_DDL.to_string(),
        },
        Step {
            name: "change notifications (tombstone.settings, tombstone.notify_change)",
            sql: notify::NOTIFY_DDL.to_string(),
        },
        Step {
            name: "operation recording (tombstone.operations.stmt_at, tombstone.statement_operation)",
            sql: operations::OPERATIONS_DDL.to_string(),
        },
        Step {
            name: "restore and trash (tombstone.restore, tombstone.restore_row, tombstone.restore_operation, tombstone.restore_blocker, tombstone.trash, tombstone.bypass_roles)",
            sql: OPS_DDL.to_string(),
        },
        Step {
            name: "actions: restore and trash by transaction (tombstone.restore_action, tombstone.trash_actions)",
            sql: ACTIONS_DDL.to_string(),
        },
        Step {
            name: "restore previews and conflicts (tombstone.restore_preview, tombstone.restore_row_preview, tombstone.restore_action_preview, tombstone.restore_unique_conflicts, tombstone.restore_blockers)",
            sql: PREVIEW_DDL.to_string(),
        },
        Step {
            name: "audit trail (tombstone.audit, monthly partitions)",
            sql: AUDIT_DDL.to_string(),
        },
        Step {
            name: "undo of a transaction from the audit trail (tombstone.undo, the audit_xact index)",
            sql: undo::UNDO_DDL.to_string(),
        },
        Step {
            name: "client address (tombstone.proxy_key, tombstone.client_addr, the audit default)",
            sql: identity::IDENTITY_DDL.to_string(),
        },
        Step {
            name: "refusal function (tombstone.refuse)",
            sql: REFUSE_DDL.to_string(),
        },
        Step {
            name: "schema-change event trigger",
            sql: schema_change_trigger(&config.database.notify_channel),
        },
        Step {
            name: "audit functions (tombstone.current_actor, tombstone.audit_settings, tombstone.audit_operation_rows)",
            sql: AUDIT_FUNCTIONS_DDL.to_string(),
        },
        Step {
            name: "hard-delete guard, purge and erase (tombstone.guard_hard_delete, tombstone.archive, tombstone.purge_batch, tombstone.erase)",
            sql: GUARD_DDL.to_string(),
        },
    ];
    if let Some(snapshot) = snapshot {
        steps.push(Step {
            name: "rules.toml's cascade edges (tombstone.edge_rules)",
            sql: edges::rules_step(snapshot),
        });
        steps.push(Step {
            name: AUDIT_TRIGGERS_STEP,
            sql: audit_triggers(snapshot),
        });
        steps.push(Step {
            name: "operation recording on unprotected SET NULL / SET DEFAULT children (tombstone_operation_rows)",
            sql: operations::unprotected_children(snapshot),
        });
        steps.push(Step {
            name: "hard-delete guard triggers on protected tables",
            sql: guard_triggers(snapshot),
        });
        steps.push(Step {
            name: FK_CHECKS_STEP,
            sql: fk_checks(snapshot),
        });
    }
    steps.push(Step {
        name: "row-level security functions (tombstone.sees_all, tombstone.revive_mark, tombstone.reviving)",
        sql: rls::RLS_FUNCTIONS_DDL.to_string(),
    });
    if let Some(snapshot) = snapshot {
        steps.push(Step {
            name: RLS_STEP,
            sql: rls::policies(snapshot),
        });
    }
    steps.push(Step {
        name: "DDL guard (tombstone.protected_tables, event triggers tombstone_ddl_guard, tombstone_ddl_guard_drop)",
        sql: DDL_GUARD_DDL.to_string(),
    });
    steps.push(Step {
        name: "protected tables as installed (tombstone.protected_tables)",
        sql: protected_tables_registry(snapshot),
    });
    steps.push(Step {
        name: "privileges (no rights on tombstone's tables for normal roles, fixed search_path, SECURITY DEFINER audit triggers)",
        sql: privileges::privileges_step(),
    });
    steps.push(Step {
        name: "schema version (tombstone.schema_version)",
        sql: version::record_step(),
    });
    steps
}

/// The whole plan as one SQL script, as `migrate` prints it.
pub fn script(steps: &[Step]) -> String {
    let mut out = String::from("BEGIN;\n");
    for step in steps {
        out.push_str(&format!("\n-- {}\n{}\n", step.name, step.sql.trim()));
    }
    out.push_str("\nCOMMIT;\n");
    out
}

/// Runs every step in one transaction.
pub async fn apply(
    client: &mut tokio_postgres::Client,
    steps: &[Step],
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    for step in steps {
        tx.batch_execute(&step.sql).await?;
    }
    tx.commit().await
}

/// Objects `serve` cannot work without; each missing one is named.
pub async fn missing_objects(
    client: &tokio_postgres::Client,
) -> Result<Vec<&'static str>, tokio_postgres::Error> {
    const REQUIRED: [(&str, &str); 11] = [
        (
            "tombstone.edges",
            "SELECT to_regclass('tombstone.edges') IS NOT NULL",
        ),
        (
            "tombstone.audit_settings",
            "SELECT to_regclass('tombstone.audit_settings') IS NOT NULL",
        ),
        (
            "tombstone.current_actor()",
            "SELECT to_regprocedure('tombstone.current_actor()') IS NOT NULL",
        ),
        (
            "tombstone.operations",
            "SELECT to_regclass('tombstone.operations') IS NOT NULL",
        ),
        (
            "tombstone.operation_rows",
            "SELECT to_regclass('tombstone.operation_rows') IS NOT NULL",
        ),
        (
            "tombstone.audit",
            "SELECT to_regclass('tombstone.audit') IS NOT NULL",
        ),
        (
            "tombstone.refuse(text, text, text)",
            "SELECT to_regprocedure('tombstone.refuse(text,text,text)') IS NOT NULL",
        ),
        (
            "tombstone.bypass_roles",
            "SELECT to_regclass('tombstone.bypass_roles') IS NOT NULL",
        ),
        (
            "tombstone.restore(uuid, text)",
            "SELECT to_regprocedure('tombstone.restore(uuid,text)') IS NOT NULL",
        ),
        (
            "tombstone.purge_batch(regclass, interval, integer, text, text, boolean)",
            "SELECT to_regprocedure('tombstone.purge_batch(regclass,interval,integer,text,text,boolean)') IS NOT NULL",
        ),
        (
            "tombstone.ensure_audit_partitions(integer)",
            "SELECT to_regprocedure('tombstone.ensure_audit_partitions(integer)') IS NOT NULL",
        ),
    ];
    let mut missing = Vec::new();
    for (name, check) in REQUIRED {
        let present: bool = client.query_one(check, &[]).await?.get(0);
        if !present {
            missing.push(name);
        }
    }
    Ok(missing)
}
