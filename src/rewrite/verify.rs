//! The check of every rewrite before it is sent (item "verified output").
//!
//! Each rewritten statement is parsed again, on its own, and checked
//! against the client's:
//!
//! 1. **It parses**, as one statement of the same kind (a soft delete: an
//!    `UPDATE` of the same table).
//! 2. **Every reference to a protected table is filtered** at its own query
//!    level: a visibility test of the soft-delete column through the
//!    reference's name (`t.deleted_at IS NULL`, `IS NOT NULL` for the
//!    trash, the setting-driven `CASE` for bypass sessions) is a conjunct
//!    of the `WHERE` of the query whose FROM holds it, or of the `ON` of a
//!    join in that FROM (a wrapper `(SELECT * FROM t WHERE … IS NULL)` is a
//!    query level of its own). Only positions that read no rows are exempt:
//!    an INSERT or COPY FROM target, `FOR UPDATE OF`, `INTO`. This is a
//!    second, independent reading of what the walk decided, over the
//!    output's own tree.
//! 3. **Apart from the edits the tree is the client's**: both trees, with
//!    every visibility-test conjunct and every filtering wrapper removed and
//!    locations ignored, are equal. A soft delete is compared part by part:
//!    its table, the client's `WITH` items, and the client's `WHERE` and
//!    `USING` against the `tombstone_target` CTE that evaluates them once
//!    (its `RETURNING` is rewritten to show the row as a hard delete would
//!    and is not compared). An INSERT's `ON CONFLICT` clause, which the
//!    revive adds or extends, is not compared.
//!
//! A failed check is [`RewriteError::Unverified`] (SQLSTATE TS001): the
//! statement is refused, never sent. The normalized comparison of (3)
//! serializes both trees with pg_query's serde support; it runs on cache
//! misses only (its cost is measured by `benches/rewrite_cache.rs`).

use pg_query::NodeRef;
use pg_query::protobuf::{self as pb, Node, RangeVar};
use serde_json::Value;

use super::Visibility;
use super::error::RewriteError;
use super::reads::{Res, Walker, alias_name};
use super::tree::{self, node, nodes, opt};
use crate::schema::TableId;

/// The CTE a soft delete adds first.
const TARGET_CTE: &str = super::cascade_sql::TARGET;

fn unverified(reason: impl Into<String>) -> RewriteError {
    RewriteError::Unverified {
        reason: reason.into(),
    }
}

impl<'a> Walker<'a> {
    /// Checks the rewrite of one statement: `input` is the client's tree,
    /// `output` the text the edits made of it.
    pub(crate) fn verify(&mut self, input: NodeRef<'_>, output: &str) -> Res<()> {
        let parsed = pg_query::parse(output, 0)
            .map_err(|e| unverified(format!("the rewritten statement does not parse: {e}")))?;
        let [raw] = parsed.protobuf.stmts.as_slice() else {
            return Err(unverified(
                "the rewritten text is not one statement as the client's was",
            ));
        };
        let out = raw
            .stmt
            .as_deref()
            .and_then(node)
            .ok_or_else(|| unverified("the rewritten statement is empty"))?;
        let scopes = std::mem::take(&mut self.scopes);
        let covered = self.covered_statement(out);
        self.scopes = scopes;
        covered?;
        let mut columns = self.soft_delete_columns();
        alias_column_names(out, &mut columns);
        self.same_shape(input, out, &columns)
    }

    // ---- (2) coverage ------------------------------------------------

    fn covered_statement(&mut self, n: NodeRef<'_>) -> Res<()> {
        self.scopes.push(Vec::new());
        let r = self.covered_inner(n);
        self.scopes.pop();
        r
    }

