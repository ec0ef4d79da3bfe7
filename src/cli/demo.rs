//! `tombstone demo`: everything in one command, for a first look. A
//! throwaway PostgreSQL from the machine's own binaries ([`cluster`]), the
//! reference scenario loaded (`tests/scenario/`, compiled in), `migrate
//! --apply`, the roles and grants of the README's quick start, and the
//! proxy with its admin listener, started as `serve` starts them. It
//! prints the connection strings and three psql lines to try, serves until
//! SIGINT (Ctrl-C) or SIGTERM, then stops the proxy and the server and
//! deletes the directory; a startup that fails half way cleans up too.

mod cluster;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::oneshot;

use self::cluster::Cluster;
use super::database::connect;
use super::fail;
use super::migrate::{Planned, planned};
use super::serve::{Until, proxy};
use crate::config::Config;
use crate::pg_error::describe;

/// The reference schema and data (`tests/scenario/`), in the binary so
/// that the demo runs from any directory.
const SCHEMA_SQL: &str = include_str!("../../tests/scenario/schema.sql");
const DATA_SQL: &str = include_str!("../../tests/scenario/data.sql");

/// The database the scenario is loaded into.
const DATABASE: &str = "app";

/// The README's quick start, step 3: an application role, and an admin
/// role in the bypass role `trash`, with only the grants the application
/// has anyway.
const ROLES_SQL: &str = "
CREATE ROLE app LOGIN;  CREATE ROLE trash NOLOGIN;  CREATE ROLE admin LOGIN IN ROLE trash;
GRANT USAGE ON SCHEMA public, billing TO app, admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, billing TO app, admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public, billing TO app, admin;
";

/// How long the proxy's runtime may take to finish its background work
/// once the proxy stopped.
const PROXY_SHUTDOWN: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory holding PostgreSQL's initdb and pg_ctl. Default:
    /// `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin,
    /// else PATH.
    #[arg(long, value_name = "DIR")]
    pg_bin: Option<PathBuf>,
    /// Port of the proxy on 127.0.0.1. Default: a free one.
    #[arg(long)]
    port: Option<u16>,
    /// Port of the admin listener on 127.0.0.1. Default: a free one.
    #[arg(long, value_name = "PORT")]
    admin_port: Option<u16>,
    /// Projects in the scenario, each with 500 tasks, 2,000 comments, 300
    /// attachments and more.
    #[arg(long, default_value_t = 3, value_name = "N")]
    projects: u32,
    /// When run as root: the unprivileged account that runs PostgreSQL
    /// (initdb refuses root).
    #[arg(long, default_value = "postgres", value_name = "ACCOUNT")]
    pg_user: String,
}

/// SIGINT and SIGTERM, installed first so that neither kills the demo
/// before it has cleaned up.
struct Stop {
    int: Signal,
    term: Signal,
}

