//! The command line as an operator meets it (issue 13 item 8): every
//! subcommand finds rules.toml as `serve` does (`--config`,
//! `TOMBSTONE_CONFIG`, `./rules.toml`) and takes the database and the
//! retention from it; operations are named by a prefix of their id;
//! `--since` says which forms it takes; `rewrite` without a schema warns;
//! the actor is the OS account; logs carry no colour escapes off a
//! terminal.

mod common;

use std::path::Path;
use std::time::Duration;

use common::protected::Protected;
use common::{Proxy, TestDb, admin_config, tombstone_in, unique_name, upstream_host_port};

fn write_rules(dir: &Path, text: &str) -> String {
    let path = dir.join("rules.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn every_command_finds_rules_toml_as_serve_does() {
    let db = TestDb::new("tombstone_cli_lookup");
    db.migrate();
    let here = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let rules = write_rules(here.path(), &format!("[database]\nurl = \"{}\"\n", db.url));

    // ./rules.toml, TOMBSTONE_CONFIG, --config: the same file, the same
    // database.
    for (dir, args, env) in [
        (here.path(), vec!["trash"], vec![]),
        (
            elsewhere.path(),
            vec!["trash"],
            vec![("TOMBSTONE_CONFIG", rules.as_str())],
        ),
        (
            elsewhere.path(),
            vec!["trash", "--config", rules.as_str()],
            vec![],
        ),
        (
            elsewhere.path(),
            vec!["trash", "-c", rules.as_str()],
            vec![],
        ),
    ] {
        let r = tombstone_in(dir, &args, &env);
        assert_eq!(r.code, Some(0), "{args:?} {env:?}: {}{}", r.out, r.err);
        assert_eq!(r.out, "the trash is empty\n");
    }
    // serve's own lookup is the same: `check` alone reads ./rules.toml.
    let r = tombstone_in(here.path(), &["check"], &[]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (Some(0), "rules.toml: ok\n"),
        "{}",
        r.err
    );

    // Every command that needs the database takes database.url from
    // ./rules.toml; --database-url overrides it.
    let wrong = tempfile::tempdir().unwrap();
    let missing = unique_name("nosuchdb");
    write_rules(
        wrong.path(),
        &format!("[database]\nurl = \"{}\"\n", common::url_for(&missing)),
    );
    for args in [
        vec!["doctor"],
        vec!["migrate"],
        vec!["trash"],
        vec!["restore", "--action", "1"],
        vec!["purge", "--dry-run"],
        vec!["erase", "--table", "t", "--key", "{\"id\": 1}"],
        vec!["undo", "1"],
        vec!["rewrite", "SELECT 1"],
    ] {
        let r = tombstone_in(wrong.path(), &args, &[]);
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.err);
        assert!(
            r.err
                .contains(&format!("database \"{missing}\" does not exist")),
            "{args:?}: {}",
            r.err
        );
    }
    let r = tombstone_in(wrong.path(), &["trash", "--database-url", &db.url], &[]);
    assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
    assert_eq!(r.out, "the trash is empty\n");
    // A file that does not load stops every command, naming the key.
    write_rules(wrong.path(), "[retention]\nkeep = \"30 dayz\"\n");
    let r = tombstone_in(wrong.path(), &["purge", "--database-url", &db.url], &[]);
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(
        r.err.contains("rules.toml: key `retention.keep`"),
        "{}",
        r.err
    );
}

