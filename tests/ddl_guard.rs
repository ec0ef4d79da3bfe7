//! DDL that would remove protection is refused for normal sessions, in the
//! database (SPEC S4): through the proxy and on direct connections, for an
//! application role with DML grants and for one that owns the protected
//! tables; the message names the roles that may. Ordinary migrations keep
//! working, and allowed roles (superuser, a bypass role's member) pass.

mod common;

use common::protected::Protected;
use common::{admin_url, psql, sqlstate, unique_name};
use tokio_postgres::Client;

/// Drops cluster roles when the test ends (after the database).
struct Roles(Vec<String>);

impl Drop for Roles {
    fn drop(&mut self) {
        for r in &self.0 {
            let _ = std::process::Command::new("psql")
                .arg(admin_url())
                .args(["-q", "-c", &format!("DROP ROLE IF EXISTS \"{r}\"")])
                .output();
        }
    }
}

/// Statements a normal session must not run, each with what the refusal
/// is about.
const REFUSED: &[(&str, &str)] = &[
    // Without CASCADE, PostgreSQL refuses first (2BP01: the row-level
    // security policies depend on the column); with it, the guard does.
    (
        "ALTER TABLE tasks DROP COLUMN deleted_at CASCADE",
        "soft-delete column",
    ),
    (
        "ALTER TABLE tasks RENAME COLUMN deleted_at TO removed_at",
        "soft-delete column",
    ),
    (
        "ALTER TABLE tasks ALTER COLUMN deleted_at TYPE timestamp",
        "type of soft-delete column",
    ),
    (
        "ALTER TABLE tasks ALTER COLUMN deleted_at TYPE text",
        "type of soft-delete column",
    ),
    (
        "ALTER TABLE tasks ALTER COLUMN deleted_at SET DEFAULT now()",
        "default",
    ),
    ("ALTER TABLE tasks DISABLE TRIGGER USER", "disable trigger"),
    // PostgreSQL itself refuses a non-superuser the system (foreign-key)
    // triggers.
    ("ALTER TABLE tasks DISABLE TRIGGER ALL", ""),
    (
        "ALTER TABLE tasks DISABLE TRIGGER tombstone_audit_update",
        "disable trigger",
    ),
    (
        "ALTER TABLE tasks ENABLE REPLICA TRIGGER tombstone_guard_delete",
        "disable trigger",
    ),
    ("DROP TRIGGER tombstone_guard_delete ON tasks", "trigger"),
    ("DROP TRIGGER tombstone_audit_insert ON tasks", "trigger"),
    (
        "ALTER TRIGGER tombstone_audit_update ON tasks RENAME TO quiet",
        "trigger",
    ),
    (
        "CREATE TRIGGER keep BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION keep_row()",
        "BEFORE UPDATE or BEFORE DELETE",
    ),
    (
        "CREATE TRIGGER keep BEFORE DELETE OR UPDATE OF deleted_at ON tasks FOR EACH ROW EXECUTE FUNCTION keep_row()",
        "BEFORE UPDATE or BEFORE DELETE",
    ),
    (
        "CREATE OR REPLACE TRIGGER touch BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION keep_row()",
        "BEFORE UPDATE or BEFORE DELETE",
    ),
    (
        "CREATE OR REPLACE FUNCTION touch_row() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$",
        "BEFORE trigger",
    ),
    (
        "CREATE RULE no_delete AS ON DELETE TO tasks DO INSTEAD NOTHING",
        "rule",
    ),
    (
        "CREATE RULE no_update AS ON UPDATE TO tasks DO INSTEAD NOTHING",
        "rule",
    ),
    ("DROP TABLE comments", "soft-deleted rows"),
    ("DROP TABLE comments CASCADE", "soft-deleted rows"),
    ("ALTER TABLE comments RENAME TO notes", "soft-deleted rows"),
    (
        "ALTER TABLE comments SET SCHEMA billing",
        "soft-deleted rows",
    ),
    ("ALTER TABLE tasks INHERIT parent_t", "inherit"),
    (
        "ALTER TABLE parent_p ATTACH PARTITION tasks FOR VALUES FROM (MINVALUE) TO (MAXVALUE)",
        "partition of",
    ),
    (
        "ALTER TABLE teams DISABLE ROW LEVEL SECURITY",
        "row level security",
    ),
    (
        "ALTER TABLE teams NO FORCE ROW LEVEL SECURITY",
        "FORCE ROW LEVEL SECURITY",
    ),
    ("DROP POLICY tombstone_select ON teams", "policy"),
    (
        "ALTER POLICY tombstone_select ON teams USING (id > 0)",
        "policy",
    ),
    (
        "ALTER POLICY tombstone_select ON teams RENAME TO visible",
        "policy",
    ),
    (
        "CREATE POLICY see_all ON teams USING (true)",
        "permissive policy",
    ),
    // Server-side code runs the same DDL: the guard is in the database.
    (
        "DO $$BEGIN EXECUTE 'ALTER TABLE tasks DISABLE TRIGGER USER'; END$$",
        "disable trigger",
    ),
    (
        "DO $$BEGIN EXECUTE format('ALTER TABLE %I DROP COLUMN %I', 'tasks', 'deleted_at'); END$$",
        "soft-delete column",
    ),
    ("DROP SCHEMA tombstone CASCADE", ""),
    ("DROP TABLE tombstone.audit", ""),
    ("DROP FUNCTION tombstone.refuse(text, text, text)", ""),
];

