//! The schema snapshot: which tables are protected, their keys, foreign keys
//! and unique indexes. A plain value; `load` fills it from `pg_catalog`, unit
//! tests build it by hand with [`Catalog`].

pub mod ddl;
pub mod edges;
pub mod load;

use std::collections::{HashMap, HashSet};

/// The schema of tombstone's own tables (operations, audit trail).
pub const TOMBSTONE_SCHEMA: &str = "tombstone";

/// Index of a relation inside a [`SchemaSnapshot`].
pub type TableId = usize;

/// When PostgreSQL checks a foreign key (`condeferrable`, `condeferred`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FkTiming {
    /// `NOT DEFERRABLE`: at the end of each statement.
    #[default]
    NotDeferrable,
    /// `DEFERRABLE INITIALLY IMMEDIATE`: at the end of each statement until
    /// `SET CONSTRAINTS … DEFERRED`.
    DeferrableImmediate,
    /// `DEFERRABLE INITIALLY DEFERRED`: at commit, or at `SET CONSTRAINTS …
    /// IMMEDIATE`.
    DeferrableDeferred,
}

impl FkTiming {
    /// From `pg_constraint.condeferrable` and `condeferred`.
    pub fn from_catalog(deferrable: bool, deferred: bool) -> FkTiming {
        match (deferrable, deferred) {
            (false, _) => FkTiming::NotDeferrable,
            (true, false) => FkTiming::DeferrableImmediate,
            (true, true) => FkTiming::DeferrableDeferred,
        }
    }

    pub fn is_deferrable(self) -> bool {
        self != FkTiming::NotDeferrable
    }

    /// The clause of `CREATE CONSTRAINT TRIGGER` with the same timing.
    pub fn clause(self) -> &'static str {
        match self {
            FkTiming::NotDeferrable => "NOT DEFERRABLE",
            FkTiming::DeferrableImmediate => "DEFERRABLE INITIALLY IMMEDIATE",
            FkTiming::DeferrableDeferred => "DEFERRABLE INITIALLY DEFERRED",
        }
    }
}

