//! The SQLite writer thread: group commit. Every write is a job; the thread takes all jobs
//! waiting at that moment, runs them in one `BEGIN IMMEDIATE` transaction (each inside its
//! own savepoint, so one failing job leaves the others intact), commits once, and only then
//! answers each job. No answer is given before its transaction is durable, so batching never
//! acknowledges a reservation that a `kill -9` could lose.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::StoreError;

/// At most this many jobs share one transaction.
const MAX_BATCH: usize = 256;

/// How long detached jobs wait for company before their commit.
const DETACHED_WINDOW: Duration = Duration::from_millis(2);

trait Job: Send {
    /// Run inside the open transaction; may run again (after a rollback) if a neighbour in
    /// its batch fails, so the work must not consume its inputs.
    fn run(&mut self, conn: &Connection);
    /// Whether the last run failed (its writes must not be committed).
    fn failed(&self) -> bool;

    /// Answer, once the COMMIT has succeeded or failed.
    fn deliver(self: Box<Self>, commit: &Result<(), String>);
}

/// Where a job's answer goes.
enum Reply<T> {
    /// A caller waiting on the channel.
    Channel(oneshot::Sender<Result<T, StoreError>>),
    /// Nobody waits: told only whether the work committed.
    Done(Box<dyn FnOnce(Result<(), StoreError>) + Send>),
}

struct TypedJob<T, F> {
    work: F,
    out: Option<Result<T, StoreError>>,
    reply: Option<Reply<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) {
        let work = &mut self.work;
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StoreError::Task("a store operation panicked".into())));
        self.out = Some(out);
    }

    fn failed(&self) -> bool {
        !matches!(self.out, Some(Ok(_)))
    }

    fn deliver(mut self: Box<Self>, commit: &Result<(), String>) {
        let out = match commit {
            Ok(()) => self
                .out
                .take()
                .unwrap_or_else(|| Err(StoreError::Task("the operation did not run".into()))),
            // A job that failed by itself reports its own error, not the rollback's.
            Err(_) if self.failed() && self.out.is_some() => self
                .out
                .take()
                .unwrap_or_else(|| Err(StoreError::Task("unreachable".into()))),
            Err(e) => Err(StoreError::Batch(e.clone())),
        };
        match self.reply.take() {
            Some(Reply::Channel(reply)) => {
                let _ = reply.send(out);
            }
            Some(Reply::Done(done)) => done(out.map(|_| ())),
            None => {}
        }
    }
}

/// Handle to the writer thread. Dropping it lets the thread finish the queued jobs and exit.
/// A job, or (`None`) a nudge that detached jobs are waiting in [`Writer::detached`].
type Message = Option<Box<dyn Job>>;

pub(super) struct Writer {
    jobs: mpsc::Sender<Message>,
    /// Detached jobs, queued without waking the writer thread for each (one nudge per
    /// batch): a wake-up per job cost more than the insert itself.
    detached: Detached,
    conn: Arc<Mutex<Connection>>,
    /// Jobs submitted and not yet answered.
    pending: Arc<AtomicUsize>,
    /// Whether a lone write may commit on the caller's thread (see [`Writer::submit`]).
    inline: AtomicBool,
    busy_timeout: Duration,
    /// Runs on the writer thread once the queue is drained after the store is dropped.
    on_exit: ExitHook,
}

type ExitHook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;
type Detached = Arc<Mutex<Vec<Box<dyn Job>>>>;

impl Writer {
    /// `busy_timeout`: how long a batch waits for another connection's write lock.
    pub(super) fn start(
        conn: Arc<Mutex<Connection>>,
        busy_timeout: Duration,
    ) -> Result<Writer, StoreError> {
        // The writer waits for the lock itself, in fine steps (see `begin`).
        conn.lock().busy_timeout(Duration::ZERO)?;
        let (jobs, rx) = mpsc::channel::<Message>();
        let detached: Detached = Arc::default();
        let thread_detached = detached.clone();
        let thread_conn = conn.clone();
        let pending = Arc::new(AtomicUsize::new(0));
        let thread_pending = pending.clone();
        let on_exit: ExitHook = Arc::default();
        let thread_on_exit = on_exit.clone();
        std::thread::Builder::new()
            .name("vendorgate-sqlite-writer".into())
            .spawn(move || {
                run(
                    thread_conn,
                    rx,
                    thread_detached,
                    thread_pending,
                    busy_timeout,
                );
                if let Some(hook) = thread_on_exit.lock().take() {
                    hook();
                }
            })
            .map_err(StoreError::Io)?;
        Ok(Writer {
            jobs,
            detached,
            conn,
            pending,
            inline: AtomicBool::new(true),
            busy_timeout,
            on_exit,
        })
    }

    /// Run `hook` on the writer thread after the last queued job, once the store is gone.
    pub(super) fn set_on_exit(&self, hook: impl FnOnce() + Send + 'static) {
        *self.on_exit.lock() = Some(Box::new(hook));
    }

