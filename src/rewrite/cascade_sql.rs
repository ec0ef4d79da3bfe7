//! The SQL of a soft delete's cascade: one CTE per soft-deleted child table,
//! SET NULL/SET DEFAULT updates, RESTRICT checks, and the operation hint
//! (the operation and its rows are recorded by triggers, `migrate::operations`).

use super::cascade::CascadePlan;
use super::delete::TARGET;
use super::edits::{quote_ident, quote_literal};
use super::reads::{Res, Walker};
use crate::schema::{FkAction, TableId};

impl<'a> Walker<'a> {
    /// `, deleted_by = <actor>` when the table has a text `deleted_by`.
    pub(crate) fn deleted_by(&self, id: TableId) -> Option<String> {
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

    pub(crate) fn actor(&self) -> String {
        match &self.session.actor {
            Some(a) => quote_literal(a),
            None => "coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user)"
                .to_string(),
        }
    }

    pub(crate) fn qualified(&self, id: TableId) -> String {
        let t = self.snap.table(id);
        format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
    }

    pub(crate) fn pk_json(&self, id: TableId, alias: &str) -> String {
        let t = self.snap.table(id);
        if t.primary_key.is_empty() {
            let col = t
                .soft_delete
                .as_ref()
                .map(|s| s.column.as_str())
                .unwrap_or("deleted_at");
            return format!("(pg_catalog.to_jsonb({alias}.*) - {})", quote_literal(col));
        }
        let parts: Vec<String> = t
            .primary_key
            .iter()
            .map(|c| format!("{}, {alias}.{}", quote_literal(c), quote_ident(c)))
            .collect();
        format!("pg_catalog.jsonb_build_object({})", parts.join(", "))
    }

    /// The CTEs after `tombstone_target` (cascades, SET NULL, RESTRICT
    /// checks) and the conditions the outer UPDATE adds so that the checks
    /// run and the operation hint is set.
    pub(crate) fn cascade_ctes(
        &self,
        plan: &CascadePlan,
        target_keys: &[String],
    ) -> Res<(Vec<String>, Vec<String>)> {
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
                        "{c}.{} OPERATOR(pg_catalog.=) {p}.{}",
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
                                "tombstone_y.{} OPERATOR(pg_catalog.=) tombstone_p.{}",
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
            // EXISTS with pg_catalog's `=`, not `IN`: `IN` resolves `=`
            // through the client's search_path (a `public.=` could widen
            // the cascade).
            let same = table
                .primary_key
                .iter()
                .map(|c| {
                    format!(
                        "tombstone_q.{c} OPERATOR(pg_catalog.=) tombstone_c.{c}",
                        c = quote_ident(c)
                    )
                })
                .collect::<Vec<_>>()
                .join(" AND ");
            format!(
                "EXISTS (SELECT 1 FROM (WITH RECURSIVE tombstone_r AS (SELECT {needed} FROM {q} tombstone_y{seed_from} WHERE {live} AND ({seed}) UNION SELECT {needed} FROM {q} tombstone_y, tombstone_r tombstone_p WHERE {live} AND ({step})) SELECT {pk} FROM tombstone_r) tombstone_q WHERE {same})",
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
                                "tombstone_y.{} OPERATOR(pg_catalog.=) tombstone_p.{}",
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
                        "tombstone_x.{} OPERATOR(pg_catalog.=) tombstone_c.{}",
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
                "tombstone_s AS (UPDATE {q} AS tombstone_c SET {c} = pg_catalog.now(){by} WHERE tombstone_c.{c} IS NULL AND {closure} AND NOT EXISTS (SELECT 1 FROM ({target_real}) tombstone_x WHERE {not_target}) RETURNING {ret})",
                q = self.qualified(t),
                c = quote_ident(&col),
                closure = closure(t, &format!(", ({target_real}) tombstone_p"), &step),
                ret = returning.join(", ")
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
                "tombstone_d{} AS (UPDATE {} AS tombstone_c SET {} = pg_catalog.now(){by} WHERE tombstone_c.{} IS NULL AND {rows_of} RETURNING {})",
                i + 1,
                self.qualified(t),
                quote_ident(&col),
                quote_ident(&col),
                returning.join(", ")
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
            let live = match &child.soft_delete {
                Some(sd) => format!(" AND tombstone_c.{} IS NULL", quote_ident(&sd.column)),
                None => String::new(),
            };
            ctes.push(format!(
                "tombstone_n{} AS (UPDATE {} AS tombstone_c SET {} FROM {} tombstone_p WHERE {}{live})",
                j + 1,
                self.qualified(fk.child),
                sets.join(", "),
                cte_of(fk.parent),
                join(fk, "tombstone_c", "tombstone_p"),
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
                            "tombstone_x.{} OPERATOR(pg_catalog.=) tombstone_c.{}",
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
                            "tombstone_x.{} OPERATOR(pg_catalog.=) tombstone_c.{}",
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
                "tombstone_r{} AS (SELECT 1 FROM (SELECT {} FROM {} AS tombstone_c JOIN {} tombstone_p ON {}{where_} LIMIT 1) tombstone_v WHERE tombstone.fk_violation({}, {}, {}, {}, pg_catalog.concat_ws(', ', {})))",
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
        // Which operation this statement's soft deletes belong to, for the
        // triggers that record them (`migrate::operations`): a hint the
        // triggers honour only for this very statement. It labels the
        // operation; what was deleted they read from the rows themselves.
        let target = snap.table(plan.target);
        let mut filters: Vec<String> = (1..=plan.restrict.len())
            .map(|k| format!("NOT EXISTS (SELECT 1 FROM tombstone_r{k})"))
            .collect();
        filters.push(format!(
            "(SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', {}, 'table', {}, 'actor', {})::text, true)) IS NOT NULL",
            quote_literal(&target.schema),
            quote_literal(&target.name),
            self.actor()
        ));
        Ok((ctes, filters))
    }
}
