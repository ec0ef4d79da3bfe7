//! `tombstone doctor`: report in plain words what is wrong with the
//! database for soft delete; exit status 1 when something needs fixing.

use std::process::ExitCode;

use super::database::DatabaseArgs;
use super::fail;
use crate::ops::doctor::examine;
use crate::pg_error::describe;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    db: DatabaseArgs,
}

pub async fn run(args: DoctorArgs) -> ExitCode {
    let (config, client) = match args.db.open().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let options = crate::protect::snapshot_options(&config);
    let report = match crate::schema::load::load(&client, &options).await {
        Ok(snapshot) => examine(&client, &config, &snapshot).await,
        Err(e) => Err(e),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            fail(&format!("cannot read the catalog: {}", describe(&e)));
            return ExitCode::FAILURE;
        }
    };
    let installed = match crate::migrate::version::installed(&client).await {
        Ok(installed) => installed,
        Err(e) => {
            fail(&format!(
                "cannot read the tombstone schema version: {}",
                describe(&e)
            ));
            return ExitCode::FAILURE;
        }
    };
    let needed = crate::migrate::SCHEMA_VERSION;
    match &installed {
        Some(i) => {
            let how = match (&i.installed_at, &i.installed_by) {
                (Some(at), Some(by)) => format!(", installed {at} by {by}"),
                _ => String::new(),
            };
            println!(
                "Tombstone schema: version {}{how} (this binary needs {needed})\n",
                i.version
            );
        }
        None => println!("Tombstone schema: not installed (this binary needs version {needed})\n"),
    }
    let version_problem = crate::migrate::version::mismatch(installed.as_ref(), "…");
    println!("Protected tables ({}):", report.protected.len());
    for t in &report.protected {
        println!("  {t}");
    }
    println!("\nCascade plan (what a soft delete of a row does):");
    for tree in &report.cascade {
        for line in tree.lines() {
            println!("  {line}");
        }
    }
    if report.problems.is_empty() && version_problem.is_none() {
        println!("\nNothing needs fixing.");
        return ExitCode::SUCCESS;
    }
    let count = report.problems.len() + usize::from(version_problem.is_some());
    println!("\nNeeds fixing ({count}):");
    if let Some(v) = &version_problem {
        println!("  - {v}");
    }
    for p in &report.problems {
        println!("  - {}", p.describe());
    }
    if !report.fixes.is_empty() {
        println!(
            "\n{} of these have DDL: tombstone migrate --fix prints it, --fix --apply applies it.",
            report.fixes.len()
        );
    }
    ExitCode::FAILURE
}
