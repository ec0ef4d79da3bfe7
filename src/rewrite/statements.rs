//! Statement dispatch and the writes other than DELETE: UPDATE, INSERT …
//! ON CONFLICT, MERGE, COPY, TRUNCATE, DO, PREPARE/EXECUTE, EXPLAIN.

use serde_json::Value;

use super::edits::quote_ident;
use super::error::RewriteError;
use super::reads::{Pending, Res, Walker};
use super::tokens::Clause;
use super::tree::{self, field, int, list, node, text};
use super::{ReplyPlan, SessionChange, StatementPlan, Visibility};

/// Utility statements that never read or write rows of a protected table
/// through the proxy's rules (DDL, session and transaction control).
const PASSTHROUGH: &[&str] = &[
    "CreateStmt",
    "AlterTableStmt",
    "IndexStmt",
    "DropStmt",
    "GrantStmt",
    "GrantRoleStmt",
    "CommentStmt",
    "VacuumStmt",
    "LockStmt",
    "VariableShowStmt",
    "TransactionStmt",
    "CreateFunctionStmt",
    "ViewStmt",
    "CreateTrigStmt",
    "DeallocateStmt",
    "ListenStmt",
    "NotifyStmt",
    "UnlistenStmt",
    "ClusterStmt",
    "ReindexStmt",
    "RenameStmt",
    "AlterOwnerStmt",
    "CreateSchemaStmt",
    "CreateSeqStmt",
    "AlterSeqStmt",
    "CreatePolicyStmt",
    "AlterPolicyStmt",
    "RuleStmt",
    "CallStmt",
    "CheckPointStmt",
    "LoadStmt",
    "ClosePortalStmt",
    "FetchStmt",
    "ConstraintsSetStmt",
    "AlterObjectSchemaStmt",
    "CreateStatsStmt",
    "SecLabelStmt",
    "CreateEventTrigStmt",
    "RefreshMatViewStmt",
    "AlterDefaultPrivilegesStmt",
    "CreateDomainStmt",
    "CompositeTypeStmt",
    "CreateEnumStmt",
    "DefineStmt",
    "AlterFunctionStmt",
    "CreateExtensionStmt",
    "CreateRoleStmt",
    "AlterRoleStmt",
    "DropRoleStmt",
    "AlterTableMoveAllStmt",
    "CreateTableSpaceStmt",
    "DropOwnedStmt",
    "ReassignOwnedStmt",
    "AlterEnumStmt",
    "AlterDomainStmt",
];

