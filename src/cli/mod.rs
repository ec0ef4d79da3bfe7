//! The command line: one file per subcommand, each with its own argument
//! struct and `run`.

mod config_file;
pub mod database;
mod demo;
mod doctor;
mod erase;
mod migrate;
mod purge;
mod restore;
pub mod rewrite;
mod serve;
mod trash;
mod undo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A PostgreSQL proxy that turns deletes into soft deletes, hides deleted
/// rows, and keeps an audit trail.
#[derive(Debug, Parser)]
#[command(name = "tombstone", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy.
    Serve(serve::ServeArgs),
    /// Try it: a throwaway PostgreSQL with the reference scenario, migrated, behind the proxy, until Ctrl-C.
    Demo(demo::DemoArgs),
    /// Validate a rules.toml offline (exit 0 if it loads, 2 with the reason if not).
    Check(serve::ServeArgs),
    /// Print (or --apply) the DDL that creates the tombstone schema.
    Migrate(migrate::MigrateArgs),
    /// Print what a statement becomes through tombstone.
    Rewrite(rewrite::RewriteArgs),
    /// Report what is wrong with the database for soft delete.
    Doctor(doctor::DoctorArgs),
    /// List the operations that can be restored, newest first.
    Trash(trash::TrashArgs),
    /// Bring back what one operation soft-deleted.
    Restore(restore::RestoreArgs),
    /// Physically delete what was soft-deleted longer ago than the retention.
    Purge(purge::PurgeArgs),
    /// Physically delete one record and its cascade now; redact its audit rows.
    Erase(erase::EraseArgs),
    /// Revert one transaction's inserts, updates and soft deletes from the audit trail.
    Undo(undo::UndoArgs),
}

/// Prints an error for the operator on stderr, after the one `tombstone: `
/// every error of the command line starts with (a message that already
/// starts with it, as the SQL functions' do, does not get a second).
pub(crate) fn fail(message: &str) {
    let mut message = message;
    while let Some(rest) = message.strip_prefix("tombstone: ") {
        message = rest;
    }
    eprintln!("tombstone: {message}");
}

/// Parses the arguments and runs the subcommand; the exit code says how it
/// went: 0 ok; 1 the command ran and failed (the database unreachable or
/// refusing, doctor's problems); 2 usage: arguments clap or the command
/// refuses, a config file that does not load, no database named.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version: printed on stdout, exit 0.
        Err(e) if !e.use_stderr() => e.exit(),
        // `tombstone` alone: the help, on stderr, exit 2.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", e.render());
            return ExitCode::from(2);
        }
        Err(e) => {
            let text = e.render().to_string();
            fail(text.strip_prefix("error: ").unwrap_or(&text).trim_end());
            return ExitCode::from(2);
        }
    };
    if !matches!(cli.command, Command::Serve(_) | Command::Demo(_)) {
        // `tombstone trash | head`: a reader that stops early ends a
        // command quietly, as it ends any Unix tool, instead of a panic in
        // println!. (The proxy, `demo`'s too, keeps SIGPIPE ignored;
        // sockets never raise it: Rust sends with MSG_NOSIGNAL.)
        // SAFETY: setting a signal's disposition to its default before any
        // thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            fail(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Check(args) => serve::check(args),
            Command::Migrate(args) => migrate::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::Trash(args) => trash::run(args).await,
            Command::Restore(args) => restore::run(args).await,
            Command::Purge(args) => purge::run(args).await,
            Command::Erase(args) => erase::run(args).await,
            Command::Undo(args) => undo::run(args).await,
            Command::Rewrite(args) => rewrite::main(args).await,
        }
    })
}
