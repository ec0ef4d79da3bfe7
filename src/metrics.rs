//! The process's metrics: counters, gauges and fixed-bucket histograms the
//! hot path updates with one relaxed atomic add each (no lock, no map, no
//! allocation), and their rendering in Prometheus' text format (0.0.4) for
//! the admin listener's `/metrics`.
//!
//! One [`Metrics`] value is built by `serve` and passed down as an
//! `Arc<Metrics>` (`server::Shared`, `protect::Protection`, the purge
//! schedule); nothing reads it from a global. Label sets are closed enums
//! ([`StatementKind`], [`Refusal`]), so every series exists from the first
//! scrape on (at 0) and a label value can never come from client input.
//!
//! Hand-written rather than `prometheus-client`: the text format is a few
//! lines per metric, and the crate's labelled families sit behind a lock
//! per lookup where these are array indexes.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::rewrite::RewriteError;

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds one until the guard is dropped (a session while it runs).
    pub fn track(&self) -> GaugeGuard<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(self)
    }
}

/// Takes back the one [`Gauge::track`] added.
pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Durations in fixed buckets: one counter per bucket (not cumulative;
/// rendering sums them), so an observation is a short scan of the bounds
/// and two atomic adds.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in nanoseconds, increasing; the last bucket is +Inf.
    bounds: &'static [u64],
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = self
            .bounds
            .iter()
            .position(|&b| nanos <= b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

const MICRO: u64 = 1_000;
const MILLI: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

/// Rewriting one statement: tens of microseconds to tens of milliseconds.
const REWRITE_BUCKETS: &[u64] = &[
    25 * MICRO,
    50 * MICRO,
    100 * MICRO,
    250 * MICRO,
    500 * MICRO,
    MILLI,
    2 * MILLI + 500 * MICRO,
    5 * MILLI,
    10 * MILLI,
    25 * MILLI,
    50 * MILLI,
    100 * MILLI,
    250 * MILLI,
    SECOND,
];

/// A round trip to PostgreSQL: a local point read to a long query.
const UPSTREAM_BUCKETS: &[u64] = &[
    100 * MICRO,
    250 * MICRO,
    500 * MICRO,
    MILLI,
    2 * MILLI + 500 * MICRO,
    5 * MILLI,
    10 * MILLI,
    25 * MILLI,
    50 * MILLI,
    100 * MILLI,
    250 * MILLI,
    500 * MILLI,
    SECOND,
    2 * SECOND + 500 * MILLI,
    5 * SECOND,
    10 * SECOND,
];

/// A statement's kind, from its CommandComplete tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    Select,
    Insert,
    Update,
    Delete,
    Ddl,
    Other,
}

impl StatementKind {
    const ALL: [StatementKind; 6] = [
        StatementKind::Select,
        StatementKind::Insert,
        StatementKind::Update,
        StatementKind::Delete,
        StatementKind::Ddl,
        StatementKind::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            StatementKind::Select => "select",
            StatementKind::Insert => "insert",
            StatementKind::Update => "update",
            StatementKind::Delete => "delete",
            StatementKind::Ddl => "ddl",
            StatementKind::Other => "other",
        }
    }

    /// The kind a command tag (`SELECT 3`, `INSERT 0 1`, `CREATE TABLE`…)
    /// names. A soft delete's tag is `DELETE n` by the time the client
    /// gets it.
    pub fn of_tag(tag: &[u8]) -> StatementKind {
        let verb = tag.split(|&b| b == b' ').next().unwrap_or_default();
        match verb {
            b"SELECT" => StatementKind::Select,
            b"INSERT" => StatementKind::Insert,
            b"UPDATE" => StatementKind::Update,
            b"DELETE" => StatementKind::Delete,
            b"CREATE" | b"ALTER" | b"DROP" | b"COMMENT" => StatementKind::Ddl,
            _ => StatementKind::Other,
        }
    }
}

/// Why the rewriter refused a statement: one label per [`RewriteError`]
/// kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    TruncateProtected,
    FailClosed,
    Unsupported,
    NotInstalled,
    TooLarge,
    TooComplex,
    Syntax,
    ReadOnly,
    SettingDenied,
    Unverified,
    InvalidSetting,
}

