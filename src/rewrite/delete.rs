//! DELETE on a protected table becomes one statement:
//!
//! ```sql
//! WITH tombstone_target AS (SELECT <keys> FROM <target> [, <using>] WHERE (<where>) AND <live> FOR UPDATE OF <t>),
//!      tombstone_d1 AS (UPDATE child … SET deleted_at = now() WHERE live AND EXISTS (… parent set …) RETURNING …),
//!      tombstone_n1 AS (UPDATE child SET fk = NULL … RETURNING pk, old values),
//!      tombstone_r1 AS (SELECT 1 … WHERE tombstone.fk_violation(…))   -- RESTRICT / NO ACTION
//! UPDATE <target> SET deleted_at = now() FROM tombstone_target[, <using>]
//! WHERE [(<where>) AND, only with USING] <live> AND <target key> = tombstone_target key
//!   AND NOT EXISTS (SELECT 1 FROM tombstone_r1) …
//!   AND (SELECT set_config('tombstone.operation', <hint>, true)) IS NOT NULL
//! RETURNING <returning, with deleted_at shown as NULL>
//! ```
//!
//! The client's text is kept: `DELETE FROM` becomes `UPDATE`, `USING`
//! becomes `FROM tombstone_target,`, the rest is spliced in. The reply plan
//! renames the tag `UPDATE n` to `DELETE n`.
//!
//! The statement writes nothing of tombstone's: the `AFTER UPDATE` triggers
//! `migrate` installs (`migrate::operations`) record the operation and its
//! rows from what the statement changed, labelled by the hint (target
//! table, actor, a fresh operation id) the last condition sets for this
//! statement only.

use pg_query::NodeRef;
use pg_query::protobuf::{DeleteStmt, Node};

use super::ReplyPlan;
use super::cascade::CascadePlan;
use super::cascade_sql::{self, TARGET};
use super::edits::quote_ident;
use super::error::RewriteError;
use super::reads::{LIST_PREFIX, Res, Walker, alias_name};
use super::tokens::Clause;
use super::tree::{self, node, nodes, opt};
use crate::schema::TableId;

impl<'a> Walker<'a> {
    pub fn delete(&mut self, n: &DeleteStmt, nested: bool) -> Res<ReplyPlan> {
        self.with_clause(n.with_clause.as_ref())?;
        let rv = n
            .relation
            .as_ref()
            .ok_or_else(|| Walker::unsupported("a DELETE without a table"))?;
        self.guard_write(Some(rv), "DELETE")?;
        self.mark(rv);
        let target = self.resolve(rv);
        let mut pending = self.range_list(&n.using_clause)?;
        self.expr_opt(&n.where_clause)?;
        self.returning_exprs(n.returning_clause.as_ref())?;
        let current_of = matches!(opt(&n.where_clause), Some(NodeRef::CurrentOfExpr(_)));
        match target {
            Some(id) if self.snap.table(id).is_protected() && self.hard_delete() => {
                // `roles.bypass_hard_delete`: a real DELETE of the rows this
                // session sees (its visibility applies to the target too).
                if !current_of && self.visibility() != super::Visibility::All {
                    pending.extend(self.target(Some(rv))?);
                }
                self.delete_reads(n, &pending)?;
                Ok(ReplyPlan::Unchanged)
            }
            Some(id) if self.snap.table(id).is_protected() => {
                let nested_at = match (nested, self.cte_start) {
                    (false, _) => None,
                    (true, Some(at)) if n.with_clause.is_none() => Some(at),
                    _ => {
                        return Err(Walker::unsupported(
                            "this DELETE of a protected table inside WITH",
                        ));
                    }
                };
                if current_of {
                    return Err(Walker::unsupported(
                        "DELETE … WHERE CURRENT OF on a protected table",
                    ));
                }
                self.soft_delete(n, id, &pending, nested_at)?;
                if nested_at.is_some() {
                    // The client sees the outer statement's own tag.
                    return Ok(ReplyPlan::Unchanged);
                }
                Ok(ReplyPlan::RenameTag {
                    from: "UPDATE",
                    to: "DELETE",
                })
            }
            Some(id) => {
                if let Some(child) = self.snap.hard_cascade_reaches_protected(id) {
                    let child = self.snap.table(child);
                    return Err(RewriteError::FailClosed {
                        what: format!(
                            "DELETE on {} (its ON DELETE CASCADE would physically delete rows of protected table {}.{})",
                            rv.relname, child.schema, child.name
                        ),
                    });
                }
                self.delete_reads(n, &pending)?;
                Ok(ReplyPlan::Unchanged)
            }
            None => {
                self.delete_reads(n, &pending)?;
                Ok(ReplyPlan::Unchanged)
            }
        }
    }

