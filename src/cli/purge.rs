//! `tombstone purge [--dry-run] [--batch-size N] [--format text|json]`:
//! physically delete what was soft-deleted longer ago than the retention
//! (`[retention]`), archiving it first with `retention.archive`. Progress
//! goes to stderr after every batch: one line rewritten in place on a
//! terminal, a log line at most every two seconds (and per table) otherwise.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use super::database::{DatabaseArgs, os_user};
use super::fail;
use crate::ops::purge::{Options, Progress, PurgeError, Report, purge};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Print how many rows are older than the retention; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rows per batch (each batch is its own transaction). Default:
    /// retention.purge_batch_size (5000).
    #[arg(long)]
    batch_size: Option<u32>,
    /// Stop after this many batches; the next run continues.
    #[arg(long)]
    max_batches: Option<u64>,
    /// Who is purging, for the audit trail. Default: your OS user.
    #[arg(long)]
    actor: Option<String>,
    /// The summary on stdout: a table, or one JSON object.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
}

pub async fn run(args: PurgeArgs) -> ExitCode {
    let (config, client) = match args.db.open().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let snapshot = match crate::schema::load::load(
        &client,
        &crate::protect::snapshot_options(&config),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            fail(&format!(
                "cannot read the schema: {}",
                crate::pg_error::describe(&e)
            ));
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        batch_size: args
            .batch_size
            .unwrap_or(config.retention.purge_batch_size)
            .max(1),
        dry_run: args.dry_run,
        max_batches: args.max_batches,
        actor: args.actor.or_else(os_user),
    };
    let mut meter = Meter::new(!args.quiet && !args.dry_run);
    let result = purge(
        &client,
        &snapshot,
        &config.retention,
        &config.audit,
        &options,
        &mut |p| meter.show(p),
    )
    .await;
    meter.finish();
    match result {
        Ok(report) => {
            match args.format {
                Format::Text => print_text(&report, args.dry_run),
                Format::Json => println!("{}", json(&report, args.dry_run)),
            }
            ExitCode::SUCCESS
        }
        Err(PurgeError::Busy) => {
            fail("another purge is running on this database; try again later");
            ExitCode::FAILURE
        }
        Err(e) => {
            fail(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

fn print_text(report: &Report, dry_run: bool) {
    let verb = if dry_run {
        "older than the retention (dry run, nothing deleted)"
    } else {
        "purged"
    };
    if report.tables.is_empty() {
        println!("nothing to purge");
    }
    for t in &report.tables {
        println!("{:<32} {:>8}  {verb}", t.table, t.rows);
    }
    if !dry_run {
        let rows: i64 = report.tables.iter().map(|t| t.rows).sum();
        println!(
            "{} batches, {} operation records removed, {rows} rows in {:.1} s ({:.0} rows/s)",
            report.batches,
            report.operations,
            report.elapsed.as_secs_f64(),
            crate::ops::purge::rate(rows, report.elapsed)
        );
        if report.archived > 0 {
            match report.archive_files.as_slice() {
                [] => println!("{} rows archived to tombstone.archive", report.archived),
                files => println!("{} rows archived to {}", report.archived, files.join(", ")),
            }
        }
    }
    if report.stopped_early {
        println!("stopped after --max-batches; run again to continue");
    }
}

fn json(report: &Report, dry_run: bool) -> serde_json::Value {
    let rows: i64 = report.tables.iter().map(|t| t.rows).sum();
    serde_json::json!({
        "dry_run": dry_run,
        "tables": report.tables.iter().map(|t| serde_json::json!({"table": t.table, "rows": t.rows})).collect::<Vec<_>>(),
        "rows": rows,
        "batches": report.batches,
        "operations_removed": report.operations,
        "archived": report.archived,
        "archive_files": report.archive_files,
        "seconds": report.elapsed.as_secs_f64(),
        "rows_per_second": crate::ops::purge::rate(rows, report.elapsed).round(),
        "stopped_early": report.stopped_early,
    })
}

/// Progress on stderr: rewritten in place on a terminal, log lines
/// (at most one every two seconds, and one per finished table) otherwise.
struct Meter {
    on: bool,
    tty: bool,
    last: Option<Duration>,
    drawn: bool,
}

impl Meter {
    fn new(on: bool) -> Meter {
        Meter {
            on,
            tty: std::io::stderr().is_terminal(),
            last: None,
            drawn: false,
        }
    }

    fn show(&mut self, p: &Progress<'_>) {
        if !self.on {
            return;
        }
        let line = format!(
            "purge: {} {} rows{}, {} rows in all, {:.0} rows/s, {:.1} s",
            p.table,
            p.table_rows,
            if p.table_done { " (done)" } else { "" },
            p.total_rows,
            p.rate(),
            p.elapsed.as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K{line}");
            if p.table_done {
                let _ = writeln!(err);
                self.drawn = false;
            } else {
                self.drawn = true;
            }
            let _ = err.flush();
        } else if p.table_done
            || self
                .last
                .is_none_or(|l| p.elapsed >= l + Duration::from_secs(2))
        {
            self.last = Some(p.elapsed);
            let _ = writeln!(err, "{line}");
        }
    }

    fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}
