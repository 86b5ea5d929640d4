//! What an operator configures: how to reach the database and how the store behaves.

use std::path::PathBuf;
use std::time::Duration;

/// How calls that move no money learn of a revocation made at another instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Revocation {
    /// Read the key on every request: exact (the next request anywhere gets 401).
    #[default]
    Read,
    /// Cache keys and drop them on `NOTIFY` from the revoking instance: no read per request,
    /// but a request in the notice's flight time (measured in docs/BENCHMARKS.md) still
    /// passes. Money calls stay exact either way: the reservation re-reads the key.
    Notify,
}

impl std::str::FromStr for Revocation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Revocation::Read),
            "notify" => Ok(Revocation::Notify),
            other => Err(format!(
                "unknown revocation mode {other:?}: use \"read\" (exact, a key read per request) or \"notify\" (cached, LISTEN/NOTIFY)"
            )),
        }
    }
}

/// How to reach and use the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/db?sslmode=require` (libpq URL syntax).
    pub url: String,
    /// Connections in the pool (reads and admin calls; each batch lane borrows one).
    pub pool_size: usize,
    /// Batch lanes: transactions in flight at once.
    pub lanes: usize,
    /// Longest wait for a pooled connection or a new one, before 503.
    pub pool_wait: Duration,
    /// Longest wait for a row lock (`lock_timeout`), before 503.
    pub lock_timeout: Duration,
    /// Longest statement (`statement_timeout`), before 503.
    pub statement_timeout: Duration,
    pub revocation: Revocation,
    /// An instance whose heartbeat is older than this is dead: its reservations are swept.
    pub instance_timeout: Duration,
    pub heartbeat_every: Duration,
    /// A reservation still open this long after it was taken lost its settlement (the call
    /// itself is bounded by the request timeout): it is swept to `unknown` too.
    pub max_in_flight: Duration,
    /// Start even if the database acknowledges commits before they are durable.
    pub allow_async_commit: bool,
    /// Extra CA certificates (PEM) for TLS to the database.
    pub ca_file: Option<PathBuf>,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            pool_size: 16,
            lanes: 4,
            pool_wait: Duration::from_secs(1),
            lock_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(2),
            revocation: Revocation::Read,
            instance_timeout: Duration::from_secs(10),
            heartbeat_every: Duration::from_secs(1),
            max_in_flight: Duration::from_secs(600),
            allow_async_commit: false,
            ca_file: None,
        }
    }
}