impl Refusal {
    const ALL: [Refusal; 11] = [
        Refusal::TruncateProtected,
        Refusal::FailClosed,
        Refusal::Unsupported,
        Refusal::NotInstalled,
        Refusal::TooLarge,
        Refusal::TooComplex,
        Refusal::Syntax,
        Refusal::ReadOnly,
        Refusal::SettingDenied,
        Refusal::Unverified,
        Refusal::InvalidSetting,
    ];

    /// Exhaustive: a new error kind does not compile until it has a label.
    pub fn of(e: &RewriteError) -> Refusal {
        match e {
            RewriteError::TruncateProtected { .. } => Refusal::TruncateProtected,
            RewriteError::FailClosed { .. } => Refusal::FailClosed,
            RewriteError::Unsupported { .. } => Refusal::Unsupported,
            RewriteError::NotInstalled { .. } => Refusal::NotInstalled,
            RewriteError::TooLarge { .. } => Refusal::TooLarge,
            RewriteError::TooComplex { .. } => Refusal::TooComplex,
            RewriteError::Syntax { .. } => Refusal::Syntax,
            RewriteError::ReadOnly { .. } => Refusal::ReadOnly,
            RewriteError::SettingDenied { .. } => Refusal::SettingDenied,
            RewriteError::Unverified { .. } => Refusal::Unverified,
            RewriteError::InvalidSetting { .. } => Refusal::InvalidSetting,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Refusal::TruncateProtected => "truncate_protected",
            Refusal::FailClosed => "fail_closed",
            Refusal::Unsupported => "unsupported",
            Refusal::NotInstalled => "not_installed",
            Refusal::TooLarge => "too_large",
            Refusal::TooComplex => "too_complex",
            Refusal::Syntax => "syntax",
            Refusal::ReadOnly => "read_only",
            Refusal::SettingDenied => "setting_denied",
            Refusal::Unverified => "unverified",
            Refusal::InvalidSetting => "invalid_setting",
        }
    }
}

/// Every metric the process keeps. Field docs are the HELP texts' gist;
/// [`Metrics::render`] has the exact words.
#[derive(Debug)]
pub struct Metrics {
    /// TCP connections accepted on `listen.address` (cancel requests too).
    pub sessions_accepted: Counter,
    /// Client connections being served now.
    pub sessions_open: Gauge,
    /// Query messages received from clients.
    pub query_messages: Counter,
    /// Parse messages received from clients.
    pub parse_messages: Counter,
    statements: [Counter; 6],
    /// Query/Parse messages whose text the rewriter changed.
    pub rewrites: Counter,
    refusals: [Counter; 11],
    /// Rewrites on a cache miss, on a parser thread.
    pub rewrite_seconds: Histogram,
    /// From forwarding a Query/Sync/FunctionCall (none being timed) to the
    /// server's next message.
    pub upstream_seconds: Histogram,
    /// Opening a session's upstream connection (TCP, TLS), up to startup.
    pub upstream_connect_seconds: Histogram,
    /// Schema snapshots the watcher installed (the catalog changed).
    pub schema_refreshes: Counter,
    /// Schema reads that failed (the last snapshot stays).
    pub schema_refresh_errors: Counter,
    /// Statements completed as soft deletes (`UPDATE n` renamed `DELETE n`).
    pub soft_deletes: Counter,
    /// The rows their `DELETE n` tags counted.
    pub soft_deleted_rows: Counter,
    /// Scheduled purges (`retention.purge_interval`) that ran.
    pub purges: Counter,
    /// Rows the scheduled purges removed.
    pub purged_rows: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            sessions_accepted: Counter::default(),
            sessions_open: Gauge::default(),
            query_messages: Counter::default(),
            parse_messages: Counter::default(),
            statements: Default::default(),
            rewrites: Counter::default(),
            refusals: Default::default(),
            rewrite_seconds: Histogram::new(REWRITE_BUCKETS),
            upstream_seconds: Histogram::new(UPSTREAM_BUCKETS),
            upstream_connect_seconds: Histogram::new(UPSTREAM_BUCKETS),
            schema_refreshes: Counter::default(),
            schema_refresh_errors: Counter::default(),
            soft_deletes: Counter::default(),
            soft_deleted_rows: Counter::default(),
            purges: Counter::default(),
            purged_rows: Counter::default(),
        }
    }
}

/// The rewrite cache's counters, as `protect::cache::CacheStats` keeps them.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheCounts {
    pub exact_hits: u64,
    pub normalized_hits: u64,
    pub misses: u64,
}

