//! `AsyncStore`: the one face the gateway calls the store through. It decides, in this file
//! only, how each operation runs:
//! - **inline**, when the store can answer without waiting (a free read connection);
//! - **queued**, when the store has a writer that commits many calls at once (its answer
//!   arrives after the commit, holding no thread while it waits);
//! - on tokio's **blocking** pool otherwise, so a blocking driver never stalls the runtime.
//!
//! A store error is counted, logged and turned into the crate's `Error::Store` here, so every
//! caller fails closed the same way. A PostgreSQL store implements the same `Store` trait and
//! gets the same face.

use std::sync::Arc;
use std::time::Instant;

use super::{Finish, Queued, ReserveOutcome, ReserveRequest, Store};
use crate::audit::AuditRow;
use crate::error::{Error, Result, StoreError};
use crate::keys::{KeyHash, KeyRecord};
use crate::ledger::Remembered;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AsyncStore {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl AsyncStore {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        AsyncStore { store, metrics }
    }

    /// Run any store operation on the blocking pool.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        self.blocking_op("other", f).await
    }

    /// [`Self::blocking`], timed and counted under `operation` in the metrics.
    pub async fn blocking_op<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        let started = Instant::now();
        let store = self.store.clone();
        let out = tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))
            .and_then(|r| r);
        self.done(operation, started, out)
    }

    /// The key with this hash: inline when a read connection is free (it saves a thread
    /// hand-off on every request whose key is not cached), else on the blocking pool.
    pub async fn key_by_hash(&self, hash: KeyHash) -> Result<Option<KeyRecord>> {
        let started = Instant::now();
        if let Some(r) = self.store.try_key_by_hash(&hash) {
            return self.done("key_by_hash", started, r);
        }
        match self.store.key_by_hash_queued(hash) {
            Ok(rx) => self.queued("key_by_hash", rx).await,
            Err(hash) => {
                self.blocking_op("key_by_hash", move |s| s.key_by_hash(&hash))
                    .await
            }
        }
    }

    /// How long a key row read from the store may be trusted for calls that move no money.
    pub fn key_trust(&self) -> std::time::Duration {
        self.store.key_trust()
    }

    /// Drop cached keys whenever the store says a key may have changed elsewhere.
    pub fn on_key_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        self.store.on_key_change(f)
    }

    /// The over-cap refusal a reservation would give, read without the write lock; `None`
    /// when there is none, or when the store cannot answer inline (then `reserve` decides).
    pub fn refuse_over_cap(&self, req: &ReserveRequest) -> Result<Option<ReserveOutcome>> {
        let started = Instant::now();
        match self.store.try_refuse_over_cap(req) {
            Some(r) => self.done("refuse_over_cap", started, r),
            None => Ok(None),
        }
    }

    /// One atomic check of the caps plus the insert: through the writer's queue, else on
    /// the blocking pool.
    pub async fn reserve(&self, req: ReserveRequest) -> Result<ReserveOutcome> {
        match self.store.reserve_queued(req) {
            Ok(rx) => self.queued("reserve", rx).await,
            Err(req) => self.blocking_op("reserve", move |s| s.reserve(&req)).await,
        }
    }

    /// The audit row of a call that moved no money, recorded without waiting for its commit
    /// once it is safe from a killed process (the store's journal). `Err` hands the row back:
    /// record it with `finish`.
    #[allow(clippy::result_large_err)] // Err hands the caller's row back
    pub fn audit_soon(&self, row: AuditRow) -> std::result::Result<(), AuditRow> {
        self.store.audit_soon(row)
    }

    /// Settle + reconcile + remember + audit in one transaction (and then read the key's
    /// `(total, today)` when asked), answered after the commit.
    pub async fn finish(
        &self,
        finish: Finish,
        totals_for: Option<(String, String)>,
    ) -> Result<Option<(i64, i64)>> {
        match self.store.finish_queued(finish, totals_for) {
            Ok(rx) => self.queued("finish", rx).await,
            Err((finish, totals_for)) => {
                self.blocking_op("finish", move |s| {
                    s.finish(&finish)?;
                    totals_for.map(|(k, d)| s.totals(&k, &d)).transpose()
                })
                .await
            }
        }
    }

    /// `(total, today)` counted for a key: inline when possible, else on the blocking pool.
    pub async fn totals(&self, key_id: &str, day: &str) -> Result<(i64, i64)> {
        let started = Instant::now();
        match self.store.try_totals(key_id, day) {
            Some(r) => self.done("totals", started, r),
            None => {
                let (k, d) = (key_id.to_string(), day.to_string());
                self.blocking_op("totals", move |s| s.totals(&k, &d)).await
            }
        }
    }

    /// The amount remembered for a vendor object seen earlier with this key.
    pub async fn recall(&self, key_id: &str, object_id: &str) -> Result<Option<Remembered>> {
        let (k, o) = (key_id.to_string(), object_id.to_string());
        self.blocking_op("recall", move |s| s.recall(&k, &o)).await
    }

    async fn queued<T>(&self, operation: &'static str, rx: Queued<T>) -> Result<T> {
        let started = Instant::now();
        let out = rx
            .await
            .unwrap_or_else(|_| Err(StoreError::Task("the store dropped a queued write".into())));
        self.done(operation, started, out)
    }

    fn done<T>(
        &self,
        operation: &'static str,
        started: Instant,
        out: Result<T, StoreError>,
    ) -> Result<T> {
        self.metrics.store_op(operation, started.elapsed());
        out.map_err(|e| self.failed(operation, e))
    }

    fn failed(&self, operation: &'static str, e: StoreError) -> Error {
        self.metrics.store_error(operation);
        tracing::error!(error = %e, operation, "store operation failed");
        Error::Store(e)
    }
}
