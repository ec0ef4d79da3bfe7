//! The installed tombstone schema's version (SPEC O6).
//!
//! `tombstone.schema_version` holds one row: the version, when it was
//! installed, and by which tombstone binary. A `tombstone` schema without
//! that table is version 0 (what main installed before versions existed).
//!
//! Every migrate plan starts with [`upgrade_step`] and ends with
//! [`record_step`], and `apply` runs the whole plan in one transaction, so:
//!
//! - the transaction takes an advisory lock first ([`LOCK_KEY`]; `serve`
//!   takes it shared while it checks the version), so two migrates, or a
//!   migrate and a starting `serve`, never interleave;
//! - an installed version newer than [`SCHEMA_VERSION`] is refused;
//! - an older one is upgraded in place: everything tombstone owns that is
//!   not data is dropped (event triggers and triggers that run tombstone
//!   functions, `tombstone_*` policies and the policies that call tombstone
//!   functions, views, routines and free-standing types in schema
//!   `tombstone`) and every privilege granted on the schema and its tables
//!   is revoked, then the rest of the plan installs the current objects.
//!   Tables (the audit trail and its partitions, operations, their rows,
//!   restores, settings, registries) are never dropped. A version that
//!   changes a data table's columns adds the `ALTER TABLE` here, guarded by
//!   the installed version. Nothing is dropped with CASCADE: an object of
//!   the application that depends on a tombstone function makes the upgrade
//!   fail (and change nothing) with PostgreSQL's message naming it.
//! - the same version is re-applied without the drops, idempotently.

/// The schema version this binary installs and `serve` requires.
pub const SCHEMA_VERSION: i32 = 7;

/// The advisory lock (transaction-scoped) migrate holds exclusively and
/// `serve` shared while checking the version.
pub const LOCK_KEY: i64 = 0x746f_6d62_7363_686d; // "tombschm"

