//! Foreign keys as PostgreSQL checks them, for parents that are soft-deleted
//! (SPEC W8). PostgreSQL's own checks see a soft-deleted parent as present;
//! these constraint triggers, one pair per catalog foreign key whose parent
//! is protected, make it absent, with the key's own timing (`NOT
//! DEFERRABLE`, `DEFERRABLE INITIALLY IMMEDIATE` or `… DEFERRED`, and `SET
//! CONSTRAINTS`), PostgreSQL's SQLSTATE 23503 and its messages:
//!
//! - on the child, `AFTER INSERT OR UPDATE OF <key columns>`: a live child
//!   row must not reference a soft-deleted parent (`insert or update on
//!   table … violates foreign key constraint …`);
//! - on the parent, for a deferrable `NO ACTION` key only, `AFTER UPDATE OF
//!   <soft-delete column>` when a row is soft-deleted: no live child row may
//!   still reference it when the check runs (`update or delete on table …`).
//!   The rewriter checks `RESTRICT` and `NOT DEFERRABLE NO ACTION` keys in
//!   the statement itself; a deferrable one it leaves to this trigger, which
//!   runs when PostgreSQL would run its own (at commit, at `SET CONSTRAINTS
//!   … IMMEDIATE`, or at the end of the statement). The trigger carries the
//!   foreign key's own name (on a self-referencing table, with a suffix), so
//!   `SET CONSTRAINTS <name>` reaches both.
//!
//! Each check looks at the rows as they are when it runs, as PostgreSQL's
//! do: a child row deleted or changed since, or a parent key live again,
//! is no violation. The trigger functions are generated per key with
//! static SQL (cached plans), `SECURITY DEFINER` with a fixed
//! `search_path`, so the app role needs no rights on either table beyond
//! its own statement's. The trigger arguments name the key (schema, child
//! table, constraint): `schema::load` finds the parent-side trigger by
//! them.
//!
//! The step drops every such trigger first and creates the current set, so
//! a key dropped or changed since the last migrate leaves none behind.

use super::triggers::fitted_name;
use crate::schema::{FkAction, ForeignKey, SchemaSnapshot};

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Drops the previous set: triggers running a `tombstone.fk_child_*` or
/// `tombstone.fk_parent_*` function.
const DROP_PREVIOUS: &str = r#"
DO $drop$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT t.tgname, t.tgrelid::pg_catalog.regclass AS rel
             FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
            WHERE p.pronamespace = pg_catalog.to_regnamespace('tombstone')
              AND (p.proname LIKE 'fk\_child\_%' OR p.proname LIKE 'fk\_parent\_%')
              AND NOT t.tgisinternal AND t.tgparentid = 0 LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
  END LOOP;
END
$drop$;
"#;

/// One generated check: its function (unquoted name, body) and the DDL
/// that creates it and its trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FkCheck {
    /// `schema.child.constraint`.
    pub key: String,
    pub function: String,
    pub body: String,
    pub sql: String,
}

/// The checks `snapshot`'s foreign keys need.
pub fn expected(snapshot: &SchemaSnapshot) -> Vec<FkCheck> {
    let mut out = Vec::new();
    for fk in snapshot.foreign_keys() {
        if !fk.in_catalog || !snapshot.table(fk.parent).is_protected() {
            continue;
        }
        if fk.child_columns.len() != fk.parent_columns.len() || fk.child_columns.is_empty() {
            continue;
        }
        out.extend(child_check(snapshot, fk));
        if fk.on_delete == FkAction::NoAction && fk.timing.is_deferrable() {
            out.extend(parent_check(snapshot, fk));
        }
    }
    out
}

/// The constraint triggers for `snapshot`'s foreign keys.
pub fn fk_checks(snapshot: &SchemaSnapshot) -> String {
    let mut sql = String::from(DROP_PREVIOUS);
    for check in expected(snapshot) {
        sql.push_str(&check.sql);
    }
    sql
}

/// `fitted_name`'s identifier without its quotes.
fn unquoted(quoted: &str) -> String {
    quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(quoted)
        .replace("\"\"", "\"")
}

/// The function's body, as `pg_proc.prosrc` holds it.
fn body_of(sql: &str) -> String {
    sql.split("$fn$").nth(1).unwrap_or_default().to_string()
}

fn check(snapshot: &SchemaSnapshot, fk: &ForeignKey, f: &str, sql: String) -> FkCheck {
    let child = snapshot.table(fk.child);
    FkCheck {
        key: format!("{}.{}.{}", child.schema, child.name, fk.name),
        function: unquoted(f),
        body: body_of(&sql),
        sql,
    }
}

/// `'schema', 'child', 'constraint'`: what identifies the key.
fn arguments(snapshot: &SchemaSnapshot, fk: &ForeignKey) -> String {
    let child = snapshot.table(fk.child);
    format!(
        "{}, {}, {}",
        literal(&child.schema),
        literal(&child.name),
        literal(&fk.name)
    )
}

