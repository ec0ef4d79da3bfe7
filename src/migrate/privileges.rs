//! Who may touch tombstone's own objects (SPEC S1).
//!
//! The application role is untrusted. After this step:
//! - nobody but the owner holds a privilege on tombstone's tables and
//!   sequences: the audit trail, operations and their rows (recorded by
//!   triggers, `migrate::operations`), the bypass-role list, the
//!   hard-delete grants, restores and settings are out of reach, through
//!   the proxy or directly;
//! - every function runs with `search_path = pg_catalog, pg_temp`, so a
//!   caller's `public.now()` or `public.to_jsonb()` cannot shadow a
//!   built-in inside tombstone's code;
//! - the audit trigger functions are `SECURITY DEFINER`: they write the
//!   audit trail as tombstone's owner, so the application needs no right to
//!   write it.
//!
//! Bypass roles get `SELECT` on the trail when `serve` syncs them
//! (`ops::roles`). The step is idempotent and also takes back grants an
//! older quick start gave (`GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA
//! tombstone TO app`).

/// Functions that deliberately run as their caller: the grant stamp and
/// the registry write check read the caller's `current_user`; `refuse` is
/// folded by the planner and must stay a plain IMMUTABLE function.
const INVOKER_ONLY: &[&str] = &[
    "stamp_hard_delete_grant",
    "protected_tables_write",
    "refuse",
];

/// The DDL of this step.
pub fn privileges_step() -> String {
    let invoker: Vec<String> = INVOKER_ONLY.iter().map(|n| format!("'{n}'")).collect();
    format!(
        r#"
DO $tombstone_privileges$
DECLARE
  r record;
BEGIN
  -- Every privilege on tombstone's relations held by anyone but the owner.
  FOR r IN SELECT DISTINCT c.oid::pg_catalog.regclass AS rel, c.relkind, a.grantee
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
            WHERE n.nspname = 'tombstone' AND a.grantee <> c.relowner LOOP
    EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM %s',
      CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.rel,
      CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.grantee)) END);
  END LOOP;
  -- A fixed search_path on every function of the schema.
  FOR r IN SELECT p.oid::pg_catalog.regprocedure AS fn
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'tombstone' AND p.prokind = 'f'
              AND p.proname NOT IN ({invoker})
              AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false) LOOP
    EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', r.fn);
  END LOOP;
  -- The audit triggers write the trail as tombstone's owner.
  FOR r IN SELECT p.oid::pg_catalog.regprocedure AS fn
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'tombstone' AND p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype
              AND p.proname NOT IN ({invoker}) AND NOT p.prosecdef LOOP
    EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER', r.fn);
  END LOOP;
END
$tombstone_privileges$;
{bypass_reads}

REVOKE ALL ON SCHEMA tombstone FROM PUBLIC;
GRANT USAGE ON SCHEMA tombstone TO PUBLIC;
"#,
        invoker = invoker.join(", "),
        bypass_reads = bypass_reads()
    )
}

/// Lets every role listed in `tombstone.bypass_roles` (that exists) read
/// the trail and the trash: run by this step and by `serve` after it syncs
/// the list (`ops::roles`).
pub fn bypass_reads() -> String {
    format!(
        r#"
DO $tombstone_bypass_reads$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT b.role_name FROM tombstone.bypass_roles b
             JOIN pg_catalog.pg_roles ro ON ro.rolname = b.role_name LOOP
    EXECUTE pg_catalog.format('GRANT SELECT ON {readable} TO %I', r.role_name);
  END LOOP;
END
$tombstone_bypass_reads$;
"#,
        readable = BYPASS_READABLE.join(", ")
    )
}

/// The tables a bypass role may read (the trail and the trash).
const BYPASS_READABLE: &[&str] = &[
    "tombstone.audit",
    "tombstone.operations",
    "tombstone.operation_rows",
    "tombstone.restores",
    "tombstone.archive",
];
