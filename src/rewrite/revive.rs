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
//!
//! The client's own `ON CONFLICT (<pk>) DO UPDATE SET c = e … [WHERE w]`
//! keeps its meaning for a live conflict and revives a soft-deleted one
//! with the proposed row (`EXCLUDED`, defaults included):
//! `SET c = CASE WHEN <deleted> THEN EXCLUDED.c ELSE (e) END, …,
//! <other column> = CASE WHEN <deleted> THEN EXCLUDED.<col> ELSE <t>.<col> END
//! WHERE <deleted> OR (w)`.

use pg_query::NodeRef;
use pg_query::protobuf::{self as pb, InsertStmt, OnConflictClause};

use super::edits::{quote_ident, quote_literal};
use super::reads::{Pending, Res, Walker};
use super::statements::plain_columns;
use super::tokens::Clause;
use super::tree::{self, node, nodes, opt};

fn action(c: &OnConflictClause) -> Option<pb::OnConflictAction> {
    pb::OnConflictAction::try_from(c.action).ok()
}

impl<'a> Walker<'a> {
    /// Adds the revive clause to a plain `INSERT … VALUES` (see the module
    /// documentation). Leaves anything else alone.
    pub fn revive_insert(&mut self, n: &InsertStmt, target: &Pending) -> Res<()> {
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
    pub fn revive_do_nothing(&mut self, n: &InsertStmt, target: &Pending, close: usize) -> Res<()> {
        let Some(conflict) = n.on_conflict_clause.as_deref() else {
            return Ok(());
        };
        if action(conflict) != Some(pb::OnConflictAction::OnconflictNothing) {
            return Ok(());
        }
        let Some((cols, _)) = self.inserted_columns(n, target) else {
            return Ok(());
        };
        if !self.conflict_on_primary_key(conflict, target) {
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

    /// The client's `ON CONFLICT (<pk>) DO UPDATE`: revive soft-deleted
    /// conflicts with the proposed row, update live ones as written. Left
    /// alone when a SET item is not a plain `column = expression`.
    pub fn revive_do_update(&mut self, n: &InsertStmt, target: &Pending) -> Res<()> {
        let Some(conflict) = n.on_conflict_clause.as_deref() else {
            return Ok(());
        };
        if action(conflict) != Some(pb::OnConflictAction::OnconflictUpdate)
            || !self.conflict_on_primary_key(conflict, target)
            || self.inserted_columns(n, target).is_none()
        {
            return Ok(());
        }
        let table = self.snap.table(target.table);
        let Some(sd) = table.soft_delete.as_ref() else {
            return Ok(());
        };
        let deleted = format!("{}.{} IS NOT NULL", target.qual, quote_ident(&sd.column));
        // (column, first token of its expression, last token)
        let items: Vec<NodeRef<'_>> = nodes(&conflict.target_list).collect();
        let mut spans = Vec::with_capacity(items.len());
        for (k, item) in items.iter().enumerate() {
            let NodeRef::ResTarget(rt) = item else {
                return Ok(());
            };
            let val = opt(&rt.val);
            if !rt.indirection.is_empty()
                || matches!(
                    val,
                    Some(NodeRef::SetToDefault(_) | NodeRef::MultiAssignRef(_)) | None
                )
            {
                return Ok(());
            }
            let Some(reach) = val.and_then(tree::max_location) else {
                return Ok(());
            };
            let Some(name_tok) = usize::try_from(rt.location).ok().and_then(|l| self.t.at(l))
            else {
                return Ok(());
            };
            let Some(eq) = self.t.next(name_tok).filter(|&e| self.t.is_char(e, b'=')) else {
                return Ok(());
            };
            let Some(first) = self.t.next(eq) else {
                return Ok(());
            };
            let last = match items.get(k + 1) {
                Some(next) => {
                    let Some(comma) = tree::location(*next)
                        .and_then(|l| self.t.at(l))
                        .and_then(|i| self.t.prev(i))
                        .filter(|&c| self.t.is_char(c, b','))
                    else {
                        return Ok(());
                    };
                    match self.t.prev(comma) {
                        Some(l) => l,
                        None => return Ok(()),
                    }
                }
                None => self.t.clause_end(eq, reach, Clause::Set),
            };
            if last < first {
                return Ok(());
            }
            spans.push((rt.name.clone(), first, last));
        }
        if spans.is_empty() {
            return Ok(());
        }
        let mut others = Vec::new();
        for c in &table.columns {
            if c.default_only
                || table.primary_key.contains(&c.name)
                || spans.iter().any(|(n, _, _)| *n == c.name)
            {
                continue;
            }
            let name = quote_ident(&c.name);
            others.push(format!(
                ", {name} = CASE WHEN {deleted} THEN EXCLUDED.{name} ELSE {}.{name} END",
                target.qual
            ));
        }
        for (i, (name, first, last)) in spans.iter().enumerate() {
            let name = quote_ident(name);
            self.edits.insert(
                self.t.start_of(*first),
                format!("CASE WHEN {deleted} THEN EXCLUDED.{name} ELSE ("),
            );
            let mut close = ") END".to_string();
            if i + 1 == spans.len() {
                close.push_str(&others.concat());
            }
            self.edits.insert(self.t.end_of(*last), close);
        }
        if let Some(w) = opt(&conflict.where_clause) {
            let (first, last) = self.clause_span(w, &["WHERE"], Clause::Where)?;
            self.edits
                .insert(self.t.start_of(first), format!("{deleted} OR ("));
            self.edits.insert(self.t.end_of(last), ")");
        }
        Ok(())
    }

    /// The conflict target is exactly the primary key's columns.
    fn conflict_on_primary_key(&self, conflict: &OnConflictClause, target: &Pending) -> bool {
        let Some(infer) = conflict.infer.as_deref().filter(|i| plain_columns(i)) else {
            return false;
        };
        let table = self.snap.table(target.table);
        let mut elems: Vec<&str> = infer
            .index_elems
            .iter()
            .map(|e| match node(e) {
                Some(NodeRef::IndexElem(ie)) => ie.name.as_str(),
                _ => "",
            })
            .collect();
        let mut pk: Vec<&str> = table.primary_key.iter().map(String::as_str).collect();
        elems.sort_unstable();
        pk.sort_unstable();
        !pk.is_empty() && elems == pk
    }

    /// The inserted columns of `INSERT … VALUES` when they include the whole
    /// primary key, and the last token of the VALUES list.
    fn inserted_columns(&self, n: &InsertStmt, target: &Pending) -> Option<(Vec<String>, usize)> {
        let table = self.snap.table(target.table);
        if table.primary_key.is_empty()
            || self
                .primary_key_index(target)
                .is_some_and(|ix| ix.deferrable)
        {
            return None;
        }
        let select = match opt(&n.select_stmt) {
            Some(NodeRef::SelectStmt(s)) => s,
            _ => return None,
        };
        let rows = &select.values_lists;
        let first_row = rows.first().and_then(node)?;
        if select.with_clause.is_some()
            || pb::SetOperation::try_from(select.op) != Ok(pb::SetOperation::SetopNone)
        {
            return None;
        }
        let mut cols = Vec::new();
        for c in nodes(&n.cols) {
            let NodeRef::ResTarget(rt) = c else {
                return None;
            };
            if !rt.indirection.is_empty() {
                return None;
            }
            cols.push(rt.name.clone());
        }
        if cols.is_empty() {
            let width = match first_row {
                NodeRef::List(l) => l.items.len(),
                _ => 0,
            };
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
        let reach = tree::max_location_of(nodes(rows))?;
        let values_kw = self.t.keyword_before(first, &["VALUES"], &[])?;
        if self
            .t
            .prev(values_kw)
            .is_some_and(|p| self.t.is_char(p, b'('))
        {
            return None;
        }
        Some((cols, self.t.clause_end(values_kw, reach, Clause::Set)))
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
                "CASE WHEN {deleted} THEN true ELSE tombstone.unique_violation({}, {}, {}, {}, pg_catalog.concat_ws(', ', {})) END",
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
        match self.primary_key_index(target) {
            Some(ix) => ix.name.clone(),
            None => format!("{}_pkey", self.snap.table(target.table).name),
        }
    }

    /// The full unique index on the primary key's columns.
    fn primary_key_index(&self, target: &Pending) -> Option<&'a crate::schema::UniqueIndex> {
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
    }
}
