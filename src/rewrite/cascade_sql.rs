//! The SQL of a soft delete: each [`Step`] of the plan rendered by its own
//! function, into a CTE and/or a condition of the outer UPDATE. It needs
//! the snapshot, the steps and a few strings from the client's statement
//! ([`Client`]), never the parse tree. The operation and its rows are
//! recorded by triggers (`migrate::operations`), labelled by the hint.

use super::cascade::{Rows, SetValue, Step};
use super::edits::{quote_ident, quote_literal};
use super::error::RewriteError;
use crate::schema::{ForeignKey, SchemaSnapshot, TableId};

/// The CTE of the target rows.
pub(crate) const TARGET: &str = "tombstone_target";

/// What the target step takes from the client's DELETE, as text.
pub(crate) struct Client<'s> {
    /// How the target's columns are qualified: its alias, else its name.
    pub qual: &'s str,
    /// `[ONLY] name [[AS] alias]` as the client wrote it.
    pub relation: &'s str,
    /// The USING items as the client wrote them.
    pub using: Option<&'s str>,
    /// How the outer UPDATE names the USING relations it joins again
    /// (when RETURNING reads them): each is pinned to the row the target
    /// CTE chose by `tableoid` and `ctid`, so the client's WHERE is not
    /// evaluated a second time (SPEC W10). Empty: nothing joined again.
    pub pins: &'s [String],
    /// The WHERE condition as the client wrote it.
    pub where_: Option<&'s str>,
    /// Conditions after the WHERE (live rows of the USING items and the
    /// target).
    pub filters: &'s [String],
    /// The name `FOR UPDATE OF` locks.
    pub lock: &'s str,
    /// The actor, as SQL (see [`actor`]).
    pub actor: &'s str,
}

/// The rendered steps: the CTEs in order, and the conditions the outer
/// UPDATE adds (the target key match, the checks, the hint).
#[derive(Debug, Default)]
pub(crate) struct Rendered {
    pub ctes: Vec<String>,
    pub conditions: Vec<String>,
}

/// Render `steps` (from [`super::cascade::CascadePlan::steps`]).
pub(crate) fn render(
    snap: &SchemaSnapshot,
    steps: &[Step],
    client: &Client<'_>,
) -> Result<Rendered, RewriteError> {
    let keys = steps
        .iter()
        .find_map(|s| match s {
            Step::Target { keys, .. } => Some(keys.as_slice()),
            _ => None,
        })
        .ok_or_else(|| unsupported("a soft delete without target"))?;
    let r = Renderer { snap, keys, client };
    let mut out = Rendered::default();
    for step in steps {
        match step {
            Step::Target { table, keys } => {
                let (cte, matches) = r.target(*table, keys)?;
                out.ctes.push(cte);
                out.conditions.extend(matches);
            }
            Step::TargetTree { table, edges } => out.ctes.push(r.target_tree(*table, edges)?),
            Step::SoftDelete {
                n,
                table,
                parents,
                self_edges,
                returning,
            } => out
                .ctes
                .push(r.soft_delete(*n, *table, parents, self_edges, returning)?),
            Step::SetColumns {
                n,
                fk,
                parent,
                columns,
                value,
            } => out
                .ctes
                .push(r.set_columns(*n, r.fk(*fk)?, *parent, columns, *value)?),
            Step::Restrict {
                n,
                fk,
                parent,
                exempt,
            } => {
                out.ctes.push(r.restrict(*n, r.fk(*fk)?, *parent, *exempt)?);
                out.conditions
                    .push(format!("NOT EXISTS (SELECT 1 FROM tombstone_r{n})"));
            }
            Step::OperationHint { table } => out.conditions.push(r.operation_hint(*table)),
        }
    }
    Ok(out)
}

