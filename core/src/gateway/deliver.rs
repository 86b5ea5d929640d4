//! The webhook delivery worker: claims due deliveries from the store's outbox, POSTs each one
//! signed (Standard Webhooks), and records the outcome with an audit row in one
//! transaction. A delivery is claimed for a lease, so a worker killed mid-attempt delays it
//! by the lease and never loses it; several instances share the outbox (PostgreSQL skips
//! rows another worker holds). Delivery is at least once: a receiver that answered but
//! whose answer was not recorded sees the same `webhook-id` again, and should dedupe on it.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::shared::Shared;
use super::Gateway;
use crate::audit::{format_time_ms, AuditRow};
use crate::signing::sign;
use crate::store::{Delivery, DeliveryOutcome, DeliveryState, WebhookFormat};

/// How often the worker looks for due deliveries when the last look found none (an idle
/// gateway's worker costs the money path one short read a second: a 250 ms poll showed in
/// its p99), and when it found some (a backlog drains quickly).
const POLL_IDLE: Duration = Duration::from_secs(1);
const POLL_BUSY: Duration = Duration::from_millis(50);
/// Deliveries claimed (and sent concurrently) per poll.
const BATCH: usize = 16;

impl Gateway {
    /// Start delivering webhook events on the current tokio runtime. The task ends when the
    /// last clone of this gateway is dropped.
    pub fn spawn_deliveries(&self) -> tokio::task::JoinHandle<()> {
        let shared = Arc::downgrade(&self.shared);
        let client = reqwest::Client::builder()
            .timeout(self.shared.config.webhook_timeout)
            .connect_timeout(self.shared.config.connect_timeout)
            // A redirect is a failure (Standard Webhooks): the receiver must be the URL given.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vendorgate-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        tokio::spawn(run(shared, client))
    }
}

async fn run(shared: Weak<Shared>, client: reqwest::Client) {
    let mut pause = POLL_IDLE;
    loop {
        tokio::time::sleep(pause).await;
        let Some(s) = shared.upgrade() else { return };
        let now = s.now_ms();
        let lease = (s.config.webhook_timeout + Duration::from_secs(15)).as_millis() as i64;
        let due = match s
            .store
            .blocking_op("claim_deliveries", move |st| {
                st.claim_deliveries(now, lease, BATCH)
            })
            .await
        {
            Ok(d) => d,
            // Logged by the store face; the rows wait in the outbox.
            Err(_) => {
                pause = POLL_IDLE;
                continue;
            }
        };
        pause = if due.is_empty() { POLL_IDLE } else { POLL_BUSY };
        let mut set = tokio::task::JoinSet::new();
        for d in due {
            let (s, client) = (s.clone(), client.clone());
            set.spawn(async move {
                let outcome = attempt(&s, &client, &d).await;
                // Logged by the store face; the claim's lease runs out and it is sent again.
                let _ = s
                    .store
                    .blocking_op("finish_delivery", move |st| st.finish_delivery(&outcome))
                    .await;
            });
        }
        while set.join_next().await.is_some() {}
    }
}

