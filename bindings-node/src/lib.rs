//! The native half of the Node package `vendorgate`. It is deliberately thin: every operation
//! is one `async` call into `vendorgate::client::Handle` (embedded or connect mode) running on
//! napi's tokio runtime, so nothing here blocks Node's event loop. Structured values cross the
//! boundary as JSON text and are reshaped into idiomatic camelCase objects by `index.js`;
//! errors cross as an `Error` whose message is a marker plus JSON (see [`to_js_error`]), which
//! `index.js` turns into a proper `Error` with a stable `code`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use napi::bindgen_prelude::{Buffer, Result};
use napi_derive::napi;
use parking_lot::Mutex;
use serde_json::{json, Value};
use vendorgate::client::{ClientResponse, Handle, RequestBody};
use vendorgate::{AuditQuery, Config, Gateway, KeySpec, Vendor};
use vendorgate_server::ServerHandle;

/// Prefix of the message of every error thrown by this module; the rest is JSON
/// `{reason, status, message, details}`.
const ERROR_MARKER: &str = "__vendorgate_error__";

fn to_js_error(e: vendorgate::Error) -> napi::Error {
    let body = json!({
        "reason": e.reason(),
        "status": e.http_status(),
        "message": e.to_string(),
        "details": e.details(),
    });
    napi::Error::from_reason(format!("{ERROR_MARKER}{body}"))
}

fn invalid(field: &str, message: impl Into<String>) -> napi::Error {
    to_js_error(vendorgate::Error::invalid(field, message))
}

fn parse_json(field: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| invalid(field, format!("is not valid JSON ({e})")))
}

fn parse_vendor(s: &str) -> Result<Vendor> {
    Vendor::parse(s).ok_or_else(|| {
        invalid(
            "vendor",
            format!("{s:?} is not one of stripe, twilio, resend"),
        )
    })
}

/// Apply the `config` object of `Gateway.open` (already snake_cased and checked for unknown
/// keys by index.js) on top of `Config::from_env()`.
fn apply_overrides(cfg: &mut Config, overrides: &Value) -> vendorgate::Result<()> {
    let Some(obj) = overrides.as_object() else {
        return Ok(());
    };
    // Credentials and upstream URLs go through the same code path as the environment, so they
    // are validated exactly like VENDORGATE_STRIPE_URL and friends.
    let env_names = [
        ("stripe_url", "VENDORGATE_STRIPE_URL"),
        ("twilio_url", "VENDORGATE_TWILIO_URL"),
        ("resend_url", "VENDORGATE_RESEND_URL"),
        ("stripe_secret_key", "STRIPE_SECRET_KEY"),
        ("resend_api_key", "RESEND_API_KEY"),
    ];
    let get_str = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    // One Twilio half given here takes the other half from the environment.
    let (sid, tok) = (get_str("twilio_account_sid"), get_str("twilio_auth_token"));
    let (sid, tok) = if sid.is_some() || tok.is_some() {
        (
            sid.or_else(|| std::env::var("TWILIO_ACCOUNT_SID").ok()),
            tok.or_else(|| std::env::var("TWILIO_AUTH_TOKEN").ok()),
        )
    } else {
        (None, None)
    };
    cfg.apply_env(|var| match var {
        "TWILIO_ACCOUNT_SID" => sid.clone(),
        "TWILIO_AUTH_TOKEN" => tok.clone(),
        _ => env_names
            .iter()
            .find(|(_, v)| *v == var)
            .and_then(|(k, _)| get_str(k)),
    })?;
    let uint =
        |k: &str| -> vendorgate::Result<Option<u64>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                    vendorgate::Error::invalid(k, "must be a positive whole number")
                }),
            }
        };
    if let Some(n) = uint("max_body_bytes")? {
        cfg.max_body_bytes = n as usize;
    }
    if let Some(n) = uint("max_response_bytes")? {
        cfg.max_response_bytes = n as usize;
    }
    if let Some(n) = uint("request_timeout_secs")? {
        cfg.request_timeout = Duration::from_secs(n);
    }
    if let Some(n) = uint("connect_timeout_secs")? {
        cfg.connect_timeout = Duration::from_secs(n);
    }
    if let Some(n) = uint("max_key_ttl_secs")? {
        cfg.max_key_ttl = Duration::from_secs(n);
    }
    Ok(())
}

/// Run a future that is not `Send` on a blocking-pool thread of the runtime.
///
/// `Handle::list_keys` and `Handle::audit` keep a `form_urlencoded::Serializer` alive across an
/// `.await`, which makes their futures `!Send`, and napi's async functions need `Send` futures.
/// Until the core builds the query string before awaiting, these two (rare, admin) calls are
/// driven with `block_on` from a blocking thread, which never blocks Node's event loop.
async fn run_unsend<T, F, Fut>(make: F) -> vendorgate::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = vendorgate::Result<T>>,
{
    tokio::task::spawn_blocking(move || tokio::runtime::Handle::current().block_on(make()))
        .await
        .map_err(|e| vendorgate::Error::Config(format!("internal task failed: {e}")))?
}