impl Stop {
    fn install() -> Result<Stop, String> {
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        match (int, term) {
            (Ok(int), Ok(term)) => Ok(Stop { int, term }),
            (Err(e), _) | (_, Err(e)) => Err(format!("cannot install signal handlers: {e}")),
        }
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// The ports and where everything is, once the database is ready.
struct Ready {
    config_path: PathBuf,
    database_url: String,
    config: Config,
}

pub async fn run(args: DemoArgs) -> ExitCode {
    let mut stop = match Stop::install() {
        Ok(s) => s,
        Err(e) => {
            fail(&e);
            return ExitCode::FAILURE;
        }
    };
    let bindir = match cluster::find_bindir(args.pg_bin.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            fail(&format!("demo: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let ports = match ports(&args) {
        Ok(p) => p,
        Err(e) => {
            fail(&format!("demo: {e}"));
            return ExitCode::from(2);
        }
    };
    // From here on, `cluster` going out of scope stops the server and
    // deletes the directory, whatever happened.
    let cluster = match Cluster::create(bindir.clone(), ports.postgres, &args.pg_user) {
        Ok(c) => c,
        Err(e) => {
            fail(&format!("demo: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let prepared = tokio::select! {
        r = prepare(&cluster, &bindir, &ports, args.projects) => r,
        name = stop.next() => Err(format!("{name} received during startup")),
    };
    let ready = match prepared {
        Ok(r) => r,
        Err(e) => {
            fail(&format!("demo: {e}"));
            return finish(cluster, ExitCode::FAILURE);
        }
    };
    crate::logging::init(&ready.config.log);

    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let done = start_proxy(
        ready.config.clone(),
        Until::Told {
            ready: ready_tx,
            stop: stop_rx,
        },
    );
    let mut done = match done {
        Ok(d) => d,
        Err(e) => {
            fail(&format!("demo: {e}"));
            return finish(cluster, ExitCode::FAILURE);
        }
    };
    let listen = tokio::select! {
        listen = ready_rx => listen.ok(),
        name = stop.next() => {
            eprintln!("tombstone demo: {name} received during startup");
            None
        }
    };
    let Some(listen) = listen else {
        // The proxy printed why it did not start (or a signal came).
        drop(stop_tx);
        let _ = (&mut done).await;
        return finish(cluster, ExitCode::FAILURE);
    };
    print_banner(&cluster, &ready, listen);

    let code = tokio::select! {
        name = stop.next() => {
            eprintln!("tombstone demo: {name} received: stopping the proxy, then PostgreSQL");
            let _ = stop_tx.send(());
            (&mut done).await.unwrap_or(ExitCode::FAILURE)
        }
        code = &mut done => {
            eprintln!("tombstone demo: the proxy stopped: stopping PostgreSQL");
            code.unwrap_or(ExitCode::FAILURE)
        }
    };
    finish(cluster, code)
}

/// Stops the server, deletes the directory and says so.
fn finish(mut cluster: Cluster, code: ExitCode) -> ExitCode {
    let dir = cluster.dir().to_path_buf();
    match cluster.remove() {
        Ok(()) => {
            eprintln!(
                "tombstone demo: PostgreSQL stopped, {} removed",
                dir.display()
            );
            code
        }
        Err(e) => {
            fail(&format!("demo: {e}"));
            ExitCode::FAILURE
        }
    }
}

struct Ports {
    postgres: u16,
    proxy: u16,
    admin: u16,
}

/// The ports: the ones asked for, else free ones (PostgreSQL's always).
fn ports(args: &DemoArgs) -> Result<Ports, String> {
    let postgres = free_port()?;
    let proxy = match args.port {
        Some(p) => p,
        None => free_port()?,
    };
    let admin = match args.admin_port {
        Some(p) => p,
        None => free_port()?,
    };
    if proxy == admin {
        return Err(format!(
            "--port and --admin-port are both {proxy}: give them different ports"
        ));
    }
    Ok(Ports {
        postgres,
        proxy,
        admin,
    })
}

/// A port nothing listens on now on 127.0.0.1 (the kernel's pick).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// Starts the server, loads the scenario, writes `rules.toml`, migrates
/// and creates the roles: everything before the proxy.
async fn prepare(
    cluster: &Cluster,
    bindir: &Path,
    ports: &Ports,
    projects: u32,
) -> Result<Ready, String> {
    let version = cluster.version().await;
    let run_as = cluster
        .account()
        .map(|a| format!(", running as {a}"))
        .unwrap_or_default();
    eprintln!(
        "tombstone demo: PostgreSQL {version} from {} in {}, port {}{run_as}",
        bindir.display(),
        cluster.dir().display(),
        cluster.port
    );
    cluster.init().await?;
    cluster.start().await?;

    let server = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let client = connect(&server).await?;
    client
        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
        .await
        .map_err(|e| format!("cannot create database {DATABASE}: {}", describe(&e)))?;
    drop(client);
    let database_url = format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", cluster.port);
    let mut client = connect(&database_url).await?;
    eprintln!("tombstone demo: loading the scenario ({projects} projects) and migrating");
    client
        .batch_execute(SCHEMA_SQL)
        .await
        .map_err(|e| format!("cannot load the scenario's schema: {}", describe(&e)))?;
    client
        .batch_execute(&scenario_data(projects))
        .await
        .map_err(|e| format!("cannot load the scenario's data: {}", describe(&e)))?;

    let config_path = cluster.dir().join("rules.toml");
    let text = rules_toml(ports, &database_url, &page_token()?);
    std::fs::write(&config_path, text)
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    let config = Config::load(&config_path).map_err(|e| e.to_string())?;

    let Planned { steps, .. } = planned(&client, &config, false, None).await?;
    crate::migrate::apply(&mut client, &steps)
        .await
        .map_err(|e| format!("migration failed: {}", describe(&e)))?;
    client
        .batch_execute(ROLES_SQL)
        .await
        .map_err(|e| format!("cannot create the roles: {}", describe(&e)))?;
    Ok(Ready {
        config_path,
        database_url,
        config,
    })
}

/// `data.sql` as the server takes it: psql's `\if` that defaults
/// `:projects` dropped, `:projects` replaced by the number.
fn scenario_data(projects: u32) -> String {
    DATA_SQL
        .lines()
        .filter(|l| !l.trim_start().starts_with('\\'))
        .map(|l| l.replace(":projects", &projects.to_string()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A random `admin.token` for the trash page: 128 bits, hex.
fn page_token() -> Result<String, String> {
    crate::admin::random_hex(16).ok_or_else(|| "cannot draw a random admin token".to_string())
}

/// The demo's `rules.toml`: the proxy and the admin listener on
/// 127.0.0.1, the throwaway server behind, bypass role `trash`, a short
/// shutdown grace (Ctrl-C should not wait for open psql sessions).
fn rules_toml(ports: &Ports, database_url: &str, token: &str) -> String {
    format!(
        "# Written by tombstone demo; deleted with its directory when the demo stops.
[listen]
address = \"127.0.0.1:{proxy}\"
shutdown_grace = \"2s\"

[upstream]
host = \"127.0.0.1\"
port = {postgres}

[database]
url = \"{database_url}\"

[roles]
bypass = [\"trash\"]

[admin]
address = \"127.0.0.1:{admin}\"
# The trash page's login (the throwaway server trusts every password, so
# the page takes none; this token instead).
token = \"{token}\"
",
        proxy = ports.proxy,
        postgres = ports.postgres,
        admin = ports.admin,
    )
}

/// Runs the proxy on a runtime of its own, on its own thread: when it
/// stops, dropping that runtime ends its background tasks too (schema
/// watcher, scheduled purge, admin listener) before the server they
/// connect to goes. The receiver gets `serve`'s exit code.
fn start_proxy(config: Config, until: Until) -> Result<oneshot::Receiver<ExitCode>, String> {
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("tombstone-demo-proxy".to_string())
        .spawn(move || {
            let code = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => {
                    let code = runtime.block_on(proxy(config, until));
                    runtime.shutdown_timeout(PROXY_SHUTDOWN);
                    code
                }
                Err(e) => {
                    fail(&format!("cannot start the proxy's async runtime: {e}"));
                    ExitCode::FAILURE
                }
            };
            let _ = done_tx.send(code);
        })
        .map_err(|e| format!("cannot start the proxy's thread: {e}"))?;
    Ok(done_rx)
}

/// What to connect to and what to try, on stdout. The `app:`, `admin:`,
/// `admin page:`, `database:` and `directory:` lines are stable (a script
/// or test may read them).
fn print_banner(cluster: &Cluster, ready: &Ready, listen: SocketAddr) {
    let app = format!("postgres://app@{listen}/{DATABASE}");
    let admin = format!("postgres://admin@{listen}/{DATABASE}");
    let admin_page = ready
        .config
        .admin
        .address
        .map(|a| format!("http://{a}/"))
        .unwrap_or_default();
    let token = ready.config.admin.token.clone().unwrap_or_default();
    let config = ready.config_path.display();
    let dir = cluster.dir().display();
    let text = format!(
        "
tombstone demo is running: the reference scenario in database {DATABASE}, migrated, behind the proxy.

  app:         {app}
  admin:       {admin}
  admin page:  {admin_page}
  page token:  {token}
  database:    {database}
  config:      {config}
  directory:   {dir}

The app role's deletes become soft deletes; admin (a member of the bypass role trash) sees the trash. Try:

  psql '{app}' -c 'DELETE FROM projects WHERE id = 1'
  psql '{admin}' -c 'SELECT op_id, table_name, keys, cascaded FROM tombstone.trash()'
  psql '{admin}' -c \"SELECT tombstone.restore_row('projects', '{{\\\"id\\\": 1}}')\"

or with the CLI: tombstone trash --config {config}   (then tombstone restore ID --config {config})
or in a browser: {admin_page} (log in with the page token), preview and restore there

Ctrl-C stops the proxy and PostgreSQL and deletes {dir}.
",
        database = ready.database_url,
    );
    let mut out = std::io::stdout().lock();
    // A closed stdout (`tombstone demo | head`) must not stop the demo
    // before it cleans up: write errors are ignored.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_data_has_no_psql_syntax_left() {
        let sql = scenario_data(7);
        assert!(sql.contains("generate_series(1, 7)"));
        assert!(!sql.contains(":projects"));
        assert!(!sql.lines().any(|l| l.trim_start().starts_with('\\')));
    }

    #[test]
    fn rules_toml_loads() {
        let ports = Ports {
            postgres: 5433,
            proxy: 6433,
            admin: 9188,
        };
        let text = rules_toml(
            &ports,
            "postgres://postgres@127.0.0.1:5433/app",
            "0123456789abcdef0123456789abcdef",
        );
        let config = match Config::parse(&text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(config.listen.address.port(), 6433);
        assert_eq!(config.upstream.port, 5433);
        assert_eq!(config.roles.bypass, vec!["trash".to_string()]);
        assert_eq!(config.admin.address.map(|a| a.port()), Some(9188));
        assert_eq!(
            config.admin.token.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
    }
}