/// Migrations an application runs; `{s}` keeps names apart between runs.
const ORDINARY: &[&str] = &[
    "ALTER TABLE tasks ADD COLUMN priority_{s} integer DEFAULT 0 NOT NULL",
    "ALTER TABLE tasks ALTER COLUMN priority_{s} DROP DEFAULT",
    "CREATE INDEX tasks_priority_{s} ON tasks (priority_{s})",
    "ALTER TABLE tasks RENAME COLUMN priority_{s} TO prio_{s}",
    "ALTER TABLE tasks ALTER COLUMN prio_{s} TYPE bigint",
    "ALTER TABLE tasks ADD CONSTRAINT tasks_prio_{s} CHECK (prio_{s} >= 0)",
    "ALTER TABLE tasks ALTER COLUMN title TYPE varchar(2000)",
    "ALTER TABLE tasks ALTER COLUMN title TYPE text",
    "ALTER TABLE tasks ALTER COLUMN deleted_at DROP DEFAULT",
    "COMMENT ON COLUMN tasks.deleted_at IS 'when it was deleted'",
    "CREATE TABLE labels_{s} (id bigserial PRIMARY KEY, task_id bigint, name varchar(100) NOT NULL, deleted_at timestamptz)",
    "ALTER TABLE labels_{s} ADD CONSTRAINT labels_{s}_task FOREIGN KEY (task_id) REFERENCES tasks (id) DEFERRABLE INITIALLY DEFERRED",
    "CREATE INDEX labels_{s}_task_id ON labels_{s} (task_id)",
    "ALTER TABLE labels_{s} DROP CONSTRAINT labels_{s}_task",
    "CREATE TRIGGER tasks_after_{s} AFTER UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION keep_row()",
    "DROP TRIGGER tasks_after_{s} ON tasks",
    "CREATE TRIGGER tasks_before_insert_{s} BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION touch_row()",
    "DROP TRIGGER tasks_before_insert_{s} ON tasks",
    "CREATE POLICY teams_narrow_{s} ON teams AS RESTRICTIVE USING (true)",
    "DROP POLICY teams_narrow_{s} ON teams",
    "ALTER TABLE projects RENAME TO projects_{s}",
    "ALTER TABLE projects_{s} RENAME TO projects",
    "ALTER TABLE tasks DROP COLUMN prio_{s}",
    "ALTER TABLE tasks ENABLE TRIGGER tombstone_audit_update",
    // Django's `manage.py migrate`, as its schema editor writes it.
    "BEGIN;
     CREATE TABLE \"app_{s}_note\" (\"id\" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
       \"body\" text NOT NULL, \"task_id\" bigint NOT NULL, \"deleted_at\" timestamp with time zone NULL);
     ALTER TABLE \"app_{s}_note\" ADD CONSTRAINT \"app_{s}_note_task_id_fk_tasks_id\" FOREIGN KEY (\"task_id\")
       REFERENCES \"tasks\" (\"id\") DEFERRABLE INITIALLY DEFERRED;
     CREATE INDEX \"app_{s}_note_task_id_idx\" ON \"app_{s}_note\" (\"task_id\");
     ALTER TABLE \"tasks\" ADD COLUMN \"estimate_{s}\" integer DEFAULT 0 NOT NULL CHECK (\"estimate_{s}\" >= 0);
     ALTER TABLE \"tasks\" ALTER COLUMN \"estimate_{s}\" DROP DEFAULT;
     SET CONSTRAINTS \"app_{s}_note_task_id_fk_tasks_id\" IMMEDIATE;
     COMMIT;",
    "DROP TABLE \"app_{s}_note\"",
    "DROP TABLE labels_{s}",
];

