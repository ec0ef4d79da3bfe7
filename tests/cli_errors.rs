//! Errors that say what to do (issue 13 item 2): a connection error gives
//! the server's message and SQLSTATE, or the I/O error behind it, and never
//! the URL's password; every error has one `tombstone: ` prefix; errors of
//! tombstone's SQL functions print their DETAIL and HINT; the exit codes
//! are the README's (0 ok, 1 failure or problems found, 2 usage or bad
//! config).

mod common;

use common::protected::Protected;
use common::{TestDb, admin_config, free_port, tombstone_in, unique_name, upstream_host_port};

/// One `tombstone: ` at the start, none doubled.
fn one_prefix(err: &str) {
    assert!(err.starts_with("tombstone: "), "{err}");
    assert!(!err.contains("tombstone: tombstone:"), "{err}");
}

#[test]
fn connection_errors_say_why_and_mask_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let (host, port) = upstream_host_port();
    let user = admin_config().get_user().unwrap_or("postgres").to_string();
    let name = unique_name("nosuchdb");
    let url = format!("postgres://{user}:s3cret@{host}:{port}/{name}");
    let shown = format!("postgres://{user}:***@{host}:{port}/{name}");
    // Every command that connects says the same.
    for args in [
        vec!["doctor"],
        vec!["migrate"],
        vec!["trash"],
        vec!["restore", "0b6f1c2a"],
        vec!["purge", "--dry-run"],
        vec!["erase", "--table", "t", "--key", "{\"id\": 1}"],
        vec!["undo", "1"],
        vec!["rewrite", "SELECT 1"],
    ] {
        let mut args = args.clone();
        args.extend(["--database-url", &url]);
        let r = tombstone_in(dir.path(), &args, &[]);
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.err);
        assert_eq!(
            r.err,
            format!(
                "tombstone: cannot connect to {shown}: database \"{name}\" does not exist (SQLSTATE 3D000)\n"
            ),
            "{args:?}"
        );
    }
    // Nothing listens: the I/O error, from the error's source chain.
    let closed = free_port();
    for url in [
        format!("postgres://{user}:s3cret@127.0.0.1:{closed}/x"),
        format!("host=127.0.0.1 port={closed} user={user} password=s3cret dbname=x"),
    ] {
        let r = tombstone_in(dir.path(), &["doctor", "--database-url", &url], &[]);
        assert_eq!(r.code, Some(1), "{}", r.err);
        one_prefix(&r.err);
        assert!(
            r.err.contains("cannot connect to") && r.err.contains("Connection refused"),
            "{}",
            r.err
        );
        assert!(!r.err.contains("s3cret"), "{}", r.err);
    }
}

