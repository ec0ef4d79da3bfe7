//! `tombstone doctor` and `tombstone migrate --fix` on the scenario
//! schema: doctor names `task_tags` and the non-partial `categories.name`
//! unique index, migrate fixes them (idempotently), doctor is then clean;
//! views and functions over protected tables are named; and what escapes
//! the row-level security migrate installs (login roles that skip it,
//! tables without it, SECURITY DEFINER functions and views owned by a role
//! that skips it) is reported.
//!
//! Roles are cluster-wide: test roles have unique names and are dropped
//! after the database. A login superuser is reported in every database, so
//! the test that creates one and the one that expects a clean report hold
//! an advisory lock (on the admin database, so across test processes too);
//! the clean report acknowledges the cluster's own superusers (`postgres`
//! runs migrate and owns schema tombstone, so it is excluded anyway; a
//! developer's cluster may have more, e.g. `root`) by listing them as
//! bypass roles, as an operator who means them to see the trash would.

mod common;

use std::process::Command;

use common::{TestDb, admin_url, tombstone, unique_name};
use tokio_postgres::Client;

/// Held while a test creates a login superuser or expects none to be
/// reported; released when the connection closes.
async fn superuser_lock() -> Client {
    let client = common::connect(&admin_url()).await;
    client
        .batch_execute("SELECT pg_advisory_lock(hashtext('tombstone tests: cluster superusers'))")
        .await
        .expect("advisory lock");
    client
}

/// Drops cluster roles when the test ends (declared before the database,
/// so dropped after it, with the privileges it held).
struct Roles(Vec<String>);

impl Drop for Roles {
    fn drop(&mut self) {
        for r in self.0.iter().rev() {
            let _ = Command::new("psql")
                .arg(admin_url())
                .args(["-q", "-c", &format!("DROP ROLE IF EXISTS \"{r}\"")])
                .output();
        }
    }
}

/// The scenario schema and data alone, without any tombstone schema.
fn raw_scenario(tag: &str) -> TestDb {
    let db = TestDb::new(&format!("tombstone_test_{tag}"));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenario");
    let (schema, data) = (dir.join("schema.sql"), dir.join("data.sql"));
    common::psql(
        &db.url,
        &[
            "-v",
            "projects=1",
            "-f",
            schema.to_str().unwrap_or_default(),
            "-f",
            data.to_str().unwrap_or_default(),
        ],
    );
    db
}

