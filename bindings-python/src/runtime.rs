//! The tokio runtime under the Python binding, and how Python waits on it.
//!
//! - one global multi-thread runtime, built lazily and rebuilt in a forked child (a pid check,
//!   plus `_after_fork_in_child`, which the package registers with `os.register_at_fork`); the
//!   parent's runtime is leaked in the child, never dropped: its threads do not exist there,
//!   so every failure path degrades to a leak, never to a hang;
//! - a blocking call waits on a channel in short slices with the GIL released and checks for
//!   signals between them, so Ctrl-C interrupts it (the request itself runs to its end on the
//!   runtime, so its reservation is settled and audited);
//! - `VgRuntime` lets pyo3-async-runtimes run asyncio futures on this same runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3_async_runtimes::generic::{self, ContextExt};
use pyo3_async_runtimes::TaskLocals;
use tokio::runtime::Runtime;
use vendorgate::Error;

use crate::error::to_py_err;

struct Rt {
    pid: u32,
    rt: Runtime,
}

/// The runtime and the pid that built it. Lock-free to read; leaked on purpose, because a
/// runtime cannot be dropped safely in a forked child (its threads are gone) and the parent
/// keeps one for the life of the process.
static RUNTIME: AtomicPtr<Rt> = AtomicPtr::new(std::ptr::null_mut());
/// 0 when free, else the pid of the process whose thread is building the runtime; a child
/// takes over a lock its parent held at fork time.
static BUILDING: AtomicU32 = AtomicU32::new(0);

fn build_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("vendorgate")
        .enable_all()
        .build()
        .expect("build the vendorgate tokio runtime")
}

/// The process's runtime; a new one after `fork()` (the parent's threads do not exist in
/// the child).
pub(crate) fn runtime() -> &'static Runtime {
    let pid = std::process::id();
    loop {
        let p = RUNTIME.load(Ordering::Acquire);
        // SAFETY: a non-null pointer comes from Box::leak below and is never freed.
        if let Some(rt) = unsafe { p.as_ref() } {
            if rt.pid == pid {
                return &rt.rt;
            }
        }
        let holder = BUILDING.load(Ordering::Acquire);
        if holder == pid {
            std::thread::yield_now();
            continue;
        }
        if BUILDING
            .compare_exchange(holder, pid, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let current = RUNTIME.load(Ordering::Acquire);
            // SAFETY: as above.
            let fresh = match unsafe { current.as_ref() } {
                Some(rt) if rt.pid == pid => &rt.rt,
                _ => {
                    let rt: &'static Rt = Box::leak(Box::new(Rt {
                        pid,
                        rt: build_runtime(),
                    }));
                    RUNTIME.store(rt as *const Rt as *mut Rt, Ordering::Release);
                    &rt.rt
                }
            };
            BUILDING.store(0, Ordering::Release);
            return fresh;
        }
    }
}

/// Called in a forked child (the package registers it with os.register_at_fork): forget the
/// parent's runtime now. The pid check in `runtime()` would notice anyway.
#[pyfunction]
pub(crate) fn _after_fork_in_child() {
    RUNTIME.store(std::ptr::null_mut(), Ordering::Release);
    BUILDING.store(0, Ordering::Release);
}

/// The runtime as pyo3-async-runtimes sees it, so asyncio futures run on our (fork-aware)
/// runtime rather than on a second one.
pub(crate) struct VgRuntime;

tokio::task_local! {
    static TASK_LOCALS: std::cell::OnceCell<TaskLocals>;
}

impl generic::Runtime for VgRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        runtime().spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        runtime().spawn_blocking(f)
    }
}

impl ContextExt for VgRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = std::cell::OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// Run `fut` on the runtime and wait for it with the GIL released, checking for signals
/// (Ctrl-C) every 50 ms. An interrupted call keeps running to its end on the runtime.
pub(crate) fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    wait(py, rx)
}

fn wait<T: Send>(py: Python<'_>, rx: Receiver<Result<T, Error>>) -> PyResult<T> {
    let mut rx = rx;
    loop {
        let (back, r) = py.detach(move || {
            let r = rx.recv_timeout(Duration::from_millis(50));
            (rx, r)
        });
        rx = back;
        match r {
            Ok(r) => return r.map_err(to_py_err),
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err(
                    "vendorgate: the operation panicked (this is a bug; please report it)",
                ))
            }
        }
    }
}
