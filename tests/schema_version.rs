//! The installed tombstone schema is versioned (SPEC O6): `migrate`
//! upgrades every older schema main installed (version 0 at 25e8a32,
//! version 1 at bd0d58c, version 2 at 018cd37, version 3 at 4e0b053,
//! version 4 at 96de454, version 5 at 19538db, version 6 at e00d2d6, each kept
//! as a fixture) in
//! place to exactly what a fresh install gives, keeps the data, is
//! idempotent, waits for the advisory lock; `serve` refuses a mismatch
//! either way and `doctor` reports the version.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestDb, psql, tombstone, unique_name};
use tombstone::migrate::SCHEMA_VERSION;
use tombstone::migrate::version::LOCK_KEY;

/// Every older schema version, with the script that installed it: what
/// main's `tombstone migrate` printed at the commit the file is named after
/// (see each file's header). A bump of `SCHEMA_VERSION` adds the previous
/// version's script here.
const FIXTURES: &[(i32, &str)] = &[
    (0, "schema_v0_25e8a32.sql"),
    (1, "schema_v1_bd0d58c.sql"),
    (2, "schema_v2_018cd37.sql"),
    (3, "schema_v3_4e0b053.sql"),
    (4, "schema_v4_96de454.sql"),
    (5, "schema_v5_19538db.sql"),
    (6, "schema_v6_e00d2d6.sql"),
];

/// The fixture that installs schema `version`.
fn fixture(version: i32) -> PathBuf {
    let (_, file) = FIXTURES
        .iter()
        .find(|(v, _)| *v == version)
        .unwrap_or_else(|| panic!("no fixture for schema version {version}"));
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file)
}

/// Installs the fixture of schema `version` on `db` and checks that it
/// reads back as that version.
async fn install_fixture(db: &TestDb, version: i32) {
    psql(&db.url, &["-f", fixture(version).to_str().expect("path")]);
    let client = db.connect().await;
    let installed = tombstone::migrate::version::installed(&client)
        .await
        .expect("read version");
    assert_eq!(
        installed.map(|i| i.version),
        Some(version),
        "{}",
        fixture(version).display()
    );
}

#[test]
fn every_older_version_has_a_fixture() {
    let versions: Vec<i32> = FIXTURES.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions,
        (0..SCHEMA_VERSION).collect::<Vec<_>>(),
        "SCHEMA_VERSION is {SCHEMA_VERSION}: keep the previous versions' scripts in tests/fixtures"
    );
    for (v, _) in FIXTURES {
        assert!(fixture(*v).is_file(), "{}", fixture(*v).display());
    }
}

/// The scenario schema and data, without any tombstone object.
fn scenario_db(tag: &str) -> TestDb {
    let db = TestDb::new(tag);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenario");
    psql(
        &db.url,
        &[
            "-v",
            "projects=3",
            "-f",
            dir.join("schema.sql").to_str().expect("path"),
            "-f",
            dir.join("data.sql").to_str().expect("path"),
        ],
    );
    db
}

fn migrate_apply(db: &TestDb) -> String {
    let (ok, out, err) = tombstone(&["migrate", "--apply", "--database-url", &db.url]);
    assert!(ok, "migrate --apply failed:\n{out}\n{err}");
    out
}

