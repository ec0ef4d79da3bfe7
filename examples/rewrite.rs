//! `cargo run --example rewrite -- [--role bypass] 'SQL'` until the binary wires
//! `tombstone rewrite`.
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: tombstone::cli::rewrite::RewriteArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = tombstone::cli::rewrite::run(cli.args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