/// Connect mode: a refusal of the server that came back as a plain response.
///
/// `client::Remote` recognises refusals by a `Vendorgate-Refusal` response header, which the
/// server does not send (core `refusal::render` sets none). A refusal body always carries the
/// machine-readable `"vendorgate": {"reason", "message", ...}` object next to the vendor's own
/// error shape, so an error status with such an object is read as the refusal it is.
fn remote_refusal(handle: &Handle, r: &ClientResponse) -> Option<vendorgate::Error> {
    if !matches!(handle, Handle::Remote(_)) || r.status < 400 {
        return None;
    }
    let v: Value = serde_json::from_slice(&r.body).ok()?;
    let details = v.get("vendorgate")?;
    let reason = details.get("reason")?.as_str()?;
    if !vendorgate::error::REASONS.contains(&reason) {
        return None;
    }
    let message = details
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("refused by the gateway")
        .to_string();
    Some(vendorgate::Error::from_remote(
        reason,
        r.status,
        message,
        details.clone(),
    ))
}

/// A vendor answer, as index.js receives it.
#[napi(object)]
pub struct NativeResponse {
    pub status: u32,
    /// `[name, value]` pairs, names lower-case, in the order the vendor sent them.
    pub headers: Vec<Vec<String>>,
    pub body: Buffer,
    pub cost_usd: String,
    pub remaining_usd: Option<String>,
}

/// One gateway handle: embedded (the pipeline in this process) or connected to a server.
#[napi]
pub struct NativeGateway {
    handle: Handle,
    servers: Arc<Mutex<Vec<ServerHandle>>>,
}

/// `Gateway.open(path, config)`: the embedded gateway on a local SQLite file.
#[napi]
pub async fn open_gateway(path: String, config_json: String) -> Result<NativeGateway> {
    let overrides = parse_json("config", &config_json)?;
    let gw = tokio::task::spawn_blocking(move || -> vendorgate::Result<Gateway> {
        let mut cfg = Config::from_env()?;
        apply_overrides(&mut cfg, &overrides)?;
        Gateway::open(PathBuf::from(path), cfg)
    })
    .await
    .map_err(|e| napi::Error::from_reason(format!("opening the gateway failed: {e}")))?
    .map_err(to_js_error)?;
    Ok(NativeGateway {
        handle: Handle::Embedded(gw),
        servers: Arc::default(),
    })
}

/// `Gateway.connect(url, { adminToken })`: a running `vendorgate serve`.
#[napi]
pub async fn connect_gateway(url: String, admin_token: Option<String>) -> Result<NativeGateway> {
    let handle =
        Handle::connect(&url, admin_token.filter(|t| !t.is_empty())).map_err(to_js_error)?;
    Ok(NativeGateway {
        handle,
        servers: Arc::default(),
    })
}

/// Which vendor a path belongs to, when nothing else says (`/v1/…` is Stripe, …).
#[napi]
pub fn guess_vendor(path: String) -> Option<String> {
    Vendor::guess_from_path(&path).map(|v| v.as_str().to_string())
}

#[napi]
impl NativeGateway {
    #[napi(getter)]
    pub fn mode(&self) -> String {
        match self.handle {
            Handle::Embedded(_) => "embedded".into(),
            Handle::Remote(_) => "connect".into(),
        }
    }

    /// Issue a key from the admin-API-shaped JSON spec; returns the key as JSON.
    #[napi]
    pub async fn issue_key(&self, spec_json: String) -> Result<String> {
        let spec = KeySpec::from_json(&parse_json("spec", &spec_json)?).map_err(to_js_error)?;
        let v = self.handle.issue_key(spec).await.map_err(to_js_error)?;
        Ok(v.to_string())
    }

    #[napi]
    pub async fn revoke(&self, key: String) -> Result<()> {
        self.handle.revoke(&key).await.map_err(to_js_error)
    }

    #[napi]
    pub async fn usage(&self, key: String) -> Result<String> {
        let v = self.handle.usage(&key).await.map_err(to_js_error)?;
        Ok(v.to_string())
    }

    #[napi]
    pub async fn list_keys(&self, run_id: Option<String>, active: bool) -> Result<String> {
        let h = self.handle.clone();
        let v = run_unsend(move || async move { h.list_keys(run_id, active).await })
            .await
            .map_err(to_js_error)?;
        Ok(Value::Array(v).to_string())
    }

