//! Soft delete executed on real PostgreSQL: the brief's project delete,
//! RESTRICT, SET NULL, RETURNING, operation ids.

mod common;

use common::{TestDb, count};
use tombstone::rewrite::{ReplyPlan, SessionContext, rewrite};

const CHILDREN: &[(&str, &str, i64)] = &[
    ("tasks", "project_id = 1", 500),
    (
        "comments",
        "task_id IN (SELECT id FROM tasks WHERE project_id = 1)",
        2000,
    ),
    (
        "attachments",
        "task_id IN (SELECT id FROM tasks WHERE project_id = 1)",
        300,
    ),
    (
        "time_entries",
        "task_id IN (SELECT id FROM tasks WHERE project_id = 1)",
        250,
    ),
    ("documents", "project_id = 1", 10),
    (
        "document_versions",
        "document_id IN (SELECT id FROM documents WHERE project_id = 1)",
        50,
    ),
    ("project_members", "project_id = 1", 8),
    ("billing.invoices", "project_id = 1", 3),
];

#[tokio::test]
async fn deleting_a_project_soft_deletes_its_whole_tree_in_one_statement() {
    let db = TestDb::create("project", 3);
    let c = db.connect().await;
    let snap = db.snapshot(&c).await;
    let physical_before: Vec<i64> = {
        let mut v = Vec::new();
        for (t, _, _) in CHILDREN {
            v.push(count(&c, &format!("SELECT count(*) FROM {t}")).await);
        }
        v
    };
    let task_tags_before = count(&c, "SELECT count(*) FROM task_tags").await;

    let out = rewrite(
        "DELETE FROM projects WHERE id = $1",
        &snap,
        &SessionContext::normal("postgres"),
    )
    .unwrap();
    assert_eq!(
        out.statements[0].reply,
        ReplyPlan::RenameTag {
            from: "UPDATE",
            to: "DELETE"
        }
    );
    let n = c.execute(out.sql.as_ref(), &[&1i64]).await.unwrap();
    assert_eq!(n, 1, "DELETE 1: one target row");

    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM projects WHERE id = 1 AND deleted_at IS NOT NULL"
        )
        .await,
        1
    );
    for (i, (t, filter, expected)) in CHILDREN.iter().enumerate() {
        let deleted = count(
            &c,
            &format!("SELECT count(*) FROM {t} WHERE {filter} AND deleted_at IS NOT NULL"),
        )
        .await;
        assert_eq!(deleted, *expected, "{t} soft-deleted");
        let live_elsewhere = count(
            &c,
            &format!("SELECT count(*) FROM {t} WHERE NOT ({filter}) AND deleted_at IS NOT NULL"),
        )
        .await;
        assert_eq!(live_elsewhere, 0, "{t}: other projects untouched");
        assert_eq!(
            count(&c, &format!("SELECT count(*) FROM {t}")).await,
            physical_before[i],
            "{t}: nothing physically removed"
        );
    }
    assert_eq!(
        count(&c, "SELECT count(*) FROM task_tags").await,
        task_tags_before,
        "task_tags untouched"
    );
    // One operation, 3,122 rows, one timestamp.
    assert_eq!(
        count(&c, "SELECT count(*) FROM tombstone.operations").await,
        1
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM tombstone.operation_rows").await,
        3122
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(DISTINCT op_id) FROM tombstone.operation_rows"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(DISTINCT deleted_at) FROM tasks WHERE deleted_at IS NOT NULL"
        )
        .await,
        1
    );
    // Deleting it again touches nothing.
    assert_eq!(c.execute(out.sql.as_ref(), &[&1i64]).await.unwrap(), 0);
    assert_eq!(
        count(&c, "SELECT count(*) FROM tombstone.operations").await,
        1
    );
    // Reads through the rewriter no longer see it.
    let read = rewrite(
        "SELECT count(*) FROM tasks WHERE project_id = 1",
        &snap,
        &SessionContext::normal("postgres"),
    )
    .unwrap();
    assert_eq!(count(&c, &read.sql).await, 0);
}

