//! A protected scenario database behind a running proxy: the scenario
//! schema and data, `tombstone migrate --apply`, an application role, a
//! bypass role with an admin member, and a proxy configured for all of it
//! (or, with [`Protected::start_with_schema`], an application's own schema
//! and `migrate --apply --fix`).
//! Roles are cluster-wide, so their names are unique per test and they are
//! dropped after the database.

use std::process::Command;

use super::{Proxy, ProxyOptions, TestDb, admin_url, psql, unique_name};

pub struct Protected {
    // Field order is drop order: the proxy, then the database, then roles.
    pub proxy: Proxy,
    pub db: TestDb,
    pub app: String,
    pub admin: String,
    pub bypass_role: String,
}

impl Protected {
    /// `projects` scenario projects; `extra_toml` is appended to the
    /// proxy's config.
    pub fn start(tag: &str, projects: u32, extra_toml: &str) -> Protected {
        let db = TestDb::create(tag, projects);
        db.migrate();
        Protected::around(db, &["public", "billing"], extra_toml)
    }

    /// An empty database that `schema` fills (it gets the database's
    /// superuser URL), then `tombstone migrate --apply --fix`, the roles
    /// (granted schema `public`) and the proxy.
    pub fn start_with_schema(tag: &str, schema: impl FnOnce(&str), extra_toml: &str) -> Protected {
        let db = TestDb::new(tag);
        schema(&db.url);
        let out = Command::new(env!("CARGO_BIN_EXE_tombstone"))
            .args(["migrate", "--apply", "--fix", "--database-url", &db.url])
            .output()
            .expect("run tombstone migrate");
        assert!(
            out.status.success(),
            "migrate --apply --fix: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Protected::around(db, &["public"], extra_toml)
    }

    fn around(db: TestDb, schemas: &[&str], extra_toml: &str) -> Protected {
        let id = unique_name("r");
        let app = format!("app_{id}");
        let admin = format!("admin_{id}");
        let bypass_role = format!("trash_{id}");
        psql(
            &admin_url(),
            &[
                "-c",
                &format!("CREATE ROLE \"{app}\" LOGIN"),
                "-c",
                &format!("CREATE ROLE \"{bypass_role}\" NOLOGIN"),
                "-c",
                &format!("CREATE ROLE \"{admin}\" LOGIN IN ROLE \"{bypass_role}\""),
            ],
        );
        let schemas = schemas.join(", ");
        for role in [&app, &admin] {
            psql(
                &db.url,
                &[
                    "-c",
                    &format!(
                        "GRANT USAGE ON SCHEMA {schemas} TO \"{role}\";
                         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schemas} TO \"{role}\";
                         GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schemas} TO \"{role}\";"
                    ),
                ],
            );
        }
        let proxy = Proxy::start_with(ProxyOptions {
            extra_toml: format!(
                "[database]\nurl = \"{}\"\nrefresh_interval = \"1s\"\n[roles]\nbypass = [\"{bypass_role}\"]\n{extra_toml}",
                db.url
            ),
            ..Default::default()
        });
        Protected {
            proxy,
            db,
            app,
            admin,
            bypass_role,
        }
    }

    /// libpq connection string through the proxy as `role`.
    pub fn conninfo(&self, role: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={role} dbname={} sslmode=disable",
            self.proxy.port, self.db.name
        )
    }

    pub async fn connect_as(&self, role: &str) -> tokio_postgres::Client {
        super::connect(&self.conninfo(role)).await
    }
}

impl Drop for Protected {
    fn drop(&mut self) {
        let roles = [&self.app, &self.admin, &self.bypass_role];
        let drop_sql: Vec<String> = roles
            .iter()
            .map(|r| format!("DROP ROLE IF EXISTS \"{r}\";"))
            .collect();
        // The database goes first (TestDb's own drop runs after this body),
        // so drop it here explicitly, then the roles.
        let _ = Command::new("psql")
            .arg(admin_url())
            .args([
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.db.name),
            ])
            .output();
        let _ = Command::new("psql")
            .arg(admin_url())
            .args(["-q", "-c", &drop_sql.join(" ")])
            .output();
    }
}