impl<'a> Walker<'a> {
    /// Rewrite one top-level statement; returns its reply plan.
    pub fn statement(&mut self, tree: &Value, start: usize, end: usize) -> Res<StatementPlan> {
        let Some((kind, n)) = node(tree) else {
            return Ok(StatementPlan::default());
        };
        let plan = match kind {
            "SelectStmt" | "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt"
            | "CopyStmt" | "ExplainStmt" | "PrepareStmt" | "DeclareCursorStmt"
            | "CreateTableAsStmt" => {
                let plan = self.walked(kind, n)?;
                self.check_all_placed(n)?;
                plan
            }
            // The prepared statement may be a SET or call set_config.
            "ExecuteStmt" => StatementPlan {
                reply: ReplyPlan::AsPrepared {
                    name: text(n, "name").to_string(),
                },
                session: Some(SessionChange::Unknown),
                ..StatementPlan::default()
            },
            "TruncateStmt" => {
                self.truncate(n)?;
                StatementPlan::default()
            }
            "VariableSetStmt" => StatementPlan {
                session: self.variable_set(n)?,
                ..StatementPlan::default()
            },
            "DiscardStmt" => StatementPlan {
                session: self.discard(n),
                ..StatementPlan::default()
            },
            "DropStmt" | "AlterTableStmt" | "RenameStmt" => {
                self.guard_ddl(kind, n)?;
                StatementPlan::default()
            }
            // A procedure may change anything, search_path included.
            "CallStmt" => StatementPlan {
                session: Some(SessionChange::Unknown),
                ..StatementPlan::default()
            },
            "DoStmt" => {
                for arg in list(n, "args") {
                    if let Some((_, d)) = node(arg)
                        && let Some(("String", s)) = node(field(d, "arg"))
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
            k if PASSTHROUGH.contains(&k) => StatementPlan::default(),
            other => {
                // Decided by the words of the text, literals included.
                self.reads_literals = true;
                let body = self.sql.get(start..end).unwrap_or("");
                if self.snap.may_mention_watched(body) {
                    return Err(RewriteError::FailClosed {
                        what: format!("statement {other} naming a protected table"),
                    });
                }
                StatementPlan::default()
            }
        };
        Ok(plan)
    }

    fn walked(&mut self, kind: &str, n: &Value) -> Res<StatementPlan> {
        Ok(match kind {
            "SelectStmt" => {
                self.select(n)?;
                StatementPlan::default()
            }
            "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => StatementPlan {
                reply: self.dml(kind, n, false)?,
                ..StatementPlan::default()
            },
            "CopyStmt" => {
                self.copy(n)?;
                StatementPlan::default()
            }
            "PrepareStmt" => {
                let inner = self.inner(field(n, "query"))?;
                StatementPlan {
                    prepared: Some((text(n, "name").to_string(), inner.reply)),
                    ..StatementPlan::default()
                }
            }
            // EXPLAIN, DECLARE … CURSOR, CREATE TABLE … AS: the inner query
            // is rewritten; the reply is the outer statement's own.
            _ => {
                if let Some(loc) = tree::location(field(field(n, "into"), "rel")) {
                    self.handled.insert(loc);
                }
                self.inner(field(n, "query"))?;
                StatementPlan::default()
            }
        })
    }

    fn inner(&mut self, q: &Value) -> Res<StatementPlan> {
        match node(q) {
            Some((kind, n)) => self.walked(kind, n),
            None => Ok(StatementPlan::default()),
        }
    }

    /// INSERT/UPDATE/DELETE/MERGE, top level (`nested` false) or in a CTE.
    pub fn dml(&mut self, kind: &str, n: &Value, nested: bool) -> Res<ReplyPlan> {
        self.scopes.push(Vec::new());
        let r = match kind {
            "InsertStmt" => self.insert(n).map(|_| ReplyPlan::Unchanged),
            "UpdateStmt" => self.update(n).map(|_| ReplyPlan::Unchanged),
            "DeleteStmt" => self.delete(n, nested),
            _ => self.merge(n).map(|_| ReplyPlan::Unchanged),
        };
        self.scopes.pop();
        r
    }

    /// The target of INSERT/UPDATE/DELETE/MERGE as a pending predicate.
    pub fn target(&mut self, rv: &Value) -> Res<Option<Pending>> {
        if let Some(loc) = tree::location(rv) {
            self.handled.insert(loc);
        }
        let Some(table) = self.protected(rv) else {
            return Ok(None);
        };
        let (name_start, name_end, qual) = self.rangevar_span(rv)?;
        let has_alias = !text(field(rv, "alias"), "aliasname").is_empty();
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

    fn update(&mut self, n: &Value) -> Res<()> {
        self.with_clause(field(n, "with_clause"))?;
        self.guard_write(field(n, "relation"), "UPDATE")?;
        let mut pending = Vec::new();
        let where_clause = field(n, "where_clause");
        let current_of = matches!(node(where_clause), Some(("CurrentOfExpr", _)));
        if let Some(p) = self.target(field(n, "relation"))?
            && self.visibility() != Visibility::All
            && !current_of
        {
            pending.push(p);
        }
        let from = list(n, "from_clause");
        for item in from {
            pending.extend(self.range_item(item)?);
        }
        for k in ["target_list", "where_clause", "returning_clause"] {
            self.expr(field(n, k))?;
        }
        let targets = list(n, "target_list");
        self.extend_where(where_clause, &pending, |w| {
            if !from.is_empty() {
                return w.list_end(from, "FROM");
            }
            let fail = || Walker::unsupported("an UPDATE tombstone cannot place");
            let loc = targets
                .first()
                .and_then(tree::min_location)
                .ok_or_else(fail)?;
            let i = w.t.at(loc).ok_or_else(fail)?;
            let set = w.t.keyword_before(i, &["SET"], &[]).ok_or_else(fail)?;
            Ok(w.t.clause_end(set, Clause::Set))
        })
    }

    fn insert(&mut self, n: &Value) -> Res<()> {
        self.with_clause(field(n, "with_clause"))?;
        self.guard_write(field(n, "relation"), "INSERT")?;
        let target = self.target(field(n, "relation"))?;
        for k in ["select_stmt", "on_conflict_clause", "returning_clause"] {
            self.expr(field(n, k))?;
        }
        let Some(target) = target else {
            return Ok(());
        };
        let conflict = field(n, "on_conflict_clause");
        let normal = matches!(self.session.role, super::Role::Normal);
        if conflict.is_null() {
            if normal {
                self.revive_insert(n, &target)?;
            }
            return Ok(());
        }
        let infer = field(conflict, "infer");
        if normal
            && !infer.is_null()
            && field(infer, "where_clause").is_null()
            && text(infer, "conname").is_empty()
            && let Some(close) = self.infer_close(infer)
        {
            self.revive_do_nothing(n, &target, close)?;
        }
        if normal {
            self.revive_do_update(n, &target)?;
        }
        if infer.is_null()
            || !field(infer, "where_clause").is_null()
            || !text(infer, "conname").is_empty()
        {
            return Ok(());
        }
        let mut cols: Vec<&str> = Vec::new();
        for e in list(infer, "index_elems") {
            match node(e) {
                Some(("IndexElem", ie)) if !text(ie, "name").is_empty() => {
                    cols.push(text(ie, "name"))
                }
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
    fn infer_close(&self, infer: &Value) -> Option<usize> {
        let open = tree::location(infer).and_then(|l| self.t.at(l))?;
        let open = if self.t.is_char(open, b'(') {
            open
        } else {
            self.t.next(open).filter(|&o| self.t.is_char(o, b'('))?
        };
        self.t.matching_paren(open)
    }

    fn merge(&mut self, n: &Value) -> Res<()> {
        self.with_clause(field(n, "with_clause"))?;
        self.guard_write(field(n, "relation"), "MERGE")?;
        let target = self.target(field(n, "relation"))?;
        let source = self.range_item(field(n, "source_relation"))?;
        for p in &source {
            self.wrap(p);
        }
        for k in ["join_condition", "merge_when_clauses", "returning_list"] {
            self.expr(field(n, k))?;
        }
        if let Some(t) = target {
            let deletes = list(n, "merge_when_clauses")
                .iter()
                .any(|w| node(w).is_some_and(|(_, w)| int(w, "command_type") == 5));
            if deletes {
                return Err(Walker::unsupported(
                    "MERGE … THEN DELETE on a protected table",
                ));
            }
            if self.visibility() != Visibility::All {
                self.extend_on(field(n, "join_condition"), &[t])?;
            }
        }
        Ok(())
    }

    fn copy(&mut self, n: &Value) -> Res<()> {
        self.expr(field(n, "query"))?;
        let rv = field(n, "relation");
        if rv.is_null() {
            return Ok(());
        }
        if tree::boolean(n, "is_from") {
            self.guard_write(rv, "COPY … FROM")?;
        }
        let target = self.target(rv)?;
        let Some(p) = target else {
            return Ok(());
        };
        if tree::boolean(n, "is_from") || self.visibility() == Visibility::All {
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
        if !list(n, "attlist").is_empty() {
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

    fn truncate(&mut self, n: &Value) -> Res<()> {
        let cascade = int(n, "behavior") == 2;
        let mut queue = Vec::new();
        for rv in list(n, "relations") {
            if let Some((_, rv)) = node(rv) {
                self.guard_write(rv, "TRUNCATE")?;
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