impl Metrics {
    /// One statement completed with command tag `tag`.
    pub fn statement_completed(&self, tag: &[u8]) {
        let kind = StatementKind::of_tag(tag);
        if let Some(c) = self.statements.get(kind as usize) {
            c.inc();
        }
    }

    pub fn statements(&self, kind: StatementKind) -> u64 {
        self.statements.get(kind as usize).map_or(0, Counter::get)
    }

    /// The rewriter refused a statement.
    pub fn refused(&self, e: &RewriteError) {
        if let Some(c) = self.refusals.get(Refusal::of(e) as usize) {
            c.inc();
        }
    }

    /// A CommandComplete the proxy renamed from `UPDATE n` to `DELETE n`.
    pub fn soft_deleted(&self, tag: &[u8]) {
        self.soft_deletes.inc();
        let rows = tag
            .rsplit(|&b| b == b' ')
            .next()
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        self.soft_deleted_rows.add(rows);
    }

    /// Everything in the text format; `cache` when a protected database
    /// is configured.
    pub fn render(&self, out: &mut String, cache: Option<CacheCounts>) {
        counter(
            out,
            "tombstone_sessions_accepted_total",
            "TCP connections accepted on listen.address (cancel requests included).",
            self.sessions_accepted.get(),
        );
        gauge(
            out,
            "tombstone_sessions_open",
            "Client connections being served now (from accept to close).",
            self.sessions_open.get(),
        );
        header(
            out,
            "tombstone_client_messages_total",
            "Statement messages received from clients, by type: query (simple protocol) or parse (extended protocol), on every database.",
            "counter",
        );
        sample(
            out,
            "tombstone_client_messages_total{type=\"query\"}",
            self.query_messages.get(),
        );
        sample(
            out,
            "tombstone_client_messages_total{type=\"parse\"}",
            self.parse_messages.get(),
        );
        header(
            out,
            "tombstone_statements_total",
            "Statements the server completed, by the kind of the command tag the client received (a soft delete counts as delete); failed statements are not counted.",
            "counter",
        );
        for kind in StatementKind::ALL {
            sample(
                out,
                &format!("tombstone_statements_total{{kind=\"{}\"}}", kind.label()),
                self.statements(kind),
            );
        }
        counter(
            out,
            "tombstone_rewrites_total",
            "Query and Parse messages on the protected database whose text the rewriter changed.",
            self.rewrites.get(),
        );
        header(
            out,
            "tombstone_refusals_total",
            "Statements the rewriter refused (sent as tombstone.refuse()), by reason.",
            "counter",
        );
        for reason in Refusal::ALL {
            let n = self.refusals.get(reason as usize).map_or(0, Counter::get);
            sample(
                out,
                &format!("tombstone_refusals_total{{reason=\"{}\"}}", reason.label()),
                n,
            );
        }
        if let Some(c) = cache {
            header(
                out,
                "tombstone_rewrite_cache_hits_total",
                "Rewrite cache hits: exact (the same text) or normalized (the same shape, other literals).",
                "counter",
            );
            sample(
                out,
                "tombstone_rewrite_cache_hits_total{match=\"exact\"}",
                c.exact_hits,
            );
            sample(
                out,
                "tombstone_rewrite_cache_hits_total{match=\"normalized\"}",
                c.normalized_hits,
            );
            counter(
                out,
                "tombstone_rewrite_cache_misses_total",
                "Rewrite cache misses (statements rewritten by the parser), statements too long to cache included.",
                c.misses,
            );
        }
        histogram(
            out,
            "tombstone_rewrite_seconds",
            "Time to rewrite one statement on a rewrite cache miss (parse, rewrite, check, fill the cache), on a parser thread; cache hits are not timed.",
            &self.rewrite_seconds,
        );
        histogram(
            out,
            "tombstone_upstream_seconds",
            "From forwarding a client's Query, Sync or FunctionCall to the next message the server sends (its processing plus the network); requests forwarded while one is being timed are not timed themselves (a pipeline is timed from its first).",
            &self.upstream_seconds,
        );
        histogram(
            out,
            "tombstone_upstream_connect_seconds",
            "Time to open a session's upstream connection (TCP and TLS, before the startup message).",
            &self.upstream_connect_seconds,
        );
        counter(
            out,
            "tombstone_schema_refreshes_total",
            "Schema snapshots the watcher installed because the catalog changed.",
            self.schema_refreshes.get(),
        );
        counter(
            out,
            "tombstone_schema_refresh_errors_total",
            "Schema reads by the watcher that failed (the last snapshot stays in force).",
            self.schema_refresh_errors.get(),
        );
        counter(
            out,
            "tombstone_soft_deletes_total",
            "Statements completed as soft deletes through this proxy (UPDATE n renamed DELETE n).",
            self.soft_deletes.get(),
        );
        counter(
            out,
            "tombstone_soft_deleted_rows_total",
            "Rows those soft deletes' DELETE n tags counted (cascaded rows not included).",
            self.soft_deleted_rows.get(),
        );
        counter(
            out,
            "tombstone_purges_total",
            "Scheduled purges (retention.purge_interval) this process ran to the end.",
            self.purges.get(),
        );
        counter(
            out,
            "tombstone_purged_rows_total",
            "Rows this process's scheduled purges removed.",
            self.purged_rows.get(),
        );
    }
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line (`name{labels} value`).
pub fn sample(out: &mut String, series: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{series} {value}");
}

pub fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    sample(out, name, value);
}

