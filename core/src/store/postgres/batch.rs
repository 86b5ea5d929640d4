//! Group commit for PostgreSQL, the same contract as the SQLite writer thread: reservations
//! and settlements wait in a queue; a lane takes every job waiting at that moment (up to
//! [`MAX_BATCH`]), runs them in one transaction and answers each only after COMMIT. So a
//! batch costs one WAL flush, and no answer is given before its work is durable.
//!
//! A batch first locks the `keys` rows of all its jobs in key order, then the rows of their
//! budgets in name order (two statements sent together), then runs the jobs of different
//! keys concurrently on the connection (pipelined) and the jobs of one key in the order they
//! arrived; when any key is in a budget, every job runs in turn (keys of one budget share
//! its totals). A job that fails on its own data is answered with
//! its error and the batch runs again without it; any other failure (timeout, lost
//! connection, deadlock) fails the whole batch, and every caller gets a 503: fail closed.
//! Jobs of one key always go to the same lane, so lanes rarely wait on each other's locks.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use deadpool_postgres::Pool;
use futures_util::future::join_all;
use futures_util::FutureExt;
use tokio::sync::mpsc;

use super::super::{Finish, ReserveOutcome, ReserveRequest};
use super::ops::{self, Fail};
use crate::error::StoreError;

/// At most this many jobs share one transaction (a batch holds its keys' locks until COMMIT).
const MAX_BATCH: usize = 64;

pub(super) enum Op {
    Reserve(Box<ReserveRequest>),
    /// The finish, then the key's `(total, today)` when asked.
    Finish(Box<Finish>, Option<(String, String)>),
}

pub(super) enum Out {
    Reserve(ReserveOutcome),
    Finish(Option<(i64, i64)>),
}

pub(super) type Reply = Box<dyn FnOnce(Result<Out, StoreError>) + Send + Sync>;

pub(super) struct Job {
    pub op: Op,
    pub reply: Reply,
}

impl Op {
    /// The key whose row this job locks, when known without asking the database.
    fn known_key(&self) -> Option<&str> {
        match self {
            Op::Reserve(r) => Some(&r.key_id),
            Op::Finish(f, _) => match (&f.settle, &f.reconcile) {
                (Some(s), _) if !s.key_id.is_empty() => Some(&s.key_id),
                (Some(_), _) => None,
                (None, Some(r)) => Some(&r.key_id),
                (None, None) => None,
            },
        }
    }

    /// The key used to pick a lane (a settlement goes where its key's reservations went).
    fn lane_key(&self) -> Option<&str> {
        self.known_key().or(match self {
            Op::Finish(f, _) => f.audit.as_ref().and_then(|a| a.key_id.as_deref()),
            Op::Reserve(_) => None,
        })
    }

    fn settles(&self) -> Option<i64> {
        match self {
            Op::Finish(f, _) => f.settle.as_ref().map(|s| s.spend_id),
            Op::Reserve(_) => None,
        }
    }
}

pub(super) struct Lanes {
    lanes: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl Lanes {
    pub fn start(
        rt: &tokio::runtime::Handle,
        pool: Pool,
        instance: Arc<str>,
        count: usize,
    ) -> Self {
        let lanes = (0..count.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                rt.spawn(lane(pool.clone(), instance.clone(), rx));
                tx
            })
            .collect();
        Lanes {
            lanes,
            next: AtomicUsize::new(0),
        }
    }

    pub fn submit(&self, job: Job) {
        let i = match job.op.lane_key() {
            Some(k) => {
                let mut h = DefaultHasher::new();
                k.hash(&mut h);
                h.finish() as usize
            }
            None => self.next.fetch_add(1, Ordering::Relaxed),
        } % self.lanes.len();
        if let Err(mpsc::error::SendError(job)) = self.lanes[i].send(job) {
            (job.reply)(Err(StoreError::Task(
                "the PostgreSQL store has stopped".into(),
            )));
        }
    }
}

async fn lane(pool: Pool, instance: Arc<str>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut slots: Vec<Option<Job>> = jobs.into_iter().map(Some).collect();
        let run = AssertUnwindSafe(run_batch(&pool, &instance, &mut slots)).catch_unwind();
        if run.await.is_err() {
            tracing::error!("a PostgreSQL batch panicked; its calls are refused");
        }
        // Whatever was not answered (a panic) fails closed.
        for job in slots.into_iter().flatten() {
            (job.reply)(Err(StoreError::Task("a store operation panicked".into())));
        }
    }
}

fn answer(slots: &mut [Option<Job>], i: usize, out: Result<Out, StoreError>) {
    if let Some(job) = slots[i].take() {
        (job.reply)(out);
    }
}

fn fail_all(slots: &mut [Option<Job>], live: &[usize], e: &StoreError) {
    for &i in live {
        answer(slots, i, Err(clone_error(e)));
    }
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Postgres(m) => StoreError::Postgres(m.clone()),
        other => StoreError::Batch(other.to_string()),
    }
}

