//! The cascade plan of a soft delete: which tables a DELETE on `target`
//! reaches through the snapshot's foreign keys, in which order, and which
//! edges set columns to NULL/DEFAULT or must be checked (RESTRICT/NO ACTION);
//! and the [`Step`]s of the statement that carries it out, which
//! `cascade_sql` renders one by one.

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
                // A deferrable NO ACTION key is checked by tombstone's
                // constraint trigger on the parent, when PostgreSQL would
                // check it (SPEC W8), not here.
                FkAction::NoAction if fk.restrict_in_database() => {}
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

    /// The statement's steps, in the order of its CTEs: the target, its
    /// descendants through self-references, one soft delete per cascaded
    /// table (parents first), the SET NULL / SET DEFAULT updates, the
    /// RESTRICT / NO ACTION checks, and the operation hint.
    pub fn steps(&self, snap: &SchemaSnapshot) -> Result<Vec<Step>, RewriteError> {
        let fks = snap.foreign_keys();
        let target_tree = !self.self_edges(snap, self.target).is_empty();
        let without_key = |t: TableId| RewriteError::Unsupported {
            what: format!(
                "self-referencing ON DELETE CASCADE on table {}.{} without primary key",
                snap.table(t).schema,
                snap.table(t).name
            ),
        };
        // The rows of `t` this statement soft-deletes.
        let rows_of = |t: TableId| -> Result<Rows, RewriteError> {
            if t == self.target {
                return Ok(if target_tree {
                    Rows::TargetTree
                } else {
                    Rows::Target
                });
            }
            match self.tables.iter().position(|&x| x == t) {
                Some(i) => Ok(Rows::Deleted(i + 1)),
                None => Err(RewriteError::Unsupported {
                    what: format!(
                        "a cascade from {}.{}, which the DELETE does not reach",
                        snap.table(t).schema,
                        snap.table(t).name
                    ),
                }),
            }
        };
        let mut steps = vec![Step::Target {
            table: self.target,
            keys: self.target_keys(snap),
        }];
        if target_tree {
            if snap.table(self.target).primary_key.is_empty() {
                return Err(without_key(self.target));
            }
            steps.push(Step::TargetTree {
                table: self.target,
                edges: self.self_edges(snap, self.target),
            });
        }
        for (i, &table) in self.tables.iter().enumerate() {
            let self_edges = self.self_edges(snap, table);
            if !self_edges.is_empty() && snap.table(table).primary_key.is_empty() {
                return Err(without_key(table));
            }
            let mut parents = Vec::new();
            for &f in self.cascade.iter().filter(|&&f| fks[f].child == table) {
                parents.push((f, rows_of(fks[f].parent)?));
            }
            steps.push(Step::SoftDelete {
                n: i + 1,
                table,
                parents,
                self_edges,
                returning: self.read_columns(snap, table),
            });
        }
        for (j, &fk) in self.set_null.iter().enumerate() {
            let edge = &fks[fk];
            steps.push(Step::SetColumns {
                n: j + 1,
                fk,
                parent: rows_of(edge.parent)?,
                columns: if edge.set_columns.is_empty() {
                    edge.child_columns.clone()
                } else {
                    edge.set_columns.clone()
                },
                value: if edge.on_delete == FkAction::SetDefault {
                    SetValue::Default
                } else {
                    SetValue::Null
                },
            });
        }
        for (k, &fk) in self.restrict.iter().enumerate() {
            let edge = &fks[fk];
            // Referencing rows this statement deletes too are no violation
            // (compared by primary key).
            let exempt = if snap.table(edge.child).primary_key.is_empty() {
                None
            } else if edge.child == self.target || self.tables.contains(&edge.child) {
                Some(rows_of(edge.child)?)
            } else {
                None
            };
            steps.push(Step::Restrict {
                n: k + 1,
                fk,
                parent: rows_of(edge.parent)?,
                exempt,
            });
        }
        steps.push(Step::OperationHint { table: self.target });
        Ok(steps)
    }

    /// Columns of the target that later steps read: its primary key (the
    /// outer UPDATE matches on it) and every parent column of an edge
    /// leaving it, self-references included.
    pub fn target_keys(&self, snap: &SchemaSnapshot) -> Vec<String> {
        let table = self.target;
        let mut cols: Vec<String> = snap.table(table).primary_key.clone();
        let edges = self
            .cascade
            .iter()
            .chain(&self.self_loops)
            .chain(&self.set_null)
            .chain(&self.restrict);
        add_parent_columns(&mut cols, snap, table, edges);
        cols
    }

    /// Columns of a cascaded table's soft-deleted rows that later steps
    /// read: the parent columns of the edges leaving it (self-references
    /// are walked inside its own step), and its primary key when a
    /// RESTRICT check exempts those rows.
    pub fn read_columns(&self, snap: &SchemaSnapshot, table: TableId) -> Vec<String> {
        let fks = snap.foreign_keys();
        let exempts = self.restrict.iter().any(|&f| fks[f].child == table);
        let mut cols = if exempts {
            snap.table(table).primary_key.clone()
        } else {
            Vec::new()
        };
        let edges = self
            .cascade
            .iter()
            .chain(&self.set_null)
            .chain(&self.restrict);
        add_parent_columns(&mut cols, snap, table, edges);
        cols
    }
}

