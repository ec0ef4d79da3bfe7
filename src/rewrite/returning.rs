//! `DELETE … RETURNING` after the rewrite to UPDATE: the client sees what a
//! hard delete returns.

use pg_query::NodeRef;
use pg_query::protobuf::{ColumnRef, DeleteStmt};

use super::edits::quote_ident;
use super::reads::{Res, Walker, alias_name};
use super::tree::{self, names, nodes, opt};
use crate::schema::TableId;

impl<'a> Walker<'a> {
    /// RETURNING shows what a hard delete returns: the soft-delete columns
    /// as they were (NULL), `*` spelled out without the key CTE's columns.
    pub(crate) fn returning(
        &mut self,
        n: &DeleteStmt,
        id: TableId,
        qual: &str,
        has_using: bool,
    ) -> Res<()> {
        let table = self.snap.table(id);
        let Some(sd) = table.soft_delete.clone() else {
            return Ok(());
        };
        let hidden: Vec<(String, String)> = table
            .columns
            .iter()
            .filter(|c| c.name == sd.column || Some(&c.name) == sd.by_column.as_ref())
            .map(|c| (c.name.clone(), c.type_sql.clone()))
            .collect();
        let own = |q: &str| names_target(n, q);
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| match hidden.iter().find(|(h, _)| *h == c.name) {
                Some((h, ty)) => format!("NULL::{ty} AS {}", quote_ident(h)),
                None => format!("{qual}.{}", quote_ident(&c.name)),
            })
            .collect();
        let fail = || Walker::unsupported("a RETURNING item tombstone cannot place");
        let mut refs = Vec::new();
        let exprs = n.returning_clause.as_ref().map_or(&[][..], |r| &r.exprs);
        for rt in nodes(exprs) {
            let NodeRef::ResTarget(rt) = rt else {
                continue;
            };
            let Some(val) = opt(&rt.val) else {
                continue;
            };
            let whole = matches!(val, NodeRef::ColumnRef(_));
            collect_column_refs(val, &mut refs, whole && rt.name.is_empty());
        }
        for (cr, bare) in refs {
            let fields = names(&cr.fields);
            let loc = usize::try_from(cr.location).map_err(|_| fail())?;
            let i = self.t.at(loc).ok_or_else(fail)?;
            let (last_field, qualifier) = match fields.as_slice() {
                [f] => (*f, None),
                [.., q, f] => (*f, Some(*q)),
                [] => continue,
            };
            if qualifier.is_some_and(|q| !own(q)) {
                continue;
            }
            let mut end = self.t.name_end(i);
            if last_field == "*" {
                if qualifier.is_none() && has_using {
                    return Err(Walker::unsupported(
                        "RETURNING * with DELETE … USING on a protected table",
                    ));
                }
                if qualifier.is_some() {
                    end = self
                        .t
                        .next(self.t.next(end).ok_or_else(fail)?)
                        .ok_or_else(fail)?;
                }
                self.edits
                    .replace(self.t.start_of(i), self.t.end_of(end), columns.join(", "));
            } else if let Some((h, ty)) = hidden.iter().find(|(h, _)| h == last_field) {
                let text = if bare {
                    format!("NULL::{ty} AS {}", quote_ident(h))
                } else {
                    format!("(NULL::{ty})")
                };
                self.edits
                    .replace(self.t.start_of(i), self.t.end_of(end), text);
            }
        }
        Ok(())
    }
}

impl Walker<'_> {
    /// The DELETE's RETURNING may read a USING item: an unqualified `*`, a
    /// subquery (it may correlate with one), a column qualified by another
    /// name than the target's, or an unqualified name that is not one of
    /// the target table's columns.
    pub(crate) fn returning_reads_using(&self, n: &DeleteStmt, id: TableId) -> bool {
        let Some(r) = n.returning_clause.as_ref() else {
            return false;
        };
        let table = self.snap.table(id);
        let own = |q: &str| names_target(n, q);
        let mut stack: Vec<NodeRef<'_>> = nodes(&r.exprs).collect();
        while let Some(x) = stack.pop() {
            match x {
                NodeRef::SubLink(_) | NodeRef::SelectStmt(_) => return true,
                NodeRef::ColumnRef(cr) => match names(&cr.fields).as_slice() {
                    ["*"] => return true,
                    [col] if !table.columns.iter().any(|c| c.name == *col) => return true,
                    [.., q, _] if !own(q) => return true,
                    _ => {}
                },
                other => tree::children(other, &mut stack),
            }
        }
        false
    }
}

/// `q` is how the DELETE names its target: its alias, else its name.
fn names_target(n: &DeleteStmt, q: &str) -> bool {
    match n.relation.as_ref() {
        Some(r) if alias_name(r).is_empty() => q == r.relname,
        Some(r) => q == alias_name(r),
        None => false,
    }
}

/// ColumnRefs in an expression, not descending into subqueries; `bare`
/// marks a ColumnRef that is a whole unnamed RETURNING item.
fn collect_column_refs<'v>(v: NodeRef<'v>, out: &mut Vec<(&'v ColumnRef, bool)>, bare: bool) {
    match v {
        NodeRef::ColumnRef(cr) => out.push((cr, bare)),
        NodeRef::SelectStmt(_) => {}
        other => {
            for c in tree::child_list(other) {
                collect_column_refs(c, out, false);
            }
        }
    }
}