async fn attempt(s: &Shared, client: &reqwest::Client, d: &Delivery) -> DeliveryOutcome {
    let started = Instant::now();
    let ts = s.now_ms() / 1000;
    let body = match d.webhook.format {
        WebhookFormat::Standard => d.payload.clone(),
        WebhookFormat::Slack => json!({ "text": slack_text(&d.payload) }).to_string(),
    };
    let answer = match sign(&d.webhook.secret, &d.event_id, ts, body.as_bytes()) {
        None => Err("the webhook's secret is not a whsec_ secret".to_string()),
        Some(signature) => client
            .post(&d.webhook.url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.event_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map(|r| {
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                (r.status().as_u16(), retry_after)
            })
            // Never the URL in the message: a Slack URL is itself a secret.
            .map_err(|e| describe(&e)),
    };
    let now = s.now_ms();
    let retries = &s.config.webhook_retry;
    let attempts = retries.len() as u32 + 1;
    let wait = |retry_after: Option<u64>| {
        let planned = retries
            .get(d.attempt.saturating_sub(1) as usize)
            .copied()
            .unwrap_or_default();
        let asked = Duration::from_secs(retry_after.unwrap_or(0).min(86_400));
        planned.max(asked)
    };
    let (state, status, error, disable, next_at) = match answer {
        Ok((st, _)) if (200..300).contains(&st) => {
            (DeliveryState::Delivered, Some(st), None, None, now)
        }
        Ok((410, _)) => (
            DeliveryState::Failed,
            Some(410),
            Some("the receiver answered 410 Gone: the webhook is disabled".to_string()),
            Some("the receiver answered 410 Gone".to_string()),
            now,
        ),
        Ok((st, retry_after)) => {
            let why = format!("the receiver answered {st}");
            if d.attempt < attempts {
                let next = now + wait(retry_after).as_millis() as i64;
                (DeliveryState::Pending, Some(st), Some(why), None, next)
            } else {
                (DeliveryState::Failed, Some(st), Some(why), None, now)
            }
        }
        Err(why) if d.attempt < attempts => {
            let next = now + wait(None).as_millis() as i64;
            (DeliveryState::Pending, None, Some(why), None, next)
        }
        Err(why) => (DeliveryState::Failed, None, Some(why), None, now),
    };
    let (decision, message) = match state {
        DeliveryState::Delivered => (
            "webhook_delivered",
            format!(
                "{} {} delivered (attempt {} of {attempts})",
                d.event_type, d.event_id, d.attempt
            ),
        ),
        DeliveryState::Pending => (
            "webhook_retrying",
            format!(
                "{} {} not delivered (attempt {} of {attempts}): {}; next attempt at {}",
                d.event_type,
                d.event_id,
                d.attempt,
                error.as_deref().unwrap_or(""),
                format_time_ms(next_at)
            ),
        ),
        DeliveryState::Failed => (
            "webhook_failed",
            format!(
                "{} {} given up after attempt {} of {attempts}: {}",
                d.event_type,
                d.event_id,
                d.attempt,
                error.as_deref().unwrap_or("")
            ),
        ),
    };
    let run_id = serde_json::from_str::<Value>(&d.payload)
        .ok()
        .and_then(|v| v["data"]["run_id"].as_str().map(str::to_string));
    let audit = AuditRow {
        time_ms: now,
        key_id: d.key_id.clone(),
        run_id,
        vendor: None,
        method: "POST".into(),
        endpoint: format!("webhook {}", d.webhook.id),
        decision: decision.into(),
        status: status.unwrap_or(0),
        upstream_status: status,
        latency_us: started.elapsed().as_micros() as i64,
        upstream_latency_us: Some(started.elapsed().as_micros() as i64),
        message: Some(message),
        ..AuditRow::default()
    };
    match state {
        DeliveryState::Delivered => {
            tracing::debug!(event_id = %d.event_id, webhook_id = %d.webhook.id, "webhook delivered")
        }
        _ => {
            tracing::warn!(event_id = %d.event_id, webhook_id = %d.webhook.id, attempt = d.attempt, error = error.as_deref().unwrap_or(""), "webhook not delivered")
        }
    }
    DeliveryOutcome {
        delivery_id: d.id,
        state,
        next_at_ms: next_at,
        status,
        error,
        disable,
        now_ms: now,
        audit,
    }
}

/// What went wrong with an attempt, without the URL.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer within webhook_timeout_ms".into()
    } else if e.is_connect() {
        "could not connect to the receiver".into()
    } else {
        "the request to the receiver failed".into()
    }
}

/// One line a person reads in a Slack channel.
pub(crate) fn slack_text(payload: &str) -> String {
    let v: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    let d = &v["data"];
    let s = |k: &str| d[k].as_str().unwrap_or("?").to_string();
    let who = match d["run_id"].as_str() {
        Some(r) => format!("key {} (run {r})", s("key_id")),
        None => format!("key {}", s("key_id")),
    };
    let scope = match d["budget"].as_str() {
        Some(b) => format!("budget {b}"),
        None => who.clone(),
    };
    match v["type"].as_str().unwrap_or("") {
        crate::events::THRESHOLD_CROSSED => format!(
            ":warning: vendorgate: {scope} reached {}% of its {} (${} of ${} counted; {who})",
            d["threshold"]
                .as_f64()
                .map_or("?".into(), |t| format!("{}", (t * 100.0).round())),
            s("cap"),
            s("counted_usd"),
            s("cap_usd"),
        ),
        crate::events::CAP_REACHED => format!(
            ":no_entry: vendorgate: {scope} hit its {} of ${}: a ${} call was refused ({who}, {})",
            s("cap"),
            s("cap_usd"),
            s("refused_estimate_usd"),
            s("endpoint"),
        ),
        crate::events::SPEND_UNKNOWN => format!(
            ":question: vendorgate: {who} made a call whose cost is unknown ({}), counted at ${}",
            s("endpoint"),
            s("counted_usd"),
        ),
        crate::events::KEY_REVOKED => format!(":lock: vendorgate: {who} was revoked"),
        crate::events::DUPLICATE_BLOCKED => format!(
            ":repeat: vendorgate: {who} repeated {} — refused (first call at {})",
            s("endpoint"),
            d["first_call"]["time"].as_str().unwrap_or("?"),
        ),
        other => format!("vendorgate: {other} for {who}"),
    }
}