    fn covered_inner(&mut self, n: NodeRef<'_>) -> Res<()> {
        match n {
            NodeRef::SelectStmt(s) => {
                self.covered_with(s.with_clause.as_ref())?;
                if s.larg.is_some() || s.rarg.is_some() {
                    for side in [s.larg.as_deref(), s.rarg.as_deref()].into_iter().flatten() {
                        self.covered_statement(NodeRef::SelectStmt(side))?;
                    }
                    return self
                        .covered_exprs(&[&s.sort_clause[..]], &[&s.limit_offset, &s.limit_count]);
                }
                let mut conj = conjuncts(opt(&s.where_clause));
                let single = single_relation(&s.from_clause);
                for item in nodes(&s.from_clause) {
                    join_quals(item, &mut conj);
                }
                for item in nodes(&s.from_clause) {
                    self.covered_from(item, &conj, single)?;
                }
                self.covered_exprs(
                    &[
                        &s.distinct_clause[..],
                        &s.target_list[..],
                        &s.group_clause[..],
                        &s.window_clause[..],
                        &s.values_lists[..],
                        &s.sort_clause[..],
                    ],
                    &[
                        &s.where_clause,
                        &s.having_clause,
                        &s.limit_offset,
                        &s.limit_count,
                    ],
                )
            }
            NodeRef::UpdateStmt(u) => {
                self.covered_with(u.with_clause.as_ref())?;
                let mut conj = conjuncts(opt(&u.where_clause));
                for item in nodes(&u.from_clause) {
                    join_quals(item, &mut conj);
                }
                let current_of = matches!(opt(&u.where_clause), Some(NodeRef::CurrentOfExpr(_)));
                if let Some(rv) = &u.relation
                    && !current_of
                {
                    self.covered_rangevar(rv, &conj, u.from_clause.is_empty())?;
                }
                for item in nodes(&u.from_clause) {
                    self.covered_from(item, &conj, false)?;
                }
                self.covered_exprs(&[&u.target_list[..]], &[&u.where_clause])?;
                self.covered_returning(u.returning_clause.as_ref())
            }
            NodeRef::DeleteStmt(d) => {
                self.covered_with(d.with_clause.as_ref())?;
                let mut conj = conjuncts(opt(&d.where_clause));
                for item in nodes(&d.using_clause) {
                    join_quals(item, &mut conj);
                }
                let current_of = matches!(opt(&d.where_clause), Some(NodeRef::CurrentOfExpr(_)));
                if let Some(rv) = &d.relation
                    && !current_of
                {
                    self.covered_rangevar(rv, &conj, d.using_clause.is_empty())?;
                }
                for item in nodes(&d.using_clause) {
                    self.covered_from(item, &conj, false)?;
                }
                self.covered_exprs(&[], &[&d.where_clause])?;
                self.covered_returning(d.returning_clause.as_ref())
            }
            NodeRef::InsertStmt(i) => {
                self.covered_with(i.with_clause.as_ref())?;
                // The target reads no rows (ON CONFLICT's are the revive's).
                self.covered_exprs(&[], &[&i.select_stmt])?;
                if let Some(c) = i.on_conflict_clause.as_deref() {
                    self.covered_any(NodeRef::OnConflictClause(c))?;
                }
                self.covered_returning(i.returning_clause.as_ref())
            }
            NodeRef::MergeStmt(m) => {
                self.covered_with(m.with_clause.as_ref())?;
                let conj = conjuncts(opt(&m.join_condition));
                if let Some(rv) = &m.relation {
                    self.covered_rangevar(rv, &conj, false)?;
                }
                if let Some(src) = opt(&m.source_relation) {
                    self.covered_from(src, &conj, false)?;
                }
                self.covered_exprs(&[&m.merge_when_clauses[..]], &[&m.join_condition])?;
                self.covered_returning(m.returning_clause.as_ref())
            }
            NodeRef::CopyStmt(c) => {
                if let Some(rv) = &c.relation
                    && !c.is_from
                {
                    self.covered_rangevar(rv, &[], false)?;
                }
                self.covered_exprs(&[], &[&c.query])
            }
            other => self.covered_any(other),
        }
    }

