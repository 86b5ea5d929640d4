//! `vendorgate._vendorgate`: the native half of the Python package. It is deliberately thin:
//! values cross the boundary as JSON text, plain strings and bytes, and the pure-Python
//! package (`bindings-python/python/vendorgate`) turns them into the idiomatic API (Decimal
//! money, datetimes, typed exceptions).
//!
//! Rules kept here:
//! - every store or network operation runs with the GIL released;
//! - one global multi-thread tokio runtime, built lazily and rebuilt in a forked child (a pid
//!   check, plus `_after_fork_in_child` which the package registers with `os.register_at_fork`);
//! - a blocking call waits on a channel in short slices and checks for signals between them,
//!   so Ctrl-C interrupts it (the request itself runs to its end on the runtime, so its
//!   reservation is settled and audited);
//! - refusals are raised as `NativeError(code, status, message, details_json)`, which the
//!   package maps to its exception classes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3_async_runtimes::generic::{self, ContextExt};
use pyo3_async_runtimes::TaskLocals;
use serde_json::Value;
use tokio::runtime::Runtime;
use vendorgate::client::{ClientResponse, Handle, RequestBody};
use vendorgate::config::parse_upstream_url;
use vendorgate::{AuditQuery, Config, Error, Gateway, KeySpec, Vendor};

create_exception!(
    _vendorgate,
    NativeError,
    PyException,
    "A gateway error: args are (code, status, message, details_json). The vendorgate package turns it into its typed exceptions."
);

// ---- the runtime ------------------------------------------------------------------------

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
fn runtime() -> &'static Runtime {
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
fn _after_fork_in_child() {
    RUNTIME.store(std::ptr::null_mut(), Ordering::Release);
    BUILDING.store(0, Ordering::Release);
}

/// The runtime as pyo3-async-runtimes sees it, so asyncio futures run on our (fork-aware)
/// runtime rather than on a second one.
struct VgRuntime;

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
fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
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

fn to_py_err(e: Error) -> PyErr {
    let details = e.details().to_string();
    NativeError::new_err((e.reason(), e.http_status(), e.to_string(), details))
}

// ---- configuration ----------------------------------------------------------------------

const CONFIG_KEYS: [&str; 11] = [
    "stripe_url",
    "twilio_url",
    "resend_url",
    "max_body_bytes",
    "request_timeout_secs",
    "connect_timeout_secs",
    "max_key_ttl_secs",
    "resend_email_usd",
    "twilio_mms_usd",
    "twilio_sms_rates",
    "fx",
];

fn positive_secs(field: &str, v: &Value) -> Result<Duration, Error> {
    v.as_f64()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0 * 365.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| Error::invalid(field, "must be a positive number of seconds"))
}

fn usd_of(field: &str, v: &Value) -> Result<i64, Error> {
    match v {
        Value::String(s) => vendorgate::parse_usd(field, s),
        Value::Number(n) => vendorgate::parse_usd(field, &n.to_string()),
        _ => Err(Error::invalid(field, "must be a decimal USD amount")),
    }
}

fn usd_table(field: &str, v: &Value) -> Result<Vec<(String, i64)>, Error> {
    let obj = v
        .as_object()
        .ok_or_else(|| Error::invalid(field, "must be a mapping"))?;
    obj.iter()
        .map(|(k, v)| Ok((k.clone(), usd_of(&format!("{field}.{k}"), v)?)))
        .collect()
}

/// Apply the `config=` overrides of `Gateway.open` on top of the environment's config.
fn apply_overrides(c: &mut Config, overrides: &Value) -> Result<(), Error> {
    let Some(obj) = overrides.as_object() else {
        return Err(Error::invalid("config", "must be a mapping"));
    };
    for (k, v) in obj {
        let field = format!("config.{k}");
        match k.as_str() {
            "stripe_url" | "twilio_url" | "resend_url" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| Error::invalid(&field, "must be a URL string"))?;
                let url = parse_upstream_url(&field, s).map_err(|e| match e {
                    Error::Config(m) => Error::invalid(&field, m),
                    other => other,
                })?;
                let vendor = match k.as_str() {
                    "stripe_url" => Vendor::Stripe,
                    "twilio_url" => Vendor::Twilio,
                    _ => Vendor::Resend,
                };
                c.upstream_mut(vendor).base_url = url;
            }
            "max_body_bytes" => {
                c.max_body_bytes = v
                    .as_u64()
                    .filter(|n| *n > 0 && *n <= 1 << 32)
                    .ok_or_else(|| Error::invalid(&field, "must be a positive whole number"))?
                    as usize;
            }
            "request_timeout_secs" => c.request_timeout = positive_secs(&field, v)?,
            "connect_timeout_secs" => c.connect_timeout = positive_secs(&field, v)?,
            "max_key_ttl_secs" => c.max_key_ttl = positive_secs(&field, v)?,
            "resend_email_usd" => c.pricing.resend_email_micros = usd_of(&field, v)?,
            "twilio_mms_usd" => c.pricing.twilio_mms_micros = usd_of(&field, v)?,
            "twilio_sms_rates" => {
                for (prefix, rate) in usd_table(&field, v)? {
                    c.pricing.twilio_sms_segment_micros.insert(prefix, rate);
                }
            }
            "fx" => {
                for (code, rate) in usd_table(&field, v)? {
                    c.pricing.fx_micros_per_unit.insert(code, rate);
                }
            }
            _ => {
                return Err(Error::invalid(
                    k,
                    format!(
                        "unknown config key; known keys are {}",
                        CONFIG_KEYS.join(", ")
                    ),
                ))
            }
        }
    }
    c.validate().map_err(|e| match e {
        Error::Config(m) => Error::invalid("config", m),
        other => other,
    })
}