fn qualified(snapshot: &SchemaSnapshot, id: usize) -> String {
    let t = snapshot.table(id);
    format!("{}.{}", ident(&t.schema), ident(&t.name))
}

/// `a.x = b.y AND …` over the key's column pairs.
fn pairs(fk: &ForeignKey, child: &str, parent: &str) -> String {
    fk.child_columns
        .iter()
        .zip(&fk.parent_columns)
        .map(|(c, p)| format!("{parent}.{} = {child}.{}", ident(p), ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The end of the checks' inner block: a table or column renamed since
/// `migrate` generated them leaves the check unable to run. It then warns
/// and lets the row pass (an ordinary application migration must not
/// break every insert); `doctor` reports it, `migrate --apply` renews it.
fn stale(snapshot: &SchemaSnapshot, fk: &ForeignKey) -> String {
    let child = snapshot.table(fk.child);
    format!(
        "  EXCEPTION WHEN undefined_table OR undefined_column THEN
    RAISE WARNING USING MESSAGE = format('tombstone: the check of foreign key %s on %s is out of date (%s); run tombstone migrate --apply', {}, {}, SQLERRM);
  END;",
        literal(&fk.name),
        literal(&format!("{}.{}", child.schema, child.name)),
    )
}

fn child_check(snapshot: &SchemaSnapshot, fk: &ForeignKey) -> Option<FkCheck> {
    let child = snapshot.table(fk.child);
    let parent = snapshot.table(fk.parent);
    let parent_sd = parent.soft_delete.as_ref()?;
    let f = fitted_name(format!(
        "fk_child_{}_{}_{}",
        child.schema, child.name, fk.name
    ));
    let trigger = fitted_name(format!("tombstone_fk_{}", fk.name));
    let cols = fk
        .child_columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    // MATCH SIMPLE: a key with a NULL column references nothing.
    let any_null = fk
        .child_columns
        .iter()
        .map(|c| format!("NEW.{} IS NULL", ident(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let child_live = child
        .soft_delete
        .as_ref()
        .map(|sd| format!(" AND c.{} IS NULL", ident(&sd.column)));
    let skip_deleted_child = child
        .soft_delete
        .as_ref()
        .map(|sd| {
            format!(
                "  IF NEW.{} IS NOT NULL THEN RETURN NULL; END IF;\n",
                ident(&sd.column)
            )
        })
        .unwrap_or_default();
    // The row as it is now (a deferred check runs at commit): one deleted,
    // soft-deleted or re-keyed since is not checked, as PostgreSQL skips a
    // row version that is no longer live.
    let still_there = if child.primary_key.is_empty() {
        String::new()
    } else {
        let same: Vec<String> = child
            .primary_key
            .iter()
            .chain(&fk.child_columns)
            .map(|c| format!("c.{0} = NEW.{0}", ident(c)))
            .collect();
        format!(
            "  IF NOT EXISTS (SELECT 1 FROM {q} c WHERE {same}{live}) THEN RETURN NULL; END IF;\n",
            q = qualified(snapshot, fk.child),
            same = same.join(" AND "),
            live = child_live.unwrap_or_default(),
        )
    };
    let new_key = pairs(fk, "NEW", "p");
    let parent_q = qualified(snapshot, fk.parent);
    let values = fk
        .child_columns
        .iter()
        .map(|c| format!("NEW.{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "CREATE OR REPLACE FUNCTION tombstone.{f}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  BEGIN
  IF {any_null} THEN RETURN NULL; END IF;
{skip_deleted_child}{still_there}  -- A live parent, or none at all (PostgreSQL's own check reports that).
  IF NOT EXISTS (SELECT 1 FROM {parent_q} p WHERE {new_key} AND p.{sd} IS NOT NULL)
     OR EXISTS (SELECT 1 FROM {parent_q} p WHERE {new_key} AND p.{sd} IS NULL) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'insert or update on table \"%\" violates foreign key constraint \"%\"', {child_name}, {fk_name}
    USING ERRCODE = 'foreign_key_violation',
          DETAIL = format('Key (%s)=(%s) is not present in table \"%s\".', {key_columns}, concat_ws(', ', {values}), {parent_name}),
          CONSTRAINT = {fk_name},
          TABLE = {child_name},
          SCHEMA = {child_schema};
{stale}
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.{f}() FROM PUBLIC;
CREATE CONSTRAINT TRIGGER {trigger} AFTER INSERT OR UPDATE OF {cols} ON {child_q}
  {timing} FOR EACH ROW EXECUTE FUNCTION tombstone.{f}({args});
",
        sd = ident(&parent_sd.column),
        child_name = literal(&child.name),
        child_schema = literal(&child.schema),
        fk_name = literal(&fk.name),
        parent_name = literal(&parent.name),
        key_columns = literal(&fk.child_columns.join(", ")),
        child_q = qualified(snapshot, fk.child),
        timing = fk.timing.clause(),
        args = arguments(snapshot, fk),
        stale = stale(snapshot, fk),
    );
    Some(check(snapshot, fk, &f, sql))
}

fn parent_check(snapshot: &SchemaSnapshot, fk: &ForeignKey) -> Option<FkCheck> {
    let child = snapshot.table(fk.child);
    let parent = snapshot.table(fk.parent);
    let parent_sd = parent.soft_delete.as_ref()?;
    let sd = ident(&parent_sd.column);
    let f = fitted_name(format!(
        "fk_parent_{}_{}_{}",
        child.schema, child.name, fk.name
    ));
    // The foreign key's own name, so `SET CONSTRAINTS <name>` reaches this
    // check too; a self-referencing key's is taken on its table already.
    let trigger = if fk.child == fk.parent {
        fitted_name(format!("{}_tombstone", fk.name))
    } else {
        ident(&fk.name)
    };
    let old_key = pairs(fk, "c", "OLD");
    let parent_live_again = fk
        .parent_columns
        .iter()
        .map(|c| format!("p.{0} = OLD.{0}", ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let child_live = child
        .soft_delete
        .as_ref()
        .map(|c| format!(" AND c.{} IS NULL", ident(&c.column)))
        .unwrap_or_default();
    let values = fk
        .child_columns
        .iter()
        .map(|c| format!("c.{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let args = [
        literal(&parent.name),
        literal(&fk.name),
        literal(&child.name),
        literal(&fk.parent_columns.join(", ")),
    ]
    .join(", ");
    let sql = format!(
        "CREATE OR REPLACE FUNCTION tombstone.{f}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  k text;
BEGIN
  BEGIN
  -- A row with that key live again (restored, or inserted anew): nothing
  -- references a deleted parent.
  IF EXISTS (SELECT 1 FROM {parent_q} p WHERE {parent_live_again} AND p.{sd} IS NULL) THEN
    RETURN NULL;
  END IF;
  SELECT concat_ws(', ', {values}) INTO k FROM {child_q} c WHERE {old_key}{child_live} LIMIT 1;
  IF FOUND THEN
    PERFORM tombstone.fk_violation({args}, k);
  END IF;
{stale}
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.{f}() FROM PUBLIC;
CREATE CONSTRAINT TRIGGER {trigger} AFTER UPDATE OF {sd} ON {parent_q}
  {timing} FOR EACH ROW WHEN (OLD.{sd} IS NULL AND NEW.{sd} IS NOT NULL)
  EXECUTE FUNCTION tombstone.{f}({targs});
",
        parent_q = qualified(snapshot, fk.parent),
        child_q = qualified(snapshot, fk.child),
        timing = fk.timing.clause(),
        targs = arguments(snapshot, fk),
        stale = stale(snapshot, fk),
    );
    Some(check(snapshot, fk, &f, sql))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Catalog, FkTiming, SnapshotOptions};

    fn snapshot(timing: FkTiming, action: FkAction) -> SchemaSnapshot {
        let mut cat = Catalog::default()
            .table(
                "public.p",
                &["id bigint", "deleted_at timestamptz"],
                &["id"],
            )
            .table(
                "public.c",
                &["id bigint", "p_id bigint", "deleted_at timestamptz"],
                &["id"],
            )
            .fk(
                "c_p_fkey",
                "public.c",
                &["p_id"],
                "public.p",
                &["id"],
                action,
            );
        cat.foreign_keys[0].timing = timing;
        SchemaSnapshot::build(cat, &SnapshotOptions::default())
    }

    #[test]
    fn every_key_to_a_protected_parent_gets_a_child_check_with_its_timing() {
        let sql = fk_checks(&snapshot(FkTiming::NotDeferrable, FkAction::Cascade));
        assert!(sql.contains("CREATE CONSTRAINT TRIGGER \"tombstone_fk_c_p_fkey\" AFTER INSERT OR UPDATE OF \"p_id\" ON \"public\".\"c\"\n  NOT DEFERRABLE"), "{sql}");
        assert!(!sql.contains("fk_parent_"), "{sql}");
        let sql = fk_checks(&snapshot(FkTiming::DeferrableDeferred, FkAction::Cascade));
        assert!(sql.contains("DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tombstone.\"fk_child_public_c_c_p_fkey\"('public', 'c', 'c_p_fkey')"), "{sql}");
    }

    #[test]
    fn only_deferrable_no_action_keys_get_a_parent_check_named_as_the_key() {
        for (timing, action, expected) in [
            (FkTiming::DeferrableDeferred, FkAction::NoAction, true),
            (FkTiming::DeferrableImmediate, FkAction::NoAction, true),
            (FkTiming::NotDeferrable, FkAction::NoAction, false),
            (FkTiming::DeferrableDeferred, FkAction::Restrict, false),
            (FkTiming::DeferrableDeferred, FkAction::Cascade, false),
        ] {
            let sql = fk_checks(&snapshot(timing, action));
            assert_eq!(
                sql.contains("CREATE CONSTRAINT TRIGGER \"c_p_fkey\" AFTER UPDATE OF \"deleted_at\" ON \"public\".\"p\""),
                expected,
                "{timing:?} {action:?}: {sql}"
            );
        }
    }
}
