//! DELETE on a protected table becomes one statement:
//!
//! ```sql
//! WITH tombstone_target AS (SELECT <keys> FROM <target> [, <using>] WHERE (<where>) AND <live> FOR UPDATE OF <t>),
//!      tombstone_d1 AS (UPDATE child … SET deleted_at = now() WHERE live AND EXISTS (… parent set …) RETURNING …),
//!      tombstone_n1 AS (UPDATE child SET fk = NULL … RETURNING pk, old values),
//!      tombstone_r1 AS (INSERT … WHERE tombstone.fk_violation(…)),   -- RESTRICT / NO ACTION
//!      tombstone_op AS (INSERT INTO tombstone.operations … RETURNING id),
//!      tombstone_rows AS (INSERT INTO tombstone.operation_rows …)
//! UPDATE <target> SET deleted_at = now() FROM tombstone_target[, <using>]
//! WHERE (<where>) AND <live> AND <target key> = tombstone_target key
//! RETURNING <returning, with deleted_at shown as NULL>
//! ```
//!
//! The client's text is kept: `DELETE FROM` becomes `UPDATE`, `USING`
//! becomes `FROM tombstone_target,`, the rest is spliced in. The reply plan
//! renames the tag `UPDATE n` to `DELETE n`.

use serde_json::Value;

use super::ReplyPlan;
use super::cascade::CascadePlan;
use super::edits::{quote_ident, quote_literal};
use super::error::RewriteError;
use super::reads::{Res, Walker};
use super::tokens::Clause;
use super::tree::{self, field, list, names, node, text};
use crate::schema::{FkAction, TableId};

const TARGET: &str = "tombstone_target";

