//! `NativeGateway`: an embedded or connected gateway as `index.js` drives it. Every operation
//! is one `async` call into `vendorgate::client::Handle` on napi's tokio runtime, so nothing
//! here blocks Node's event loop; structured values cross as JSON text.

use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Result};
use napi_derive::napi;
use serde_json::Value;
use vendorgate::client::{vendor_arg, Handle, RequestBody};
use vendorgate::{AuditQuery, Config, Gateway, KeySpec};
use vendorgate_server::EmbeddedServer;

use crate::error::{invalid, to_js_error};

fn parse_json(field: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| invalid(field, format!("is not valid JSON ({e})")))
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
    server: Arc<EmbeddedServer>,
}

/// `Gateway.open(path, config)`: the embedded gateway on a local SQLite file. A fault of the
/// `config` argument itself (an unknown key, a bad value) is a bad argument: `invalid_input`
/// with field `config`, as in the Python binding; a fault of the environment (a bad
/// `VENDORGATE_STRIPE_URL`, half the Twilio credentials) stays a `config_error`.
#[napi]
pub async fn open_gateway(path: String, config_json: String) -> Result<NativeGateway> {
    let gw = tokio::task::spawn_blocking(move || -> vendorgate::Result<Gateway> {
        let env = |k: &str| std::env::var(k).ok();
        // The one rule for both bindings: `Config::for_binding`.
        let cfg = Config::for_binding(Some(&config_json), &env)?;
        Gateway::open(PathBuf::from(path), cfg)
    })
    .await
    .map_err(|e| napi::Error::from_reason(format!("opening the gateway failed: {e}")))?
    .map_err(to_js_error)?;
    Ok(NativeGateway {
        handle: Handle::Embedded(gw),
        server: Arc::default(),
    })
}

/// `Gateway.connect(url, { adminToken })`: a running `vendorgate serve`.
#[napi]
pub async fn connect_gateway(url: String, admin_token: Option<String>) -> Result<NativeGateway> {
    let handle =
        Handle::connect(&url, admin_token.filter(|t| !t.is_empty())).map_err(to_js_error)?;
    Ok(NativeGateway {
        handle,
        server: Arc::default(),
    })
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

    /// Create a budget from the admin-API-shaped JSON; returns it as JSON.
    #[napi]
    pub async fn create_budget(&self, spec_json: String) -> Result<String> {
        let spec = parse_json("spec", &spec_json)?;
        let v = self.handle.create_budget(spec).await.map_err(to_js_error)?;
        Ok(v.to_string())
    }

    #[napi]
    pub async fn budget(&self, name: String) -> Result<String> {
        let v = self.handle.budget(&name).await.map_err(to_js_error)?;
        Ok(v.to_string())
    }

    #[napi]
    pub async fn budgets(&self) -> Result<String> {
        let v = self.handle.budgets().await.map_err(to_js_error)?;
        Ok(serde_json::Value::Array(v).to_string())
    }

    #[napi]
    pub async fn usage(&self, key: String) -> Result<String> {
        let v = self.handle.usage(&key).await.map_err(to_js_error)?;
        Ok(v.to_string())
    }

    #[napi]
    pub async fn list_keys(&self, run_id: Option<String>, active: bool) -> Result<String> {
        let v = self
            .handle
            .list_keys(run_id, active)
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
        let rows = self.handle.audit(query).await.map_err(to_js_error)?;
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
        let vendor = vendor_arg(&vendor).map_err(to_js_error)?;
        let body =
            RequestBody::from_kind(&body_kind, body.map(|b| b.to_vec())).map_err(to_js_error)?;
        let mut pairs = Vec::with_capacity(headers.len());
        for h in headers {
            let [k, v]: [String; 2] = h
                .try_into()
                .map_err(|_| invalid("headers", "each header must be a [name, value] pair"))?;
            pairs.push((k, v));
        }
        let r = self
            .handle
            .request(&vault_key, vendor, &method, &path, pairs, body)
            .await
            .map_err(to_js_error)?;
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
        let vendor = vendor_arg(&vendor).map_err(to_js_error)?;
        self.handle
            .timed_requests(&vault_key, vendor, &method, &path, n as usize)
            .await
            .map_err(to_js_error)
    }

    /// Serve the vendor routes and admin API of an embedded gateway on `addr`; returns the
    /// base URL. Calling it again returns the same URL (`vendorgate_server::EmbeddedServer`,
    /// the rule both bindings share) until `close_servers`.
    #[napi]
    pub async fn serve(&self, addr: String, admin_token: Option<String>) -> Result<String> {
        let Handle::Embedded(gw) = &self.handle else {
            return Err(to_js_error(vendorgate::Error::Config(
                "serve() needs an embedded gateway (Gateway.open); a connected gateway is already served by its server".into(),
            )));
        };
        self.server
            .serve(gw.clone(), &addr, admin_token)
            .await
            .map_err(|e| to_js_error(vendorgate::Error::Config(e.to_string())))
    }

    /// Stop the server started by `serve`, letting in-flight requests finish.
    #[napi]
    pub async fn close_servers(&self) -> Result<()> {
        self.server.close().await;
        Ok(())
    }
}
