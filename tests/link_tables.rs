//! Tables without the soft-delete column next to protected ones (SPEC W2,
//! issue 12 item 3): `task_tags` references protected `tasks` with ON
//! DELETE CASCADE, and unprotected `tags` cascades into `task_tags`.
//!
//! The decision: such tables are not filtered by the proxy; `doctor` names
//! them and `migrate --fix` protects them, the closure at once (`task_tags`
//! because `tasks` cascades into it, then `tags` because it cascades into
//! `task_tags`). Protected that way, every read of them through the proxy
//! equals a hard-delete twin's, statement by statement, and a restore of
//! the project brings the link rows back.

mod common;

use common::{Proxy, ProxyOptions, TestDb, count, tombstone};
use tokio_postgres::{Client, SimpleQueryMessage};

const STATEMENTS: &[&str] = &[
    "SELECT count(*) FROM task_tags",
    // A project and its tasks: the twin cascades into task_tags.
    "DELETE FROM projects WHERE id = 1",
    "SELECT count(*) FROM task_tags",
    "SELECT tag_id, count(*) FROM task_tags GROUP BY 1 ORDER BY 1",
    "SELECT count(*) FROM task_tags tt JOIN tasks t ON t.id = tt.task_id",
    "SELECT count(*) FROM tasks t LEFT JOIN task_tags tt ON tt.task_id = t.id WHERE tt.task_id IS NULL",
    // Tags: the twin cascades into task_tags; through tombstone a soft
    // delete of the tag and its live links (tag 2 is only on project 1's
    // tasks, whose links are gone already; tag 3 only on project 2's).
    "DELETE FROM tags WHERE id = 2",
    "DELETE FROM tags WHERE id = 3",
    "SELECT count(*) FROM tags",
    "SELECT count(*) FROM task_tags",
    "SELECT t.name, count(tt.task_id) FROM tags t LEFT JOIN task_tags tt ON tt.tag_id = t.id GROUP BY t.name ORDER BY t.name",
    // Link rows deleted by the application itself (an ORM's M2M clear).
    "DELETE FROM task_tags WHERE task_id IN (SELECT id FROM tasks WHERE project_id = 2 ORDER BY id LIMIT 5)",
    "SELECT count(*) FROM task_tags",
    "SELECT task_id, tag_id FROM task_tags WHERE task_id IN (SELECT id FROM tasks WHERE project_id = 2 ORDER BY id LIMIT 7) ORDER BY 1, 2",
    // Linking a task of the deleted project, or to the deleted tag: 23503.
    "INSERT INTO task_tags (task_id, tag_id) SELECT min(id), 1 FROM tasks WHERE project_id = 2",
    "INSERT INTO task_tags (task_id, tag_id) VALUES (1, 1)",
    "INSERT INTO task_tags (task_id, tag_id) SELECT max(id), 3 FROM tasks WHERE project_id = 2",
    // Re-linking what the application unlinked (the key of a soft-deleted
    // link row: revived).
    "INSERT INTO task_tags (task_id, tag_id) SELECT tt.task_id, tt.tag_id FROM (SELECT id FROM tasks WHERE project_id = 2 ORDER BY id LIMIT 1) t, LATERAL (VALUES (t.id, 4)) tt(task_id, tag_id) ON CONFLICT DO NOTHING",
    "SELECT count(*) FROM task_tags",
    "SELECT tag_id, count(*) FROM task_tags GROUP BY 1 ORDER BY 1",
    "SELECT count(*), count(DISTINCT task_id) FROM task_tags",
];

/// What each statement did: its rows and tag, or its SQLSTATE.
async fn outcomes(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for sql in STATEMENTS {
        let line = match client.simple_query(sql).await {
            Ok(messages) => {
                let mut parts = Vec::new();
                for m in &messages {
                    match m {
                        SimpleQueryMessage::Row(r) => parts.push(
                            (0..r.len())
                                .map(|i| r.get(i).unwrap_or("NULL").to_string())
                                .collect::<Vec<_>>()
                                .join("|"),
                        ),
                        SimpleQueryMessage::CommandComplete(n) => parts.push(format!("({n})")),
                        _ => {}
                    }
                }
                format!("{sql}: {}", parts.join(" "))
            }
            Err(e) => match e.as_db_error() {
                Some(db) => format!("{sql}: {}", db.code().code()),
                None => format!("{sql}: {e}"),
            },
        };
        out.push(line);
    }
    out
}

