//! The proxy's decisions cannot be steered (SPEC S3) and one client cannot
//! stall another (S5), through a running proxy: the rewrite cache never
//! turns a refusal into a pass, `search_path` is the server's (re-read
//! after anything that may change it, or names are refused), functions
//! that run SQL text are refused, column alias lists keep the predicate,
//! and huge statements parse off the async workers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::protected::Protected;
use common::{count, sqlstate};
use tokio_postgres::Client;

/// `SELECT count(*)` in the simple protocol too (a different code path).
async fn simple_count(client: &Client, sql: &str) -> Result<String, String> {
    match client.simple_query(sql).await {
        Ok(rows) => rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .ok_or_else(|| "no row".to_string()),
        Err(e) => Err(sqlstate(&e)),
    }
}

async fn refused(client: &Client, sql: &str, state: &str) {
    match client.batch_execute(sql).await {
        Ok(()) => panic!("{sql} was accepted"),
        Err(e) => assert_eq!(sqlstate(&e), state, "{sql}: {e:?}"),
    }
}

#[tokio::test]
async fn a_cached_pass_never_serves_another_do_block_or_session() {
    let p = Protected::start("dec_cache", 1, "");
    let app = p.connect_as(&p.app).await;
    let other = p.connect_as(&p.app).await;
    for _ in 0..3 {
        app.batch_execute("DO $$BEGIN EXECUTE 'SELECT 1'; END$$")
            .await
            .unwrap();
    }
    for client in [&app, &other] {
        refused(
            client,
            "DO $$BEGIN PERFORM count(*) FROM projects; END$$",
            "42501",
        )
        .await;
        refused(client, "DO $$BEGIN DELETE FROM tasks; END$$", "42501").await;
        refused(
            client,
            "SELECT set_config('tombstone.client_addr', '6.6.6.6', false)",
            "42501",
        )
        .await;
    }
    // A bypass session's cached statement never serves a normal one.
    let admin = p.connect_as(&p.admin).await;
    app.batch_execute("DELETE FROM projects WHERE id = 1")
        .await
        .unwrap();
    let q = "SELECT count(*) FROM projects WHERE id = 1";
    assert_eq!(simple_count(&admin, q).await, Ok("1".into()));
    assert_eq!(simple_count(&app, q).await, Ok("0".into()));
    let q2 = "SELECT count(*) FROM projects WHERE id = 2";
    assert_eq!(simple_count(&admin, q2).await, Ok("0".into()));
    assert_eq!(
        simple_count(&app, "SELECT count(*) FROM projects WHERE id = 1").await,
        Ok("0".into())
    );
}

/// public.projects is protected, billing.projects is a plain table of
/// three rows: a name resolved in the wrong schema shows deleted projects
/// or fails.
async fn drift_setup(p: &Protected) -> (Client, i64) {
    let direct = common::connect(&p.db.url).await;
    direct
        .batch_execute(&format!(
            "CREATE TABLE billing.projects (id bigint PRIMARY KEY, name text);
             INSERT INTO billing.projects VALUES (1, 'a'), (2, 'b'), (3, 'c');
             GRANT SELECT ON billing.projects TO \"{app}\";
             CREATE FUNCTION public.in_billing() RETURNS int LANGUAGE sql
               SET search_path = billing AS $$SELECT count(*)::int FROM projects$$;
             GRANT EXECUTE ON FUNCTION public.in_billing() TO \"{app}\";
             CREATE FUNCTION public.go_billing() RETURNS text LANGUAGE sql
               AS $$SELECT set_config('search_path', 'billing', false)$$;
             GRANT EXECUTE ON FUNCTION public.go_billing() TO \"{app}\";",
            app = p.app
        ))
        .await
        .unwrap();
    let app = p.connect_as(&p.app).await;
    app.batch_execute("DELETE FROM projects WHERE id IN (1, 2)")
        .await
        .unwrap();
    let live = count(
        &direct,
        "SELECT count(*) FROM public.projects WHERE deleted_at IS NULL",
    )
    .await;
    assert!(live > 0);
    // Let the snapshot learn about billing.projects (an unknown table is
    // an unprotected one, so this is not needed for correctness).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    (app, live)
}

