//! `tombstone rewrite [--role normal|bypass] 'SQL'`: print what a statement
//! becomes, using the schema of the database named by `--database-url`.

use crate::rewrite::{Role, SessionContext, Visibility, parse_search_path, rewrite};
use crate::schema::{SnapshotOptions, load};

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
    /// Database whose schema decides what is protected.
    #[arg(
        long,
        env = "TOMBSTONE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    /// The SQL to rewrite (one or more statements).
    pub sql: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RewriteCliError {
    #[error("cannot read the schema from the database: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("{sqlstate}: {message}")]
    Rewrite {
        sqlstate: &'static str,
        message: String,
    },
}

/// Load the snapshot, rewrite, print the SQL alone on stdout.
pub async fn run(args: RewriteArgs) -> Result<(), RewriteCliError> {
    let (client, connection) =
        tokio_postgres::connect(&args.database_url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let snapshot = load::load(&client, &SnapshotOptions::default()).await?;
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .await?
        .get(0);
    let search_path: String = client
        .query_one("SELECT current_setting('search_path')", &[])
        .await?
        .get(0);
    drop(client);
    let _ = driver.await;
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
    println!("{}", out.sql);
    Ok(())
}
