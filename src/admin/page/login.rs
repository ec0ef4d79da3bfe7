//! Logging in to the trash page: with `admin.token`, or with a PostgreSQL
//! role's name and password.
//!
//! A PostgreSQL login connects to the protected database (`database.url`'s
//! host, port and database) as that role: the server's authentication is
//! what checks the password. The role must then be a member of one of
//! `roles.bypass` (`pg_has_role`, the test `tombstone.require_bypass`
//! makes). Because a `trust` line in `pg_hba.conf` lets any password
//! through, the password is also checked independently of `pg_hba.conf`:
//! when `database.url`'s role may read `pg_authid` (a superuser), against
//! the role's SCRAM-SHA-256 verifier; otherwise by a second connection with
//! a random wrong password, which must be refused — if the server lets it
//! in, it does not check passwords from here and password logins are off
//! (use `admin.token`, or `scram-sha-256` in `pg_hba.conf`).

use ring::{digest, hmac, pbkdf2};
use tokio_postgres::Client;

use super::session::constant_time_eq;
use crate::config::Config;

/// Why a login is refused, in words for the login page.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong role name or password")]
    Credentials,
    #[error("role \"{0}\" is not a member of a bypass role (roles.bypass: {1})")]
    NotBypass(String, String),
    #[error("wrong token")]
    Token,
    #[error(
        "PostgreSQL does not check passwords for connections from the proxy (pg_hba.conf trusts them), so a password proves nothing: log in with admin.token, or require scram-sha-256 in pg_hba.conf"
    )]
    Unchecked,
    #[error("no database.url: the trash page needs the protected database")]
    NoDatabase,
    #[error("cannot log in: {0}")]
    Database(String),
}

/// Who logged in and their connection.
pub struct LoggedIn {
    pub actor: String,
    pub client: Client,
}

/// The actor a token login restores as.
pub const TOKEN_ACTOR: &str = "admin.token";

/// Logs in with `token` (compared in constant time, through SHA-256 so
/// that not even its length leaks); the session uses `database.url`'s
/// connection.
pub async fn with_token(config: &Config, token: &str) -> Result<LoggedIn, LoginError> {
    let Some(expected) = &config.admin.token else {
        return Err(LoginError::Token);
    };
    let a = digest::digest(&digest::SHA256, token.as_bytes());
    let b = digest::digest(&digest::SHA256, expected.as_bytes());
    if !constant_time_eq(a.as_ref(), b.as_ref()) {
        return Err(LoginError::Token);
    }
    let url = config.database.url.as_ref().ok_or(LoginError::NoDatabase)?;
    let client = connect(url.parse().map_err(db_error)?).await?;
    Ok(LoggedIn {
        actor: TOKEN_ACTOR.to_string(),
        client,
    })
}

/// Logs in as PostgreSQL role `role` with `password`.
pub async fn with_password(
    config: &Config,
    role: &str,
    password: &str,
) -> Result<LoggedIn, LoginError> {
    let url = config.database.url.as_ref().ok_or(LoginError::NoDatabase)?;
    if role.is_empty() || password.is_empty() {
        return Err(LoginError::Credentials);
    }
    let base: tokio_postgres::Config = url.parse().map_err(db_error)?;
    let mut mine = base.clone();
    mine.user(role).password(password);
    mine.application_name("tombstone trash page");
    let client = match connect(mine).await {
        Ok(c) => c,
        Err(LoginError::Database(why)) => {
            tracing::info!(role, reason = %why, "trash page: login refused by PostgreSQL");
            return Err(LoginError::Credentials);
        }
        Err(e) => return Err(e),
    };
    let bypass = &config.roles.bypass;
    let member: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                             WHERE r.rolname = ANY ($1::text[])
                               AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'))",
            &[bypass],
        )
        .await
        .map_err(db_error)?
        .get(0);
    if !member {
        return Err(LoginError::NotBypass(role.to_string(), bypass.join(", ")));
    }
    verify_password(&base, role, password).await?;
    Ok(LoggedIn {
        actor: role.to_string(),
        client,
    })
}

/// The check that does not depend on `pg_hba.conf` (see the module doc).
async fn verify_password(
    base: &tokio_postgres::Config,
    role: &str,
    password: &str,
) -> Result<(), LoginError> {
    let service = connect(base.clone()).await?;
    let stored = service
        .query_opt(
            "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await;
    match stored {
        Ok(Some(row)) => {
            let verifier: Option<String> = row.get(0);
            match verifier.as_deref().and_then(Scram::parse) {
                Some(scram) if scram.matches(password) => Ok(()),
                Some(_) => Err(LoginError::Credentials),
                // No password, or an md5 one tombstone does not check:
                // only the connection's own check is left.
                None => probe(base, role).await,
            }
        }
        Ok(None) => Err(LoginError::Credentials),
        // Not a superuser: pg_authid is not readable.
        Err(_) => probe(base, role).await,
    }
}

/// Connects as `role` with a random password: it must be refused.
async fn probe(base: &tokio_postgres::Config, role: &str) -> Result<(), LoginError> {
    let wrong = crate::admin::random_hex(24)
        .ok_or_else(|| LoginError::Database("no random numbers".into()))?;
    let mut cfg = base.clone();
    cfg.user(role).password(wrong);
    match connect(cfg).await {
        Ok(_) => Err(LoginError::Unchecked),
        Err(_) => Ok(()),
    }
}

async fn connect(cfg: tokio_postgres::Config) -> Result<Client, LoginError> {
    let (client, connection) = cfg.connect(tokio_postgres::NoTls).await.map_err(db_error)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "trash page connection ended");
        }
    });
    Ok(client)
}

fn db_error(e: tokio_postgres::Error) -> LoginError {
    LoginError::Database(crate::pg_error::describe(&e))
}

/// A SCRAM-SHA-256 verifier as PostgreSQL stores it:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).
struct Scram {
    iterations: std::num::NonZeroU32,
    salt: Vec<u8>,
    stored_key: Vec<u8>,
}

impl Scram {
    fn parse(text: &str) -> Option<Scram> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored_key, _server_key) = keys.split_once(':')?;
        Some(Scram {
            iterations: iterations.parse().ok()?,
            salt: b64.decode(salt).ok()?,
            stored_key: b64.decode(stored_key).ok()?,
        })
    }

    /// Whether `password` gives this verifier's StoredKey (RFC 5802:
    /// `SHA-256(HMAC(PBKDF2(password, salt, i), "Client Key"))`). The
    /// password is used as its UTF-8 bytes: PostgreSQL's SASLprep leaves
    /// ASCII passwords unchanged.
    fn matches(&self, password: &str) -> bool {
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &mut salted,
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&key, b"Client Key");
        let stored = digest::digest(&digest::SHA256, client_key.as_ref());
        constant_time_eq(stored.as_ref(), &self.stored_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verifier PostgreSQL 15 made: `SET password_encryption =
    /// 'scram-sha-256'; ALTER ROLE x PASSWORD 'secret-pw'`.
    #[test]
    fn scram_verifier_checks_the_password() {
        let v = "SCRAM-SHA-256$4096:R5OlfSCZvcrEh5a1FtPM3w==$+DaqKUDB0O4OoRfSD2Sjh+tLmumuKSDfvpP/VXcDTls=:zsYlIE9XuFLPOQbn5B5P8Qo+1GLy70eugOsegKRqr2s=";
        let scram = Scram::parse(v).expect("a verifier");
        assert!(scram.matches("secret-pw"));
        assert!(!scram.matches("wrong"));
        assert!(Scram::parse("md5abcdef").is_none());
    }
}