/// `"schema"."name"`.
pub(crate) fn qualified(snap: &SchemaSnapshot, id: TableId) -> String {
    let t = snap.table(id);
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

/// The actor as SQL: the session's, else `tombstone.actor`, else the login
/// role.
pub(crate) fn actor(session_actor: Option<&str>) -> String {
    match session_actor {
        Some(a) => quote_literal(a),
        None => "coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user)"
            .to_string(),
    }
}

/// `, deleted_by = <actor>` when the table has a text `deleted_by`.
pub(crate) fn deleted_by(snap: &SchemaSnapshot, id: TableId, actor: &str) -> Option<String> {
    let table = snap.table(id);
    let by = table.soft_delete.as_ref()?.by_column.as_ref()?;
    let col = table.columns.iter().find(|c| &c.name == by)?;
    let text = matches!(col.type_sql.as_str(), "text" | "name" | "citext")
        || col.type_sql.starts_with("character varying");
    text.then(|| format!(", {} = {actor}", quote_ident(by)))
}

fn unsupported(what: &str) -> RewriteError {
    RewriteError::Unsupported { what: what.into() }
}

/// `a1 OPERATOR(pg_catalog.=) b1 AND …`: pg_catalog's `=`, since the
/// client's search_path may hold a `public.=` that matches every row.
fn equal(pairs: impl IntoIterator<Item = (String, String)>) -> String {
    pairs
        .into_iter()
        .map(|(a, b)| format!("{a} OPERATOR(pg_catalog.=) {b}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `alias.c1, alias.c2, …`.
fn columns(alias: &str, cols: &[String]) -> String {
    cols.iter()
        .map(|c| format!("{alias}.{}", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Renderer<'a> {
    snap: &'a SchemaSnapshot,
    /// The target step's keys.
    keys: &'a [String],
    client: &'a Client<'a>,
}

impl Renderer<'_> {
    fn fk(&self, i: usize) -> Result<&ForeignKey, RewriteError> {
        self.snap
            .foreign_keys()
            .get(i)
            .ok_or_else(|| unsupported("a cascade along an unknown foreign key"))
    }

    /// The soft-delete column of a table the statement soft-deletes.
    fn soft_column(&self, id: TableId) -> Result<String, RewriteError> {
        match &self.snap.table(id).soft_delete {
            Some(sd) => Ok(quote_ident(&sd.column)),
            None => Err(unsupported("a soft delete of an unprotected table")),
        }
    }

    /// `alias.<soft-delete column> IS NULL`, for a protected table.
    fn live(&self, id: TableId, alias: &str) -> Option<String> {
        let sd = self.snap.table(id).soft_delete.as_ref()?;
        Some(format!("{alias}.{} IS NULL", quote_ident(&sd.column)))
    }

    fn deleted_by(&self, id: TableId) -> String {
        deleted_by(self.snap, id, self.client.actor).unwrap_or_default()
    }

    /// The target's keys under their own names.
    fn target_rows(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, c)| format!("tombstone_k{} AS {}", i + 1, quote_ident(c)))
            .collect();
        format!("SELECT {} FROM {TARGET}", keys.join(", "))
    }

    /// `rows` as a FROM item.
    fn source(&self, rows: Rows) -> String {
        match rows {
            Rows::Target => TARGET.to_string(),
            Rows::TargetTree => format!(
                "({} UNION ALL SELECT {} FROM tombstone_s)",
                self.target_rows(),
                columns_bare(self.keys)
            ),
            Rows::Deleted(n) => format!("tombstone_d{n}"),
        }
    }

    /// How column `c` is named in `source(rows)`.
    fn column(&self, rows: Rows, c: &str) -> Result<String, RewriteError> {
        match rows {
            Rows::Target => match self.keys.iter().position(|k| k == c) {
                Some(i) => Ok(format!("tombstone_k{}", i + 1)),
                None => Err(unsupported(
                    "a cascade from a target column it does not read",
                )),
            },
            Rows::TargetTree | Rows::Deleted(_) => Ok(quote_ident(c)),
        }
    }

    /// `child` rows referencing `parent` rows (of `rows`) along `fk`.
    fn join(
        &self,
        fk: &ForeignKey,
        child: &str,
        parent: &str,
        rows: Rows,
    ) -> Result<String, RewriteError> {
        let mut pairs = Vec::new();
        for (cc, pc) in fk.child_columns.iter().zip(&fk.parent_columns) {
            pairs.push((
                format!("{child}.{}", quote_ident(cc)),
                format!("{parent}.{}", self.column(rows, pc)?),
            ));
        }
        Ok(equal(pairs))
    }

    /// A row `tombstone_y` references a row `tombstone_p` along one of the
    /// self-referencing `edges`.
    fn self_step(&self, edges: &[usize]) -> Result<String, RewriteError> {
        let mut steps = Vec::new();
        for &f in edges {
            let fk = self.fk(f)?;
            let on = equal(
                fk.child_columns
                    .iter()
                    .zip(&fk.parent_columns)
                    .map(|(cc, pc)| {
                        (
                            format!("tombstone_y.{}", quote_ident(cc)),
                            format!("tombstone_p.{}", quote_ident(pc)),
                        )
                    }),
            );
            steps.push(format!("({on})"));
        }
        Ok(steps.join(" OR "))
    }

    /// `tombstone_c` is one of the live rows of `table` that satisfy
    /// `seed` (a condition on `tombstone_y`, over `seed_from` items) or
    /// descend from one along `edges`: `WITH RECURSIVE` over the primary
    /// key and the columns the edges reference, then EXISTS with
    /// pg_catalog's `=` on the primary key (`IN` would resolve `=` through
    /// the client's search_path).
    fn descendants(
        &self,
        table: TableId,
        seed_from: &str,
        seed: &str,
        edges: &[usize],
    ) -> Result<String, RewriteError> {
        let t = self.snap.table(table);
        let q = qualified(self.snap, table);
        let live = self
            .live(table, "tombstone_y")
            .unwrap_or_else(|| "true".into());
        let mut read = t.primary_key.clone();
        for &f in edges {
            for c in &self.fk(f)?.parent_columns {
                if !read.contains(c) {
                    read.push(c.clone());
                }
            }
        }
        let read = columns("tombstone_y", &read);
        let step = self.self_step(edges)?;
        let pk = columns_bare(&t.primary_key);
        let same = equal(t.primary_key.iter().map(|c| {
            (
                format!("tombstone_q.{}", quote_ident(c)),
                format!("tombstone_c.{}", quote_ident(c)),
            )
        }));
        Ok(format!(
            "EXISTS (SELECT 1 FROM (WITH RECURSIVE tombstone_r AS (SELECT {read} FROM {q} tombstone_y{seed_from} WHERE {live} AND ({seed}) UNION SELECT {read} FROM {q} tombstone_y, tombstone_r tombstone_p WHERE {live} AND ({step})) SELECT {pk} FROM tombstone_r) tombstone_q WHERE {same})"
        ))
    }

    /// [`Step::Target`]: the CTE, and the outer UPDATE's match on it.
    fn target(
        &self,
        table: TableId,
        keys: &[String],
    ) -> Result<(String, Vec<String>), RewriteError> {
        let c = self.client;
        let qual = c.qual;
        let mut select: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{qual}.{} AS tombstone_k{}", quote_ident(k), i + 1))
            .collect();
        let pk = &self.snap.table(table).primary_key;
        let matches = if pk.is_empty() {
            select.push(format!("{qual}.ctid AS tombstone_ctid"));
            vec![equal([(
                format!("{qual}.ctid"),
                format!("{TARGET}.tombstone_ctid"),
            )])]
        } else {
            let mut matches = Vec::new();
            for k in pk {
                matches.push(equal([(
                    format!("{qual}.{}", quote_ident(k)),
                    format!("{TARGET}.{}", self.column(Rows::Target, k)?),
                )]));
            }
            matches
        };
        let mut matches = matches;
        for (i, q) in c.pins.iter().enumerate() {
            let n = i + 1;
            select.push(format!(
                "{q}.tableoid AS tombstone_u{n}o, {q}.ctid AS tombstone_u{n}c"
            ));
            matches.push(equal([
                (format!("{q}.tableoid"), format!("{TARGET}.tombstone_u{n}o")),
                (format!("{q}.ctid"), format!("{TARGET}.tombstone_u{n}c")),
            ]));
        }
        let mut from = c.relation.to_string();
        if let Some(using) = c.using {
            from.push_str(", ");
            from.push_str(using);
        }
        let mut conds: Vec<String> = c.where_.map(|w| format!("({w})")).into_iter().collect();
        conds.extend(c.filters.iter().cloned());
        let where_ = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let cte = format!(
            "{TARGET} AS (SELECT {select} FROM {from}{where_} FOR UPDATE OF {lock})",
            select = select.join(", "),
            lock = c.lock,
        );
        Ok((cte, matches))
    }

    /// [`Step::TargetTree`]: `tombstone_s`, the target rows' descendants
    /// (not the target rows themselves), keyed like the target.
    fn target_tree(&self, table: TableId, edges: &[usize]) -> Result<String, RewriteError> {
        let q = qualified(self.snap, table);
        let col = self.soft_column(table)?;
        let by = self.deleted_by(table);
        let rows = self.target_rows();
        let tree = self.descendants(
            table,
            &format!(", ({rows}) tombstone_p"),
            &self.self_step(edges)?,
            edges,
        )?;
        let pk = &self.snap.table(table).primary_key;
        let not_target = equal(pk.iter().map(|c| {
            (
                format!("tombstone_x.{}", quote_ident(c)),
                format!("tombstone_c.{}", quote_ident(c)),
            )
        }));
        let returning = columns("tombstone_c", self.keys);
        Ok(format!(
            "tombstone_s AS (UPDATE {q} AS tombstone_c SET {col} = pg_catalog.now(){by} WHERE tombstone_c.{col} IS NULL AND {tree} AND NOT EXISTS (SELECT 1 FROM ({rows}) tombstone_x WHERE {not_target}) RETURNING {returning})"
        ))
    }

    /// [`Step::SoftDelete`]: `tombstone_d<n>`.
    fn soft_delete(
        &self,
        n: usize,
        table: TableId,
        parents: &[(usize, Rows)],
        self_edges: &[usize],
        returning: &[String],
    ) -> Result<String, RewriteError> {
        let q = qualified(self.snap, table);
        let col = self.soft_column(table)?;
        let by = self.deleted_by(table);
        // The referencing row is `tombstone_c`, or `tombstone_y` inside
        // the recursive walk of a self-referencing table.
        let child = if self_edges.is_empty() {
            "tombstone_c"
        } else {
            "tombstone_y"
        };
        let mut exists = Vec::new();
        for &(f, rows) in parents {
            let on = self.join(self.fk(f)?, child, "tombstone_p", rows)?;
            exists.push(format!(
                "EXISTS (SELECT 1 FROM {} tombstone_p WHERE {on})",
                self.source(rows)
            ));
        }
        let exists = exists.join(" OR ");
        let rows = if self_edges.is_empty() {
            format!("({exists})")
        } else {
            self.descendants(table, "", &exists, self_edges)?
        };
        let returning = if returning.is_empty() {
            String::new()
        } else {
            format!(" RETURNING {}", columns("tombstone_c", returning))
        };
        Ok(format!(
            "tombstone_d{n} AS (UPDATE {q} AS tombstone_c SET {col} = pg_catalog.now(){by} WHERE tombstone_c.{col} IS NULL AND {rows}{returning})"
        ))
    }

    /// [`Step::SetColumns`]: `tombstone_n<n>`.
    fn set_columns(
        &self,
        n: usize,
        fk: &ForeignKey,
        parent: Rows,
        cols: &[String],
        value: SetValue,
    ) -> Result<String, RewriteError> {
        let q = qualified(self.snap, fk.child);
        let value = match value {
            SetValue::Null => "NULL",
            SetValue::Default => "DEFAULT",
        };
        let sets: Vec<String> = cols
            .iter()
            .map(|c| format!("{} = {value}", quote_ident(c)))
            .collect();
        let sets = sets.join(", ");
        let from = self.source(parent);
        let on = self.join(fk, "tombstone_c", "tombstone_p", parent)?;
        let live = match self.live(fk.child, "tombstone_c") {
            Some(l) => format!(" AND {l}"),
            None => String::new(),
        };
        Ok(format!(
            "tombstone_n{n} AS (UPDATE {q} AS tombstone_c SET {sets} FROM {from} tombstone_p WHERE {on}{live})"
        ))
    }

    /// [`Step::Restrict`]: `tombstone_r<n>`, which raises 23503 with
    /// PostgreSQL's message for the first live referencing row; the outer
    /// UPDATE's `NOT EXISTS` on it makes it run.
    fn restrict(
        &self,
        n: usize,
        fk: &ForeignKey,
        parent: Rows,
        exempt: Option<Rows>,
    ) -> Result<String, RewriteError> {
        let child = self.snap.table(fk.child);
        let mut conds: Vec<String> = self.live(fk.child, "tombstone_c").into_iter().collect();
        if let Some(rows) = exempt {
            let mut same = Vec::new();
            for c in &child.primary_key {
                same.push((
                    format!("tombstone_x.{}", self.column(rows, c)?),
                    format!("tombstone_c.{}", quote_ident(c)),
                ));
            }
            conds.push(format!(
                "NOT EXISTS (SELECT 1 FROM {} tombstone_x WHERE {})",
                self.source(rows),
                equal(same)
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
        let values = values.join(", ");
        let key: Vec<String> = (1..=fk.child_columns.len())
            .map(|i| format!("tombstone_v.v{i}"))
            .collect();
        let key = key.join(", ");
        let q = qualified(self.snap, fk.child);
        let from = self.source(parent);
        let on = self.join(fk, "tombstone_c", "tombstone_p", parent)?;
        let args = [
            &self.snap.table(fk.parent).name,
            &fk.name,
            &child.name,
            &fk.parent_columns.join(", "),
        ]
        .map(|a| quote_literal(a))
        .join(", ");
        Ok(format!(
            "tombstone_r{n} AS (SELECT 1 FROM (SELECT {values} FROM {q} AS tombstone_c JOIN {from} tombstone_p ON {on}{where_} LIMIT 1) tombstone_v WHERE tombstone.fk_violation({args}, pg_catalog.concat_ws(', ', {key})))"
        ))
    }

    /// [`Step::OperationHint`]: which operation this statement's soft
    /// deletes belong to, for the triggers that record them, honoured for
    /// this very statement only. It labels the operation; what was deleted
    /// they read from the rows themselves.
    fn operation_hint(&self, table: TableId) -> String {
        let t = self.snap.table(table);
        format!(
            "(SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', {schema}, 'table', {name}, 'actor', {actor})::text, true)) IS NOT NULL",
            schema = quote_literal(&t.schema),
            name = quote_literal(&t.name),
            actor = self.client.actor,
        )
    }
}

/// `c1, c2, …`.
fn columns_bare(cols: &[String]) -> String {
    cols.iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}
