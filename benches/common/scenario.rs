//! The scenario schema (tests/scenario/schema.sql) as a snapshot, for
//! benchmarks that need no database: the catalog the rewriter's unit tests
//! use (tests/scenario/catalog.rs), which tests/scenario_catalog.rs proves
//! equal to schema.sql.

use tombstone::schema::{Catalog, FkAction, SchemaSnapshot, SnapshotOptions};

include!("../../tests/scenario/catalog.rs");

pub fn scenario() -> SchemaSnapshot {
    SchemaSnapshot::build(scenario_catalog(), &SnapshotOptions::default())
}