fn parse_json(field: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::invalid(field, format!("is not valid JSON: {e}")))
}

// ---- the gateway ------------------------------------------------------------------------

/// How a handle was made, so a forked child can make its own (a store connection and an
/// HTTP pool do not survive `fork()`).
#[derive(Clone)]
enum Origin {
    Embedded {
        path: String,
        config: Box<Config>,
    },
    Remote {
        url: String,
        admin_token: Option<String>,
    },
}

struct State {
    pid: u32,
    handle: Handle,
    server: Option<vendorgate_server::ServerHandle>,
}

/// An open gateway, embedded or connected.
#[pyclass(module = "vendorgate._vendorgate", frozen)]
struct NativeGateway {
    origin: Origin,
    state: Mutex<State>,
}

fn open_handle(origin: &Origin) -> Result<Handle, Error> {
    match origin {
        Origin::Embedded { path, config } => {
            Ok(Handle::Embedded(Gateway::open(path, (**config).clone())?))
        }
        Origin::Remote { url, admin_token } => Handle::connect(url, admin_token.clone()),
    }
}

impl NativeGateway {
    fn new(origin: Origin, handle: Handle) -> Self {
        NativeGateway {
            origin,
            state: Mutex::new(State {
                pid: std::process::id(),
                handle,
                server: None,
            }),
        }
    }

    /// The handle for this process: in a forked child, the gateway reopens itself once.
    fn handle(&self, py: Python<'_>) -> PyResult<Handle> {
        let pid = std::process::id();
        {
            let s = self.state.lock();
            if s.pid == pid {
                return Ok(s.handle.clone());
            }
        }
        let origin = self.origin.clone();
        let fresh = py.detach(move || open_handle(&origin)).map_err(to_py_err)?;
        let mut s = self.state.lock();
        if s.pid != pid {
            // The parent's store connection, HTTP pool and server belong to the parent's
            // threads: leak them rather than tear them down from the child.
            std::mem::forget(std::mem::replace(&mut s.handle, fresh));
            std::mem::forget(s.server.take());
            s.pid = pid;
        }
        Ok(s.handle.clone())
    }
}

fn body_of(kind: &str, body: Option<Vec<u8>>) -> Result<RequestBody, Error> {
    let text = |b: &Option<Vec<u8>>| -> Result<Value, Error> {
        let b = b.as_deref().unwrap_or(b"null");
        serde_json::from_slice(b)
            .map_err(|e| Error::invalid(kind, format!("is not JSON-encodable: {e}")))
    };
    Ok(match kind {
        "empty" => RequestBody::Empty,
        "form" => RequestBody::Form(text(&body)?),
        "json" => RequestBody::Json(text(&body)?),
        "raw" => RequestBody::Raw(Bytes::from(body.unwrap_or_default())),
        other => {
            return Err(Error::invalid(
                "body",
                format!("unknown body kind {other:?} (empty, form, json or raw)"),
            ))
        }
    })
}

fn vendor_of(s: &str) -> Result<Vendor, Error> {
    Vendor::parse(s).ok_or_else(|| {
        Error::invalid(
            "vendor",
            format!("{s:?} is not one of stripe, twilio, resend"),
        )
    })
}

/// A refusal from a remote gateway that arrived as a plain answer: a server that does not
/// send the `Vendorgate-Refusal` header still puts `"vendorgate": {"reason", "message", ...}`
/// in the body of every refusal (core/src/refusal.rs).
fn remote_refusal(resp: &ClientResponse) -> Option<Error> {
    if resp.status < 400 {
        return None;
    }
    let v: Value = serde_json::from_slice(&resp.body).ok()?;
    let details = v.get("vendorgate")?;
    let reason = details.get("reason")?.as_str()?;
    let message = details
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("refused by the gateway")
        .to_string();
    Some(Error::from_remote(
        reason,
        resp.status,
        message,
        details.clone(),
    ))
}

