//! One client API over both modes, shared by the Python and Node bindings: embedded (the
//! pipeline in-process) and connect (a running `vendorgate` server through its admin API and
//! vendor routes). Same methods, same errors.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::gateway::{Gateway, KeyStatus, ProxyRequest};
use crate::keys::KeySpec;
use crate::money::{format_usd, parse_usd};
use crate::store::AuditQuery;
use crate::vendors::Vendor;

/// A request body.
#[derive(Debug, Clone)]
pub enum RequestBody {
    Empty,
    /// Form fields; nested objects and arrays are encoded Stripe-style (`a[b]=`, `a[0]=`).
    Form(Value),
    Json(Value),
    Raw(Bytes),
}

/// A vendor answer as the bindings see it.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub cost_micros: i64,
    pub remaining_micros: Option<i64>,
}

/// A connection to a running server.
#[derive(Clone)]
pub struct Remote {
    base: String,
    admin_token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Embedded or connected.
#[derive(Clone)]
pub enum Handle {
    Embedded(Gateway),
    Remote(Remote),
}

impl Handle {
    pub fn connect(url: &str, admin_token: Option<String>) -> Result<Handle> {
        let u = crate::config::parse_upstream_url("url", url)
            .map_err(|e| Error::invalid("url", e.to_string()))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Handle::Remote(Remote {
            base: u.as_str().trim_end_matches('/').to_string(),
            admin_token,
            http,
        }))
    }

    pub async fn issue_key(&self, spec: KeySpec) -> Result<Value> {
        match self {
            Handle::Embedded(g) => Ok(g.issue_key(spec).await?.to_json(g.now_ms())),
            Handle::Remote(r) => {
                r.admin(reqwest::Method::POST, "/v1/keys", Some(spec_json(&spec)))
                    .await
            }
        }
    }

    pub async fn revoke(&self, key: &str) -> Result<()> {
        match self {
            Handle::Embedded(g) => g.revoke(key).await.map(|_| ()),
            Handle::Remote(r) => r
                .admin(
                    reqwest::Method::DELETE,
                    &format!("/v1/keys/{}", path_part(key)?),
                    None,
                )
                .await
                .map(|_| ()),
        }
    }

    pub async fn usage(&self, key: &str) -> Result<Value> {
        match self {
            Handle::Embedded(g) => Ok(g.key_status(key).await?.to_json()),
            Handle::Remote(r) => {
                r.admin(
                    reqwest::Method::GET,
                    &format!("/v1/keys/{}", path_part(key)?),
                    None,
                )
                .await
            }
        }
    }

    pub async fn list_keys(&self, run_id: Option<String>, active: bool) -> Result<Vec<Value>> {
        match self {
            Handle::Embedded(g) => Ok(g
                .list_keys(run_id, active, 10_000)
                .await?
                .iter()
                .map(KeyStatus::to_json)
                .collect()),
            Handle::Remote(r) => {
                let path = format!("/v1/keys?{}", list_query(run_id.as_deref(), active));
                array(r.admin(reqwest::Method::GET, &path, None).await?)
            }
        }
    }

    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<Value>> {
        match self {
            Handle::Embedded(g) => Ok(g.audit(query).await?.iter().map(|r| r.to_json()).collect()),
            Handle::Remote(r) => {
                let path = format!("/v1/audit?{}", audit_query(&query));
                array(r.admin(reqwest::Method::GET, &path, None).await?)
            }
        }
    }

