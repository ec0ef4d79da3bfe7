//! `tombstone rewrite`'s library entry point against a real database.

mod common;

use common::TestDb;
use tombstone::cli::database::DatabaseArgs;
use tombstone::cli::rewrite::{RewriteArgs, RoleArg, run};
use tombstone::rewrite::parse_search_path;

#[tokio::test]
async fn run_loads_the_schema_and_rewrites() {
    let db = TestDb::create("cli", 1);
    let args = RewriteArgs {
        role: RoleArg::Normal,
        db: DatabaseArgs {
            database_url: Some(db.url.clone()),
            ..Default::default()
        },
        sql: "SELECT * FROM tasks".into(),
    };
    let out = run(args).await.expect("rewrite runs");
    assert!(out.sql.contains("deleted_at IS NULL"), "{}", out.sql);
    assert!(out.warning.is_none(), "{:?}", out.warning);
    let args = RewriteArgs {
        role: RoleArg::Normal,
        db: DatabaseArgs {
            database_url: Some(db.url.clone()),
            ..Default::default()
        },
        sql: "TRUNCATE tasks".into(),
    };
    let err = run(args).await.expect_err("TRUNCATE refused");
    assert!(err.to_string().starts_with("42501"), "{err}");
    let args = RewriteArgs {
        role: RoleArg::Bypass,
        db: DatabaseArgs {
            database_url: Some(db.url.clone()),
            ..Default::default()
        },
        sql: "SELECT 1".into(),
    };
    run(args).await.expect("bypass");
}

#[test]
fn search_path_setting_is_parsed() {
    assert_eq!(parse_search_path("\"$user\", public"), ["$user", "public"]);
    assert_eq!(
        parse_search_path("App, \"My Schema\""),
        ["app", "My Schema"]
    );
}