/// Append the parent columns of the `edges` leaving `table` to `cols`,
/// once each.
fn add_parent_columns<'e>(
    cols: &mut Vec<String>,
    snap: &SchemaSnapshot,
    table: TableId,
    edges: impl Iterator<Item = &'e usize>,
) {
    for &i in edges {
        let fk = &snap.foreign_keys()[i];
        if fk.parent == table {
            for c in &fk.parent_columns {
                if !cols.contains(c) {
                    cols.push(c.clone());
                }
            }
        }
    }
}

/// Rows a step reads: the ones this statement soft-deletes from one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// `tombstone_target`, the client's rows; columns as `tombstone_k<i>`
    /// (so they cannot clash with the client's in the outer UPDATE).
    Target,
    /// The client's rows and their descendants through the target's
    /// self-references (`tombstone_target` ∪ `tombstone_s`), columns under
    /// their own names.
    TargetTree,
    /// `tombstone_d<n>`, the rows of the n-th cascaded table (1-based),
    /// columns under their own names.
    Deleted(usize),
}

/// `ON DELETE SET NULL` or `SET DEFAULT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetValue {
    Null,
    Default,
}

/// One part of a soft delete's statement; foreign keys are indices into
/// `SchemaSnapshot::foreign_keys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `tombstone_target`: the client's live rows, chosen once and locked,
    /// with the columns later steps read (`keys`: the primary key first).
    Target { table: TableId, keys: Vec<String> },
    /// `tombstone_s`: soft delete of the target rows' live descendants
    /// along the target's self-referencing `ON DELETE CASCADE` `edges`
    /// (trees); the tag still counts only the target rows.
    TargetTree { table: TableId, edges: Vec<usize> },
    /// `tombstone_d<n>`: soft delete of the live rows of `table` that
    /// reference deleted rows along `parents` (edge, the parent's rows), and
    /// their descendants along `self_edges`; `returning` the columns later
    /// steps read.
    SoftDelete {
        n: usize,
        table: TableId,
        parents: Vec<(usize, Rows)>,
        self_edges: Vec<usize>,
        returning: Vec<String>,
    },
    /// `tombstone_n<n>`: `columns` of the rows referencing deleted `parent`
    /// rows along `fk` set to NULL or DEFAULT (live rows only, for a
    /// protected child).
    SetColumns {
        n: usize,
        fk: usize,
        parent: Rows,
        columns: Vec<String>,
        value: SetValue,
    },
    /// `tombstone_r<n>`: SQLSTATE 23503 if a live row references deleted
    /// `parent` rows along `fk` (RESTRICT / NO ACTION) and is not among the
    /// `exempt` rows (deleted by this statement too).
    Restrict {
        n: usize,
        fk: usize,
        parent: Rows,
        exempt: Option<Rows>,
    },
    /// The label of this statement's operation (target table, actor, a
    /// fresh id) that the triggers recording it read
    /// (`migrate::operations`); set by the outer UPDATE's last condition.
    OperationHint { table: TableId },
}
