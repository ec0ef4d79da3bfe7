//! Live-row reads: every protected table in a FROM position gets
//! `<alias>.deleted_at IS NULL` where it keeps the query's meaning:
//!
//! - in the `ON` of the first outer join that makes the table nullable
//!   (a soft-deleted row behaves as absent there: NULL-extended);
//! - for `FULL` joins in the `ON` *and* above (the row stays preserved);
//! - otherwise in the `WHERE` of the query that owns the FROM list;
//! - when there is no `ON` to extend (`USING`, `NATURAL`) or an aliased join
//!   hides the name, the table reference becomes
//!   `(SELECT * FROM t WHERE deleted_at IS NULL) AS t`.

use std::collections::HashSet;

use pg_query::NodeRef;
use pg_query::protobuf::{self as pb, JoinExpr, Node, RangeVar, SelectStmt, WithClause};

use super::edits::{Edits, quote_ident};
use super::error::RewriteError;
use super::tokens::{Clause, Tokens};
use super::tree::{self, node, nodes, opt};
use super::{Role, SessionContext, Visibility};
use crate::schema::{SchemaSnapshot, TableId};

pub(crate) type Res<T> = Result<T, RewriteError>;

/// A protected table reference waiting for its predicate.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub table: TableId,
    /// How the query names it: alias, or the name as written.
    pub qual: String,
    /// Byte range of `[ONLY] name` in the text.
    pub name_start: usize,
    pub name_end: usize,
    pub has_alias: bool,
    /// How the query names the soft-delete column through the reference:
    /// the column itself, or its alias when the reference has a column
    /// alias list long enough to rename it (`tasks AS t(a, b, c, d, e, f)`).
    pub column: String,
}

pub(crate) struct Walker<'a> {
    pub sql: &'a str,
    pub t: Tokens<'a>,
    pub snap: &'a SchemaSnapshot,
    pub session: &'a SessionContext,
    pub search_path: Vec<String>,
    pub edits: Edits,
    /// CTE names in scope, innermost last.
    pub scopes: Vec<Vec<String>>,
    /// Locations of RangeVars the walk has placed (checked at the end).
    pub handled: HashSet<usize>,
    /// Start of the top-level CTE being walked (where a soft DELETE inside
    /// it puts its own CTEs).
    pub cte_start: Option<usize>,
    /// Soft deletes in the current statement (at most one).
    pub soft_deletes: usize,
    /// A setting change found inside the statement (`set_config`).
    pub session_change: Option<super::SessionChange>,
    /// A decision so far read a literal's content (see
    /// [`super::Rewritten::reads_literals`]). Set by every reader of
    /// constant values ([`Walker::const_string`], [`Walker::literal_text`]).
    pub reads_literals: bool,
}

impl<'a> Walker<'a> {
    pub fn new(
        sql: &'a str,
        tokens: &'a [super::parse::Tok],
        snap: &'a SchemaSnapshot,
        session: &'a SessionContext,
    ) -> Self {
        Walker {
            sql,
            t: Tokens::new(tokens, sql),
            snap,
            session,
            search_path: session.resolved_search_path(),
            edits: Edits::default(),
            scopes: Vec::new(),
            handled: HashSet::new(),
            cte_start: None,
            soft_deletes: 0,
            session_change: None,
            reads_literals: false,
        }
    }

    pub fn visibility(&self) -> Visibility {
        match self.session.role {
            Role::Normal => Visibility::Active,
            Role::Bypass { visibility } => visibility,
        }
    }

    pub fn unsupported(what: impl Into<String>) -> RewriteError {
        RewriteError::Unsupported { what: what.into() }
    }

    /// Resolve a RangeVar to a table, honouring CTE names in scope.
    pub fn resolve(&self, rv: &RangeVar) -> Option<TableId> {
        let schema = rv.schemaname.as_str();
        let name = rv.relname.as_str();
        if schema.is_empty() && self.scopes.iter().any(|s| s.iter().any(|n| n == name)) {
            return None;
        }
        self.resolve_name((!schema.is_empty()).then_some(schema), name)
    }

    pub fn protected(&self, rv: &RangeVar) -> Option<TableId> {
        self.resolve(rv)
            .filter(|&id| self.snap.table(id).is_protected())
    }

