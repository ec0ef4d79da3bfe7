//! `tombstone doctor` and `tombstone migrate --fix` on the scenario
//! schema: doctor names `task_tags` and the non-partial `categories.name`
//! unique index, migrate fixes them (idempotently), doctor is then clean;
//! views and functions over protected tables are named.

mod common;

use std::process::Command;

use common::{TestDb, run};

fn tombstone(args: &[&str]) -> (bool, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_tombstone")).args(args))
}

#[tokio::test]
async fn doctor_reports_migrate_fixes_doctor_is_clean() {
    let db = TestDb::create("ops_doctor", 1);
    let url = db.url.as_str();
    let (ok, out, _) = tombstone(&["doctor", "--database-url", url]);
    assert!(!ok, "doctor must fail on the raw scenario:\n{out}");
    assert!(out.contains("public.tasks (deleted_at)"), "{out}");
    assert!(
        out.contains("└─ cascade public.time_entries (task_id)"),
        "{out}"
    );
    assert!(
        out.contains(
            "public.task_tags has no soft-delete column but public.tasks cascades into it"
        ),
        "{out}"
    );
    assert!(
        out.contains("public.categories: unique index categories_name_key is not partial"),
        "{out}"
    );
    assert!(
        out.contains("foreign key tasks_assignee_id_fkey (assignee_id) has no index"),
        "{out}"
    );
    assert!(out.contains("tombstone schema is missing"), "{out}");

    // --tables limits the fixes.
    let (ok, out, err) = tombstone(&["migrate", "--tables", "categories", "--database-url", url]);
    assert!(ok, "{err}");
    assert!(
        out.contains("DROP CONSTRAINT \"categories_name_key\""),
        "{out}"
    );
    assert!(!out.contains("task_tags"), "{out}");
    // Without --fix, the application's tables are left alone.
    let (ok, out, err) = tombstone(&["migrate", "--database-url", url]);
    assert!(ok);
    assert!(!out.contains("schema fixes"), "{out}");
    assert!(err.contains("--fix"), "{err}");

    let (ok, out, err) = tombstone(&["migrate", "--fix", "--apply", "--database-url", url]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = tombstone(&["doctor", "--database-url", url]);
    assert!(ok, "doctor after migrate:\n{out}");
    assert!(out.contains("Nothing needs fixing."), "{out}");
    assert!(out.contains("public.task_tags (deleted_at)"), "{out}");

    // What migrate did: task_tags is protected and guarded; a deleted
    // category's name can be used again.
    let client = db.connect().await;
    let guarded: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'task_tags'::regclass AND tgname = 'tombstone_guard_delete'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(guarded, 1);
    client
        .batch_execute(
            "UPDATE categories SET deleted_at = now() WHERE name = 'marketing';
             INSERT INTO categories (name) VALUES ('marketing');",
        )
        .await
        .unwrap();

    // Idempotent: nothing left to fix, and applying again changes nothing.
    let (ok, out, _) = tombstone(&["migrate", "--fix", "--database-url", url]);
    assert!(ok);
    assert!(!out.contains("schema fixes"), "{out}");
    let (ok, _, err) = tombstone(&["migrate", "--fix", "--apply", "--database-url", url]);
    assert!(ok, "{err}");

    // Views and functions over protected tables are named.
    client
        .batch_execute(
            "CREATE VIEW open_tasks AS SELECT id, title FROM tasks WHERE NOT done;
             CREATE FUNCTION wipe_comments(t bigint) RETURNS void LANGUAGE sql AS
               'DELETE FROM public.comments WHERE task_id = t';
             CREATE FUNCTION harmless() RETURNS int LANGUAGE sql AS 'SELECT 1';",
        )
        .await
        .unwrap();
    let (ok, out, _) = tombstone(&["doctor", "--database-url", url]);
    assert!(!ok);
    assert!(
        out.contains("view public.open_tasks reads protected table public.tasks"),
        "{out}"
    );
    assert!(
        out.contains(
            "function public.wipe_comments(t bigint) deletes from protected table public.comments"
        ),
        "{out}"
    );
    assert!(!out.contains("harmless"), "{out}");
}
