//! tombstone: a PostgreSQL wire-protocol proxy that gives unmodified
//! applications soft delete, restore and an audit trail.
//!
//! See `ARCHITECTURE.md` for the map; data flows
//! `server` → `session` → `wire`, with `upstream` for the server side.

pub mod admin;
pub mod cancel;
pub mod cli;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod migrate;
pub mod ops;
pub mod pg_error;
pub mod protect;
pub mod rewrite;
pub mod schema;
pub mod server;
pub mod session;
pub mod stream;
pub mod tls;
pub mod upstream;
pub mod wire;
