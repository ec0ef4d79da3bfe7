//! One FK graph (issue 10 item 5): an edge `rules.toml` adds
//! (`soft_delete.add_edges`) and a catalog foreign key it removes
//! (`soft_delete.remove_edges`) are followed, or ignored, the same way by
//! the soft delete (the rewriter's snapshot), trash, restore, purge, erase
//! and doctor, which read the database's `tombstone.edges`; a
//! `tombstone.edge_rules` someone else wrote is reported by doctor and
//! written back by `serve`.
//!
//! The graph: `notes.folder_ref -> folders.id` exists only in rules.toml
//! (on delete cascade); `pins.note_id -> notes.id` is a catalog cascade
//! reached through it; `labels_folder_fkey` (`labels.folder_id ->
//! folders.id`, on delete cascade) is in the catalog and removed by
//! rules.toml, so soft deletes do not follow it, but PostgreSQL still
//! enforces it when a folder goes physically.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::protected::Protected;
use common::{psql, sqlstate, tombstone};
use tokio_postgres::Client;

const RULES: &str = r#"
[soft_delete]
remove_edges = ["labels_folder_fkey"]

[[soft_delete.add_edges]]
parent = "public.folders"
parent_columns = ["id"]
child = "public.notes"
child_columns = ["folder_ref"]
"#;

/// The doctor line of a graph mismatch starts with this.
const GRAPH_PROBLEM: &str =
    "the cascade edges restore, purge and erase follow (tombstone.edges) are not this rules.toml's";