    /// The text span of a RangeVar's `[ONLY] name`, and its qualifier.
    pub fn rangevar_span(&self, rv: &RangeVar) -> Res<(usize, usize, String)> {
        let fail = || Self::unsupported("a table reference without position");
        let loc = usize::try_from(rv.location).map_err(|_| fail())?;
        let i = self.t.at(loc).ok_or_else(fail)?;
        let last = self.t.name_end(i);
        let name_text = self.slice(self.t.start_of(i), self.t.end_of(last))?;
        let start = match self.t.prev(i) {
            Some(p) if self.t.is_kw(p, "ONLY") => self.t.start_of(p),
            _ => self.t.start_of(i),
        };
        let alias = alias_name(rv);
        let qual = if alias.is_empty() {
            name_text.to_string()
        } else {
            quote_ident(alias)
        };
        Ok((start, self.t.end_of(last), qual))
    }

    /// Marks a RangeVar as placed by the walk.
    pub fn mark(&mut self, rv: &RangeVar) {
        if let Ok(loc) = usize::try_from(rv.location) {
            self.handled.insert(loc);
        }
    }

    /// A protected table in a FROM position: its pending predicate.
    fn table_ref(&mut self, rv: &RangeVar) -> Res<Vec<Pending>> {
        self.mark(rv);
        let Some(table) = self.protected(rv) else {
            return Ok(Vec::new());
        };
        if self.visibility() == Visibility::All {
            return Ok(Vec::new());
        }
        let (name_start, name_end, qual) = self.rangevar_span(rv)?;
        let has_alias = !alias_name(rv).is_empty();
        let column = self.column_through_alias(rv, table)?;
        let pending = Pending {
            table,
            qual,
            name_start,
            name_end,
            has_alias,
            column,
        };
        // `tasks AS t(id, project_id, deleted_at)`: the list stops before
        // the soft-delete column but gives its name to another one, so
        // `t.deleted_at` would be ambiguous. Filter inside instead.
        if self.alias_shadows_column(rv, &pending) {
            self.wrap(&pending);
            return Ok(Vec::new());
        }
        Ok(vec![pending])
    }

    /// An alias list names another column like the soft-delete column.
    fn alias_shadows_column(&self, rv: &RangeVar, p: &Pending) -> bool {
        let aliases = alias_columns(rv);
        let t = self.snap.table(p.table);
        let Some(sd) = t.soft_delete.as_ref() else {
            return false;
        };
        let position = t.columns.iter().position(|c| c.name == sd.column);
        aliases.iter().enumerate().any(|(i, a)| {
            Some(i) != position && matches!(node(a), Some(NodeRef::String(s)) if s.sval == p.column)
        })
    }

    /// The name under which `rv` (a reference to protected `table`) shows
    /// the soft-delete column. A column alias list renames the table's
    /// columns by position (attnum order, dropped columns excluded, as the
    /// snapshot lists them): the soft-delete column's alias if the list
    /// reaches it, else its own name.
    pub fn column_through_alias(&self, rv: &RangeVar, table: TableId) -> Res<String> {
        let t = self.snap.table(table);
        let col = t
            .soft_delete
            .as_ref()
            .map(|s| s.column.as_str())
            .unwrap_or("deleted_at");
        let aliases = alias_columns(rv);
        if aliases.is_empty() {
            return Ok(col.to_string());
        }
        let position = t
            .columns
            .iter()
            .position(|c| c.name == col)
            .ok_or_else(|| {
                Self::unsupported(
                    "a column alias list on a table whose columns tombstone does not know",
                )
            })?;
        match aliases.get(position) {
            Some(a) => match node(a) {
                Some(NodeRef::String(s)) => Ok(s.sval.clone()),
                _ => Err(Self::unsupported("a column alias tombstone cannot read")),
            },
            None => Ok(col.to_string()),
        }
    }

    /// `<qual>.deleted_at IS NULL` (or `IS NOT NULL` for the trash view,
    /// or the setting-driven `CASE` for bypass sessions).
    pub fn predicate(&self, p: &Pending) -> String {
        self.visibility_test(&format!("{}.{}", p.qual, quote_ident(&p.column)))
    }

