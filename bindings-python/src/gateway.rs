//! `NativeGateway`: an embedded or connected gateway as the Python package drives it. Values
//! cross as JSON text, strings and bytes; the package makes them idiomatic.

use bytes::Bytes;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3_async_runtimes::generic;
use serde_json::Value;
use std::sync::Arc;
use vendorgate::client::{vendor_arg, ClientResponse, Handle, RequestBody};
use vendorgate::{AuditQuery, Config, Error, Gateway, KeySpec, Vendor};
use vendorgate_server::EmbeddedServer;

use crate::error::to_py_err;
use crate::runtime::{block_on, VgRuntime};

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
    server: Arc<EmbeddedServer>,
}

/// An open gateway, embedded or connected.
#[pyclass(module = "vendorgate._vendorgate", frozen)]
pub(crate) struct NativeGateway {
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
    /// One vendor request from the arguments `request` and `arequest` share.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        py: Python<'_>,
        vault_key: String,
        vendor: &str,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body_kind: &str,
        body: Option<Vec<u8>>,
    ) -> PyResult<Call> {
        Ok(Call {
            handle: self.handle(py)?,
            vault_key,
            vendor: vendor_arg(vendor).map_err(to_py_err)?,
            method,
            path,
            headers,
            body: RequestBody::from_kind(body_kind, body).map_err(to_py_err)?,
        })
    }

    fn new(origin: Origin, handle: Handle) -> Self {
        NativeGateway {
            origin,
            state: Mutex::new(State {
                pid: std::process::id(),
                handle,
                server: Arc::default(),
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
            std::mem::forget(std::mem::take(&mut s.server));
            s.pid = pid;
        }
        Ok(s.handle.clone())
    }
}

fn parse_json(field: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::invalid(field, format!("is not valid JSON: {e}")))
}

/// One vendor request, ready to run.
struct Call {
    handle: Handle,
    vault_key: String,
    vendor: Option<Vendor>,
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
        let resp = if detached {
            tokio::spawn(self.send())
                .await
                .map_err(|e| Error::Config(format!("request task failed: {e}")))??
        } else {
            self.send().await?
        };
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
                self.vendor,
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
                let env = |k: &str| std::env::var(k).ok();
                let config = Config::for_binding(config_json.as_deref(), &env)?;
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

    fn create_budget(&self, py: Python<'_>, spec_json: String) -> PyResult<String> {
        let h = self.handle(py)?;
        block_on(py, async move {
            let spec: Value = serde_json::from_str(&spec_json)
                .map_err(|e| vendorgate::Error::invalid("spec", format!("is not JSON: {e}")))?;
            Ok(h.create_budget(spec).await?.to_string())
        })
    }

    fn budget(&self, py: Python<'_>, name: String) -> PyResult<String> {
        let h = self.handle(py)?;
        block_on(py, async move { Ok(h.budget(&name).await?.to_string()) })
    }

    fn budgets(&self, py: Python<'_>) -> PyResult<String> {
        let h = self.handle(py)?;
        block_on(py, async move {
            Ok(Value::Array(h.budgets().await?).to_string())
        })
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
        let call = self.call(
            py, vault_key, vendor, method, path, headers, body_kind, body,
        )?;
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
        let call = self.call(
            py, vault_key, vendor, method, path, headers, body_kind, body,
        )?;
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
        let vendor = vendor_arg(vendor).map_err(to_py_err)?;
        block_on(py, async move {
            h.timed_requests(&vault_key, vendor, &method, &path, calls)
                .await
        })
    }

    /// Serve the gateway's HTTP face (vendor routes + admin API) on 127.0.0.1:`port`;
    /// returns its base URL. Embedded gateways only. Calling it again returns the same URL
    /// (`vendorgate_server::EmbeddedServer`, the rule both bindings share).
    #[pyo3(signature = (port=0, admin_token=None, host="127.0.0.1"))]
    fn serve(
        &self,
        py: Python<'_>,
        port: u16,
        admin_token: Option<String>,
        host: &str,
    ) -> PyResult<String> {
        let h = self.handle(py)?;
        let Handle::Embedded(gateway) = h else {
            return Err(to_py_err(Error::invalid(
                "serve",
                "serve() needs an embedded gateway (Gateway.open); a connected gateway is already served",
            )));
        };
        let server = self.state.lock().server.clone();
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        block_on(py, async move {
            server
                .serve(gateway, &addr, admin_token)
                .await
                .map_err(|e| Error::Config(e.to_string()))
        })
    }

    /// Stop the server started by `serve()`, if any (in-flight requests finish).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let server = self.state.lock().server.clone();
        block_on(py, async move {
            server.close().await;
            Ok(())
        })
    }
}

/// A vendor answer.
#[pyclass(module = "vendorgate._vendorgate", frozen)]
pub(crate) struct NativeResponse {
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
