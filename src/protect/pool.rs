//! The parser pool: a fixed set of threads with big stacks
//! ([`THREAD_STACK`]) on which cache misses are parsed and rewritten, so
//! that the async workers never run, or wait for, a parse (SPEC S5). The
//! stack is [`PARSER_STACK`] and some: a rewrite started on a pool thread
//! has the whole parser stack left, so `parse::on_big_stack` runs it in
//! place (no stack segment mapped, no thread started).
//!
//! A session hands its job over and awaits the answer on a oneshot
//! channel; while it waits, its tokio worker serves other sessions. At most
//! `threads + queue` jobs are admitted at once (a semaphore); a session
//! beyond that waits, asynchronously, for a slot — one client sending huge
//! statements fills the queue for itself, not the workers for everyone.
//! A job that panics is answered with `None` and its thread goes on.
//!
//! Parser threads run at a lower CPU priority (nice +10 on Linux) than the
//! async workers: on a machine whose cores are all parsing, the workers
//! still get the CPU to answer other sessions at once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, oneshot};

use crate::rewrite::parse::PARSER_STACK;

/// Stack of a parser thread: [`PARSER_STACK`] for the rewrite, plus room
/// for the thread's own frames, its thread-local storage and the job
/// around the rewrite.
pub const THREAD_STACK: usize = PARSER_STACK + (2 << 20);

type Job = Box<dyn FnOnce() + Send>;

/// Why a job got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("the parser pool is shut down")]
    Closed,
    #[error("the parser thread failed")]
    Panicked,
}

pub struct ParserPool {
    jobs: mpsc::Sender<Job>,
    slots: Arc<Semaphore>,
    threads: usize,
}

impl ParserPool {
    /// Starts `threads` parser threads (at least one) admitting `queue`
    /// waiting jobs besides the running ones.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<ParserPool> {
        let threads = threads.max(1);
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("tombstone-parse-{i}"))
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    lower_priority();
                    worker(&receiver)
                })?;
        }
        Ok(ParserPool {
            jobs,
            slots: Arc::new(Semaphore::new(threads + queue.max(1))),
            threads,
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on a parser thread and awaits its result. Never blocks the
    /// calling thread.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PoolError> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Closed)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            // The session may have gone away meanwhile.
            let _ = tx.send(result.ok());
            drop(permit);
        });
        self.jobs.send(job).map_err(|_| PoolError::Closed)?;
        match rx.await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(PoolError::Panicked),
            Err(_) => Err(PoolError::Closed),
        }
    }
}

/// Nice value of parser threads (Linux: per thread).
const PARSER_NICE: i32 = 10;

/// Best effort: a thread whose priority cannot be lowered still parses.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no
    // memory of ours; on Linux PRIO_PROCESS with a thread id sets that
    // thread's nice value.
    unsafe {
        let tid = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, PARSER_NICE);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

fn worker(receiver: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let next = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        match next {
            Ok(job) => job(),
            // The pool was dropped.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_big_stacks_and_panics_are_answered() {
        let pool = ParserPool::new(2, 1).expect("threads");
        let name = pool
            .run(|| std::thread::current().name().map(str::to_string))
            .await;
        assert!(
            matches!(&name, Ok(Some(n)) if n.starts_with("tombstone-parse-")),
            "{name:?}"
        );
        // Recursion deeper than a test thread's 2 MiB stack allows.
        fn depth(n: u64) -> u64 {
            let pad = [n; 64];
            if n == 0 {
                0
            } else {
                std::hint::black_box(pad)[0].min(1) + depth(n - 1)
            }
        }
        assert_eq!(pool.run(|| depth(10_000)).await, Ok(10_000));
        assert_eq!(
            pool.run(|| -> u8 { panic!("boom") }).await,
            Err(PoolError::Panicked)
        );
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    /// A pool thread has the whole parser stack left when a job starts, so
    /// `on_big_stack` runs the rewrite in place.
    #[tokio::test]
    async fn a_job_starts_with_the_parser_stack_left() {
        let pool = ParserPool::new(1, 1).expect("threads");
        let left = pool.run(stacker::remaining_stack).await;
        assert!(
            matches!(left, Ok(Some(n)) if n >= PARSER_STACK),
            "{left:?} < {PARSER_STACK}"
        );
    }

    /// Elsewhere `on_big_stack` grows the stack on the calling thread
    /// (recursion deeper than a 1 MiB thread allows), starting no thread.
    #[test]
    fn on_big_stack_grows_the_callers_stack_without_a_thread() {
        fn depth(n: u64) -> u64 {
            let pad = [n; 64];
            if n == 0 {
                0
            } else {
                std::hint::black_box(pad)[0].min(1) + depth(n - 1)
            }
        }
        let small = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(|| {
                let me = std::thread::current().id();
                crate::rewrite::parse::on_big_stack(|| (std::thread::current().id(), depth(10_000)))
                    .map(|(id, d)| (id == me, d))
            })
            .expect("thread");
        assert_eq!(small.join().ok().flatten(), Some((true, 10_000)));
        // A panic is an answer, not an unwind into the caller.
        assert_eq!(
            crate::rewrite::parse::on_big_stack(|| -> u8 { panic!("boom") }),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn parser_threads_yield_the_cpu_to_the_async_workers() {
        let pool = ParserPool::new(1, 1).expect("threads");
        // SAFETY: plain integer arguments, no memory shared.
        let nice = pool
            .run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) })
            .await;
        assert!(matches!(nice, Ok(n) if n >= PARSER_NICE), "{nice:?}");
    }

    #[tokio::test]
    async fn more_jobs_than_slots_wait_without_blocking_the_caller() {
        let pool = Arc::new(ParserPool::new(1, 1).expect("threads"));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let mut waiting = Vec::new();
        for i in 0..4u32 {
            let pool = pool.clone();
            let release_rx = release_rx.clone();
            waiting.push(tokio::spawn(async move {
                pool.run(move || {
                    let _ = release_rx.lock().map(|r| r.recv());
                    i
                })
                .await
            }));
        }
        // The runtime still serves other tasks while every slot is taken.
        let other = tokio::spawn(async { 42 }).await;
        assert_eq!(other.ok(), Some(42));
        for _ in 0..4 {
            let _ = release_tx.send(());
        }
        let mut got = Vec::new();
        for w in waiting {
            got.push(w.await.ok().and_then(Result::ok));
        }
        got.sort();
        assert_eq!(got, [Some(0), Some(1), Some(2), Some(3)]);
    }
}
