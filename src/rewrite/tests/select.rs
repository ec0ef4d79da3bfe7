//! Reads: every SPEC R1 position, join types, names, comments, parameters.

use super::*;

/// Protected tables of the scenario, as a query can name them unqualified.
const PROTECTED: &[&str] = &[
    "users",
    "teams",
    "team_members",
    "categories",
    "projects",
    "project_members",
    "tasks",
    "comments",
    "attachments",
    "time_entries",
    "documents",
    "document_versions",
];

/// `{t}` is replaced by each protected table name.
const PER_TABLE: &[(&str, &str)] = &[
    (
        "SELECT * FROM {t}",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "select * from {t}",
        "select * from {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM public.{t}",
        "SELECT * FROM public.{t} WHERE public.{t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM \"{t}\"",
        "SELECT * FROM \"{t}\" WHERE \"{t}\".deleted_at IS NULL",
    ),
    (
        "SELECT * FROM {t} x",
        "SELECT * FROM {t} x WHERE x.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM {t} AS x",
        "SELECT * FROM {t} AS x WHERE x.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM {t} AS \"X\"",
        "SELECT * FROM {t} AS \"X\" WHERE \"X\".deleted_at IS NULL",
    ),
    (
        "SELECT * FROM ONLY {t}",
        "SELECT * FROM ONLY {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT count(*) FROM {t}",
        "SELECT count(*) FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM {t} WHERE true",
        "SELECT * FROM {t} WHERE (true) AND {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM {t} WHERE a = 1 OR b = 2",
        "SELECT * FROM {t} WHERE (a = 1 OR b = 2) AND {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM {t} ORDER BY 1",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL ORDER BY 1",
    ),
    (
        "SELECT * FROM {t} LIMIT 5",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL LIMIT 5",
    ),
    (
        "SELECT * FROM {t} OFFSET 5",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL OFFSET 5",
    ),
    (
        "SELECT * FROM {t} FETCH FIRST 1 ROW ONLY",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL FETCH FIRST 1 ROW ONLY",
    ),
    (
        "SELECT * FROM {t} FOR UPDATE",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL FOR UPDATE",
    ),
    (
        "SELECT * FROM {t} FOR NO KEY UPDATE SKIP LOCKED",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL FOR NO KEY UPDATE SKIP LOCKED",
    ),
    (
        "SELECT * FROM {t} x FOR SHARE OF x NOWAIT",
        "SELECT * FROM {t} x WHERE x.deleted_at IS NULL FOR SHARE OF x NOWAIT",
    ),
    (
        "SELECT 1 FROM {t} GROUP BY 1",
        "SELECT 1 FROM {t} WHERE {t}.deleted_at IS NULL GROUP BY 1",
    ),
    (
        "SELECT 1 FROM {t} HAVING count(*) > 1",
        "SELECT 1 FROM {t} WHERE {t}.deleted_at IS NULL HAVING count(*) > 1",
    ),
    (
        "SELECT row_number() OVER w FROM {t} WINDOW w AS ()",
        "SELECT row_number() OVER w FROM {t} WHERE {t}.deleted_at IS NULL WINDOW w AS ()",
    ),
    (
        "SELECT * FROM {t};",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL;",
    ),
    (
        "SELECT * FROM {t} -- note",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL -- note",
    ),
    (
        "SELECT * FROM {t} /* c */ WHERE x",
        "SELECT * FROM {t} /* c */ WHERE (x) AND {t}.deleted_at IS NULL",
    ),
    (
        "SELECT (SELECT count(*) FROM {t})",
        "SELECT (SELECT count(*) FROM {t} WHERE {t}.deleted_at IS NULL)",
    ),
    (
        "SELECT EXISTS (SELECT 1 FROM {t} WHERE k = $1)",
        "SELECT EXISTS (SELECT 1 FROM {t} WHERE (k = $1) AND {t}.deleted_at IS NULL)",
    ),
    (
        "SELECT 1 WHERE 5 IN (SELECT k FROM {t})",
        "SELECT 1 WHERE 5 IN (SELECT k FROM {t} WHERE {t}.deleted_at IS NULL)",
    ),
    (
        "SELECT * FROM (SELECT * FROM {t}) s",
        "SELECT * FROM (SELECT * FROM {t} WHERE {t}.deleted_at IS NULL) s",
    ),
    (
        "WITH c AS (SELECT * FROM {t}) SELECT * FROM c",
        "WITH c AS (SELECT * FROM {t} WHERE {t}.deleted_at IS NULL) SELECT * FROM c",
    ),
    (
        "WITH {t} AS (SELECT 1) SELECT * FROM {t}",
        "WITH {t} AS (SELECT 1) SELECT * FROM {t}",
    ),
    (
        "TABLE {t}",
        "SELECT * FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT 1 FROM {t} UNION SELECT 2",
        "SELECT 1 FROM {t} WHERE {t}.deleted_at IS NULL UNION SELECT 2",
    ),
    (
        "SELECT 2 UNION ALL SELECT 1 FROM {t} ORDER BY 1",
        "SELECT 2 UNION ALL SELECT 1 FROM {t} WHERE {t}.deleted_at IS NULL ORDER BY 1",
    ),
    (
        "(SELECT 1 FROM {t}) EXCEPT (SELECT 2 FROM {t})",
        "(SELECT 1 FROM {t} WHERE {t}.deleted_at IS NULL) EXCEPT (SELECT 2 FROM {t} WHERE {t}.deleted_at IS NULL)",
    ),
    (
        "SELECT 1 FROM {t} INTERSECT SELECT 1",
        "SELECT 1 FROM {t} WHERE {t}.deleted_at IS NULL INTERSECT SELECT 1",
    ),
    (
        "SELECT * INTO newt FROM {t}",
        "SELECT * INTO newt FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "CREATE TABLE c AS SELECT * FROM {t}",
        "CREATE TABLE c AS SELECT * FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "DECLARE k CURSOR FOR SELECT * FROM {t}",
        "DECLARE k CURSOR FOR SELECT * FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "EXPLAIN SELECT * FROM {t}",
        "EXPLAIN SELECT * FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM {t}",
        "EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "COPY (SELECT * FROM {t}) TO STDOUT",
        "COPY (SELECT * FROM {t} WHERE {t}.deleted_at IS NULL) TO STDOUT",
    ),
    (
        "COPY {t} TO STDOUT",
        "COPY (SELECT * FROM {t} WHERE deleted_at IS NULL) TO STDOUT",
    ),
    (
        "COPY {t} (a, b) TO STDOUT WITH (FORMAT csv)",
        "COPY (SELECT a, b FROM {t} WHERE deleted_at IS NULL) TO STDOUT WITH (FORMAT csv)",
    ),
    (
        "PREPARE q AS SELECT * FROM {t} WHERE k = $1",
        "PREPARE q AS SELECT * FROM {t} WHERE (k = $1) AND {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM tags, {t}",
        "SELECT * FROM tags, {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM tags JOIN {t} ON true",
        "SELECT * FROM tags JOIN {t} ON true WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM tags LEFT JOIN {t} ON true",
        "SELECT * FROM tags LEFT JOIN {t} ON (true) AND {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM tags LEFT OUTER JOIN {t} x ON x.k = tags.id",
        "SELECT * FROM tags LEFT OUTER JOIN {t} x ON (x.k = tags.id) AND x.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM {t} RIGHT JOIN tags ON true",
        "SELECT * FROM {t} RIGHT JOIN tags ON (true) AND {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM {t} LEFT JOIN tags ON true",
        "SELECT * FROM {t} LEFT JOIN tags ON true WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM tags RIGHT JOIN {t} ON true",
        "SELECT * FROM tags RIGHT JOIN {t} ON true WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM tags FULL JOIN {t} ON true",
        "SELECT * FROM tags FULL JOIN {t} ON (true) AND {t}.deleted_at IS NULL WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM tags CROSS JOIN {t}",
        "SELECT * FROM tags CROSS JOIN {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT * FROM tags LEFT JOIN {t} USING (id)",
        "SELECT * FROM tags LEFT JOIN (SELECT * FROM {t} WHERE deleted_at IS NULL) AS {t} USING (id)",
    ),
    (
        "SELECT * FROM tags NATURAL LEFT JOIN {t} x",
        "SELECT * FROM tags NATURAL LEFT JOIN (SELECT * FROM {t} WHERE deleted_at IS NULL) x",
    ),
    (
        "SELECT * FROM tags FULL JOIN {t} USING (id)",
        "SELECT * FROM tags FULL JOIN (SELECT * FROM {t} WHERE deleted_at IS NULL) AS {t} USING (id)",
    ),
    (
        "SELECT * FROM tags, LATERAL (SELECT * FROM {t} LIMIT 1) l",
        "SELECT * FROM tags, LATERAL (SELECT * FROM {t} WHERE {t}.deleted_at IS NULL LIMIT 1) l",
    ),
    (
        "SELECT * FROM tags t LEFT JOIN LATERAL (SELECT * FROM {t}) l ON true",
        "SELECT * FROM tags t LEFT JOIN LATERAL (SELECT * FROM {t} WHERE {t}.deleted_at IS NULL) l ON true",
    ),
    (
        "INSERT INTO tags (name) SELECT k FROM {t}",
        "INSERT INTO tags (name) SELECT k FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
    (
        "SELECT xmin, ctid, x FROM {t} x",
        "SELECT xmin, ctid, x FROM {t} x WHERE x.deleted_at IS NULL",
    ),
    (
        "SELECT $1::int, $2 FROM {t} WHERE k = $3",
        "SELECT $1::int, $2 FROM {t} WHERE (k = $3) AND {t}.deleted_at IS NULL",
    ),
    (
        "SELECT 'it''s {t}', $$ {t} $$ FROM {t}",
        "SELECT 'it''s {t}', $$ {t} $$ FROM {t} WHERE {t}.deleted_at IS NULL",
    ),
];

#[test]
fn every_position_for_every_protected_table() {
    let mut n = 0;
    for t in PROTECTED {
        for (input, expected) in PER_TABLE {
            check(&input.replace("{t}", t), &expected.replace("{t}", t));
            n += 1;
        }
    }
    assert!(n > 500);
}

#[test]
fn schema_qualified_protected_table_in_other_schema() {
    check(
        "SELECT * FROM billing.invoices",
        "SELECT * FROM billing.invoices WHERE billing.invoices.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM billing.invoices i",
        "SELECT * FROM billing.invoices i WHERE i.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM \"billing\".\"invoices\"",
        "SELECT * FROM \"billing\".\"invoices\" WHERE \"billing\".\"invoices\".deleted_at IS NULL",
    );
    // Not on the search path: `invoices` alone is not billing.invoices.
    unchanged("SELECT * FROM invoices");
    let mut s = session();
    s.search_path = vec!["billing".into(), "public".into()];
    check_with(
        "SELECT * FROM invoices",
        "SELECT * FROM invoices WHERE invoices.deleted_at IS NULL",
        &s,
    );
}

#[test]
fn search_path_decides() {
    let mut s = session();
    s.search_path = vec!["other".into()];
    let snap = scenario();
    let out = rewrite("SELECT * FROM tasks", &snap, &s).unwrap();
    assert_eq!(out.sql, "SELECT * FROM tasks");
    s.search_path = vec!["$user".into(), "public".into()];
    check_with(
        "SELECT * FROM tasks",
        "SELECT * FROM tasks WHERE tasks.deleted_at IS NULL",
        &s,
    );
}

#[test]
fn case_and_quoting() {
    check(
        "SELECT * FROM TASKS",
        "SELECT * FROM TASKS WHERE TASKS.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM Tasks T",
        "SELECT * FROM Tasks T WHERE t.deleted_at IS NULL",
    );
    // A quoted name with capitals is another table.
    unchanged("SELECT * FROM \"Tasks\"");
}

#[test]
fn unprotected_and_unrelated_statements_are_borrowed() {
    for sql in [
        "SELECT 1",
        "SELECT * FROM tags",
        "SELECT * FROM task_tags",
        "INSERT INTO tags (name) VALUES ('x')",
        "UPDATE tags SET name = 'y'",
        "DELETE FROM task_tags WHERE tag_id = 1",
        "SELECT tasks_count FROM stats",
        "BEGIN",
        "SET search_path = public",
        "SELECT 'tasks'",
        "CREATE INDEX ON tasks (title)",
        "ALTER TABLE tasks ADD COLUMN x int",
        "VACUUM tasks",
        "SELEC * FROM tasks_x",
        "SELECT * FROM",
    ] {
        unchanged(sql);
    }
}

#[test]
fn joins_between_protected_tables() {
    check(
        "SELECT * FROM tasks t JOIN comments c ON c.task_id = t.id",
        "SELECT * FROM tasks t JOIN comments c ON c.task_id = t.id WHERE t.deleted_at IS NULL AND c.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks t LEFT JOIN comments c ON c.task_id = t.id WHERE t.id < 3",
        "SELECT * FROM tasks t LEFT JOIN comments c ON (c.task_id = t.id) AND c.deleted_at IS NULL WHERE (t.id < 3) AND t.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks t RIGHT JOIN projects p ON p.id = t.project_id",
        "SELECT * FROM tasks t RIGHT JOIN projects p ON (p.id = t.project_id) AND t.deleted_at IS NULL WHERE p.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks t FULL JOIN projects p ON p.id = t.project_id",
        "SELECT * FROM tasks t FULL JOIN projects p ON (p.id = t.project_id) AND t.deleted_at IS NULL AND p.deleted_at IS NULL WHERE t.deleted_at IS NULL AND p.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM projects p LEFT JOIN (tasks t JOIN comments c ON c.task_id = t.id) ON t.project_id = p.id",
        "SELECT * FROM projects p LEFT JOIN (tasks t JOIN comments c ON c.task_id = t.id) ON (t.project_id = p.id) AND t.deleted_at IS NULL AND c.deleted_at IS NULL WHERE p.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM projects p LEFT JOIN tasks t ON t.project_id = p.id LEFT JOIN comments c ON c.task_id = t.id",
        "SELECT * FROM projects p LEFT JOIN tasks t ON (t.project_id = p.id) AND t.deleted_at IS NULL LEFT JOIN comments c ON (c.task_id = t.id) AND c.deleted_at IS NULL WHERE p.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM projects p LEFT JOIN tasks t JOIN comments c ON c.task_id = t.id ON t.project_id = p.id",
        "SELECT * FROM projects p LEFT JOIN tasks t JOIN comments c ON c.task_id = t.id ON (t.project_id = p.id) AND t.deleted_at IS NULL AND c.deleted_at IS NULL WHERE p.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM (tasks t JOIN comments c ON c.task_id = t.id) AS j",
        "SELECT * FROM (tasks t JOIN comments c ON (c.task_id = t.id) AND t.deleted_at IS NULL AND c.deleted_at IS NULL) AS j",
    );
    check(
        "SELECT * FROM (tasks t LEFT JOIN comments c ON c.task_id = t.id) AS j",
        "SELECT * FROM ((SELECT * FROM tasks WHERE deleted_at IS NULL) t LEFT JOIN comments c ON (c.task_id = t.id) AND c.deleted_at IS NULL) AS j",
    );
    check(
        "SELECT * FROM tasks t JOIN comments c ON c.task_id = t.id AND c.body LIKE 'a%' WHERE t.done ORDER BY t.id LIMIT 10",
        "SELECT * FROM tasks t JOIN comments c ON c.task_id = t.id AND c.body LIKE 'a%' WHERE (t.done) AND t.deleted_at IS NULL AND c.deleted_at IS NULL ORDER BY t.id LIMIT 10",
    );
    check(
        "SELECT * FROM tasks t LEFT JOIN comments c ON CASE WHEN t.done THEN c.task_id = t.id ELSE false END",
        "SELECT * FROM tasks t LEFT JOIN comments c ON (CASE WHEN t.done THEN c.task_id = t.id ELSE false END) AND c.deleted_at IS NULL WHERE t.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks t LEFT JOIN comments c ON (c.task_id = t.id) WHERE NOT t.done",
        "SELECT * FROM tasks t LEFT JOIN comments c ON ((c.task_id = t.id)) AND c.deleted_at IS NULL WHERE (NOT t.done) AND t.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks t LEFT JOIN comments c ON left(c.body, 1) = 'a' AND c.task_id = t.id",
        "SELECT * FROM tasks t LEFT JOIN comments c ON (left(c.body, 1) = 'a' AND c.task_id = t.id) AND c.deleted_at IS NULL WHERE t.deleted_at IS NULL",
    );
}

#[test]
fn subqueries_ctes_and_set_operations() {
    check(
        "SELECT * FROM projects WHERE EXISTS (SELECT 1 FROM tasks WHERE tasks.project_id = projects.id) AND id IN (SELECT project_id FROM documents)",
        "SELECT * FROM projects WHERE (EXISTS (SELECT 1 FROM tasks WHERE (tasks.project_id = projects.id) AND tasks.deleted_at IS NULL) AND id IN (SELECT project_id FROM documents WHERE documents.deleted_at IS NULL)) AND projects.deleted_at IS NULL",
    );
    check(
        "WITH RECURSIVE r AS (SELECT id FROM projects UNION ALL SELECT r.id FROM r JOIN tasks ON tasks.id = r.id) SELECT * FROM r",
        "WITH RECURSIVE r AS (SELECT id FROM projects WHERE projects.deleted_at IS NULL UNION ALL SELECT r.id FROM r JOIN tasks ON tasks.id = r.id WHERE tasks.deleted_at IS NULL) SELECT * FROM r",
    );
    check(
        "WITH tasks AS (SELECT * FROM tasks) SELECT * FROM tasks",
        "WITH tasks AS (SELECT * FROM tasks WHERE tasks.deleted_at IS NULL) SELECT * FROM tasks",
    );
    check(
        "WITH RECURSIVE tasks AS (SELECT 1 AS id UNION SELECT id + 1 FROM tasks WHERE id < 3) SELECT * FROM tasks",
        "WITH RECURSIVE tasks AS (SELECT 1 AS id UNION SELECT id + 1 FROM tasks WHERE id < 3) SELECT * FROM tasks",
    );
    check(
        "WITH x AS (SELECT 1) SELECT * FROM public.tasks",
        "WITH x AS (SELECT 1) SELECT * FROM public.tasks WHERE public.tasks.deleted_at IS NULL",
    );
    check(
        "SELECT (SELECT max(id) FROM comments c WHERE c.task_id = t.id) FROM tasks t",
        "SELECT (SELECT max(id) FROM comments c WHERE (c.task_id = t.id) AND c.deleted_at IS NULL) FROM tasks t WHERE t.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks WHERE (SELECT count(*) FROM comments WHERE task_id = tasks.id) > 2",
        "SELECT * FROM tasks WHERE ((SELECT count(*) FROM comments WHERE (task_id = tasks.id) AND comments.deleted_at IS NULL) > 2) AND tasks.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks WHERE id = ANY (ARRAY(SELECT task_id FROM comments))",
        "SELECT * FROM tasks WHERE (id = ANY (ARRAY(SELECT task_id FROM comments WHERE comments.deleted_at IS NULL))) AND tasks.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks t WHERE NOT EXISTS (SELECT FROM comments c WHERE c.task_id = t.id)",
        "SELECT * FROM tasks t WHERE (NOT EXISTS (SELECT FROM comments c WHERE (c.task_id = t.id) AND c.deleted_at IS NULL)) AND t.deleted_at IS NULL",
    );
    check(
        "VALUES ((SELECT count(*) FROM tasks))",
        "VALUES ((SELECT count(*) FROM tasks WHERE tasks.deleted_at IS NULL))",
    );
    check(
        "SELECT id FROM tasks UNION SELECT id FROM comments ORDER BY 1",
        "SELECT id FROM tasks WHERE tasks.deleted_at IS NULL UNION SELECT id FROM comments WHERE comments.deleted_at IS NULL ORDER BY 1",
    );
    check(
        "SELECT * FROM generate_series(1, (SELECT count(*) FROM tasks)) g",
        "SELECT * FROM generate_series(1, (SELECT count(*) FROM tasks WHERE tasks.deleted_at IS NULL)) g",
    );
    check(
        "SELECT count(*) FILTER (WHERE done) FROM tasks t WHERE CASE WHEN done THEN true ELSE false END",
        "SELECT count(*) FILTER (WHERE done) FROM tasks t WHERE (CASE WHEN done THEN true ELSE false END) AND t.deleted_at IS NULL",
    );
    check(
        "SELECT DISTINCT ON (project_id) * FROM tasks ORDER BY project_id, id DESC",
        "SELECT DISTINCT ON (project_id) * FROM tasks WHERE tasks.deleted_at IS NULL ORDER BY project_id, id DESC",
    );
    check(
        "SELECT * FROM (VALUES (1)) v(x), tasks",
        "SELECT * FROM (VALUES (1)) v(x), tasks WHERE tasks.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM (SELECT 1) s JOIN tasks t ON true",
        "SELECT * FROM (SELECT 1) s JOIN tasks t ON true WHERE t.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks TABLESAMPLE SYSTEM (50) REPEATABLE (1)",
        "SELECT * FROM tasks TABLESAMPLE SYSTEM (50) REPEATABLE (1) WHERE tasks.deleted_at IS NULL",
    );
    check(
        "SELECT * FROM tasks WHERE title = E'\\''",
        "SELECT * FROM tasks WHERE (title = E'\\'') AND tasks.deleted_at IS NULL",
    );
}

#[test]
fn comments_literals_and_parameters_survive() {
    check(
        "/* app:orders */ SELECT /* c1 */ t.id -- x\nFROM tasks t /*actor='bob'*/",
        "/* app:orders */ SELECT /* c1 */ t.id -- x\nFROM tasks t WHERE t.deleted_at IS NULL /*actor='bob'*/",
    );
    check(
        "SELECT $tag$ FROM tasks $tag$, $1, $2 FROM tasks WHERE id = $2 AND title = $1",
        "SELECT $tag$ FROM tasks $tag$, $1, $2 FROM tasks WHERE (id = $2 AND title = $1) AND tasks.deleted_at IS NULL",
    );
    check(
        "SELECT 1; SELECT * FROM tasks; SELECT 2",
        "SELECT 1; SELECT * FROM tasks WHERE tasks.deleted_at IS NULL; SELECT 2",
    );
    check(
        "SELECT * FROM tasks;\nSELECT * FROM comments c",
        "SELECT * FROM tasks WHERE tasks.deleted_at IS NULL;\nSELECT * FROM comments c WHERE c.deleted_at IS NULL",
    );
    check(
        "SELECT 'é', * FROM tasks",
        "SELECT 'é', * FROM tasks WHERE tasks.deleted_at IS NULL",
    );
}

#[test]
fn bypass_visibility() {
    check_with(
        "SELECT * FROM tasks t",
        "SELECT * FROM tasks t",
        &bypass(Visibility::All),
    );
    check_with(
        "SELECT * FROM tasks t",
        "SELECT * FROM tasks t WHERE t.deleted_at IS NOT NULL",
        &bypass(Visibility::Deleted),
    );
    check_with(
        "SELECT * FROM tasks t",
        "SELECT * FROM tasks t WHERE t.deleted_at IS NULL",
        &bypass(Visibility::Active),
    );
    check_with(
        "SELECT * FROM tags FULL JOIN tasks ON true",
        "SELECT * FROM tags FULL JOIN (SELECT * FROM tasks WHERE deleted_at IS NOT NULL) AS tasks ON true",
        &bypass(Visibility::Deleted),
    );
}

/// Statements shaped like the ones ORMs send.
#[test]
fn orm_shaped_statements() {
    // Django select_related / filter
    check(
        r#"SELECT "tasks"."id", "tasks"."title", "projects"."id", "projects"."name" FROM "tasks" INNER JOIN "projects" ON ("tasks"."project_id" = "projects"."id") WHERE "tasks"."id" = 1 LIMIT 21"#,
        r#"SELECT "tasks"."id", "tasks"."title", "projects"."id", "projects"."name" FROM "tasks" INNER JOIN "projects" ON ("tasks"."project_id" = "projects"."id") WHERE ("tasks"."id" = 1) AND "tasks".deleted_at IS NULL AND "projects".deleted_at IS NULL LIMIT 21"#,
    );
    check(
        r#"SELECT "comments"."id" FROM "comments" LEFT OUTER JOIN "users" ON ("comments"."author_id" = "users"."id") WHERE "users"."id" IS NULL"#,
        r#"SELECT "comments"."id" FROM "comments" LEFT OUTER JOIN "users" ON (("comments"."author_id" = "users"."id")) AND "users".deleted_at IS NULL WHERE ("users"."id" IS NULL) AND "comments".deleted_at IS NULL"#,
    );
    // SQLAlchemy relationship loading with a parameter
    check(
        "SELECT tasks.id AS tasks_id, tasks.title AS tasks_title \nFROM tasks \nWHERE 42 = tasks.project_id",
        "SELECT tasks.id AS tasks_id, tasks.title AS tasks_title \nFROM tasks \nWHERE (42 = tasks.project_id) AND tasks.deleted_at IS NULL",
    );
    // Sequelize include
    check(
        r#"SELECT "Project"."id", "tasks"."id" AS "tasks.id" FROM "projects" AS "Project" LEFT OUTER JOIN "tasks" AS "tasks" ON "Project"."id" = "tasks"."project_id" WHERE "Project"."id" = $1;"#,
        r#"SELECT "Project"."id", "tasks"."id" AS "tasks.id" FROM "projects" AS "Project" LEFT OUTER JOIN "tasks" AS "tasks" ON ("Project"."id" = "tasks"."project_id") AND tasks.deleted_at IS NULL WHERE ("Project"."id" = $1) AND "Project".deleted_at IS NULL;"#,
    );
    // Hibernate / JDBC
    check(
        "select t1_0.id,t1_0.title from tasks t1_0 where t1_0.project_id=$1",
        "select t1_0.id,t1_0.title from tasks t1_0 where (t1_0.project_id=$1) AND t1_0.deleted_at IS NULL",
    );
    // Rails
    check(
        r#"SELECT "users".* FROM "users" WHERE "users"."email" = $1 LIMIT $2"#,
        r#"SELECT "users".* FROM "users" WHERE ("users"."email" = $1) AND "users".deleted_at IS NULL LIMIT $2"#,
    );
}
