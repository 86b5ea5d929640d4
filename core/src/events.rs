//! Events the gateway tells operators about (webhooks), built here, stored by the store in
//! the same transaction as whatever caused them, delivered by `gateway/deliver.rs`.
//!
//! An event's body is fixed when it is made — `{type, timestamp, data}`, the Standard
//! Webhooks envelope — so every delivery attempt signs the same bytes. Events that must fire
//! once carry a `dedupe` key; the store keeps at most one event per key, ever (that is what
//! makes "each threshold once per cap window" survive a restart and several instances).

use serde_json::{json, Value};

use crate::alerts::{bp_json, Crossing};
use crate::audit::format_time_ms;
use crate::ledger::CapWindow;
use crate::money::format_usd;

/// Every event type, as named in the contract.
pub const EVENT_TYPES: [&str; 5] = [
    THRESHOLD_CROSSED,
    CAP_REACHED,
    SPEND_UNKNOWN,
    KEY_REVOKED,
    DUPLICATE_BLOCKED,
];
pub const THRESHOLD_CROSSED: &str = "spend.threshold_crossed";
pub const CAP_REACHED: &str = "spend.cap_reached";
pub const SPEND_UNKNOWN: &str = "spend.unknown";
pub const KEY_REVOKED: &str = "key.revoked";
pub const DUPLICATE_BLOCKED: &str = "request.duplicate_blocked";

/// An event to store (and fan out to the webhooks subscribed to its type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// `evt_…`: the Standard Webhooks `webhook-id`, the same on every attempt.
    pub id: String,
    pub kind: &'static str,
    /// At most one event per dedupe key is ever stored.
    pub dedupe: Option<String>,
    pub time_ms: i64,
    pub key_id: Option<String>,
    /// The whole body as delivered: `{"type", "timestamp", "data"}`.
    pub payload: String,
}

/// Who the event is about: the key and its run.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub key_id: &'a str,
    pub run_id: Option<&'a str>,
    pub vendor: &'a str,
}

fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    format!("evt_{}", hex::encode(b))
}

fn make(
    kind: &'static str,
    dedupe: Option<String>,
    now_ms: i64,
    who: Subject<'_>,
    mut data: Value,
) -> NewEvent {
    data["key_id"] = json!(who.key_id);
    data["run_id"] = json!(who.run_id);
    data["vendor"] = json!(who.vendor);
    let payload = json!({
        "type": kind,
        "timestamp": format_time_ms(now_ms),
        "data": data,
    });
    NewEvent {
        id: new_id(),
        kind,
        dedupe,
        time_ms: now_ms,
        key_id: Some(who.key_id.to_string()),
        payload: payload.to_string(),
    }
}

fn cap_field(window: CapWindow) -> &'static str {
    match window {
        CapWindow::Run => "max_usd",
        CapWindow::Daily => "daily_usd_cap",
    }
}

/// The cap's window as part of a dedupe key: the UTC day for a daily cap, `run` for a
/// key's whole life (a budget's run cap never resets either).
fn period(window: CapWindow, day: &str) -> &str {
    match window {
        CapWindow::Run => "run",
        CapWindow::Daily => day,
    }
}

fn scope(budget: Option<&str>, key_id: &str) -> String {
    match budget {
        Some(b) => format!("budget:{b}"),
        None => format!("key:{key_id}"),
    }
}

/// A threshold of a cap was reached (once per scope, cap, period and threshold).
pub fn threshold_crossed(now_ms: i64, day: &str, who: Subject<'_>, c: &Crossing) -> NewEvent {
    let dedupe = format!(
        "threshold:{}:{}:{}:{}",
        scope(c.budget.as_deref(), who.key_id),
        cap_field(c.window),
        period(c.window, day),
        c.bp
    );
    make(
        THRESHOLD_CROSSED,
        Some(dedupe),
        now_ms,
        who,
        json!({
            "budget": c.budget,
            "cap": cap_field(c.window),
            "period": period(c.window, day),
            "threshold": bp_json(c.bp),
            "cap_usd": format_usd(c.cap),
            "counted_usd": format_usd(c.counted),
            "remaining_usd": format_usd((c.cap - c.counted).max(0)),
        }),
    )
}

