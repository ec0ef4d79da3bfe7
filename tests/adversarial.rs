//! The adversarial suite (issue 9 "Tests"): every attack a normal
//! application role tried through the proxy, and the obvious variants, as
//! a table (`adversarial/cases.rs`), run in two setups — the app role with
//! only DML grants on its tables plus what `tombstone migrate --apply`
//! grants, and the app role owning its tables — in the simple and the
//! extended protocol where it matters.
//!
//! Each case runs on a fresh copy (`CREATE DATABASE … TEMPLATE`) of a
//! protected database and of its hard-delete twin, behind a proxy of its
//! own; afterwards `zz_check.verify` (`adversarial/check.sql`) referees the
//! protected database as superuser. `ADVERSARIAL_FILTER=substring` runs
//! the matching cases only; `ADVERSARIAL_JOBS` sets how many run at once;
//! `ADVERSARIAL_TRACE=1` prints every step's result on both databases.
//!
//! A failing case names its `needs`: the defence it waits for.

#[path = "adversarial/cases.rs"]
mod cases;
mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use cases::{CASES, Case, Expect, On, Proto};
use common::{Proxy, ProxyOptions, TestDb, admin_url, unique_name, url_for};
use futures_util::StreamExt;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, Statement};

/// Defences that have not landed yet. A case tagged with one of them is
/// run and reported (`PENDING …`), but only cases whose defences have all
/// landed are asserted — unless `ADVERSARIAL_STRICT=1`, which asserts
/// every case. When a defence lands, remove it here: its cases then guard
/// it. A pending case that already holds is reported as such.
const PENDING: &[&str] = &[];

fn is_pending(case: &Case) -> bool {
    std::env::var_os("ADVERSARIAL_STRICT").is_none()
        && case.needs.split('+').any(|t| PENDING.contains(&t))
}

/// What each `needs` tag stands for, for the report.
const NEEDS: &[(&str, &str)] = &[
    (
        "privileges",
        "migrate's privilege model — no app privilege on tombstone's tables; operations recorded by SECURITY DEFINER triggers (S1)",
    ),
    (
        "rls",
        "ENABLE + FORCE ROW LEVEL SECURITY policies tombstone_select/insert/update/delete (S2)",
    ),
    (
        "sentinel",
        "row-level security lets normal roles set deleted_at to now() on live rows only, recorded as an operation by the AFTER UPDATE triggers; other deleted_at writes 42501 (W9)",
    ),
    (
        "audit-identity",
        "lead (main): client_addr/login_role set by tombstone, unforgeable (A1, issue 9 item 4)",
    ),
    (
        "qualified",
        "lead (main): schema-qualified built-ins in generated SQL and tombstone functions (S1)",
    ),
    (
        "decisions",
        "branch decisions: cache, exact search_path, alias lists, *_to_xml refused (S3)",
    ),
    (
        "schemaver",
        "branch schemaver: event trigger refusing protection-removing DDL (S4)",
    ),
    (
        "temp-tables",
        "the schema snapshot knows no session's temporary tables: one named like a protected table gets its predicate (42703, safe but not the twin)",
    ),
];

const CASE_TIMEOUT: Duration = Duration::from_secs(60);
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    /// DML grants on the application tables, plus what migrate grants.
    Dml,
    /// The app role owns the application tables.
    Owner,
}

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Setup::Dml => "A:dml-grants",
            Setup::Owner => "B:app-owns-tables",
        }
    }
}

/// The template databases (protected and twin) and the roles of a setup.
struct World {
    app: String,
    trash: String,
    protected: TestDb,
    twin: TestDb,
}

impl Drop for World {
    fn drop(&mut self) {
        for db in [&self.protected.name, &self.twin.name] {
            let _ = Command::new("psql")
                .arg(admin_url())
                .args([
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
                ])
                .output();
        }
        let _ = Command::new("psql")
            .arg(admin_url())
            .args([
                "-q",
                "-c",
                &format!(
                    "DROP ROLE IF EXISTS \"{}\"; DROP ROLE IF EXISTS \"{}\"",
                    self.app, self.trash
                ),
            ])
            .output();
    }
}