/// One vendor request, ready to run.
struct Call {
    handle: Handle,
    vault_key: String,
    vendor: Vendor,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: RequestBody,
}

impl Call {
    /// Run the request. `detached`: on a task of its own, so that dropping this future (a
    /// cancelled asyncio task) does not cut the pipeline short: the request still runs to
    /// the end and its reservation is settled and audited. The blocking path needs no extra
    /// task: its future is never dropped before it completes (Ctrl-C only stops the wait).
    async fn run(self, detached: bool) -> Result<NativeResponse, Error> {
        let remote = matches!(self.handle, Handle::Remote(_));
        let resp = if detached {
            tokio::spawn(self.send())
                .await
                .map_err(|e| Error::Config(format!("request task failed: {e}")))??
        } else {
            self.send().await?
        };
        if remote {
            if let Some(e) = remote_refusal(&resp) {
                return Err(e);
            }
        }
        Ok(NativeResponse {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
            cost_micros: resp.cost_micros,
            remaining_micros: resp.remaining_micros,
        })
    }

    async fn send(self) -> Result<ClientResponse, Error> {
        self.handle
            .request(
                &self.vault_key,
                Some(self.vendor),
                &self.method,
                &self.path,
                self.headers,
                self.body,
            )
            .await
    }
}

#[pymethods]
impl NativeGateway {
    /// Open an embedded gateway on a SQLite file; `config_json` overrides the environment.
    #[staticmethod]
    #[pyo3(signature = (path, config_json=None))]
    fn open(py: Python<'_>, path: String, config_json: Option<String>) -> PyResult<Self> {
        let origin = py
            .detach(move || -> Result<Origin, Error> {
                let mut config = Config::from_env()?;
                if let Some(text) = config_json {
                    apply_overrides(&mut config, &parse_json("config", &text)?)?;
                }
                Ok(Origin::Embedded {
                    path,
                    config: Box::new(config),
                })
            })
            .map_err(to_py_err)?;
        let o = origin.clone();
        let handle = py.detach(move || open_handle(&o)).map_err(to_py_err)?;
        Ok(NativeGateway::new(origin, handle))
    }

    /// Connect to a running `vendorgate serve`.
    #[staticmethod]
    #[pyo3(signature = (url, admin_token=None))]
    fn connect(url: String, admin_token: Option<String>) -> PyResult<Self> {
        let origin = Origin::Remote { url, admin_token };
        let handle = open_handle(&origin).map_err(to_py_err)?;
        Ok(NativeGateway::new(origin, handle))
    }

