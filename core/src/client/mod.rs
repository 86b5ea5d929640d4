//! One client API over both modes, shared by the Python and Node bindings: embedded (the
//! pipeline in-process) and connect (a running `vendorgate` server through its admin API and
//! vendor routes). Same methods, same errors.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::gateway::{Gateway, KeyStatus, ProxyRequest};
use crate::keys::KeySpec;
use crate::money::format_usd;
use crate::store::AuditQuery;
use crate::vendors::Vendor;

mod body;
mod remote;

/// The vendor a binding's request names: an empty string leaves it to the vault key.
pub fn vendor_arg(s: &str) -> Result<Option<Vendor>> {
    if s.is_empty() {
        return Ok(None);
    }
    Ok(Some(s.parse()?))
}

/// Rows `audit()` returns when the caller names no limit, in both bindings.
pub const AUDIT_DEFAULT_LIMIT: usize = 10_000;
/// Most rows one `audit()` call returns.
pub const AUDIT_MAX_LIMIT: usize = 10_000;

pub use body::{encode_body, RequestBody};
pub use remote::Remote;

/// A vendor answer as the bindings see it.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub cost_micros: i64,
    pub remaining_micros: Option<i64>,
}

/// Embedded or connected.
#[derive(Clone)]
pub enum Handle {
    Embedded(Gateway),
    Remote(Remote),
}

impl Handle {
    pub fn connect(url: &str, admin_token: Option<String>) -> Result<Handle> {
        Remote::connect(url, admin_token).map(Handle::Remote)
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

    /// Create a budget from the admin API's JSON body; returns it as JSON.
    pub async fn create_budget(&self, spec: Value) -> Result<Value> {
        match self {
            Handle::Embedded(g) => {
                let b = crate::store::Budget::from_json(&spec, g.now_ms())?;
                Ok(g.create_budget(b).await?.to_json())
            }
            Handle::Remote(r) => {
                r.admin(reqwest::Method::POST, "/v1/budgets", Some(spec))
                    .await
            }
        }
    }

    /// A budget with its spend and member keys.
    pub async fn budget(&self, name: &str) -> Result<Value> {
        match self {
            Handle::Embedded(g) => Ok(g.budget(name).await?.to_json()),
            Handle::Remote(r) => {
                r.admin(
                    reqwest::Method::GET,
                    &format!("/v1/budgets/{}", path_part(name)?),
                    None,
                )
                .await
            }
        }
    }

    pub async fn budgets(&self) -> Result<Vec<Value>> {
        match self {
            Handle::Embedded(g) => Ok(g.budgets().await?.iter().map(|b| b.to_json()).collect()),
            Handle::Remote(r) => array(r.admin(reqwest::Method::GET, "/v1/budgets", None).await?),
        }
    }

    /// Create a webhook from the admin API's JSON body; the answer holds its signing secret,
    /// the only time it is shown.
    pub async fn create_webhook(&self, spec: Value) -> Result<Value> {
        match self {
            Handle::Embedded(g) => Ok(g.create_webhook(&spec).await?.created_json()),
            Handle::Remote(r) => {
                r.admin(reqwest::Method::POST, "/v1/webhooks", Some(spec))
                    .await
            }
        }
    }

    /// The webhooks, without their secrets.
    pub async fn webhooks(&self) -> Result<Vec<Value>> {
        match self {
            Handle::Embedded(g) => Ok(g.webhooks().await?.iter().map(|w| w.to_json()).collect()),
            Handle::Remote(r) => array(r.admin(reqwest::Method::GET, "/v1/webhooks", None).await?),
        }
    }

    /// Delete a webhook; its pending deliveries are not sent.
    pub async fn delete_webhook(&self, id: &str) -> Result<()> {
        match self {
            Handle::Embedded(g) => g.delete_webhook(id).await,
            Handle::Remote(r) => r
                .admin(
                    reqwest::Method::DELETE,
                    &format!("/v1/webhooks/{}", path_part(id)?),
                    None,
                )
                .await
                .map(|_| ()),
        }
    }

    /// The newest events (warnings, refusals, revocations) with their deliveries.
    pub async fn events(&self, limit: usize) -> Result<Vec<Value>> {
        match self {
            Handle::Embedded(g) => Ok(g.events(limit).await?.iter().map(|e| e.to_json()).collect()),
            Handle::Remote(r) => array(
                r.admin(
                    reqwest::Method::GET,
                    &format!("/v1/events?limit={limit}"),
                    None,
                )
                .await?,
            ),
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

    /// Audit rows, oldest first. A `limit` of 0 asks for the default: the newest
    /// [`AUDIT_DEFAULT_LIMIT`] rows; no call returns more than [`AUDIT_MAX_LIMIT`].
    pub async fn audit(&self, mut query: AuditQuery) -> Result<Vec<Value>> {
        query.limit = match query.limit {
            0 => AUDIT_DEFAULT_LIMIT,
            n => n.min(AUDIT_MAX_LIMIT),
        };
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

impl Handle {
    /// Measurement aid for both bindings' overhead benchmarks: `n` bodiless requests one
    /// after another from Rust; the seconds they took. An answer of 400 or more stops it (a
    /// benchmark of refusals would measure something else).
    pub async fn timed_requests(
        &self,
        vault_key: &str,
        vendor: Option<Vendor>,
        method: &str,
        path: &str,
        n: usize,
    ) -> Result<f64> {
        let started = std::time::Instant::now();
        for _ in 0..n {
            let r = self
                .request(vault_key, vendor, method, path, vec![], RequestBody::Empty)
                .await?;
            if r.status >= 400 {
                return Err(Error::BadRequest(format!(
                    "benchmark request answered {}",
                    r.status
                )));
            }
        }
        Ok(started.elapsed().as_secs_f64())
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
    if let Some(w) = spec.duplicate_window_secs {
        v["duplicate_window"] = json!(w);
    }
    if !spec.budgets.is_empty() {
        v["budgets"] = json!(spec.budgets);
    }
    if !spec.alert_at.is_empty() {
        let fractions: Vec<Value> = spec
            .alert_at
            .iter()
            .map(|bp| crate::alerts::bp_json(*bp))
            .collect();
        v["alert_at"] = json!(fractions);
    }
    v
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
}