    /// The filter on the soft-delete column `col` (as written, qualified
    /// or not) for this session's visibility.
    pub fn visibility_test(&self, col: &str) -> String {
        match self.visibility() {
            Visibility::Deleted => format!("{col} IS NOT NULL"),
            Visibility::Setting => format!(
                "(CASE pg_catalog.current_setting('tombstone.visibility', true) \
                 WHEN 'deleted' THEN {col} IS NOT NULL WHEN 'active' THEN {col} IS NULL \
                 ELSE true END)"
            ),
            Visibility::Active | Visibility::All => format!("{col} IS NULL"),
        }
    }

    fn predicates(&self, ps: &[Pending]) -> String {
        ps.iter()
            .map(|p| self.predicate(p))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Replace the reference by a filtered subquery with the same name.
    pub fn wrap(&mut self, p: &Pending) {
        let table = self.snap.table(p.table);
        let col = table
            .soft_delete
            .as_ref()
            .map(|s| s.column.as_str())
            .unwrap_or("deleted_at");
        let original = self.sql.get(p.name_start..p.name_end).unwrap_or_default();
        let mut text = format!(
            "(SELECT * FROM {original} WHERE {})",
            self.visibility_test(&quote_ident(col))
        );
        if !p.has_alias {
            text.push_str(" AS ");
            text.push_str(&quote_ident(&table.name));
        }
        self.edits.replace(p.name_start, p.name_end, text);
    }

    /// One FROM item; returns the predicates that belong above it.
    pub fn range_item(&mut self, item: NodeRef<'_>) -> Res<Vec<Pending>> {
        match item {
            NodeRef::RangeVar(rv) => self.table_ref(rv),
            NodeRef::JoinExpr(j) => self.join(j),
            NodeRef::RangeSubselect(r) => {
                self.expr_opt(&r.subquery)?;
                Ok(Vec::new())
            }
            NodeRef::RangeTableSample(ts) => {
                self.expr_list(&ts.args)?;
                self.expr_opt(&ts.repeatable)?;
                match opt(&ts.relation) {
                    Some(rel) => self.range_item(rel),
                    None => Ok(Vec::new()),
                }
            }
            other => {
                self.expr(other)?;
                Ok(Vec::new())
            }
        }
    }

    /// A FROM item in a `Node` wrapper.
    pub fn range_node(&mut self, item: &Node) -> Res<Vec<Pending>> {
        match node(item) {
            Some(n) => self.range_item(n),
            None => Ok(Vec::new()),
        }
    }

    /// The items of a FROM (or USING) list.
    pub fn range_list(&mut self, items: &[Node]) -> Res<Vec<Pending>> {
        let mut pending = Vec::new();
        for item in items {
            pending.extend(self.range_node(item)?);
        }
        Ok(pending)
    }

    fn join(&mut self, j: &JoinExpr) -> Res<Vec<Pending>> {
        let left = match opt(&j.larg) {
            Some(l) => self.range_item(l)?,
            None => Vec::new(),
        };
        let right = match opt(&j.rarg) {
            Some(r) => self.range_item(r)?,
            None => Vec::new(),
        };
        let quals = opt(&j.quals);
        if let Some(q) = quals {
            self.expr(q)?;
        }
        let aliased = j.alias.is_some() || j.join_using_alias.is_some();
        let join_type = pb::JoinType::try_from(j.jointype)
            .map_err(|_| Self::unsupported("a join of a kind tombstone does not know"))?;
        let (mut up, here) = match join_type {
            pb::JoinType::JoinLeft => (left, right),
            pb::JoinType::JoinRight => (right, left),
            pb::JoinType::JoinFull => {
                let mut both = left;
                both.extend(right);
                if quals.is_none()
                    || matches!(self.visibility(), Visibility::Deleted | Visibility::Setting)
                {
                    for p in &both {
                        self.wrap(p);
                    }
                    return Ok(Vec::new());
                }
                (both.clone(), both)
            }
            pb::JoinType::JoinInner => {
                let mut both = left;
                both.extend(right);
                (both, Vec::new())
            }
            // Planner join kinds: never in a raw parse tree.
            pb::JoinType::Undefined
            | pb::JoinType::JoinSemi
            | pb::JoinType::JoinAnti
            | pb::JoinType::JoinRightSemi
            | pb::JoinType::JoinRightAnti
            | pb::JoinType::JoinUniqueOuter
            | pb::JoinType::JoinUniqueInner => {
                return Err(Self::unsupported(
                    "a join of a kind tombstone does not know",
                ));
            }
        };
        if !here.is_empty() {
            match quals {
                Some(q) => self.extend_on(q, &here)?,
                None => {
                    for p in &here {
                        self.wrap(p);
                    }
                }
            }
        }
        if aliased && !up.is_empty() {
            match quals {
                Some(q) if join_type == pb::JoinType::JoinInner => self.extend_on(q, &up)?,
                _ => {
                    for p in &up {
                        self.wrap(p);
                    }
                }
            }
            up.clear();
        }
        Ok(up)
    }

    /// `ON cond` → `ON (cond) AND preds`.
    pub fn extend_on(&mut self, quals: NodeRef<'_>, preds: &[Pending]) -> Res<()> {
        let (first, last) = self.clause_span(quals, &["ON"], Clause::On)?;
        self.edits.insert(self.t.start_of(first), "(");
        self.edits.insert(
            self.t.end_of(last),
            format!(") AND {}", self.predicates(preds)),
        );
        Ok(())
    }

    /// First and last token of the expression `expr` that follows keyword
    /// `kw`. It starts after the keyword before its first located node and
    /// ends at the first token after its last located node that ends the
    /// clause (see [`Tokens::clause_end`]).
    pub fn clause_span(
        &self,
        expr: NodeRef<'_>,
        kw: &[&str],
        clause: Clause,
    ) -> Res<(usize, usize)> {
        let fail = || Self::unsupported("an expression tombstone cannot place");
        let (loc, max) = tree::location_span(expr).ok_or_else(fail)?;
        let i = self.t.at(loc).ok_or_else(fail)?;
        let k = self
            .t
            .keyword_before(i, kw, &["NOT", "EXISTS", "ARRAY", "ROW", "CAST", "CASE"]);
        let k = match k {
            Some(k) => k,
            None => self.keyword_before_loose(i, kw).ok_or_else(fail)?,
        };
        let first = self.t.next(k).ok_or_else(fail)?;
        let last = self.t.clause_end(k, max, clause);
        if last < first {
            return Err(fail());
        }
        Ok((first, last))
    }

    /// Walk back over any tokens at or below the current depth to `kw` at
    /// depth 0 (for expressions whose first located node is not their first
    /// token, e.g. `(SELECT …) = x` or `- a`).
    fn keyword_before_loose(&self, i: usize, kw: &[&str]) -> Option<usize> {
        let mut depth = 0i32;
        let mut j = i;
        while let Some(p) = self.t.prev(j) {
            j = p;
            if self.t.is_char(p, b')') {
                depth += 1;
            } else if self.t.is_char(p, b'(') {
                depth -= 1;
                if depth < 0 {
                    depth = 0;
                }
            } else if depth == 0 && self.t.kw(p).is_some_and(|k| kw.contains(&k)) {
                return Some(p);
            }
        }
        None
    }

    /// Add predicates to a statement's WHERE, creating it if absent after
    /// the token `clause_last` (the last token of the clause before WHERE).
    pub fn extend_where(
        &mut self,
        where_clause: Option<NodeRef<'_>>,
        preds: &[Pending],
        clause_last: impl FnOnce(&Self) -> Res<usize>,
    ) -> Res<()> {
        if preds.is_empty() {
            return Ok(());
        }
        let text = self.predicates(preds);
        match where_clause {
            Some(w) => {
                let (first, last) = self.clause_span(w, &["WHERE"], Clause::Where)?;
                self.edits.insert(self.t.start_of(first), "(");
                self.edits
                    .insert(self.t.end_of(last), format!(") AND {text}"));
            }
            None => {
                let last = clause_last(self)?;
                self.edits
                    .insert(self.t.end_of(last), format!(" WHERE {text}"));
            }
        }
        Ok(())
    }

    /// Last token of a FROM/USING list whose items are `items`.
    pub fn list_end(&self, items: &[Node], kw: &str) -> Res<usize> {
        let fail = || Self::unsupported(format!("a {kw} list tombstone cannot place"));
        let first = items.first().and_then(node).ok_or_else(fail)?;
        let loc = tree::min_location(first).ok_or_else(fail)?;
        let max = tree::max_location_of(nodes(items)).ok_or_else(fail)?;
        let i = self.t.at(loc).ok_or_else(fail)?;
        let k = self
            .t
            .keyword_before(i, &[kw, "TABLE"], LIST_PREFIX)
            .ok_or_else(fail)?;
        Ok(self.t.clause_end(k, max, Clause::From))
    }

    pub fn with_clause(&mut self, w: Option<&WithClause>) -> Res<()> {
        self.scoped_ctes(w, |this, cte| {
            let outer = this.cte_start;
            this.cte_start = usize::try_from(cte.location)
                .ok()
                .and_then(|l| this.t.at(l))
                .map(|i| this.t.start_of(i));
            let r = this.expr_opt(&cte.ctequery);
            this.cte_start = outer;
            r
        })
    }

    /// Visits the CTEs of a WITH in order, each with the names PostgreSQL
    /// puts in scope for it (all of a RECURSIVE list's, else the earlier
    /// ones'); after the list, all of them are in scope. Shared by the walk
    /// and the check of its output, so both resolve names alike.
    pub fn scoped_ctes(
        &mut self,
        w: Option<&WithClause>,
        mut each: impl FnMut(&mut Self, &pb::CommonTableExpr) -> Res<()>,
    ) -> Res<()> {
        let Some(w) = w else {
            return Ok(());
        };
        let ctes: Vec<&pb::CommonTableExpr> = nodes(&w.ctes)
            .filter_map(|c| match c {
                NodeRef::CommonTableExpr(cte) => Some(cte),
                _ => None,
            })
            .collect();
        if w.recursive
            && let Some(scope) = self.scopes.last_mut()
        {
            scope.extend(ctes.iter().map(|c| c.ctename.clone()));
        }
        for cte in ctes {
            each(self, cte)?;
            if !w.recursive
                && let Some(scope) = self.scopes.last_mut()
            {
                scope.push(cte.ctename.clone());
            }
        }
        Ok(())
    }

    pub fn select(&mut self, s: &SelectStmt) -> Res<()> {
        self.scopes.push(Vec::new());
        let r = self.select_inner(s);
        self.scopes.pop();
        r
    }

    fn select_inner(&mut self, s: &SelectStmt) -> Res<()> {
        self.with_clause(s.with_clause.as_ref())?;
        self.expr_list(&s.sort_clause)?;
        self.expr_opt(&s.limit_offset)?;
        self.expr_opt(&s.limit_count)?;
        let op = pb::SetOperation::try_from(s.op)
            .map_err(|_| Self::unsupported("a set operation tombstone does not know"))?;
        match op {
            pb::SetOperation::SetopNone => {}
            pb::SetOperation::SetopUnion
            | pb::SetOperation::SetopIntersect
            | pb::SetOperation::SetopExcept => {
                if let Some(l) = s.larg.as_deref() {
                    self.select(l)?;
                }
                if let Some(r) = s.rarg.as_deref() {
                    self.select(r)?;
                }
                return Ok(());
            }
            pb::SetOperation::Undefined => {
                return Err(Self::unsupported("a set operation tombstone does not know"));
            }
        }
        let from = &s.from_clause;
        let pending = self.range_list(from)?;
        // `TABLE t` takes no WHERE: spell it `SELECT * FROM t`.
        if !pending.is_empty()
            && let [item] = from.as_slice()
            && let Some(i) = node(item)
                .and_then(tree::min_location)
                .and_then(|l| self.t.at(l))
            && let Some(k) = self.t.prev(i).filter(|&k| self.t.is_kw(k, "TABLE"))
        {
            self.edits
                .replace(self.t.start_of(k), self.t.end_of(k), "SELECT * FROM");
        }
        self.expr_list(&s.distinct_clause)?;
        self.expr_list(&s.target_list)?;
        self.expr_opt(&s.where_clause)?;
        self.expr_list(&s.group_clause)?;
        self.expr_opt(&s.having_clause)?;
        self.expr_list(&s.window_clause)?;
        self.expr_list(&s.values_lists)?;
        for lock in nodes(&s.locking_clause) {
            if let NodeRef::LockingClause(l) = lock {
                for rv in nodes(&l.locked_rels) {
                    if let NodeRef::RangeVar(rv) = rv {
                        self.mark(rv);
                    }
                }
            }
        }
        if let Some(rel) = s.into_clause.as_ref().and_then(|i| i.rel.as_ref()) {
            self.mark(rel);
        }
        self.extend_where(opt(&s.where_clause), &pending, |w| w.list_end(from, "FROM"))
    }

    /// Walk any subtree: queries inside expressions are rewritten.
    pub fn expr(&mut self, n: NodeRef<'_>) -> Res<()> {
        match n {
            NodeRef::SelectStmt(s) => self.select(s),
            NodeRef::InsertStmt(_)
            | NodeRef::UpdateStmt(_)
            | NodeRef::DeleteStmt(_)
            | NodeRef::MergeStmt(_) => self.dml(n, true).map(|_| ()),
            NodeRef::FuncCall(f) => {
                self.sql_text_call(f)?;
                self.function_call(f)?;
                self.expr_children(n)
            }
            _ => self.expr_children(n),
        }
    }

    fn expr_children(&mut self, n: NodeRef<'_>) -> Res<()> {
        for c in tree::child_list(n) {
            self.expr(c)?;
        }
        Ok(())
    }

    /// [`Self::expr`] of an optional boxed node.
    pub fn expr_opt(&mut self, n: &Option<Box<Node>>) -> Res<()> {
        match opt(n) {
            Some(n) => self.expr(n),
            None => Ok(()),
        }
    }

    /// [`Self::expr`] of each node of a list.
    pub fn expr_list(&mut self, items: &[Node]) -> Res<()> {
        for n in nodes(items) {
            self.expr(n)?;
        }
        Ok(())
    }

    /// Fail closed: every RangeVar naming a protected table must have been
    /// placed by the walk.
    pub fn check_all_placed(&self, root: NodeRef<'_>) -> Res<()> {
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            if let NodeRef::RangeVar(rv) = n
                && let Some(id) = self.resolve_name(
                    Some(rv.schemaname.as_str()).filter(|s| !s.is_empty()),
                    &rv.relname,
                )
                && self.snap.table(id).is_protected()
                && !usize::try_from(rv.location).is_ok_and(|l| self.handled.contains(&l))
            {
                return Err(RewriteError::FailClosed {
                    what: format!(
                        "a reference to protected table {} in this position",
                        rv.relname
                    ),
                });
            }
            tree::children(n, &mut stack);
        }
        Ok(())
    }