    fn covered_with(&mut self, w: Option<&pb::WithClause>) -> Res<()> {
        let Some(w) = w else { return Ok(()) };
        let names: Vec<String> = nodes(&w.ctes)
            .filter_map(|c| match c {
                NodeRef::CommonTableExpr(c) => Some(c.ctename.clone()),
                _ => None,
            })
            .collect();
        if w.recursive
            && let Some(s) = self.scopes.last_mut()
        {
            s.extend(names.iter().cloned());
        }
        for c in nodes(&w.ctes) {
            if let NodeRef::CommonTableExpr(cte) = c {
                if let Some(q) = opt(&cte.ctequery) {
                    self.covered_statement(q)?;
                }
                if !w.recursive
                    && let Some(s) = self.scopes.last_mut()
                {
                    s.push(cte.ctename.clone());
                }
            }
        }
        Ok(())
    }

    fn covered_returning(&mut self, r: Option<&pb::ReturningClause>) -> Res<()> {
        match r {
            Some(r) => self.covered_any(NodeRef::ReturningClause(r)),
            None => Ok(()),
        }
    }

    fn covered_exprs(&mut self, lists: &[&[Node]], opts: &[&Option<Box<Node>>]) -> Res<()> {
        for l in lists {
            for n in nodes(l) {
                self.covered_any(n)?;
            }
        }
        for o in opts {
            if let Some(n) = opt(o) {
                self.covered_any(n)?;
            }
        }
        Ok(())
    }

    /// Any other subtree: queries inside are query levels of their own; a
    /// protected table named outside a FROM position that reads no rows is
    /// uncovered.
    fn covered_any(&mut self, n: NodeRef<'_>) -> Res<()> {
        match n {
            NodeRef::SelectStmt(_)
            | NodeRef::InsertStmt(_)
            | NodeRef::UpdateStmt(_)
            | NodeRef::DeleteStmt(_)
            | NodeRef::MergeStmt(_) => self.covered_statement(n),
            // Positions that read no rows.
            NodeRef::LockingClause(_) | NodeRef::IntoClause(_) => Ok(()),
            NodeRef::RangeVar(rv) => self.covered_rangevar(rv, &[], false),
            other => {
                for c in tree::child_list(other) {
                    self.covered_any(c)?;
                }
                Ok(())
            }
        }
    }

