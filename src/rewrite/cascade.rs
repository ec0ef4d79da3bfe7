//! The cascade plan of a soft delete: which tables a DELETE on `target`
//! reaches through the snapshot's foreign keys, in which order, and which
//! edges set columns to NULL/DEFAULT or must be checked (RESTRICT/NO ACTION).

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::error::RewriteError;
use crate::schema::{FkAction, SchemaSnapshot, TableId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CascadePlan {
    pub target: TableId,
    /// Protected tables soft-deleted by cascade, parents before children
    /// (the target excluded).
    pub tables: Vec<TableId>,
    /// Foreign keys (indices into `SchemaSnapshot::foreign_keys`) along
    /// which rows are soft-deleted.
    pub cascade: Vec<usize>,
    /// `ON DELETE CASCADE` edges from a deleted table to itself (trees such
    /// as `parent_id`): followed recursively.
    pub self_loops: Vec<usize>,
    /// `ON DELETE SET NULL` / `SET DEFAULT` edges from a deleted table.
    pub set_null: Vec<usize>,
    /// `RESTRICT` / `NO ACTION` edges from a deleted table.
    pub restrict: Vec<usize>,
}

impl CascadePlan {
    /// Build the plan, or refuse shapes the rewrite does not support yet.
    pub fn build(snap: &SchemaSnapshot, target: TableId) -> Result<CascadePlan, RewriteError> {
        let fks = snap.foreign_keys();
        let mut in_set = BTreeSet::from([target]);
        let mut queue = VecDeque::from([target]);
        while let Some(t) = queue.pop_front() {
            for fk in fks.iter().filter(|fk| fk.parent == t) {
                if fk.on_delete == FkAction::Cascade
                    && snap.table(fk.child).is_protected()
                    && in_set.insert(fk.child)
                {
                    queue.push_back(fk.child);
                }
            }
        }
        let mut cascade = Vec::new();
        let mut self_loops = Vec::new();
        let mut set_null = Vec::new();
        let mut restrict = Vec::new();
        for (i, fk) in fks.iter().enumerate() {
            if !in_set.contains(&fk.parent) {
                continue;
            }
            match fk.on_delete {
                FkAction::Cascade if fk.child == fk.parent => self_loops.push(i),
                FkAction::Cascade if snap.table(fk.child).is_protected() => cascade.push(i),
                FkAction::Cascade => {}
                FkAction::SetNull | FkAction::SetDefault => set_null.push(i),
                FkAction::Restrict | FkAction::NoAction => restrict.push(i),
            }
        }
        // Kahn's algorithm over cascade edges; a cycle (or self-reference)
        // leaves tables unsorted.
        let mut indegree: HashMap<TableId, usize> = in_set.iter().map(|&t| (t, 0)).collect();
        for &i in &cascade {
            *indegree.entry(fks[i].child).or_insert(0) += 1;
        }
        let mut ready: VecDeque<TableId> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(t, _)| *t)
            .collect();
        let mut order = Vec::new();
        while let Some(t) = ready.pop_front() {
            order.push(t);
            for &i in &cascade {
                if fks[i].parent == t
                    && let Some(d) = indegree.get_mut(&fks[i].child)
                {
                    *d -= 1;
                    if *d == 0 {
                        ready.push_back(fks[i].child);
                    }
                }
            }
        }
        let name = |t: TableId| format!("{}.{}", snap.table(t).schema, snap.table(t).name);
        if order.len() != in_set.len() || order.first() != Some(&target) {
            return Err(RewriteError::Unsupported {
                what: format!(
                    "DELETE on {}: cyclic ON DELETE CASCADE foreign keys",
                    name(target)
                ),
            });
        }
        let mut null_children = BTreeSet::new();
        for &i in &set_null {
            let child = fks[i].child;
            if in_set.contains(&child) || !null_children.insert(child) {
                return Err(RewriteError::Unsupported {
                    what: format!(
                        "DELETE on {}: table {} would be both set null and soft-deleted (or set null twice)",
                        name(target),
                        name(child)
                    ),
                });
            }
        }
        order.remove(0);
        Ok(CascadePlan {
            target,
            tables: order,
            cascade,
            self_loops,
            set_null,
            restrict,
        })
    }

    /// Self-referencing cascade edges of `table`.
    pub fn self_edges(&self, snap: &SchemaSnapshot, table: TableId) -> Vec<usize> {
        self.self_loops
            .iter()
            .copied()
            .filter(|&i| snap.foreign_keys()[i].child == table)
            .collect()
    }

    /// Columns of `table` that later steps read: its primary key and every
    /// parent column of an edge leaving it.
    pub fn needed_columns(&self, snap: &SchemaSnapshot, table: TableId) -> Vec<String> {
        let mut cols: Vec<String> = snap.table(table).primary_key.clone();
        for &i in self
            .cascade
            .iter()
            .chain(&self.set_null)
            .chain(&self.restrict)
        {
            let fk = &snap.foreign_keys()[i];
            if fk.parent == table {
                for c in &fk.parent_columns {
                    if !cols.contains(c) {
                        cols.push(c.clone());
                    }
                }
            }
        }
        cols
    }
}