#[tokio::test]
async fn search_path_follows_the_server_through_every_drift() {
    let p = Protected::start("dec_path", 4, "");
    let (app, live) = drift_setup(&p).await;
    let live = live.to_string();
    let billing = "3".to_string();
    let q = "SELECT count(*) FROM projects";
    let cases: &[(&[&str], &String)] = &[
        (&["BEGIN; SET search_path = billing; ROLLBACK"], &live),
        (&["BEGIN", "SET search_path = billing", "ROLLBACK"], &live),
        (&["BEGIN; SET search_path = billing; COMMIT"], &billing),
        (&["RESET search_path"], &live),
        // SET in a transaction that then fails: undone by the rollback.
        (&["BEGIN", "SET search_path = billing", "SELECT 1/0"], &live),
        (&["BEGIN", "SELECT 1/0", "SET search_path = billing"], &live),
        (
            &[
                "BEGIN",
                "SAVEPOINT s",
                "SET search_path = billing",
                "ROLLBACK TO s",
                "COMMIT",
            ],
            &live,
        ),
        (
            &["BEGIN", "SET LOCAL search_path = billing", "COMMIT"],
            &live,
        ),
        (
            &["SELECT set_config('search_path', 'bil' || 'ling', false)"],
            &billing,
        ),
        (
            &["SELECT set_config('search_path', (SELECT 'public'), false)"],
            &live,
        ),
        (
            &[
                "SELECT set_config('search_path', 'billing', false) FROM pg_catalog.pg_class WHERE false",
            ],
            &live,
        ),
        (
            &["DO $$BEGIN PERFORM set_config('search_path', 'billing', false); END$$"],
            &billing,
        ),
        (
            &["DO $$BEGIN EXECUTE 'SET search_path = ' || 'public'; END$$"],
            &live,
        ),
        (&["SET search_path = billing", "DISCARD ALL"], &live),
        (&["SET search_path = billing", "RESET ALL"], &live),
        // A function's own SET clause ends with the function.
        (&["SELECT public.in_billing()"], &live),
        // A user-defined function that sets it for the session.
        (&["SELECT public.go_billing()"], &billing),
        (&["SELECT 1 WHERE go_billing() IS NOT NULL"], &billing),
        (
            &[
                "PREPARE go AS SELECT set_config('search_path', 'billing', false)",
                "EXECUTE go",
            ],
            &billing,
        ),
        (&["DEALLOCATE ALL", "RESET search_path"], &live),
    ];
    for (steps, expected) in cases {
        for step in *steps {
            // Errors are part of some cases (the division, the aborted
            // transaction's SET).
            let _ = app.batch_execute(step).await;
        }
        // Leave any failed transaction, as an application would.
        let _ = app.batch_execute("ROLLBACK").await;
        assert_eq!(
            simple_count(&app, q).await.as_ref(),
            Ok(*expected),
            "after {steps:?}"
        );
        assert_eq!(
            count(&app, q).await.to_string(),
            **expected,
            "after {steps:?} (extended)"
        );
        let _ = app.batch_execute("RESET search_path").await;
    }

    // A protocol-level Parse of a SET that is never executed changes
    // nothing.
    let unexecuted = app.prepare("SET search_path = billing").await.unwrap();
    assert_eq!(simple_count(&app, q).await, Ok(live.clone()));
    // … and executing it later does.
    app.execute(&unexecuted, &[]).await.unwrap();
    assert_eq!(simple_count(&app, q).await, Ok(billing.clone()));
    app.batch_execute("RESET search_path").await.unwrap();

    // Inside one string: a change the rewriter cannot follow makes later
    // names of protected tables refused rather than guessed.
    assert_eq!(
        simple_count(
            &app,
            "SELECT set_config('search_path', 'billing', false); SELECT count(*) FROM projects"
        )
        .await,
        Err("42501".to_string())
    );
    app.batch_execute("RESET search_path").await.unwrap();
    // A temporary table shadows the permanent one, as in PostgreSQL
    // (`temporary_tables_shadow_protected_ones` has the rest).
    app.batch_execute("CREATE TEMP TABLE projects (id bigint)")
        .await
        .unwrap();
    assert_eq!(simple_count(&app, q).await, Ok("0".into()));
    app.batch_execute("DROP TABLE pg_temp.projects")
        .await
        .unwrap();
    assert_eq!(simple_count(&app, q).await, Ok(live.clone()));
}