/// Locks, refuses a newer schema, and drops an older one's non-data
/// objects.
pub fn upgrade_step() -> String {
    format!(
        r#"
SELECT pg_catalog.pg_advisory_xact_lock({LOCK_KEY});

DO $upgrade$
DECLARE
  installed int;
  ns oid := pg_catalog.to_regnamespace('tombstone');
  r record;
  names text;
BEGIN
  IF ns IS NULL THEN
    RETURN;
  END IF;
  IF pg_catalog.to_regclass('tombstone.schema_version') IS NULL THEN
    installed := 0;
  ELSE
    EXECUTE 'SELECT coalesce(pg_catalog.max(version), 0) FROM tombstone.schema_version' INTO installed;
  END IF;
  IF installed > {SCHEMA_VERSION} THEN
    RAISE EXCEPTION 'tombstone schema version % is installed, newer than this binary''s %: refusing to downgrade it', installed, {SCHEMA_VERSION}
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run migrate with the tombstone binary that installed it, or a newer one.';
  END IF;
  IF installed = {SCHEMA_VERSION} THEN
    RETURN;
  END IF;

  -- Version 6 adds and changes functions only (restore previews and
  -- conflicts, issue 12 item 5: tombstone.restore_preview,
  -- tombstone.restore_row_preview, tombstone.restore_action_preview, the
  -- unique-key check of tombstone.restore and tombstone.restore_action,
  -- tombstone.restore_operation and its helpers, a third argument of
  -- tombstone.restore_app_set_null; routines are dropped below and
  -- created by the plan, so the changed signature leaves no overload).
  -- Version 5 adds and changes functions only (actions, SPEC B6:
  -- tombstone.restore_action, tombstone.trash_actions, two more columns of
  -- tombstone.trash, tombstone.restore_blocker; all routines are dropped
  -- below and created by the plan, so a changed result type is no
  -- obstacle).
  -- Version 4 adds constraint triggers only (foreign keys to soft-deleted
  -- parents, SPEC W8; dropped below with the other triggers running a
  -- tombstone function, and created by the plan).
  -- Version 3 adds tables only (tombstone.edge_rules, created by the plan)
  -- and the view tombstone.edges (dropped below with the other views and
  -- re-created); restore, purge and erase read it from then on.
  -- The audit default calls tombstone.client_addr() (version 2 on).
  IF pg_catalog.to_regclass('tombstone.audit') IS NOT NULL THEN
    ALTER TABLE tombstone.audit ALTER COLUMN client_addr DROP DEFAULT;
  END IF;
  -- Event triggers first, so the drops below fire none of them.
  FOR r IN SELECT e.evtname FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
            WHERE p.pronamespace = ns LOOP
    EXECUTE pg_catalog.format('DROP EVENT TRIGGER %I', r.evtname);
  END LOOP;

  -- Triggers (on application tables and on tombstone's own) running a
  -- tombstone function; clones on partitions go with their parent.
  FOR r IN SELECT t.tgname, t.tgrelid::pg_catalog.regclass AS rel
             FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
            WHERE p.pronamespace = ns AND NOT t.tgisinternal AND t.tgparentid = 0 LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
  END LOOP;

  -- Policies named tombstone_* or calling a tombstone function; a table
  -- left with no policy gets its row-level security flags back to off
  -- (the plan turns them on again where it protects).
  FOR r IN SELECT DISTINCT pol.polname, pol.polrelid::pg_catalog.regclass AS rel, pol.polrelid
             FROM pg_catalog.pg_policy pol
            WHERE pol.polname LIKE 'tombstone\_%'
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
                           WHERE d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND d.objid = pol.oid
                             AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.pronamespace = ns) LOOP
    EXECUTE pg_catalog.format('DROP POLICY %I ON %s', r.polname, r.rel);
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid = r.polrelid) THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', r.rel);
    END IF;
  END LOOP;

  -- Views, routines and free-standing types of schema tombstone (not
  -- those of an extension installed there); data tables stay.
  FOR r IN SELECT c.oid::pg_catalog.regclass AS rel, c.relkind FROM pg_catalog.pg_class c
            WHERE c.relnamespace = ns AND c.relkind IN ('v', 'm')
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                               WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e') LOOP
    EXECUTE pg_catalog.format('DROP %s %s', CASE r.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END, r.rel);
  END LOOP;
  SELECT pg_catalog.string_agg(p.oid::pg_catalog.regprocedure::text, ', ') INTO names
    FROM pg_catalog.pg_proc p
   WHERE p.pronamespace = ns
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e');
  IF names IS NOT NULL THEN
    EXECUTE 'DROP ROUTINE ' || names;
  END IF;
  SELECT pg_catalog.string_agg(t.oid::pg_catalog.regtype::text, ', ') INTO names
    FROM pg_catalog.pg_type t
   WHERE t.typnamespace = ns AND t.typtype IN ('c', 'd', 'e', 'r', 'm')
     AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
                      WHERE a.atttypid = t.oid AND c.relkind IN ('r', 'p') AND NOT a.attisdropped)
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid = t.oid AND d.deptype = 'e');
  IF names IS NOT NULL THEN
    EXECUTE 'DROP TYPE ' || names;
  END IF;

  -- Privileges: what the plan grants is all there is.
  FOR r IN SELECT c.oid::pg_catalog.regclass AS rel, c.relkind, a.grantee
             FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
            WHERE c.relnamespace = ns AND c.relkind IN ('r', 'p', 'S') AND a.grantee <> c.relowner
            GROUP BY 1, 2, 3 LOOP
    EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM %s', CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.rel,
      CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END);
  END LOOP;
  FOR r IN SELECT DISTINCT a.grantee FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) a
            WHERE n.oid = ns AND a.grantee <> n.nspowner LOOP
    EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA tombstone FROM %s',
      CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END);
  END LOOP;
END
$upgrade$;
"#
    )
}

/// Creates the version table and records this binary's version (kept as
/// is, `installed_at` included, when it is already recorded).
pub fn record_step() -> String {
    let binary = format!("tombstone {}", env!("CARGO_PKG_VERSION"));
    format!(
        r#"
CREATE TABLE IF NOT EXISTS tombstone.schema_version (
  singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
  version      integer     NOT NULL,
  installed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  installed_by text        NOT NULL
);
REVOKE ALL ON tombstone.schema_version FROM PUBLIC;

INSERT INTO tombstone.schema_version AS v (singleton, version, installed_at, installed_by)
VALUES (true, {SCHEMA_VERSION}, pg_catalog.now(), '{binary}')
ON CONFLICT (singleton) DO UPDATE
  SET version = EXCLUDED.version, installed_at = EXCLUDED.installed_at, installed_by = EXCLUDED.installed_by
  WHERE v.version IS DISTINCT FROM EXCLUDED.version OR v.installed_by IS DISTINCT FROM EXCLUDED.installed_by;
"#,
        binary = binary.replace('\'', "''"),
    )
}

