//! Re-using the primary key of a soft-deleted row (normal sessions).
//!
//! With a physical delete, `INSERT INTO tasks (id, …) VALUES (1605, …)`
//! after deleting task 1605 succeeds; with the row only soft-deleted it
//! would fail with 23505 (Django's `save()` of a deleted instance,
//! SQLAlchemy's `merge()`, re-adding a removed member to a composite-key
//! table). So an `INSERT … VALUES` into a protected table that supplies
//! every primary-key column gets
//!
//! ```sql
//! ON CONFLICT (<pk>) DO UPDATE SET <inserted col> = EXCLUDED.<col>, …,
//!                                  <every other column> = DEFAULT
//! WHERE CASE WHEN <t>.deleted_at IS NOT NULL THEN true
//!            ELSE tombstone.unique_violation(<schema>, <table>, <pkey>, <cols>, <values>) END
//! ```
//!
//! A conflicting soft-deleted row is revived with exactly the inserted
//! values (all other columns, `deleted_at` included, to their defaults), as
//! if it had been inserted afresh; a conflicting live row still raises
//! 23505 with PostgreSQL's message, detail and constraint name. The tag is
//! `INSERT 0 n` either way and `RETURNING` returns the new values. Nothing
//! is physically deleted (SPEC P3).
//!
//! `ON CONFLICT (<pk>) DO NOTHING` becomes the same `DO UPDATE` with
//! `WHERE <t>.deleted_at IS NOT NULL`: a live conflict is skipped as before,
//! a soft-deleted one is revived.

use serde_json::Value;

use super::edits::{quote_ident, quote_literal};
use super::reads::{Pending, Res, Walker};
use super::tokens::Clause;
use super::tree::{self, field, int, list, node, text};

/// `OnConflictClause.action` for `DO NOTHING`.
const ON_CONFLICT_NOTHING: i64 = 2;

impl<'a> Walker<'a> {
    /// Adds the revive clause to a plain `INSERT … VALUES` (see the module
    /// documentation). Leaves anything else alone.
    pub fn revive_insert(&mut self, n: &Value, target: &Pending) -> Res<()> {
        let Some((cols, values_last)) = self.inserted_columns(n, target) else {
            return Ok(());
        };
        let Some(clause) = self.revive_clause(target, &cols, true) else {
            return Ok(());
        };
        self.edits
            .insert(self.t.end_of(values_last), format!(" {clause}"));
        Ok(())
    }

    /// `ON CONFLICT (<pk>) DO NOTHING`: revive soft-deleted conflicts.
    /// `close` is the token closing the conflict target's column list.
    pub fn revive_do_nothing(&mut self, n: &Value, target: &Pending, close: usize) -> Res<()> {
        let conflict = field(n, "on_conflict_clause");
        if int(conflict, "action") != ON_CONFLICT_NOTHING {
            return Ok(());
        }
        let Some((cols, _)) = self.inserted_columns(n, target) else {
            return Ok(());
        };
        let table = self.snap.table(target.table);
        let mut elems: Vec<&str> = list(field(conflict, "infer"), "index_elems")
            .iter()
            .map(|e| node(e).map_or("", |(_, ie)| text(ie, "name")))
            .collect();
        let mut pk: Vec<&str> = table.primary_key.iter().map(String::as_str).collect();
        elems.sort_unstable();
        pk.sort_unstable();
        if elems != pk {
            return Ok(());
        }
        let (Some(do_kw), Some(nothing)) = (
            self.t.next(close).filter(|&d| self.t.is_kw(d, "DO")),
            self.t
                .next(close)
                .and_then(|d| self.t.next(d))
                .filter(|&x| self.t.is_kw(x, "NOTHING")),
        ) else {
            return Ok(());
        };
        let Some(update) = self.revive_update(target, &cols, false) else {
            return Ok(());
        };
        self.edits
            .replace(self.t.start_of(do_kw), self.t.end_of(nothing), update);
        Ok(())
    }