#[tokio::test]
async fn restrict_refuses_with_23503_and_changes_nothing() {
    let db = TestDb::create("restrict", 3);
    let c = db.connect().await;
    let snap = db.snapshot(&c).await;
    let out = rewrite(
        "DELETE FROM categories WHERE id = 1",
        &snap,
        &SessionContext::normal("postgres"),
    )
    .unwrap();
    let err = c
        .batch_execute(&out.sql)
        .await
        .expect_err("RESTRICT must fail");
    let db_err = err.as_db_error().expect("database error");
    assert_eq!(db_err.code().code(), "23503");
    assert!(
        db_err.message().contains("projects_category_id_fkey"),
        "{}",
        db_err.message()
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM categories WHERE deleted_at IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM tombstone.operations").await,
        0
    );
    // With its projects gone (soft), the category can be deleted.
    let p = rewrite(
        "DELETE FROM projects WHERE category_id = 1",
        &snap,
        &SessionContext::normal("postgres"),
    )
    .unwrap();
    c.batch_execute(&p.sql).await.unwrap();
    c.batch_execute(&out.sql).await.unwrap();
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM categories WHERE deleted_at IS NOT NULL"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn set_null_is_applied_and_recorded_for_restore() {
    let db = TestDb::create("setnull", 3);
    let c = db.connect().await;
    let snap = db.snapshot(&c).await;
    let owner: uuid_string::Uuid = uuid_string::get(&c).await;
    let owned = count(
        &c,
        &format!("SELECT count(*) FROM projects WHERE owner_id = '{owner}'"),
    )
    .await;
    assert!(owned > 0);
    let sql = format!("DELETE FROM users WHERE id = '{owner}'");
    let out = rewrite(&sql, &snap, &SessionContext::normal("postgres")).unwrap();
    c.batch_execute(&out.sql).await.unwrap();
    assert_eq!(
        count(
            &c,
            &format!("SELECT count(*) FROM projects WHERE owner_id = '{owner}'")
        )
        .await,
        0
    );
    let recorded = count(
        &c,
        &format!(
            "SELECT count(*) FROM tombstone.operation_rows WHERE action = 'set_null' AND table_name = 'projects' AND old_values->>'owner_id' = '{owner}'"
        ),
    )
    .await;
    assert_eq!(recorded, owned);
    // Memberships cascade (composite keys).
    assert_eq!(
        count(
            &c,
            &format!(
                "SELECT count(*) FROM team_members WHERE user_id = '{owner}' AND deleted_at IS NULL"
            )
        )
        .await,
        0
    );
}

#[tokio::test]
async fn returning_shows_what_a_hard_delete_returns() {
    let db = TestDb::create("returning", 3);
    let c = db.connect().await;
    let snap = db.snapshot(&c).await;
    let out = rewrite(
        "DELETE FROM comments c WHERE c.id IN (1, 2) RETURNING *, c.deleted_at AS was",
        &snap,
        &SessionContext::normal("postgres"),
    )
    .unwrap();
    let rows = c.query(out.sql.as_ref(), &[]).await.unwrap();
    assert_eq!(rows.len(), 2);
    let names: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        ["id", "task_id", "author_id", "body", "deleted_at", "was"]
    );
    for r in &rows {
        let d: Option<std::time::SystemTime> = r.get("deleted_at");
        assert!(d.is_none());
    }
}