    /// `query_json`: `{key_id?, run_id?, since_ms?, after_id?, limit?}`.
    #[napi]
    pub async fn audit(&self, query_json: String) -> Result<String> {
        let q = parse_json("query", &query_json)?;
        let s = |k: &str| q.get(k).and_then(Value::as_str).map(str::to_string);
        let i = |k: &str| q.get(k).and_then(Value::as_i64);
        let query = AuditQuery {
            key_id: s("key_id"),
            run_id: s("run_id"),
            since_ms: i("since_ms"),
            after_id: i("after_id"),
            limit: i("limit").unwrap_or(0).max(0) as usize,
        };
        let h = self.handle.clone();
        let rows = run_unsend(move || async move { h.audit(query).await })
            .await
            .map_err(to_js_error)?;
        Ok(Value::Array(rows).to_string())
    }

    /// One vendor request. `body_kind` is `empty`, `form`, `json` (then `body` is UTF-8 JSON
    /// text) or `raw`.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub async fn request(
        &self,
        vault_key: String,
        vendor: String,
        method: String,
        path: String,
        headers: Vec<Vec<String>>,
        body_kind: String,
        body: Option<Buffer>,
    ) -> Result<NativeResponse> {
        let vendor = parse_vendor(&vendor)?;
        let bytes = body.map(|b| Bytes::copy_from_slice(&b)).unwrap_or_default();
        let json_of = |field: &str| -> Result<Value> {
            serde_json::from_slice(&bytes)
                .map_err(|e| invalid(field, format!("is not valid JSON ({e})")))
        };
        let body = match body_kind.as_str() {
            "empty" => RequestBody::Empty,
            "form" => RequestBody::Form(json_of("form")?),
            "json" => RequestBody::Json(json_of("json")?),
            "raw" => RequestBody::Raw(bytes.clone()),
            other => return Err(invalid("body", format!("unknown body kind {other:?}"))),
        };
        let mut pairs = Vec::with_capacity(headers.len());
        for h in headers {
            let [k, v]: [String; 2] = h
                .try_into()
                .map_err(|_| invalid("headers", "each header must be a [name, value] pair"))?;
            pairs.push((k, v));
        }
        let r = self
            .handle
            .request(&vault_key, Some(vendor), &method, &path, pairs, body)
            .await
            .map_err(to_js_error)?;
        if let Some(refusal) = remote_refusal(&self.handle, &r) {
            return Err(to_js_error(refusal));
        }
        Ok(NativeResponse {
            status: u32::from(r.status),
            headers: r.headers.into_iter().map(|(k, v)| vec![k, v]).collect(),
            body: Buffer::from(r.body.to_vec()),
            cost_usd: vendorgate::format_usd(r.cost_micros),
            remaining_usd: r.remaining_micros.map(vendorgate::format_usd),
        })
    }

    /// Measurement aid (bench/overhead.js): send `n` bodiless requests one after another from
    /// Rust, straight through `Handle::request`, and return the elapsed seconds. Comparing it
    /// with the same loop driven from JavaScript gives the cost of the binding layer.
    #[napi]
    pub async fn bench_requests(
        &self,
        vault_key: String,
        vendor: String,
        method: String,
        path: String,
        n: u32,
    ) -> Result<f64> {
        let vendor = parse_vendor(&vendor)?;
        let started = std::time::Instant::now();
        for _ in 0..n {
            let r = self
                .handle
                .request(
                    &vault_key,
                    Some(vendor),
                    &method,
                    &path,
                    vec![],
                    RequestBody::Empty,
                )
                .await
                .map_err(to_js_error)?;
            if r.status >= 400 {
                return Err(to_js_error(vendorgate::Error::BadRequest(format!(
                    "benchmark request answered {}",
                    r.status
                ))));
            }
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// Serve the vendor routes and admin API of an embedded gateway on `addr`; returns the
    /// base URL. The server runs until `close_servers` (or process exit).
    #[napi]
    pub async fn serve(&self, addr: String, admin_token: Option<String>) -> Result<String> {
        let Handle::Embedded(gw) = &self.handle else {
            return Err(to_js_error(vendorgate::Error::Config(
                "serve() needs an embedded gateway (Gateway.open); a connected gateway is already served by its server".into(),
            )));
        };
        let state = vendorgate_server::AppState::new(gw.clone(), admin_token);
        let router = vendorgate_server::app(state);
        let server = vendorgate_server::spawn(router, &addr).await.map_err(|e| {
            to_js_error(vendorgate::Error::Config(format!(
                "cannot listen on {addr}: {e}"
            )))
        })?;
        let url = server.url();
        self.servers.lock().push(server);
        Ok(url)
    }

    /// Stop every server started by `serve`, letting in-flight requests finish.
    #[napi]
    pub async fn close_servers(&self) -> Result<u32> {
        let servers: Vec<ServerHandle> = std::mem::take(&mut *self.servers.lock());
        let n = servers.len() as u32;
        for s in servers {
            s.shutdown().await;
        }
        Ok(n)
    }
}