    /// "embedded" or "connect".
    #[getter]
    fn mode(&self) -> &'static str {
        match self.origin {
            Origin::Embedded { .. } => "embedded",
            Origin::Remote { .. } => "connect",
        }
    }

    /// Issue a key from the admin API's JSON spec; returns the key as JSON.
    fn issue_key(&self, py: Python<'_>, spec_json: String) -> PyResult<String> {
        let h = self.handle(py)?;
        block_on(py, async move {
            let spec = KeySpec::from_json(&parse_json("spec", &spec_json)?)?;
            Ok(h.issue_key(spec).await?.to_string())
        })
    }

    fn revoke(&self, py: Python<'_>, key: String) -> PyResult<()> {
        let h = self.handle(py)?;
        block_on(py, async move { h.revoke(&key).await })
    }

    fn usage(&self, py: Python<'_>, key: String) -> PyResult<String> {
        let h = self.handle(py)?;
        block_on(py, async move { Ok(h.usage(&key).await?.to_string()) })
    }

    #[pyo3(signature = (run_id=None, active=false))]
    fn list_keys(&self, py: Python<'_>, run_id: Option<String>, active: bool) -> PyResult<String> {
        let h = self.handle(py)?;
        block_on(py, async move {
            Ok(Value::Array(h.list_keys(run_id, active).await?).to_string())
        })
    }

    #[pyo3(signature = (key_id=None, run_id=None, since_ms=None, limit=0))]
    fn audit(
        &self,
        py: Python<'_>,
        key_id: Option<String>,
        run_id: Option<String>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> PyResult<String> {
        let h = self.handle(py)?;
        block_on(py, async move {
            let rows = h
                .audit(AuditQuery {
                    key_id,
                    run_id,
                    since_ms,
                    after_id: None,
                    limit,
                })
                .await?;
            Ok(Value::Array(rows).to_string())
        })
    }

    /// One vendor request. `body_kind` is "empty", "form" or "json" (body = JSON text) or
    /// "raw" (body = the bytes to send).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (vault_key, vendor, method, path, headers, body_kind, body=None))]
    fn request(
        &self,
        py: Python<'_>,
        vault_key: String,
        vendor: &str,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body_kind: &str,
        body: Option<Vec<u8>>,
    ) -> PyResult<NativeResponse> {
        let h = self.handle(py)?;
        let vendor = vendor_of(vendor).map_err(to_py_err)?;
        let body = body_of(body_kind, body).map_err(to_py_err)?;
        let call = Call {
            handle: h,
            vault_key,
            vendor,
            method,
            path,
            headers,
            body,
        };
        block_on(py, call.run(false))
    }

    /// The asyncio twin of `request`: returns an awaitable; the event loop is never blocked.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (vault_key, vendor, method, path, headers, body_kind, body=None))]
    fn arequest<'py>(
        &self,
        py: Python<'py>,
        vault_key: String,
        vendor: &str,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body_kind: &str,
        body: Option<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.handle(py)?;
        let vendor = vendor_of(vendor).map_err(to_py_err)?;
        let body = body_of(body_kind, body).map_err(to_py_err)?;
        let call = Call {
            handle: h,
            vault_key,
            vendor,
            method,
            path,
            headers,
            body,
        };
        let locals = generic::get_current_locals::<VgRuntime>(py)?;
        generic::future_into_py_with_locals::<VgRuntime, _, _>(py, locals, async move {
            call.run(true).await.map_err(to_py_err)
        })
    }

    /// Benchmark hook (bench/overhead.py): `calls` sequential requests made from Rust on the
    /// runtime, straight through `Handle::request` with no Python in the loop; returns the
    /// seconds they took. The baseline for the binding's per-call overhead.
    #[pyo3(signature = (vault_key, vendor, method, path, calls))]
    fn _bench_core(
        &self,
        py: Python<'_>,
        vault_key: String,
        vendor: &str,
        method: String,
        path: String,
        calls: usize,
    ) -> PyResult<f64> {
        let h = self.handle(py)?;
        let vendor = vendor_of(vendor).map_err(to_py_err)?;
        block_on(py, async move {
            let start = std::time::Instant::now();
            for _ in 0..calls {
                h.request(
                    &vault_key,
                    Some(vendor),
                    &method,
                    &path,
                    vec![],
                    RequestBody::Empty,
                )
                .await?;
            }
            Ok(start.elapsed().as_secs_f64())
        })
    }

    /// Serve the gateway's HTTP face (vendor routes + admin API) on 127.0.0.1:`port`;
    /// returns its base URL. Embedded gateways only. Calling it again returns the same URL.
    #[pyo3(signature = (port=0, admin_token=None))]
    fn serve(&self, py: Python<'_>, port: u16, admin_token: Option<String>) -> PyResult<String> {
        let h = self.handle(py)?;
        let Handle::Embedded(gateway) = h else {
            return Err(to_py_err(Error::invalid(
                "serve",
                "serve() needs an embedded gateway (Gateway.open); a connected gateway is already served",
            )));
        };
        if let Some(s) = &self.state.lock().server {
            return Ok(s.url());
        }
        let server = block_on(py, async move {
            let router =
                vendorgate_server::app(vendorgate_server::AppState::new(gateway, admin_token));
            vendorgate_server::spawn(router, &format!("127.0.0.1:{port}"))
                .await
                .map_err(|e| Error::Config(format!("cannot listen on 127.0.0.1:{port}: {e}")))
        })?;
        let url = server.url();
        let mut s = self.state.lock();
        match &s.server {
            Some(existing) => {
                let url = existing.url();
                // Lost a race with another thread: stop ours.
                runtime().spawn(server.shutdown());
                Ok(url)
            }
            None => {
                s.server = Some(server);
                Ok(url)
            }
        }
    }

    /// Stop the server started by `serve()`, if any (in-flight requests finish).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let server = self.state.lock().server.take();
        if let Some(server) = server {
            block_on(py, async move {
                server.shutdown().await;
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// A vendor answer.
#[pyclass(module = "vendorgate._vendorgate", frozen)]
struct NativeResponse {
    #[pyo3(get)]
    status: u16,
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    body: Bytes,
    #[pyo3(get)]
    cost_micros: i64,
    #[pyo3(get)]
    remaining_micros: Option<i64>,
}

#[pymethods]
impl NativeResponse {
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }
}

#[pymodule]
fn _vendorgate(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeGateway>()?;
    m.add_class::<NativeResponse>()?;
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    m.add_function(wrap_pyfunction!(_after_fork_in_child, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
