//! `tombstone undo` (SPEC A5): a transaction's inserts, updates and soft
//! deletes reverted from the audit trail in one step, refused with every
//! conflict listed when a row changed again afterwards (unless --force).

mod common;

use common::protected::Protected;
use common::{sqlstate, tombstone};
use tokio_postgres::Client;

/// Live rows of the tables the transactions touch, soft-delete columns
/// left out (a reverted insert goes to the trash).
async fn live(direct: &Client) -> String {
    direct
        .query_one(
            "SELECT md5(concat(
               (SELECT string_agg(format('%s %s %s %s', id, team_id, name, category_id), ',' ORDER BY id) FROM projects WHERE deleted_at IS NULL),
               (SELECT string_agg(format('%s %s %s %s %s', id, project_id, assignee_id, title, done), ',' ORDER BY id) FROM tasks WHERE deleted_at IS NULL),
               (SELECT string_agg(format('%s %s %s', id, task_id, body), ',' ORDER BY id) FROM comments WHERE deleted_at IS NULL)))",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn last_xact(direct: &Client) -> String {
    direct
        .query_one(
            "SELECT xact_id::text FROM tombstone.audit ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_transaction_is_undone_in_one_step_and_conflicts_refuse() {
    let p = Protected::start("ops_undo", 2, "");
    let direct = p.db.connect().await;
    let app = p.connect_as(&p.app).await;
    let url = p.db.url.clone();

    let before = live(&direct).await;
    // Several updates of one row (pgMemento #110, #81), an update of
    // another, an insert of a parent and its child, an update of the row
    // it inserted, and a soft delete with its cascade.
    app.batch_execute(
        "BEGIN;
         UPDATE tasks SET title = 'first' WHERE id = 1;
         UPDATE tasks SET title = 'second', done = NOT done WHERE id = 1;
         UPDATE tasks SET done = NOT done WHERE id = 2;
         INSERT INTO projects (id, name) VALUES (9001, 'new');
         INSERT INTO tasks (id, project_id, title) VALUES (90001, 9001, 'new task');
         UPDATE tasks SET title = 'renamed' WHERE id = 90001;
         DELETE FROM tasks WHERE id = 3;
         COMMIT;",
    )
    .await
    .unwrap();
    let xact = last_xact(&direct).await;
    let after = live(&direct).await;
    assert_ne!(after, before);

    // The preview changes nothing.
    let (ok, out, err) = tombstone(&["undo", &xact, "--dry-run", "--database-url", &url]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("would undo transaction {xact}")),
        "{out}"
    );
    assert!(out.contains("its soft deletes"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("public.tasks") && l.contains(" 2  rows set back")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("public.projects") && l.contains(" 1  rows it inserted")),
        "{out}"
    );
    assert_eq!(live(&direct).await, after);

    let (ok, out, err) = tombstone(&["undo", &xact, "--actor", "alice", "--database-url", &url]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("undid transaction {xact}")), "{out}");
    assert_eq!(live(&direct).await, before, "{out}");
    // Audited, as alice; the inserted rows are in the trash, not gone.
    let by_alice: i64 = direct
        .query_one(
            "SELECT count(*) FROM tombstone.audit WHERE actor = 'alice'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(by_alice >= 4, "{by_alice}");
    let trashed: i64 = direct
        .query_one(
            "SELECT count(*) FROM projects WHERE id = 9001 AND deleted_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(trashed, 1);

    // A row changed again afterwards: refused with the list, nothing
    // changed; --force reverts it.
    app.batch_execute("UPDATE tasks SET title = 'by A' WHERE id = 5")
        .await
        .unwrap();
    let a = last_xact(&direct).await;
    app.batch_execute("UPDATE tasks SET title = 'by B' WHERE id = 5")
        .await
        .unwrap();
    let b = last_xact(&direct).await;
    let (ok, out, err) = tombstone(&["undo", &a, "--database-url", &url]);
    assert!(!ok, "{out}{err}");
    assert!(err.contains("1 conflict"), "{err}");
    assert!(
        err.contains(&format!(
            r#"public.tasks {{"id": 5}} changed again by transaction {b}"#
        )),
        "{err}"
    );
    assert!(!err.contains("tombstone: tombstone:"), "{err}");
    let title: String = direct
        .query_one("SELECT title FROM tasks WHERE id = 5", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(title, "by B");
    let (ok, out, err) = tombstone(&["undo", &a, "--dry-run", "--database-url", &url]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("1 conflict (undo refuses them without --force)"),
        "{out}"
    );
    let (ok, out, err) = tombstone(&["undo", &a, "--force", "--database-url", &url]);
    assert!(ok, "{out}{err}");
    let title: String = direct
        .query_one("SELECT title FROM tasks WHERE id = 5", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(title, "by A");
    assert_ne!(title, "by B");

    // A row the transaction inserted that a later one references.
    app.batch_execute("INSERT INTO projects (id, name) VALUES (9002, 'p2')")
        .await
        .unwrap();
    let c = last_xact(&direct).await;
    app.batch_execute("INSERT INTO tasks (project_id, title) VALUES (9002, 't')")
        .await
        .unwrap();
    let (ok, out, err) = tombstone(&["undo", &c, "--database-url", &url]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains(
            "public.projects: 1 rows it inserted are referenced by live rows of public.tasks"
        ),
        "{err}"
    );

    // Not a transaction id; one that changed nothing.
    let (ok, _, err) = tombstone(&["undo", "abc", "--database-url", &url]);
    assert!(!ok);
    assert!(err.contains("is not a transaction id"), "{err}");
    let (ok, _, err) = tombstone(&["undo", "3", "--database-url", &url]);
    assert!(!ok);
    assert!(
        err.contains("changed nothing the audit trail recorded"),
        "{err}"
    );

    // Through the proxy: a bypass session may, a normal one may not.
    let admin = p.connect_as(&p.admin).await;
    admin
        .query_one("SELECT tombstone.undo($1::text::xid8, false, true)", &[&c])
        .await
        .unwrap();
    let e = app
        .query_one("SELECT tombstone.undo($1::text::xid8)", &[&c])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
}
