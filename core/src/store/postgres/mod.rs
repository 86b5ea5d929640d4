//! The PostgreSQL store: several gateway instances, on several machines, share one database
//! with the guarantees of the SQLite store. A key's `keys` row is the one place its caps are
//! decided: every reservation (and every settlement) locks it and re-reads revocation and
//! expiry under the lock, so caps stay exact across instances and a revocation anywhere stops
//! money everywhere on the next call.
//!
//! - `options.rs`: what an operator configures;
//! - `schema.rs`: the versioned migrations;
//! - `connect.rs`: URL, TLS, session timeouts, pool, the durability check;
//! - `batch.rs`: group commit for reservations and settlements (answered after COMMIT);
//! - `ops.rs`: the SQL of every operation;
//! - `instance.rs`: heartbeat, the sweeper of dead instances' reservations, the revocation
//!   listener.
//!
//! The store runs its own small tokio runtime, so it works the same under the server's
//! per-core runtimes, a test's threads or a binding; the gateway reaches it through the
//! queued forms of the `Store` trait without holding a thread.

mod batch;
mod connect;
mod instance;
mod ops;
mod options;
mod outbox;
mod schema;

pub use options::{PgOptions, Revocation};

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use self::batch::{Job, Lanes, Op, Out};
use self::instance::Watchers;
use super::{
    AuditQuery, Budget, BudgetStatus, Delivery, DeliveryOutcome, Finish, KeyFilter, Queued,
    ReserveOutcome, ReserveRequest, Store, StoredEvent, Usage, Webhook,
};
use crate::audit::AuditRow;
use crate::error::StoreError;
use crate::events::NewEvent;
use crate::keys::{KeyHash, KeyRecord};
use crate::ledger::Remembered;

/// How long cached keys are trusted while the revocation listener is connected.
const NOTIFY_TRUST: Duration = Duration::from_secs(1);

pub struct PgStore {
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    lanes: Lanes,
    instance: Arc<str>,
    revocation: Revocation,
    listening: Arc<AtomicBool>,
    watchers: Watchers,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime may not block inside another runtime (the server's).
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connect, check the database keeps its commits, migrate, register this instance and
    /// start its batch lanes, heartbeat, sweeper and (in notify mode) revocation listener.
    pub fn open(opts: PgOptions) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vendorgate-pg")
            .enable_all()
            .build()
            .map_err(StoreError::Io)?;
        let handle = rt.handle().clone();
        let pool = connect::pool(&opts, opts.pool_size)?;
        // The lanes have connections of their own: a burst of reads never makes a batch of
        // reservations wait for a connection.
        let lane_pool = connect::pool(&opts, opts.lanes)?;
        let instance: Arc<str> = hex::encode(rand::random::<[u8; 8]>()).into();
        let setup = {
            let (pool, opts, instance) = (pool.clone(), opts.clone(), instance.clone());
            async move {
                let mut client = pool.get().await.map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot connect to {}: {e}",
                        connect::redacted(&opts.url)
                    ))
                })?;
                connect::check_durability(&client, &opts).await?;
                schema::migrate(&mut client).await?;
                instance::register(&client, &instance).await?;
                Ok::<_, StoreError>(())
            }
        };
        // `block_on` may not run on a thread that already drives a runtime: use a fresh one.
        let h = handle.clone();
        std::thread::scope(|s| s.spawn(move || h.block_on(setup)).join())
            .map_err(|_| StoreError::Task("database setup panicked".into()))??;
        let lanes = Lanes::start(&handle, lane_pool, instance.clone(), opts.lanes);
        handle.spawn(instance::heartbeat_and_sweep(
            pool.clone(),
            instance.clone(),
            opts.clone(),
        ));
        let listening = Arc::new(AtomicBool::new(false));
        let watchers: Watchers = Arc::new(Mutex::new(Vec::new()));
        if opts.revocation == Revocation::Notify {
            handle.spawn(instance::listen(
                opts.clone(),
                listening.clone(),
                watchers.clone(),
            ));
        }
        tracing::info!(instance = %instance, db = %connect::redacted(&opts.url), "PostgreSQL store open");
        Ok(PgStore {
            rt: Some(rt),
            handle,
            pool,
            lanes,
            instance,
            revocation: opts.revocation,
            listening,
            watchers,
        })
    }

    /// This instance's id, as recorded on its reservations.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// Run `f` on the store's runtime and wait for it on this thread.
    fn wait<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .map_err(|_| StoreError::Task("the PostgreSQL store has stopped".into()))?
    }

    /// Run a read on a pooled connection, answered on a channel (no thread held).
    fn read<T: Send + 'static, F, Fut>(&self, f: F) -> Queued<T>
    where
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send,
    {
        let (tx, rx) = oneshot::channel();
        let pool = self.pool.clone();
        self.handle.spawn(async move {
            let out = match pool.get().await {
                Ok(c) => f(c).await,
                Err(e) => Err(unavailable(e)),
            };
            let _ = tx.send(out);
        });
        rx
    }

    fn read_sync<T: Send + 'static, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send,
    {
        let rx = self.read(f);
        self.wait(async move {
            rx.await
                .map_err(|_| StoreError::Task("the PostgreSQL store has stopped".into()))?
        })
    }

    fn job<T: Send + 'static>(&self, op: Op, pick: fn(Out) -> Option<T>) -> Queued<T> {
        let (tx, rx) = oneshot::channel();
        self.lanes.submit(Job {
            op,
            reply: Box::new(move |out| {
                let _ = tx.send(out.and_then(|o| {
                    pick(o)
                        .ok_or_else(|| StoreError::Task("a batch answered the wrong kind".into()))
                }));
            }),
        });
        rx
    }

    fn job_sync<T: Send + 'static>(
        &self,
        op: Op,
        pick: fn(Out) -> Option<T>,
    ) -> Result<T, StoreError> {
        let rx = self.job(op, pick);
        self.wait(async move {
            rx.await
                .map_err(|_| StoreError::Task("the PostgreSQL store has stopped".into()))?
        })
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("no database connection: {e}"))
}