/// Everything about the installed schema that must not depend on how it
/// got there, oid-free, one line per fact.
async fn catalog(client: &tokio_postgres::Client) -> Vec<String> {
    const QUERIES: &[&str] = &[
        // Privileges are compared as what they grant: no ACL (NULL) is the
        // owner's default ACL.
        // Routines of schema tombstone: definition (with SECURITY DEFINER
        // and SET clauses), settings, owner, privileges.
        "SELECT 'function ' || p.oid::regprocedure::text || ' secdef=' || p.prosecdef
                || ' config=' || coalesce(p.proconfig::text, '-') || ' owner=' || pg_get_userbyid(p.proowner)
                || ' acl=' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) x) || E'\n'
                || CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE p.prokind::text END
           FROM pg_proc p WHERE p.pronamespace = 'tombstone'::regnamespace",
        // Relations of schema tombstone, with flags and privileges.
        "SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text || ' rls=' || c.relrowsecurity
                || ' force=' || c.relforcerowsecurity
                || ' acl=' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(c.relacl, acldefault('r', c.relowner))) x)
                || ' owner=' || pg_get_userbyid(c.relowner)
                || ' bound=' || coalesce(pg_get_expr(c.relpartbound, c.oid), '-')
           FROM pg_class c WHERE c.relnamespace = 'tombstone'::regnamespace",
        // Columns of tombstone's tables.
        "SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                || ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
                || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE c.relnamespace = 'tombstone'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
            AND a.attnum > 0 AND NOT a.attisdropped",
        // Indexes and constraints of tombstone's tables.
        "SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
          WHERE c.relnamespace = 'tombstone'::regnamespace",
        "SELECT 'constraint ' || c.relname || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid)
           FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
          WHERE c.relnamespace = 'tombstone'::regnamespace",
        // Triggers on every table.
        "SELECT 'trigger ' || t.tgrelid::regclass::text || ' ' || t.tgname || ' enabled=' || t.tgenabled::text::text
                || ' ' || pg_get_triggerdef(t.oid)
           FROM pg_trigger t WHERE NOT t.tgisinternal",
        // Policies on every table.
        "SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' || permissive || ' '
                || roles::text || ' ' || cmd || ' ' || coalesce(qual, '-') || ' ' || coalesce(with_check, '-')
           FROM pg_policies",
        // Event triggers.
        "SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evtfoid::regproc::text || ' '
                || evtenabled::text || ' ' || coalesce(evttags::text, '-') FROM pg_event_trigger",
        // Row-level security flags and privileges of the application's tables.
        "SELECT 'app table ' || c.oid::regclass::text || ' rls=' || c.relrowsecurity || ' force='
                || c.relforcerowsecurity
                || ' acl=' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(c.relacl, acldefault('r', c.relowner))) x)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('public', 'billing') AND c.relkind IN ('r', 'p')",
        // The schema itself.
        "SELECT 'schema tombstone owner=' || pg_get_userbyid(nspowner) || ' acl=' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(coalesce(nspacl, acldefault('n', nspowner))) x)
           FROM pg_namespace WHERE nspname = 'tombstone'",
        // What migrate recorded for the DDL guard.
        "SELECT 'protected ' || table_schema || '.' || table_name || ' ' || column_name || ' ' || state::text
           FROM tombstone.protected_tables",
        "SELECT 'version ' || version || ' ' || installed_by FROM tombstone.schema_version",
    ];
    let mut out = Vec::new();
    for q in QUERIES {
        for row in client.query(*q, &[]).await.expect(q) {
            out.push(row.get::<_, String>(0));
        }
    }
    out.sort();
    out
}

/// The data tombstone keeps: every row of its tables, as JSON text.
async fn data(client: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "tombstone.operations",
        "tombstone.operation_rows",
        "tombstone.restores",
        "tombstone.audit",
    ] {
        // Columns a newer version adds (`operations.stmt_at`, version 2)
        // are filled on upgrade: the data is what was there before.
        let q = format!(
            "SELECT '{table} ' || (pg_catalog.to_jsonb(t.*) - 'stmt_at')::text FROM {table} t ORDER BY 1"
        );
        for row in client.query(&q, &[]).await.expect(&q) {
            out.push(row.get::<_, String>(0));
        }
    }
    out
}

/// Audit and operations rows as versions 0 and 1 wrote them: a soft
/// delete recorded by hand the way the rewritten statement records it, a
/// restore, and updates the audit triggers record.
async fn write_old_data(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "BEGIN;
             INSERT INTO tombstone.operations (id, table_schema, table_name, actor)
               VALUES ('00000000-0000-0000-0000-00000000000a', 'public', 'comments', 'alice'),
                      ('00000000-0000-0000-0000-00000000000b', 'public', 'tasks', 'bob');
             UPDATE comments SET deleted_at = now() WHERE id = (SELECT min(id) FROM comments);
             INSERT INTO tombstone.operation_rows (op_id, table_schema, table_name, action, pk)
               SELECT '00000000-0000-0000-0000-00000000000a', 'public', 'comments', 'soft_delete',
                      jsonb_build_object('id', min(id)) FROM comments;
             INSERT INTO tombstone.operation_rows (op_id, table_schema, table_name, action, pk)
               SELECT '00000000-0000-0000-0000-00000000000b', 'public', 'tasks', 'soft_delete',
                      jsonb_build_object('id', max(id)) FROM tasks;
             INSERT INTO tombstone.restores (op_id, actor) VALUES ('00000000-0000-0000-0000-00000000000b', 'carol');
             UPDATE tasks SET title = title || ' (edited)' WHERE id IN (SELECT id FROM tasks ORDER BY id LIMIT 3);
             INSERT INTO tombstone.audit (at, table_schema, table_name, pk, action, actor)
               VALUES (now() - interval '40 days', 'public', 'tasks', '{\"id\": 1}', 'update', 'dave');
             COMMIT;",
        )
        .await
        .expect("write old data");
}