/// Both protocols give `expected` for `sql`.
async fn counts(app: &Client, sql: &str, expected: i64, after: &str) {
    assert_eq!(
        simple_count(app, sql).await,
        Ok(expected.to_string()),
        "{sql} after {after}"
    );
    assert_eq!(
        count(app, sql).await,
        expected,
        "{sql} after {after} (extended)"
    );
}

#[tokio::test]
async fn temporary_tables_shadow_protected_ones() {
    let p = Protected::start("dec_temp", 4, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    app.batch_execute("DELETE FROM projects WHERE id = 2")
        .await
        .unwrap();
    let live = |table: &'static str| {
        let direct = &direct;
        async move {
            count(
                direct,
                &format!("SELECT count(*) FROM public.{table} WHERE deleted_at IS NULL"),
            )
            .await
        }
    };
    let (live_projects, live_tasks) = (live("projects").await, live("tasks").await);
    let all_tasks = count(&direct, "SELECT count(*) FROM public.tasks").await;
    assert!(live_tasks > 0 && all_tasks > live_tasks);
    let projects = "SELECT count(*) FROM projects";
    let tasks = "SELECT count(*) FROM tasks";

    // The session's own table: no predicate, a real DELETE of its row.
    app.batch_execute("CREATE TEMP TABLE tasks (id bigint, title text)")
        .await
        .unwrap();
    app.batch_execute("INSERT INTO tasks VALUES (2, 'mine')")
        .await
        .unwrap();
    let row = app
        .query_one("SELECT title FROM tasks WHERE id = 2", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "mine");
    assert_eq!(
        simple_count(&app, "SELECT title FROM tasks WHERE id = 2").await,
        Ok("mine".into())
    );
    assert_eq!(
        app.execute("DELETE FROM tasks WHERE id = 2", &[])
            .await
            .unwrap(),
        1
    );
    counts(&app, tasks, 0, "DELETE of the temporary row").await;
    counts(
        &app,
        "SELECT count(*) FROM public.tasks",
        live_tasks,
        "temp",
    )
    .await;
    assert_eq!(
        count(&direct, "SELECT count(*) FROM public.tasks").await,
        all_tasks
    );
    // Dropped: the protected table again.
    app.batch_execute("DROP TABLE tasks").await.unwrap();
    counts(&app, tasks, live_tasks, "DROP TABLE tasks").await;

    // Dropped inside a DO block the rewriter cannot read.
    app.batch_execute("CREATE TEMP TABLE projects (id bigint, name text)")
        .await
        .unwrap();
    counts(&app, projects, 0, "CREATE TEMP TABLE projects").await;
    refused(
        &app,
        "DO $$BEGIN DROP TABLE pg_temp.projects; END$$",
        "42501",
    )
    .await;
    counts(&app, projects, 0, "a refused DO").await;
    app.batch_execute("DO $$BEGIN EXECUTE 'DROP TABLE pg_temp.proj' || 'ects'; END$$")
        .await
        .unwrap();
    counts(&app, projects, live_projects, "DROP in DO").await;
    assert_eq!(
        simple_count(&app, "SELECT name FROM projects WHERE id = 2").await,
        Err("no row".into())
    );

    // ON COMMIT DROP, and a rolled-back CREATE.
    for end in ["COMMIT", "ROLLBACK"] {
        app.batch_execute("BEGIN").await.unwrap();
        app.batch_execute("CREATE TEMP TABLE projects (id bigint, name text) ON COMMIT DROP")
            .await
            .unwrap();
        assert_eq!(simple_count(&app, projects).await, Ok("0".into()), "{end}");
        app.batch_execute(end).await.unwrap();
        counts(&app, projects, live_projects, end).await;
    }
    // DISCARD TEMP.
    app.batch_execute("CREATE TEMP TABLE projects (id bigint)")
        .await
        .unwrap();
    counts(&app, projects, 0, "CREATE").await;
    app.batch_execute("DISCARD TEMP").await.unwrap();
    counts(&app, projects, live_projects, "DISCARD TEMP").await;

    // A temporary table of another name disables nothing.
    app.batch_execute("CREATE TEMP TABLE scratch (id int)")
        .await
        .unwrap();
    counts(&app, projects, live_projects, "CREATE TEMP TABLE scratch").await;
    counts(&app, tasks, live_tasks, "CREATE TEMP TABLE scratch").await;
    app.batch_execute("DELETE FROM tasks WHERE project_id = 1 AND id = (SELECT min(id) FROM tasks WHERE project_id = 1)")
        .await
        .unwrap();
    assert_eq!(
        count(&direct, "SELECT count(*) FROM public.tasks").await,
        all_tasks,
        "a soft delete"
    );
    let live_tasks = live("tasks").await;
    counts(&app, tasks, live_tasks, "the soft delete").await;
    // Renamed to a protected name, and dropped by a statement that does
    // not name it (a view on a dropped table).
    app.batch_execute("ALTER TABLE scratch RENAME TO projects")
        .await
        .unwrap();
    counts(&app, projects, 0, "RENAME").await;
    app.batch_execute("DROP TABLE pg_temp.projects; CREATE TEMP TABLE base (id int)")
        .await
        .unwrap();
    app.batch_execute("CREATE TEMP VIEW projects AS SELECT id FROM base")
        .await
        .unwrap();
    counts(&app, projects, 0, "CREATE TEMP VIEW").await;
    app.batch_execute("DROP TABLE base CASCADE").await.unwrap();
    counts(&app, projects, live_projects, "DROP … CASCADE").await;

    // pg_temp listed after public: the protected table comes first.
    app.batch_execute("SET search_path = public, pg_temp")
        .await
        .unwrap();
    app.batch_execute("CREATE TEMP TABLE tasks (id bigint)")
        .await
        .unwrap();
    counts(&app, tasks, live_tasks, "pg_temp listed last").await;
    counts(
        &app,
        "SELECT count(*) FROM pg_temp.tasks",
        0,
        "pg_temp.tasks",
    )
    .await;
    app.batch_execute("RESET search_path").await.unwrap();
    counts(&app, tasks, 0, "RESET search_path").await;
    // What a string does to its own later statements is not guessed.
    refused(
        &app,
        "DROP TABLE pg_temp.tasks; SELECT count(*) FROM tasks",
        "42501",
    )
    .await;
    refused(
        &app,
        "CREATE TEMP TABLE projects (id int); SELECT count(*) FROM projects",
        "42501",
    )
    .await;
    counts(&app, tasks, 0, "refused strings").await;
    counts(&app, projects, live_projects, "refused strings").await;
}