fn reserve_out(o: Out) -> Option<ReserveOutcome> {
    match o {
        Out::Reserve(r) => Some(r),
        Out::Finish(_) => None,
    }
}

fn finish_out(o: Out) -> Option<Option<(i64, i64)>> {
    match o {
        Out::Finish(t) => Some(t),
        Out::Reserve(_) => None,
    }
}

impl Store for PgStore {
    fn insert_key(&self, record: &KeyRecord, hash: &KeyHash) -> Result<(), StoreError> {
        let (record, hash) = (record.clone(), *hash);
        self.read_sync(move |c| async move { Ok(ops::insert_key(&c, &record, &hash).await?) })
    }

    fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        let hash = *hash;
        self.read_sync(move |c| async move { Ok(ops::key_by_hash(&c, &hash).await?) })
    }

    fn key_by_hash_queued(&self, hash: KeyHash) -> Result<Queued<Option<KeyRecord>>, KeyHash> {
        Ok(self.read(move |c| async move { Ok(ops::key_by_hash(&c, &hash).await?) }))
    }

    fn key_by_id(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let key_id = key_id.to_string();
        self.read_sync(move |c| async move { Ok(ops::key_by_id(&c, &key_id).await?) })
    }

    fn revoke(
        &self,
        key_id: &str,
        now_ms: i64,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError> {
        let (key_id, event) = (key_id.to_string(), event.cloned());
        self.read_sync(move |mut c| async move {
            let tx = c.transaction().await.map_err(ops::Fail::from)?;
            let found = ops::revoke(&tx, &key_id, now_ms, event.as_ref()).await?;
            tx.commit().await.map_err(ops::Fail::from)?;
            Ok(found)
        })
    }

    fn list_keys(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let filter = filter.clone();
        self.read_sync(move |c| async move { Ok(ops::list_keys(&c, &filter).await?) })
    }

    fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
        self.job_sync(Op::Reserve(Box::new(req.clone())), reserve_out)
    }

    #[allow(clippy::result_large_err)]
    fn reserve_queued(
        &self,
        req: ReserveRequest,
    ) -> Result<Queued<ReserveOutcome>, ReserveRequest> {
        Ok(self.job(Op::Reserve(Box::new(req)), reserve_out))
    }

    fn finish(&self, finish: &Finish) -> Result<(), StoreError> {
        self.job_sync(Op::Finish(Box::new(finish.clone()), None), finish_out)
            .map(|_| ())
    }

    #[allow(clippy::type_complexity, clippy::result_large_err)]
    fn finish_queued(
        &self,
        finish: Finish,
        totals_for: Option<(String, String)>,
    ) -> Result<Queued<Option<(i64, i64)>>, (Finish, Option<(String, String)>)> {
        Ok(self.job(Op::Finish(Box::new(finish), totals_for), finish_out))
    }

    fn recall(&self, key_id: &str, object_id: &str) -> Result<Option<Remembered>, StoreError> {
        let (k, o) = (key_id.to_string(), object_id.to_string());
        self.read_sync(move |c| async move { Ok(ops::recall(&c, &k, &o).await?) })
    }

    fn usage(&self, key_id: &str, day: &str) -> Result<Usage, StoreError> {
        let (k, d) = (key_id.to_string(), day.to_string());
        self.read_sync(move |c| async move { Ok(ops::usage(&c, &k, &d).await?) })
    }

    fn totals(&self, key_id: &str, day: &str) -> Result<(i64, i64), StoreError> {
        let (k, d) = (key_id.to_string(), day.to_string());
        self.read_sync(move |c| async move { Ok(ops::totals(&c, &k, &d).await?) })
    }

    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let q = query.clone();
        self.read_sync(move |c| async move { Ok(ops::audit(&c, &q).await?) })
    }

    fn insert_budget(&self, budget: &Budget) -> Result<bool, StoreError> {
        let b = budget.clone();
        self.read_sync(move |c| async move { Ok(ops::insert_budget(&c, &b).await?) })
    }

    fn budgets(&self) -> Result<Vec<Budget>, StoreError> {
        self.read_sync(|c| async move { Ok(ops::budgets(&c).await?) })
    }

    fn budget_status(&self, name: &str, day: &str) -> Result<Option<BudgetStatus>, StoreError> {
        let (n, d) = (name.to_string(), day.to_string());
        self.read_sync(move |c| async move { Ok(ops::budget_status(&c, &n, &d).await?) })
    }

    fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let w = webhook.clone();
        self.read_sync(move |c| async move {
            outbox::insert_webhook(&c, &w)
                .await
                .map_err(ops::Fail::from)?;
            Ok(())
        })
    }

    fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.read_sync(|c| async move { Ok(outbox::webhooks(&c).await.map_err(ops::Fail::from)?) })
    }

    fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.read_sync(move |c| async move {
            Ok(outbox::delete_webhook(&c, &id)
                .await
                .map_err(ops::Fail::from)?)
        })
    }

    fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.read_sync(move |c| async move {
            Ok(outbox::claim(&c, now_ms, lease_ms, limit)
                .await
                .map_err(ops::Fail::from)?)
        })
    }

    fn finish_delivery(&self, outcome: &DeliveryOutcome) -> Result<(), StoreError> {
        let o = outcome.clone();
        self.read_sync(move |mut c| async move {
            let tx = c.transaction().await.map_err(ops::Fail::from)?;
            outbox::finish_delivery(&tx, &o)
                .await
                .map_err(ops::Fail::from)?;
            ops::insert_audit(&tx, &o.audit).await?;
            tx.commit().await.map_err(ops::Fail::from)?;
            Ok(())
        })
    }

    fn events(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_sync(move |c| async move {
            Ok(outbox::events(&c, limit).await.map_err(ops::Fail::from)?)
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.read_sync(|c| async move {
            c.simple_query("SELECT 1").await.map_err(ops::Fail::from)?;
            Ok(())
        })
    }

    fn key_trust(&self) -> Duration {
        match self.revocation {
            Revocation::Notify if self.listening.load(Ordering::Acquire) => NOTIFY_TRUST,
            _ => Duration::ZERO,
        }
    }

    fn on_key_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        self.watchers.lock().push(f);
    }
}