#[tokio::test]
async fn sql_function_errors_have_one_prefix_their_detail_and_hint() {
    let p = Protected::start("cli_errors", 1, "");
    let direct = p.db.connect().await;
    let app = p.connect_as(&p.app).await;
    let (task, comment): (i64, i64) = {
        let row = direct
            .query_one(
                "SELECT t.id, min(c.id) FROM tasks t JOIN comments c ON c.task_id = t.id
                  GROUP BY t.id ORDER BY t.id LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    // A comment (its own action), then its task (another).
    app.execute("DELETE FROM comments WHERE id = $1", &[&comment])
        .await
        .unwrap();
    app.execute("DELETE FROM tasks WHERE id = $1", &[&task])
        .await
        .unwrap();
    let op = |table: &'static str| {
        let direct = &direct;
        async move {
            let row = direct
                .query_one(
                    "SELECT id::text, xact_id::text FROM tombstone.operations
                      WHERE table_name = $1 ORDER BY created_at DESC LIMIT 1",
                    &[&table],
                )
                .await
                .unwrap();
            (row.get::<_, String>(0), row.get::<_, String>(1))
        }
    };
    let (_, comment_action) = op("comments").await;
    let (task_op, _) = op("tasks").await;
    let dir = tempfile::tempdir().unwrap();
    let url = p.db.url.as_str();

    // No such operation: the function's message once prefixed, its
    // SQLSTATE and its hint.
    let r = tombstone_in(
        dir.path(),
        &[
            "restore",
            "00000000-0000-0000-0000-000000000000",
            "--database-url",
            url,
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.err);
    one_prefix(&r.err);
    assert!(
        r.err.starts_with(
            "tombstone: no operation 00000000-0000-0000-0000-000000000000 (SQLSTATE P0002)\n  hint: tombstone trash lists"
        ),
        "{}",
        r.err
    );

    // The comment's action waits for the task's operation: DETAIL and HINT.
    let r = tombstone_in(
        dir.path(),
        &[
            "restore",
            "--action",
            &comment_action,
            "--database-url",
            url,
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.err);
    one_prefix(&r.err);
    assert!(
        r.err.starts_with(&format!(
            "tombstone: cannot restore action {comment_action}: operation "
        )),
        "{}",
        r.err
    );
    assert!(
        r.err.contains(&format!("still deleted by operation {task_op} (SQLSTATE 55000)\n  detail: Nothing was restored: an action comes back whole or not at all.\n  hint: Restore operation {task_op} first")),
        "{}",
        r.err
    );

    // A table the functions do not know.
    let r = tombstone_in(
        dir.path(),
        &[
            "erase",
            "--table",
            "nosuch",
            "--key",
            "{\"id\": 1}",
            "--database-url",
            url,
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.err);
    one_prefix(&r.err);
    assert!(
        r.err
            .contains("no protected table \"nosuch\" (SQLSTATE 42P01)"),
        "{}",
        r.err
    );
}

/// 0 ok; 1 the command ran and failed, or doctor found problems; 2 usage:
/// arguments refused, a config file that does not load, no database.
#[test]
fn exit_codes_are_the_documented_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[upstream]\nport = 70000\n").unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[upstream]\nport = 5432\n").unwrap();
    let (bad, good) = (bad.to_str().unwrap(), good.to_str().unwrap());
    let bare = TestDb::new("tombstone_cli_exit_bare");
    common::psql(
        &bare.url,
        &[
            "-c",
            "CREATE TABLE t (id int PRIMARY KEY, deleted_at timestamptz)",
        ],
    );
    let migrated = TestDb::new("tombstone_cli_exit_migrated");
    migrated.migrate();
    let nosuch = common::url_for(&unique_name("nosuchdb"));
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["--help"], 0, ""),
        (vec!["--version"], 0, ""),
        (vec!["check", "--config", good], 0, ""),
        (vec!["trash", "--database-url", &migrated.url], 0, ""),
        (
            vec!["rewrite", "SELECT 1"],
            0,
            "tombstone: warning: no database",
        ),
        (vec!["doctor", "--database-url", &bare.url], 1, ""),
        (
            vec!["doctor", "--database-url", &nosuch],
            1,
            "tombstone: cannot connect to",
        ),
        (
            vec!["rewrite", "TRUNCATE t", "--database-url", &bare.url],
            1,
            "tombstone: 42501: ",
        ),
        (
            vec!["trash", "--bogus"],
            2,
            "tombstone: unexpected argument '--bogus'",
        ),
        (
            vec!["restore"],
            2,
            "tombstone: the following required arguments",
        ),
        // `tombstone` alone: the help, on stderr.
        (vec![], 2, "A PostgreSQL wire-protocol proxy"),
        (vec!["check", "--config", bad], 2, "tombstone: "),
        (
            vec!["doctor", "--config", bad],
            2,
            "key `upstream.port`: invalid value",
        ),
        (
            vec!["doctor", "--config", "missing.toml"],
            2,
            "tombstone: cannot read config file missing.toml",
        ),
        (
            vec!["doctor"],
            2,
            "tombstone: no database: pass --database-url",
        ),
        (
            vec!["serve"],
            2,
            "tombstone: cannot read config file rules.toml",
        ),
        (
            vec![
                "restore",
                "--action",
                "abc",
                "--database-url",
                &migrated.url,
            ],
            2,
            "tombstone: --action takes",
        ),
        (
            vec!["restore", "zz", "--database-url", &migrated.url],
            2,
            "tombstone: \"zz\" is not an operation id",
        ),
        (
            vec!["trash", "--since", "bogus", "--database-url", &migrated.url],
            2,
            "tombstone: --since \"bogus\"",
        ),
    ];
    for (args, code, said) in cases {
        let r = tombstone_in(dir.path(), &args, &[]);
        assert_eq!(r.code, Some(code), "{args:?}:\n{}{}", r.out, r.err);
        assert!(r.err.contains(said), "{args:?}: {}", r.err);
        if code != 0 && !args.is_empty() && !said.is_empty() {
            one_prefix(&r.err);
        }
    }
}
