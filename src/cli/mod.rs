pub mod rewrite;