/// What `ON DELETE` does for a foreign key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FkAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl FkAction {
    /// The word `rules.toml` and `tombstone.edges` use.
    pub fn word(self) -> &'static str {
        match self {
            FkAction::NoAction => "no_action",
            FkAction::Restrict => "restrict",
            FkAction::Cascade => "cascade",
            FkAction::SetNull => "set_null",
            FkAction::SetDefault => "set_default",
        }
    }

    /// From [`FkAction::word`].
    pub fn from_word(word: &str) -> Option<FkAction> {
        [
            FkAction::NoAction,
            FkAction::Restrict,
            FkAction::Cascade,
            FkAction::SetNull,
            FkAction::SetDefault,
        ]
        .into_iter()
        .find(|a| a.word() == word)
    }

    /// From `pg_constraint.confdeltype`.
    pub fn from_catalog(code: &str) -> FkAction {
        match code {
            "r" => FkAction::Restrict,
            "c" => FkAction::Cascade,
            "n" => FkAction::SetNull,
            "d" => FkAction::SetDefault,
            _ => FkAction::NoAction,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `format_type(atttypid, atttypmod)`, e.g. `timestamp with time zone`.
    pub type_sql: String,
    /// Generated, or `GENERATED ALWAYS AS IDENTITY`: an UPDATE can only set
    /// it to `DEFAULT`.
    pub default_only: bool,
}

/// A relation as the catalog describes it, before options are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawTable {
    pub schema: String,
    pub name: String,
    /// `r`, `p` (partitioned), `v`, `m`, `f`, …: only `r` and `p` can be protected.
    pub kind: char,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// A trigger `migrate` installs records this table's soft deletes and
    /// SET NULL changes as operations (`migrate::operations`).
    pub records_operations: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawForeignKey {
    pub name: String,
    pub child: (String, String),
    pub child_columns: Vec<String>,
    pub parent: (String, String),
    pub parent_columns: Vec<String>,
    pub on_delete: FkAction,
    /// PostgreSQL 15 `ON DELETE SET NULL (cols)`: empty means all child columns.
    pub set_columns: Vec<String>,
    pub timing: FkTiming,
    /// tombstone's constraint trigger on the parent (`migrate::fk_checks`)
    /// is installed for this key: the database checks, with the key's own
    /// timing, that no live row references a soft-deleted parent.
    pub parent_checked: bool,
    /// The name of tombstone's constraint trigger on the child
    /// (`migrate::fk_checks`, `tombstone_fk_<key>`) when it is installed
    /// for this key: `SET CONSTRAINTS <key>` must name it too (the
    /// rewriter adds it). A constraint trigger is a constraint of that name
    /// in the child's schema.
    pub child_check: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawUniqueIndex {
    pub table: (String, String),
    pub name: String,
    /// Empty when the index has expressions.
    pub columns: Vec<String>,
    /// `pg_get_expr(indpred)`, if partial.
    pub predicate: Option<String>,
    /// A deferrable constraint (`NOT indimmediate`): no `ON CONFLICT` arbiter.
    pub deferrable: bool,
}

/// Catalog facts, as loaded from `pg_catalog` or written by hand in tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    pub tables: Vec<RawTable>,
    pub foreign_keys: Vec<RawForeignKey>,
    pub unique_indexes: Vec<RawUniqueIndex>,
    /// Names of the functions and procedures outside the system schemas
    /// and tombstone's (any of them may call `set_config`).
    pub functions: Vec<String>,
}

impl Catalog {
    /// Test helper: add a user-defined function name.
    pub fn function(mut self, name: &str) -> Catalog {
        self.functions.push(name.to_string());
        self
    }

    /// Test helper: add a table; `columns` are `"name type"` strings, with
    /// ` generated` at the end for a generated or identity-always column.
    pub fn table(mut self, qualified: &str, columns: &[&str], primary_key: &[&str]) -> Catalog {
        let (schema, name) = split_qualified(qualified);
        let columns = columns
            .iter()
            .map(|c| {
                let (n, t) = c.split_once(' ').unwrap_or((c, "text"));
                let (t, default_only) = match t.strip_suffix(" generated") {
                    Some(t) => (t, true),
                    None => (t, false),
                };
                Column {
                    name: n.to_string(),
                    type_sql: t.to_string(),
                    default_only,
                }
            })
            .collect();
        self.tables.push(RawTable {
            schema,
            name,
            kind: 'r',
            columns,
            primary_key: primary_key.iter().map(|s| s.to_string()).collect(),
            records_operations: true,
        });
        self
    }

    /// Test helper: add a foreign key `child(cols) -> parent(cols)`.
    pub fn fk(
        mut self,
        name: &str,
        child: &str,
        child_columns: &[&str],
        parent: &str,
        parent_columns: &[&str],
        on_delete: FkAction,
    ) -> Catalog {
        self.foreign_keys.push(RawForeignKey {
            name: name.to_string(),
            child: split_qualified(child),
            child_columns: child_columns.iter().map(|s| s.to_string()).collect(),
            parent: split_qualified(parent),
            parent_columns: parent_columns.iter().map(|s| s.to_string()).collect(),
            on_delete,
            set_columns: Vec::new(),
            timing: FkTiming::NotDeferrable,
            parent_checked: false,
            child_check: None,
        });
        self
    }

    /// Test helper: add a unique index, optionally partial.
    pub fn unique(
        mut self,
        table: &str,
        name: &str,
        columns: &[&str],
        predicate: Option<&str>,
    ) -> Catalog {
        self.unique_indexes.push(RawUniqueIndex {
            table: split_qualified(table),
            name: name.to_string(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            predicate: predicate.map(str::to_string),
            deferrable: false,
        });
        self
    }
}

fn split_qualified(q: &str) -> (String, String) {
    match q.split_once('.') {
        Some((s, n)) => (s.to_string(), n.to_string()),
        None => ("public".to_string(), q.to_string()),
    }
}

/// An FK edge added by `rules.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraEdge {
    pub child: (String, String),
    pub child_columns: Vec<String>,
    pub parent: (String, String),
    pub parent_columns: Vec<String>,
    pub on_delete: FkAction,
}

impl ExtraEdge {
    /// Its name in the snapshot and in `tombstone.edges`.
    pub fn name(&self) -> String {
        format!(
            "rules.toml {}.{} -> {}.{}",
            self.child.0, self.child.1, self.parent.0, self.parent.1
        )
    }
}

/// Inputs from `rules.toml` that shape the snapshot (the file itself is read
/// elsewhere).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// The soft-delete column; default `deleted_at`.
    pub column: String,
    /// Set to the actor on soft delete when a protected table has it.
    pub deleted_by_column: String,
    /// Tables (schema, name) never protected even if they have the column.
    pub exclude: Vec<(String, String)>,
    /// Per-table column override: (schema, name) -> column.
    pub column_overrides: Vec<((String, String), String)>,
    /// Foreign keys (by constraint name) ignored for cascades.
    pub remove_edges: Vec<String>,
    /// Edges added for cascades although the catalog has no such FK.
    pub add_edges: Vec<ExtraEdge>,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            column: "deleted_at".to_string(),
            deleted_by_column: "deleted_by".to_string(),
            exclude: Vec::new(),
            column_overrides: Vec::new(),
            remove_edges: Vec::new(),
            add_edges: Vec::new(),
        }
    }
}

