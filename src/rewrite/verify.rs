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
//! statement is refused, never sent. The comparison of (3) normalizes
//! copies of both trees in place with the generated mutable walk
//! (`walk_mut.rs`: byte offsets cleared, [`Normalizer`]'s hooks) and
//! compares them with the protobuf structs' own `PartialEq`. It runs on
//! cache misses only; its cost is measured by `benches/coldpath.rs`.

use pg_query::NodeRef;
use pg_query::protobuf::{self as pb, Node, RangeVar};

use super::Visibility;
use super::error::RewriteError;
use super::reads::{Res, Walker, alias_name};
use super::tree::{self, node, nodes, opt};
use super::walk_mut;

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
        self.scoped_ctes(w, |this, cte| match opt(&cte.ctequery) {
            Some(q) => this.covered_statement(q),
            None => Ok(()),
        })
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
            super::cascade_sql::qualified(self.snap, id)
        )))
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
            // SET CONSTRAINTS: the client's names, and only check triggers
            // added beside them.
            (NodeRef::ConstraintsSetStmt(a), NodeRef::ConstraintsSetStmt(b)) => {
                let names = |list: &[Node], skip_added: bool| -> Vec<(String, String)> {
                    nodes(list)
                        .filter_map(|n| match n {
                            NodeRef::RangeVar(rv) => Some(rv),
                            _ => None,
                        })
                        .filter(|rv| {
                            !(skip_added && super::constraints::is_added_check(self.snap, rv))
                        })
                        .map(|rv| (rv.schemaname.clone(), rv.relname.clone()))
                        .collect()
                };
                if a.deferred == b.deferred
                    && a.constraints.len() <= b.constraints.len()
                    && names(&a.constraints, true) == names(&b.constraints, true)
                {
                    Ok(())
                } else {
                    Err(unverified(
                        "the rewritten SET CONSTRAINTS names other constraints than the client's",
                    ))
                }
            }
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
                let a = self.normalized(input, columns, false);
                let b = self.normalized(out, columns, true);
                if a == b {
                    Ok(())
                } else {
                    tracing::warn!(client = ?a, rewritten = ?b, "rewrite check: trees differ");
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
        let client_ctes: Vec<Node> = d
            .with_clause
            .iter()
            .flat_map(|w| nodes(&w.ctes))
            .map(|c| self.normalized(c, columns, false))
            .collect();
        let kept_ctes: Vec<Node> = ctes_out
            .iter()
            .filter(|c| !c.ctename.starts_with("tombstone_"))
            .map(|c| self.normalized(NodeRef::CommonTableExpr(c), columns, true))
            .collect();
        if client_ctes != kept_ctes {
            return Err(differs("WITH items"));
        }
        let where_in = self.normalized_condition(&d.where_clause, columns, false);
        let where_out = self.normalized_condition(&target.where_clause, columns, true);
        if where_in != where_out {
            tracing::warn!(client = ?where_in, rewritten = ?where_out, "rewrite check: trees differ");
            return Err(differs("WHERE"));
        }
        let using_in: Vec<Node> = nodes(&d.using_clause)
            .map(|n| self.normalized(n, columns, false))
            .collect();
        let using_out: Vec<Node> = nodes(&target.from_clause)
            .skip(1)
            .map(|n| self.normalized(n, columns, true))
            .collect();
        if using_in != using_out {
            return Err(differs("USING"));
        }
        Ok(())
    }

    /// A copy of the tree without byte offsets, visibility-test conjuncts
    /// (of the column names in `columns`), filtering wrappers and ON
    /// CONFLICT clauses, soft deletes inside a WITH in one canonical form
    /// (see [`Normalizer`]).
    fn normalized(&self, n: NodeRef<'_>, columns: &[String], output: bool) -> Node {
        let mut root = Node {
            node: Some(n.to_enum()),
        };
        let mut h = Normalizer {
            walker: self,
            columns,
            output,
        };
        walk_mut::walk_node(&mut root, &mut h);
        root
    }

    /// A condition, normalized, without its own visibility-test conjuncts.
    fn normalized_condition(
        &self,
        n: &Option<Box<Node>>,
        columns: &[String],
        output: bool,
    ) -> Option<Box<Node>> {
        let mut c = opt(n).map(|n| Box::new(self.normalized(n, columns, output)));
        strip_tests(&mut c, columns);
        c
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

// ---- normalization for the comparison (typed, in place) ---------------

/// The [`walk_mut::Hooks`] that make a tree comparable with the client's:
/// byte offsets are cleared by the walk itself; these drop tombstone's
/// conjuncts, unwrap its filtering wrappers, drop `ON CONFLICT` (the
/// revive's), and give a soft delete inside a `WITH` one canonical form in
/// both trees: a `DELETE` of the table with the client's `WHERE` and `USING`
/// (in the rewritten tree taken from `tombstone_target`, which evaluates
/// them), without `RETURNING`; tombstone's own CTEs are dropped.
struct Normalizer<'w, 'a> {
    walker: &'w Walker<'a>,
    columns: &'w [String],
    /// The tree is the rewritten one (else the client's).
    output: bool,
}

impl walk_mut::Hooks for Normalizer<'_, '_> {
    fn node(&mut self, n: &mut Node) {
        unwrap_filter(n);
    }
    fn select_stmt(&mut self, x: &mut pb::SelectStmt) {
        strip_tests(&mut x.where_clause, self.columns);
    }
    fn update_stmt(&mut self, x: &mut pb::UpdateStmt) {
        strip_tests(&mut x.where_clause, self.columns);
    }
    fn delete_stmt(&mut self, x: &mut pb::DeleteStmt) {
        strip_tests(&mut x.where_clause, self.columns);
    }
    fn insert_stmt(&mut self, x: &mut pb::InsertStmt) {
        x.on_conflict_clause = None;
    }
    fn merge_stmt(&mut self, x: &mut pb::MergeStmt) {
        strip_tests(&mut x.join_condition, self.columns);
    }
    fn join_expr(&mut self, x: &mut pb::JoinExpr) {
        strip_tests(&mut x.quals, self.columns);
    }
    fn range_var(&mut self, x: &mut RangeVar) {
        drop_self_alias(x);
    }
    fn with_clause(&mut self, w: &mut pb::WithClause) {
        if self.output {
            canonical_output_ctes(&mut w.ctes);
        } else {
            for c in &mut w.ctes {
                self.canonical_input_cte(c);
            }
        }
    }
}

impl Normalizer<'_, '_> {
    fn canonical_input_cte(&self, cte: &mut Node) {
        let Some(pg_query::NodeEnum::CommonTableExpr(c)) = &mut cte.node else {
            return;
        };
        let Some(pg_query::NodeEnum::DeleteStmt(d)) =
            c.ctequery.as_deref_mut().and_then(|q| q.node.as_mut())
        else {
            return;
        };
        let w = self.walker;
        let soft = d.relation.as_ref().is_some_and(|r| {
            w.resolve_name(
                (!r.schemaname.is_empty()).then_some(r.schemaname.as_str()),
                &r.relname,
            )
            .is_some_and(|id| w.snap.table(id).is_protected())
        }) && !w.hard_delete();
        if soft {
            d.returning_clause = None;
            d.with_clause = None;
        }
    }
}

fn cte_name(c: &Node) -> &str {
    match &c.node {
        Some(pg_query::NodeEnum::CommonTableExpr(c)) => &c.ctename,
        _ => "",
    }
}

/// In the rewritten tree: tombstone's CTEs dropped, the soft delete's
/// `UPDATE` (the one labelled with the operation hint) as the canonical
/// `DELETE`.
fn canonical_output_ctes(ctes: &mut Vec<Node>) {
    let target = ctes
        .iter()
        .find(|c| cte_name(c) == TARGET_CTE)
        .and_then(|c| match &c.node {
            Some(pg_query::NodeEnum::CommonTableExpr(c)) => {
                match c.ctequery.as_deref()?.node.as_ref()? {
                    pg_query::NodeEnum::SelectStmt(s) => Some((
                        s.where_clause.clone(),
                        s.from_clause.iter().skip(1).cloned().collect::<Vec<Node>>(),
                    )),
                    _ => None,
                }
            }
            _ => None,
        });
    let Some((where_clause, using)) = target else {
        return;
    };
    ctes.retain(|c| !cte_name(c).starts_with("tombstone_"));
    for c in ctes.iter_mut() {
        let Some(pg_query::NodeEnum::CommonTableExpr(cte)) = &mut c.node else {
            continue;
        };
        let Some(query) = cte.ctequery.as_deref_mut() else {
            continue;
        };
        let labelled = match &query.node {
            Some(pg_query::NodeEnum::UpdateStmt(u)) => u
                .where_clause
                .as_deref()
                .and_then(node)
                .is_some_and(names_operation_hint),
            _ => false,
        };
        if !labelled {
            continue;
        }
        let relation = match &query.node {
            Some(pg_query::NodeEnum::UpdateStmt(u)) => u.relation.clone(),
            _ => None,
        };
        query.node = Some(pg_query::NodeEnum::DeleteStmt(Box::new(pb::DeleteStmt {
            relation,
            using_clause: using.clone(),
            where_clause: where_clause.clone(),
            returning_clause: None,
            with_clause: None,
        })));
    }
}

/// The subtree sets `tombstone.operation` (the soft delete's hint).
fn names_operation_hint(root: NodeRef<'_>) -> bool {
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if let NodeRef::AConst(c) = n
            && matches!(&c.val, Some(pb::a_const::Val::Sval(s)) if s.sval == "tombstone.operation")
        {
            return true;
        }
        tree::children(n, &mut stack);
    }
    false
}

