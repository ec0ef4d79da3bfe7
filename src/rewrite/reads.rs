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

use serde_json::Value;

use super::edits::{Edits, quote_ident};
use super::error::RewriteError;
use super::tokens::{Clause, Tokens};
use super::tree::{self, field, int, list, node, text};
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
    pub fn resolve(&self, rv: &Value) -> Option<TableId> {
        let schema = text(rv, "schemaname");
        let name = text(rv, "relname");
        if schema.is_empty() && self.scopes.iter().any(|s| s.iter().any(|n| n == name)) {
            return None;
        }
        self.resolve_name((!schema.is_empty()).then_some(schema), name)
    }

    pub fn protected(&self, rv: &Value) -> Option<TableId> {
        self.resolve(rv)
            .filter(|&id| self.snap.table(id).is_protected())
    }

    /// The text span of a RangeVar's `[ONLY] name`, and its qualifier.
    pub fn rangevar_span(&self, rv: &Value) -> Res<(usize, usize, String)> {
        let loc = tree::location(rv)
            .ok_or_else(|| Self::unsupported("a table reference without position"))?;
        let i = self
            .t
            .at(loc)
            .ok_or_else(|| Self::unsupported("a table reference without position"))?;
        let last = self.t.name_end(i);
        let name_text = self.slice(self.t.start_of(i), self.t.end_of(last))?;
        let start = match self.t.prev(i) {
            Some(p) if self.t.is_kw(p, "ONLY") => self.t.start_of(p),
            _ => self.t.start_of(i),
        };
        let alias = text(field(rv, "alias"), "aliasname");
        let qual = if alias.is_empty() {
            name_text.to_string()
        } else {
            quote_ident(alias)
        };
        Ok((start, self.t.end_of(last), qual))
    }

    /// A protected table in a FROM position: its pending predicate.
    fn table_ref(&mut self, rv: &Value) -> Res<Vec<Pending>> {
        if let Some(loc) = tree::location(rv) {
            self.handled.insert(loc);
        }
        let Some(table) = self.protected(rv) else {
            return Ok(Vec::new());
        };
        if self.visibility() == Visibility::All {
            return Ok(Vec::new());
        }
        let (name_start, name_end, qual) = self.rangevar_span(rv)?;
        let has_alias = !text(field(rv, "alias"), "aliasname").is_empty();
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
    fn alias_shadows_column(&self, rv: &Value, p: &Pending) -> bool {
        let aliases = list(field(rv, "alias"), "colnames");
        let t = self.snap.table(p.table);
        let Some(sd) = t.soft_delete.as_ref() else {
            return false;
        };
        let position = t.columns.iter().position(|c| c.name == sd.column);
        aliases.iter().enumerate().any(|(i, a)| {
            Some(i) != position && node(a).is_some_and(|(_, s)| text(s, "sval") == p.column)
        })
    }

    /// The name under which `rv` (a reference to protected `table`) shows
    /// the soft-delete column. A column alias list renames the table's
    /// columns by position (attnum order, dropped columns excluded, as the
    /// snapshot lists them): the soft-delete column's alias if the list
    /// reaches it, else its own name.
    pub fn column_through_alias(&self, rv: &Value, table: TableId) -> Res<String> {
        let t = self.snap.table(table);
        let col = t
            .soft_delete
            .as_ref()
            .map(|s| s.column.as_str())
            .unwrap_or("deleted_at");
        let aliases = list(field(rv, "alias"), "colnames");
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
                Some(("String", s)) => Ok(text(s, "sval").to_string()),
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
    pub fn range_item(&mut self, item: &Value) -> Res<Vec<Pending>> {
        let Some((kind, n)) = node(item) else {
            return Ok(Vec::new());
        };
        match kind {
            "RangeVar" => self.table_ref(n),
            "JoinExpr" => self.join(n),
            "RangeSubselect" => {
                self.expr(field(n, "subquery"))?;
                Ok(Vec::new())
            }
            "RangeTableSample" => {
                self.expr(field(n, "args"))?;
                self.expr(field(n, "repeatable"))?;
                let rel = field(n, "relation");
                match node(rel) {
                    Some(("RangeVar", rv)) => self.table_ref(rv),
                    _ => self.range_item(rel),
                }
            }
            _ => {
                self.expr(item)?;
                Ok(Vec::new())
            }
        }
    }

    fn join(&mut self, j: &Value) -> Res<Vec<Pending>> {
        let left = self.range_item(field(j, "larg"))?;
        let right = self.range_item(field(j, "rarg"))?;
        let quals = field(j, "quals");
        self.expr(quals)?;
        let has_on = !quals.is_null();
        let aliased = !field(j, "alias").is_null() || !field(j, "join_using_alias").is_null();
        let (mut up, here) = match int(j, "jointype") {
            2 => (left, right),
            4 => (right, left),
            3 => {
                let mut both = left;
                both.extend(right);
                if !has_on || matches!(self.visibility(), Visibility::Deleted | Visibility::Setting)
                {
                    for p in &both {
                        self.wrap(p);
                    }
                    return Ok(Vec::new());
                }
                (both.clone(), both)
            }
            _ => {
                let mut both = left;
                both.extend(right);
                (both, Vec::new())
            }
        };
        if !here.is_empty() {
            if has_on {
                self.extend_on(quals, &here)?;
            } else {
                for p in &here {
                    self.wrap(p);
                }
            }
        }
        if aliased && !up.is_empty() {
            if has_on && int(j, "jointype") == 1 {
                self.extend_on(quals, &up)?;
            } else {
                for p in &up {
                    self.wrap(p);
                }
            }
            up.clear();
        }
        Ok(up)
    }

    /// `ON cond` → `ON (cond) AND preds`.
    pub fn extend_on(&mut self, quals: &Value, preds: &[Pending]) -> Res<()> {
        let (first, last) = self.clause_span(quals, &["ON"], Clause::On)?;
        self.edits.insert(self.t.start_of(first), "(");
        self.edits.insert(
            self.t.end_of(last),
            format!(") AND {}", self.predicates(preds)),
        );
        Ok(())
    }

    /// First and last token of the expression that follows keyword `kw`.
    pub fn clause_span(&self, expr: &Value, kw: &[&str], clause: Clause) -> Res<(usize, usize)> {
        let fail = || Self::unsupported("an expression tombstone cannot place");
        let loc = tree::min_location(expr).ok_or_else(fail)?;
        let i = self.t.at(loc).ok_or_else(fail)?;
        let k = self
            .t
            .keyword_before(i, kw, &["NOT", "EXISTS", "ARRAY", "ROW", "CAST", "CASE"]);
        let k = match k {
            Some(k) => k,
            None => self.keyword_before_loose(i, kw).ok_or_else(fail)?,
        };
        let first = self.t.next(k).ok_or_else(fail)?;
        let last = self.t.clause_end(k, clause);
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
        where_clause: &Value,
        preds: &[Pending],
        clause_last: impl FnOnce(&Self) -> Res<usize>,
    ) -> Res<()> {
        if preds.is_empty() {
            return Ok(());
        }
        let text = self.predicates(preds);
        if !where_clause.is_null() {
            let (first, last) = self.clause_span(where_clause, &["WHERE"], Clause::Where)?;
            self.edits.insert(self.t.start_of(first), "(");
            self.edits
                .insert(self.t.end_of(last), format!(") AND {text}"));
        } else {
            let last = clause_last(self)?;
            self.edits
                .insert(self.t.end_of(last), format!(" WHERE {text}"));
        }
        Ok(())
    }

    /// Last token of a FROM/USING list whose items are `items`.
    pub fn list_end(&self, items: &[Value], kw: &str) -> Res<usize> {
        let fail = || Self::unsupported(format!("a {kw} list tombstone cannot place"));
        let first = items.first().ok_or_else(fail)?;
        let loc = tree::min_location(first).ok_or_else(fail)?;
        let i = self.t.at(loc).ok_or_else(fail)?;
        let k = self
            .t
            .keyword_before(
                i,
                &[kw, "TABLE"],
                &[
                    "LATERAL",
                    "ONLY",
                    "SELECT",
                    "DISTINCT",
                    "ALL",
                    "VALUES",
                    "WITH",
                    "RECURSIVE",
                    "ROWS",
                ],
            )
            .ok_or_else(fail)?;
        Ok(self.t.clause_end(k, Clause::From))
    }

    pub fn with_clause(&mut self, w: &Value) -> Res<()> {
        if w.is_null() {
            return Ok(());
        }
        let recursive = tree::boolean(w, "recursive");
        let ctes = list(w, "ctes");
        if recursive {
            let names: Vec<String> = ctes
                .iter()
                .filter_map(|c| node(c).map(|(_, c)| text(c, "ctename").to_string()))
                .collect();
            if let Some(scope) = self.scopes.last_mut() {
                scope.extend(names);
            }
        }
        for c in ctes {
            if let Some((_, cte)) = node(c) {
                let outer = self.cte_start;
                self.cte_start = tree::location(cte)
                    .and_then(|l| self.t.at(l))
                    .map(|i| self.t.start_of(i));
                let r = self.expr(field(cte, "ctequery"));
                self.cte_start = outer;
                r?;
                if !recursive && let Some(scope) = self.scopes.last_mut() {
                    scope.push(text(cte, "ctename").to_string());
                }
            }
        }
        Ok(())
    }

    pub fn select(&mut self, s: &Value) -> Res<()> {
        self.scopes.push(Vec::new());
        let r = self.select_inner(s);
        self.scopes.pop();
        r
    }

    fn select_inner(&mut self, s: &Value) -> Res<()> {
        self.with_clause(field(s, "with_clause"))?;
        for k in ["sort_clause", "limit_offset", "limit_count"] {
            self.expr(field(s, k))?;
        }
        if int(s, "op") > 1 {
            self.select(field(s, "larg"))?;
            return self.select(field(s, "rarg"));
        }
        let from = list(s, "from_clause");
        let mut pending = Vec::new();
        for item in from {
            pending.extend(self.range_item(item)?);
        }
        // `TABLE t` takes no WHERE: spell it `SELECT * FROM t`.
        if !pending.is_empty()
            && let [item] = from
            && let Some(i) = tree::min_location(item).and_then(|l| self.t.at(l))
            && let Some(k) = self.t.prev(i).filter(|&k| self.t.is_kw(k, "TABLE"))
        {
            self.edits
                .replace(self.t.start_of(k), self.t.end_of(k), "SELECT * FROM");
        }
        for k in [
            "distinct_clause",
            "target_list",
            "where_clause",
            "group_clause",
            "having_clause",
            "window_clause",
            "values_lists",
        ] {
            self.expr(field(s, k))?;
        }
        for lock in list(s, "locking_clause") {
            if let Some((_, l)) = node(lock) {
                for rv in list(l, "locked_rels") {
                    if let Some((_, rv)) = node(rv)
                        && let Some(loc) = tree::location(rv)
                    {
                        self.handled.insert(loc);
                    }
                }
            }
        }
        if let Some(loc) = tree::location(field(field(s, "into_clause"), "rel")) {
            self.handled.insert(loc);
        }
        self.extend_where(field(s, "where_clause"), &pending, |w| {
            w.list_end(from, "FROM")
        })
    }

    /// Walk any subtree: queries inside expressions are rewritten.
    pub fn expr(&mut self, v: &Value) -> Res<()> {
        match v {
            Value::Array(items) => {
                for i in items {
                    self.expr(i)?;
                }
                Ok(())
            }
            Value::Object(map) => {
                if let Some((kind, n)) = node(v) {
                    match kind {
                        "SelectStmt" => return self.select(n),
                        "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
                            return self.dml(kind, n, true).map(|_| ());
                        }
                        "FuncCall" => {
                            self.sql_text_call(n)?;
                            self.function_call(n)?;
                            return self.expr(n);
                        }
                        _ => return self.expr(n),
                    }
                }
                for (_, c) in map {
                    if c.is_object() || c.is_array() {
                        self.expr(c)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Fail closed: every RangeVar naming a protected table must have been
    /// placed by the walk.
    pub fn check_all_placed(&self, v: &Value) -> Res<()> {
        match v {
            Value::Array(items) => items.iter().try_for_each(|i| self.check_all_placed(i)),
            Value::Object(map) => {
                if map.contains_key("relname")
                    && map.contains_key("relpersistence")
                    && let Some(id) = self.resolve_name(
                        Some(text(v, "schemaname")).filter(|s| !s.is_empty()),
                        text(v, "relname"),
                    )
                    && self.snap.table(id).is_protected()
                    && !tree::location(v).is_some_and(|l| self.handled.contains(&l))
                {
                    return Err(RewriteError::FailClosed {
                        what: format!(
                            "a reference to protected table {} in this position",
                            text(v, "relname")
                        ),
                    });
                }
                map.values().try_for_each(|c| self.check_all_placed(c))
            }
            _ => Ok(()),
        }
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
