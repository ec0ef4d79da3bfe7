//! `SET CONSTRAINTS name [, …] IMMEDIATE | DEFERRED` (SPEC W8).
//!
//! A foreign key whose parent is protected has a second check, tombstone's
//! constraint trigger on the child (`migrate::fk_checks`), with the key's
//! own timing. Its name cannot be the key's (a constraint trigger is a
//! constraint, and the child table holds the key's name already), so
//! `SET CONSTRAINTS <key>` alone would leave it deferred. The rewrite adds
//! the trigger's name beside the key's, schema-qualified, for every key
//! the statement names:
//!
//! `SET CONSTRAINTS c_p_fkey IMMEDIATE` →
//! `SET CONSTRAINTS "public"."tombstone_fk_c_p_fkey", c_p_fkey IMMEDIATE`
//!
//! A name without a schema means what PostgreSQL makes of it: the first
//! schema of the search path that has a constraint of that name (here: a
//! foreign key of the snapshot of that name), and every constraint of
//! that name in that schema. `ALL` reaches the triggers by itself. With a
//! search path the session cannot know, unqualified names get nothing
//! added (README Limits).

use pg_query::NodeRef;
use pg_query::protobuf as pb;

use super::edits::quote_ident;
use super::is_temp_schema;
use super::reads::{Res, Walker};
use super::tree::nodes;

impl<'a> Walker<'a> {
    pub(super) fn constraints_set(&mut self, s: &pb::ConstraintsSetStmt) -> Res<()> {
        let mut added: Vec<String> = Vec::new();
        let mut first: Option<usize> = None;
        for n in nodes(&s.constraints) {
            let NodeRef::RangeVar(rv) = n else { continue };
            if first.is_none() {
                first = usize::try_from(rv.location).ok();
            }
            let name = rv.relname.as_str();
            let schema = if rv.schemaname.is_empty() {
                if self.session.search_path_unknown {
                    continue;
                }
                match self.constraint_schema(name) {
                    Some(s) => s,
                    None => continue,
                }
            } else {
                rv.schemaname.clone()
            };
            for fk in self.snap.foreign_keys() {
                let Some(trigger) = &fk.child_check else {
                    continue;
                };
                if fk.name != name
                    || !fk.timing.is_deferrable()
                    || self.snap.table(fk.child).schema != schema
                {
                    continue;
                }
                let text = format!("{}.{}", quote_ident(&schema), quote_ident(trigger));
                if !added.contains(&text) {
                    added.push(text);
                }
            }
        }
        if let (Some(at), false) = (first, added.is_empty()) {
            let mut text = added.join(", ");
            text.push_str(", ");
            self.edits.insert(at, text);
        }
        Ok(())
    }

    /// The schema an unqualified constraint name resolves to: the first of
    /// the search path holding a foreign key of that name.
    fn constraint_schema(&self, name: &str) -> Option<String> {
        self.relation_path()
            .filter(|s| !is_temp_schema(s))
            .find(|s| {
                self.snap.foreign_keys().iter().any(|fk| {
                    fk.in_catalog && fk.name == name && self.snap.table(fk.child).schema == *s
                })
            })
            .map(str::to_string)
    }
}

/// Is `name` one of the child-side check triggers `snap` knows (what the
/// check of the output allows the rewrite to have added)?
pub(super) fn is_added_check(snap: &crate::schema::SchemaSnapshot, rv: &pb::RangeVar) -> bool {
    snap.foreign_keys().iter().any(|fk| {
        fk.child_check.as_deref() == Some(rv.relname.as_str())
            && snap.table(fk.child).schema == rv.schemaname
    })
}
