//! Statement dispatch and the writes other than DELETE: UPDATE, INSERT …
//! ON CONFLICT, MERGE, COPY, TRUNCATE, DO, PREPARE/EXECUTE, EXPLAIN.

use pg_query::NodeRef;
use pg_query::protobuf::{
    self as pb, InferClause, InsertStmt, MergeStmt, Node, RangeVar, UpdateStmt,
};

use super::edits::quote_ident;
use super::error::RewriteError;
use super::reads::{Pending, Res, Walker, alias_name};
use super::tokens::Clause;
use super::tree::{self, nodes, opt};
use super::{ReplyPlan, SessionChange, StatementPlan, Visibility};

/// Utility statements that never read or write rows of a protected table
/// through the proxy's rules (DDL, session and transaction control).
fn passthrough(n: NodeRef<'_>) -> bool {
    matches!(
        n,
        NodeRef::CreateStmt(_)
            | NodeRef::AlterTableStmt(_)
            | NodeRef::IndexStmt(_)
            | NodeRef::DropStmt(_)
            | NodeRef::GrantStmt(_)
            | NodeRef::GrantRoleStmt(_)
            | NodeRef::CommentStmt(_)
            | NodeRef::VacuumStmt(_)
            | NodeRef::LockStmt(_)
            | NodeRef::VariableShowStmt(_)
            | NodeRef::TransactionStmt(_)
            | NodeRef::CreateFunctionStmt(_)
            | NodeRef::ViewStmt(_)
            | NodeRef::CreateTrigStmt(_)
            | NodeRef::DeallocateStmt(_)
            | NodeRef::ListenStmt(_)
            | NodeRef::NotifyStmt(_)
            | NodeRef::UnlistenStmt(_)
            | NodeRef::ClusterStmt(_)
            | NodeRef::ReindexStmt(_)
            | NodeRef::RenameStmt(_)
            | NodeRef::AlterOwnerStmt(_)
            | NodeRef::CreateSchemaStmt(_)
            | NodeRef::CreateSeqStmt(_)
            | NodeRef::AlterSeqStmt(_)
            | NodeRef::CreatePolicyStmt(_)
            | NodeRef::AlterPolicyStmt(_)
            | NodeRef::RuleStmt(_)
            | NodeRef::CallStmt(_)
            | NodeRef::CheckPointStmt(_)
            | NodeRef::LoadStmt(_)
            | NodeRef::ClosePortalStmt(_)
            | NodeRef::FetchStmt(_)
            | NodeRef::AlterObjectSchemaStmt(_)
            | NodeRef::CreateStatsStmt(_)
            | NodeRef::SecLabelStmt(_)
            | NodeRef::CreateEventTrigStmt(_)
            | NodeRef::RefreshMatViewStmt(_)
            | NodeRef::AlterDefaultPrivilegesStmt(_)
            | NodeRef::CreateDomainStmt(_)
            | NodeRef::CompositeTypeStmt(_)
            | NodeRef::CreateEnumStmt(_)
            | NodeRef::DefineStmt(_)
            | NodeRef::AlterFunctionStmt(_)
            | NodeRef::CreateExtensionStmt(_)
            | NodeRef::CreateRoleStmt(_)
            | NodeRef::AlterRoleStmt(_)
            | NodeRef::DropRoleStmt(_)
            | NodeRef::AlterTableMoveAllStmt(_)
            | NodeRef::CreateTableSpaceStmt(_)
            | NodeRef::DropOwnedStmt(_)
            | NodeRef::ReassignOwnedStmt(_)
            | NodeRef::AlterEnumStmt(_)
            | NodeRef::AlterDomainStmt(_)
    )
}

