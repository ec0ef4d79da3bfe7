//! `[soft_delete]`: which tables are protected and how cascades run.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;

/// `[soft_delete]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoftDeleteConfig {
    /// The column whose presence makes a table protected. Default
    /// `deleted_at` (timestamptz).
    pub column: String,
    /// Set to the actor on soft delete where a protected table has it.
    /// Default `deleted_by`.
    pub deleted_by_column: String,
    /// Tables never protected although they have the column, as
    /// `"schema.table"`.
    pub exclude: Vec<String>,
    /// Per-table soft-delete column, `"schema.table" = "column"`.
    pub columns: BTreeMap<String, String>,
    /// Foreign-key constraints (by name) that cascades ignore.
    pub remove_edges: Vec<String>,
    /// Cascade edges the catalog lacks.
    pub add_edges: Vec<EdgeConfig>,
}

/// `[[soft_delete.add_edges]]`: a cascade the catalog does not declare.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// `"schema.table"` whose rows are deleted first.
    pub parent: String,
    pub parent_columns: Vec<String>,
    /// `"schema.table"` that references it.
    pub child: String,
    pub child_columns: Vec<String>,
    /// `cascade` (default), `set_null`, `set_default`, `restrict`, `no_action`.
    #[serde(default = "cascade")]
    pub on_delete: EdgeAction,
}

/// What deleting a parent does to an added edge's children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeAction {
    Cascade,
    SetNull,
    SetDefault,
    Restrict,
    NoAction,
}

fn cascade() -> EdgeAction {
    EdgeAction::Cascade
}

impl Default for SoftDeleteConfig {
    fn default() -> Self {
        SoftDeleteConfig {
            column: "deleted_at".to_string(),
            deleted_by_column: "deleted_by".to_string(),
            exclude: Vec::new(),
            columns: BTreeMap::new(),
            remove_edges: Vec::new(),
            add_edges: Vec::new(),
        }
    }
}

impl SoftDeleteConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        super::identifier("soft_delete.column", &self.column)?;
        super::identifier("soft_delete.deleted_by_column", &self.deleted_by_column)?;
        for t in &self.exclude {
            super::qualified("soft_delete.exclude", t)?;
        }
        for (t, c) in &self.columns {
            super::qualified("soft_delete.columns", t)?;
            super::identifier(&format!("soft_delete.columns.\"{t}\""), c)?;
        }
        for (i, e) in self.add_edges.iter().enumerate() {
            let key = format!("soft_delete.add_edges[{i}]");
            super::qualified(&format!("{key}.parent"), &e.parent)?;
            super::qualified(&format!("{key}.child"), &e.child)?;
            if e.parent_columns.is_empty() || e.parent_columns.len() != e.child_columns.len() {
                return Err(ConfigError::key(
                    &format!("{key}.child_columns"),
                    "must list as many columns as parent_columns, at least one",
                ));
            }
        }
        Ok(())
    }
}