#[tokio::test]
async fn link_tables_protected_by_migrate_fix_read_like_the_twin() {
    let twin = TestDb::twin("link_twin", 2);
    let db = TestDb::twin("link", 2);
    // Before the fix: doctor names both tables and exits 1.
    let (ok, out, err) = tombstone(&["doctor", "--database-url", &db.url]);
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains(
            "public.task_tags has no soft-delete column but public.tasks cascades into it"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "public.tags has no soft-delete column but cascades into protected public.task_tags"
        ),
        "{out}"
    );
    let (ok, out, err) = tombstone(&["migrate", "--apply", "--fix", "--database-url", &db.url]);
    assert!(ok, "{out}{err}");
    let direct = db.connect().await;
    let protected = count(
        &direct,
        "SELECT count(*) FROM pg_attribute WHERE attname = 'deleted_at' AND NOT attisdropped
           AND attrelid IN ('public.tags'::regclass, 'public.task_tags'::regclass)",
    )
    .await;
    assert_eq!(protected, 2, "migrate --fix protects task_tags and tags");
    let (_, out, _) = tombstone(&["doctor", "--database-url", &db.url]);
    assert!(!out.contains("has no soft-delete column"), "{out}");
    let before = count(&direct, "SELECT count(*) FROM task_tags").await;

    let proxy = Proxy::start_with(ProxyOptions {
        extra_toml: format!("[database]\nurl = \"{}\"\n", db.url),
        ..Default::default()
    });
    let expected = outcomes(&twin.connect().await).await;
    let got = outcomes(&proxy.connect(&db.name).await).await;
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "through tombstone vs the twin");
    }
    // The twin's outcomes show what is at stake: rows go, inserts fail.
    assert!(
        expected.iter().filter(|l| l.ends_with(": 23503")).count() >= 2,
        "{expected:#?}"
    );
    // Nothing was removed physically.
    assert!(count(&direct, "SELECT count(*) FROM task_tags").await >= before);
    assert_eq!(count(&direct, "SELECT count(*) FROM tags").await, 50);

    // A restore of the project waits for tag 2, which its links reference
    // (SPEC B4); restored after it, every link of the project is back.
    let restore = |table: &'static str, key: &'static str| {
        tombstone(&[
            "restore",
            "--table",
            table,
            "--key",
            key,
            "--database-url",
            &db.url,
        ])
    };
    let (ok, out, err) = restore("projects", r#"{"id": 1}"#);
    assert!(!ok, "{out}{err}");
    assert!(err.contains("public.tags"), "{err}");
    let (ok, out, err) = restore("tags", r#"{"id": 2}"#);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = restore("projects", r#"{"id": 1}"#);
    assert!(ok, "{out}{err}");
    let links = "SELECT count(*) FROM task_tags tt JOIN tasks t ON t.id = tt.task_id WHERE t.project_id = 1";
    let all = count(&direct, links).await;
    assert!(all > 0);
    assert_eq!(
        count(&direct, &format!("{links} AND tt.deleted_at IS NULL")).await,
        all
    );
}

/// Django's automatic many-to-many table: no soft-delete column, keys
/// `DEFERRABLE INITIALLY DEFERRED` without ON DELETE, its rows deleted by
/// the ORM itself before the book. Once rows have been deleted from it,
/// doctor names it and `migrate --fix` protects it; then the ORM's
/// transaction is one action and its restore brings the links back.
const DJANGO: &str = "
CREATE TABLE author (id int PRIMARY KEY, name text, deleted_at timestamptz);
CREATE TABLE publisher (id int PRIMARY KEY, name text, deleted_at timestamptz);
CREATE TABLE book (id int PRIMARY KEY, author_id int NOT NULL REFERENCES author DEFERRABLE INITIALLY DEFERRED,
                   publisher_id int REFERENCES publisher DEFERRABLE INITIALLY DEFERRED,
                   title text, deleted_at timestamptz);
CREATE TABLE tag (id int PRIMARY KEY, name text);
CREATE TABLE book_tags (id serial PRIMARY KEY,
                        book_id int NOT NULL REFERENCES book DEFERRABLE INITIALLY DEFERRED,
                        tag_id int NOT NULL REFERENCES tag DEFERRABLE INITIALLY DEFERRED,
                        UNIQUE (book_id, tag_id));
INSERT INTO author VALUES (1, 'a'), (2, 'b');
INSERT INTO publisher VALUES (1, 'p'), (2, 'q');
INSERT INTO book SELECT g, 1 + g % 2, 1 + g % 2, 'book ' || g FROM generate_series(1, 10) g;
INSERT INTO tag SELECT g, 'tag ' || g FROM generate_series(1, 5) g;
INSERT INTO book_tags (book_id, tag_id) SELECT b, t FROM generate_series(1, 10) b, generate_series(1, 3) t;
-- Not a link table: a text column of its own.
CREATE TABLE review (id serial PRIMARY KEY, book_id int NOT NULL REFERENCES book DEFERRABLE INITIALLY DEFERRED,
                     body text);
INSERT INTO review (book_id, body) SELECT g, 'review ' || g FROM generate_series(1, 10) g;
";

async fn checksum(client: &Client) -> String {
    client
        .query_one(
            "SELECT (SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM author a)
                 || (SELECT md5(string_agg(p::text, ',' ORDER BY id)) FROM publisher p)
                 || (SELECT md5(string_agg(b::text, ',' ORDER BY id)) FROM book b)
                 || (SELECT md5(string_agg(format('%s %s %s', id, book_id, tag_id), ',' ORDER BY id)) FROM book_tags)
                 || (SELECT md5(string_agg(format('%s %s %s', id, book_id, body), ',' ORDER BY id)) FROM review)",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_orm_link_table_that_is_deleted_from_is_protected_and_restored_with_the_action() {
    let db = TestDb::new("link_django");
    common::psql(&db.url, &["-c", DJANGO]);
    db.migrate();
    // A link table is named at once; another child once rows are deleted
    // from it.
    let (_, out, _) = tombstone(&["doctor", "--database-url", &db.url]);
    assert!(
        out.contains("public.book_tags has no soft-delete column, references protected public.book (book_tags_book_id_fkey) and is a link table"),
        "{out}"
    );
    assert!(
        !out.contains("public.review has no soft-delete column"),
        "{out}"
    );
    // The application deletes a review (directly, as before tombstone).
    let direct = db.connect().await;
    direct
        .batch_execute("DELETE FROM review WHERE id = 1")
        .await
        .unwrap();
    direct
        .batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .unwrap();
    direct.batch_execute("SELECT 1").await.unwrap();
    let mut flagged = String::new();
    for _ in 0..50 {
        let (_, out, _) = tombstone(&["doctor", "--database-url", &db.url]);
        if out.contains("public.review has no soft-delete column, references protected public.book")
        {
            flagged = out;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        flagged.contains("and has had 1 rows deleted"),
        "doctor did not flag review: {flagged}"
    );
    let (ok, out, err) = tombstone(&["migrate", "--apply", "--fix", "--database-url", &db.url]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM pg_attribute WHERE attrelid IN ('public.book_tags'::regclass, 'public.review'::regclass)
               AND attname = 'deleted_at' AND NOT attisdropped",
        )
        .await,
        2,
        "{out}"
    );

    let proxy = Proxy::start_with(ProxyOptions {
        extra_toml: format!("[database]\nurl = \"{}\"\n", db.url),
        ..Default::default()
    });
    let before = checksum(&direct).await;
    // What Django's publisher.delete() sends when a book's publisher is
    // SET_NULL and the collector also takes a book (its links, then the
    // book): its own UPDATE to NULL first, then the DELETEs.
    let app = proxy.connect(&db.name).await;
    app.batch_execute(
        "BEGIN;
         UPDATE book SET publisher_id = NULL WHERE publisher_id IN (1);
         DELETE FROM review WHERE book_id IN (2);
         DELETE FROM book_tags WHERE book_id IN (2);
         DELETE FROM book WHERE id IN (2);
         DELETE FROM publisher WHERE id IN (1);
         COMMIT;",
    )
    .await
    .unwrap();
    assert_eq!(
        count(&app, "SELECT count(*) FROM book_tags WHERE book_id = 2").await,
        0
    );
    assert_eq!(count(&direct, "SELECT count(*) FROM book_tags").await, 30);
    assert_eq!(count(&direct, "SELECT count(*) FROM review").await, 9);
    let action: String = direct
        .query_one(
            "SELECT xact_id::text FROM tombstone.operations ORDER BY created_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM book WHERE publisher_id IS NULL").await,
        4
    );
    // The preview lists the keys the restore puts back, changing nothing.
    let deleted = checksum(&direct).await;
    let (ok, out, err) = tombstone(&[
        "restore",
        "--action",
        &action,
        "--dry-run",
        "--database-url",
        &db.url,
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("no conflicts")
            && out
                .lines()
                .any(|l| l.trim_start().starts_with("public.book ")
                    && l.ends_with(" 5  foreign keys the application set to NULL put back")),
        "{out}"
    );
    assert_eq!(checksum(&direct).await, deleted);
    let (ok, out, err) = tombstone(&["restore", "--action", &action, "--database-url", &db.url]);
    assert!(ok, "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("public.book ")
                && l.ends_with(" 5  foreign keys the application set to NULL put back")),
        "{out}"
    );
    assert_eq!(checksum(&direct).await, before);
    // Audited: the keys put back are updates by the restoring actor.
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM tombstone.audit WHERE table_name = 'book' AND action = 'update'
               AND new_values ->> 'publisher_id' = '1' AND old_values -> 'publisher_id' = 'null'",
        )
        .await,
        5
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM book_tags WHERE book_id = 2").await,
        3
    );
}