    /// A FROM item of a query level whose WHERE/ON conjuncts are `conj`.
    fn covered_from(&mut self, item: NodeRef<'_>, conj: &[NodeRef<'_>], single: bool) -> Res<()> {
        match item {
            NodeRef::RangeVar(rv) => self.covered_rangevar(rv, conj, single),
            NodeRef::JoinExpr(j) => {
                for side in [opt(&j.larg), opt(&j.rarg)].into_iter().flatten() {
                    self.covered_from(side, conj, false)?;
                }
                match opt(&j.quals) {
                    Some(q) => self.covered_any(q),
                    None => Ok(()),
                }
            }
            NodeRef::RangeTableSample(ts) => {
                if let Some(rel) = opt(&ts.relation) {
                    self.covered_from(rel, conj, single)?;
                }
                self.covered_exprs(&[&ts.args[..]], &[&ts.repeatable])
            }
            NodeRef::RangeSubselect(r) => self.covered_exprs(&[], &[&r.subquery]),
            other => self.covered_any(other),
        }
    }

    /// A reference to a protected table is filtered by a conjunct of its
    /// query level: the session's visibility test, or the live-rows test
    /// (a soft delete and its cascade touch live rows only, whatever the
    /// session reads; never less than that is shown).
    fn covered_rangevar(&mut self, rv: &RangeVar, conj: &[NodeRef<'_>], single: bool) -> Res<()> {
        let Some(id) = self.protected(rv) else {
            return Ok(());
        };
        if self.visibility() == Visibility::All {
            return Ok(());
        }
        let column = self.column_through_alias(rv, id)?;
        let qual: Vec<&str> = if alias_name(rv).is_empty() {
            [rv.schemaname.as_str(), rv.relname.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            vec![alias_name(rv)]
        };
        let want = self.visibility();
        let through = |fields: &[&str]| {
            matches!(fields.split_last(), Some((col, q)) if *col == column
                && (q == qual.as_slice()
                    || (q.is_empty() && single)
                    || (q.len() == 1 && qual.len() == 2 && q[0] == qual[1])))
        };
        let filtered = conj.iter().any(|c| {
            is_visibility_test(*c, want, through)
                || is_visibility_test(*c, Visibility::Active, through)
        });
        if filtered {
            return Ok(());
        }
        Err(unverified(format!(
            "the rewritten statement reads protected table {} without its filter",
            self.name_of(id)
        )))
    }

    fn name_of(&self, id: TableId) -> String {
        let t = self.snap.table(id);
        format!("{}.{}", t.schema, t.name)
    }

    // ---- (3) shape ---------------------------------------------------

    fn same_shape(&self, input: NodeRef<'_>, out: NodeRef<'_>, columns: &[String]) -> Res<()> {
        let same_inner = |a: &Option<Box<Node>>, b: &Option<Box<Node>>| match (opt(a), opt(b)) {
            (Some(a), Some(b)) => self.same_shape(a, b, columns),
            (None, None) => Ok(()),
            _ => Err(unverified("the rewritten statement lost its query")),
        };
        match (input, out) {
            (NodeRef::DeleteStmt(d), NodeRef::UpdateStmt(u)) => {
                self.same_soft_delete(d, u, columns)
            }
            // Statements around a query: the query is compared as one.
            (NodeRef::PrepareStmt(a), NodeRef::PrepareStmt(b)) if a.name == b.name => {
                same_inner(&a.query, &b.query)
            }
            (NodeRef::ExplainStmt(a), NodeRef::ExplainStmt(b)) => same_inner(&a.query, &b.query),
            (NodeRef::DeclareCursorStmt(a), NodeRef::DeclareCursorStmt(b))
                if a.portalname == b.portalname =>
            {
                same_inner(&a.query, &b.query)
            }
            (NodeRef::CopyStmt(a), NodeRef::CopyStmt(b))
                if a.relation.is_some() && b.query.is_some() =>
            {
                // COPY t TO …: the table became a filtered query of it.
                if a.is_from == b.is_from && a.options.len() == b.options.len() {
                    Ok(())
                } else {
                    Err(unverified(
                        "the rewritten COPY changed its direction or options",
                    ))
                }
            }
            _ => {
                if std::mem::discriminant(&input.to_enum())
                    != std::mem::discriminant(&out.to_enum())
                {
                    return Err(unverified("the rewritten statement is of another kind"));
                }
                let mut a = self.normalized(input, columns)?;
                let mut b = self.normalized(out, columns)?;
                self.canonical_soft_deletes(&mut a, false);
                self.canonical_soft_deletes(&mut b, true);
                if a == b {
                    Ok(())
                } else {
                    {
                        tracing::warn!(client = %a, rewritten = %b, "rewrite check: trees differ");
                    }
                    Err(unverified(
                        "the rewritten statement differs from the client's beyond tombstone's filters",
                    ))
                }
            }
        }
    }

    /// A soft delete: the table, the client's WITH items, its WHERE and its
    /// USING items, as `tombstone_target` evaluates them.
    fn same_soft_delete(
        &self,
        d: &pb::DeleteStmt,
        u: &pb::UpdateStmt,
        columns: &[String],
    ) -> Res<()> {
        let differs =
            |what: &str| unverified(format!("the soft delete changed the client's {what}"));
        let rel_in = d
            .relation
            .as_ref()
            .map(|r| (&r.schemaname, &r.relname, alias_name(r)));
        let rel_out = u
            .relation
            .as_ref()
            .map(|r| (&r.schemaname, &r.relname, alias_name(r)));
        if rel_in != rel_out {
            return Err(differs("table"));
        }
        let ctes_out: Vec<&pb::CommonTableExpr> = u
            .with_clause
            .iter()
            .flat_map(|w| nodes(&w.ctes))
            .filter_map(|c| match c {
                NodeRef::CommonTableExpr(c) => Some(c),
                _ => None,
            })
            .collect();
        let target = ctes_out
            .iter()
            .find(|c| c.ctename == TARGET_CTE)
            .and_then(|c| opt(&c.ctequery))
            .and_then(|q| match q {
                NodeRef::SelectStmt(s) => Some(s),
                _ => None,
            })
            .ok_or_else(|| differs("WHERE (no target CTE)"))?;
        let client_ctes: Vec<Value> = d
            .with_clause
            .iter()
            .flat_map(|w| nodes(&w.ctes))
            .map(|c| self.normalized(c, columns))
            .collect::<Res<_>>()?;
        let kept_ctes: Vec<Value> = ctes_out
            .iter()
            .filter(|c| !c.ctename.starts_with("tombstone_"))
            .map(|c| self.normalized(NodeRef::CommonTableExpr(c), columns))
            .collect::<Res<_>>()?;
        if client_ctes != kept_ctes {
            return Err(differs("WITH items"));
        }
        let where_in = self.normalized_condition(opt(&d.where_clause), columns)?;
        let where_out = self.normalized_condition(opt(&target.where_clause), columns)?;
        if where_in != where_out {
            {
                tracing::warn!(client = %where_in, rewritten = %where_out, "rewrite check: trees differ");
            }
            return Err(differs("WHERE"));
        }
        let using_in: Vec<Value> = nodes(&d.using_clause)
            .map(|n| self.normalized(n, columns))
            .collect::<Res<_>>()?;
        let using_out: Vec<Value> = nodes(&target.from_clause)
            .skip(1)
            .map(|n| self.normalized(n, columns))
            .collect::<Res<_>>()?;
        if using_in != using_out {
            return Err(differs("USING"));
        }
        Ok(())
    }

    /// The tree without locations, visibility-test conjuncts (of the
    /// column names in `columns`), filtering wrappers and ON CONFLICT
    /// clauses.
    fn normalized(&self, n: NodeRef<'_>, columns: &[String]) -> Res<Value> {
        let inner = serde_json::to_value(n.to_enum())
            .map_err(|e| unverified(format!("a tree tombstone cannot compare: {e}")))?;
        // Wrapped as a field's node is, so that a wrapper at the root is
        // unwrapped too.
        let mut v = serde_json::json!({ "node": inner });
        normalize(&mut v, columns);
        Ok(v)
    }

    /// A condition without locations and visibility-test conjuncts (`Null`
    /// when nothing is left).
    fn normalized_condition(&self, n: Option<NodeRef<'_>>, columns: &[String]) -> Res<Value> {
        let Some(n) = n else {
            return Ok(Value::Null);
        };
        let inner = serde_json::to_value(n.to_enum())
            .map_err(|e| unverified(format!("a tree tombstone cannot compare: {e}")))?;
        let mut v = serde_json::json!({ "node": inner });
        strip_tests(&mut v, columns);
        normalize(&mut v, columns);
        Ok(v)
    }

    /// The soft-delete column names of the protected tables.
    fn soft_delete_columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = self
            .snap
            .tables()
            .iter()
            .filter(|t| t.is_protected())
            .filter_map(|t| t.soft_delete.as_ref().map(|s| s.column.clone()))
            .collect();
        columns.sort_unstable();
        columns.dedup();
        columns
    }
}

