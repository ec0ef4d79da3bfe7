//! Test databases: each test gets its own database loaded from
//! `tests/scenario` (schema + data via psql), dropped when the guard drops.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::{Client, NoTls};
use tombstone::schema::{SchemaSnapshot, SnapshotOptions, ddl, load};

pub fn admin_url() -> String {
    std::env::var("TOMBSTONE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `admin_url` with its database replaced by `name`.
pub fn url_for(name: &str) -> String {
    let base = admin_url();
    let (head, tail) = match base.find('?') {
        Some(q) => (&base[..q], &base[q..]),
        None => (base.as_str(), ""),
    };
    let cut = head
        .rfind('/')
        .filter(|&i| i > "postgres://".len())
        .unwrap_or(head.len());
    format!("{}/{}{}", &head[..cut], name, tail)
}

fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("scenario")
}

fn psql(url: &str, args: &[&str]) {
    let out = Command::new("psql")
        .arg("-X")
        .arg("-q")
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg("-d")
        .arg(url)
        .args(args)
        .output()
        .expect("psql must be installed to run the execution tests");
    assert!(
        out.status.success(),
        "psql {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scenario database; dropped (with FORCE) when this guard drops.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Create `tombstone_test_<tag>_<pid>_<n>` loaded with `projects` projects
    /// and the tombstone schema.
    pub fn create(tag: &str, projects: u32) -> TestDb {
        let name = format!(
            "tombstone_test_{tag}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        psql(
            &admin_url(),
            &[
                "-c",
                &format!("DROP DATABASE IF EXISTS {name}"),
                "-c",
                &format!("CREATE DATABASE {name}"),
            ],
        );
        let db = TestDb {
            url: url_for(&name),
            name,
        };
        let dir = scenario_dir();
        let schema = dir.join("schema.sql");
        let data = dir.join("data.sql");
        psql(
            &db.url,
            &[
                "-v",
                &format!("projects={projects}"),
                "-f",
                schema.to_str().unwrap_or_default(),
                "-f",
                data.to_str().unwrap_or_default(),
                "-c",
                ddl::REWRITER_DDL,
            ],
        );
        db
    }

    pub async fn connect(&self) -> Client {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect to test database");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    pub async fn snapshot(&self, client: &Client) -> SchemaSnapshot {
        load::load(client, &SnapshotOptions::default())
            .await
            .expect("load snapshot")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg("-X")
            .arg("-q")
            .arg("-d")
            .arg(admin_url())
            .arg("-c")
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}