#[tokio::test]
async fn upgrade_from_version_0_equals_a_fresh_install_and_keeps_the_data() {
    upgrade_equals_a_fresh_install_and_keeps_the_data(0).await;
}

#[tokio::test]
async fn upgrade_from_version_1_equals_a_fresh_install_and_keeps_the_data() {
    upgrade_equals_a_fresh_install_and_keeps_the_data(1).await;
}

#[tokio::test]
async fn upgrade_from_version_2_equals_a_fresh_install_and_keeps_the_data() {
    upgrade_equals_a_fresh_install_and_keeps_the_data(2).await;
}

#[tokio::test]
async fn upgrade_from_version_3_equals_a_fresh_install_and_keeps_the_data() {
    upgrade_equals_a_fresh_install_and_keeps_the_data(3).await;
}

#[tokio::test]
async fn upgrade_from_version_4_equals_a_fresh_install_and_keeps_the_data() {
    upgrade_equals_a_fresh_install_and_keeps_the_data(4).await;
}

#[tokio::test]
async fn upgrade_from_version_5_equals_a_fresh_install_and_keeps_the_data() {
    upgrade_equals_a_fresh_install_and_keeps_the_data(5).await;
}

#[tokio::test]
async fn upgrade_from_version_6_equals_a_fresh_install_and_keeps_the_data() {
    upgrade_equals_a_fresh_install_and_keeps_the_data(6).await;
}