/// A condition without its visibility-test conjuncts (`None` if nothing is
/// left).
fn strip_tests(cond: &mut Option<Box<Node>>, columns: &[String]) {
    let Some(c) = cond.as_deref_mut() else {
        return;
    };
    if node(c).is_some_and(|n| is_test(n, columns)) {
        *cond = None;
        return;
    }
    let Some(pg_query::NodeEnum::BoolExpr(b)) = &mut c.node else {
        return;
    };
    if pb::BoolExprType::try_from(b.boolop) != Ok(pb::BoolExprType::AndExpr) {
        return;
    }
    b.args
        .retain(|a| !node(a).is_some_and(|n| is_test(n, columns)));
    match b.args.len() {
        0 => *cond = None,
        1 => {
            let only = b.args.remove(0);
            *cond = Some(Box::new(only));
        }
        _ => {}
    }
}

/// A visibility test of any of `columns`, qualified or not: `c IS [NOT]
/// NULL`, or the setting-driven `CASE`.
fn is_test(n: NodeRef<'_>, columns: &[String]) -> bool {
    match n {
        NodeRef::NullTest(t) => matches!(opt(&t.arg), Some(NodeRef::ColumnRef(c))
            if tree::names(&c.fields).last().is_some_and(|l| columns.iter().any(|c| c == l))),
        NodeRef::CaseExpr(c) => is_visibility_setting(opt(&c.arg)),
        _ => false,
    }
}

