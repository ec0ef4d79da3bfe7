//! Archive before purge and redaction on purge (issue 13 item 7), and the
//! purge's progress, summary and lock: `retention.archive` keeps exactly
//! the purged rows, with their operations, in `tombstone.archive` (bypass
//! roles only) or in JSON Lines files; a purge whose files cannot be
//! written deletes nothing it has not archived; `audit.redact_on_purge`
//! on, off and by default; children first and one purge at a time still.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::protected::Protected;
use common::{count, sqlstate, tombstone};
use serde_json::Value;
use tokio_postgres::Client;

/// Every protected table of the scenario (those with `deleted_at`).
async fn protected_tables(direct: &Client) -> Vec<String> {
    direct
        .query(
            "SELECT c.relnamespace::regnamespace::text || '.' || c.relname
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
              WHERE a.attname = 'deleted_at' AND c.relkind = 'r'
                AND c.relnamespace::regnamespace::text IN ('public', 'billing')
              ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Moves every soft delete of the last hour `days` days back.
async fn backdate(direct: &Client, days: i32) {
    for t in protected_tables(direct).await {
        direct
            .batch_execute(&format!(
                "UPDATE {t} SET deleted_at = deleted_at - interval '{days} days'
                  WHERE deleted_at > now() - interval '1 hour'"
            ))
            .await
            .unwrap();
    }
    direct
        .batch_execute(&format!(
            "UPDATE tombstone.operations SET created_at = created_at - interval '{days} days'
              WHERE created_at > now() - interval '1 hour'"
        ))
        .await
        .unwrap();
}

/// One archived (or to-be-archived) row, normalised for comparison:
/// table, key, the row's values, its operation.
type Archived = (String, String, String, String);

/// The rows a purge with a 30-day retention removes, with the operation
/// that soft-deleted each: what the archive must hold.
async fn expected(direct: &Client) -> BTreeSet<Archived> {
    let mut ops = std::collections::BTreeMap::new();
    for r in direct
        .query(
            "SELECT table_schema || '.' || table_name, pk::text, op_id::text
               FROM tombstone.operation_rows WHERE action = 'soft_delete'",
            &[],
        )
        .await
        .unwrap()
    {
        let key: Value = serde_json::from_str(r.get::<_, &str>(1)).unwrap();
        ops.insert(
            (r.get::<_, String>(0), key.to_string()),
            r.get::<_, String>(2),
        );
    }
    let mut out = BTreeSet::new();
    for t in protected_tables(direct).await {
        let rows = direct
            .query(
                &format!(
                    "SELECT to_jsonb(x)::text FROM {t} x WHERE x.deleted_at < now() - interval '30 days'"
                ),
                &[],
            )
            .await
            .unwrap();
        for r in rows {
            let row: Value = serde_json::from_str(r.get::<_, &str>(0)).unwrap();
            let key = key_of(&t, &row);
            let op = ops
                .get(&(t.clone(), key.clone()))
                .cloned()
                .unwrap_or_default();
            out.insert((t.clone(), key, row.to_string(), op));
        }
    }
    out
}

/// The scenario's primary keys, as tombstone records them.
fn key_of(table: &str, row: &Value) -> String {
    let cols: &[&str] = match table {
        "public.project_members" => &["project_id", "user_id"],
        _ => &["id"],
    };
    let mut key = serde_json::Map::new();
    for c in cols {
        key.insert((*c).to_string(), row[*c].clone());
    }
    Value::Object(key).to_string()
}

/// The archive table's rows, normalised like [`expected`].
async fn archive_table(direct: &Client) -> (i64, BTreeSet<Archived>) {
    let rows = direct
        .query(
            "SELECT table_schema || '.' || table_name, pk::text, row_values::text, coalesce(op_id::text, ''),
                    (deleted_at = (row_values ->> 'deleted_at')::timestamptz)
               FROM tombstone.archive",
            &[],
        )
        .await
        .unwrap();
    let mut out = BTreeSet::new();
    for r in &rows {
        assert!(r.get::<_, bool>(4), "deleted_at is the row's");
        let key: Value = serde_json::from_str(r.get::<_, &str>(1)).unwrap();
        let row: Value = serde_json::from_str(r.get::<_, &str>(2)).unwrap();
        out.insert((r.get(0), key.to_string(), row.to_string(), r.get(3)));
    }
    (rows.len() as i64, out)
}

/// The JSON Lines of every file in `dir`, normalised like [`expected`].
fn archive_files(dir: &Path) -> (i64, BTreeSet<Archived>) {
    let mut lines = 0;
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            lines += 1;
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["deleted_at"], v["row"]["deleted_at"], "{line}");
            assert!(v["purged_at"].is_string(), "{line}");
            out.insert((
                v["table"].as_str().unwrap_or_default().to_string(),
                v["key"].to_string(),
                v["row"].to_string(),
                v["operation"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    (lines, out)
}

fn rules(dir: &Path, toml: &str) -> String {
    let path = dir.join("rules.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn the_archive_table_holds_exactly_the_purged_rows_with_their_operations() {
    let p = Protected::start("pa_table", 3, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    app.batch_execute("DELETE FROM projects WHERE id = 1; DELETE FROM comments WHERE id IN (SELECT min(id) FROM comments WHERE deleted_at IS NULL)")
        .await
        .unwrap();
    backdate(&direct, 40).await;
    app.execute("DELETE FROM projects WHERE id = 2", &[])
        .await
        .unwrap();
    let want = expected(&direct).await;
    assert_eq!(want.len(), 3123);
    let ops: BTreeSet<&str> = want.iter().map(|w| w.3.as_str()).collect();
    assert_eq!(ops.len(), 2, "the project's operation and the comment's");
    assert!(!ops.contains(""), "every row has its operation");

    let dir = tempfile::tempdir().unwrap();
    let config = rules(dir.path(), "[retention.archive]\nto = \"table\"\n");
    let (ok, out, err) = tombstone(&[
        "purge",
        "--config",
        &config,
        "--batch-size",
        "700",
        "--format",
        "json",
        "--database-url",
        &p.db.url,
    ]);
    assert!(ok, "{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["rows"], 3123, "{out}");
    assert_eq!(summary["archived"], 3123, "{out}");
    assert!(
        summary["rows_per_second"].as_f64().unwrap_or(0.0) > 0.0,
        "{out}"
    );
    // Progress went to stderr (not a terminal: log lines), per table.
    assert!(
        err.contains("purge: public.comments") && err.contains("rows/s"),
        "{err}"
    );

    let (n, got) = archive_table(&direct).await;
    assert_eq!(n, 3123, "one archive row per purged row");
    assert_eq!(got, want);
    // The purged rows are gone, the newer delete stays, unarchived.
    assert_eq!(
        count(&direct, "SELECT count(*) FROM tasks WHERE project_id = 1").await,
        0
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM tasks WHERE project_id = 2").await,
        500
    );
    // Readable by a bypass role, not by the application.
    let admin = common::connect(&format!(
        "host=127.0.0.1 port={} user={} dbname={}",
        common::upstream_host_port().1,
        p.admin,
        p.db.name
    ))
    .await;
    assert_eq!(
        count(&admin, "SELECT count(*) FROM tombstone.archive").await,
        3123
    );
    let plain = common::connect(&format!(
        "host=127.0.0.1 port={} user={} dbname={}",
        common::upstream_host_port().1,
        p.app,
        p.db.name
    ))
    .await;
    let e = plain
        .query("SELECT * FROM tombstone.archive", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
}

#[tokio::test]
async fn archive_files_hold_exactly_the_purged_rows_and_a_failed_write_deletes_nothing() {
    let p = Protected::start("pa_files", 2, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    app.execute("DELETE FROM projects WHERE id = 1", &[])
        .await
        .unwrap();
    backdate(&direct, 40).await;
    let want = expected(&direct).await;
    assert_eq!(want.len(), 3122);
    let soft_deleted = "SELECT count(*) FROM (
        SELECT id FROM tasks WHERE deleted_at IS NOT NULL UNION ALL SELECT id FROM comments WHERE deleted_at IS NOT NULL
        UNION ALL SELECT id FROM projects WHERE deleted_at IS NOT NULL) s";
    assert_eq!(count(&direct, soft_deleted).await, 2501);

    let dir = tempfile::tempdir().unwrap();
    // A directory that cannot be one (a file is in the way): the purge
    // fails before it deletes anything, naming the key.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "").unwrap();
    let config = rules(
        dir.path(),
        &format!(
            "[retention.archive]\nto = \"files\"\ndirectory = \"{}\"\nfile_per = \"day\"\n",
            blocked.display()
        ),
    );
    let (ok, _, err) = tombstone(&["purge", "--config", &config, "--database-url", &p.db.url]);
    assert!(!ok);
    assert!(err.contains("retention.archive.directory"), "{err}");
    assert_eq!(count(&direct, soft_deleted).await, 2501);

    // A writable directory: two batches (of one table each), archived.
    let archive = dir.path().join("archive");
    let config = rules(
        dir.path(),
        &format!(
            "[retention.archive]\nto = \"files\"\ndirectory = \"{}\"\nfile_per = \"day\"\n",
            archive.display()
        ),
    );
    let (ok, out, err) = tombstone(&[
        "purge",
        "--config",
        &config,
        "--batch-size",
        "500",
        "--max-batches",
        "2",
        "--database-url",
        &p.db.url,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("rows archived to"), "{out}");
    let (first_lines, got) = archive_files(&archive);
    assert!(first_lines > 0 && first_lines < 3122, "{first_lines}");
    assert_eq!(got.len() as i64, first_lines);
    assert!(got.is_subset(&want));
    let file = std::fs::read_dir(&archive)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();

    // The day's file cannot be written any more (a directory in its
    // place): the next batch fails and is rolled back — nothing that is
    // not in the archive is gone.
    let aside = dir.path().join("aside.jsonl");
    std::fs::rename(&file, &aside).unwrap();
    std::fs::create_dir(&file).unwrap();
    let (ok, _, err) = tombstone(&["purge", "--config", &config, "--database-url", &p.db.url]);
    assert!(!ok);
    assert!(err.contains("cannot write the purge archive"), "{err}");
    std::fs::remove_dir(&file).unwrap();
    std::fs::rename(&aside, &file).unwrap();
    let (lines, archived) = archive_files(&archive);
    assert_eq!(lines, first_lines);
    for t in protected_tables(&direct).await {
        let left = count(
            &direct,
            &format!("SELECT count(*) FROM {t} WHERE deleted_at < now() - interval '30 days'"),
        )
        .await;
        let wanted = want.iter().filter(|w| w.0 == t).count() as i64;
        let kept = archived.iter().filter(|w| w.0 == t).count() as i64;
        assert_eq!(left, wanted - kept, "{t}: every row gone is archived");
    }

    // The rest, appended to the same file: exactly the purged rows.
    let (ok, _, err) = tombstone(&["purge", "--config", &config, "--database-url", &p.db.url]);
    assert!(ok, "{err}");
    let (lines, got) = archive_files(&archive);
    assert_eq!(lines, 3122);
    assert_eq!(got, want);
    assert_eq!(count(&direct, soft_deleted).await, 0);
}

/// Audit rows of project `p`'s rows (by the operation that deleted them,
/// and the updates of its tasks) that still hold values.
async fn audit_values(direct: &Client, p: i64) -> i64 {
    count(
        direct,
        &format!(
            "SELECT count(*) FROM tombstone.audit a
              WHERE (a.old_values IS NOT NULL OR a.new_values IS NOT NULL)
                AND ((a.table_name = 'tasks' AND a.action = 'update' AND (a.new_values ->> 'project_id')::bigint = {p})
                  OR a.op_id = (SELECT o.op_id FROM tombstone.audit o WHERE o.table_name = 'projects'
                                   AND o.pk = '{{\"id\": {p}}}' AND o.action = 'soft_delete' LIMIT 1))"
        ),
    )
    .await
}

#[tokio::test]
async fn redaction_on_purge_by_default_on_and_off() {
    let p = Protected::start("pa_redact", 4, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    for project in 1..=4 {
        app.batch_execute(&format!(
            "UPDATE tasks SET title = 'secret {project}' WHERE project_id = {project} AND id % 100 = 0;
             DELETE FROM projects WHERE id = {project}"
        ))
        .await
        .unwrap();
        assert!(audit_values(&direct, project).await > 3000);
    }
    let dir = tempfile::tempdir().unwrap();
    let purge = |toml: &str| {
        let config = rules(dir.path(), toml);
        let (ok, _, err) = tombstone(&["purge", "--config", &config, "--database-url", &p.db.url]);
        assert!(ok, "{toml}: {err}");
    };
    let soft_delete_rows = |p: i64| {
        format!(
            "SELECT count(*) FROM tombstone.audit WHERE action = 'soft_delete' AND actor IS NOT NULL
               AND login_role IS NOT NULL AND xact_id IS NOT NULL AND op_id IS NOT NULL AND pk ? 'id'
               AND op_id = (SELECT o.op_id FROM tombstone.audit o WHERE o.table_name = 'projects'
                               AND o.pk = '{{\"id\": {p}}}' AND o.action = 'soft_delete' LIMIT 1)"
        )
    };
    let before: Vec<i64> = {
        let mut v = Vec::new();
        for project in 1..=4 {
            v.push(count(&direct, &soft_delete_rows(project)).await);
        }
        v
    };

    // Default, retention (30 days) shorter than the audit's (400): redacted.
    common::backdate_project(&direct, 40, 1).await;
    purge("");
    assert_eq!(audit_values(&direct, 1).await, 0);
    // What stays: table, key, action, actor, login role, transaction, operation.
    assert_eq!(count(&direct, &soft_delete_rows(1)).await, before[0]);
    assert!(audit_values(&direct, 2).await > 3000, "others untouched");

    // Explicitly off.
    common::backdate_project(&direct, 40, 2).await;
    purge("[audit]\nredact_on_purge = false\n");
    assert!(audit_values(&direct, 2).await > 3000);
    assert_eq!(
        count(&direct, "SELECT count(*) FROM tasks WHERE project_id = 2").await,
        0,
        "purged all the same"
    );

    // Default with an audit retention shorter than the rows' (20 < 30
    // days): the audit rows go before the rows would, nothing to redact.
    common::backdate_project(&direct, 40, 3).await;
    purge("[audit]\nretention = \"20days\"\n");
    assert!(audit_values(&direct, 3).await > 3000);

    // Explicitly on, whatever the retentions.
    common::backdate_project(&direct, 40, 4).await;
    purge("[audit]\nretention = \"20days\"\nredact_on_purge = true\n");
    assert_eq!(audit_values(&direct, 4).await, 0);
    assert_eq!(count(&direct, &soft_delete_rows(4)).await, before[3]);
}

#[tokio::test]
async fn purge_waits_for_no_one_and_keeps_children_first_with_an_archive() {
    let p = Protected::start("pa_lock", 1, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    app.execute("DELETE FROM projects WHERE id = 1", &[])
        .await
        .unwrap();
    backdate(&direct, 40).await;
    let dir = tempfile::tempdir().unwrap();
    let config = rules(dir.path(), "[retention.archive]\nto = \"table\"\n");

    // Another purge holds the lock: this one refuses, deletes and archives nothing.
    let other = common::connect(&p.db.url).await;
    other
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&tombstone::ops::purge::LOCK_KEY],
        )
        .await
        .unwrap();
    let (ok, _, err) = tombstone(&["purge", "--config", &config, "--database-url", &p.db.url]);
    assert!(!ok);
    assert!(err.contains("another purge is running"), "{err}");
    assert_eq!(
        count(&direct, "SELECT count(*) FROM tombstone.archive").await,
        0
    );
    other
        .execute(
            "SELECT pg_advisory_unlock($1)",
            &[&tombstone::ops::purge::LOCK_KEY],
        )
        .await
        .unwrap();

    // Children before parents: archived in that order (ids grow).
    let (ok, _, err) = tombstone(&[
        "purge",
        "--config",
        &config,
        "--batch-size",
        "300",
        "--database-url",
        &p.db.url,
    ]);
    assert!(ok, "{err}");
    let first =
        |table: &str| format!("SELECT min(id) FROM tombstone.archive WHERE table_name = '{table}'");
    let last =
        |table: &str| format!("SELECT max(id) FROM tombstone.archive WHERE table_name = '{table}'");
    for (child, parent) in [
        ("comments", "tasks"),
        ("attachments", "tasks"),
        ("tasks", "projects"),
        ("document_versions", "documents"),
        ("documents", "projects"),
    ] {
        assert!(
            count(&direct, &last(child)).await < count(&direct, &first(parent)).await,
            "{child} before {parent}"
        );
    }
    assert_eq!(
        count(&direct, "SELECT count(*) FROM tombstone.archive").await,
        3122
    );
}
