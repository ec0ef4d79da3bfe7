//! The session's temporary relations (`SessionContext::temp_relations`):
//! name resolution as PostgreSQL does it for relations — the session's
//! temporary schema first unless the path lists `pg_temp`, then
//! `pg_catalog` unless listed, then the path in order — and the statements
//! after which the session must learn them again.
//!
//! Only names that a table of the snapshot (or one of tombstone's) also has
//! matter: a temporary relation of another name changes nothing the
//! rewriter decides. So a statement may change what the rewriter must know
//! only when it creates a temporary relation of such a name (or renames one
//! to it), or removes one while the session has any (`DROP … CASCADE`,
//! `ALTER TABLE … DROP COLUMN … CASCADE`, `DROP OWNED`, `DISCARD TEMP`).
//! Such a statement counts as a `search_path` change of unknown effect:
//! the session re-reads the path and the temporary names together.

use pg_query::NodeRef;
use pg_query::protobuf::RangeVar;

use super::reads::Walker;
use super::tree::opt;
use super::{guard, is_temp_schema};
use crate::schema::{TOMBSTONE_SCHEMA, TableId};

impl<'a> Walker<'a> {
    /// The schemas an unqualified relation name is looked up in, in order.
    pub(crate) fn relation_path(&self) -> impl Iterator<Item = &str> {
        let temp_listed = self.search_path.iter().any(|s| is_temp_schema(s));
        let catalog_listed = self.search_path.iter().any(|s| s == "pg_catalog");
        (!temp_listed)
            .then_some("pg_temp")
            .into_iter()
            .chain((!catalog_listed).then_some("pg_catalog"))
            .chain(self.search_path.iter().map(String::as_str))
    }

    /// A possibly qualified relation name as PostgreSQL resolves it: a
    /// table of the snapshot, or `None` (another table, or one of the
    /// session's temporary relations).
    pub(crate) fn resolve_name(&self, schema: Option<&str>, name: &str) -> Option<TableId> {
        if let Some(s) = schema {
            return self.snap.lookup(s, name);
        }
        for s in self.relation_path() {
            if is_temp_schema(s) {
                if self.session.is_temp_relation(name) {
                    return None;
                }
                continue;
            }
            if let Some(id) = self.snap.lookup(s, name) {
                return Some(id);
            }
        }
        None
    }

    /// An unqualified `name` of tombstone's reaches schema `tombstone` in
    /// the path before a temporary relation of that name.
    pub(crate) fn reaches_tombstone(&self, name: &str) -> bool {
        self.relation_path()
            .take_while(|s| !(is_temp_schema(s) && self.session.is_temp_relation(name)))
            .any(|s| s == TOMBSTONE_SCHEMA)
    }

    /// A name the rewriter resolves to something of its own: a table of
    /// the snapshot in any schema, or one of tombstone's.
    fn is_known_name(&self, name: &str) -> bool {
        guard::is_tombstone_name(name) || self.snap.tables().iter().any(|t| t.name == name)
    }

    /// The statement may change which known names the session's temporary
    /// schema holds.
    pub(crate) fn temp_change(&self, n: NodeRef<'_>) -> bool {
        let created: Option<&RangeVar> = match n {
            NodeRef::CreateStmt(c) => c.relation.as_ref(),
            NodeRef::CreateTableAsStmt(c) => c.into.as_ref().and_then(|i| i.rel.as_ref()),
            NodeRef::SelectStmt(s) => s.into_clause.as_ref().and_then(|i| i.rel.as_ref()),
            NodeRef::ViewStmt(v) => v.view.as_ref(),
            NodeRef::CreateSeqStmt(s) => s.sequence.as_ref(),
            NodeRef::CompositeTypeStmt(c) => c.typevar.as_ref(),
            NodeRef::ExplainStmt(e) => return opt(&e.query).is_some_and(|q| self.temp_change(q)),
            // An index lives in its table's schema, maybe the temporary one.
            NodeRef::IndexStmt(i) => return self.is_known_name(&i.idxname),
            NodeRef::RenameStmt(r) if self.is_known_name(&r.newname) => return true,
            // Statements that may remove (or rename away) a temporary relation.
            NodeRef::DropStmt(_)
            | NodeRef::RenameStmt(_)
            | NodeRef::AlterTableStmt(_)
            | NodeRef::AlterObjectSchemaStmt(_)
            | NodeRef::DropOwnedStmt(_)
            | NodeRef::DiscardStmt(_) => return !self.session.temp_relations.is_empty(),
            _ => return false,
        };
        let Some(created) = created else {
            return false;
        };
        let temporary = created.relpersistence == "t" || is_temp_schema(&created.schemaname);
        temporary && self.is_known_name(&created.relname)
    }
}

/// A statement the rewriter does not parse (it names no watched table) may
/// still drop one of the session's temporary relations (`DROP TABLE other
/// CASCADE` dropping a view on it, `DROP OWNED`, a sequence owned by a
/// dropped table's column): true when the session has any and the text
/// has the word `drop`. The session then re-reads them.
pub fn may_drop_temp(sql: &[u8], session: &super::SessionContext) -> bool {
    if session.temp_relations.is_empty() {
        return false;
    }
    sql.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$' || *b >= 0x80))
        .any(|w| w.eq_ignore_ascii_case(b"drop"))
}
