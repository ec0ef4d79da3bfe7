//! Rewriter errors: each maps to a SQLSTATE, a message and a hint, so the
//! wire layer can answer with a proper ErrorResponse.

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("TRUNCATE of protected table {table} is not allowed")]
    TruncateProtected { table: String },
    #[error("{what} is refused: tombstone cannot check it for soft-deleted rows")]
    FailClosed { what: String },
    #[error("{what} is not supported by tombstone")]
    Unsupported { what: String },
    /// A soft delete whose operation no trigger would record.
    #[error(
        "DELETE on {table} is refused: tombstone migrate has not installed the triggers that record soft deletes on {missing}"
    )]
    NotInstalled { table: String, missing: String },
    #[error("statement of {size} bytes exceeds tombstone's limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("statement too complex for tombstone's parser: {detail}")]
    TooComplex { detail: String },
    #[error("{message}")]
    Syntax { message: String },
    /// A write to tombstone's own tables (the audit trail, operations).
    #[error("{what} is not allowed through tombstone: table {table} is read-only")]
    ReadOnly { what: String, table: String },
    /// A `tombstone.*` setting this session may not change.
    #[error("permission denied to set parameter \"{name}\"")]
    SettingDenied { name: String, bypass_only: bool },
    /// The check of tombstone's own rewrite failed (`rewrite::verify`): the
    /// statement is not sent.
    #[error("tombstone's check of its rewrite of this statement failed: {reason}")]
    Unverified { reason: String },
    /// `SET tombstone.visibility` to something tombstone does not know.
    #[error("invalid value for parameter \"{name}\": \"{value}\"")]
    InvalidSetting { name: String, value: String },
}

impl RewriteError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            RewriteError::TruncateProtected { .. }
            | RewriteError::FailClosed { .. }
            | RewriteError::ReadOnly { .. }
            | RewriteError::SettingDenied { .. } => "42501",
            RewriteError::InvalidSetting { .. } => "22023",
            RewriteError::Unsupported { .. } => "0A000",
            RewriteError::NotInstalled { .. } => "55000",
            RewriteError::TooLarge { .. } => "54000",
            RewriteError::TooComplex { .. } => "54001",
            RewriteError::Syntax { .. } => "42601",
            // Class TS (implementation-defined): tombstone's own.
            RewriteError::Unverified { .. } => "TS001",
        }
    }

    pub fn message(&self) -> String {
        self.to_string()
    }

    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RewriteError::TruncateProtected { .. } => Some(
                "Protected tables keep soft-deleted rows; use DELETE, or a purge/erase run by tombstone.",
            ),
            RewriteError::FailClosed { .. } => Some(
                "Statements naming a protected table must be plain SQL tombstone can rewrite; run this as a bypass role.",
            ),
            RewriteError::Unsupported { .. } => {
                Some("Rewrite the statement, or run it as a bypass role.")
            }
            RewriteError::NotInstalled { .. } => Some(
                "Run `tombstone migrate --apply` after protecting a table: without its triggers the soft delete could not be restored.",
            ),
            RewriteError::TooLarge { .. } | RewriteError::TooComplex { .. } => {
                Some("Split the statement or reduce its nesting.")
            }
            RewriteError::Syntax { .. } => None,
            RewriteError::Unverified { .. } => Some(
                "This is a tombstone bug: please report the statement. Meanwhile rewrite it, or run it as a bypass role.",
            ),
            RewriteError::ReadOnly { .. } => Some(
                "The audit trail and tombstone's operations are written by tombstone itself; purge and erase run outside the proxy.",
            ),
            RewriteError::SettingDenied {
                bypass_only: true, ..
            } => Some("Only members of a bypass role (roles.bypass in rules.toml) can change it."),
            RewriteError::SettingDenied { .. } => Some(
                "tombstone sets it at login from the connection it sees; nobody can change it.",
            ),
            RewriteError::InvalidSetting { .. } => Some("Available values: active, deleted, all."),
        }
    }
}