/// A call was refused for a cap (once per scope, cap and period: the first refusal).
#[allow(clippy::too_many_arguments)]
pub fn cap_reached(
    now_ms: i64,
    day: &str,
    who: Subject<'_>,
    budget: Option<&str>,
    window: CapWindow,
    cap: i64,
    spent: i64,
    estimate: i64,
    endpoint: &str,
) -> NewEvent {
    let dedupe = format!(
        "cap:{}:{}:{}",
        scope(budget, who.key_id),
        cap_field(window),
        period(window, day)
    );
    make(
        CAP_REACHED,
        Some(dedupe),
        now_ms,
        who,
        json!({
            "budget": budget,
            "cap": cap_field(window),
            "period": period(window, day),
            "cap_usd": format_usd(cap),
            "counted_usd": format_usd(spent),
            "refused_estimate_usd": format_usd(estimate),
            "endpoint": endpoint,
        }),
    )
}

/// A call may have moved money the gateway could not confirm (counted at its estimate).
pub fn spend_unknown(
    now_ms: i64,
    who: Subject<'_>,
    spend_id: i64,
    endpoint: &str,
    counted: i64,
    why: &str,
) -> NewEvent {
    make(
        SPEND_UNKNOWN,
        Some(format!("unknown:{spend_id}")),
        now_ms,
        who,
        json!({
            "spend_id": spend_id,
            "endpoint": endpoint,
            "counted_usd": format_usd(counted),
            "reason": why,
        }),
    )
}

/// A key was revoked (once per key).
pub fn key_revoked(now_ms: i64, who: Subject<'_>) -> NewEvent {
    make(
        KEY_REVOKED,
        Some(format!("revoked:{}", who.key_id)),
        now_ms,
        who,
        json!({ "revoked_at": format_time_ms(now_ms) }),
    )
}

/// A repeated money-moving call was refused (once per first call, however many repeats).
pub fn duplicate_blocked(
    now_ms: i64,
    who: Subject<'_>,
    endpoint: &str,
    first_spend: i64,
    first_ms: i64,
) -> NewEvent {
    make(
        DUPLICATE_BLOCKED,
        Some(format!("duplicate:{}:{first_spend}", who.key_id)),
        now_ms,
        who,
        json!({
            "endpoint": endpoint,
            "first_call": { "spend_id": first_spend, "time": format_time_ms(first_ms) },
        }),
    )
}

/// The types a webhook subscribes to, as kept in a store column: `" a b "` (spaces around
/// each, so a store can match `" type "` with a substring test); `" * "` for every type.
pub fn types_column(types: &[String]) -> String {
    if types.is_empty() || types.iter().any(|t| t == "*") {
        return " * ".into();
    }
    format!(" {} ", types.join(" "))
}

/// The column form back (empty: every type).
pub fn types_from_column(s: &str) -> Vec<String> {
    s.split_whitespace()
        .filter(|t| *t != "*")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_standard_webhooks_envelope() {
        let who = Subject {
            key_id: "key_1",
            run_id: Some("run-1"),
            vendor: "stripe",
        };
        let e = key_revoked(1_764_000_000_000, who);
        assert!(e.id.starts_with("evt_") && e.id.len() == 28);
        let v: Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(v["type"], "key.revoked");
        assert_eq!(v["data"]["key_id"], "key_1");
        assert_eq!(v["data"]["run_id"], "run-1");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(e.dedupe.as_deref(), Some("revoked:key_1"));
        assert_eq!(types_column(&[]), " * ");
        let t = types_column(&["key.revoked".into(), "spend.unknown".into()]);
        assert!(t.contains(" key.revoked ") && t.contains(" spend.unknown "));
        assert_eq!(types_from_column(&t).len(), 2);
    }
}
