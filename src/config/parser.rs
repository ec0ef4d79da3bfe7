//! `[parser]`: the pool of threads that parse and rewrite statements off
//! the async workers.

use serde::Deserialize;

use super::ConfigError;

/// Most parser threads (each reserves a 66 MiB stack of address space: the
/// parser's 64 MiB and the thread's own).
pub const MAX_THREADS: usize = 256;
/// Most jobs waiting for a parser thread.
pub const MAX_QUEUE: usize = 65_536;

/// `[parser]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParserConfig {
    /// Parser threads. Default `0`: one per CPU core the process may use,
    /// less one (at least one), so that a core is always left for the
    /// async workers.
    pub threads: usize,
    /// Statements admitted to wait for a parser thread besides those
    /// running; a session beyond that waits for a slot (asynchronously).
    /// Default `0`: 64 per thread.
    pub queue: usize,
}

impl ParserConfig {
    /// Threads to start.
    pub fn thread_count(&self) -> usize {
        match self.threads {
            0 => {
                std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
            }
            n => n,
        }
    }

    /// Waiting jobs admitted.
    pub fn queue_len(&self) -> usize {
        match self.queue {
            0 => 64 * self.thread_count(),
            n => n,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.threads > MAX_THREADS {
            return Err(ConfigError::key(
                "parser.threads",
                format!("at most {MAX_THREADS} (0: one per CPU core but one)"),
            ));
        }
        if self.queue > MAX_QUEUE {
            return Err(ConfigError::key(
                "parser.queue",
                format!("at most {MAX_QUEUE} (0: 64 per thread)"),
            ));
        }
        Ok(())
    }
}