    /// `sql[start..end]`, or an error for offsets off a character boundary.
    pub fn slice(&self, start: usize, end: usize) -> Res<&'a str> {
        self.sql
            .get(start..end)
            .ok_or_else(|| Self::unsupported("a statement position tombstone cannot read"))
    }

    /// The text of `[start, end)` with the edits inside it applied.
    pub fn render(&self, start: usize, end: usize) -> Res<String> {
        self.edits
            .render(self.sql, start, end)
            .ok_or_else(|| Self::unsupported("overlapping rewrites in one statement"))
    }
}

/// Words that may stand between a FROM/USING keyword and the first located
/// node of its first item (`FROM LATERAL (SELECT DISTINCT …`, `FROM ONLY t`,
/// `FROM (VALUES …`, `FROM (WITH …`, `FROM ROWS FROM (…)`, `TABLE t`).
pub(crate) const LIST_PREFIX: &[&str] = &[
    "LATERAL",
    "ONLY",
    "SELECT",
    "DISTINCT",
    "ALL",
    "VALUES",
    "WITH",
    "RECURSIVE",
    "ROWS",
    "TABLE",
];

/// A RangeVar's alias, empty when it has none.
pub(crate) fn alias_name(rv: &RangeVar) -> &str {
    rv.alias.as_ref().map_or("", |a| a.aliasname.as_str())
}

/// A RangeVar's column alias list.
fn alias_columns(rv: &RangeVar) -> &[Node] {
    rv.alias.as_ref().map_or(&[], |a| a.colnames.as_slice())
}
