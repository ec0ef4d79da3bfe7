pub mod cli;
pub mod rewrite;
pub mod schema;