impl<'a> Walker<'a> {
    pub fn delete(&mut self, n: &Value, nested: bool) -> Res<ReplyPlan> {
        self.with_clause(field(n, "with_clause"))?;
        let rv = field(n, "relation");
        if let Some(loc) = tree::location(rv) {
            self.handled.insert(loc);
        }
        let target = self.resolve(rv);
        let using = list(n, "using_clause");
        let mut pending = Vec::new();
        for item in using {
            pending.extend(self.range_item(item)?);
        }
        self.expr(field(n, "where_clause"))?;
        self.expr(field(n, "returning_clause"))?;
        let where_clause = field(n, "where_clause");
        match target {
            Some(id) if self.snap.table(id).is_protected() => {
                if nested {
                    return Err(Walker::unsupported(
                        "DELETE of a protected table inside WITH",
                    ));
                }
                if matches!(node(where_clause), Some(("CurrentOfExpr", _))) {
                    return Err(Walker::unsupported(
                        "DELETE … WHERE CURRENT OF on a protected table",
                    ));
                }
                self.soft_delete(n, id, &pending)?;
                Ok(ReplyPlan::RenameTag {
                    from: "UPDATE",
                    to: "DELETE",
                })
            }
            Some(id) => {
                if let Some(fk) = self.snap.children_of(id).find(|fk| {
                    fk.on_delete == FkAction::Cascade && self.snap.table(fk.child).is_protected()
                }) {
                    let child = self.snap.table(fk.child);
                    return Err(RewriteError::FailClosed {
                        what: format!(
                            "DELETE on {} (its ON DELETE CASCADE would physically delete rows of protected table {}.{})",
                            text(rv, "relname"),
                            child.schema,
                            child.name
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

    fn delete_reads(&mut self, n: &Value, pending: &[super::reads::Pending]) -> Res<()> {
        let using = list(n, "using_clause");
        self.extend_where(field(n, "where_clause"), pending, |w| {
            w.list_end(using, "USING")
        })
    }

    fn soft_delete(
        &mut self,
        n: &Value,
        id: TableId,
        pending: &[super::reads::Pending],
    ) -> Res<()> {
        let fail = || Walker::unsupported("a DELETE tombstone cannot place");
        let snap = self.snap;
        let plan = CascadePlan::build(snap, id)?;
        let table = snap.table(id);
        let sd = table.soft_delete.clone().ok_or_else(fail)?;
        let rv = field(n, "relation");
        let (rel_start, _name_end, qual) = self.rangevar_span(rv)?;
        let rel_tok = tree::location(rv)
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
        let alias = text(field(rv, "alias"), "aliasname");
        // Last token of `[ONLY] name [[AS] alias]`.
        let mut rel_last = self.t.name_end(rel_tok);
        if !alias.is_empty() {
            let mut a = self.t.next(rel_last).ok_or_else(fail)?;
            if self.t.is_kw(a, "AS") {
                a = self.t.next(a).ok_or_else(fail)?;
            }
            rel_last = a;
        }
        let rel_text = self.sql[rel_start..self.t.end_of(rel_last)].to_string();
        let lock_name = if alias.is_empty() {
            quote_ident(text(rv, "relname"))
        } else {
            quote_ident(alias)
        };
        let using = list(n, "using_clause");
        let mut using_kw = None;
        let mut using_text = String::new();
        if !using.is_empty() {
            let last = self.list_end(using, "USING")?;
            let first_loc = tree::min_location(&using[0]).ok_or_else(fail)?;
            let kw = self
                .t
                .keyword_before(
                    self.t.at(first_loc).ok_or_else(fail)?,
                    &["USING"],
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
                        "TABLE",
                    ],
                )
                .ok_or_else(fail)?;
            let first = self.t.next(kw).ok_or_else(fail)?;
            using_text = self.render(self.t.start_of(first), self.t.end_of(last))?;
            using_kw = Some((kw, last));
        }
        let where_clause = field(n, "where_clause");
        let mut where_span = None;
        let mut where_text = None;
        if !where_clause.is_null() {
            let (first, last) = self.clause_span(where_clause, &["WHERE"], Clause::Where)?;
            where_text = Some(self.render(self.t.start_of(first), self.t.end_of(last))?);
            where_span = Some((first, last));
        }
        let live = format!("{qual}.{} IS NULL", quote_ident(&sd.column));
        let mut filters: Vec<String> = pending.iter().map(|p| self.predicate(p)).collect();
        filters.push(live.clone());

        // Target keys, named so they cannot clash with the client's columns.
        let keys = plan.needed_columns(snap, id);
        let mut select_keys: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{qual}.{} AS tombstone_k{}", quote_ident(c), i + 1))
            .collect();
        let pk_json = self.pk_json(id, &qual);
        select_keys.push(format!("{pk_json} AS tombstone_pk"));
        let matches: Vec<String> = if table.primary_key.is_empty() {
            select_keys.push(format!("{qual}.ctid AS tombstone_ctid"));
            vec![format!("{qual}.ctid = {TARGET}.tombstone_ctid")]
        } else {
            table
                .primary_key
                .iter()
                .map(|c| {
                    let k = keys.iter().position(|x| x == c).map(|i| i + 1).unwrap_or(0);
                    format!("{qual}.{} = {TARGET}.tombstone_k{k}", quote_ident(c))
                })
                .collect()
        };
        let mut target_cte = format!(
            "{TARGET} AS (SELECT {} FROM {rel_text}",
            select_keys.join(", ")
        );
        if !using_text.is_empty() {
            target_cte.push_str(", ");
            target_cte.push_str(&using_text);
        }
        target_cte.push_str(" WHERE ");
        if let Some(w) = &where_text {
            target_cte.push_str(&format!("({w}) AND "));
        }
        target_cte.push_str(&filters.join(" AND "));
        target_cte.push_str(&format!(" FOR UPDATE OF {lock_name})"));

        let mut ctes = vec![target_cte];
        ctes.extend(self.cascade_ctes(&plan, &keys)?);
        let ctes = ctes.join(",\n     ");

        // Splice the outer UPDATE into the client's DELETE.
        let with = field(n, "with_clause");
        if with.is_null() {
            self.edits
                .insert(self.t.start_of(del_kw), format!("WITH {ctes}\n"));
        } else {
            let before = self.t.prev(del_kw).ok_or_else(fail)?;
            self.edits
                .insert(self.t.end_of(before), format!(",\n     {ctes}\n"));
        }
        self.edits
            .replace(self.t.start_of(del_kw), self.t.end_of(from_kw), "UPDATE");
        let mut set = format!(" SET {} = now()", quote_ident(&sd.column));
        if let Some(by) = self.deleted_by(id) {
            set.push_str(&by);
        }
        match using_kw {
            Some((kw, _)) => {
                self.edits.insert(self.t.end_of(rel_last), set);
                self.edits.replace(
                    self.t.start_of(kw),
                    self.t.end_of(kw),
                    format!("FROM {TARGET},"),
                );
            }
            None => {
                self.edits
                    .insert(self.t.end_of(rel_last), format!("{set} FROM {TARGET}"));
            }
        }
        filters.extend(matches);
        let filter = filters.join(" AND ");
        match where_span {
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
        self.returning(n, id, &qual, !using.is_empty())
    }

    /// `, deleted_by = <actor>` when the table has a text `deleted_by`.
    fn deleted_by(&self, id: TableId) -> Option<String> {
        let table = self.snap.table(id);
        let by = table.soft_delete.as_ref()?.by_column.as_ref()?;
        let col = table.columns.iter().find(|c| &c.name == by)?;
        matches!(col.type_sql.as_str(), "text" | "name" | "citext")
            .then(|| format!(", {} = {}", quote_ident(by), self.actor()))
            .or_else(|| {
                col.type_sql
                    .starts_with("character varying")
                    .then(|| format!(", {} = {}", quote_ident(by), self.actor()))
            })
    }

    fn actor(&self) -> String {
        match &self.session.actor {
            Some(a) => quote_literal(a),
            None => "coalesce(nullif(current_setting('tombstone.actor', true), ''), session_user)"
                .to_string(),
        }
    }

    fn qualified(&self, id: TableId) -> String {
        let t = self.snap.table(id);
        format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
    }

    fn pk_json(&self, id: TableId, alias: &str) -> String {
        let t = self.snap.table(id);
        if t.primary_key.is_empty() {
            let col = t
                .soft_delete
                .as_ref()
                .map(|s| s.column.as_str())
                .unwrap_or("deleted_at");
            return format!("(to_jsonb({alias}.*) - {})", quote_literal(col));
        }
        let parts: Vec<String> = t
            .primary_key
            .iter()
            .map(|c| format!("{}, {alias}.{}", quote_literal(c), quote_ident(c)))
            .collect();
        format!("jsonb_build_object({})", parts.join(", "))
    }

    /// The CTEs after `tombstone_target`: cascades, SET NULL, checks, operation.
    fn cascade_ctes(&self, plan: &CascadePlan, target_keys: &[String]) -> Res<Vec<String>> {
        let snap = self.snap;
        let fks = snap.foreign_keys();
        let target_self = !plan.self_edges(snap, plan.target).is_empty();
        // The target's keys under their real names.
        let target_real = format!(
            "SELECT {} FROM {TARGET}",
            target_keys
                .iter()
                .enumerate()
                .map(|(i, c)| format!("tombstone_k{} AS {}", i + 1, quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let real_cols = target_keys
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        // The rows of `t` this statement deletes, as a FROM item.
        let cte_of = |t: TableId| -> String {
            if t == plan.target {
                if target_self {
                    format!("({target_real} UNION ALL SELECT {real_cols} FROM tombstone_s)")
                } else {
                    TARGET.to_string()
                }
            } else {
                let i = plan.tables.iter().position(|&x| x == t).unwrap_or(0);
                format!("tombstone_d{}", i + 1)
            }
        };
        // How a parent column is named in `cte_of(parent)`.
        let parent_col = |t: TableId, c: &str| -> String {
            if t == plan.target && !target_self {
                let i = target_keys
                    .iter()
                    .position(|x| x == c)
                    .map(|i| i + 1)
                    .unwrap_or(0);
                format!("tombstone_k{i}")
            } else {
                quote_ident(c)
            }
        };
        let join = |fk: &crate::schema::ForeignKey, c: &str, p: &str| -> String {
            fk.child_columns
                .iter()
                .zip(&fk.parent_columns)
                .map(|(cc, pc)| {
                    format!(
                        "{c}.{} = {p}.{}",
                        quote_ident(cc),
                        parent_col(fk.parent, pc)
                    )
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        // `WITH RECURSIVE` over a table's self-references, seeded by
        // `seed` (a condition on alias `tombstone_y`, with `seed_from`).
        let closure = |t: TableId, seed_from: &str, seed: &str| -> String {
            let table = snap.table(t);
            let live = table
                .soft_delete
                .as_ref()
                .map(|sd| format!("tombstone_y.{} IS NULL", quote_ident(&sd.column)))
                .unwrap_or_else(|| "true".into());
            let needed = plan
                .needed_columns(snap, t)
                .iter()
                .map(|c| format!("tombstone_y.{}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            let step = plan
                .self_edges(snap, t)
                .iter()
                .map(|&f| {
                    let fk = &fks[f];
                    let on = fk
                        .child_columns
                        .iter()
                        .zip(&fk.parent_columns)
                        .map(|(cc, pc)| {
                            format!(
                                "tombstone_y.{} = tombstone_p.{}",
                                quote_ident(cc),
                                quote_ident(pc)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" AND ");
                    format!("({on})")
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            let pk = table
                .primary_key
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "({pk}) IN (WITH RECURSIVE tombstone_r AS (SELECT {needed} FROM {q} tombstone_y{seed_from} WHERE {live} AND ({seed}) UNION SELECT {needed} FROM {q} tombstone_y, tombstone_r tombstone_p WHERE {live} AND ({step})) SELECT {pk} FROM tombstone_r)",
                q = self.qualified(t)
            )
        };
        let mut ctes = Vec::new();
        if target_self {
            let t = plan.target;
            let table = snap.table(t);
            if table.primary_key.is_empty() {
                return Err(Walker::unsupported(
                    "self-referencing ON DELETE CASCADE on a table without primary key",
                ));
            }
            let col = table
                .soft_delete
                .as_ref()
                .map(|s| s.column.clone())
                .unwrap_or_default();
            let step = plan
                .self_edges(snap, t)
                .iter()
                .map(|&f| {
                    let fk = &fks[f];
                    let on = fk
                        .child_columns
                        .iter()
                        .zip(&fk.parent_columns)
                        .map(|(cc, pc)| {
                            format!(
                                "tombstone_y.{} = tombstone_p.{}",
                                quote_ident(cc),
                                quote_ident(pc)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" AND ");
                    format!("({on})")
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            let not_target = table
                .primary_key
                .iter()
                .map(|c| {
                    format!(
                        "tombstone_x.{} = tombstone_c.{}",
                        quote_ident(c),
                        quote_ident(c)
                    )
                })
                .collect::<Vec<_>>()
                .join(" AND ");
            let mut returning: Vec<String> = target_keys
                .iter()
                .map(|c| format!("tombstone_c.{}", quote_ident(c)))
                .collect();
            returning.push(format!(
                "{} AS tombstone_pk",
                self.pk_json(t, "tombstone_c")
            ));
            let by = self.deleted_by(t).unwrap_or_default();
            ctes.push(format!(
                "tombstone_s AS (UPDATE {q} AS tombstone_c SET {c} = now(){by} WHERE tombstone_c.{c} IS NULL AND {closure} AND NOT EXISTS (SELECT 1 FROM ({target_real}) tombstone_x WHERE {not_target}) RETURNING {ret})",
                q = self.qualified(t),
                c = quote_ident(&col),
                closure = closure(t, &format!(", ({target_real}) tombstone_p"), &step),
                ret = returning.join(", ")
            ));
        }
        let mut rows = vec![format!(
            "SELECT tombstone_op.id, {}, {}, 'soft_delete', t.tombstone_pk, NULL::jsonb FROM tombstone_op, (SELECT DISTINCT tombstone_pk FROM {TARGET}) t",
            quote_literal(&snap.table(plan.target).schema),
            quote_literal(&snap.table(plan.target).name)
        )];
        if target_self {
            rows.push(format!(
                "SELECT tombstone_op.id, {}, {}, 'soft_delete', s.tombstone_pk, NULL FROM tombstone_op, tombstone_s s",
                quote_literal(&snap.table(plan.target).schema),
                quote_literal(&snap.table(plan.target).name)
            ));
        }
        for (i, &t) in plan.tables.iter().enumerate() {
            let table = snap.table(t);
            let col = table
                .soft_delete
                .as_ref()
                .map(|s| s.column.clone())
                .unwrap_or_default();
            let exists: Vec<String> = plan
                .cascade
                .iter()
                .map(|&f| &fks[f])
                .filter(|fk| fk.child == t)
                .map(|fk| {
                    format!(
                        "EXISTS (SELECT 1 FROM {} tombstone_p WHERE {})",
                        cte_of(fk.parent),
                        join(fk, "tombstone_c", "tombstone_p")
                    )
                })
                .collect();
            let mut returning: Vec<String> = plan
                .needed_columns(snap, t)
                .iter()
                .map(|c| format!("tombstone_c.{}", quote_ident(c)))
                .collect();
            returning.push(format!(
                "{} AS tombstone_pk",
                self.pk_json(t, "tombstone_c")
            ));
            let by = self.deleted_by(t).unwrap_or_default();
            let rows_of = if plan.self_edges(snap, t).is_empty() {
                format!("({})", exists.join(" OR "))
            } else {
                if table.primary_key.is_empty() {
                    return Err(Walker::unsupported(
                        "self-referencing ON DELETE CASCADE on a table without primary key",
                    ));
                }
                let seed = exists.join(" OR ").replace("tombstone_c.", "tombstone_y.");
                closure(t, "", &seed)
            };
            ctes.push(format!(
                "tombstone_d{} AS (UPDATE {} AS tombstone_c SET {} = now(){by} WHERE tombstone_c.{} IS NULL AND {rows_of} RETURNING {})",
                i + 1,
                self.qualified(t),
                quote_ident(&col),
                quote_ident(&col),
                returning.join(", ")
            ));
            rows.push(format!(
                "SELECT tombstone_op.id, {}, {}, 'soft_delete', d.tombstone_pk, NULL FROM tombstone_op, tombstone_d{} d",
                quote_literal(&table.schema),
                quote_literal(&table.name),
                i + 1
            ));
        }
        for (j, &f) in plan.set_null.iter().enumerate() {
            let fk = &fks[f];
            let child = snap.table(fk.child);
            let cols: Vec<&String> = if fk.set_columns.is_empty() {
                fk.child_columns.iter().collect()
            } else {
                fk.set_columns.iter().collect()
            };
            let value = if fk.on_delete == FkAction::SetDefault {
                "DEFAULT"
            } else {
                "NULL"
            };
            let sets: Vec<String> = cols
                .iter()
                .map(|c| format!("{} = {value}", quote_ident(c)))
                .collect();
            let old: Vec<String> = cols
                .iter()
                .filter_map(|c| {
                    let k = fk.child_columns.iter().position(|x| x == *c)?;
                    Some(format!(
                        "{}, tombstone_p.{}",
                        quote_literal(c),
                        parent_col(fk.parent, &fk.parent_columns[k])
                    ))
                })
                .collect();
            let live = match &child.soft_delete {
                Some(sd) => format!(" AND tombstone_c.{} IS NULL", quote_ident(&sd.column)),
                None => String::new(),
            };
            let action = if fk.on_delete == FkAction::SetDefault {
                "set_default"
            } else {
                "set_null"
            };
            ctes.push(format!(
                "tombstone_n{} AS (UPDATE {} AS tombstone_c SET {} FROM {} tombstone_p WHERE {}{live} RETURNING {} AS tombstone_pk, jsonb_build_object({}) AS tombstone_old)",
                j + 1,
                self.qualified(fk.child),
                sets.join(", "),
                cte_of(fk.parent),
                join(fk, "tombstone_c", "tombstone_p"),
                self.pk_json(fk.child, "tombstone_c"),
                old.join(", ")
            ));
            rows.push(format!(
                "SELECT tombstone_op.id, {}, {}, '{action}', n.tombstone_pk, n.tombstone_old FROM tombstone_op, tombstone_n{} n",
                quote_literal(&child.schema),
                quote_literal(&child.name),
                j + 1
            ));
        }
        for (k, &f) in plan.restrict.iter().enumerate() {
            let fk = &fks[f];
            let child = snap.table(fk.child);
            let parent = snap.table(fk.parent);
            let mut conds = Vec::new();
            if let Some(sd) = &child.soft_delete {
                conds.push(format!("tombstone_c.{} IS NULL", quote_ident(&sd.column)));
            }
            if fk.child != plan.target
                && plan.tables.contains(&fk.child)
                && !child.primary_key.is_empty()
            {
                let same: Vec<String> = child
                    .primary_key
                    .iter()
                    .map(|c| {
                        format!(
                            "tombstone_x.{} = tombstone_c.{}",
                            quote_ident(c),
                            quote_ident(c)
                        )
                    })
                    .collect();
                conds.push(format!(
                    "NOT EXISTS (SELECT 1 FROM {} tombstone_x WHERE {})",
                    cte_of(fk.child),
                    same.join(" AND ")
                ));
            }
            if fk.child == plan.target && !child.primary_key.is_empty() {
                let same: Vec<String> = child
                    .primary_key
                    .iter()
                    .map(|c| {
                        format!(
                            "tombstone_x.{} = tombstone_c.{}",
                            parent_col(plan.target, c),
                            quote_ident(c)
                        )
                    })
                    .collect();
                conds.push(format!(
                    "NOT EXISTS (SELECT 1 FROM {} tombstone_x WHERE {})",
                    cte_of(plan.target),
                    same.join(" AND ")
                ));
            }
            let where_ = if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            };
            let values: Vec<String> = fk
                .child_columns
                .iter()
                .enumerate()
                .map(|(i, c)| format!("tombstone_c.{} AS v{}", quote_ident(c), i + 1))
                .collect();
            let concat: Vec<String> = (1..=fk.child_columns.len())
                .map(|i| format!("tombstone_v.v{i}"))
                .collect();
            ctes.push(format!(
                "tombstone_r{} AS (INSERT INTO tombstone.operation_rows (op_id, table_schema, table_name, action, pk) SELECT NULL, '', '', 'soft_delete', '{{}}' FROM (SELECT {} FROM {} AS tombstone_c JOIN {} tombstone_p ON {}{where_} LIMIT 1) tombstone_v WHERE tombstone.fk_violation({}, {}, {}, {}, concat_ws(', ', {})))",
                k + 1,
                values.join(", "),
                self.qualified(fk.child),
                cte_of(fk.parent),
                join(fk, "tombstone_c", "tombstone_p"),
                quote_literal(&parent.name),
                quote_literal(&fk.name),
                quote_literal(&child.name),
                quote_literal(&fk.parent_columns.join(", ")),
                concat.join(", ")
            ));
        }
        let target = snap.table(plan.target);
        ctes.push(format!(
            "tombstone_op AS (INSERT INTO tombstone.operations (table_schema, table_name, actor) SELECT {}, {}, {} WHERE EXISTS (SELECT 1 FROM {TARGET}) RETURNING id)",
            quote_literal(&target.schema),
            quote_literal(&target.name),
            self.actor()
        ));
        ctes.push(format!(
            "tombstone_rows AS (INSERT INTO tombstone.operation_rows (op_id, table_schema, table_name, action, pk, old_values) {})",
            rows.join(" UNION ALL ")
        ));
        Ok(ctes)
    }

    /// RETURNING shows what a hard delete returns: the soft-delete columns
    /// as they were (NULL), `*` spelled out without the key CTE's columns.
    fn returning(&mut self, n: &Value, id: TableId, qual: &str, has_using: bool) -> Res<()> {
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
        let alias = text(field(field(n, "relation"), "alias"), "aliasname");
        let relname = text(field(n, "relation"), "relname");
        let own = |q: &str| {
            if alias.is_empty() {
                q == relname
            } else {
                q == alias
            }
        };
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
        for rt in list(field(n, "returning_clause"), "exprs") {
            let Some(("ResTarget", rt)) = node(rt) else {
                continue;
            };
            let whole = matches!(node(field(rt, "val")), Some(("ColumnRef", _)));
            let unnamed = text(rt, "name").is_empty();
            collect_column_refs(field(rt, "val"), &mut refs, whole && unnamed);
        }
        for (cr, bare) in refs {
            let fields = names(list(cr, "fields"));
            let loc = tree::location(cr).ok_or_else(fail)?;
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

/// ColumnRefs in an expression, not descending into subqueries; `bare`
/// marks a ColumnRef that is a whole unnamed RETURNING item.
fn collect_column_refs<'v>(v: &'v Value, out: &mut Vec<(&'v Value, bool)>, bare: bool) {
    match v {
        Value::Array(items) => items
            .iter()
            .for_each(|i| collect_column_refs(i, out, false)),
        Value::Object(map) => match node(v) {
            Some(("ColumnRef", cr)) => out.push((cr, bare)),
            Some(("SelectStmt", _)) => {}
            Some((_, inner)) => collect_column_refs(inner, out, false),
            None => map
                .values()
                .for_each(|c| collect_column_refs(c, out, false)),
        },
        _ => {}
    }
}