    /// Send one vendor request with a vault key. Vendor answers of any status come back as a
    /// response; gateway refusals come back as errors.
    pub async fn request(
        &self,
        vault_key: &str,
        vendor: Option<Vendor>,
        method: &str,
        path: &str,
        headers: Vec<(String, String)>,
        body: RequestBody,
    ) -> Result<ClientResponse> {
        if !path.starts_with('/') {
            return Err(Error::invalid(
                "path",
                format!("{path:?} must start with /, e.g. /v1/charges"),
            ));
        }
        let mut map = HeaderMap::new();
        for (k, v) in &headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                Error::invalid("headers", format!("{k:?} is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                Error::invalid(
                    "headers",
                    format!("the value of {k} is not a valid header value"),
                )
            })?;
            map.append(name, value);
        }
        let (content_type, bytes) = encode_body(body)?;
        if let Some(ct) = content_type {
            map.entry(http::header::CONTENT_TYPE)
                .or_insert(HeaderValue::from_static(ct));
        }
        let (path_only, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (path.to_string(), None),
        };
        match self {
            Handle::Embedded(g) => {
                // The vault key travels as a value: the agent's headers never carry it here.
                let req = ProxyRequest {
                    vendor,
                    vault_key: Some(vault_key.to_string()),
                    method: method.to_ascii_uppercase(),
                    path: path_only,
                    query,
                    headers: map,
                    body: bytes,
                };
                match g.process(req).await {
                    Ok(r) => Ok(ClientResponse {
                        status: r.status,
                        headers: header_pairs(&r.headers),
                        body: r.body,
                        cost_micros: r.cost_micros,
                        remaining_micros: r
                            .headers
                            .get("vendorgate-remaining-usd")
                            .map(|_| r.remaining_micros),
                    }),
                    Err(refused) => Err(refused.error),
                }
            }
            Handle::Remote(r) => {
                // Bearer works on every vendor route: the server finds the vault key there
                // whatever the vendor's SDK would send.
                let mut auth =
                    HeaderValue::from_str(&format!("Bearer {vault_key}")).map_err(|_| {
                        Error::invalid(
                            "key",
                            "the vault key holds characters not allowed in a header",
                        )
                    })?;
                auth.set_sensitive(true);
                map.insert(http::header::AUTHORIZATION, auth);
                r.vendor_request(vendor, method, path, map, bytes).await
            }
        }
    }
}

// Query strings are built in plain functions: the serializer is not Send, and the
// Node binding needs every future here to be.
fn list_query(run_id: Option<&str>, active: bool) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(run) = run_id {
        q.append_pair("run_id", run);
    }
    if active {
        q.append_pair("active", "true");
    }
    q.finish()
}

fn audit_query(query: &AuditQuery) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(k) = &query.key_id {
        q.append_pair("key_id", k);
    }
    if let Some(run) = &query.run_id {
        q.append_pair("run_id", run);
    }
    if let Some(s) = query.since_ms {
        q.append_pair("since", &s.to_string());
    }
    if let Some(a) = query.after_id {
        q.append_pair("after_id", &a.to_string());
    }
    if query.limit > 0 {
        q.append_pair("limit", &query.limit.to_string());
    }
    q.finish()
}

fn path_part(key: &str) -> Result<String> {
    let k = key.trim();
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::invalid(
            "key",
            "must be a key id (key_…) or a vault key (vk_…)",
        ));
    }
    Ok(k.to_string())
}

fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(Error::Remote {
            reason: "upstream_error",
            status: 502,
            message: format!("the server answered with {other} instead of a list"),
            details: Value::Null,
        }),
    }
}

fn header_pairs(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect()
}

/// The admin API body for a key spec.
pub fn spec_json(spec: &KeySpec) -> Value {
    let mut v = json!({
        "vendor": spec.vendor,
        "allowed_endpoints": spec.allowed_endpoints,
        "expires_in": spec.expires_in_secs,
    });
    if let Some(m) = spec.max_usd {
        v["max_usd"] = json!(format_usd(m));
    }
    if let Some(d) = spec.daily_usd_cap {
        v["daily_usd_cap"] = json!(format_usd(d));
    }
    if let Some(r) = &spec.run_id {
        v["run_id"] = json!(r);
    }
    if !spec.metadata.is_null() {
        v["metadata"] = spec.metadata.clone();
    }
    if !spec.stripe_accounts.is_empty() {
        v["stripe_accounts"] = json!(spec.stripe_accounts);
    }
    v
}

/// Encode a body; returns its content type.
pub fn encode_body(body: RequestBody) -> Result<(Option<&'static str>, Bytes)> {
    Ok(match body {
        RequestBody::Empty => (None, Bytes::new()),
        RequestBody::Raw(b) => (None, b),
        RequestBody::Json(v) => (Some("application/json"), Bytes::from(v.to_string())),
        RequestBody::Form(v) => {
            let obj = v.as_object().ok_or_else(|| {
                Error::invalid("form", "must be a mapping of field names to values")
            })?;
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, val) in obj {
                flatten(&mut ser, k, val)?;
            }
            (
                Some("application/x-www-form-urlencoded"),
                Bytes::from(ser.finish()),
            )
        }
    })
}