pub fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    header(out, name, help, "gauge");
    sample(out, name, value);
}

/// Buckets cumulative, `+Inf` last, `_count` equal to it (both are the
/// sum of the same loads).
fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    header(out, name, help, "histogram");
    let mut cumulative = 0u64;
    for (i, c) in h.counts.iter().enumerate() {
        cumulative += c.load(Ordering::Relaxed);
        let le = match h.bounds.get(i) {
            Some(&b) => format!("{}", b as f64 / SECOND as f64),
            None => "+Inf".to_string(),
        };
        sample(out, &format!("{name}_bucket{{le=\"{le}\"}}"), cumulative);
    }
    let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / SECOND as f64;
    sample(out, &format!("{name}_sum"), sum);
    sample(out, &format!("{name}_count"), cumulative);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_name_their_kind() {
        assert_eq!(StatementKind::of_tag(b"SELECT 3"), StatementKind::Select);
        assert_eq!(StatementKind::of_tag(b"INSERT 0 1"), StatementKind::Insert);
        assert_eq!(StatementKind::of_tag(b"DELETE 2"), StatementKind::Delete);
        assert_eq!(StatementKind::of_tag(b"CREATE TABLE"), StatementKind::Ddl);
        assert_eq!(StatementKind::of_tag(b"BEGIN"), StatementKind::Other);
        assert_eq!(StatementKind::of_tag(b"SELECTED"), StatementKind::Other);
        assert_eq!(StatementKind::of_tag(b""), StatementKind::Other);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_inf() {
        let m = Metrics::default();
        m.rewrite_seconds.observe(Duration::from_micros(10));
        m.rewrite_seconds.observe(Duration::from_micros(30));
        m.rewrite_seconds.observe(Duration::from_secs(5));
        let mut out = String::new();
        m.render(&mut out, None);
        let line = |series: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
                .map(str::to_string)
        };
        assert_eq!(
            line("tombstone_rewrite_seconds_bucket{le=\"0.000025\"}").as_deref(),
            Some("1")
        );
        assert_eq!(
            line("tombstone_rewrite_seconds_bucket{le=\"0.00005\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            line("tombstone_rewrite_seconds_bucket{le=\"1\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            line("tombstone_rewrite_seconds_bucket{le=\"+Inf\"}").as_deref(),
            Some("3")
        );
        assert_eq!(
            line("tombstone_rewrite_seconds_count").as_deref(),
            Some("3")
        );
        assert_eq!(
            line("tombstone_rewrite_seconds_sum").as_deref(),
            Some("5.00004")
        );
    }

    #[test]
    fn soft_delete_rows_come_from_the_tag() {
        let m = Metrics::default();
        m.soft_deleted(b"DELETE 3");
        m.soft_deleted(b"DELETE x");
        assert_eq!(m.soft_deletes.get(), 2);
        assert_eq!(m.soft_deleted_rows.get(), 3);
    }

    #[test]
    fn gauge_guard_gives_back() {
        let m = Metrics::default();
        {
            let _a = m.sessions_open.track();
            let _b = m.sessions_open.track();
            assert_eq!(m.sessions_open.get(), 2);
        }
        assert_eq!(m.sessions_open.get(), 0);
    }
}