impl Walker<'_> {
    /// A soft delete inside a `WITH`, in both trees, as one canonical
    /// `{"SoftDelete": {relation, where, using}}`: the client's `DELETE` of
    /// a protected table, and the `UPDATE` tombstone made of it with the
    /// `tombstone_target` CTE beside it (which evaluates the client's WHERE
    /// and USING once). tombstone's other CTEs are dropped.
    fn canonical_soft_deletes(&self, v: &mut Value, output: bool) {
        match v {
            Value::Array(items) => items
                .iter_mut()
                .for_each(|i| self.canonical_soft_deletes(i, output)),
            Value::Object(map) => {
                if let Some(ctes) = map
                    .get_mut("with_clause")
                    .and_then(|w| w.get_mut("ctes"))
                    .and_then(Value::as_array_mut)
                {
                    if output {
                        canonical_output_ctes(ctes);
                    } else {
                        for c in ctes.iter_mut() {
                            self.canonical_input_cte(c);
                        }
                    }
                }
                for (_, c) in map.iter_mut() {
                    self.canonical_soft_deletes(c, output);
                }
            }
            _ => {}
        }
    }

    fn canonical_input_cte(&self, cte: &mut Value) {
        let Some(query) = cte.pointer_mut("/node/CommonTableExpr/ctequery") else {
            return;
        };
        let Some(d) = query.pointer("/node/DeleteStmt") else {
            return;
        };
        let relation = d.get("relation").cloned().unwrap_or(Value::Null);
        let schema = relation
            .get("schemaname")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = relation
            .get("relname")
            .and_then(Value::as_str)
            .unwrap_or("");
        let soft = self
            .resolve_name((!schema.is_empty()).then_some(schema), name)
            .is_some_and(|id| self.snap.table(id).is_protected())
            && !(self.session.hard_delete
                && matches!(self.session.role, super::Role::Bypass { .. }));
        if !soft {
            return;
        }
        let using = d
            .get("using_clause")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        let where_clause = d.get("where_clause").cloned().unwrap_or(Value::Null);
        *query = soft_delete_json(relation, where_clause, using);
    }
}

