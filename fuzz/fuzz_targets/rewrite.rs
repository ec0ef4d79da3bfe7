//! The rewriter on arbitrary text against the reference scenario's schema,
//! as a normal and as a bypass session: it never panics, and whatever it
//! does not refuse is what may be sent: unchanged text, or a rewrite that
//! parses (the rewriter has checked each rewritten statement itself,
//! `rewrite::verify`, before returning it).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tombstone::rewrite::{Role, SessionContext, Visibility, rewrite};
use tombstone::schema::{Catalog, FkAction, SchemaSnapshot, SnapshotOptions};

include!("../../tests/scenario/catalog.rs");

static SNAPSHOT: LazyLock<SchemaSnapshot> =
    LazyLock::new(|| SchemaSnapshot::build(scenario_catalog(), &SnapshotOptions::default()));

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    if sql.contains('\0') {
        return; // the wire layer never hands the rewriter a NUL
    }
    let normal = SessionContext::normal("app");
    let mut bypass = SessionContext::normal("admin");
    bypass.role = Role::Bypass {
        visibility: Visibility::All,
    };
    for session in [&normal, &bypass] {
        let Ok(out) = rewrite(sql, &SNAPSHOT, session) else {
            continue;
        };
        if out.sql == sql {
            continue;
        }
        let parsed = pg_query::parse(&out.sql, 0);
        assert!(parsed.is_ok(), "the rewrite does not parse: {sql:?} -> {:?}", out.sql);
    }
});
