//! `[roles]`: who sees the trash.

use serde::Deserialize;

use super::ConfigError;

/// `[roles]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolesConfig {
    /// Roles whose members (checked at login, membership counts) are bypass
    /// sessions: they see every row, can `SET tombstone.visibility`, and
    /// restore. Default: none.
    pub bypass: Vec<String>,
    /// Let bypass sessions' `DELETE` remove rows physically. Default
    /// `false`: their deletes are soft and audited like everyone's.
    pub bypass_hard_delete: bool,
}

impl RolesConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for r in &self.bypass {
            if r.is_empty() || r.contains('\0') {
                return Err(ConfigError::key(
                    "roles.bypass",
                    format!("`{r}` is not a role name"),
                ));
            }
        }
        Ok(())
    }
}