#[tokio::test]
async fn doctor_reports_migrate_fixes_doctor_is_clean() {
    let db = raw_scenario("ops_doctor");
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
    // (task_tags gets the foreign-key checks every child of a protected
    // parent gets, not the fix that protects it.)
    assert!(
        !out.lines()
            .any(|l| l.contains("task_tags") && l.contains("ADD COLUMN")),
        "{out}"
    );
    // Without --fix, the application's tables are left alone.
    let (ok, out, err) = tombstone(&["migrate", "--database-url", url]);
    assert!(ok);
    assert!(!out.contains("schema fixes"), "{out}");
    assert!(err.contains("--fix"), "{err}");

    let (ok, out, err) = tombstone(&["migrate", "--fix", "--apply", "--database-url", url]);
    assert!(ok, "{out}{err}");
    let lock = superuser_lock().await;
    let client = db.connect().await;
    client
        .batch_execute(
            "INSERT INTO tombstone.bypass_roles (role_name)
             SELECT rolname FROM pg_roles WHERE rolsuper ON CONFLICT DO NOTHING",
        )
        .await
        .unwrap();
    let (ok, out, _) = tombstone(&["doctor", "--database-url", url]);
    drop(lock);
    assert!(ok, "doctor after migrate:\n{out}");
    assert!(out.contains("Nothing needs fixing."), "{out}");
    assert!(out.contains("public.task_tags (deleted_at)"), "{out}");

    // What migrate did: task_tags is protected and guarded; a deleted
    // category's name can be used again.
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

    // A renamed key column leaves the foreign-key checks migrate generated
    // behind: doctor says so, and migrate brings them up to date.
    client
        .batch_execute("ALTER TABLE comments RENAME COLUMN task_id TO task_ref")
        .await
        .unwrap();
    // Until then the application's inserts still work (with a warning).
    client
        .batch_execute(
            "INSERT INTO comments (task_ref, body) SELECT min(id), 'after the rename' FROM tasks",
        )
        .await
        .unwrap();
    let (_, out, _) = tombstone(&["doctor", "--database-url", url]);
    assert!(
        out.contains("out of date for public.comments.comments_task_id_fkey"),
        "{out}"
    );
    let (ok, _, err) = tombstone(&["migrate", "--fix", "--apply", "--database-url", url]);
    assert!(ok, "{err}");
    let (_, out, _) = tombstone(&["doctor", "--database-url", url]);
    assert!(!out.contains("out of date"), "{out}");
    client
        .batch_execute("ALTER TABLE comments RENAME COLUMN task_ref TO task_id")
        .await
        .unwrap();
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

#[tokio::test]
async fn doctor_reports_what_escapes_row_level_security() {
    let id = unique_name("doc");
    let role = |what: &str| format!("{what}_{id}");
    let (byp, idle, listed, group, member, app, su) = (
        role("byp"),
        role("idle"),
        role("listed"),
        role("grp"),
        role("member"),
        role("app"),
        role("su"),
    );
    let roles = Roles(vec![
        byp.clone(),
        idle.clone(),
        listed.clone(),
        group.clone(),
        member.clone(),
        app.clone(),
    ]);
    let db = TestDb::create("ops_doctor_rls", 1);
    let url = db.url.as_str();
    let (ok, out, err) = tombstone(&["migrate", "--apply", "--database-url", url]);
    assert!(ok, "{out}{err}");

    // Migrated: no table without row-level security, no escaping function
    // or view, no BYPASSRLS login role with privileges here (superusers of
    // the cluster may be reported: see the module comment).
    let (_, out, _) = tombstone(&["doctor", "--database-url", url]);
    for absent in [
        "row-level security is not",
        "missing (or not restrictive",
        "SECURITY DEFINER function",
        "can log in with BYPASSRLS",
        "can SET ROLE",
        "is owned by",
    ] {
        assert!(!out.contains(absent), "{absent}:\n{out}");
    }

    let client = db.connect().await;
    client
        .batch_execute(&format!(
            r#"
            CREATE ROLE "{byp}" LOGIN BYPASSRLS;
            GRANT SELECT ON tasks TO "{byp}";
            CREATE ROLE "{idle}" LOGIN BYPASSRLS;
            CREATE ROLE "{listed}" LOGIN BYPASSRLS;
            GRANT SELECT ON tasks TO "{listed}";
            INSERT INTO tombstone.bypass_roles VALUES ('{listed}');
            CREATE ROLE "{group}" NOLOGIN BYPASSRLS;
            GRANT SELECT ON projects TO "{group}";
            CREATE ROLE "{member}" LOGIN IN ROLE "{group}";
            CREATE ROLE "{app}" LOGIN;
            GRANT USAGE ON SCHEMA public TO "{app}";

            ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY;
            ALTER TABLE categories DISABLE ROW LEVEL SECURITY;
            DROP POLICY tombstone_delete ON comments;
            ALTER POLICY tombstone_select ON projects TO "{app}";
            CREATE TABLE fresh (id int PRIMARY KEY, deleted_at timestamptz);

            CREATE FUNCTION leak() RETURNS bigint LANGUAGE sql SECURITY DEFINER
              AS 'SELECT count(*) FROM public.tasks';
            CREATE FUNCTION granted(int) RETURNS bigint LANGUAGE sql SECURITY DEFINER
              AS 'SELECT count(*) FROM public.projects';
            REVOKE EXECUTE ON FUNCTION granted(int) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION granted(int) TO "{app}";
            CREATE FUNCTION sealed() RETURNS bigint LANGUAGE sql SECURITY DEFINER
              AS 'SELECT count(*) FROM public.tasks';
            REVOKE EXECUTE ON FUNCTION sealed() FROM PUBLIC;
            CREATE FUNCTION app_owned() RETURNS bigint LANGUAGE sql SECURITY DEFINER
              AS 'SELECT count(*) FROM public.tasks';
            ALTER FUNCTION app_owned() OWNER TO "{app}";
            CREATE FUNCTION byp_owned() RETURNS bigint LANGUAGE sql SECURITY DEFINER
              AS 'SELECT count(*) FROM public.tasks';
            ALTER FUNCTION byp_owned() OWNER TO "{byp}";

            CREATE VIEW v_open AS SELECT id, title FROM tasks;
            GRANT SELECT ON v_open TO "{app}";
            CREATE VIEW v_cols AS SELECT id, name FROM projects;
            GRANT SELECT (id) ON v_cols TO "{app}";
            CREATE VIEW v_invoker WITH (security_invoker = true) AS SELECT id FROM tasks;
            GRANT SELECT ON v_invoker TO "{app}";
            CREATE VIEW v_private AS SELECT id FROM tasks;
            CREATE VIEW v_app AS SELECT id FROM tasks;
            ALTER VIEW v_app OWNER TO "{app}";
            GRANT SELECT ON v_app TO PUBLIC;
            CREATE MATERIALIZED VIEW mv_tasks AS SELECT id FROM tasks;
            GRANT SELECT ON mv_tasks TO PUBLIC;
            "#
        ))
        .await
        .expect("setup");

    let lock = superuser_lock().await;
    let su_role = Roles(vec![su.clone()]);
    client
        .batch_execute(&format!(r#"CREATE ROLE "{su}" LOGIN SUPERUSER"#))
        .await
        .unwrap();
    let (ok, out, _) = tombstone(&["doctor", "--database-url", url]);
    drop(su_role);
    drop(lock);
    assert!(!ok, "{out}");
    let expected = [
        // 1. Login roles that skip the policies.
        format!("role {su} is a superuser that can log in: row-level security does not apply to it"),
        format!(
            "role {byp} can log in with BYPASSRLS and has privileges on protected tables: row-level security does not apply to it, so connected to the database directly (not through the proxy) it sees and changes soft-deleted rows; ALTER ROLE {byp} NOBYPASSRLS"
        ),
        format!("login role {member} can SET ROLE to {group} (BYPASSRLS)"),
        format!("REVOKE {group} FROM {member}"),
        // 2. Protected tables without the policies.
        "public.tasks: row-level security is not forced".to_string(),
        "public.categories: row-level security is not enabled:".to_string(),
        "public.comments: policy tombstone_delete missing (or not restrictive for every role)"
            .to_string(),
        "public.projects: policy tombstone_select missing".to_string(),
        "public.fresh: row-level security is not enabled; policies tombstone_select, tombstone_insert, tombstone_update, tombstone_delete missing".to_string(),
        "run tombstone migrate --apply".to_string(),
        // 3. SECURITY DEFINER functions that run as a role that skips them.
        "SECURITY DEFINER function public.leak() is owned by postgres (superuser) and executable by PUBLIC: it runs as a role that row-level security does not bind".to_string(),
        format!(
            "SECURITY DEFINER function public.granted(integer) is owned by postgres (superuser) and executable by {app}:"
        ),
        format!("SECURITY DEFINER function public.byp_owned() is owned by {byp} (BYPASSRLS)"),
        // 4. Views owned by such a role.
        format!(
            "view public.v_open over protected table public.tasks is owned by postgres (superuser) and readable by {app}: PostgreSQL applies its tables' row-level security as the view's owner"
        ),
        "ALTER VIEW public.v_open SET (security_invoker = true)".to_string(),
        format!("view public.v_cols over protected table public.projects is owned by postgres (superuser) and readable by {app}"),
        "materialized view public.mv_tasks over protected table public.tasks is owned by postgres (superuser) and readable by PUBLIC: it holds what its owner saw at the last refresh".to_string(),
    ];
    for e in &expected {
        assert!(out.contains(e.as_str()), "expected {e:?} in:\n{out}");
    }
    let unexpected = [
        format!("role {idle} "),
        format!("role {listed} "),
        format!("role {app} "),
        "SECURITY DEFINER function public.sealed()".to_string(),
        "SECURITY DEFINER function public.app_owned()".to_string(),
        "view public.v_invoker over".to_string(),
        "view public.v_private over".to_string(),
        "view public.v_app over".to_string(),
    ];
    for u in &unexpected {
        assert!(!out.contains(u.as_str()), "unexpected {u:?} in:\n{out}");
    }

    // migrate puts the policies back; the rest is the operator's to fix.
    let (ok, _, err) = tombstone(&["migrate", "--apply", "--database-url", url]);
    assert!(ok, "{err}");
    let (ok, out, _) = tombstone(&["doctor", "--database-url", url]);
    assert!(!ok);
    assert!(!out.contains("row-level security is not"), "{out}");
    assert!(!out.contains("missing (or not restrictive"), "{out}");
    assert!(!out.contains(&format!("role {su} ")), "{out}");
    for e in &expected[10..] {
        assert!(out.contains(e.as_str()), "expected {e:?} in:\n{out}");
    }

    // Acknowledged as bypass roles, the login roles are no longer reported.
    client
        .batch_execute(&format!(
            "INSERT INTO tombstone.bypass_roles VALUES ('{byp}'), ('{group}')"
        ))
        .await
        .unwrap();
    let (_, out, _) = tombstone(&["doctor", "--database-url", url]);
    assert!(!out.contains(&format!("role {byp} ")), "{out}");
    assert!(!out.contains(&format!("login role {member} ")), "{out}");
    drop(client);
    drop(db);
    drop(roles);
}
