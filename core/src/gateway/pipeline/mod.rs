//! The request pipeline, one file per phase, in the order `run` calls them:
//!
//! | phase | file | refuses with |
//! |---|---|---|
//! | authenticate | `authenticate.rs` | 401, 403 wrong vendor, 413 |
//! | admit | `admit.rs` | 400 path / method, 403 allowlist, 503 vendor not configured |
//! | price | `price.rs` | 403 credential, 400 cannot price, 402 cap, 409 idempotency |
//! | forward | `forward.rs` | 502 / 504 from the vendor link |
//! | settle | `settle.rs` | (never: the vendor's answer goes back) |
//! | record | `record.rs` | (always runs: the audit row and the money state of a failure) |
//!
//! Every phase reads and fills one [`Call`]; none of them writes to the store except through
//! `price` (the reservation) and `record` (everything else, in one transaction).

use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;

use super::Shared;
use crate::audit::AuditRow;
use crate::cost::RequestView;
use crate::error::Error;
use crate::vendors::Vendor;

mod admit;
mod authenticate;
mod forward;
mod price;
mod record;
mod settle;

/// One request as the edge received it.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    /// Vendor from a `/{vendor}/` route prefix; `None` takes it from the vault key.
    pub vendor: Option<Vendor>,
    /// The vault key, as the edge found it (the server: where the vendor's SDK puts its key,
    /// see `credentials::vault_key_from`; the bindings: the value they were given).
    pub vault_key: Option<String>,
    pub method: String,
    /// Raw path (percent-encoded as sent), without the vendor prefix or the query.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A forwarded answer, passed through unchanged plus the gateway's two headers.
#[derive(Debug, Clone)]
pub struct ProxyResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub cost_micros: i64,
    pub remaining_micros: i64,
}

/// A refused request: the error and the vendor whose error shape to answer in.
#[derive(Debug)]
pub struct Refused {
    pub vendor: Option<Vendor>,
    pub error: Error,
}

impl Refused {
    /// Render the refusal as the vendor's own error answer.
    pub fn to_response(&self) -> ProxyResponse {
        let (status, headers, body) = crate::refusal::render(self.vendor, &self.error);
        ProxyResponse {
            status,
            headers,
            body,
            cost_micros: 0,
            remaining_micros: 0,
        }
    }
}

/// What the pipeline knows about one request so far. Each phase fills its part.
pub(crate) struct Call<'r> {
    pub req: &'r ProxyRequest,
    pub started: Instant,
    /// The audit row, filled as the call goes; `record` writes it.
    pub audit: AuditRow,
    /// Whose error shape a refusal answers in: the routed vendor, else the key's.
    pub shape: Option<Vendor>,
    /// Canonical upper-case method and path (set by `admit`).
    pub method: String,
    pub path: String,
    /// µUSD reserved for the call (0 if free).
    pub estimate: i64,
    /// The vendor object the estimate was made for, if any.
    pub object_id: Option<String>,
    /// The reservation, once `price` made one.
    pub spend: Option<i64>,
    /// The key's id and caps, once authenticated (for the `Vendorgate-Remaining-Usd` header).
    pub key: Option<(String, crate::ledger::Caps)>,
}

impl<'r> Call<'r> {
    fn start(req: &'r ProxyRequest, now_ms: i64) -> Self {
        Call {
            req,
            started: Instant::now(),
            audit: AuditRow {
                time_ms: now_ms,
                vendor: req.vendor.map(|v| v.as_str().to_string()),
                method: req.method.chars().take(16).collect(),
                endpoint: req.path.chars().take(256).collect(),
                idempotency_key: header(&req.headers, "idempotency-key")
                    .map(|s| s.chars().take(255).collect()),
                ..AuditRow::default()
            },
            shape: req.vendor,
            method: String::new(),
            path: String::new(),
            estimate: 0,
            object_id: None,
            spend: None,
            key: None,
        }
    }

    /// The query string, if there is a non-empty one.
    fn query(&self) -> Option<&'r str> {
        self.req.query.as_deref().filter(|q| !q.is_empty())
    }

    /// The request as the cost models read it (canonical method and path, set by `admit`).
    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            path: &self.path,
            query: self.query(),
            content_type: header(&self.req.headers, "content-type"),
            body: &self.req.body,
        }
    }
}

/// The phases in order. Whatever happens, `record` runs last and writes the audit row.
pub(crate) async fn run(
    s: &Shared,
    http: &reqwest::Client,
    req: ProxyRequest,
) -> Result<ProxyResponse, Refused> {
    let mut call = Call::start(&req, s.now_ms());
    let outcome = async {
        let key = authenticate::authenticate(s, &mut call).await?;
        let creds = admit::admit(s, &key, &mut call)?;
        price::price(s, &key, &mut call).await?;
        let answer = forward::forward(s, http, &key, creds, &mut call).await?;
        Ok(settle::settle(s, &key, creds, &mut call, answer))
    }
    .await;
    record::record(s, call, outcome).await
}

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}