/// Installs the fixture of schema `version`, writes data through it,
/// upgrades it with this binary's migrate and compares it with a fresh
/// install.
async fn upgrade_equals_a_fresh_install_and_keeps_the_data(version: i32) {
    let app = unique_name(&format!("sv_app{version}"));
    common::psql_admin(&format!("CREATE ROLE \"{app}\" LOGIN"));
    let old = scenario_db(&format!("sv_old{version}"));
    let fresh = scenario_db(&format!("sv_fresh{version}"));

    // The old version as main installed it, with the quick start's grants
    // of that time, and data written through it.
    install_fixture(&old, version).await;
    psql(
        &old.url,
        &[
            "-c",
            &format!(
                "GRANT USAGE ON SCHEMA tombstone TO \"{app}\";
                 GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA tombstone TO \"{app}\";
                 GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tombstone TO \"{app}\";"
            ),
        ],
    );
    // Objects an older schema had and this one does not: the generic
    // audit trigger function main dropped in ca8adf0 with a trigger on an
    // application table, a view, and a policy with row-level security on.
    psql(
        &old.url,
        &[
            "-c",
            "CREATE FUNCTION tombstone.audit_changes() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
             CREATE TRIGGER tombstone_audit_changes AFTER INSERT ON public.tags
               FOR EACH ROW EXECUTE FUNCTION tombstone.audit_changes();
             CREATE VIEW tombstone.recent_audit AS SELECT * FROM tombstone.audit;
             ALTER TABLE public.tags ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
             CREATE POLICY tombstone_old ON public.tags USING (true);",
        ],
    );
    let old_client = old.connect().await;
    write_old_data(&old_client).await;
    let installed = tombstone::migrate::version::installed(&old_client)
        .await
        .expect("read version");
    assert_eq!(installed.map(|i| i.version), Some(version));
    let data_before = data(&old_client).await;
    assert!(
        data_before
            .iter()
            .filter(|l| l.starts_with("tombstone.audit "))
            .count()
            >= 4,
        "{data_before:#?}"
    );
    let partitions_before = audit_partitions(&old_client).await;

    let out = migrate_apply(&old);
    assert!(out.contains("applied: lock, version check"), "{out}");
    migrate_apply(&fresh);
    let fresh_client = fresh.connect().await;

    let upgraded = catalog(&old_client).await;
    let installed = catalog(&fresh_client).await;
    let only_upgraded: Vec<&String> = upgraded.iter().filter(|l| !installed.contains(l)).collect();
    let only_fresh: Vec<&String> = installed.iter().filter(|l| !upgraded.contains(l)).collect();
    assert!(
        only_upgraded.is_empty() && only_fresh.is_empty(),
        "upgraded schema differs from a fresh install\nonly after upgrade:\n{only_upgraded:#?}\nonly in fresh install:\n{only_fresh:#?}"
    );
    assert!(
        upgraded
            .iter()
            .any(|l| l.starts_with("event trigger tombstone_ddl_guard ")),
        "{upgraded:#?}"
    );
    assert!(
        upgraded.iter().any(|l| l
            == &format!(
                "version {SCHEMA_VERSION} tombstone {}",
                env!("CARGO_PKG_VERSION")
            )),
        "{upgraded:#?}"
    );
    assert!(
        !upgraded.iter().any(|l| l.contains(&app)),
        "the old grants to {app} must be gone: {upgraded:#?}"
    );

    // The data survived, partitions included.
    assert_eq!(data(&old_client).await, data_before);
    let partitions_after = audit_partitions(&old_client).await;
    assert_eq!(partitions_after, partitions_before);

    // The upgraded triggers work: an update is audited once.
    let before: i64 = old_client
        .query_one(
            "SELECT count(*) FROM tombstone.audit WHERE action = 'update'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    old_client
        .execute(
            "UPDATE tasks SET done = NOT done WHERE id = (SELECT min(id) FROM tasks)",
            &[],
        )
        .await
        .expect("update");
    let after: i64 = old_client
        .query_one(
            "SELECT count(*) FROM tombstone.audit WHERE action = 'update'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(after, before + 1);

    // Migrating again changes nothing, not even the recorded install time.
    let at_before: String = old_client
        .query_one(
            "SELECT installed_at::text FROM tombstone.schema_version",
            &[],
        )
        .await
        .expect("installed_at")
        .get(0);
    let catalog_before = catalog(&old_client).await;
    migrate_apply(&old);
    assert_eq!(
        catalog(&old_client).await,
        catalog_before,
        "a second migrate changed the schema"
    );
    let at_after: String = old_client
        .query_one(
            "SELECT installed_at::text FROM tombstone.schema_version",
            &[],
        )
        .await
        .expect("installed_at")
        .get(0);
    assert_eq!(at_after, at_before);

    // Operations written before the upgrade are an action (version 5):
    // the one transaction of write_old_data made both, one of them
    // restored then; restoring the action brings back the other.
    let reply: String = old_client
        .query_one(
            "SELECT tombstone.restore_action(xact_id)::text FROM tombstone.operations
              WHERE id = '00000000-0000-0000-0000-00000000000a'",
            &[],
        )
        .await
        .expect("restore_action on old data")
        .get(0);
    let reply: serde_json::Value = serde_json::from_str(&reply).expect("json");
    assert_eq!(reply["status"], "restored", "{reply}");
    assert!(
        reply["operations"].as_array().is_some_and(|ops| ops
            .iter()
            .any(|o| o["operation"] == "00000000-0000-0000-0000-00000000000a")),
        "{reply}"
    );
    assert_eq!(
        reply["already_restored"][0]["operation"], "00000000-0000-0000-0000-00000000000b",
        "{reply}"
    );
    let live: bool = old_client
        .query_one(
            "SELECT deleted_at IS NULL FROM comments WHERE id = (SELECT min(id) FROM comments)",
            &[],
        )
        .await
        .expect("comment")
        .get(0);
    assert!(live, "the old operation's comment is back");

    drop(old_client);
    drop(fresh_client);
    drop(old);
    drop(fresh);
    common::psql_admin(&format!("DROP ROLE IF EXISTS \"{app}\""));
}

/// A `tombstone serve` on `db`, its port, and the directory holding its
/// config and stderr.
fn spawn_serve(db: &TestDb) -> (std::process::Child, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (host, port) = common::upstream_host_port();
    let listen = common::free_port();
    let config = dir.path().join("rules.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\naddress = \"127.0.0.1:{listen}\"\n[upstream]\nhost = \"{host}\"\nport = {port}\n[database]\nurl = \"{}\"\n",
            db.url
        ),
    )
    .expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"))
        .spawn()
        .expect("start tombstone serve");
    (child, listen, dir)
}

/// Runs `tombstone serve` on `db` and returns (exit code, stderr) when it
/// exits within 20 s; `None` when it keeps running (it is then killed).
fn serve_exit(db: &TestDb) -> Option<(Option<i32>, String)> {
    let (mut child, _, dir) = spawn_serve(db);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some((
                status.code(),
                std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default(),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test]
async fn serve_refuses_an_older_or_newer_schema_and_doctor_reports_the_version() {
    // Every older version: serve refuses it, doctor reports it (with when
    // and by which binary from version 1 on), migrate brings it current.
    let mut db = None;
    for &(version, _) in FIXTURES {
        let old = scenario_db(&format!("sv_serve{version}"));
        install_fixture(&old, version).await;

        let (code, err) = serve_exit(&old)
            .unwrap_or_else(|| panic!("serve must refuse a version {version} schema and exit"));
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "tombstone schema version {version} is installed, this binary needs {SCHEMA_VERSION}: run `tombstone migrate --apply --database-url"
            )),
            "{err}"
        );
        let (ok, out, _) = tombstone(&["doctor", "--database-url", &old.url]);
        assert!(!ok, "doctor must fail on a version {version} schema: {out}");
        let reported = if version == 0 {
            format!("Tombstone schema: version 0 (this binary needs {SCHEMA_VERSION})")
        } else {
            format!(
                "Tombstone schema: version {version}, installed {} by tombstone {} (this binary needs {SCHEMA_VERSION})",
                installed_at(&old).await,
                env!("CARGO_PKG_VERSION")
            )
        };
        assert!(out.contains(&reported), "{reported}\n{out}");

        migrate_apply(&old);
        let (_, out, _) = tombstone(&["doctor", "--database-url", &old.url]);
        assert!(
            out.contains(&format!(
                "Tombstone schema: version {SCHEMA_VERSION}, installed "
            )),
            "{out}"
        );
        assert!(!out.contains("tombstone schema version"), "{out}");
        db = Some(old);
    }
    let db = db.expect("at least one fixture");
    assert!(
        serve_exit(&db).is_none(),
        "serve must start on the current version"
    );

    // A newer schema: serve refuses, migrate refuses and changes nothing.
    let client = db.connect().await;
    client
        .execute(
            "UPDATE tombstone.schema_version SET version = version + 1",
            &[],
        )
        .await
        .expect("bump version");
    let newer = SCHEMA_VERSION + 1;
    let (code, err) = serve_exit(&db).expect("serve must refuse a newer schema");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "tombstone schema version {newer} is installed, newer than this binary's {SCHEMA_VERSION}"
        )),
        "{err}"
    );
    let before = catalog(&client).await;
    let (ok, out, err) = tombstone(&["migrate", "--apply", "--database-url", &db.url]);
    assert!(!ok, "migrate must refuse to downgrade: {out}");
    assert!(err.contains("newer than this binary"), "{err}");
    assert_eq!(catalog(&client).await, before);
}

