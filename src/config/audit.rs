//! `[audit]`: what the audit trail records and how long it keeps it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[audit]`. Soft deletes, restores, purges and erasures are always
/// audited; INSERT and UPDATE are audited by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Audit INSERTs into protected tables. Default `true`.
    pub inserts: bool,
    /// Audit UPDATEs of protected tables. Default `true`.
    pub updates: bool,
    /// Per-table overrides, `[audit.tables."schema.table"]`.
    pub tables: BTreeMap<String, AuditTableConfig>,
    /// Audit rows older than this are dropped (a whole monthly partition at
    /// a time). Default `"400days"`; `"0s"` keeps them forever.
    #[serde(deserialize_with = "super::duration::deserialize_optional")]
    pub retention: Option<Duration>,
}

/// `[audit.tables."schema.table"]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditTableConfig {
    pub inserts: Option<bool>,
    pub updates: Option<bool>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            inserts: true,
            updates: true,
            tables: BTreeMap::new(),
            retention: Some(Duration::from_secs(400 * 86_400)),
        }
    }
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for t in self.tables.keys() {
            super::qualified("audit.tables", t)?;
        }
        Ok(())
    }

    /// Whether INSERTs into `schema.table` are audited.
    pub fn audits_inserts(&self, qualified: &str) -> bool {
        self.tables
            .get(qualified)
            .and_then(|t| t.inserts)
            .unwrap_or(self.inserts)
    }

    /// Whether UPDATEs of `schema.table` are audited.
    pub fn audits_updates(&self, qualified: &str) -> bool {
        self.tables
            .get(qualified)
            .and_then(|t| t.updates)
            .unwrap_or(self.updates)
    }
}