    /// A bypass session allowed to delete physically.
    pub(crate) fn hard_delete(&self) -> bool {
        self.session.hard_delete && matches!(self.session.role, super::Role::Bypass { .. })
    }

    fn delete_reads(&mut self, n: &DeleteStmt, pending: &[super::reads::Pending]) -> Res<()> {
        let using = &n.using_clause;
        self.extend_where(opt(&n.where_clause), pending, |w| {
            w.list_end(using, "USING")
        })
    }

    fn soft_delete(
        &mut self,
        n: &DeleteStmt,
        id: TableId,
        pending: &[super::reads::Pending],
        nested_at: Option<usize>,
    ) -> Res<()> {
        let fail = || Walker::unsupported("a DELETE tombstone cannot place");
        self.soft_deletes += 1;
        if self.soft_deletes > 1 {
            return Err(Walker::unsupported(
                "two DELETEs of protected tables in one statement",
            ));
        }
        let snap = self.snap;
        let plan = CascadePlan::build(snap, id)?;
        let fks = snap.foreign_keys();
        let missing: Vec<String> = std::iter::once(id)
            .chain(plan.tables.iter().copied())
            .chain(plan.set_null.iter().map(|&f| fks[f].child))
            .filter(|&t| !snap.table(t).records_operations)
            .map(|t| cascade_sql::qualified(snap, t))
            .collect();
        if !missing.is_empty() {
            return Err(RewriteError::NotInstalled {
                table: cascade_sql::qualified(snap, id),
                missing: missing.join(", "),
            });
        }
        let table = snap.table(id);
        let sd = table.soft_delete.clone().ok_or_else(fail)?;
        let rv = n.relation.as_ref().ok_or_else(fail)?;
        let (rel_start, _name_end, qual) = self.rangevar_span(rv)?;
        let rel_tok = usize::try_from(rv.location)
            .ok()
            .and_then(|l| self.t.at(l))
            .ok_or_else(fail)?;
        let from_kw = self
            .t
            .keyword_before(rel_tok, &["FROM"], &["ONLY"])
            .ok_or_else(fail)?;
        let del_kw = self
            .t
            .prev(from_kw)
            .filter(|&d| self.t.is_kw(d, "DELETE"))
            .ok_or_else(fail)?;
        let alias = alias_name(rv);
        // Last token of `[ONLY] name [[AS] alias]`.
        let mut rel_last = self.t.name_end(rel_tok);
        if !alias.is_empty() {
            let mut a = self.t.next(rel_last).ok_or_else(fail)?;
            if self.t.is_kw(a, "AS") {
                a = self.t.next(a).ok_or_else(fail)?;
            }
            rel_last = a;
        }
        let rel_text = self.slice(rel_start, self.t.end_of(rel_last))?.to_string();
        let lock_name = if alias.is_empty() {
            quote_ident(&rv.relname)
        } else {
            quote_ident(alias)
        };
        let using = &n.using_clause;
        let mut using_kw = None;
        let mut using_text = String::new();
        if !using.is_empty() {
            let last = self.list_end(using, "USING")?;
            let first_loc = using
                .first()
                .and_then(node)
                .and_then(tree::min_location)
                .ok_or_else(fail)?;
            let kw = self
                .t
                .keyword_before(
                    self.t.at(first_loc).ok_or_else(fail)?,
                    &["USING"],
                    LIST_PREFIX,
                )
                .ok_or_else(fail)?;
            let first = self.t.next(kw).ok_or_else(fail)?;
            using_text = self.render(self.t.start_of(first), self.t.end_of(last))?;
            using_kw = Some((kw, last));
        }
        let mut where_span = None;
        let mut where_text = None;
        if let Some(where_clause) = opt(&n.where_clause) {
            let (first, last) = self.clause_span(where_clause, &["WHERE"], Clause::Where)?;
            where_text = Some(self.render(self.t.start_of(first), self.t.end_of(last))?);
            where_span = Some((first, last));
        }
        let live = format!("{qual}.{} IS NULL", quote_ident(&sd.column));
        let mut filters: Vec<String> = pending.iter().map(|p| self.predicate(p)).collect();
        filters.push(live.clone());

        // The outer UPDATE joins the USING items again only when RETURNING
        // reads them, each pinned to the row tombstone_target chose where
        // it is a table; otherwise it takes tombstone_target's rows alone.
        // Either way the client's WHERE and USING are evaluated once (SPEC
        // W10), except for USING items that cannot be pinned (subqueries,
        // functions, views), where the WHERE runs again on the join.
        let outer_using = !using.is_empty() && self.returning_reads_using(n, id);
        let pins = if outer_using {
            self.using_pins(using)
        } else {
            Some(Vec::new())
        };
        let again = pins.is_none();
        let pins = pins.unwrap_or_default();

        // The target's rows (their keys named so they cannot clash with
        // the client's columns), the cascade, the checks and the hint.
        let actor = cascade_sql::actor(self.session.actor.as_deref());
        let steps = plan.steps(snap)?;
        let client = cascade_sql::Client {
            qual: &qual,
            relation: &rel_text,
            using: (!using_text.is_empty()).then_some(using_text.as_str()),
            pins: &pins,
            where_: where_text.as_deref(),
            filters: &filters,
            lock: &lock_name,
            actor: &actor,
        };
        let rendered = cascade_sql::render(snap, &steps, &client)?;
        let ctes = rendered.ctes.join(",\n     ");

        // Splice the outer UPDATE into the client's DELETE.
        if let Some(at) = nested_at {
            self.edits.insert(at, format!("{ctes},\n     "));
        } else if n.with_clause.is_none() {
            self.edits
                .insert(self.t.start_of(del_kw), format!("WITH {ctes}\n"));
        } else {
            let before = self.t.prev(del_kw).ok_or_else(fail)?;
            self.edits
                .insert(self.t.end_of(before), format!(",\n     {ctes}\n"));
        }
        self.edits
            .replace(self.t.start_of(del_kw), self.t.end_of(from_kw), "UPDATE");
        let mut set = format!(" SET {} = pg_catalog.now()", quote_ident(&sd.column));
        if let Some(by) = cascade_sql::deleted_by(snap, id, &actor) {
            set.push_str(&by);
        }
        match using_kw {
            Some((kw, _)) if outer_using => {
                self.edits.insert(self.t.end_of(rel_last), set);
                self.edits.replace(
                    self.t.start_of(kw),
                    self.t.end_of(kw),
                    format!("FROM {TARGET},"),
                );
            }
            Some((kw, last)) => {
                self.edits.insert(self.t.end_of(rel_last), set);
                let (start, end) = (self.t.start_of(kw), self.t.end_of(last));
                self.edits.clear_within(start, end);
                self.edits.replace(start, end, format!("FROM {TARGET}"));
            }
            None => {
                self.edits
                    .insert(self.t.end_of(rel_last), format!("{set} FROM {TARGET}"));
            }
        }
        if !outer_using {
            // The USING items' own filters were applied in tombstone_target
            // (joined again, they keep theirs: every reference to a
            // protected table carries its predicate).
            filters.drain(..pending.len());
        }
        filters.extend(rendered.conditions);
        let filter = filters.join(" AND ");
        match where_span {
            // The client's WHERE is evaluated once, in tombstone_target
            // (SPEC W10): the UPDATE takes exactly the rows it chose, so a
            // volatile or LIMIT-without-ORDER-BY predicate cannot pick
            // other rows the second time. When RETURNING reads USING items
            // that cannot be pinned, the WHERE also joins them, so it stays.
            Some((first, last)) if !again => {
                let (start, end) = (self.t.start_of(first), self.t.end_of(last));
                self.edits.clear_within(start, end);
                self.edits.replace(start, end, filter);
            }
            Some((first, last)) => {
                self.edits.insert(self.t.start_of(first), "(");
                self.edits
                    .insert(self.t.end_of(last), format!(") AND {filter}"));
            }
            None => {
                let after = using_kw.map(|(_, last)| last).unwrap_or(rel_last);
                self.edits
                    .insert(self.t.end_of(after), format!(" WHERE {filter}"));
            }
        }
        self.returning(n, id, &qual, outer_using)
    }
}

impl Walker<'_> {
    /// How the outer UPDATE names each relation of the USING list, when
    /// every item is a table (or a join of tables without an alias of its
    /// own), whose rows `tableoid` and `ctid` identify; else None.
    fn using_pins(&self, using: &[Node]) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut stack: Vec<NodeRef<'_>> = nodes(using).collect();
        stack.reverse();
        while let Some(item) = stack.pop() {
            match item {
                NodeRef::RangeVar(rv) => {
                    let id = self.resolve(rv)?;
                    if !matches!(self.snap.table(id).kind, 'r' | 'p' | 'm') {
                        return None;
                    }
                    let (_, _, qual) = self.rangevar_span(rv).ok()?;
                    out.push(qual);
                }
                NodeRef::JoinExpr(j) if j.alias.is_none() => {
                    stack.extend(opt(&j.rarg));
                    stack.extend(opt(&j.larg));
                }
                _ => return None,
            }
        }
        Some(out)
    }
}