/// The trash as JSON: every operation id, newest first.
fn trash_ids(dir: &Path, url: &str) -> Vec<String> {
    let r = tombstone_in(
        dir,
        &["trash", "--format", "json", "--database-url", url],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    let trash: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    trash
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn operations_by_prefix_since_actor_and_retention() {
    let p = Protected::start("cli_operator", 1, "");
    let direct = p.db.connect().await;
    let app = p.connect_as(&p.app).await;
    // 19 operations: whatever the ids, two of the 17 left after the first
    // two restores share a first digit.
    let comments: Vec<i64> = direct
        .query("SELECT id FROM comments ORDER BY id LIMIT 19", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in &comments {
        app.execute("DELETE FROM comments WHERE id = $1", &[id])
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let ops = trash_ids(dir.path(), &p.db.url);
    assert_eq!(ops.len(), 19);

    // The CLI as a bypass member with no right on tombstone's tables: the
    // prefix is resolved through tombstone.trash().
    direct
        .batch_execute(&format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA tombstone FROM \"{}\"",
            p.bypass_role
        ))
        .await
        .unwrap();
    let readable: bool = direct
        .query_one(
            "SELECT has_table_privilege($1, 'tombstone.operations', 'SELECT')",
            &[&p.admin],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!readable);
    let (host, port) = upstream_host_port();
    let admin_url = format!("postgres://{}@{host}:{port}/{}", p.admin, p.db.name);

    // A unique prefix, as the trash shows it; the actor is the OS account
    // when $USER and $LOGNAME are unset or empty.
    let account = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let account = String::from_utf8_lossy(&account.stdout).trim().to_string();
    let r = tombstone_in(
        dir.path(),
        &["restore", &ops[0][..8], "--database-url", &admin_url],
        &[("USER", ""), ("LOGNAME", "")],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert!(
        r.out
            .starts_with(&format!("restored operation {} ", ops[0])),
        "{}",
        r.out
    );
    let actor = |op: String| {
        let direct = &direct;
        async move {
            direct
                .query_one(
                    "SELECT actor FROM tombstone.restores WHERE op_id = $1::text::uuid",
                    &[&op],
                )
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    assert_eq!(actor(ops[0].clone()).await, account);
    assert_ne!(account, p.admin);
    // $LOGNAME when $USER is unset.
    let r = tombstone_in(
        dir.path(),
        &["restore", &ops[1][..13], "--database-url", &admin_url],
        &[("USER", ""), ("LOGNAME", "carol")],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert_eq!(actor(ops[1].clone()).await, "carol");

    // An ambiguous prefix lists its candidates and restores nothing.
    let rest = &ops[2..];
    let shared = rest
        .iter()
        .map(|o| &o[..1])
        .find(|c| rest.iter().filter(|o| o.starts_with(*c)).count() > 1)
        .unwrap()
        .to_string();
    let r = tombstone_in(
        dir.path(),
        &["restore", &shared, "--database-url", &admin_url],
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(
        r.err.starts_with(&format!(
            "tombstone: operation id prefix {shared} is ambiguous"
        )),
        "{}",
        r.err
    );
    for op in rest.iter().filter(|o| o.starts_with(&shared)) {
        assert!(r.err.contains(op.as_str()), "{op} not listed: {}", r.err);
    }
    assert_eq!(trash_ids(dir.path(), &p.db.url).len(), 17);
    // One no operation has.
    let unknown = (0..0x10000)
        .map(|n| format!("{n:04x}"))
        .find(|pre| !ops.iter().any(|o| o.starts_with(pre.as_str())))
        .unwrap();
    let r = tombstone_in(
        dir.path(),
        &["restore", &unknown, "--database-url", &admin_url],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.err);
    assert!(
        r.err.starts_with(&format!(
            "tombstone: no operation in the trash has an id starting with {unknown}"
        )),
        "{}",
        r.err
    );
    // The README's placeholder is not an id.
    let r = tombstone_in(
        dir.path(),
        &["restore", "0b6f…-…-…", "--database-url", &admin_url],
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(r.err.contains("is not an operation id"), "{}", r.err);

    // --since: durations and timestamps; anything else names the flag and
    // the forms it takes.
    for since in ["1h", "30m", "7d", "2000-01-01 00:00+00"] {
        let r = tombstone_in(
            dir.path(),
            &["trash", "--since", since, "--database-url", &admin_url],
            &[],
        );
        assert_eq!(r.code, Some(0), "{since}: {}", r.err);
        assert!(r.out.contains(&rest[0]), "{since}: {}", r.out);
    }
    let r = tombstone_in(
        dir.path(),
        &["trash", "--since", "bogus", "--database-url", &admin_url],
        &[],
    );
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(
        r.err
            .starts_with("tombstone: --since \"bogus\" is neither a duration nor a timestamp")
            && r.err.contains("2h, 30m or 7d")
            && r.err.contains("'2026-01-31 12:00+00'"),
        "{}",
        r.err
    );

    // The retention of ./rules.toml: with the default (30 days) nothing is
    // old enough; with keep = "1s" the deleted comments are.
    let r = tombstone_in(
        dir.path(),
        &["purge", "--dry-run", "--database-url", &p.db.url],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert_eq!(r.out, "nothing to purge\n");
    write_rules(
        dir.path(),
        &format!(
            "[database]\nurl = \"{}\"\n[retention]\nkeep = \"1s\"\n",
            p.db.url
        ),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = tombstone_in(dir.path(), &["purge", "--dry-run"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert!(
        r.out
            .lines()
            .any(|l| l.starts_with("public.comments") && l.contains(" 17  ")),
        "{}",
        r.out
    );
}

#[test]
fn rewrite_without_a_schema_warns_that_nothing_is_protected() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "SELECT * FROM tasks WHERE id = 1";
    let r = tombstone_in(dir.path(), &["rewrite", sql], &[]);
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert_eq!(r.out, format!("{sql}\n"));
    assert!(
        r.err
            .starts_with("tombstone: warning: no database, so no schema: nothing is protected")
            && r.err.contains("--database-url"),
        "{}",
        r.err
    );
    // A database without a protected table says so too.
    let empty = TestDb::new("tombstone_cli_rewrite_empty");
    let r = tombstone_in(
        dir.path(),
        &["rewrite", sql, "--database-url", &empty.url],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert!(
        r.err.starts_with("tombstone: warning: no table of ")
            && r.err
                .contains("is protected (none has a deleted_at column)"),
        "{}",
        r.err
    );
    // The scenario's: rewritten, no warning; its database from ./rules.toml.
    let scenario = TestDb::twin("cli_rewrite", 1);
    write_rules(
        dir.path(),
        &format!("[database]\nurl = \"{}\"\n", scenario.url),
    );
    let r = tombstone_in(dir.path(), &["rewrite", sql], &[]);
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert_eq!(r.err, "");
    assert!(r.out.contains("deleted_at"), "{}", r.out);
}

#[test]
fn logs_have_no_colour_escapes_off_a_terminal() {
    let proxy = Proxy::start();
    let user = admin_config().get_user().unwrap_or("postgres").to_string();
    let status = std::process::Command::new("psql")
        .arg(proxy.conninfo("postgres"))
        .args(["-X", "-q", "-c", "SELECT 1"])
        .env("PGUSER", user)
        .output()
        .unwrap();
    assert!(status.status.success());
    let log = proxy.log();
    assert!(log.contains("tombstone listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}