    /// The inserted columns of `INSERT … VALUES` when they include the whole
    /// primary key, and the last token of the VALUES list.
    fn inserted_columns(&self, n: &Value, target: &Pending) -> Option<(Vec<String>, usize)> {
        let table = self.snap.table(target.table);
        if table.primary_key.is_empty() {
            return None;
        }
        let select = match node(field(n, "select_stmt")) {
            Some(("SelectStmt", s)) => s,
            _ => return None,
        };
        let rows = list(select, "values_lists");
        let first_row = rows.first()?;
        if !field(select, "with_clause").is_null() || int(select, "op") > 1 {
            return None;
        }
        let mut cols = Vec::new();
        for c in list(n, "cols") {
            let (_, rt) = node(c)?;
            if !list(rt, "indirection").is_empty() {
                return None;
            }
            cols.push(text(rt, "name").to_string());
        }
        if cols.is_empty() {
            let width = node(first_row).map_or(0, |(_, l)| list(l, "items").len());
            cols = table
                .columns
                .iter()
                .take(width)
                .map(|c| c.name.clone())
                .collect();
        }
        let known = |c: &String| table.columns.iter().any(|x| &x.name == c);
        if !cols.iter().all(known) || !table.primary_key.iter().all(|k| cols.contains(k)) {
            return None;
        }
        // `VALUES` at the statement's level (not `(VALUES …)`).
        let first = self.t.at(tree::min_location(first_row)?)?;
        let values_kw = self.t.keyword_before(first, &["VALUES"], &[])?;
        if self
            .t
            .prev(values_kw)
            .is_some_and(|p| self.t.is_char(p, b'('))
        {
            return None;
        }
        Some((cols, self.t.clause_end(values_kw, Clause::Set)))
    }

    /// `ON CONFLICT (<pk>) DO UPDATE …` for [`Self::revive_insert`].
    fn revive_clause(&self, target: &Pending, cols: &[String], raise: bool) -> Option<String> {
        let table = self.snap.table(target.table);
        let pk: Vec<String> = table.primary_key.iter().map(|c| quote_ident(c)).collect();
        let update = self.revive_update(target, cols, raise)?;
        Some(format!("ON CONFLICT ({}) {update}", pk.join(", ")))
    }

    /// `DO UPDATE SET … WHERE …`: revive a soft-deleted conflict; for a live
    /// one raise 23505 (`raise`) or do nothing.
    fn revive_update(&self, target: &Pending, cols: &[String], raise: bool) -> Option<String> {
        let table = self.snap.table(target.table);
        let sd = table.soft_delete.as_ref()?;
        let mut set = Vec::new();
        for c in &table.columns {
            if table.primary_key.contains(&c.name) {
                continue;
            }
            let name = quote_ident(&c.name);
            if cols.contains(&c.name) {
                set.push(format!("{name} = EXCLUDED.{name}"));
            } else {
                set.push(format!("{name} = DEFAULT"));
            }
        }
        if set.is_empty() {
            return None;
        }
        let deleted = format!("{}.{} IS NOT NULL", target.qual, quote_ident(&sd.column));
        let condition = if raise {
            let constraint = self.primary_key_name(target);
            let key_columns: Vec<String> =
                table.primary_key.iter().map(|c| quote_ident(c)).collect();
            let key_values: Vec<String> = table
                .primary_key
                .iter()
                .map(|c| format!("EXCLUDED.{}::text", quote_ident(c)))
                .collect();
            format!(
                "CASE WHEN {deleted} THEN true ELSE tombstone.unique_violation({}, {}, {}, {}, concat_ws(', ', {})) END",
                quote_literal(&table.schema),
                quote_literal(&table.name),
                quote_literal(&constraint),
                quote_literal(&key_columns.join(", ")),
                key_values.join(", ")
            )
        } else {
            deleted
        };
        Some(format!(
            "DO UPDATE SET {} WHERE {condition}",
            set.join(", ")
        ))
    }

    /// The primary key's index name (PostgreSQL's `<table>_pkey` when the
    /// snapshot does not know it).
    fn primary_key_name(&self, target: &Pending) -> String {
        let table = self.snap.table(target.table);
        let mut pk = table.primary_key.clone();
        pk.sort_unstable();
        table
            .unique_indexes
            .iter()
            .filter(|ix| !ix.live_only)
            .find(|ix| {
                let mut c = ix.columns.clone();
                c.sort_unstable();
                c == pk
            })
            .map(|ix| ix.name.clone())
            .unwrap_or_else(|| format!("{}_pkey", table.name))
    }
}