#[tokio::test]
async fn sql_text_functions_and_alias_lists() {
    let p = Protected::start("dec_fn", 2, "");
    let app = p.connect_as(&p.app).await;
    app.batch_execute("DELETE FROM tasks WHERE id = 2")
        .await
        .unwrap();
    for sql in [
        "SELECT query_to_xml('SELECT title FROM tasks', true, false, '')",
        "SELECT pg_catalog.query_to_xml('SELECT 1', true, false, '')",
        "SELECT \"query_to_xml\"('SELECT 1', true, false, '')",
        "SELECT QUERY_TO_XML(convert_from(decode('53454c4543542031', 'hex'), 'UTF8'), true, false, '')",
        "SELECT table_to_xml('tasks', true, false, '')",
        "SELECT schema_to_xml('public', true, false, '')",
        "SELECT database_to_xml(true, false, '')",
    ] {
        refused(&app, sql, "42501").await;
        let e = app.query(sql, &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql} (extended)");
    }
    // Bypass sessions may.
    let admin = p.connect_as(&p.admin).await;
    admin
        .batch_execute("SELECT query_to_xml('SELECT 1', true, false, '')")
        .await
        .unwrap();

    // Alias lists: the deleted task stays hidden, by whatever name.
    let direct = common::connect(&p.db.url).await;
    let live = count(
        &direct,
        "SELECT count(*) FROM tasks WHERE deleted_at IS NULL AND id = 2",
    )
    .await;
    assert_eq!(live, 0);
    for sql in [
        "SELECT count(*) FROM tasks AS t(id, project_id, deleted_at, title) WHERE t.id = 2",
        "SELECT count(*) FROM tasks t(a, b, c, d, e, gone) WHERE a = 2",
        "SELECT count(*) FROM projects p JOIN tasks t(a, b, c, d, e, f) ON t.b = p.id WHERE t.a = 2",
        "SELECT count(*) FROM projects p LEFT JOIN tasks t(a, b, c, d, e, f) ON t.b = p.id AND t.a = 2 WHERE t.a IS NOT NULL",
    ] {
        assert_eq!(simple_count(&app, sql).await, Ok("0".into()), "{sql}");
    }
}

