//! The hand-written scenario catalog the rewriter's unit tests and the
//! bench use (tests/scenario/catalog.rs) is the one PostgreSQL has for
//! tests/scenario/schema.sql: loaded into a fresh database with `migrate
//! --apply`, read back by the proxy's own loader, compared table by table,
//! column by column, key by key, index by index and function by function.
//! Any drift in either file fails here.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;

use common::TestDb;
use tombstone::schema::load::load_catalog;
use tombstone::schema::{Catalog, FkAction, TOMBSTONE_SCHEMA};

include!("scenario/catalog.rs");

/// `items` by `key`; a key twice is itself a difference.
fn by_key<T: Clone, K: Ord + Debug>(
    side: &str,
    items: &[T],
    key: impl Fn(&T) -> K,
    problems: &mut Vec<String>,
) -> BTreeMap<K, T> {
    let mut map = BTreeMap::new();
    for item in items {
        let k = key(item);
        if map.contains_key(&k) {
            problems.push(format!("{side}: {k:?} twice"));
        }
        map.insert(k, item.clone());
    }
    map
}

/// Every key on one side only, and every value that differs.
fn compare<K: Ord + Debug, T: PartialEq + Debug>(
    what: &str,
    hand: &BTreeMap<K, T>,
    loaded: &BTreeMap<K, T>,
    problems: &mut Vec<String>,
) {
    for (k, h) in hand {
        match loaded.get(k) {
            None => problems.push(format!(
                "{what} {k:?} is in tests/scenario/catalog.rs, not in schema.sql"
            )),
            Some(l) if l != h => problems.push(format!(
                "{what} {k:?} differs:\n  catalog.rs: {h:?}\n  schema.sql: {l:?}"
            )),
            Some(_) => {}
        }
    }
    for k in loaded.keys().filter(|k| !hand.contains_key(k)) {
        problems.push(format!(
            "{what} {k:?} is in schema.sql, not in tests/scenario/catalog.rs: {:?}",
            loaded[k]
        ));
    }
}

/// The differences between two catalogs, in words; none when they agree
/// (order aside: the loader's follows pg_class, not the file).
fn differences(hand: &Catalog, loaded: &Catalog) -> Vec<String> {
    let mut p = Vec::new();
    let tables = |side, c: &Catalog, p: &mut Vec<String>| {
        by_key(side, &c.tables, |t| (t.schema.clone(), t.name.clone()), p)
    };
    let (h, l) = (
        tables("catalog.rs", hand, &mut p),
        tables("schema.sql", loaded, &mut p),
    );
    compare("table", &h, &l, &mut p);
    let fks = |side, c: &Catalog, p: &mut Vec<String>| {
        by_key(
            side,
            &c.foreign_keys,
            |f| (f.child.clone(), f.name.clone()),
            p,
        )
    };
    let (h, l) = (
        fks("catalog.rs", hand, &mut p),
        fks("schema.sql", loaded, &mut p),
    );
    compare("foreign key", &h, &l, &mut p);
    let indexes = |side, c: &Catalog, p: &mut Vec<String>| {
        by_key(
            side,
            &c.unique_indexes,
            |i| (i.table.clone(), i.name.clone()),
            p,
        )
    };
    let (h, l) = (
        indexes("catalog.rs", hand, &mut p),
        indexes("schema.sql", loaded, &mut p),
    );
    compare("unique index", &h, &l, &mut p);
    let functions = |c: &Catalog| -> BTreeMap<String, ()> {
        c.functions.iter().map(|f| (f.clone(), ())).collect()
    };
    compare("function", &functions(hand), &functions(loaded), &mut p);
    if hand.functions.len() != functions(hand).len() {
        p.push("catalog.rs: a function twice".into());
    }
    p
}

/// What `migrate` adds in its own schema is not schema.sql's.
fn without_tombstone(mut c: Catalog) -> Catalog {
    let ours = |schema: &str| schema == TOMBSTONE_SCHEMA;
    c.tables.retain(|t| !ours(&t.schema));
    c.foreign_keys
        .retain(|f| !ours(&f.child.0) && !ours(&f.parent.0));
    c.unique_indexes.retain(|i| !ours(&i.table.0));
    c
}

#[tokio::test]
async fn the_hand_written_scenario_catalog_is_schema_sql() {
    let db = TestDb::create("scenario_catalog", 1);
    let client = db.connect().await;
    let loaded = load_catalog(&client)
        .await
        .unwrap_or_else(|e| panic!("load catalog: {e}"));
    let loaded = without_tombstone(loaded);
    let hand = scenario_catalog();
    let problems = differences(&hand, &loaded);
    assert!(
        problems.is_empty(),
        "tests/scenario/catalog.rs and tests/scenario/schema.sql disagree:\n{}",
        problems.join("\n")
    );
    // Not an empty comparison.
    assert!(
        loaded
            .tables
            .iter()
            .any(|t| t.schema == "billing" && t.name == "invoices"),
        "{loaded:?}"
    );
}

/// The comparison sees a change of any kind.
#[test]
fn any_drift_is_a_difference() {
    let base = scenario_catalog();
    assert!(differences(&base, &base).is_empty());
    let mut drifts: Vec<Catalog> = Vec::new();
    let mut c = base.clone();
    c.tables[0].columns[1].type_sql = "character varying".into();
    drifts.push(c);
    let mut c = base.clone();
    c.tables[2].columns.swap(0, 1);
    drifts.push(c);
    let mut c = base.clone();
    c.tables[4].primary_key.clear();
    drifts.push(c);
    let mut c = base.clone();
    c.tables.pop();
    drifts.push(c);
    let mut c = base.clone();
    c.foreign_keys[3].on_delete = FkAction::NoAction;
    drifts.push(c);
    let mut c = base.clone();
    c.foreign_keys[0].set_columns = vec!["team_id".into()];
    drifts.push(c);
    let mut c = base.clone();
    c.unique_indexes[0].predicate = None;
    drifts.push(c);
    let mut c = base.clone();
    c.functions.push("f".into());
    drifts.push(c);
    let mut c = base.clone();
    c.tables[0].records_operations = !c.tables[0].records_operations;
    drifts.push(c);
    for (i, d) in drifts.iter().enumerate() {
        assert!(!differences(d, &base).is_empty(), "drift {i} not seen");
        assert!(!differences(&base, d).is_empty(), "drift {i} not seen");
    }
    // Order alone is no difference.
    let mut c = base.clone();
    c.tables.reverse();
    c.foreign_keys.reverse();
    c.unique_indexes.reverse();
    c.functions.reverse();
    assert_eq!(differences(&c, &base), Vec::<String>::new());
}