/// Each protected table's protection as recorded and as it is now; equal
/// when nothing was removed.
async fn protection(db: &Client) -> Vec<(String, String, bool)> {
    db.query(
        "SELECT pt.table_schema || '.' || pt.table_name,
                c.relnamespace::regnamespace::text || '.' || c.relname,
                tombstone.protection_state(pt.table_oid, pt.column_name) = pt.state
           FROM tombstone.protected_tables pt LEFT JOIN pg_class c ON c.oid = pt.table_oid
          ORDER BY 1",
        &[],
    )
    .await
    .expect("read protection")
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get::<_, Option<String>>(1).unwrap_or_default(),
            r.get(2),
        )
    })
    .collect()
}

async fn row_counts(db: &Client) -> (i64, i64, i64) {
    let r = db
        .query_one(
            "SELECT (SELECT count(*) FROM comments), (SELECT count(*) FROM tasks),
                    (SELECT count(*) FROM pg_rewrite WHERE ev_class = 'tasks'::regclass)",
            &[],
        )
        .await
        .expect("counts");
    (r.get(0), r.get(1), r.get(2))
}

#[tokio::test]
async fn protection_removing_ddl_is_refused_and_ordinary_migrations_pass() {
    let owner = unique_name("owner");
    let _roles = Roles(vec![owner.clone()]);
    let p = Protected::start("ddl_guard", 2, "");
    let superuser = common::admin_config()
        .get_user()
        .unwrap_or("postgres")
        .to_string();
    common::psql_admin(&format!("CREATE ROLE \"{owner}\" LOGIN"));
    psql(
        &p.db.url,
        &[
            "-c",
            &format!(
                "GRANT USAGE, CREATE ON SCHEMA public, billing TO \"{owner}\", \"{app}\";
                 GRANT USAGE ON SCHEMA tombstone TO \"{owner}\";
                 GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA tombstone TO \"{owner}\";
                 GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tombstone TO \"{owner}\";
                 DO $$DECLARE r record; BEGIN
                   FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                             WHERE n.nspname IN ('public', 'billing') AND c.relkind IN ('r', 'p') LOOP
                     EXECUTE format('ALTER TABLE %s OWNER TO \"{owner}\"', r.rel);
                   END LOOP; END$$;
                 GRANT TRIGGER ON tasks TO \"{app}\";
                 CREATE FUNCTION public.keep_row() RETURNS trigger LANGUAGE plpgsql AS $f$BEGIN RETURN NULL; END$f$;
                 CREATE FUNCTION public.touch_row() RETURNS trigger LANGUAGE plpgsql AS $f$BEGIN RETURN NEW; END$f$;
                 ALTER FUNCTION public.keep_row() OWNER TO \"{owner}\";
                 ALTER FUNCTION public.touch_row() OWNER TO \"{owner}\";
                 CREATE TRIGGER touch BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION touch_row();
                 CREATE TABLE public.parent_t (LIKE tasks);
                 ALTER TABLE public.parent_t OWNER TO \"{owner}\";
                 CREATE TABLE public.parent_p (LIKE tasks) PARTITION BY RANGE (id);
                 ALTER TABLE public.parent_p OWNER TO \"{owner}\";",
                app = p.app
            ),
        ],
    );

    // A soft-deleted comment, through the proxy: comments now holds a
    // row in the trash.
    let app_proxy = p.connect_as(&p.app).await;
    let deleted = app_proxy
        .execute(
            "DELETE FROM comments WHERE id = (SELECT min(id) FROM comments)",
            &[],
        )
        .await
        .expect("soft delete");
    assert_eq!(deleted, 1);
    let admin = p.db.connect().await;
    let pending: i64 = admin
        .query_one(
            "SELECT tombstone.pending_soft_deletes('public', 'comments')",
            &[],
        )
        .await
        .expect("pending")
        .get(0);
    assert!(pending > 0);

    let direct_url = |role: &str| {
        let (host, port) = common::upstream_host_port();
        format!(
            "host={host} port={port} user={role} dbname={} sslmode=disable",
            p.db.name
        )
    };
    let sessions: Vec<(String, &str, Client)> = vec![
        (
            format!("owner {owner} through the proxy"),
            owner.as_str(),
            p.connect_as(&owner).await,
        ),
        (
            format!("owner {owner} directly"),
            owner.as_str(),
            common::connect(&direct_url(&owner)).await,
        ),
        (
            format!("app {} through the proxy", p.app),
            p.app.as_str(),
            p.connect_as(&p.app).await,
        ),
        (
            format!("app {} directly", p.app),
            p.app.as_str(),
            common::connect(&direct_url(&p.app)).await,
        ),
    ];

    let protection_before = protection(&admin).await;
    assert!(protection_before.iter().all(|(_, _, same)| *same));
    assert!(
        protection_before
            .iter()
            .any(|(t, _, _)| t == "public.comments"),
        "{protection_before:?}"
    );
    let counts_before = row_counts(&admin).await;
    let may = format!(
        "only a superuser, \"{superuser}\" (the owner of schema tombstone) or a member of \"{}\" may",
        p.bypass_role
    );
    for (who, role, session) in &sessions {
        for (sql, about) in REFUSED {
            let e = session
                .batch_execute(sql)
                .await
                .expect_err(&format!("{who}: `{sql}` must be refused"));
            let message = e.as_db_error().map(|d| d.message()).unwrap_or_default();
            // Retyping or dropping the column (without CASCADE) is refused
            // by PostgreSQL itself first:
            // tombstone's row-level security policies use it.
            let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or_default();
            if matches!(sqlstate(&e).as_str(), "0A000" | "2BP01")
                && detail.contains("policy tombstone_")
            {
                continue;
            }
            assert_eq!(sqlstate(&e), "42501", "{who}: `{sql}`: {e:?}");
            // The owner (and the app role where it holds the privilege
            // PostgreSQL checks first) meets tombstone's refusal; otherwise
            // PostgreSQL's own ownership check refuses first. Through the
            // proxy, a DO block naming a protected table is refused by the
            // rewriter before it reaches the server (same SQLSTATE).
            let by_rewriter = who.contains("proxy") && sql.starts_with("DO ");
            if by_rewriter {
                assert!(message.contains("DO block"), "{who}: `{sql}`: {message}");
            } else if message.starts_with("tombstone: cannot")
                || (*role == owner && !about.is_empty())
            {
                assert!(
                    message.starts_with("tombstone: cannot")
                        && message.contains(about)
                        && message.contains(&format!("as role \"{role}\""))
                        && message.contains(&may),
                    "{who}: `{sql}`: {message}"
                );
            }
            assert_eq!(
                protection(&admin).await,
                protection_before,
                "{who}: `{sql}` changed protection"
            );
        }
    }
    // The record cannot be forged, even with INSERT granted on it (the
    // harness grants the old quick start's INSERT on tombstone's tables).
    for (who, _, session) in &sessions {
        let e = session
            .batch_execute(
                "INSERT INTO tombstone.protected_tables (table_oid, table_schema, table_name, column_name, state)
                 VALUES (1, 'public', 'tasks', 'deleted_at', '{}')",
            )
            .await
            .expect_err("registry write");
        assert_eq!(sqlstate(&e), "42501", "{who}: {e:?}");
        let message = e.as_db_error().map(|d| d.message()).unwrap_or_default();
        // Through the proxy the rewriter refuses it first (tombstone's
        // tables are read-only there); directly, the registry's trigger.
        let expected = if who.contains("proxy") {
            "is read-only"
        } else {
            "only tombstone migrate and the DDL guard write it"
        };
        // A role without privileges on tombstone's tables (what migrate
        // leaves normal roles) is stopped by the privilege check first.
        assert!(
            message.contains(expected)
                || message.contains("permission denied for table protected_tables"),
            "{who}: {message}"
        );
    }

    // The extended protocol meets the same refusals.
    for (sql, about) in REFUSED.iter().filter(|(sql, _)| !sql.starts_with("DO ")) {
        let e = sessions[0]
            .2
            .execute(*sql, &[])
            .await
            .expect_err(&format!("extended protocol: `{sql}` must be refused"));
        let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or_default();
        if matches!(sqlstate(&e).as_str(), "0A000" | "2BP01")
            && detail.contains("policy tombstone_")
        {
            continue;
        }
        assert_eq!(sqlstate(&e), "42501", "extended: `{sql}`: {e:?}");
        if !about.is_empty() {
            let message = e.as_db_error().map(|d| d.message()).unwrap_or_default();
            assert!(
                message.contains(about) && message.contains(&may),
                "extended: `{sql}`: {message}"
            );
        }
    }
    assert_eq!(protection(&admin).await, protection_before);
    assert_eq!(row_counts(&admin).await, counts_before);
    // The app role's BEFORE trigger meets tombstone's refusal, not only
    // PostgreSQL's (it holds TRIGGER on tasks).
    let e = sessions[3]
        .2
        .batch_execute(
            "CREATE TRIGGER keep BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION keep_row()",
        )
        .await
        .expect_err("app's BEFORE UPDATE trigger");
    assert!(
        e.as_db_error()
            .map(|d| d
                .message()
                .starts_with("tombstone: cannot create BEFORE UPDATE"))
            .unwrap_or(false),
        "{e:?}"
    );

    // Ordinary migrations pass, through the proxy and directly.
    for (i, (who, role, session)) in sessions.iter().enumerate() {
        if *role != owner {
            continue;
        }
        for sql in ORDINARY {
            let sql = sql.replace("{s}", &format!("s{i}"));
            if let Err(e) = session.batch_execute(&sql).await {
                panic!("{who}: `{sql}` must pass: {e:?}");
            }
        }
    }
    // The application role without ownership creates and changes its own
    // tables.
    for (who, _, session) in sessions.iter().filter(|(_, r, _)| *r == p.app) {
        let s = if who.contains("proxy") { "ap" } else { "ad" };
        for sql in [
            "CREATE TABLE own_{s} (id bigserial PRIMARY KEY, deleted_at timestamptz)",
            "ALTER TABLE own_{s} ADD COLUMN note text",
            "CREATE INDEX own_{s}_note ON own_{s} (note)",
            "DROP TABLE own_{s}",
        ] {
            let sql = sql.replace("{s}", s);
            if let Err(e) = session.batch_execute(&sql).await {
                panic!("{who}: `{sql}` must pass: {e:?}");
            }
        }
    }
    assert!(
        protection(&admin).await.iter().all(|(_, _, same)| *same),
        "ordinary migrations changed protection"
    );

    // A protected table with nothing in the trash can be dropped by its
    // owner (and leaves the registry).
    sessions[0]
        .2
        .batch_execute("DROP TABLE document_versions")
        .await
        .expect("drop a protected table without soft-deleted rows");
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM tombstone.protected_tables WHERE table_name = 'document_versions'",
            &[],
        )
        .await
        .expect("registry")
        .get(0);
    assert_eq!(left, 0);

    // Allowed roles pass. A superuser renames and disables; the change
    // becomes the record, so the owner's next migration is not blocked.
    admin
        .batch_execute(
            "ALTER TABLE comments RENAME TO comments_renamed;
             ALTER TABLE tasks DISABLE TRIGGER tombstone_audit_insert",
        )
        .await
        .expect("superuser DDL");
    sessions[1]
        .2
        .batch_execute("ALTER TABLE comments_renamed ADD COLUMN extra int; ALTER TABLE tasks ADD COLUMN extra int")
        .await
        .expect("owner DDL after the superuser's change");
    admin
        .batch_execute(
            "ALTER TABLE comments_renamed RENAME TO comments;
             ALTER TABLE tasks ENABLE TRIGGER tombstone_audit_insert",
        )
        .await
        .expect("superuser DDL");
    // A member of a bypass role that owns a table may change its protection.
    admin
        .batch_execute(&format!("ALTER TABLE categories OWNER TO \"{}\"", p.admin))
        .await
        .expect("owner change");
    let bypass = p.connect_as(&p.admin).await;
    bypass
        .batch_execute("ALTER TABLE categories ALTER COLUMN deleted_at SET DEFAULT now(); ALTER TABLE categories ALTER COLUMN deleted_at DROP DEFAULT")
        .await
        .expect("a bypass member's DDL passes");
    assert!(protection(&admin).await.iter().all(|(_, _, same)| *same));

    // doctor names a table protected since the last migrate, and a
    // disabled guard.
    admin
        .batch_execute(
            "CREATE TABLE fresh_t (id int PRIMARY KEY, deleted_at timestamptz);
             ALTER EVENT TRIGGER tombstone_ddl_guard DISABLE",
        )
        .await
        .expect("superuser DDL");
    let (ok, out, err) = common::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_tombstone")).args([
            "doctor",
            "--database-url",
            &p.db.url,
        ]),
    );
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains("the DDL guard's record of public.fresh_t")
            && out.contains("the DDL guard event triggers"),
        "{out}"
    );
}