#[tokio::test]
async fn migrate_waits_for_the_schema_lock() {
    let db = scenario_db("sv_lock");
    let mut holder = db.connect().await;
    let tx = holder.transaction().await.expect("begin");
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .expect("lock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .args(["migrate", "--apply", "--database-url", &db.url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start migrate");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "migrate finished while another session held the schema lock"
    );
    let absent: bool = tx
        .query_one(
            "SELECT to_regclass('tombstone.schema_version') IS NULL",
            &[],
        )
        .await
        .expect("check")
        .get(0);
    assert!(absent);
    tx.commit().await.expect("release");
    let status = child.wait().expect("wait for migrate");
    assert!(status.success());
    let installed = tombstone::migrate::version::installed(&holder)
        .await
        .expect("version");
    assert_eq!(installed.map(|i| i.version), Some(SCHEMA_VERSION));
}

#[tokio::test]
async fn serve_waits_for_a_migration_in_progress() {
    let db = scenario_db("sv_serve_lock");
    migrate_apply(&db);
    let mut holder = db.connect().await;
    let tx = holder.transaction().await.expect("begin");
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .expect("lock");
    let (mut child, port, _dir) = spawn_serve(&db);
    std::thread::sleep(Duration::from_millis(1500));
    let listening = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let running = matches!(child.try_wait(), Ok(None));
    tx.commit().await.expect("release");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut up = false;
    while Instant::now() < deadline && !up {
        up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        running && !listening,
        "serve started while migrate held the schema lock"
    );
    assert!(up, "serve did not start after the lock was released");
}