/// Four sessions keep the one parser thread busy with 100,000-element `IN`
/// lists; another session's `SELECT 1` is answered while they are still
/// being parsed.
#[tokio::test]
async fn huge_statements_parse_while_other_sessions_are_served() {
    let p = Protected::start("dec_pool", 1, "\n[parser]\nthreads = 1\nqueue = 2\n");
    let ids: Vec<String> = (1..=100_000).map(|i| i.to_string()).collect();
    let huge = Arc::new(format!(
        "SELECT count(*) FROM tasks WHERE id IN ({})",
        ids.join(", ")
    ));
    let done = Arc::new(AtomicUsize::new(0));
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let client = p.connect_as(&p.app).await;
        let huge = huge.clone();
        let done = done.clone();
        sessions.push(tokio::spawn(async move {
            let r = client.simple_query(&huge).await.map(|_| ());
            done.fetch_add(1, Ordering::SeqCst);
            r
        }));
    }
    let other = p.connect_as(&p.app).await;
    // Give the four statements time to reach the proxy.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..20 {
        assert_eq!(simple_count(&other, "SELECT 1").await, Ok("1".into()));
    }
    // With one parser thread the four take turns (each parse takes
    // seconds in a debug build): none may have finished yet. When parses
    // ran on the async workers, `SELECT 1` waited for at least one.
    let finished = done.load(Ordering::SeqCst);
    assert_eq!(finished, 0, "SELECT 1 waited for a huge statement");
    for s in sessions {
        assert!(matches!(s.await, Ok(Ok(()))));
    }
    assert_eq!(done.load(Ordering::SeqCst), 4);
}

/// One protocol message: tag, length, body.
fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Parse, Bind, Describe, Execute, Sync of `sql` on the unnamed statement
/// and portal: what a driver sends for one statement.
fn extended_batch(sql: &str) -> Vec<u8> {
    let mut parse = cstr("");
    parse.extend_from_slice(&cstr(sql));
    parse.extend_from_slice(&0i16.to_be_bytes());
    let mut bind = cstr("");
    bind.extend_from_slice(&cstr(""));
    bind.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut execute = cstr("");
    execute.extend_from_slice(&0i32.to_be_bytes());
    [
        message(b'P', &parse),
        message(b'B', &bind),
        message(b'D', b"P\0"),
        message(b'E', &execute),
        message(b'S', b""),
    ]
    .concat()
}

/// A raw session as `role` through the proxy, after its ReadyForQuery.
async fn raw_session(p: &Protected, role: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(p.proxy.addr())
        .await
        .unwrap();
    let mut body = 196608i32.to_be_bytes().to_vec();
    for (k, v) in [("user", role), ("database", p.db.name.as_str())] {
        body.extend_from_slice(&cstr(k));
        body.extend_from_slice(&cstr(v));
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    s.write_all(&packet).await.unwrap();
    let greeting = read_replies(&mut s, 1).await;
    assert!(
        greeting.iter().all(|(t, _)| *t != b'E'),
        "startup failed: {greeting:?}"
    );
    s
}

/// Server messages up to and including the `readies`-th ReadyForQuery;
/// panics if they do not come within 10 s (the proxy hangs).
async fn read_replies(s: &mut tokio::net::TcpStream, readies: usize) -> Vec<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut out = Vec::new();
        let mut seen = 0;
        while seen < readies {
            let mut head = [0u8; 5];
            s.read_exact(&mut head).await?;
            let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0u8; len.saturating_sub(4)];
            s.read_exact(&mut body).await?;
            seen += usize::from(head[0] == b'Z');
            out.push((head[0], body));
        }
        Ok::<_, std::io::Error>(out)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), read).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("no answer within 10 s: the proxy hangs"),
    }
}