impl<'a> Walker<'a> {
    /// Rewrite one top-level statement; returns its reply plan.
    pub fn statement(&mut self, n: NodeRef<'_>, start: usize, end: usize) -> Res<StatementPlan> {
        let plan = match n {
            NodeRef::SelectStmt(_)
            | NodeRef::InsertStmt(_)
            | NodeRef::UpdateStmt(_)
            | NodeRef::DeleteStmt(_)
            | NodeRef::MergeStmt(_)
            | NodeRef::CopyStmt(_)
            | NodeRef::ExplainStmt(_)
            | NodeRef::PrepareStmt(_)
            | NodeRef::DeclareCursorStmt(_)
            | NodeRef::CreateTableAsStmt(_) => {
                let plan = self.walked(n)?;
                self.check_all_placed(n)?;
                plan
            }
            // The prepared statement may be a SET or call set_config.
            NodeRef::ExecuteStmt(e) => StatementPlan {
                reply: ReplyPlan::AsPrepared {
                    name: e.name.clone(),
                },
                session: Some(SessionChange::Unknown),
                ..StatementPlan::default()
            },
            NodeRef::ConstraintsSetStmt(c) => {
                self.constraints_set(c)?;
                StatementPlan::default()
            }
            NodeRef::TruncateStmt(t) => {
                self.truncate(t)?;
                StatementPlan::default()
            }
            NodeRef::VariableSetStmt(v) => StatementPlan {
                session: self.variable_set(v)?,
                ..StatementPlan::default()
            },
            NodeRef::DiscardStmt(d) => StatementPlan {
                session: self.discard(d),
                ..StatementPlan::default()
            },
            NodeRef::DropStmt(_) | NodeRef::AlterTableStmt(_) | NodeRef::RenameStmt(_) => {
                self.guard_ddl(n)?;
                StatementPlan::default()
            }
            // A procedure may change anything, search_path included.
            NodeRef::CallStmt(_) => StatementPlan {
                session: Some(SessionChange::Unknown),
                ..StatementPlan::default()
            },
            NodeRef::DoStmt(d) => {
                for arg in nodes(&d.args) {
                    if let NodeRef::DefElem(d) = arg
                        && let Some(NodeRef::String(s)) = opt(&d.arg)
                        && self.snap.may_mention_watched(self.literal_text(s))
                    {
                        return Err(RewriteError::FailClosed {
                            what: "a DO block naming a protected table".into(),
                        });
                    }
                }
                // It may call set_config('search_path', …).
                StatementPlan {
                    session: Some(SessionChange::Unknown),
                    ..StatementPlan::default()
                }
            }
            k if passthrough(k) => StatementPlan::default(),
            other => {
                // Decided by the words of the text, literals included.
                self.reads_literals = true;
                let body = self.sql.get(start..end).unwrap_or("");
                if self.snap.may_mention_watched(body) {
                    return Err(RewriteError::FailClosed {
                        what: format!(
                            "statement {} naming a protected table",
                            super::walk::kind(other)
                        ),
                    });
                }
                StatementPlan::default()
            }
        };
        Ok(plan)
    }