#[tokio::test]
async fn an_upgrade_blocked_by_an_application_object_changes_nothing() {
    for &(version, _) in FIXTURES {
        upgrade_blocked_by_an_application_object_changes_nothing(version).await;
    }
}

/// A view of the application calling a tombstone function blocks the
/// upgrade of schema `version`: migrate fails naming it and changes nothing.
async fn upgrade_blocked_by_an_application_object_changes_nothing(version: i32) {
    let db = scenario_db(&format!("sv_blocked{version}"));
    install_fixture(&db, version).await;
    psql(
        &db.url,
        &[
            "-c",
            "CREATE VIEW public.who_am_i AS SELECT tombstone.current_actor() AS actor",
        ],
    );
    let client = db.connect().await;
    let before = catalog_without_registry(&client).await;
    let (ok, out, err) = tombstone(&["migrate", "--apply", "--database-url", &db.url]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("migration failed, nothing was changed")
            && err.contains("tombstone.current_actor()")
            && err.contains("who_am_i"),
        "{err}"
    );
    assert_eq!(catalog_without_registry(&client).await, before);
    let installed = tombstone::migrate::version::installed(&client)
        .await
        .expect("version");
    assert_eq!(installed.map(|i| i.version), Some(version));
}

/// `tombstone.schema_version.installed_at` as text, as doctor prints it.
async fn installed_at(db: &TestDb) -> String {
    db.connect()
        .await
        .query_one(
            "SELECT installed_at::text FROM tombstone.schema_version",
            &[],
        )
        .await
        .expect("installed_at")
        .get(0)
}

/// [`catalog`] for a schema that may lack the tables version 1 added.
async fn catalog_without_registry(client: &tokio_postgres::Client) -> Vec<String> {
    let mut out: Vec<String> = client
        .query(
            "SELECT p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid)) FROM pg_proc p
              WHERE p.pronamespace = 'tombstone'::regnamespace
             UNION ALL SELECT t.tgrelid::regclass::text || ' ' || t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal
             UNION ALL SELECT evtname FROM pg_event_trigger
             UNION ALL SELECT relname FROM pg_class WHERE relnamespace = 'tombstone'::regnamespace",
            &[],
        )
        .await
        .expect("catalog")
        .iter()
        .map(|r| r.get(0))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_running_serve_reports_a_version_changed_under_it() {
    let db = scenario_db("sv_running");
    migrate_apply(&db);
    let (mut child, port, dir) = spawn_serve(&db);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = db.connect().await;
    client
        .batch_execute(
            "UPDATE tombstone.schema_version SET version = version + 1;
             CREATE TABLE trigger_a_reload (id int)",
        )
        .await
        .expect("bump version");
    let expected = format!(
        "tombstone schema version {} is installed, newer than this binary's {SCHEMA_VERSION}",
        SCHEMA_VERSION + 1
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = String::new();
    while Instant::now() < deadline && !log.contains(&expected) {
        std::thread::sleep(Duration::from_millis(100));
        log = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains(&expected), "{log}");
}

/// The audit table's partitions, by name.
async fn audit_partitions(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'tombstone'::regnamespace
              AND relname LIKE 'audit\\_%' AND relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .expect("partitions")
        .iter()
        .map(|r| r.get(0))
        .collect()
}
