//! Retention purge, the hard-delete guard and erase: rows soft-deleted
//! longer ago than the retention go (children first, in batches, audited,
//! resumable), newer ones stay; only purge and erase get past the guard;
//! erase removes a record and its cascade and redacts their audit rows.

mod common;

use std::time::{Duration, Instant};

use common::protected::Protected;
use common::{count, sqlstate, tombstone};
use tokio_postgres::Client;

/// Rows of project `p` (and its tasks, documents) still in the tables.
async fn project_rows(direct: &Client, p: i64) -> i64 {
    count(
        direct,
        &format!(
            "SELECT (SELECT count(*) FROM projects WHERE id = {p})
                  + (SELECT count(*) FROM project_members WHERE project_id = {p})
                  + (SELECT count(*) FROM tasks WHERE project_id = {p})
                  + (SELECT count(*) FROM comments c JOIN tasks t ON t.id = c.task_id WHERE t.project_id = {p})
                  + (SELECT count(*) FROM attachments a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = {p})
                  + (SELECT count(*) FROM time_entries e JOIN tasks t ON t.id = e.task_id WHERE t.project_id = {p})
                  + (SELECT count(*) FROM documents WHERE project_id = {p})
                  + (SELECT count(*) FROM document_versions v JOIN documents d ON d.id = v.document_id
                      WHERE d.project_id = {p})
                  + (SELECT count(*) FROM billing.invoices WHERE project_id = {p})"
        ),
    )
    .await
}

#[tokio::test]
async fn purge_removes_old_soft_deletes_children_first_and_resumes() {
    let p = Protected::start("ops_purge", 3, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    app.batch_execute("DELETE FROM projects WHERE id = 1; DELETE FROM projects WHERE id = 2")
        .await
        .unwrap();
    common::backdate_project(&direct, 40, 1).await;
    common::backdate_project(&direct, 10, 2).await;
    assert_eq!(project_rows(&direct, 1).await, 3122);

    // Dry run: counts, deletes nothing.
    let (ok, out, err) = tombstone(&["purge", "--dry-run", "--database-url", &p.db.url]);
    assert!(ok, "{err}");
    assert!(
        out.contains("public.comments") && out.contains("2000"),
        "{out}"
    );
    assert_eq!(project_rows(&direct, 1).await, 3122);

    // Interrupted after a few batches of 500 …
    let (ok, out, err) = tombstone(&[
        "purge",
        "--batch-size",
        "500",
        "--max-batches",
        "3",
        "--database-url",
        &p.db.url,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("run again"), "{out}");
    let left = project_rows(&direct, 1).await;
    assert!(left < 3122 && left > 0, "{left}");
    // Children before parents: the project is still there, with its tasks.
    assert_eq!(
        count(&direct, "SELECT count(*) FROM projects WHERE id = 1").await,
        1
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM tasks WHERE project_id = 1").await,
        500
    );
    // … and resumed.
    let (ok, out, err) = tombstone(&["purge", "--batch-size", "500", "--database-url", &p.db.url]);
    assert!(ok, "{err}");
    assert!(out.contains("purged"), "{out}");
    assert_eq!(project_rows(&direct, 1).await, 0);
    // Unprotected rows referencing purged ones followed their FK (CASCADE).
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM task_tags tt WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = tt.task_id)"
        )
        .await,
        0
    );
    // Newer soft deletes and live rows are untouched.
    assert_eq!(project_rows(&direct, 2).await, 3122);
    assert_eq!(project_rows(&direct, 3).await, 3122);
    // Audited, one row per purged row, with the operation id.
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM tombstone.audit WHERE action = 'purge' AND op_id IS NOT NULL"
        )
        .await,
        3122
    );
    // The operation is gone from the trash; project 2's is still there.
    let (_, out, _) = tombstone(&["trash", "--format", "json", "--database-url", &p.db.url]);
    let trash: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(trash.as_array().map(|a| a.len()), Some(1), "{out}");
    assert_eq!(trash[0]["keys"], serde_json::json!([{"id": 2}]));

    // A second run finds nothing.
    let (ok, out, _) = tombstone(&["purge", "--database-url", &p.db.url]);
    assert!(ok);
    assert!(out.contains("nothing to purge"), "{out}");

    // A per-table retention: comments kept 5 days go; the rest of project 2 stays.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[retention]\nkeep = \"30days\"\n[retention.tables.\"public.comments\"]\nkeep = \"5days\"\n",
    )
    .unwrap();
    let (ok, _, err) = tombstone(&[
        "purge",
        "--config",
        rules.to_str().unwrap(),
        "--database-url",
        &p.db.url,
    ]);
    assert!(ok, "{err}");
    assert_eq!(project_rows(&direct, 2).await, 3122 - 2000);
}