/// `(SELECT * FROM t WHERE <nothing left>) AS a` → `t AS a`.
fn unwrap_filter(n: &mut Node) {
    let Some(pg_query::NodeEnum::RangeSubselect(sub)) = &n.node else {
        return;
    };
    let Some(pg_query::NodeEnum::SelectStmt(sel)) =
        sub.subquery.as_deref().and_then(|q| q.node.as_ref())
    else {
        return;
    };
    let star = matches!(sel.target_list.as_slice(), [t] if matches!(node(t),
        Some(NodeRef::ResTarget(r)) if matches!(opt(&r.val),
            Some(NodeRef::ColumnRef(c)) if matches!(tree::names(&c.fields).as_slice(), ["*"]))));
    let [item] = sel.from_clause.as_slice() else {
        return;
    };
    let Some(pg_query::NodeEnum::RangeVar(rv)) = &item.node else {
        return;
    };
    if !(star && sel.where_clause.is_none()) {
        return;
    }
    let mut rv = rv.clone();
    rv.alias = sub.alias.clone();
    drop_self_alias(&mut rv);
    n.node = Some(pg_query::NodeEnum::RangeVar(rv));
}

/// `t AS t` (what a wrapper of an unaliased table adds) reads as `t`.
fn drop_self_alias(rv: &mut RangeVar) {
    if rv
        .alias
        .as_ref()
        .is_some_and(|a| a.aliasname == rv.relname && a.colnames.is_empty())
    {
        rv.alias = None;
    }
}