fn flatten(ser: &mut form_urlencoded::Serializer<'_, String>, key: &str, v: &Value) -> Result<()> {
    match v {
        Value::Null => {}
        Value::Bool(b) => {
            ser.append_pair(key, if *b { "true" } else { "false" });
        }
        Value::Number(n) => {
            ser.append_pair(key, &n.to_string());
        }
        Value::String(s) => {
            ser.append_pair(key, s);
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(ser, &format!("{key}[{i}]"), item)?;
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                flatten(ser, &format!("{key}[{k}]"), item)?;
            }
        }
    }
    Ok(())
}

/// Read a `Vendorgate-*-Usd` header back into micro-USD.
fn usd_header(h: &reqwest::header::HeaderMap, name: &str) -> Option<i64> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| parse_usd(name, s).ok())
}

impl Remote {
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.admin_token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| unreachable_server(&self.base, &e))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| unreachable_server(&self.base, &e))?;
        if status == 204 {
            return Ok(Value::Null);
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let err = v.get("error").cloned().unwrap_or(Value::Null);
        let code = err
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("upstream_error")
            .to_string();
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("the server answered {status}"));
        let reason = match code.as_str() {
            // The admin API's own 401 is about the admin token, not a vault key.
            "unauthorized" | "admin_disabled" => "unauthorized",
            other => other,
        };
        Err(Error::from_remote(reason, status, message, err))
    }

    async fn vendor_request(
        &self,
        vendor: Option<Vendor>,
        method: &str,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<ClientResponse> {
        let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::invalid("method", format!("{method:?} is not an HTTP method")))?;
        let resp = self
            .http
            .request(m, vendor_url(&self.base, vendor, path))
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable_server(&self.base, &e))?;
        let status = resp.status().as_u16();
        let refusal = resp
            .headers()
            .get("vendorgate-refusal")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let cost_micros = usd_header(resp.headers(), "vendorgate-cost-usd").unwrap_or(0);
        let remaining_micros = usd_header(resp.headers(), "vendorgate-remaining-usd");
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect();
        let body = resp
            .bytes()
            .await
            .map_err(|e| unreachable_server(&self.base, &e))?;
        if let Some(reason) = refusal {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let details = v.get("vendorgate").cloned().unwrap_or(Value::Null);
            let message = details
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("refused by the gateway")
                .to_string();
            return Err(Error::from_remote(&reason, status, message, details));
        }
        Ok(ClientResponse {
            status,
            headers,
            body,
            cost_micros,
            remaining_micros,
        })
    }
}

/// A vendor route on the server: `/{vendor}/path`, or `/path` when the vendor is left to the
/// key (the server then takes it from the vault key).
fn vendor_url(base: &str, vendor: Option<Vendor>, path: &str) -> String {
    match vendor {
        Some(v) => format!("{base}/{}{path}", v.as_str()),
        None => format!("{base}{path}"),
    }
}

fn unreachable_server(base: &str, e: &reqwest::Error) -> Error {
    Error::Remote {
        reason: "upstream_error",
        status: 502,
        message: format!(
            "could not reach the vendorgate server at {base}: {}",
            if e.is_timeout() {
                "timed out".to_string()
            } else {
                e.to_string()
            }
        ),
        details: Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn futures_are_send_for_the_node_binding() {
        let h = Handle::connect("http://127.0.0.1:9", None).unwrap();
        assert_send(&h.list_keys(None, true));
        assert_send(&h.audit(AuditQuery::default()));
        assert_send(&h.request(
            "vk_x",
            Some(Vendor::Stripe),
            "GET",
            "/v1/x",
            vec![],
            RequestBody::Empty,
        ));
    }

    #[test]
    fn forms_encode_stripe_style() {
        let (ct, b) = encode_body(RequestBody::Form(json!({"amount": 100, "confirm": true, "metadata": {"run": "r 1"}, "expand": ["customer"]}))).unwrap();
        assert_eq!(ct, Some("application/x-www-form-urlencoded"));
        let s = String::from_utf8(b.to_vec()).unwrap();
        assert!(s.contains("amount=100"));
        assert!(s.contains("confirm=true"));
        assert!(s.contains("metadata%5Brun%5D=r+1"));
        assert!(s.contains("expand%5B0%5D=customer"));
    }
}
