//! `tombstone rewrite [--role normal|bypass] 'SQL'`: print what a statement
//! becomes, using the schema of the database (`--database-url`, or
//! `database.url` of rules.toml). Without a database, or with one where no
//! table is protected, it says on stderr that nothing is protected.

use std::process::ExitCode;

use super::database::{DatabaseArgs, NO_DATABASE, connect};
use super::fail;
use crate::config::redact_url;
use crate::pg_error::describe;
use crate::rewrite::{Role, SessionContext, Visibility, parse_search_path, rewrite};
use crate::schema::{Catalog, SchemaSnapshot, load};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Normal,
    Bypass,
}

#[derive(Debug, clap::Args)]
pub struct RewriteArgs {
    /// Rewrite as seen by a normal session or a bypass (admin) session.
    #[arg(long, value_enum, default_value = "normal")]
    pub role: RoleArg,
    /// The database whose schema decides what is protected.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The SQL to rewrite (one or more statements).
    pub sql: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RewriteCliError {
    /// rules.toml does not load.
    #[error("{0}")]
    Config(String),
    /// The database cannot be reached.
    #[error("{0}")]
    Connect(String),
    #[error("cannot read the schema from the database: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("{sqlstate}: {message}")]
    Rewrite {
        sqlstate: &'static str,
        message: String,
    },
}

/// A rewritten statement, and what the operator should know about it.
#[derive(Debug)]
pub struct Rewritten {
    /// The text the proxy would send.
    pub sql: String,
    /// Why the statement may come out unchanged: no database, or no
    /// protected table in it.
    pub warning: Option<String>,
}

/// Loads the snapshot (an empty one without a database) and rewrites.
pub async fn run(args: RewriteArgs) -> Result<Rewritten, RewriteCliError> {
    let (config, url) = args.db.resolve().map_err(RewriteCliError::Config)?;
    let options = crate::protect::snapshot_options(&config);
    let (snapshot, user, search_path, warning) = match &url {
        None => (
            SchemaSnapshot::build(Catalog::default(), &options),
            super::database::os_user().unwrap_or_default(),
            "\"$user\", public".to_string(),
            Some(format!(
                "no database, so no schema: nothing is protected and the statement is printed as a transparent relay sends it; to see what tombstone does with your tables, {NO_DATABASE}"
            )),
        ),
        Some(url) => {
            let client = connect(url).await.map_err(RewriteCliError::Connect)?;
            let snapshot = load::load(&client, &options).await?;
            let user: String = client
                .query_one("SELECT current_user::text", &[])
                .await?
                .get(0);
            let search_path: String = client
                .query_one("SELECT current_setting('search_path')", &[])
                .await?
                .get(0);
            let warning = (!snapshot.tables().iter().any(|t| t.is_protected())).then(|| {
                format!(
                    "no table of {} is protected (none has a {} column): the statement is printed unchanged",
                    redact_url(url),
                    config.soft_delete.column
                )
            });
            (snapshot, user, search_path, warning)
        }
    };
    let mut session = SessionContext::normal(&user);
    session.search_path = parse_search_path(&search_path);
    if args.role == RoleArg::Bypass {
        // As the proxy does: the server-side `tombstone.visibility` decides.
        session.role = Role::Bypass {
            visibility: Visibility::Setting,
        };
    }
    let out = rewrite(&args.sql, &snapshot, &session).map_err(|e| RewriteCliError::Rewrite {
        sqlstate: e.sqlstate(),
        message: e.message(),
    })?;
    Ok(Rewritten {
        sql: out.sql.into_owned(),
        warning,
    })
}

/// The subcommand: the SQL alone on stdout, a warning on stderr; exit 2
/// when rules.toml does not load, 1 when the database cannot be read or
/// the statement is refused.
pub async fn main(args: RewriteArgs) -> ExitCode {
    match run(args).await {
        Ok(out) => {
            if let Some(warning) = &out.warning {
                fail(&format!("warning: {warning}"));
            }
            println!("{}", out.sql);
            ExitCode::SUCCESS
        }
        Err(e @ RewriteCliError::Config(_)) => {
            fail(&e.to_string());
            ExitCode::from(2)
        }
        Err(e) => {
            fail(&e.to_string());
            ExitCode::FAILURE
        }
    }
}
