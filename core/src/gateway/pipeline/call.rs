//! The `Call`: what the pipeline knows about one request so far. Each phase fills its part.

use std::time::Instant;

use http::HeaderMap;

use crate::audit::AuditRow;
use crate::cost::RequestView;
use crate::events::{NewEvent, Subject};
use crate::gateway::request::ProxyRequest;
use crate::ledger::Caps;
use crate::vendors::Vendor;

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
    /// What the call does, for the duplicate-action guard (money-moving calls only).
    pub action: Option<[u8; 32]>,
    /// The reservation, once `price` made one.
    pub spend: Option<i64>,
    /// The key's id and caps, once authenticated (for the `Vendorgate-Remaining-Usd` header).
    pub key: Option<(String, Caps)>,
    /// Events the call caused, stored by `record` with its audit row.
    pub events: Vec<NewEvent>,
}

impl<'r> Call<'r> {
    pub fn start(req: &'r ProxyRequest, now_ms: i64) -> Self {
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
            action: None,
            spend: None,
            key: None,
            events: Vec::new(),
        }
    }

    /// Who an event about this call is about (`None` before the key is known).
    pub fn subject(&self) -> Option<Subject<'_>> {
        let (key_id, _) = self.key.as_ref()?;
        Some(Subject {
            key_id,
            run_id: self.audit.run_id.as_deref(),
            vendor: self.audit.vendor.as_deref().unwrap_or(""),
        })
    }

    /// The query string, if there is a non-empty one.
    pub fn query(&self) -> Option<&'r str> {
        self.req.query.as_deref().filter(|q| !q.is_empty())
    }

    /// The request as the cost models read it (canonical method and path, set by `admit`).
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            path: &self.path,
            query: self.query(),
            content_type: header(&self.req.headers, "content-type"),
            body: &self.req.body,
        }
    }
}

pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}