/// A user id that owns at least one project (text form).
mod uuid_string {
    pub type Uuid = String;
    pub async fn get(c: &tokio_postgres::Client) -> String {
        c.query_one(
            "SELECT owner_id::text FROM projects WHERE owner_id IS NOT NULL ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0)
    }
}

#[tokio::test]
async fn self_referencing_cascades_follow_the_whole_tree() {
    let db = TestDb::create("tree", 1);
    let c = db.connect().await;
    c.batch_execute(
        "CREATE TABLE nodes (id bigint PRIMARY KEY, parent_id bigint REFERENCES nodes (id) ON DELETE CASCADE,
                             deleted_at timestamptz);
         CREATE TABLE leaves (id bigint PRIMARY KEY, node_id bigint NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
                              deleted_at timestamptz);
         CREATE TABLE replies (id bigint PRIMARY KEY, task_id bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                               parent_id bigint REFERENCES replies (id) ON DELETE CASCADE, deleted_at timestamptz);
         -- two trees of depth 6 under roots 1 and 2
         INSERT INTO nodes SELECT g, CASE WHEN g <= 2 THEN NULL ELSE g / 2 END FROM generate_series(1, 127) g;
         INSERT INTO leaves SELECT g, g FROM generate_series(1, 127) g;
         -- reply chains on tasks 1 and 2: 1 <- 3 <- 5 … and 2 <- 4 <- 6 …
         INSERT INTO replies SELECT g, 2 - g % 2, CASE WHEN g <= 2 THEN NULL ELSE g - 2 END FROM generate_series(1, 40) g;",
    )
    .await
    .unwrap();
    db.install(&db.snapshot(&c).await).await;
    let snap = db.snapshot(&c).await;
    let s = SessionContext::normal("postgres");
    // Target with a self-reference: node 2 and everything under it (2, 4, 5, 8–11, …).
    let out = rewrite("DELETE FROM nodes WHERE id = 2", &snap, &s).unwrap();
    assert_eq!(
        c.execute(out.sql.as_ref(), &[]).await.unwrap(),
        1,
        "{}",
        out.sql
    );
    let under_2 = count(&c, "WITH RECURSIVE t AS (SELECT 2::bigint AS id UNION ALL SELECT n.id FROM nodes n JOIN t ON n.parent_id = t.id) SELECT count(*) FROM t").await;
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM nodes WHERE deleted_at IS NOT NULL"
        )
        .await,
        under_2
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM leaves WHERE deleted_at IS NOT NULL"
        )
        .await,
        under_2
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM nodes WHERE id IN (1, 3) AND deleted_at IS NULL"
        )
        .await,
        2
    );
    // A self-referencing child: deleting task 1 removes its whole reply chain.
    let out = rewrite("DELETE FROM tasks WHERE id = 1", &snap, &s).unwrap();
    c.batch_execute(&out.sql).await.unwrap();
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM replies WHERE deleted_at IS NOT NULL"
        )
        .await,
        20
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM replies WHERE deleted_at IS NOT NULL AND task_id <> 1"
        )
        .await,
        0
    );
    // Deleting a middle reply takes its descendants only.
    let out = rewrite("DELETE FROM replies WHERE id = 10", &snap, &s).unwrap();
    assert_eq!(c.execute(out.sql.as_ref(), &[]).await.unwrap(), 1);
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM replies WHERE task_id = 2 AND deleted_at IS NOT NULL"
        )
        .await,
        16
    );
    // Operation rows: one per soft-deleted row.
    assert_eq!(
        count(&c, "SELECT count(*) FROM tombstone.operation_rows").await,
        count(&c, "SELECT (SELECT count(*) FROM nodes WHERE deleted_at IS NOT NULL) + (SELECT count(*) FROM leaves WHERE deleted_at IS NOT NULL) + (SELECT count(*) FROM replies WHERE deleted_at IS NOT NULL) + (SELECT count(*) FROM tasks WHERE deleted_at IS NOT NULL) + (SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL) + (SELECT count(*) FROM attachments WHERE deleted_at IS NOT NULL) + (SELECT count(*) FROM time_entries WHERE deleted_at IS NOT NULL)").await
    );
}

