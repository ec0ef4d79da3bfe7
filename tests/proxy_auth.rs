//! Authentication and TLS through the proxy: the upstream authenticates
//! (SCRAM-SHA-256, md5), the proxy relays; TLS is terminated towards clients
//! and opened towards the server.

mod common;

use std::process::Command;

use common::cluster::Cluster;
use common::{Proxy, ProxyOptions, TestDb, run, self_signed_cert, sqlstate, upstream_host_port};

const HBA: &str = "\
local all all trust
host all postgres 127.0.0.1/32 trust
host all alice 127.0.0.1/32 scram-sha-256
host all bob 127.0.0.1/32 md5
";

fn cluster_with_roles() -> Cluster {
    let cluster = Cluster::start(HBA);
    cluster.psql("SET password_encryption = 'scram-sha-256'; CREATE ROLE alice LOGIN PASSWORD 'correct horse'");
    cluster
        .psql("SET password_encryption = 'md5'; CREATE ROLE bob LOGIN PASSWORD 'battery staple'");
    cluster
}

fn proxy_to(cluster: &Cluster, extra_toml: String) -> Proxy {
    Proxy::start_with(ProxyOptions {
        upstream: Some(("127.0.0.1".to_string(), cluster.port)),
        listen_toml: extra_toml,
        ..Default::default()
    })
}

async fn try_login(
    proxy: &Proxy,
    user: &str,
    password: &str,
) -> Result<String, tokio_postgres::Error> {
    let conninfo = format!(
        "host=127.0.0.1 port={} user={user} password='{password}' dbname=postgres",
        proxy.port
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let row = client.query_one("SELECT current_user::text", &[]).await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn scram_login_and_wrong_password() {
    let cluster = cluster_with_roles();
    let proxy = proxy_to(&cluster, String::new());
    assert_eq!(
        try_login(&proxy, "alice", "correct horse").await.unwrap(),
        "alice"
    );
    let e = try_login(&proxy, "alice", "wrong").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28P01", "{e}");
    // The proxy is still fine afterwards.
    assert_eq!(
        try_login(&proxy, "alice", "correct horse").await.unwrap(),
        "alice"
    );
}

#[tokio::test]
async fn md5_login_and_wrong_password() {
    let cluster = cluster_with_roles();
    let proxy = proxy_to(&cluster, String::new());
    assert_eq!(
        try_login(&proxy, "bob", "battery staple").await.unwrap(),
        "bob"
    );
    let e = try_login(&proxy, "bob", "nope").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28P01", "{e}");
}

fn tls_listen_toml(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let (cert, key) = self_signed_cert(dir);
    (
        format!(
            "[listen.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert.display(),
            key.display()
        ),
        cert,
    )
}

#[test]
fn psql_with_sslmode_require_and_scram_through_tls_proxy() {
    let cluster = cluster_with_roles();
    let certs = tempfile::tempdir().unwrap();
    let (toml, _) = tls_listen_toml(certs.path());
    let proxy = proxy_to(&cluster, toml);
    // libpq's default channel_binding=prefer must still log in: the proxy
    // never offers SCRAM-SHA-256-PLUS.
    let conninfo = format!(
        "host=127.0.0.1 port={} user=alice dbname=postgres sslmode=require channel_binding=prefer",
        proxy.port
    );
    let (ok, out, err) = run(Command::new("psql")
        .arg(&conninfo)
        .args(["-X", "-At", "-c", "\\conninfo", "-c", "SELECT current_user"])
        .env("PGPASSWORD", "correct horse"));
    assert!(ok, "psql failed: {err}\n{}", proxy.log());
    assert!(out.contains("SSL connection"), "not TLS: {out}");
    assert!(out.trim_end().ends_with("alice"), "{out}");

    let (ok, _, err) = run(Command::new("psql")
        .arg(&conninfo)
        .args(["-X", "-c", "SELECT 1"])
        .env("PGPASSWORD", "wrong"));
    assert!(!ok);
    assert!(err.contains("password authentication failed"), "{err}");
}

#[test]
fn verify_full_client_checks_the_proxy_certificate() {
    let db = TestDb::new("auth_tls");
    let certs = tempfile::tempdir().unwrap();
    let (toml, cert) = tls_listen_toml(certs.path());
    let proxy = Proxy::start_with(ProxyOptions {
        listen_toml: toml,
        ..Default::default()
    });
    let conninfo = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname={} sslmode=verify-full sslrootcert={}",
        proxy.port,
        db.name,
        cert.display()
    );
    let (ok, out, err) =
        run(Command::new("psql")
            .arg(&conninfo)
            .args(["-X", "-At", "-c", "\\conninfo"]));
    assert!(ok, "psql failed: {err}\n{}", proxy.log());
    assert!(out.contains("SSL connection"), "{out}");

    // Without TLS configured the proxy answers N: sslmode=require fails,
    // sslmode=prefer falls back to plain text.
    let plain = Proxy::start();
    let base = format!(
        "host=127.0.0.1 port={} user=postgres dbname={}",
        plain.port, db.name
    );
    let (ok, _, err) = run(Command::new("psql")
        .arg(format!("{base} sslmode=require"))
        .args(["-X", "-c", "SELECT 1"]));
    assert!(!ok);
    assert!(err.contains("SSL"), "{err}");
    let (ok, _, err) = run(Command::new("psql")
        .arg(format!("{base} sslmode=prefer"))
        .args(["-X", "-c", "SELECT 1"]));
    assert!(ok, "{err}");
}

#[tokio::test]
async fn upstream_tls_require() {
    let db = TestDb::new("auth_uptls");
    let admin = common::connect(&common::admin_url()).await;
    let ssl_on: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(
        ssl_on, "on",
        "the test server must have ssl = on (Debian's default)"
    );
    let (host, port) = upstream_host_port();
    let proxy = Proxy::start_with(ProxyOptions {
        upstream: Some((host, port)),
        extra_toml: "tls = \"require\"\n".to_string(),
        ..Default::default()
    });
    let client = proxy.connect(&db.name).await;
    let encrypted: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted, "the proxy's upstream connection is not TLS");
}