fn soft_delete_json(relation: Value, where_clause: Value, using: Value) -> Value {
    serde_json::json!({ "SoftDelete": { "relation": relation, "where": where_clause, "using": using } })
}

fn canonical_output_ctes(ctes: &mut Vec<Value>) {
    let name = |c: &Value| {
        c.pointer("/node/CommonTableExpr/ctename")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_default()
    };
    let Some(target) = ctes
        .iter()
        .find(|c| name(c) == TARGET_CTE)
        .and_then(|c| c.pointer("/node/CommonTableExpr/ctequery/node/SelectStmt"))
        .cloned()
    else {
        return;
    };
    let where_clause = target.get("where_clause").cloned().unwrap_or(Value::Null);
    let using: Vec<Value> = target
        .get("from_clause")
        .and_then(Value::as_array)
        .map(|f| f.iter().skip(1).cloned().collect())
        .unwrap_or_default();
    ctes.retain(|c| !name(c).starts_with("tombstone_"));
    for c in ctes.iter_mut() {
        let Some(query) = c.pointer_mut("/node/CommonTableExpr/ctequery") else {
            continue;
        };
        let Some(u) = query.pointer("/node/UpdateStmt") else {
            continue;
        };
        let labelled = u
            .get("where_clause")
            .is_some_and(|w| w.to_string().contains("tombstone.operation"));
        if labelled {
            let relation = u.get("relation").cloned().unwrap_or(Value::Null);
            *query = soft_delete_json(relation, where_clause.clone(), Value::Array(using.clone()));
        }
    }
}

