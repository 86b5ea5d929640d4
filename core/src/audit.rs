//! One audit row per request that reaches the pipeline, refusals included. Never a secret,
//! never a body.

use serde_json::{json, Value};

use crate::money::format_usd;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub time_ms: i64,
    pub key_id: Option<String>,
    pub run_id: Option<String>,
    pub vendor: Option<String>,
    pub method: String,
    /// Canonical path, or the raw path (truncated) when it could not be canonicalized.
    pub endpoint: String,
    /// `forwarded` or the refusal reason.
    pub decision: String,
    /// HTTP status returned to the agent.
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub estimate_micros: i64,
    pub cost_micros: i64,
    pub money_state: Option<String>,
    /// Total time in the gateway, microseconds.
    pub latency_us: i64,
    /// Time waiting on the vendor, microseconds.
    pub upstream_latency_us: Option<i64>,
    pub idempotency_key: Option<String>,
    pub vendor_request_id: Option<String>,
    /// Human-readable reason for a refusal.
    pub message: Option<String>,
    /// The ledger row this call's money is counted in (a call that reserved), so the
    /// `first_call.spend_id` of a 409 or the `spend_id` of a `spend.unknown` event leads
    /// to the call's audit row. Journals written before it existed read as none.
    #[serde(default)]
    pub spend_id: Option<i64>,
}

pub fn format_time_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// Latency (not money) shown as milliseconds with microsecond precision.
fn us_to_ms(us: i64) -> Value {
    json!(us as f64 / 1000.0)
}

impl AuditRow {
    /// The row as the admin API and CLI show it (DESIGN.md, `GET /v1/audit`).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "time": format_time_ms(self.time_ms),
            "key_id": self.key_id,
            "run_id": self.run_id,
            "vendor": self.vendor,
            "method": self.method,
            "endpoint": self.endpoint,
            "decision": self.decision,
            "status": self.status,
            "upstream_status": self.upstream_status,
            "estimate_usd": format_usd(self.estimate_micros),
            "cost_usd": format_usd(self.cost_micros),
            "money_state": self.money_state,
            "latency_ms": us_to_ms(self.latency_us),
            "upstream_latency_ms": self.upstream_latency_us.map(us_to_ms),
            "idempotency_key": self.idempotency_key,
            "vendor_request_id": self.vendor_request_id,
            "message": self.message,
            "spend_id": self.spend_id,
        })
    }
}
