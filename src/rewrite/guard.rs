//! tombstone's own tables are read-only through the proxy (SPEC A3):
//! statements that write to a table of schema `tombstone` (INSERT, UPDATE,
//! DELETE, MERGE, COPY FROM, TRUNCATE, and DROP/ALTER/RENAME of it) are
//! refused for normal sessions. Bypass sessions may manage the operations
//! (restore runs in SQL), but nobody edits the audit trail through the
//! proxy: purge and erase run outside it. Reads are allowed for everyone.

use serde_json::Value;

use super::Role;
use super::error::RewriteError;
use super::reads::{Res, Walker};
use super::tree::{field, list, node, text};
use crate::schema::TOMBSTONE_SCHEMA;

impl<'a> Walker<'a> {
    /// The table `rv` names, if it is one of tombstone's own.
    fn tombstone_table(&self, rv: &Value) -> Option<String> {
        let schema = text(rv, "schemaname");
        let name = text(rv, "relname");
        if schema == TOMBSTONE_SCHEMA {
            return Some(name.to_string());
        }
        if !schema.is_empty() {
            return None;
        }
        match self.resolve(rv) {
            Some(id) => {
                let table = self.snap.table(id);
                (table.schema == TOMBSTONE_SCHEMA).then(|| table.name.clone())
            }
            // Not in the snapshot (yet): tombstone's own names with
            // `tombstone` in the path are taken to be tombstone's.
            None => (TOMBSTONE_TABLES.contains(&name)
                && !self.scopes.iter().any(|s| s.iter().any(|n| n == name))
                && self.reaches_tombstone(name))
            .then(|| name.to_string()),
        }
    }

    /// Refuses `what` (a write) when `rv` is a table this session must not
    /// write.
    pub fn guard_write(&self, rv: &Value, what: &str) -> Res<()> {
        let Some(name) = self.tombstone_table(rv) else {
            return Ok(());
        };
        if self.may_write(&name) {
            return Ok(());
        }
        Err(RewriteError::ReadOnly {
            what: what.to_string(),
            table: format!("{TOMBSTONE_SCHEMA}.{name}"),
        })
    }

    fn may_write(&self, name: &str) -> bool {
        match self.session.role {
            Role::Normal => false,
            Role::Bypass { .. } => !is_audit_table(name),
        }
    }

    /// `DROP`, `ALTER TABLE`, `ALTER … RENAME` of tombstone's schema or
    /// tables: refused for normal sessions (and for the audit trail).
    pub fn guard_ddl(&self, kind: &str, n: &Value) -> Res<()> {
        let what = match kind {
            "DropStmt" => "DROP",
            "AlterTableStmt" => "ALTER TABLE",
            _ => "ALTER … RENAME",
        };
        let rv = field(n, "relation");
        if !rv.is_null() {
            return self.guard_write(rv, what);
        }
        for object in list(n, "objects") {
            let names: Vec<&str> = match node(object) {
                Some(("List", l)) => list(l, "items")
                    .iter()
                    .filter_map(|s| node(s).map(|(_, s)| text(s, "sval")))
                    .collect(),
                Some(("String", s)) => vec![text(s, "sval")],
                _ => Vec::new(),
            };
            let refused = match names.as_slice() {
                // DROP SCHEMA tombstone
                [schema] => {
                    *schema == TOMBSTONE_SCHEMA && matches!(self.session.role, Role::Normal)
                }
                [schema, name, ..] => *schema == TOMBSTONE_SCHEMA && !self.may_write(name),
                _ => false,
            };
            if refused {
                return Err(RewriteError::ReadOnly {
                    what: what.to_string(),
                    table: names.join("."),
                });
            }
        }
        Ok(())
    }
}

/// One of the tables `migrate` creates in schema `tombstone`.
pub(crate) fn is_tombstone_name(name: &str) -> bool {
    TOMBSTONE_TABLES.contains(&name)
}

/// The tables `migrate` creates in schema `tombstone`.
const TOMBSTONE_TABLES: &[&str] = &["audit", "operations", "operation_rows", "audit_settings"];

/// The audit table and its partitions (`audit_default`, `audit_2026_11`, …).
fn is_audit_table(name: &str) -> bool {
    name == "audit" || (name.starts_with("audit_") && name != "audit_settings")
}