/// How a protected table is soft-deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoftDelete {
    pub column: String,
    pub column_type: String,
    pub by_column: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueIndex {
    pub name: String,
    pub columns: Vec<String>,
    /// Partial on exactly `<soft-delete column> IS NULL`.
    pub live_only: bool,
    /// Deferrable: PostgreSQL refuses it as an `ON CONFLICT` arbiter.
    pub deferrable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub kind: char,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub soft_delete: Option<SoftDelete>,
    pub unique_indexes: Vec<UniqueIndex>,
    /// See [`RawTable::records_operations`].
    pub records_operations: bool,
}

impl Table {
    pub fn is_protected(&self) -> bool {
        self.soft_delete.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignKey {
    /// Constraint name, or `rules.toml` for added edges.
    pub name: String,
    pub child: TableId,
    pub child_columns: Vec<String>,
    pub parent: TableId,
    pub parent_columns: Vec<String>,
    pub on_delete: FkAction,
    pub set_columns: Vec<String>,
    /// `NotDeferrable` for `rules.toml`'s added edges.
    pub timing: FkTiming,
    /// See [`RawForeignKey::parent_checked`]; false for added edges.
    pub parent_checked: bool,
    /// See [`RawForeignKey::child_check`]; none for added edges.
    pub child_check: Option<String>,
    /// A constraint of the catalog (not a `rules.toml` edge).
    pub in_catalog: bool,
}

impl ForeignKey {
    /// Soft-deleting a parent of this key is checked by the database, with
    /// the key's own timing, instead of in the rewritten statement: a
    /// deferrable `NO ACTION` key (PostgreSQL never defers `RESTRICT`) whose
    /// parent-side trigger is installed.
    pub fn restrict_in_database(&self) -> bool {
        self.on_delete == FkAction::NoAction && self.timing.is_deferrable() && self.parent_checked
    }
}

/// The schema as the rewriter sees it. Immutable; rebuild to refresh.
#[derive(Clone, Debug, Default)]
pub struct SchemaSnapshot {
    tables: Vec<Table>,
    by_name: HashMap<(String, String), TableId>,
    foreign_keys: Vec<ForeignKey>,
    /// Lower-cased names whose mention makes a statement worth parsing.
    watched: HashSet<String>,
    /// Watched names that are not plain lower-case identifiers.
    odd_names: Vec<String>,
    longest_watched: usize,
    /// Lower-cased names of the tables of schema `tombstone` (the audit
    /// trail and the operations, read-only through the proxy).
    guarded: HashSet<String>,
    /// Lower-cased names of user-defined functions and procedures.
    user_functions: HashSet<String>,
    /// The `rules.toml` edge rules this snapshot applied: what
    /// `tombstone.edge_rules` mirrors for the SQL functions (`edges.rs`).
    edge_rules: edges::EdgeRules,
}

impl SchemaSnapshot {
    /// Apply `options` to catalog facts.
    pub fn build(catalog: Catalog, options: &SnapshotOptions) -> SchemaSnapshot {
        let user_functions = catalog.functions.iter().map(|f| f.to_lowercase()).collect();
        let mut tables = Vec::with_capacity(catalog.tables.len());
        let mut by_name = HashMap::new();
        for raw in catalog.tables {
            let key = (raw.schema.clone(), raw.name.clone());
            let column = options
                .column_overrides
                .iter()
                .find(|(t, _)| *t == key)
                .map(|(_, c)| c.as_str())
                .unwrap_or(options.column.as_str());
            let excluded = options.exclude.contains(&key) || raw.schema == TOMBSTONE_SCHEMA;
            let soft_delete = if excluded || !matches!(raw.kind, 'r' | 'p') {
                None
            } else {
                raw.columns
                    .iter()
                    .find(|c| c.name == column)
                    .map(|c| SoftDelete {
                        column: c.name.clone(),
                        column_type: c.type_sql.clone(),
                        by_column: raw
                            .columns
                            .iter()
                            .find(|c| c.name == options.deleted_by_column)
                            .map(|c| c.name.clone()),
                    })
            };
            by_name.insert(key, tables.len());
            tables.push(Table {
                schema: raw.schema,
                name: raw.name,
                kind: raw.kind,
                columns: raw.columns,
                primary_key: raw.primary_key,
                soft_delete,
                unique_indexes: Vec::new(),
                records_operations: raw.records_operations,
            });
        }
        for ix in catalog.unique_indexes {
            if let Some(&id) = by_name.get(&ix.table) {
                let table = &mut tables[id];
                let live_only = match (&ix.predicate, &table.soft_delete) {
                    (Some(p), Some(sd)) => is_live_predicate(p, &sd.column),
                    _ => false,
                };
                if ix.predicate.is_none() || live_only {
                    table.unique_indexes.push(UniqueIndex {
                        name: ix.name,
                        columns: ix.columns,
                        live_only,
                        deferrable: ix.deferrable,
                    });
                }
            }
        }
        let mut foreign_keys = Vec::new();
        for fk in catalog.foreign_keys {
            if options.remove_edges.contains(&fk.name) {
                continue;
            }
            if let (Some(&child), Some(&parent)) = (by_name.get(&fk.child), by_name.get(&fk.parent))
            {
                foreign_keys.push(ForeignKey {
                    name: fk.name,
                    child,
                    child_columns: fk.child_columns,
                    parent,
                    parent_columns: fk.parent_columns,
                    on_delete: fk.on_delete,
                    set_columns: fk.set_columns,
                    timing: fk.timing,
                    parent_checked: fk.parent_checked,
                    child_check: fk.child_check,
                    in_catalog: true,
                });
            }
        }
        for e in &options.add_edges {
            if let (Some(&child), Some(&parent)) = (by_name.get(&e.child), by_name.get(&e.parent)) {
                foreign_keys.push(ForeignKey {
                    name: e.name(),
                    child,
                    child_columns: e.child_columns.clone(),
                    parent,
                    parent_columns: e.parent_columns.clone(),
                    on_delete: e.on_delete,
                    set_columns: Vec::new(),
                    timing: FkTiming::NotDeferrable,
                    parent_checked: false,
                    child_check: None,
                    in_catalog: false,
                });
            }
        }
        let mut snapshot = SchemaSnapshot {
            tables,
            by_name,
            foreign_keys,
            user_functions,
            edge_rules: edges::EdgeRules::from_options(options),
            ..SchemaSnapshot::default()
        };
        snapshot.compute_watched();
        snapshot
    }

    /// Protected tables, and every table from which a foreign-key path
    /// leads to a protected one (their DELETE/TRUNCATE … CASCADE matter).
    fn compute_watched(&mut self) {
        let mut watched: HashSet<TableId> = (0..self.tables.len())
            .filter(|&id| self.tables[id].is_protected())
            .collect();
        let mut queue: Vec<TableId> = watched.iter().copied().collect();
        while let Some(t) = queue.pop() {
            for fk in self.foreign_keys.iter().filter(|fk| fk.child == t) {
                if watched.insert(fk.parent) {
                    queue.push(fk.parent);
                }
            }
        }
        let names: HashSet<String> = watched
            .iter()
            .map(|&id| self.tables[id].name.to_lowercase())
            .collect();
        self.odd_names = names
            .iter()
            .filter(|n| !is_plain_identifier(n))
            .cloned()
            .collect();
        self.longest_watched = names.iter().map(|n| n.len()).max().unwrap_or(0);
        self.watched = names;
        self.guarded = self
            .tables
            .iter()
            .filter(|t| t.schema == TOMBSTONE_SCHEMA)
            .map(|t| t.name.to_lowercase())
            .collect();
    }

    /// A protected table that a physical DELETE on `id` would reach through
    /// `ON DELETE CASCADE` via unprotected tables.
    pub fn hard_cascade_reaches_protected(&self, id: TableId) -> Option<TableId> {
        let mut seen = HashSet::from([id]);
        let mut queue = vec![id];
        while let Some(t) = queue.pop() {
            for fk in self
                .children_of(t)
                .filter(|fk| fk.on_delete == FkAction::Cascade)
            {
                if self.tables[fk.child].is_protected() {
                    return Some(fk.child);
                }
                if seen.insert(fk.child) {
                    queue.push(fk.child);
                }
            }
        }
        None
    }

    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    pub fn table(&self, id: TableId) -> &Table {
        &self.tables[id]
    }

    /// The effective edge set: the catalog's foreign keys minus those
    /// `rules.toml` removes, plus those it adds. The one graph every part
    /// follows; the database's `tombstone.edges` is the same set.
    pub fn foreign_keys(&self) -> &[ForeignKey] {
        &self.foreign_keys
    }

    /// The `rules.toml` rules behind [`Self::foreign_keys`].
    pub fn edge_rules(&self) -> &edges::EdgeRules {
        &self.edge_rules
    }

    pub fn lookup(&self, schema: &str, name: &str) -> Option<TableId> {
        self.by_name
            .get(&(schema.to_string(), name.to_string()))
            .copied()
    }

    /// Resolve a possibly qualified name the way PostgreSQL does for tables:
    /// `pg_catalog` first unless listed, then the search path in order.
    pub fn resolve(
        &self,
        schema: Option<&str>,
        name: &str,
        search_path: &[String],
    ) -> Option<TableId> {
        if let Some(s) = schema {
            return self.lookup(s, name);
        }
        if !search_path.iter().any(|s| s == "pg_catalog")
            && let Some(id) = self.lookup("pg_catalog", name)
        {
            return Some(id);
        }
        search_path.iter().find_map(|s| self.lookup(s, name))
    }

    /// Foreign keys whose parent is `id`.
    pub fn children_of(&self, id: TableId) -> impl Iterator<Item = &ForeignKey> {
        self.foreign_keys.iter().filter(move |fk| fk.parent == id)
    }

    /// `name` (as the parser gives it) is a user-defined function or
    /// procedure, ASCII case-insensitively.
    pub fn is_user_function(&self, name: &str) -> bool {
        !self.user_functions.is_empty() && self.user_functions.contains(&name.to_lowercase())
    }

    /// True when a word of `sql` is the name of a user-defined function
    /// (which may change session settings). One pass; `U&"…"` counts.
    pub fn may_call_user_function(&self, sql: &str) -> bool {
        if self.user_functions.is_empty() {
            return false;
        }
        let bytes = sql.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if is_ident_byte(bytes[i]) {
                let start = i;
                while i < bytes.len() && is_ident_byte(bytes[i]) {
                    i += 1;
                }
                let word = &bytes[start..i];
                if word.eq_ignore_ascii_case(b"u") && bytes.get(i) == Some(&b'&') {
                    return true;
                }
                if let Ok(w) = std::str::from_utf8(word)
                    && self.user_functions.contains(&w.to_lowercase())
                {
                    return true;
                }
            } else {
                i += 1;
            }
        }
        false
    }

    /// True when `sql` may mention a watched table. Never false for a
    /// statement that names one; may be true for others (then parsing decides).
    pub fn may_mention_watched(&self, sql: &str) -> bool {
        self.may_mention(sql, &[])
    }

    /// Like [`Self::may_mention_watched`], also true when one of `extra`
    /// (lower-case words) appears. One pass over the text.
    pub fn may_mention(&self, sql: &str, extra: &[&str]) -> bool {
        self.scan_words(sql, extra, false)
    }

    /// Like [`Self::may_mention`], also true when the name of a table of
    /// schema `tombstone` appears (writes to them are refused).
    pub fn may_mention_guarded(&self, sql: &str, extra: &[&str]) -> bool {
        self.scan_words(sql, extra, true)
    }

    fn scan_words(&self, sql: &str, extra: &[&str], guarded: bool) -> bool {
        if self.watched.is_empty() && extra.is_empty() && (!guarded || self.guarded.is_empty()) {
            return false;
        }
        let longest = extra
            .iter()
            .map(|w| w.len())
            .chain(self.guarded.iter().filter(|_| guarded).map(|w| w.len()))
            .fold(self.longest_watched, usize::max);
        let bytes = sql.as_bytes();
        let mut buf = [0u8; 64];
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if is_ident_byte(b) {
                let start = i;
                while i < bytes.len() && is_ident_byte(bytes[i]) {
                    i += 1;
                }
                let word = &bytes[start..i];
                // Unicode-escaped identifiers (U&"…") can spell any name.
                if word.eq_ignore_ascii_case(b"u")
                    && bytes.get(i) == Some(&b'&')
                    && bytes.get(i + 1) == Some(&b'"')
                {
                    return true;
                }
                if word.len() <= longest && word.len() <= buf.len() {
                    for (d, s) in buf.iter_mut().zip(word) {
                        *d = s.to_ascii_lowercase();
                    }
                    if let Ok(w) = std::str::from_utf8(&buf[..word.len()])
                        && (self.watched.contains(w)
                            || extra.contains(&w)
                            || (guarded && self.guarded.contains(w)))
                    {
                        return true;
                    }
                }
            } else {
                i += 1;
            }
        }
        if !self.odd_names.is_empty() {
            let lower = sql.to_lowercase();
            return self.odd_names.iter().any(|n| lower.contains(n.as_str()));
        }
        false
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_plain_identifier(n: &str) -> bool {
    n.bytes().all(is_ident_byte)
}

/// `deleted_at IS NULL` as `pg_get_expr` prints it: `(deleted_at IS NULL)`.
fn is_live_predicate(predicate: &str, column: &str) -> bool {
    let p: String = predicate
        .chars()
        .filter(|c| !matches!(c, '(' | ')' | '"'))
        .collect();
    let p = p
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    p == format!("{} is null", column.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precheck_matches_case_insensitively_and_whole_words() {
        let cat = Catalog::default()
            .table(
                "public.tasks",
                &["id bigint", "deleted_at timestamptz"],
                &["id"],
            )
            .table("public.tags", &["id int"], &["id"]);
        let s = SchemaSnapshot::build(cat, &SnapshotOptions::default());
        assert!(s.may_mention_watched("select * from TASKS"));
        assert!(s.may_mention_watched("select * from \"tasks\""));
        assert!(!s.may_mention_watched("select * from tags"));
        assert!(!s.may_mention_watched("select tasks_count from t"));
        assert!(s.may_mention_watched("select * from U&\"t\\0061sks\""));
    }

    #[test]
    fn live_predicate_recognised() {
        assert!(is_live_predicate("(deleted_at IS NULL)", "deleted_at"));
        assert!(!is_live_predicate("(deleted_at IS NOT NULL)", "deleted_at"));
    }
}