    fn walked(&mut self, n: NodeRef<'_>) -> Res<StatementPlan> {
        Ok(match n {
            NodeRef::SelectStmt(s) => {
                self.select(s)?;
                StatementPlan::default()
            }
            NodeRef::InsertStmt(_)
            | NodeRef::UpdateStmt(_)
            | NodeRef::DeleteStmt(_)
            | NodeRef::MergeStmt(_) => StatementPlan {
                reply: self.dml(n, false)?,
                ..StatementPlan::default()
            },
            NodeRef::CopyStmt(c) => {
                self.copy(c)?;
                StatementPlan::default()
            }
            NodeRef::PrepareStmt(p) => {
                let inner = self.inner(&p.query)?;
                StatementPlan {
                    prepared: Some((p.name.clone(), inner.reply)),
                    ..StatementPlan::default()
                }
            }
            // EXPLAIN, DECLARE … CURSOR, CREATE TABLE … AS: the inner query
            // is rewritten; the reply is the outer statement's own.
            NodeRef::ExplainStmt(e) => {
                self.inner(&e.query)?;
                StatementPlan::default()
            }
            NodeRef::DeclareCursorStmt(d) => {
                self.inner(&d.query)?;
                StatementPlan::default()
            }
            NodeRef::CreateTableAsStmt(c) => {
                if let Some(rel) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.mark(rel);
                }
                self.inner(&c.query)?;
                StatementPlan::default()
            }
            // Any other kind inside EXPLAIN, PREPARE …: walked as an
            // expression, so every table it names is checked.
            other => {
                self.expr(other)?;
                StatementPlan::default()
            }
        })
    }

    fn inner(&mut self, q: &Option<Box<Node>>) -> Res<StatementPlan> {
        match opt(q) {
            Some(n) => self.walked(n),
            None => Ok(StatementPlan::default()),
        }
    }

    /// INSERT/UPDATE/DELETE/MERGE, top level (`nested` false) or in a CTE.
    pub fn dml(&mut self, n: NodeRef<'_>, nested: bool) -> Res<ReplyPlan> {
        self.scopes.push(Vec::new());
        let r = match n {
            NodeRef::InsertStmt(i) => self.insert(i).map(|_| ReplyPlan::Unchanged),
            NodeRef::UpdateStmt(u) => self.update(u).map(|_| ReplyPlan::Unchanged),
            NodeRef::DeleteStmt(d) => self.delete(d, nested),
            NodeRef::MergeStmt(m) => self.merge(m).map(|_| ReplyPlan::Unchanged),
            other => self.expr(other).map(|_| ReplyPlan::Unchanged),
        };
        self.scopes.pop();
        r
    }

    /// The target of INSERT/UPDATE/DELETE/MERGE as a pending predicate.
    pub fn target(&mut self, rv: Option<&RangeVar>) -> Res<Option<Pending>> {
        let Some(rv) = rv else {
            return Ok(None);
        };
        self.mark(rv);
        let Some(table) = self.protected(rv) else {
            return Ok(None);
        };
        let (name_start, name_end, qual) = self.rangevar_span(rv)?;
        let has_alias = !alias_name(rv).is_empty();
        // Targets take no column alias list in the grammar; read it anyway.
        let column = self.column_through_alias(rv, table)?;
        Ok(Some(Pending {
            table,
            qual,
            name_start,
            name_end,
            has_alias,
            column,
        }))
    }

    /// The RETURNING items of a write, walked.
    pub fn returning_exprs(&mut self, r: Option<&pb::ReturningClause>) -> Res<()> {
        match r {
            Some(r) => self.expr(NodeRef::ReturningClause(r)),
            None => Ok(()),
        }
    }

    fn update(&mut self, n: &UpdateStmt) -> Res<()> {
        self.with_clause(n.with_clause.as_ref())?;
        self.guard_write(n.relation.as_ref(), "UPDATE")?;
        let mut pending = Vec::new();
        let where_clause = opt(&n.where_clause);
        let current_of = matches!(where_clause, Some(NodeRef::CurrentOfExpr(_)));
        if let Some(p) = self.target(n.relation.as_ref())?
            && self.visibility() != Visibility::All
            && !current_of
        {
            pending.push(p);
        }
        let from = &n.from_clause;
        pending.extend(self.range_list(from)?);
        self.expr_list(&n.target_list)?;
        self.expr_opt(&n.where_clause)?;
        self.returning_exprs(n.returning_clause.as_ref())?;
        let targets = &n.target_list;
        self.extend_where(where_clause, &pending, |w| {
            if !from.is_empty() {
                return w.list_end(from, "FROM");
            }
            let fail = || Walker::unsupported("an UPDATE tombstone cannot place");
            let loc = nodes(targets)
                .next()
                .and_then(tree::min_location)
                .ok_or_else(fail)?;
            let reach = tree::max_location_of(nodes(targets)).ok_or_else(fail)?;
            let i = w.t.at(loc).ok_or_else(fail)?;
            let set = w.t.keyword_before(i, &["SET"], &[]).ok_or_else(fail)?;
            Ok(w.t.clause_end(set, reach, Clause::Set))
        })
    }

    fn insert(&mut self, n: &InsertStmt) -> Res<()> {
        self.with_clause(n.with_clause.as_ref())?;
        self.guard_write(n.relation.as_ref(), "INSERT")?;
        let target = self.target(n.relation.as_ref())?;
        self.expr_opt(&n.select_stmt)?;
        if let Some(c) = n.on_conflict_clause.as_deref() {
            self.expr(NodeRef::OnConflictClause(c))?;
        }
        self.returning_exprs(n.returning_clause.as_ref())?;
        let Some(target) = target else {
            return Ok(());
        };
        let normal = matches!(self.session.role, super::Role::Normal);
        let Some(conflict) = n.on_conflict_clause.as_deref() else {
            if normal {
                self.revive_insert(n, &target)?;
            }
            return Ok(());
        };
        let infer = conflict.infer.as_deref();
        if normal
            && let Some(infer) = infer
            && plain_columns(infer)
            && let Some(close) = self.infer_close(infer)
        {
            self.revive_do_nothing(n, &target, close)?;
        }
        if normal {
            self.revive_do_update(n, &target)?;
        }
        let Some(infer) = infer.filter(|i| plain_columns(i)) else {
            return Ok(());
        };
        let mut cols: Vec<&str> = Vec::new();
        for e in nodes(&infer.index_elems) {
            match e {
                NodeRef::IndexElem(ie) if !ie.name.is_empty() => cols.push(&ie.name),
                _ => return Ok(()),
            }
        }
        cols.sort_unstable();
        let table = self.snap.table(target.table);
        let same = |ix: &&crate::schema::UniqueIndex| {
            let mut c: Vec<&str> = ix.columns.iter().map(String::as_str).collect();
            c.sort_unstable();
            c == cols
        };
        let partial = table
            .unique_indexes
            .iter()
            .filter(same)
            .any(|ix| ix.live_only);
        let full = table
            .unique_indexes
            .iter()
            .filter(same)
            .any(|ix| !ix.live_only);
        if !partial || full {
            return Ok(());
        }
        let col = table
            .soft_delete
            .as_ref()
            .map(|s| s.column.clone())
            .unwrap_or_default();
        let fail = || Walker::unsupported("an ON CONFLICT target tombstone cannot place");
        let close = self.infer_close(infer).ok_or_else(fail)?;
        self.edits.insert(
            self.t.end_of(close),
            format!(" WHERE {} IS NULL", quote_ident(&col)),
        );
        Ok(())
    }

    /// The token closing an ON CONFLICT target's column list.
    pub(crate) fn infer_close(&self, infer: &InferClause) -> Option<usize> {
        let open = usize::try_from(infer.location)
            .ok()
            .and_then(|l| self.t.at(l))?;
        let open = if self.t.is_char(open, b'(') {
            open
        } else {
            self.t.next(open).filter(|&o| self.t.is_char(o, b'('))?
        };
        self.t.matching_paren(open)
    }

    fn merge(&mut self, n: &MergeStmt) -> Res<()> {
        self.with_clause(n.with_clause.as_ref())?;
        self.guard_write(n.relation.as_ref(), "MERGE")?;
        let target = self.target(n.relation.as_ref())?;
        let source = match opt(&n.source_relation) {
            Some(s) => self.range_item(s)?,
            None => Vec::new(),
        };
        for p in &source {
            self.wrap(p);
        }
        self.expr_opt(&n.join_condition)?;
        self.expr_list(&n.merge_when_clauses)?;
        self.returning_exprs(n.returning_clause.as_ref())?;
        if let Some(t) = target {
            let deletes = nodes(&n.merge_when_clauses).any(|w| {
                matches!(w, NodeRef::MergeWhenClause(w)
                    if pb::CmdType::try_from(w.command_type) == Ok(pb::CmdType::CmdDelete))
            });
            if deletes {
                return Err(Walker::unsupported(
                    "MERGE … THEN DELETE on a protected table",
                ));
            }
            if self.visibility() != Visibility::All {
                let join = opt(&n.join_condition)
                    .ok_or_else(|| Walker::unsupported("a MERGE without a join condition"))?;
                self.extend_on(join, &[t])?;
            }
        }
        Ok(())
    }

    fn copy(&mut self, n: &pb::CopyStmt) -> Res<()> {
        self.expr_opt(&n.query)?;
        self.expr_opt(&n.where_clause)?;
        let Some(rv) = n.relation.as_ref() else {
            return Ok(());
        };
        if n.is_from {
            self.guard_write(Some(rv), "COPY … FROM")?;
        }
        let target = self.target(Some(rv))?;
        let Some(p) = target else {
            return Ok(());
        };
        if n.is_from || self.visibility() == Visibility::All {
            return Ok(());
        }
        let table = self.snap.table(p.table);
        let col = table
            .soft_delete
            .as_ref()
            .map(|s| s.column.as_str())
            .unwrap_or("deleted_at");
        let name = self.slice(p.name_start, p.name_end)?;
        let mut end = p.name_end;
        let mut cols = "*".to_string();
        if !n.attlist.is_empty() {
            let fail = || Walker::unsupported("a COPY column list tombstone cannot place");
            let after = self.t.at(p.name_end).ok_or_else(fail)?;
            if !self.t.is_char(after, b'(') {
                return Err(fail());
            }
            let close = self.t.matching_paren(after).ok_or_else(fail)?;
            cols = self
                .slice(self.t.end_of(after), self.t.start_of(close))?
                .to_string();
            end = self.t.end_of(close);
        }
        let text = format!(
            "(SELECT {cols} FROM {name} WHERE {})",
            self.visibility_test(&quote_ident(col))
        );
        self.edits.replace(p.name_start, end, text);
        Ok(())
    }

    fn truncate(&mut self, n: &pb::TruncateStmt) -> Res<()> {
        let cascade = pb::DropBehavior::try_from(n.behavior) == Ok(pb::DropBehavior::DropCascade);
        let mut queue = Vec::new();
        for rv in nodes(&n.relations) {
            if let NodeRef::RangeVar(rv) = rv {
                self.guard_write(Some(rv), "TRUNCATE")?;
                if let Some(id) = self.resolve(rv) {
                    queue.push(id);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        while let Some(id) = queue.pop() {
            if !seen.insert(id) {
                continue;
            }
            let table = self.snap.table(id);
            if table.is_protected() {
                return Err(RewriteError::TruncateProtected {
                    table: format!(
                        "{}.{}",
                        quote_ident(&table.schema),
                        quote_ident(&table.name)
                    ),
                });
            }
            if cascade {
                queue.extend(self.snap.children_of(id).map(|fk| fk.child));
            }
        }
        Ok(())
    }
}

/// An ON CONFLICT target that is a plain column list: no `WHERE`, no
/// `ON CONSTRAINT`.
pub(crate) fn plain_columns(infer: &InferClause) -> bool {
    infer.where_clause.is_none() && infer.conname.is_empty()
}
