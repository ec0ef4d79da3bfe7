//! `SET CONSTRAINTS <key>`: the key's child-side check trigger is named
//! beside it (SPEC W8).

use super::{check_in, session};
use crate::rewrite::rewrite;
use crate::schema::{Catalog, FkAction, FkTiming, RawForeignKey, SchemaSnapshot, SnapshotOptions};

fn key(
    name: &str,
    schema: &str,
    child: &str,
    timing: FkTiming,
    check: Option<&str>,
) -> RawForeignKey {
    RawForeignKey {
        name: name.into(),
        child: (schema.into(), child.into()),
        child_columns: vec!["p_id".into()],
        parent: ("public".into(), "p".into()),
        parent_columns: vec!["id".into()],
        on_delete: FkAction::NoAction,
        set_columns: vec![],
        timing,
        parent_checked: true,
        child_check: check.map(str::to_string),
    }
}

fn snapshot() -> SchemaSnapshot {
    let mut cat = Catalog::default()
        .table("public.p", &["id int", "deleted_at timestamptz"], &["id"])
        .table(
            "public.c",
            &["id int", "p_id int", "deleted_at timestamptz"],
            &["id"],
        )
        .table("public.d", &["id int", "p_id int"], &["id"])
        .table("other.c", &["id int", "p_id int"], &["id"])
        .table("other.e", &["id int", "p_id int"], &["id"]);
    let deferred = FkTiming::from_catalog(true, true);
    cat.foreign_keys.extend([
        key(
            "c_p_fkey",
            "public",
            "c",
            deferred,
            Some("tombstone_fk_c_p_fkey"),
        ),
        // Same key name on two tables of one schema: one name reaches both.
        key(
            "shared",
            "public",
            "d",
            deferred,
            Some("tombstone_fk_shared"),
        ),
        key(
            "shared",
            "public",
            "c",
            deferred,
            Some("tombstone_fk_shared"),
        ),
        key(
            "c_p_fkey",
            "other",
            "c",
            deferred,
            Some("tombstone_fk_c_p_fkey"),
        ),
        key(
            "e_only",
            "other",
            "e",
            deferred,
            Some("tombstone_fk_e_only"),
        ),
        key(
            "plain",
            "public",
            "d",
            FkTiming::NotDeferrable,
            Some("tombstone_fk_plain"),
        ),
        key("unmigrated", "public", "d", deferred, None),
    ]);
    SchemaSnapshot::build(cat, &SnapshotOptions::default())
}

#[test]
fn named_keys_bring_their_child_checks() {
    let s = snapshot();
    let normal = session();
    check_in(
        &s,
        "SET CONSTRAINTS c_p_fkey IMMEDIATE",
        "SET CONSTRAINTS public.tombstone_fk_c_p_fkey, c_p_fkey IMMEDIATE",
        &normal,
    );
    check_in(
        &s,
        "set constraints other.c_p_fkey, shared deferred",
        "set constraints other.tombstone_fk_c_p_fkey, public.tombstone_fk_shared, other.c_p_fkey, shared deferred",
        &normal,
    );
    // Not in the path: PostgreSQL reports it; nothing is added.
    check_in(
        &s,
        "SET CONSTRAINTS e_only IMMEDIATE",
        "SET CONSTRAINTS e_only IMMEDIATE",
        &normal,
    );
    // The path decides which schema an unqualified name means.
    let mut other_first = session();
    other_first.search_path = vec!["other".into(), "public".into()];
    check_in(
        &s,
        "SET CONSTRAINTS c_p_fkey, e_only IMMEDIATE",
        "SET CONSTRAINTS other.tombstone_fk_c_p_fkey, other.tombstone_fk_e_only, c_p_fkey, e_only IMMEDIATE",
        &other_first,
    );
    // ALL reaches the triggers itself; not deferrable or not migrated:
    // nothing to add.
    for sql in [
        "SET CONSTRAINTS ALL IMMEDIATE",
        "SET CONSTRAINTS plain, unmigrated IMMEDIATE",
    ] {
        check_in(&s, sql, sql, &normal);
    }
    // A path the session cannot know: unqualified names get nothing.
    let mut unknown = session();
    unknown.search_path_unknown = true;
    let out = rewrite("SET CONSTRAINTS c_p_fkey IMMEDIATE", &s, &unknown).unwrap();
    assert_eq!(out.sql, "SET CONSTRAINTS c_p_fkey IMMEDIATE");
}
