//! The `rules.toml` half of the one FK graph. The effective edge set is
//! the catalog's foreign keys minus `soft_delete.remove_edges` plus
//! `soft_delete.add_edges`: [`SchemaSnapshot::build`](super::SchemaSnapshot::build)
//! computes it for the rewriter, doctor and purge's order, and the
//! database view `tombstone.edges` computes the same set for the SQL
//! functions (restore, purge, erase) from the live catalog and the rows
//! of `tombstone.edge_rules`, which mirror [`EdgeRules`]: `migrate` and
//! `serve` write them (`migrate::edges`, `ops::edges`).

use super::{ExtraEdge, SnapshotOptions};

/// The edge rules of one configuration, as the snapshot applied them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeRules {
    /// Catalog foreign keys (by constraint name) cascades ignore.
    pub remove: Vec<String>,
    /// Edges the catalog lacks.
    pub add: Vec<ExtraEdge>,
}

/// One row of `tombstone.edge_rules`, every column as stored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleRow {
    /// `add` or `remove`.
    pub kind: String,
    /// Position within its kind, as in `rules.toml`.
    pub ord: i32,
    /// The constraint name (`remove`), or [`ExtraEdge::name`] (`add`).
    pub name: String,
    pub child_schema: Option<String>,
    pub child_table: Option<String>,
    pub child_columns: Option<Vec<String>>,
    pub parent_schema: Option<String>,
    pub parent_table: Option<String>,
    pub parent_columns: Option<Vec<String>>,
    pub on_delete: Option<String>,
}

impl RuleRow {
    /// The rule in words, for messages.
    pub fn describe(&self) -> String {
        if self.kind == "remove" {
            return format!("remove foreign key {}", self.name);
        }
        let columns = |c: &Option<Vec<String>>| c.as_deref().unwrap_or_default().join(", ");
        format!(
            "add {}.{} ({}) -> {}.{} ({}) on delete {}",
            self.child_schema.as_deref().unwrap_or_default(),
            self.child_table.as_deref().unwrap_or_default(),
            columns(&self.child_columns),
            self.parent_schema.as_deref().unwrap_or_default(),
            self.parent_table.as_deref().unwrap_or_default(),
            columns(&self.parent_columns),
            self.on_delete.as_deref().unwrap_or_default()
        )
    }
}

/// The columns of `tombstone.edge_rules`, in [`RuleRow`]'s order.
pub const RULE_COLUMNS: &str = "kind, ord, name, child_schema, child_table, child_columns, \
     parent_schema, parent_table, parent_columns, on_delete";

fn position(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}

impl EdgeRules {
    pub fn from_options(options: &SnapshotOptions) -> EdgeRules {
        EdgeRules {
            remove: options.remove_edges.clone(),
            add: options.add_edges.clone(),
        }
    }

    /// The rows `tombstone.edge_rules` holds for these rules, sorted as
    /// `SELECT … ORDER BY kind, ord` returns them.
    pub fn rows(&self) -> Vec<RuleRow> {
        let mut rows: Vec<RuleRow> = self
            .add
            .iter()
            .enumerate()
            .map(|(i, e)| RuleRow {
                kind: "add".to_string(),
                ord: position(i),
                name: e.name(),
                child_schema: Some(e.child.0.clone()),
                child_table: Some(e.child.1.clone()),
                child_columns: Some(e.child_columns.clone()),
                parent_schema: Some(e.parent.0.clone()),
                parent_table: Some(e.parent.1.clone()),
                parent_columns: Some(e.parent_columns.clone()),
                on_delete: Some(e.on_delete.word().to_string()),
            })
            .collect();
        rows.extend(self.remove.iter().enumerate().map(|(i, name)| RuleRow {
            kind: "remove".to_string(),
            ord: position(i),
            name: name.clone(),
            child_schema: None,
            child_table: None,
            child_columns: None,
            parent_schema: None,
            parent_table: None,
            parent_columns: None,
            on_delete: None,
        }));
        rows.sort();
        rows
    }

    /// SQL replacing every row of `tombstone.edge_rules` with these rules
    /// (`migrate`'s step; `serve` writes the same rows with parameters).
    pub fn write_sql(&self) -> String {
        let mut sql = String::from("DELETE FROM tombstone.edge_rules;\n");
        for r in self.rows() {
            sql.push_str(&format!(
                "INSERT INTO tombstone.edge_rules ({RULE_COLUMNS}) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {});\n",
                literal(Some(&r.kind)),
                r.ord,
                literal(Some(&r.name)),
                literal(r.child_schema.as_deref()),
                literal(r.child_table.as_deref()),
                array(r.child_columns.as_deref()),
                literal(r.parent_schema.as_deref()),
                literal(r.parent_table.as_deref()),
                array(r.parent_columns.as_deref()),
                literal(r.on_delete.as_deref()),
            ));
        }
        sql
    }
}

/// A SQL string literal (standard conforming), or NULL.
fn literal(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("'{}'", v.replace('\'', "''")),
        None => "NULL".to_string(),
    }
}

/// A `text[]` literal, or NULL.
fn array(values: Option<&[String]>) -> String {
    match values {
        Some(vs) => {
            let items: Vec<String> = vs.iter().map(|v| literal(Some(v))).collect();
            format!("ARRAY[{}]::text[]", items.join(", "))
        }
        None => "NULL".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FkAction;

    fn rules() -> EdgeRules {
        EdgeRules {
            remove: vec!["labels_folder_fkey".to_string()],
            add: vec![ExtraEdge {
                child: ("public".to_string(), "o'notes".to_string()),
                child_columns: vec!["folder_ref".to_string()],
                parent: ("public".to_string(), "folders".to_string()),
                parent_columns: vec!["id".to_string()],
                on_delete: FkAction::SetNull,
            }],
        }
    }

    #[test]
    fn rows_are_sorted_and_named_like_the_snapshot_edges() {
        let rows = rules().rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].kind, "add");
        assert_eq!(rows[0].name, "rules.toml public.o'notes -> public.folders");
        assert_eq!(rows[0].on_delete.as_deref(), Some("set_null"));
        assert_eq!(rows[1].kind, "remove");
        assert_eq!(
            rows[0].describe(),
            "add public.o'notes (folder_ref) -> public.folders (id) on delete set_null"
        );
        assert_eq!(rows[1].describe(), "remove foreign key labels_folder_fkey");
    }

    #[test]
    fn write_sql_quotes_every_value() {
        let sql = rules().write_sql();
        assert!(
            sql.starts_with("DELETE FROM tombstone.edge_rules;\n"),
            "{sql}"
        );
        assert!(
            sql.contains("'public', 'o''notes', ARRAY['folder_ref']::text[]"),
            "{sql}"
        );
        assert!(
            sql.contains("VALUES ('remove', 0, 'labels_folder_fkey', NULL, NULL, NULL, NULL, NULL, NULL, NULL);"),
            "{sql}"
        );
        assert_eq!(
            EdgeRules::default().write_sql(),
            "DELETE FROM tombstone.edge_rules;\n"
        );
    }

    #[test]
    fn every_action_word_round_trips() {
        for a in [
            FkAction::NoAction,
            FkAction::Restrict,
            FkAction::Cascade,
            FkAction::SetNull,
            FkAction::SetDefault,
        ] {
            assert_eq!(FkAction::from_word(a.word()), Some(a));
        }
        assert_eq!(FkAction::from_word("explode"), None);
    }
}
