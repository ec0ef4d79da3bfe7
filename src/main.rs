//! The `tombstone` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    tombstone::cli::main()
}