fn psql_ok(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .expect("psql must be installed");
    assert!(
        out.status.success(),
        "psql failed: {sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn proxy_for(db: &str, trash: &str) -> Proxy {
    Proxy::start_with(ProxyOptions {
        extra_toml: format!(
            "[database]\nurl = \"{}\"\nrefresh_interval = \"1s\"\n[roles]\nbypass = [\"{trash}\"]\n",
            url_for(db)
        ),
        ..Default::default()
    })
}

/// The baseline deletes: soft through the proxy, real on the twin.
const BASELINE: &[&str] = &[
    "DELETE FROM projects WHERE id = 2",
    "DELETE FROM tasks WHERE id = 1000",
    "DELETE FROM users WHERE email = 'user7@example.com'",
    "DELETE FROM categories WHERE id = 3",
];

fn migrate(url: &str) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .args(["migrate", "--apply", "--database-url", url])
        .output()
        .map_err(|e| format!("run tombstone migrate: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

async fn build_world(setup: Setup) -> World {
    let id = unique_name("adv");
    let app = format!("{id}_app");
    let trash = format!("{id}_trash");
    psql_ok(
        &admin_url(),
        &format!("CREATE ROLE \"{app}\" LOGIN; CREATE ROLE \"{trash}\" NOLOGIN"),
    );
    let protected = TestDb::create("adv_prot", 3);
    let twin = TestDb::twin("adv_twin", 3);
    let grants = match setup {
        Setup::Dml => format!(
            "GRANT USAGE ON SCHEMA billing TO \"{app}\";
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, billing TO \"{app}\";
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public, billing TO \"{app}\";"
        ),
        Setup::Owner => format!(
            "GRANT USAGE, CREATE ON SCHEMA public, billing TO \"{app}\";
             DO $$DECLARE r record; BEGIN
               FOR r IN SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('public', 'billing') LOOP
                 EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', r.schemaname, r.tablename, '{app}');
               END LOOP;
             END$$;"
        ),
    };
    psql_ok(&protected.url, &grants);
    psql_ok(&twin.url, &grants);
    migrate(&protected.url).unwrap_or_else(|e| panic!("{}: {e}", setup.label()));
    {
        let proxy = proxy_for(&protected.name, &trash);
        let soft = common::connect(&proxy.conninfo(&protected.name)).await;
        let hard = twin.connect().await;
        for sql in BASELINE {
            soft.batch_execute(sql).await.unwrap_or_else(|e| {
                panic!(
                    "{}: baseline soft delete {sql}: {e:?}\n{}",
                    setup.label(),
                    proxy.log()
                )
            });
            hard.batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("baseline twin delete {sql}: {e:?}"));
        }
    }
    let check =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adversarial/check.sql");
    common::psql(
        &protected.url,
        &[
            "-f",
            check.to_str().unwrap_or_default(),
            "-c",
            "SELECT zz_check.snapshot()",
        ],
    );
    let first = zz_verify(&protected.url, &app, None).await;
    assert!(
        first.is_empty(),
        "{}: the referee finds problems before any case ran: {first:?}",
        setup.label()
    );
    for db in [&protected.name, &twin.name] {
        psql_ok(
            &admin_url(),
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
            ),
        );
    }
    World {
        app,
        trash,
        protected,
        twin,
    }
}

/// The referee's findings on database `url`, since `t0` (default: now).
async fn zz_verify(url: &str, app: &str, t0: Option<&str>) -> Vec<String> {
    let su = common::connect(url).await;
    let _ = su.batch_execute("SET statement_timeout = '30s'").await;
    let t0 = t0.map(str::to_string).unwrap_or_else(|| "-infinity".into());
    match su
        .query(
            "SELECT v FROM zz_check.verify($1, $2::text::timestamptz) v",
            &[&app, &t0],
        )
        .await
    {
        Ok(rows) => rows.iter().map(|r| r.get::<_, String>(0)).collect(),
        Err(e) => vec![format!("the referee failed: {e:?}")],
    }
}

/// What one step did.
#[derive(Debug, Clone)]
enum Out {
    Err {
        code: String,
        message: String,
    },
    Ok {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
        count: Option<u64>,
    },
}

impl PartialEq for Out {
    fn eq(&self, other: &Out) -> bool {
        match (self, other) {
            (Out::Err { code: a, .. }, Out::Err { code: b, .. }) => a == b,
            (
                Out::Ok {
                    columns: c1,
                    rows: r1,
                    count: n1,
                },
                Out::Ok {
                    columns: c2,
                    rows: r2,
                    count: n2,
                },
            ) => c1 == c2 && r1 == r2 && n1 == n2,
            _ => false,
        }
    }
}

impl Out {
    fn short(&self) -> String {
        let s = match self {
            Out::Err { code, message } => format!("error {code}: {message}"),
            Out::Ok {
                columns,
                rows,
                count,
            } => format!("ok {columns:?} {rows:?} ({count:?})"),
        };
        if s.len() > 400 {
            let mut cut = 400;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}…", &s[..cut])
        } else {
            s
        }
    }
    fn code(&self) -> Option<&str> {
        match self {
            Out::Err { code, .. } => Some(code),
            Out::Ok { .. } => None,
        }
    }
}