/// The installed schema, as `doctor` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub version: i32,
    /// When and by which binary; `None` for version 0.
    pub installed_at: Option<String>,
    pub installed_by: Option<String>,
}

/// The installed version: `None` without a `tombstone` schema, version 0
/// for a schema without `tombstone.schema_version`.
pub async fn installed<C: tokio_postgres::GenericClient>(
    client: &C,
) -> Result<Option<Installed>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT pg_catalog.to_regnamespace('tombstone') IS NOT NULL,
                    pg_catalog.to_regclass('tombstone.schema_version') IS NOT NULL",
            &[],
        )
        .await?;
    let (schema, table): (bool, bool) = (row.get(0), row.get(1));
    if !schema {
        return Ok(None);
    }
    if !table {
        return Ok(Some(Installed {
            version: 0,
            installed_at: None,
            installed_by: None,
        }));
    }
    let row = client
        .query_opt(
            "SELECT version, installed_at::text, installed_by FROM tombstone.schema_version LIMIT 1",
            &[],
        )
        .await?;
    Ok(Some(match row {
        Some(r) => Installed {
            version: r.get(0),
            installed_at: r.get(1),
            installed_by: r.get(2),
        },
        None => Installed {
            version: 0,
            installed_at: None,
            installed_by: None,
        },
    }))
}

/// Why `serve` cannot run on the installed schema, as a sentence naming
/// the command to run; `None` when the version is this binary's (or there
/// is no tombstone schema at all, which `missing_objects` reports).
pub fn mismatch(installed: Option<&Installed>, database_url: &str) -> Option<String> {
    let v = installed?.version;
    if v == SCHEMA_VERSION {
        return None;
    }
    Some(if v < SCHEMA_VERSION {
        format!(
            "tombstone schema version {v} is installed, this binary needs {SCHEMA_VERSION}: run `tombstone migrate --apply --database-url {database_url}`"
        )
    } else {
        format!(
            "tombstone schema version {v} is installed, newer than this binary's {SCHEMA_VERSION}: run a tombstone binary that supports schema version {v} (do not downgrade the schema)"
        )
    })
}

/// Reads the installed version under the shared advisory lock, so a
/// migrate in progress finishes first.
pub async fn installed_locked(
    client: &mut tokio_postgres::Client,
) -> Result<Option<Installed>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_catalog.pg_advisory_xact_lock_shared($1)",
        &[&LOCK_KEY],
    )
    .await?;
    let found = installed(&tx).await?;
    tx.commit().await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_names_the_command_or_refuses_newer() {
        let at = |version| Installed {
            version,
            installed_at: None,
            installed_by: None,
        };
        assert_eq!(mismatch(None, "u"), None);
        assert_eq!(mismatch(Some(&at(SCHEMA_VERSION)), "u"), None);
        let older = mismatch(Some(&at(0)), "postgres://h/db").unwrap_or_default();
        assert!(
            older.contains("version 0 is installed")
                && older.contains("tombstone migrate --apply --database-url postgres://h/db"),
            "{older}"
        );
        let newer = mismatch(Some(&at(SCHEMA_VERSION + 1)), "u").unwrap_or_default();
        assert!(newer.contains("newer than this binary"), "{newer}");
    }
}

#[cfg(test)]
mod plan_tests {
    use crate::config::Config;

    #[test]
    fn every_plan_starts_with_the_upgrade_and_ends_with_the_version() {
        let steps = crate::migrate::plan(&Config::default(), None);
        let first = steps.first().map(|s| s.name).unwrap_or_default();
        assert_eq!(first, crate::migrate::UPGRADE_STEP);
        assert!(
            steps
                .first()
                .is_some_and(|s| s.sql.contains("pg_advisory_xact_lock")),
            "the lock comes first"
        );
        assert!(
            steps
                .last()
                .is_some_and(|s| s.sql.contains("INSERT INTO tombstone.schema_version")),
            "the version is recorded last"
        );
    }
}
