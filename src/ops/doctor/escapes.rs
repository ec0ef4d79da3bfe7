//! What still escapes the row-level security `migrate` installs (SPEC S2,
//! `migrate::rls`): the ways a session can see or change soft-deleted rows
//! inside the database, past the policies.
//!
//! PostgreSQL skips row-level security for superusers and `BYPASSRLS` roles
//! (neither attribute is inherited, but a member can `SET ROLE` to such a
//! role), and applies it as the *owner* of a `SECURITY DEFINER` function or
//! of a view. So the escapes are:
//! - login roles that are, or can become, such a role — except the owner of
//!   schema `tombstone` and the bypass roles (`tombstone.bypass_roles` and
//!   `roles.bypass`), with their members, which are meant to see the trash;
//! - protected tables whose row-level security is off, not forced, or
//!   lacks one of tombstone's policies (protected since the last migrate);
//! - `SECURITY DEFINER` functions owned by such a role that a normal role
//!   may call;
//! - views (and materialized views) over protected tables owned by such a
//!   role that a normal role may read or write through.
//!
//! A `SECURITY DEFINER` function (or a view) owned by a *normal* role is no
//! escape: it runs as that role, which the policies bind — even when it owns
//! the protected table, since `migrate` forces row-level security. Those are
//! not reported.
//!
//! "Normal role" here: not a superuser, not `BYPASSRLS`, not a member of the
//! owner of schema `tombstone` or of a bypass role, and not one of
//! PostgreSQL's predefined `pg_*` roles (whose login members, if any, are
//! counted themselves). Membership is read from `pg_auth_members`, not
//! `pg_has_role`, which calls a superuser a member of every role.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::{Problem, Report, protected_name};
use crate::config::Config;
use crate::schema::SchemaSnapshot;

/// Common table expressions of every query below; `$1` is the bypass role
/// names. `m(member, role)`: `member` is `role` or a (transitive) member of
/// it. `meant`: roles meant to see the trash. `normal`: roles the policies
/// bind.
const ROLES_CTE: &str = r"
WITH RECURSIVE m(member, role) AS (
    SELECT r.oid, r.oid FROM pg_catalog.pg_roles r
  UNION
    SELECT m.member, a.roleid FROM m JOIN pg_catalog.pg_auth_members a ON a.member = m.role
),
meant AS (
  SELECT DISTINCT m.member AS oid FROM m
   WHERE m.role = (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'tombstone')
      OR m.role IN (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = ANY ($1::text[]))
),
normal AS (
  SELECT r.oid, r.rolname::text AS name FROM pg_catalog.pg_roles r
   WHERE NOT r.rolsuper AND NOT r.rolbypassrls AND r.rolname !~ '^pg_'
     AND r.oid NOT IN (SELECT oid FROM meant)
)";

/// Reports the escapes, when the tombstone schema is installed (without it
/// there is no row-level security to escape, and doctor already says to
/// run migrate).
pub(super) async fn examine(
    client: &Client,
    config: &Config,
    snapshot: &SchemaSnapshot,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let installed: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'tombstone')",
            &[],
        )
        .await?
        .get(0);
    if !installed {
        return Ok(());
    }
    let mut bypass: BTreeSet<String> = config.roles.bypass.iter().cloned().collect();
    let listed: bool = client
        .query_one(
            "SELECT to_regclass('tombstone.bypass_roles') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if listed {
        for row in client
            .query("SELECT role_name FROM tombstone.bypass_roles", &[])
            .await?
        {
            bypass.insert(row.get(0));
        }
    }
    let bypass: Vec<String> = bypass.into_iter().collect();
    login_roles(client, snapshot, &bypass, report).await?;
    policies(client, snapshot, report).await?;
    definer_functions(client, &bypass, report).await?;
    owner_views(client, snapshot, &bypass, report).await?;
    Ok(())
}