fn err_out(e: &tokio_postgres::Error) -> Out {
    match e.as_db_error() {
        Some(d) => Out::Err {
            code: d.code().code().to_string(),
            message: d.message().to_string(),
        },
        None => Out::Err {
            code: "no sqlstate".into(),
            message: e.to_string(),
        },
    }
}

/// A column as the raw bytes the server sent (extended protocol).
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

async fn run_simple(c: &Client, sql: &str) -> Out {
    match c.simple_query(sql).await {
        Ok(msgs) => {
            let mut rows = Vec::new();
            let mut columns = Vec::new();
            let mut count = None;
            for m in msgs {
                match m {
                    SimpleQueryMessage::Row(row) => {
                        if columns.is_empty() {
                            columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                        }
                        rows.push(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_string))
                                .collect(),
                        );
                    }
                    SimpleQueryMessage::CommandComplete(n) => count = Some(n),
                    _ => {}
                }
            }
            rows.sort();
            Out::Ok {
                columns,
                rows,
                count,
            }
        }
        Err(e) => err_out(&e),
    }
}

async fn run_statement(c: &Client, st: &Statement, params: &[String]) -> Out {
    let columns = st.columns().iter().map(|c| c.name().to_string()).collect();
    let args: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let stream = match c.query_raw(st, args).await {
        Ok(s) => s,
        Err(e) => return err_out(&e),
    };
    futures_util::pin_mut!(stream);
    let mut rows = Vec::new();
    loop {
        match stream.next().await {
            Some(Ok(row)) => rows.push(
                (0..row.len())
                    .map(|i| match row.try_get::<_, Raw>(i) {
                        Ok(Raw(Some(bytes))) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                        _ => None,
                    })
                    .collect(),
            ),
            Some(Err(e)) => return err_out(&e),
            None => break,
        }
    }
    rows.sort();
    Out::Ok {
        columns,
        rows,
        count: stream.rows_affected(),
    }
}

async fn run_extended(c: &Client, sql: &str, params: &[String]) -> Out {
    match c.prepare(sql).await {
        Ok(st) => run_statement(c, &st, params).await,
        Err(e) => err_out(&e),
    }
}

async fn run_copy(c: &Client, sql: &str, data: &str) -> Out {
    let sink = match c.copy_in::<_, bytes::Bytes>(sql).await {
        Ok(s) => s,
        Err(e) => return err_out(&e),
    };
    futures_util::pin_mut!(sink);
    let data = bytes::Bytes::from(data.replace("\\t", "\t").replace("\\n", "\n"));
    if let Err(e) = futures_util::SinkExt::send(&mut sink, data).await {
        return err_out(&e);
    }
    match sink.finish().await {
        Ok(n) => Out::Ok {
            columns: vec![],
            rows: vec![],
            count: Some(n),
        },
        Err(e) => err_out(&e),
    }
}

/// Which connection a step runs on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Conn {
    Main,
    Second,
    Direct,
    Opts,
    Path,
    Super,
}

/// One database side of a case: the protected one (through the proxy) or
/// the twin (direct).
struct Side {
    protected: bool,
    db: String,
    proxy_port: Option<u16>,
    app: String,
    conns: HashMap<Conn, Client>,
    prepared: HashMap<String, Statement>,
}