/// The conjuncts of a condition (the arguments of nested ANDs).
fn conjuncts(n: Option<NodeRef<'_>>) -> Vec<NodeRef<'_>> {
    let mut out = Vec::new();
    let mut stack: Vec<NodeRef<'_>> = n.into_iter().collect();
    while let Some(c) = stack.pop() {
        match c {
            NodeRef::BoolExpr(b)
                if pb::BoolExprType::try_from(b.boolop) == Ok(pb::BoolExprType::AndExpr) =>
            {
                stack.extend(nodes(&b.args));
            }
            other => out.push(other),
        }
    }
    out
}

/// The ON conditions' conjuncts of the joins in a FROM item.
fn join_quals<'n>(item: NodeRef<'n>, out: &mut Vec<NodeRef<'n>>) {
    if let NodeRef::JoinExpr(j) = item {
        out.extend(conjuncts(opt(&j.quals)));
        for side in [opt(&j.larg), opt(&j.rarg)].into_iter().flatten() {
            join_quals(side, out);
        }
    }
}

/// A FROM list of exactly one table (where an unqualified column is the
/// table's).
fn single_relation(from: &[Node]) -> bool {
    matches!(from, [one] if matches!(node(one), Some(NodeRef::RangeVar(_))))
}

/// `n` is the visibility test `want` of a column whose name parts satisfy
/// `column`: `c IS NULL`, `c IS NOT NULL`, or the setting-driven `CASE`.
fn is_visibility_test(n: NodeRef<'_>, want: Visibility, column: impl Fn(&[&str]) -> bool) -> bool {
    let null_test = |n: NodeRef<'_>, kind: pb::NullTestType| match n {
        NodeRef::NullTest(t) => {
            pb::NullTestType::try_from(t.nulltesttype) == Ok(kind)
                && matches!(opt(&t.arg), Some(NodeRef::ColumnRef(c)) if column(&tree::names(&c.fields)))
        }
        _ => false,
    };
    match want {
        Visibility::Active | Visibility::All => null_test(n, pb::NullTestType::IsNull),
        Visibility::Deleted => null_test(n, pb::NullTestType::IsNotNull),
        Visibility::Setting => match n {
            NodeRef::CaseExpr(c) => {
                is_visibility_setting(opt(&c.arg))
                    && nodes(&c.args).all(|w| match w {
                        NodeRef::CaseWhen(w) => opt(&w.result).is_some_and(|r| {
                            null_test(r, pb::NullTestType::IsNull)
                                || null_test(r, pb::NullTestType::IsNotNull)
                        }),
                        _ => false,
                    })
            }
            _ => false,
        },
    }
}

/// `pg_catalog.current_setting('tombstone.visibility', true)`.
fn is_visibility_setting(n: Option<NodeRef<'_>>) -> bool {
    let Some(NodeRef::FuncCall(f)) = n else {
        return false;
    };
    tree::strings(&f.funcname).last() == Some(&"current_setting")
        && matches!(f.args.first().and_then(node), Some(NodeRef::AConst(c))
            if matches!(&c.val, Some(pb::a_const::Val::Sval(s)) if s.sval == super::settings::VISIBILITY))
}

// ---- normalization of serialized trees (for the comparison only) ------

/// The byte offsets pg_query records (they differ between the client's
/// text and the rewritten one).
const POSITIONS: &[&str] = &[
    "location",
    "arg_location",
    "conninfo_location",
    "list_start",
    "list_end",
    "name_location",
    "payload_location",
    "rexpr_list_start",
    "rexpr_list_end",
    "stmt_location",
    "stmt_len",
];

/// Removes locations, visibility-test conjuncts (of any soft-delete column
/// name in `columns`, qualified or not), filtering wrappers and ON
/// CONFLICT clauses, in place.
fn normalize(v: &mut Value, columns: &[String]) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| normalize(i, columns)),
        Value::Object(map) => {
            for key in POSITIONS {
                map.remove(*key);
            }
            map.remove("on_conflict_clause");
            for key in ["where_clause", "quals", "join_condition"] {
                if let Some(cond) = map.get_mut(key) {
                    strip_tests(cond, columns);
                }
            }
            for (_, c) in map.iter_mut() {
                normalize(c, columns);
            }
            unwrap_filter(v);
            drop_self_alias(v);
        }
        _ => {}
    }
}

