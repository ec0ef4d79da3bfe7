//! The PostgreSQL wire protocol as the proxy needs it: framing bytes into
//! messages, and the few messages tombstone reads or builds.
//!
//! This layer knows nothing of SQL, sessions or configuration. A [`Frame`]
//! keeps the exact bytes that arrived, so a message the proxy does not change
//! is forwarded without being decoded and re-encoded.

mod auth;
mod backend_key;
mod error;
pub mod extended;
mod frame;
mod reader;
mod response;
mod startup;

pub use auth::{AuthRequest, strip_channel_binding};
pub use backend_key::BackendKey;
pub use error::WireError;
pub use frame::{Frame, tag};
pub use reader::{FrameReader, Limits};
pub use response::{ErrorFields, Severity, error_response, ready_for_query_status};
pub use startup::{StartupPacket, cancel_request, with_parameter};
