//! tombstone's own tables are read-only through the proxy (SPEC A3):
//! statements that write to a table of schema `tombstone` (INSERT, UPDATE,
//! DELETE, MERGE, COPY FROM, TRUNCATE, and DROP/ALTER/RENAME of it) are
//! refused for normal sessions. Bypass sessions may manage the operations
//! (restore runs in SQL), but nobody edits the audit trail through the
//! proxy: purge and erase run outside it. Reads are allowed for everyone.

use pg_query::NodeRef;
use pg_query::protobuf::{Node, RangeVar};

use super::Role;
use super::error::RewriteError;
use super::reads::{Res, Walker};
use super::tree::{node, strings};
use crate::schema::TOMBSTONE_SCHEMA;

impl<'a> Walker<'a> {
    /// The table `rv` names, if it is one of tombstone's own.
    fn tombstone_table(&self, rv: &RangeVar) -> Option<String> {
        let schema = rv.schemaname.as_str();
        let name = rv.relname.as_str();
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
    pub fn guard_write(&self, rv: Option<&RangeVar>, what: &str) -> Res<()> {
        let Some(name) = rv.and_then(|rv| self.tombstone_table(rv)) else {
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
    pub fn guard_ddl(&self, n: NodeRef<'_>) -> Res<()> {
        let (what, relation, objects): (&str, Option<&RangeVar>, &[Node]) = match n {
            NodeRef::DropStmt(d) => ("DROP", None, &d.objects),
            NodeRef::AlterTableStmt(a) => ("ALTER TABLE", a.relation.as_ref(), &[]),
            NodeRef::RenameStmt(r) => ("ALTER … RENAME", r.relation.as_ref(), &[]),
            _ => return Ok(()),
        };
        if relation.is_some() {
            return self.guard_write(relation, what);
        }
        let renamed = match n {
            NodeRef::RenameStmt(r) => r.object.as_deref().map(std::slice::from_ref),
            _ => None,
        };
        for object in objects.iter().chain(renamed.unwrap_or_default()) {
            let names: Vec<&str> = match node(object) {
                Some(NodeRef::List(l)) => strings(&l.items),
                Some(NodeRef::String(s)) => vec![s.sval.as_str()],
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