impl Side {
    fn conninfo(&self, conn: Conn) -> String {
        let (port, user) = match (conn, self.proxy_port) {
            (Conn::Super, _) | (Conn::Direct, _) | (_, None) => {
                (common::upstream_host_port().1, self.app.clone())
            }
            (_, Some(p)) => (p, self.app.clone()),
        };
        let user = if conn == Conn::Super {
            common::admin_config()
                .get_user()
                .unwrap_or("postgres")
                .to_string()
        } else {
            user
        };
        let opts = match conn {
            Conn::Opts => {
                " options='-c tombstone.client_addr=6.6.6.6 -c tombstone.login_role=postgres'"
            }
            Conn::Path => " options='-c search_path=billing,public'",
            _ => "",
        };
        format!(
            "host=127.0.0.1 port={port} user={user} dbname={} sslmode=disable{opts}",
            self.db
        )
    }

    async fn client(&mut self, conn: Conn) -> Result<&Client, String> {
        if !self.conns.contains_key(&conn) {
            let info = self.conninfo(conn);
            let (client, connection) = tokio_postgres::connect(&info, NoTls)
                .await
                .map_err(|e| format!("connect {info}: {e}"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.conns.insert(conn, client);
        }
        self.conns
            .get(&conn)
            .ok_or_else(|| "no connection".to_string())
    }
}

/// A parsed step.
struct Step {
    setup: bool,
    /// `@twin`: this step must equal the twin's, a refusal does not count.
    strict: bool,
    conn: Conn,
    kind: Kind,
}

enum Kind {
    Sql(String, Vec<String>),
    Copy(String, String),
    Prepare(String, String),
    Execute(String),
    Migrate,
    Sleep,
}

fn parse_step(raw: &str, app: &str) -> Step {
    let mut rest = raw.trim();
    let mut setup = false;
    let mut strict = false;
    let mut conn = Conn::Main;
    let mut kind = None;
    while let Some(word) = rest.strip_prefix('@') {
        let end = word.find(' ').unwrap_or(word.len());
        let (tag, tail) = word.split_at(end);
        rest = tail.trim_start();
        match tag {
            "setup" => setup = true,
            "twin" => strict = true,
            "1" => conn = Conn::Second,
            "direct" => conn = Conn::Direct,
            "opts" => conn = Conn::Opts,
            "path" => conn = Conn::Path,
            "su" => conn = Conn::Super,
            "migrate" => kind = Some(Kind::Migrate),
            "sleep" => kind = Some(Kind::Sleep),
            "copy" => kind = Some(Kind::Copy(String::new(), String::new())),
            t if t.starts_with("prepare:") => {
                kind = Some(Kind::Prepare(
                    t["prepare:".len()..].to_string(),
                    String::new(),
                ))
            }
            t if t.starts_with("execute:") => {
                kind = Some(Kind::Execute(t["execute:".len()..].to_string()))
            }
            other => panic!("unknown step prefix @{other} in {raw}"),
        }
    }
    let text = rest.replace("{app}", &format!("\"{app}\""));
    let mut parts = text.split(" ||| ").map(str::to_string);
    let sql = parts.next().unwrap_or_default();
    let params: Vec<String> = parts.collect();
    let kind = match kind {
        Some(Kind::Copy(..)) => Kind::Copy(sql, params.join(" ||| ")),
        Some(Kind::Prepare(name, _)) => Kind::Prepare(name, sql),
        Some(k) => k,
        None => Kind::Sql(sql, params),
    };
    Step {
        setup,
        strict,
        conn,
        kind,
    }
}

async fn run_step(side: &mut Side, step: &Step, extended: bool) -> Out {
    let fail = |m: String| Out::Err {
        code: "harness".into(),
        message: m,
    };
    match &step.kind {
        Kind::Migrate => {
            if !side.protected {
                return Out::Ok {
                    columns: vec![],
                    rows: vec![],
                    count: None,
                };
            }
            let url = url_for(&side.db);
            match tokio::task::spawn_blocking(move || migrate(&url)).await {
                Ok(Ok(())) => Out::Ok {
                    columns: vec![],
                    rows: vec![],
                    count: None,
                },
                Ok(Err(e)) => fail(e),
                Err(e) => fail(e.to_string()),
            }
        }
        Kind::Sleep => {
            if side.protected {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            Out::Ok {
                columns: vec![],
                rows: vec![],
                count: None,
            }
        }
        Kind::Sql(sql, params) => {
            let client = match side.client(step.conn).await {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            if extended || !params.is_empty() {
                run_extended(client, sql, params).await
            } else {
                run_simple(client, sql).await
            }
        }
        Kind::Copy(sql, data) => match side.client(step.conn).await {
            Ok(c) => run_copy(c, sql, data).await,
            Err(e) => fail(e),
        },
        Kind::Prepare(name, sql) => {
            let client = match side.client(step.conn).await {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            match client.prepare(sql).await {
                Ok(st) => {
                    side.prepared.insert(name.clone(), st);
                    Out::Ok {
                        columns: vec![],
                        rows: vec![],
                        count: None,
                    }
                }
                Err(e) => err_out(&e),
            }
        }
        Kind::Execute(name) => {
            let Some(st) = side.prepared.get(name).cloned() else {
                return fail(format!("no prepared statement {name}"));
            };
            match side.client(step.conn).await {
                Ok(c) => run_statement(c, &st, &[]).await,
                Err(e) => fail(e),
            }
        }
    }
}

fn admin_client_conninfo() -> String {
    admin_url()
}

/// Runs one case in one setup and protocol; `Err` says why it fails.
async fn run_case(world: &World, case: &Case, extended: bool) -> Result<(), String> {
    let admin = common::connect(&admin_client_conninfo()).await;
    let name = unique_name("adv_case");
    let twin_name = format!("{name}_twin");
    let mut created = Vec::new();
    let mut result = Ok(());
    for (db, tmpl) in [
        (&name, &world.protected.name),
        (&twin_name, &world.twin.name),
    ] {
        match admin
            .batch_execute(&format!("CREATE DATABASE \"{db}\" TEMPLATE \"{tmpl}\""))
            .await
        {
            Ok(()) => created.push(db.clone()),
            Err(e) => {
                result = Err(format!("harness: create database from template: {e:?}"));
                break;
            }
        }
    }
    if result.is_ok() {
        result = match tokio::time::timeout(
            CASE_TIMEOUT,
            run_case_on(world, case, extended, &name, &twin_name),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {CASE_TIMEOUT:?}")),
        };
    }
    for db in created {
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
            .await;
    }
    result
}

async fn run_case_on(
    world: &World,
    case: &Case,
    extended: bool,
    db: &str,
    twin_db: &str,
) -> Result<(), String> {
    let (db_owned, trash) = (db.to_string(), world.trash.clone());
    let proxy = tokio::task::spawn_blocking(move || proxy_for(&db_owned, &trash))
        .await
        .map_err(|e| format!("harness: proxy: {e}"))?;
    let su = common::connect(&url_for(db)).await;
    let t0: String = su
        .query_one("SELECT now()::text", &[])
        .await
        .map_err(|e| format!("harness: t0: {e}"))?
        .get(0);
    let mut prot = Side {
        protected: true,
        db: db.to_string(),
        proxy_port: Some(proxy.port),
        app: world.app.clone(),
        conns: HashMap::new(),
        prepared: HashMap::new(),
    };
    let mut twin = Side {
        protected: false,
        db: twin_db.to_string(),
        proxy_port: None,
        app: world.app.clone(),
        conns: HashMap::new(),
        prepared: HashMap::new(),
    };
    let needs_twin = matches!(case.expect, Expect::Twin | Expect::RefusedOrTwin(_));
    let mut verdict: Result<(), String> = Ok(());
    let mut refused = false;
    let mut last = None;
    for (i, raw) in case.steps.iter().enumerate() {
        let step = parse_step(raw, &world.app);
        let p = tokio::time::timeout(STEP_TIMEOUT, run_step(&mut prot, &step, extended))
            .await
            .unwrap_or_else(|_| Out::Err {
                code: "timeout".into(),
                message: format!("no answer within {STEP_TIMEOUT:?}"),
            });
        let t = if needs_twin || step.setup {
            Some(
                tokio::time::timeout(STEP_TIMEOUT, run_step(&mut twin, &step, extended))
                    .await
                    .unwrap_or_else(|_| Out::Err {
                        code: "timeout".into(),
                        message: "twin timed out".into(),
                    }),
            )
        } else {
            None
        };
        let at = format!("step {} `{raw}`", i + 1);
        if std::env::var_os("ADVERSARIAL_TRACE").is_some() {
            eprintln!(
                "  {} {at}\n    protected: {}\n    twin: {}",
                case.name,
                p.short(),
                t.as_ref().map(Out::short).unwrap_or_default()
            );
        }
        if step.setup {
            if let Some(code) = p.code().or(t.as_ref().and_then(Out::code)) {
                verdict = Err(format!(
                    "{at}: setup failed ({code}): protected {} / twin {}",
                    p.short(),
                    t.as_ref().map(Out::short).unwrap_or_default()
                ));
                break;
            }
            continue;
        }
        match case.expect {
            Expect::Refused(codes) | Expect::RefusedOrSucceeds(codes, _) => match p.code() {
                Some(c) if codes.contains(&c) => {
                    refused = true;
                    break;
                }
                Some(_) => {
                    verdict = Err(format!(
                        "{at}: expected success or refusal {codes:?}, got {}",
                        p.short()
                    ));
                    break;
                }
                None => {}
            },
            Expect::Twin => {
                let t = t.unwrap_or(Out::Err {
                    code: "harness".into(),
                    message: "no twin".into(),
                });
                if p != t {
                    verdict = Err(format!(
                        "{at}: differs from the twin: protected {} / twin {}",
                        p.short(),
                        t.short()
                    ));
                    break;
                }
            }
            Expect::RefusedOrTwin(codes) => {
                let t = t.unwrap_or(Out::Err {
                    code: "harness".into(),
                    message: "no twin".into(),
                });
                if let Some(c) = p.code()
                    && !step.strict
                    && codes.contains(&c)
                    && t.code() != Some(c)
                {
                    refused = true;
                    break;
                }
                if p != t {
                    verdict = Err(format!(
                        "{at}: neither refused {codes:?} nor as on the twin: protected {} / twin {}",
                        p.short(),
                        t.short()
                    ));
                    break;
                }
            }
            Expect::Succeeds(_) => {
                if p.code().is_some() {
                    verdict = Err(format!("{at}: expected success, got {}", p.short()));
                    break;
                }
            }
        }
        last = Some(p);
    }
    if verdict.is_ok() {
        match case.expect {
            Expect::Refused(codes) if !refused => {
                verdict = Err(format!(
                    "not refused with {codes:?}; last step: {}",
                    last.as_ref().map(Out::short).unwrap_or_default()
                ));
            }
            Expect::Succeeds(check) | Expect::RefusedOrSucceeds(_, check) if !refused => {
                let check = check.replace("{app}", &world.app);
                match su.query_one(check.as_str(), &[]).await {
                    Ok(row) => match row.try_get::<_, Option<bool>>(0) {
                        Ok(Some(true)) => {}
                        other => verdict = Err(format!("post-check `{check}` is {other:?}")),
                    },
                    Err(e) => verdict = Err(format!("post-check `{check}` failed: {e:?}")),
                }
            }
            _ => {}
        }
    }
    drop(prot);
    drop(twin);
    // Let the app's sessions end before the referee looks.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let problems = zz_verify(&url_for(db), &world.app, Some(&t0)).await;
    drop(proxy);
    match (verdict, problems.is_empty()) {
        (Ok(()), true) => Ok(()),
        (Ok(()), false) => Err(format!("afterwards: {}", problems.join("; "))),
        (Err(e), true) => Err(e),
        (Err(e), false) => Err(format!("{e}; afterwards: {}", problems.join("; "))),
    }
}

struct Run<'a> {
    case: &'a Case,
    extended: bool,
}

fn runs_for(setup: Setup) -> Vec<Run<'static>> {
    let filter = std::env::var("ADVERSARIAL_FILTER").unwrap_or_default();
    let mut runs = Vec::new();
    for case in CASES {
        let on = matches!(
            (case.on, setup),
            (On::AB, _) | (On::A, Setup::Dml) | (On::B, Setup::Owner)
        );
        if !on || !(case.name.contains(&filter) || case.class.contains(&filter)) {
            continue;
        }
        for extended in [false, true] {
            let wanted = match case.proto {
                Proto::S => !extended,
                Proto::E => extended,
                Proto::SE => true,
            };
            if wanted {
                runs.push(Run { case, extended });
            }
        }
    }
    runs
}

async fn suite(setup: Setup) {
    let runs = runs_for(setup);
    if runs.is_empty() {
        return;
    }
    let world = build_world(setup).await;
    let jobs: usize = std::env::var("ADVERSARIAL_JOBS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let world = &world;
    let results: Vec<(usize, Result<(), String>)> =
        futures_util::stream::iter(runs.iter().enumerate())
            .map(|(i, r)| async move { (i, run_case(world, r.case, r.extended).await) })
            .buffer_unordered(jobs)
            .collect()
            .await;
    let mut results = results;
    results.sort_by_key(|(i, _)| *i);
    let mut failures = Vec::new();
    let mut pending = 0usize;
    let mut per_class: Vec<(&str, usize, usize)> = Vec::new();
    for (i, r) in &results {
        let run = &runs[*i];
        let label = format!(
            "[{}] {} / {} / {}",
            setup.label(),
            run.case.class,
            run.case.name,
            if run.extended { "extended" } else { "simple" }
        );
        match per_class.iter_mut().find(|(c, _, _)| *c == run.case.class) {
            Some(e) => {
                e.1 += 1;
                e.2 += usize::from(r.is_err());
            }
            None => per_class.push((run.case.class, 1, usize::from(r.is_err()))),
        }
        match r {
            Ok(()) if is_pending(run.case) => {
                eprintln!(
                    "PASS {label} (pending [needs {}] already holds)",
                    run.case.needs
                )
            }
            Ok(()) => eprintln!("PASS {label}"),
            Err(why) if is_pending(run.case) => {
                pending += 1;
                eprintln!("PENDING {label} [needs {}]: {why}", run.case.needs);
            }
            Err(why) => {
                let needs = if run.case.needs.is_empty() {
                    "-"
                } else {
                    run.case.needs
                };
                eprintln!("FAIL {label} [needs {needs}]: {why}");
                failures.push(format!("{label} [needs {needs}]: {why}"));
            }
        }
    }
    eprintln!("\n[{}] per class (runs, failing):", setup.label());
    for (class, n, f) in &per_class {
        eprintln!("  {class:45} {n:3} {f:3}");
    }
    eprintln!(
        "[{}] {} runs: {} fail, {} pending on defences not yet landed ({})",
        setup.label(),
        results.len(),
        failures.len(),
        pending,
        PENDING.join(", ")
    );
    eprintln!("  needs tags:");
    for (tag, what) in NEEDS {
        eprintln!("    {tag}: {what}");
    }
    assert!(
        failures.is_empty(),
        "[{}] {} of {} adversarial cases fail:\n{}",
        setup.label(),
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_app_with_dml_grants() {
    suite(Setup::Dml).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_app_owns_its_tables() {
    suite(Setup::Owner).await;
}

#[test]
fn the_table_is_well_formed() {
    assert!(CASES.len() >= 80, "{} cases", CASES.len());
    let mut seen = std::collections::HashSet::new();
    for case in CASES {
        assert!(
            seen.insert((case.class, case.name)),
            "duplicate case {} / {}",
            case.class,
            case.name
        );
        assert!(!case.steps.is_empty(), "{}: no steps", case.name);
        for tag in case.needs.split('+').filter(|t| !t.is_empty()) {
            assert!(
                NEEDS.iter().any(|(n, _)| *n == tag),
                "{}: unknown needs tag {tag}",
                case.name
            );
        }
        for step in case.steps {
            let s = parse_step(step, "app");
            if case.proto != Proto::S
                && let Kind::Sql(sql, _) = &s.kind
            {
                assert!(
                    !sql.trim_end_matches(';').contains("; ")
                        || sql.starts_with("DO ")
                        || sql.contains("$$"),
                    "{}: multi-statement step in the extended protocol: {sql}",
                    case.name
                );
            }
        }
    }
}