async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(client: &Client, sql: &str) -> T {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// Whether row `id` of `table` is soft-deleted (`None`: no such row).
async fn deleted(direct: &Client, table: &str, id: i64) -> Option<bool> {
    direct
        .query_opt(
            &format!("SELECT deleted_at IS NOT NULL FROM {table} WHERE id = $1"),
            &[&id],
        )
        .await
        .unwrap_or_else(|e| panic!("{table} {id}: {e:?}"))
        .map(|r| r.get(0))
}

/// The operation (not restored) whose target was row `id` of `table`.
async fn op_of(admin: &Client, table: &str, id: i64) -> String {
    admin
        .query_one(
            "SELECT op_id::text FROM tombstone.trash()
              WHERE table_name = $1 AND keys @> jsonb_build_array(jsonb_build_object('id', $2::bigint))",
            &[&table, &id],
        )
        .await
        .unwrap_or_else(|e| panic!("operation of {table} {id}: {e:?}"))
        .get(0)
}

/// Moves the soft delete of row `id` of `table`, and its operation, `days`
/// days into the past.
async fn backdate(direct: &Client, table: &str, id: i64, days: i32) {
    direct
        .batch_execute(&format!(
            "UPDATE public.{table} SET deleted_at = deleted_at - interval '{days} days' WHERE id = {id};
             UPDATE tombstone.operations SET created_at = created_at - interval '{days} days'
              WHERE id IN (SELECT op_id FROM tombstone.operation_rows
                            WHERE table_name = '{table}' AND pk = jsonb_build_object('id', {id}));"
        ))
        .await
        .unwrap_or_else(|e| panic!("backdate {table} {id}: {e:?}"));
}

fn doctor(config: &Path) -> String {
    let (_, out, err) = tombstone(&["doctor", "--config", config.to_str().expect("path")]);
    assert!(
        out.contains("Cascade plan"),
        "doctor did not run:\n{out}\n{err}"
    );
    out
}

#[tokio::test]
async fn added_and_removed_edges_are_one_graph_for_every_part() {
    let p = Protected::start("ops_edges", 1, RULES);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("rules.toml");
    std::fs::write(
        &config,
        format!("[database]\nurl = \"{}\"\n{RULES}", p.db.url),
    )
    .expect("write config");
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, format!("[database]\nurl = \"{}\"\n", p.db.url)).expect("write config");

    psql(
        &p.db.url,
        &[
            "-c",
            "CREATE TABLE public.folders (id bigint PRIMARY KEY, name text NOT NULL, deleted_at timestamptz);
             CREATE TABLE public.notes (id bigint PRIMARY KEY, folder_ref bigint NOT NULL, body text,
                                        deleted_at timestamptz);
             CREATE INDEX ON public.notes (folder_ref);
             CREATE TABLE public.pins (id bigint PRIMARY KEY,
                                       note_id bigint NOT NULL REFERENCES public.notes (id) ON DELETE CASCADE,
                                       deleted_at timestamptz);
             CREATE INDEX ON public.pins (note_id);
             CREATE TABLE public.labels (id bigint PRIMARY KEY,
                                         folder_id bigint NOT NULL CONSTRAINT labels_folder_fkey
                                           REFERENCES public.folders (id) ON DELETE CASCADE,
                                         deleted_at timestamptz);
             CREATE INDEX ON public.labels (folder_id);
             INSERT INTO public.folders (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');
             INSERT INTO public.notes (id, folder_ref, body) VALUES (10, 1, 'a'), (11, 1, 'b'), (20, 2, 'c'), (30, 3, 'd');
             INSERT INTO public.pins (id, note_id) VALUES (100, 10);
             INSERT INTO public.labels (id, folder_id) VALUES (1000, 1), (2000, 2), (4000, 4);",
        ],
    );
    for role in [&p.app, &p.admin] {
        psql(
            &p.db.url,
            &[
                "-c",
                &format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{role}\""
                ),
            ],
        );
    }
    let (ok, out, err) = tombstone(&[
        "migrate",
        "--apply",
        "--config",
        config.to_str().expect("path"),
    ]);
    assert!(ok, "migrate failed:\n{out}\n{err}");

    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;

    // The proxy soft-deletes folders once its snapshot has them with their
    // triggers (before, the guard refuses the plain DELETE).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match app.execute("DELETE FROM folders WHERE id = -1", &[]).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the proxy never protected public.folders: {e:?}"),
        }
    }

    // The database's graph: the added edge followed, the removed one not.
    let edges: Vec<(String, String, bool)> = direct
        .query(
            "SELECT name, source, followed FROM tombstone.edges
              WHERE parent = 'public.folders'::regclass ORDER BY name",
            &[],
        )
        .await
        .expect("edges")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        edges,
        vec![
            (
                "labels_folder_fkey".to_string(),
                "catalog".to_string(),
                false
            ),
            (
                "rules.toml public.notes -> public.folders".to_string(),
                "rules".to_string(),
                true
            ),
        ]
    );

    // Doctor: the same graph as the snapshot's, and the plan shows it.
    let out = doctor(&config);
    assert!(!out.contains(GRAPH_PROBLEM), "{out}");
    assert!(
        out.contains("  public.folders\n  └─ cascade public.notes (folder_ref)\n     └─ cascade public.pins (note_id)\n"),
        "{out}"
    );
    assert!(!out.contains("public.labels (folder_id)"), "{out}");
    // Doctor with a rules.toml without those rules: not the graph the
    // database follows, both differences named.
    let out = doctor(&plain);
    assert!(
        out.contains(&format!(
            "{GRAPH_PROBLEM}: only in the database: public.notes (folder_ref) -> public.folders (id) on delete cascade; only in rules.toml: public.labels (folder_id) -> public.folders (id) on delete cascade;"
        )),
        "{out}"
    );

    // Soft delete (the rewriter): along the added edge and on through the
    // catalog's pins edge; not along the removed one.
    let n = app
        .execute("DELETE FROM folders WHERE id = 1", &[])
        .await
        .expect("delete folder 1");
    assert_eq!(n, 1);
    assert_eq!(deleted(&direct, "notes", 10).await, Some(true));
    assert_eq!(deleted(&direct, "notes", 11).await, Some(true));
    assert_eq!(deleted(&direct, "pins", 100).await, Some(true));
    assert_eq!(deleted(&direct, "labels", 1000).await, Some(false));
    assert_eq!(
        one::<i64>(&app, "SELECT count(*) FROM notes WHERE folder_ref = 1").await,
        0
    );

    // Trash: the operation's rows per table are the cascade's.
    let cascaded: String = one(
        &admin,
        "SELECT cascaded::text FROM tombstone.trash() WHERE table_name = 'public.folders'",
    )
    .await;
    let cascaded: serde_json::Value = serde_json::from_str(&cascaded).expect("json");
    assert_eq!(
        cascaded,
        serde_json::json!({"public.folders": 1, "public.notes": 2, "public.pins": 1})
    );

    // Restore follows the added edge: a note cannot come back while its
    // folder is deleted (by another operation, which the refusal names).
    app.execute("DELETE FROM notes WHERE id = 20", &[])
        .await
        .expect("delete note 20");
    app.execute("DELETE FROM folders WHERE id = 2", &[])
        .await
        .expect("delete folder 2");
    let note_op = op_of(&admin, "public.notes", 20).await;
    let folder_op = op_of(&admin, "public.folders", 2).await;
    let refused = admin
        .query_one(&format!("SELECT tombstone.restore('{note_op}')"), &[])
        .await
        .expect_err("restoring a note of a deleted folder must be refused");
    assert_eq!(sqlstate(&refused), "55000", "{refused:?}");
    let message = refused
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(
        message.contains("references public.folders") && message.contains(&folder_op),
        "{message}"
    );
    // … and ignores the removed one: a label comes back although its folder
    // is deleted, as the rewriter lets a live label keep a deleted folder.
    assert_eq!(deleted(&direct, "labels", 2000).await, Some(false));
    app.execute("DELETE FROM labels WHERE id = 2000", &[])
        .await
        .expect("delete label 2000");
    let label_op = op_of(&admin, "public.labels", 2000).await;
    let status: String = one(
        &admin,
        &format!("SELECT tombstone.restore('{label_op}') ->> 'status'"),
    )
    .await;
    assert_eq!(status, "restored");
    assert_eq!(deleted(&direct, "labels", 2000).await, Some(false));
    assert_eq!(deleted(&direct, "folders", 2).await, Some(true));
    // In order it works, and folder 1's restore brings back its cascade.
    for op in [&folder_op, &note_op] {
        let status: String = one(
            &admin,
            &format!("SELECT tombstone.restore('{op}') ->> 'status'"),
        )
        .await;
        assert_eq!(status, "restored");
    }
    let folder1 = op_of(&admin, "public.folders", 1).await;
    let rows: i64 = one(
        &admin,
        &format!("SELECT (tombstone.restore('{folder1}') ->> 'rows')::bigint"),
    )
    .await;
    assert_eq!(rows, 4);
    for (table, id) in [("folders", 1), ("notes", 10), ("notes", 11), ("pins", 100)] {
        assert_eq!(
            deleted(&direct, table, id).await,
            Some(false),
            "{table} {id}"
        );
    }

    // Purge: a folder stays while a note references it along the added
    // edge (the note deleted on its own, more recently), and while a live
    // label references it along the removed one (PostgreSQL's cascade
    // would take the live label with it).
    app.batch_execute(
        "DELETE FROM notes WHERE id = 30; DELETE FROM folders WHERE id = 3; DELETE FROM folders WHERE id = 4",
    )
    .await
    .expect("delete for purge");
    backdate(&direct, "folders", 3, 40).await;
    backdate(&direct, "folders", 4, 40).await;
    let cfg = config.to_str().expect("path");
    let (ok, out, err) = tombstone(&["purge", "--config", cfg]);
    assert!(ok, "purge failed:\n{out}\n{err}");
    assert_eq!(deleted(&direct, "folders", 3).await, Some(true), "{out}");
    assert_eq!(deleted(&direct, "notes", 30).await, Some(true), "{out}");
    assert_eq!(deleted(&direct, "folders", 4).await, Some(true), "{out}");
    backdate(&direct, "notes", 30, 40).await;
    let (ok, out, err) = tombstone(&["purge", "--config", cfg]);
    assert!(ok, "purge failed:\n{out}\n{err}");
    assert_eq!(deleted(&direct, "notes", 30).await, None, "{out}");
    assert_eq!(deleted(&direct, "folders", 3).await, None, "{out}");
    assert_eq!(deleted(&direct, "folders", 4).await, Some(true), "{out}");
    assert_eq!(deleted(&direct, "labels", 4000).await, Some(false), "{out}");

    // Erase follows the added edge too (PostgreSQL does not: it is no
    // foreign key), then the catalog's pins edge; the removed edge is a real
    // foreign key, so PostgreSQL's own cascade takes the label.
    let erased: String = one(
        &admin,
        "SELECT (tombstone.erase('folders', '{\"id\": 1}') -> 'rows')::text",
    )
    .await;
    let erased: serde_json::Value = serde_json::from_str(&erased).expect("json");
    assert_eq!(
        erased,
        serde_json::json!({"public.folders": 1, "public.notes": 2, "public.pins": 1, "public.labels": 1})
    );
    for (table, id) in [
        ("folders", 1),
        ("notes", 10),
        ("notes", 11),
        ("pins", 100),
        ("labels", 1000),
    ] {
        assert_eq!(deleted(&direct, table, id).await, None, "{table} {id}");
    }
    let kept: i64 = one(
        &direct,
        "SELECT count(*) FROM tombstone.audit WHERE table_name = 'notes' AND pk = '{\"id\": 10}'
            AND (old_values IS NOT NULL OR new_values IS NOT NULL)",
    )
    .await;
    assert_eq!(kept, 0, "the erased note's audit rows are redacted");
    let erase_rows: i64 = one(
        &direct,
        "SELECT count(*) FROM tombstone.audit WHERE action = 'erase' AND table_name = 'notes'",
    )
    .await;
    assert_eq!(erase_rows, 2);

    // Someone writes other rules (a migrate with another rules.toml):
    // doctor names the difference, and serve writes its own back at its
    // next schema reload (refresh_interval 1s), saying so.
    let (ok, out, err) = tombstone(&[
        "migrate",
        "--apply",
        "--config",
        plain.to_str().expect("path"),
    ]);
    assert!(ok, "migrate failed:\n{out}\n{err}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while one::<i64>(&direct, "SELECT count(*) FROM tombstone.edge_rules").await != 2 {
        assert!(
            Instant::now() < deadline,
            "serve did not write its edge rules back:\n{}",
            p.proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = p.proxy.log();
    assert!(
        log.contains("tombstone.edge_rules held other rules.toml edges than this proxy's"),
        "{log}"
    );
    let out = doctor(&config);
    assert!(!out.contains(GRAPH_PROBLEM), "{out}");
}

const RESTRICT_RULES: &str = r#"
[[soft_delete.add_edges]]
parent = "public.boxes"
parent_columns = ["id"]
child = "public.items"
child_columns = ["box_ref"]
on_delete = "restrict"

[[soft_delete.add_edges]]
parent = "public.boxes"
parent_columns = ["id"]
child = "public.stickers"
child_columns = ["box_ref"]
on_delete = "set_null"
"#;

/// Added RESTRICT and SET NULL edges: the soft delete refuses where erase
/// refuses (23503, as PostgreSQL for a foreign key), and erase sets the
/// column to NULL as the soft delete does.
#[tokio::test]
async fn added_restrict_and_set_null_edges_mean_the_same_to_the_soft_delete_and_erase() {
    let p = Protected::start("ops_edges_r", 1, RESTRICT_RULES);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("rules.toml");
    std::fs::write(
        &config,
        format!("[database]\nurl = \"{}\"\n{RESTRICT_RULES}", p.db.url),
    )
    .expect("write config");
    psql(
        &p.db.url,
        &[
            "-c",
            "CREATE TABLE public.boxes (id bigint PRIMARY KEY, deleted_at timestamptz);
             CREATE TABLE public.items (id bigint PRIMARY KEY, box_ref bigint, deleted_at timestamptz);
             CREATE TABLE public.stickers (id bigint PRIMARY KEY, box_ref bigint, deleted_at timestamptz);
             INSERT INTO public.boxes (id) VALUES (1), (2), (3);
             INSERT INTO public.items (id, box_ref) VALUES (10, 1), (20, 2);
             INSERT INTO public.stickers (id, box_ref) VALUES (100, 1), (300, 3);",
        ],
    );
    for role in [&p.app, &p.admin] {
        psql(
            &p.db.url,
            &[
                "-c",
                &format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{role}\""
                ),
            ],
        );
    }
    let (ok, out, err) = tombstone(&[
        "migrate",
        "--apply",
        "--config",
        config.to_str().expect("path"),
    ]);
    assert!(ok, "migrate failed:\n{out}\n{err}");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = app.execute("DELETE FROM boxes WHERE id = -1", &[]).await {
        assert!(
            Instant::now() < deadline,
            "the proxy never protected public.boxes: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // RESTRICT: the soft delete and erase both refuse while an item is there.
    let soft = app
        .execute("DELETE FROM boxes WHERE id = 2", &[])
        .await
        .expect_err("a box with an item is restricted");
    assert_eq!(sqlstate(&soft), "23503", "{soft:?}");
    let hard = admin
        .query_one("SELECT tombstone.erase('boxes', '{\"id\": 2}')", &[])
        .await
        .expect_err("erasing a box with an item is restricted");
    assert_eq!(sqlstate(&hard), "23503", "{hard:?}");
    assert_eq!(deleted(&direct, "boxes", 2).await, Some(false));
    assert_eq!(deleted(&direct, "items", 20).await, Some(false));

    // SET NULL: the soft delete of box 3 and the erase of box 1 (once its
    // item is erased) both clear the stickers' reference.
    app.execute("DELETE FROM boxes WHERE id = 3", &[])
        .await
        .expect("delete box 3");
    let cleared: Option<i64> = one(&direct, "SELECT box_ref FROM stickers WHERE id = 300").await;
    assert_eq!(cleared, None);
    admin
        .query_one("SELECT tombstone.erase('items', '{\"id\": 10}')", &[])
        .await
        .expect("erase item 10");
    admin
        .query_one("SELECT tombstone.erase('boxes', '{\"id\": 1}')", &[])
        .await
        .expect("erase box 1");
    assert_eq!(deleted(&direct, "boxes", 1).await, None);
    let cleared: Option<i64> = one(&direct, "SELECT box_ref FROM stickers WHERE id = 100").await;
    assert_eq!(cleared, None);
    assert_eq!(deleted(&direct, "stickers", 100).await, Some(false));
}