async fn run_batch(pool: &Pool, instance: &str, slots: &mut [Option<Job>]) {
    let all: Vec<usize> = (0..slots.len()).collect();
    let mut client = match pool.get().await {
        Ok(c) => c,
        Err(e) => {
            let e = StoreError::Unavailable(format!("no database connection: {e}"));
            return fail_all(slots, &all, &e);
        }
    };
    let views: Vec<Option<OpView>> = slots
        .iter()
        .map(|s| s.as_ref().map(|j| OpView::of(&j.op)))
        .collect();
    // The keys of settlements come from their reservations.
    let mut keys: Vec<Option<String>> = views
        .iter()
        .map(|v| v.as_ref().and_then(|v| v.known_key.clone()))
        .collect();
    let unknown: Vec<i64> = views
        .iter()
        .zip(&keys)
        .filter_map(|(v, k)| match (v, k) {
            (Some(v), None) => v.settles,
            _ => None,
        })
        .collect();
    if !unknown.is_empty() {
        match ops::keys_of_spends(&client, &unknown).await {
            Ok(found) => {
                for (i, v) in views.iter().enumerate() {
                    if let (Some(v), None) = (v, &keys[i]) {
                        if let Some(id) = v.settles {
                            keys[i] = found.iter().find(|(s, _)| *s == id).map(|(_, k)| k.clone());
                        }
                    }
                }
            }
            Err(f) => return fail_all(slots, &all, &f.error),
        }
    }
    let mut live = all;
    live.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    loop {
        match attempt(&mut client, instance, slots, &keys, &live).await {
            Ok(outs) => {
                for (i, out) in outs {
                    answer(slots, i, Ok(out));
                }
                return;
            }
            Err(Failed::Job(i, f)) if f.is_own() => {
                answer(slots, i, Err(f.error));
                live.retain(|&j| j != i);
                if live.is_empty() {
                    return;
                }
            }
            Err(Failed::Job(_, f)) | Err(Failed::Batch(f)) => {
                tracing::warn!(error = %f.error, jobs = live.len(), "PostgreSQL batch failed");
                return fail_all(slots, &live, &f.error);
            }
        }
    }
}

/// What a batch needs to know about a job before running it.
struct OpView {
    known_key: Option<String>,
    settles: Option<i64>,
}

impl OpView {
    fn of(op: &Op) -> Self {
        OpView {
            known_key: op.known_key().map(str::to_string),
            settles: op.settles(),
        }
    }
}

enum Failed {
    /// Job `i` failed (the transaction was rolled back).
    Job(usize, Fail),
    /// The transaction itself failed.
    Batch(Fail),
}

/// One try at the batch's jobs `live` (sorted by key) in one transaction.
async fn attempt(
    client: &mut deadpool_postgres::Object,
    instance: &str,
    slots: &[Option<Job>],
    keys: &[Option<String>],
    live: &[usize],
) -> Result<Vec<(usize, Out)>, Failed> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| Failed::Batch(e.into()))?;
    let mut lock: Vec<&str> = live.iter().filter_map(|&i| keys[i].as_deref()).collect();
    lock.dedup();
    let budgets = if lock.is_empty() {
        false
    } else {
        ops::lock_keys(&tx, &lock).await.map_err(Failed::Batch)?
    };
    // Runs of one key, in arrival order; jobs without a key each run alone.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &i in live {
        match groups.last_mut() {
            Some(g) if keys[i].is_some() && keys[g[0]] == keys[i] => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    // Two keys of one budget read and write its totals: their groups must run one after the
    // other, not interleaved on the wire.
    if budgets {
        groups = vec![groups.concat()];
    }
    let tx_ref = &tx;
    let results = join_all(groups.iter().map(|g| async move {
        let mut outs = Vec::with_capacity(g.len());
        for &i in g {
            let Some(job) = &slots[i] else { continue };
            let out = match &job.op {
                Op::Reserve(r) => ops::reserve(tx_ref, r, instance).await.map(Out::Reserve),
                Op::Finish(f, totals_for) => {
                    let totals_for = totals_for.as_ref().map(|(k, d)| (k.as_str(), d.as_str()));
                    ops::finish(tx_ref, f, totals_for).await.map(Out::Finish)
                }
            };
            match out {
                Ok(o) => outs.push((i, o)),
                Err(f) => return Err((i, f)),
            }
        }
        Ok(outs)
    }))
    .await;
    let mut outs = Vec::with_capacity(live.len());
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(o) => outs.extend(o),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        let _ = tx.rollback().await;
        // The culprit is the failure that did not come from an already aborted transaction.
        let pick = failures
            .iter()
            .position(|(_, f)| !f.is_aborted_by_another())
            .unwrap_or(0);
        let (i, f) = failures.swap_remove(pick);
        return Err(Failed::Job(i, f));
    }
    tx.commit().await.map_err(|e| Failed::Batch(e.into()))?;
    Ok(outs)
}