/// Login roles that skip the policies (or can `SET ROLE` to one that
/// does): superusers always, `BYPASSRLS` roles when they own or hold a
/// privilege on a protected table.
async fn login_roles(
    client: &Client,
    snapshot: &SchemaSnapshot,
    bypass: &[String],
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let (schemas, names): (Vec<String>, Vec<String>) = snapshot
        .tables()
        .iter()
        .filter(|t| t.is_protected())
        .map(|t| (t.schema.clone(), t.name.clone()))
        .unzip();
    let sql = format!(
        "{ROLES_CTE},
prot AS (
  SELECT c.oid, c.relowner FROM unnest($2::text[], $3::text[]) u(s, t)
    JOIN pg_catalog.pg_namespace n ON n.nspname = u.s
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = u.t
)
SELECT l.rolname::text, b.rolname::text, b.rolsuper, l.oid = b.oid
  FROM pg_catalog.pg_roles l JOIN m ON m.member = l.oid JOIN pg_catalog.pg_roles b ON b.oid = m.role
 WHERE l.rolcanlogin AND (b.rolsuper OR b.rolbypassrls)
   AND l.oid NOT IN (SELECT oid FROM meant)
   AND (b.rolsuper OR EXISTS (
         SELECT 1 FROM prot p
          WHERE pg_catalog.pg_has_role(b.oid, p.relowner, 'MEMBER')
             OR pg_catalog.has_table_privilege(b.oid, p.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
             OR pg_catalog.has_any_column_privilege(b.oid, p.oid, 'SELECT, INSERT, UPDATE, REFERENCES')))
 ORDER BY 1, 4 DESC, 2"
    );
    let rows = client.query(&sql, &[&bypass, &schemas, &names]).await?;
    // One finding per login role: itself when it skips the policies, else
    // the roles it can become (each with whether it is a superuser).
    #[derive(Default)]
    struct Found {
        itself: Option<bool>,
        via: Vec<(String, bool)>,
    }
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    for row in rows {
        let (login, role, superuser, itself): (String, String, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let entry = found.entry(login).or_default();
        if itself {
            entry.itself = Some(superuser);
        } else {
            entry.via.push((role, superuser));
        }
    }
    for (role, f) in found {
        report.problems.push(match f.itself {
            Some(superuser) => Problem::BypassLogin {
                role,
                superuser,
                via: Vec::new(),
            },
            None => Problem::BypassLogin {
                role,
                superuser: false,
                via: f.via,
            },
        });
    }
    Ok(())
}

/// Protected tables whose row-level security is off, not forced, or
/// without one of tombstone's restrictive policies (for every role, on its
/// command).
async fn policies(
    client: &Client,
    snapshot: &SchemaSnapshot,
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                    coalesce((SELECT array_agg(e.name ORDER BY e.ord)
                                FROM (VALUES (1, 'tombstone_select', 'r'), (2, 'tombstone_insert', 'a'),
                                             (3, 'tombstone_update', 'w'), (4, 'tombstone_delete', 'd')) e(ord, name, cmd)
                               WHERE NOT EXISTS (
                                       SELECT 1 FROM pg_catalog.pg_policy p
                                        WHERE p.polrelid = c.oid AND p.polname = e.name
                                          AND p.polcmd = e.cmd::\"char\" AND NOT p.polpermissive
                                          AND p.polroles = '{0}'::oid[])), '{}')
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p')
              ORDER BY 1, 2",
            &[],
        )
        .await?;
    for row in rows {
        let (schema, table): (String, String) = (row.get(0), row.get(1));
        if protected_name(snapshot, &schema, &table).is_none() {
            continue;
        }
        let (enabled, forced, missing): (bool, bool, Vec<String>) =
            (row.get(2), row.get(3), row.get(4));
        let mut gaps = Vec::new();
        if !enabled {
            gaps.push("row-level security is not enabled".to_string());
        } else if !forced {
            gaps.push("row-level security is not forced".to_string());
        }
        if !missing.is_empty() {
            gaps.push(format!(
                "{} {} missing (or not restrictive for every role)",
                if missing.len() == 1 {
                    "policy"
                } else {
                    "policies"
                },
                missing.join(", ")
            ));
        }
        if !gaps.is_empty() {
            report.problems.push(Problem::RlsMissing {
                table: format!("{schema}.{table}"),
                gaps,
            });
        }
    }
    Ok(())
}

/// `SECURITY DEFINER` functions owned by a role that skips the policies
/// and callable by a normal role. (Owned by a normal role, such a function
/// is bound by the policies — `FORCE ROW LEVEL SECURITY` binds a table's
/// owner too — so it is no escape and is not reported.) Extension members
/// are the extension's code and left out, as in the function check above.
async fn definer_functions(
    client: &Client,
    bypass: &[String],
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let sql = format!(
        "{ROLES_CTE}
SELECT n.nspname::text || '.' || p.proname::text || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
       o.rolname::text, o.rolsuper,
       EXISTS (SELECT 1 FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
       ARRAY(SELECT r.name FROM normal r
              WHERE pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')
                AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE')
              ORDER BY 1)
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
 WHERE p.prosecdef AND (o.rolsuper OR o.rolbypassrls)
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tombstone')
   AND n.nspname !~ '^pg_(toast|temp_)'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
 ORDER BY 1"
    );
    for row in client.query(&sql, &[&bypass]).await? {
        let callers: Vec<String> = row.get(4);
        if callers.is_empty() {
            continue;
        }
        report.problems.push(Problem::DefinerBypasses {
            function: row.get(0),
            owner: row.get(1),
            owner_superuser: row.get(2),
            public: row.get(3),
            callers,
        });
    }
    Ok(())
}

/// Views and materialized views over protected tables owned by a role that
/// skips the policies and readable (or writable) by a normal role: a view
/// reads its tables with its owner's rights, row-level security included,
/// unless it is `security_invoker`; a materialized view holds what its
/// owner saw at the last refresh.
async fn owner_views(
    client: &Client,
    snapshot: &SchemaSnapshot,
    bypass: &[String],
    report: &mut Report,
) -> Result<(), tokio_postgres::Error> {
    let sql = format!(
        "{ROLES_CTE}
SELECT DISTINCT vn.nspname::text, v.relname::text, v.relkind = 'm', o.rolname::text, o.rolsuper,
       tn.nspname::text, t.relname::text,
       EXISTS (SELECT 1 FROM pg_catalog.aclexplode(coalesce(v.relacl, pg_catalog.acldefault('r', v.relowner))) a
                WHERE a.grantee = 0 AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE'))
         OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute at, pg_catalog.aclexplode(at.attacl) a
                     WHERE at.attrelid = v.oid AND a.grantee = 0),
       ARRAY(SELECT r.name FROM normal r
              WHERE (pg_catalog.has_table_privilege(r.oid, v.oid, 'SELECT, INSERT, UPDATE, DELETE')
                     OR pg_catalog.has_any_column_privilege(r.oid, v.oid, 'SELECT, INSERT, UPDATE'))
                AND pg_catalog.has_schema_privilege(r.oid, vn.oid, 'USAGE')
              ORDER BY 1)
  FROM pg_catalog.pg_rewrite rw
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
                             AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
  JOIN pg_catalog.pg_class t ON t.oid = d.refobjid JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_catalog.pg_roles o ON o.oid = v.relowner
 WHERE v.oid <> t.oid AND v.relkind IN ('v', 'm') AND (o.rolsuper OR o.rolbypassrls)
   AND NOT EXISTS (SELECT 1 FROM unnest(v.reloptions) opt(kv)
                    WHERE split_part(opt.kv, '=', 1) = 'security_invoker'
                      AND lower(split_part(opt.kv, '=', 2)) IN ('true', 'on', 'yes', '1', 't', 'y'))
 ORDER BY 1, 2, 6, 7"
    );
    let mut views: BTreeMap<(String, String), Problem> = BTreeMap::new();
    for row in client.query(&sql, &[&bypass]).await? {
        let (ts, tt): (String, String) = (row.get(5), row.get(6));
        let readers: Vec<String> = row.get(8);
        if readers.is_empty() || protected_name(snapshot, &ts, &tt).is_none() {
            continue;
        }
        let (vs, vn): (String, String) = (row.get(0), row.get(1));
        let entry =
            views
                .entry((vs.clone(), vn.clone()))
                .or_insert_with(|| Problem::ViewBypasses {
                    view: format!("{vs}.{vn}"),
                    materialized: row.get(2),
                    owner: row.get(3),
                    owner_superuser: row.get(4),
                    tables: Vec::new(),
                    public: row.get(7),
                    readers,
                });
        if let Problem::ViewBypasses { tables, .. } = entry {
            tables.push(format!("{ts}.{tt}"));
        }
    }
    report.problems.extend(views.into_values());
    Ok(())
}

/// `PUBLIC`, or the first few role names.
pub(super) fn who(public: bool, roles: &[String]) -> String {
    if public {
        return "PUBLIC".to_string();
    }
    const SHOWN: usize = 5;
    let mut s = roles
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if roles.len() > SHOWN {
        s.push_str(&format!(" and {} more", roles.len() - SHOWN));
    }
    s
}