    /// Off for a server: an HTTP thread blocked on a commit stalls its other connections
    /// (measured: p99 up, throughput down); on for embedded use, where a call is usually
    /// alone and the hand-over was most of its latency.
    pub(super) fn set_inline(&self, on: bool) {
        self.inline.store(on, Ordering::Relaxed);
    }

    /// Queue a write; the answer arrives after its transaction commits.
    pub(super) fn submit<T, F>(&self, work: F) -> oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, rx) = job(work);
        // A lone write (nothing else queued or running) commits here rather than going to
        // the writer thread and back: those two wake-ups were most of its latency. With
        // other writes about, it queues for the next group commit, which batches better.
        if self.pending.fetch_add(1, Ordering::AcqRel) == 0 && self.inline.load(Ordering::Relaxed) {
            if let Some(conn) = self.conn.try_lock() {
                run_batch(&conn, vec![job], self.busy_timeout);
                self.pending.fetch_sub(1, Ordering::AcqRel);
                return rx;
            }
        }
        if let Err(mpsc::SendError(Some(job))) = self.jobs.send(Some(job)) {
            job.deliver(&Err("the store's writer thread has stopped".into()));
        }
        rx
    }

    /// Queue a write nobody waits for; `done` learns whether it committed. Always goes
    /// through the writer thread, never inline: the point is not to wait.
    pub(super) fn submit_detached<F>(
        &self,
        work: F,
        done: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) where
        F: FnMut(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        self.pending.fetch_add(1, Ordering::AcqRel);
        let job: Box<dyn Job> = Box::new(TypedJob {
            work,
            out: None,
            reply: Some(Reply::Done(Box::new(done))),
        });
        let first = {
            let mut queue = self.detached.lock();
            queue.push(job);
            queue.len() == 1
        };
        // Only the first job of a batch nudges the thread; the others ride along.
        if first && self.jobs.send(None).is_err() {
            for job in self.detached.lock().drain(..) {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                job.deliver(&Err("the store's writer thread has stopped".into()));
            }
        }
    }

    /// Queue a write and wait for it (from a blocking context only).
    pub(super) fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let dropped = || {
            Err(StoreError::Task(
                "the store's writer thread dropped the answer".into(),
            ))
        };
        let mut rx = self.submit(work);
        // Answered inline already: no blocking wait (which would panic if the caller is on
        // an async runtime, as `SqliteStore::open` in a server may be).
        match rx.try_recv() {
            Ok(out) => out,
            Err(oneshot::error::TryRecvError::Closed) => dropped(),
            Err(oneshot::error::TryRecvError::Empty) => {
                rx.blocking_recv().unwrap_or_else(|_| dropped())
            }
        }
    }
}

fn run(
    conn: Arc<Mutex<Connection>>,
    rx: mpsc::Receiver<Message>,
    detached: Detached,
    pending: Arc<AtomicUsize>,
    busy_timeout: Duration,
) {
    while let Ok(first) = rx.recv() {
        let mut batch: Vec<Box<dyn Job>> = Vec::new();
        let waited = first.is_some();
        batch.extend(first);
        if !waited {
            // Only detached jobs so far (nobody waits on them): let more gather for up to
            // DETACHED_WINDOW so they share a commit, unless a waited job turns up.
            let deadline = Instant::now() + DETACHED_WINDOW;
            loop {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(Some(job)) => {
                        batch.push(job);
                        break;
                    }
                    Ok(None) => continue,
                    Err(_) => break,
                }
            }
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Some(job)) => batch.push(job),
                Ok(None) => {}
                Err(_) => break,
            }
        }
        // Detached jobs first: they were queued before the waited ones that woke us, and a
        // waited job (a flush before a read) must see them.
        let batch = {
            let mut all = std::mem::take(&mut *detached.lock());
            all.append(&mut batch);
            all
        };
        if batch.is_empty() {
            continue; // a nudge for jobs an earlier batch already took
        }
        let n = batch.len();
        run_batch(&conn.lock(), batch, busy_timeout);
        pending.fetch_sub(n, Ordering::AcqRel);
    }
    // The store is gone: whatever detached work is left still gets stored.
    let rest = std::mem::take(&mut *detached.lock());
    if !rest.is_empty() {
        let n = rest.len();
        run_batch(&conn.lock(), rest, busy_timeout);
        pending.fetch_sub(n, Ordering::AcqRel);
    }
}