#[tokio::test]
async fn guard_refuses_physical_deletes_outside_purge_and_erase() {
    let p = Protected::start("ops_guard", 2, "");
    let direct = common::connect(&p.db.url).await;
    for sql in [
        "DELETE FROM projects WHERE id = 1",
        "DELETE FROM comments WHERE id = 1",
        "TRUNCATE tasks CASCADE",
    ] {
        let e = direct.batch_execute(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
        let message = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert!(message.contains("is refused"), "{message}");
    }
    // A forged grant does not help: it is stamped with the inserting role.
    let app = common::connect(&format!(
        "host=127.0.0.1 port={} user={} dbname={}",
        common::upstream_host_port().1,
        p.app,
        p.db.name
    ))
    .await;
    let forged = app
        .batch_execute(
            "BEGIN; INSERT INTO tombstone.hard_delete_grants (reason, actor) VALUES ('purge', 'me');
             DELETE FROM comments WHERE id = 1; COMMIT",
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&forged), "42501", "{forged:?}");
    assert_eq!(
        count(&direct, "SELECT count(*) FROM comments WHERE id = 1").await,
        1
    );

    // Purge still works (the guard lets it through).
    let app = p.connect_as(&p.app).await;
    app.execute("DELETE FROM comments WHERE id = 1", &[])
        .await
        .unwrap();
    direct
        .batch_execute("UPDATE comments SET deleted_at = now() - interval '31 days' WHERE id = 1")
        .await
        .unwrap();
    let (ok, out, err) = tombstone(&["purge", "--database-url", &p.db.url]);
    assert!(ok, "{err}");
    assert!(out.contains("public.comments"), "{out}");
    assert_eq!(
        count(&direct, "SELECT count(*) FROM comments WHERE id = 1").await,
        0
    );
}

#[tokio::test]
async fn erase_removes_the_record_and_its_cascade_and_redacts_their_audit() {
    let p = Protected::start("ops_erase", 2, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    // Audit rows with values, for project 2 and for project 1.
    app.batch_execute(
        "UPDATE tasks SET title = 'secret plan' WHERE id = (SELECT min(id) FROM tasks WHERE project_id = 2);
         UPDATE tasks SET title = 'public plan' WHERE id = (SELECT min(id) FROM tasks WHERE project_id = 1);
         DELETE FROM comments WHERE task_id = (SELECT min(id) FROM tasks WHERE project_id = 2)",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (ok, out, err) = tombstone(&[
        "erase",
        "--table",
        "projects",
        "--key",
        "{\"id\": 2}",
        "--actor",
        "dpo",
        "--database-url",
        &p.db.url,
    ]);
    let took = started.elapsed();
    assert!(ok, "{err}");
    assert!(
        out.contains("public.comments") && out.contains("2000"),
        "{out}"
    );
    eprintln!("erase of a 3,122-row project: {took:?}");
    assert!(took < Duration::from_secs(60));
    assert_eq!(project_rows(&direct, 2).await, 0);
    assert_eq!(project_rows(&direct, 1).await, 3122);
    // Redacted: no values left in any audit row of an erased row; who,
    // when, which table and key stay.
    let values: i64 = count(
        &direct,
        "SELECT count(*) FROM tombstone.audit WHERE (old_values::text LIKE '%secret plan%'
            OR new_values::text LIKE '%secret plan%' OR (table_name = 'comments' AND old_values IS NOT NULL))",
    )
    .await;
    assert_eq!(values, 0);
    let kept: i64 = count(
        &direct,
        "SELECT count(*) FROM tombstone.audit WHERE table_name = 'tasks' AND action = 'update'
            AND old_values IS NULL AND actor IS NOT NULL AND pk ? 'id'",
    )
    .await;
    assert_eq!(kept, 1);
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM tombstone.audit WHERE action = 'erase' AND actor = 'dpo'"
        )
        .await,
        3122
    );
    // Others intact.
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM tombstone.audit WHERE new_values ->> 'title' = 'public plan'"
        )
        .await,
        1
    );
    // A missing key is an error.
    let (ok, _, err) = tombstone(&[
        "erase",
        "--table",
        "projects",
        "--key",
        "{\"id\": 2}",
        "--database-url",
        &p.db.url,
    ]);
    assert!(!ok);
    assert!(err.contains("no row"), "{err}");
}

#[tokio::test]
async fn serve_purges_on_its_schedule() {
    let p = Protected::start(
        "ops_sched",
        1,
        "[retention]\npurge_interval = \"1s\"\npurge_batch_size = 5000\n",
    );
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    app.execute("DELETE FROM projects WHERE id = 1", &[])
        .await
        .unwrap();
    common::backdate_project(&direct, 31, 1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while project_rows(&direct, 1).await > 0 {
        assert!(Instant::now() < deadline, "not purged:\n{}", p.proxy.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