#[tokio::test]
async fn composite_keys_other_schemas_and_irregular_names() {
    let db = TestDb::create("composite", 1);
    let c = db.connect().await;
    c.batch_execute(
        r#"CREATE SCHEMA "Weird Schema";
           CREATE TABLE "Weird Schema"."Parent Table" (region text, num int, "Deleted At" timestamptz,
                                                      PRIMARY KEY (region, num));
           CREATE TABLE "Weird Schema".kids (id serial PRIMARY KEY, reg text, n int, "Deleted At" timestamptz,
                                             FOREIGN KEY (reg, n) REFERENCES "Weird Schema"."Parent Table" (region, num) ON DELETE CASCADE);
           CREATE TABLE public.refs (id serial PRIMARY KEY, reg text, n int, deleted_at timestamptz,
                                     FOREIGN KEY (reg, n) REFERENCES "Weird Schema"."Parent Table" (region, num) ON DELETE SET NULL);
           INSERT INTO "Weird Schema"."Parent Table" VALUES ('eu', 1), ('eu', 2), ('us', 1);
           INSERT INTO "Weird Schema".kids (reg, n) VALUES ('eu', 1), ('eu', 1), ('eu', 2), ('us', 1);
           INSERT INTO refs (reg, n) VALUES ('eu', 1), ('us', 1);"#,
    )
    .await
    .unwrap();
    let catalog = tombstone::schema::load::load_catalog(&c).await.unwrap();
    let options = tombstone::schema::SnapshotOptions {
        column: "Deleted At".into(),
        ..Default::default()
    };
    db.install(&tombstone::schema::SchemaSnapshot::build(catalog, &options))
        .await;
    let catalog = tombstone::schema::load::load_catalog(&c).await.unwrap();
    let snap = tombstone::schema::SchemaSnapshot::build(catalog, &options);
    let s = SessionContext::normal("postgres");
    let out = rewrite(
        r#"DELETE FROM "Weird Schema"."Parent Table" WHERE region = 'eu' AND num = 1"#,
        &snap,
        &s,
    )
    .unwrap();
    assert_eq!(
        c.execute(out.sql.as_ref(), &[]).await.unwrap(),
        1,
        "{}",
        out.sql
    );
    assert_eq!(
        count(
            &c,
            r#"SELECT count(*) FROM "Weird Schema".kids WHERE "Deleted At" IS NOT NULL"#
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &c,
            r#"SELECT count(*) FROM "Weird Schema".kids WHERE "Deleted At" IS NULL"#
        )
        .await,
        2
    );
    // refs has no "Deleted At": unprotected, but SET NULL still applies (both columns).
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM refs WHERE reg IS NULL AND n IS NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(&c, r#"SELECT count(*) FROM tombstone.operation_rows WHERE action = 'set_null' AND old_values = '{"reg": "eu", "n": 1}'"#).await,
        1
    );
    let read = rewrite(r#"SELECT count(*) FROM "Weird Schema"."Parent Table" p JOIN "Weird Schema".kids k ON (k.reg, k.n) = (p.region, p.num)"#, &snap, &s).unwrap();
    assert_eq!(count(&c, &read.sql).await, 2, "{}", read.sql);
}

#[tokio::test]
async fn bypass_sessions_see_the_trash_or_everything() {
    use tombstone::rewrite::{Role, Visibility};
    let db = TestDb::create("bypass", 3);
    let c = db.connect().await;
    let snap = db.snapshot(&c).await;
    let normal = SessionContext::normal("postgres");
    let del = rewrite("DELETE FROM projects WHERE id = 1", &snap, &normal).unwrap();
    c.batch_execute(&del.sql).await.unwrap();
    let q = "SELECT count(*) FROM tasks t LEFT JOIN comments c ON c.task_id = t.id";
    for (visibility, expected) in [
        (Visibility::Active, 2 * 2000),
        (Visibility::Deleted, 2000),
        (Visibility::All, 3 * 2000),
    ] {
        let session = SessionContext {
            role: Role::Bypass { visibility },
            ..normal.clone()
        };
        let out = rewrite(q, &snap, &session).unwrap();
        assert_eq!(
            count(&c, &out.sql).await,
            expected,
            "{visibility:?}: {}",
            out.sql
        );
    }
}

#[tokio::test]
async fn the_clients_where_is_evaluated_once() {
    // SPEC W10: a volatile predicate picks the rows once; the tag, the
    // soft-deleted rows and the operation's rows are the same rows.
    let db = TestDb::create("where_once", 3);
    let c = db.connect().await;
    let snap = db.snapshot(&c).await;
    let s = SessionContext::normal("postgres");
    for sql in [
        "DELETE FROM comments WHERE id IN (SELECT id FROM comments ORDER BY random() LIMIT 3)",
        "DELETE FROM comments WHERE id IN (SELECT id FROM comments WHERE deleted_at IS NULL LIMIT 3)",
        "DELETE FROM comments WHERE random() < 0.01",
    ] {
        c.batch_execute("TRUNCATE tombstone.operation_rows CASCADE; UPDATE comments SET deleted_at = NULL WHERE deleted_at IS NOT NULL")
            .await
            .unwrap();
        let out = rewrite(sql, &snap, &s).unwrap();
        let tag = c.execute(out.sql.as_ref(), &[]).await.unwrap();
        let deleted = count(
            &c,
            "SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL",
        )
        .await;
        let recorded = count(
            &c,
            "SELECT count(*) FROM tombstone.operation_rows WHERE table_name = 'comments'",
        )
        .await;
        assert_eq!(tag as i64, deleted, "{sql}: tag vs rows");
        assert_eq!(recorded, deleted, "{sql}: operation rows vs rows");
        if sql.contains("LIMIT 3") {
            assert_eq!(deleted, 3, "{sql}");
        }
    }
}