/// The SQLSTATE of an ErrorResponse body.
fn error_code(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"C"))
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
}

/// The replies split at each ReadyForQuery: per batch, its error codes
/// and its command tags.
fn per_batch(replies: &[(u8, Vec<u8>)]) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = vec![(Vec::new(), Vec::new())];
    for (tag, body) in replies {
        let last = out.len() - 1;
        match tag {
            b'E' => out[last].0.push(error_code(body)),
            b'C' => out[last]
                .1
                .push(String::from_utf8_lossy(body.strip_suffix(b"\0").unwrap_or(body)).into()),
            b'Z' => out.push((Vec::new(), Vec::new())),
            _ => {}
        }
    }
    out.pop();
    out
}

/// Whatever a client pipelines — extended-protocol batches or simple
/// queries, in one write, after an error, in an aborted transaction — the
/// proxy's own question about `search_path` comes after the server has
/// *received* everything before it: it never waits for answers to
/// messages it has not yet passed on (they sat in its write buffer while
/// it waited: a hang).
#[tokio::test]
async fn search_path_question_never_waits_for_unsent_messages() {
    use tokio::io::AsyncWriteExt;
    let p = Protected::start("dec_pipe", 4, "");
    let (_app, _) = drift_setup(&p).await;
    let mut s = raw_session(&p, &p.app).await;
    let q = "SELECT name FROM projects WHERE id = 2";
    for round in 0..20 {
        // The adversarial case "SET in an aborted transaction", each
        // statement its own batch, all in one write.
        let steps = [
            "BEGIN",
            "SELECT 1 / 0",
            "SET search_path = billing",
            "ROLLBACK",
            q,
        ];
        let pipeline: Vec<u8> = steps.iter().flat_map(|sql| extended_batch(sql)).collect();
        s.write_all(&pipeline).await.unwrap();
        let batches = per_batch(&read_replies(&mut s, steps.len()).await);
        assert_eq!(batches[1].0, ["22012"], "round {round}: {batches:?}");
        assert_eq!(batches[2].0, ["25P02"], "round {round}: {batches:?}");
        assert_eq!(batches[3], (vec![], vec!["ROLLBACK".into()]));
        // public.projects 2 is deleted; billing.projects 2 would be 'b'.
        assert_eq!(
            batches[4],
            (vec![], vec!["SELECT 0".into()]),
            "round {round}"
        );

        // The same in the simple protocol: a SET and a query naming a
        // protected table, pipelined.
        let simple = [
            message(b'Q', &cstr("SET search_path = billing")),
            message(b'Q', &cstr("RESET search_path")),
            message(b'Q', &cstr(q)),
        ]
        .concat();
        s.write_all(&simple).await.unwrap();
        let batches = per_batch(&read_replies(&mut s, 3).await);
        assert_eq!(
            batches[2],
            (vec![], vec!["SELECT 0".into()]),
            "round {round}"
        );

        // A change, then a failed transaction, then the question: the
        // path cannot be asked, so the name is refused (or the server
        // refuses everything) — still an answer.
        let failed: Vec<u8> = [
            "SET search_path = billing",
            "BEGIN",
            "SELECT 1 / 0",
            q,
            "ROLLBACK",
            "RESET search_path",
        ]
        .iter()
        .flat_map(|sql| extended_batch(sql))
        .collect();
        s.write_all(&failed).await.unwrap();
        let batches = per_batch(&read_replies(&mut s, 6).await);
        assert!(
            matches!(batches[3].0.as_slice(), [c] if c == "42501" || c == "25P02"),
            "round {round}: {batches:?}"
        );
        assert_eq!(batches[5], (vec![], vec!["RESET".into()]), "round {round}");
    }
}