/// One transaction for the whole batch; answers go out after COMMIT (or its failure).
///
/// Jobs run without savepoints (a savepoint per job copied every page it touched into the
/// sub-journal). If any job fails, the whole transaction is rolled back and each job runs
/// again in a transaction of its own, so a failing job still cannot undo its neighbours and
/// no neighbour can have seen its partial writes.
fn run_batch(conn: &Connection, mut batch: Vec<Box<dyn Job>>, busy_timeout: Duration) {
    let commit = match begin(conn, busy_timeout) {
        Err(e) => Err(e),
        Ok(()) => {
            for job in batch.iter_mut() {
                job.run(conn);
            }
            if batch.len() > 1 && batch.iter().any(|j| j.failed()) {
                let _ = exec(conn, "ROLLBACK");
                for job in batch {
                    run_alone(conn, job, busy_timeout);
                }
                return;
            }
            end(conn, batch.iter().any(|j| j.failed()))
        }
    };
    for job in batch {
        job.deliver(&commit);
    }
}

fn run_alone(conn: &Connection, mut job: Box<dyn Job>, busy_timeout: Duration) {
    let commit = begin(conn, busy_timeout).and_then(|()| {
        job.run(conn);
        end(conn, job.failed())
    });
    job.deliver(&commit);
}

/// COMMIT, or ROLLBACK when the (single) job failed; a failed COMMIT is rolled back.
fn end(conn: &Connection, failed: bool) -> Result<(), String> {
    if failed {
        let _ = exec(conn, "ROLLBACK");
        return Err("the operation failed and was rolled back".into());
    }
    exec(conn, "COMMIT").inspect_err(|_| {
        let _ = exec(conn, "ROLLBACK");
    })
}

/// `BEGIN IMMEDIATE`, waiting up to `busy_timeout` for another connection's write lock
/// (the checkpointer's brief RESTART, another process). SQLite's own busy handler sleeps in
/// steps of up to 100 ms, which showed in the p99; this polls every 50 µs to 1 ms.
fn begin(conn: &Connection, busy_timeout: Duration) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        let r = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]));
        match r {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && started.elapsed() < busy_timeout =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Transaction control through the statement cache (parsing it was a measurable cost).
fn exec(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn job<T, F>(work: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T, StoreError>>)
where
    T: Send + 'static,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    (
        Box::new(TypedJob {
            work,
            out: None,
            reply: Some(Reply::Channel(tx)),
        }),
        rx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs that share a batch are isolated: a failing job rolls back only its own work.
    #[test]
    fn a_failing_job_does_not_undo_its_neighbours() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .unwrap();
        let (a, ra) = job(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?));
        let (b, rb) = job(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            // Violates UNIQUE: this job fails after a write of its own.
            Ok(c.execute("INSERT INTO t VALUES (1)", [])?)
        });
        let (c3, rc) = job(|c| Ok(c.execute("INSERT INTO t VALUES (3)", [])?));
        run_batch(&conn, vec![a, b, c3], Duration::ZERO);
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert!(rb.blocking_recv().unwrap().is_err());
        assert!(rc.blocking_recv().unwrap().is_ok());
        let mut s = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        let rows: Vec<i64> = s
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![1, 3],
            "job b's own insert of 2 was rolled back; a and c were kept"
        );
    }

    /// A write with nothing else queued is committed before `submit` returns (no trip to
    /// the writer thread); with inline writes off it goes through the thread and still lands.
    #[test]
    fn a_lone_write_commits_on_the_callers_thread() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let conn = Arc::new(Mutex::new(conn));
        let w = Writer::start(conn.clone(), Duration::from_secs(1)).unwrap();
        let mut rx = w.submit(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?));
        assert_eq!(rx.try_recv().unwrap().unwrap(), 1, "not answered inline");
        w.set_inline(false);
        let rx = w.submit(|c| Ok(c.execute("INSERT INTO t VALUES (2)", [])?));
        assert_eq!(rx.blocking_recv().unwrap().unwrap(), 1);
        let n: i64 = conn
            .lock()
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    /// Detached jobs commit without anyone waiting, and a write queued after them sees them.
    #[test]
    fn detached_jobs_commit_before_a_later_write() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let w = Writer::start(Arc::new(Mutex::new(conn)), Duration::from_secs(1)).unwrap();
        w.set_inline(false);
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..10 {
            let done = done.clone();
            w.submit_detached(
                move |c| {
                    c.execute("INSERT INTO t VALUES (?1)", [i])?;
                    Ok(())
                },
                move |r| {
                    if r.is_ok() {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                },
            );
        }
        let n: i64 = w
            .write(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 10, "the write ran before the detached jobs");
        assert_eq!(
            done.load(Ordering::SeqCst),
            10,
            "not every detached job was told"
        );
    }

    /// No answer before the transaction's fate is known: a failed COMMIT fails every job.
    #[test]
    fn answers_follow_the_commit() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("BEGIN").unwrap(); // BEGIN IMMEDIATE inside a transaction fails
        let (a, ra) = job(|_| Ok(1));
        run_batch(&conn, vec![a], Duration::ZERO);
        assert!(ra.blocking_recv().unwrap().is_err());
    }
}