/// Right to erasure on a Django schema (issue 12 item 4): its keys say NO
/// ACTION, the ORM cascades itself. Erase takes the soft-deleted children
/// along (the ORM's delete left them in the trash) and names the live row
/// that blocks otherwise.
#[tokio::test]
async fn erase_follows_an_orms_no_action_keys_and_names_a_live_blocker() {
    let db = TestDb::new("link_erase");
    common::psql(&db.url, &["-c", DJANGO]);
    common::psql(
        &db.url,
        &[
            "-c",
            "ALTER TABLE book_tags ADD COLUMN deleted_at timestamptz",
        ],
    );
    db.migrate();
    let proxy = Proxy::start_with(ProxyOptions {
        extra_toml: format!("[database]\nurl = \"{}\"\n", db.url),
        ..Default::default()
    });
    let app = proxy.connect(&db.name).await;
    // author.delete() as Django sends it: links, books, the author.
    app.batch_execute(
        "BEGIN;
         DELETE FROM review WHERE book_id IN (SELECT id FROM book WHERE author_id = 2);
         DELETE FROM book_tags WHERE book_id IN (SELECT id FROM book WHERE author_id = 2);
         DELETE FROM book WHERE author_id = 2;
         DELETE FROM author WHERE id = 2;
         COMMIT;",
    )
    .await
    .unwrap();
    let direct = db.connect().await;
    let physical =
        "SELECT (SELECT count(*) FROM author) * 10000 + (SELECT count(*) FROM book) * 100
                         + (SELECT count(*) FROM book_tags)";
    assert_eq!(count(&direct, physical).await, 2 * 10000 + 10 * 100 + 30);

    // Author 1's books are live: erase refuses, naming one, and removes
    // nothing.
    let (ok, out, err) = tombstone(&[
        "erase",
        "--table",
        "author",
        "--key",
        r#"{"id": 1}"#,
        "--database-url",
        &db.url,
    ]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("public.author {\"id\": 1}: public.book {\"id\": ")
            && err.contains("(foreign key book_author_id_fkey, ON DELETE NO ACTION) and is live"),
        "{err}"
    );
    assert_eq!(count(&direct, physical).await, 2 * 10000 + 10 * 100 + 30);

    // Author 2 and what the ORM deleted with it go, physically; their
    // audit rows lose their values.
    let (ok, out, err) = tombstone(&[
        "erase",
        "--table",
        "author",
        "--key",
        r#"{"id": 2}"#,
        "--database-url",
        &db.url,
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        count(&direct, physical).await,
        10000 + 5 * 100 + 15,
        "{out}"
    );
    assert!(out.contains("public.book_tags"), "{out}");
    let values: i64 = count(
        &direct,
        "SELECT count(*) FROM tombstone.audit
          WHERE ((table_name = 'author' AND pk ->> 'id' = '2')
                 OR (table_name = 'book' AND (pk ->> 'id')::int % 2 = 1))
            AND (old_values IS NOT NULL OR new_values IS NOT NULL)",
    )
    .await;
    assert_eq!(values, 0);
}