/// The names of column alias lists (`t(a, b, gone)`) in a tree: a
/// visibility test may name the soft-delete column by one of them.
fn alias_column_names(root: NodeRef<'_>, out: &mut Vec<String>) {
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if let NodeRef::Alias(a) = n {
            out.extend(tree::strings(&a.colnames).into_iter().map(str::to_string));
        }
        tree::children(n, &mut stack);
    }
}

/// A condition without its visibility-test conjuncts (`null` if nothing
/// is left).
fn strip_tests(cond: &mut Value, columns: &[String]) {
    if is_test_json(cond, columns) {
        *cond = Value::Null;
        return;
    }
    let Some(args) = cond
        .get_mut("node")
        .and_then(|n| n.get_mut("BoolExpr"))
        .filter(|b| {
            b.get("boolop").and_then(Value::as_i64) == Some(pb::BoolExprType::AndExpr as i64)
        })
        .and_then(|b| b.get_mut("args"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    args.retain(|a| !is_test_json(a, columns));
    match args.len() {
        0 => *cond = Value::Null,
        1 => {
            let only = args.remove(0);
            *cond = only;
        }
        _ => {}
    }
}

/// `{"node": {"NullTest": {arg: ColumnRef(… col)}}}` or the CASE form.
fn is_test_json(v: &Value, columns: &[String]) -> bool {
    let inner = v.get("node").unwrap_or(v);
    if let Some(t) = inner.get("NullTest") {
        let fields = t
            .pointer("/arg/node/ColumnRef/fields")
            .and_then(Value::as_array);
        let last = fields
            .and_then(|f| f.last())
            .and_then(|f| f.pointer("/node/String/sval"))
            .and_then(Value::as_str);
        return last.is_some_and(|l| columns.iter().any(|c| c == l));
    }
    if let Some(c) = inner.get("CaseExpr") {
        let setting = c
            .pointer("/arg/node/FuncCall/args/0/node/AConst/val/Sval/sval")
            .and_then(Value::as_str);
        return setting == Some(super::settings::VISIBILITY);
    }
    false
}

/// `(SELECT * FROM t WHERE <test>) AS a` → `t AS a` (as a RangeVar).
fn unwrap_filter(v: &mut Value) {
    let Some(sub) = v.get_mut("node").and_then(|n| n.get_mut("RangeSubselect")) else {
        return;
    };
    let inner = sub.pointer("/subquery/node/SelectStmt");
    let Some(sel) = inner else { return };
    let star = sel
        .pointer("/target_list/0/node/ResTarget/val/node/ColumnRef/fields/0/node/AStar")
        .is_some()
        && sel
            .get("target_list")
            .and_then(Value::as_array)
            .map(Vec::len)
            == Some(1);
    let from = sel.get("from_clause").and_then(Value::as_array);
    let filtered = sel.get("where_clause").is_some_and(Value::is_null);
    let Some([rv]) = from.map(Vec::as_slice) else {
        return;
    };
    if !(star && filtered) {
        return;
    }
    let Some(mut rv) = rv.pointer("/node/RangeVar").cloned() else {
        return;
    };
    let alias = sub.get("alias").cloned().unwrap_or(Value::Null);
    if let Some(obj) = rv.as_object_mut() {
        obj.insert("alias".into(), alias);
    }
    *v = serde_json::json!({ "node": { "RangeVar": rv } });
}

/// `t AS t` (what a wrapper of an unaliased table adds) reads as `t`.
fn drop_self_alias(v: &mut Value) {
    let Some(rv) = v.pointer_mut("/node/RangeVar") else {
        return;
    };
    let relname = rv.get("relname").cloned();
    let plain = rv.get("alias").is_some_and(|a| {
        a.get("aliasname") == relname.as_ref()
            && a.get("colnames")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
    });
    if plain && let Some(obj) = rv.as_object_mut() {
        obj.insert("alias".into(), Value::Null);
    }
}
