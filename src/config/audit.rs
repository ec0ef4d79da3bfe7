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
    /// Purge clears the old and new values of the audit rows of what it
    /// removes (table, key, action, actor, login role, client, application,
    /// transaction, operation and time stay). Default: on when a table's
    /// `retention.keep` is shorter than `audit.retention` (a purge that
    /// leaves the row in the trail has not erased it), off otherwise.
    pub redact_on_purge: Option<bool>,
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
            redact_on_purge: None,
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

    /// Whether purging rows kept for `keep` redacts their audit rows:
    /// `redact_on_purge` when set, else whether the rows go before their
    /// audit rows would (`audit.retention` `"0s"`: never).
    pub fn redacts_on_purge(&self, keep: Duration) -> bool {
        self.redact_on_purge
            .unwrap_or_else(|| self.retention.is_none_or(|audit| keep < audit))
    }

    /// Whether UPDATEs of `schema.table` are audited.
    pub fn audits_updates(&self, qualified: &str) -> bool {
        self.tables
            .get(qualified)
            .and_then(|t| t.updates)
            .unwrap_or(self.updates)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn redaction_on_purge_defaults_to_the_shorter_retention() {
        let day = Duration::from_secs(86_400);
        let c = Config::parse("").unwrap();
        assert!(c.audit.redacts_on_purge(30 * day));
        assert!(!c.audit.redacts_on_purge(400 * day));
        let c = Config::parse("[audit]\nretention = \"10days\"\n").unwrap();
        assert!(!c.audit.redacts_on_purge(30 * day));
        assert!(c.audit.redacts_on_purge(9 * day));
        let c = Config::parse("[audit]\nretention = \"0s\"\n").unwrap();
        assert!(c.audit.redacts_on_purge(3650 * day));
        let c = Config::parse("[audit]\nredact_on_purge = false\n").unwrap();
        assert!(!c.audit.redacts_on_purge(day));
        let c = Config::parse("[audit]\nretention = \"1day\"\nredact_on_purge = true\n").unwrap();
        assert!(c.audit.redacts_on_purge(30 * day));
        let e = Config::parse("[audit]\nredact_on_purge = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("audit.redact_on_purge"), "{e}");
    }
}
