//! Webhooks as the admin API sees them: create (the secret is shown once), list, delete, and
//! the stored events with their deliveries. Delivery itself is `deliver.rs`.

use serde_json::{json, Value};

use super::Gateway;
use crate::audit::format_time_ms;
use crate::error::{Error, Result};
use crate::events::EVENT_TYPES;
use crate::signing::new_secret;
use crate::store::{StoredEvent, Webhook, WebhookFormat};

/// Most webhooks one gateway keeps (each event is queued for every one of them).
pub const MAX_WEBHOOKS: usize = 50;
/// Most events one read of the event list returns.
pub const MAX_EVENTS: usize = 1000;

impl Webhook {
    /// A webhook from the admin API's JSON body (`POST /v1/webhooks`), with a new id and
    /// secret.
    pub fn from_json(v: &Value, now_ms: i64) -> Result<Webhook> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid("body", "must be a JSON object"))?;
        const KNOWN: [&str; 3] = ["url", "events", "format"];
        if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Error::invalid(
                k,
                format!("unknown field; known fields are {}", KNOWN.join(", ")),
            ));
        }
        let url = match obj.get("url") {
            Some(Value::String(s)) => s.trim().to_string(),
            _ => {
                return Err(Error::invalid(
                    "url",
                    "is required: the http(s) URL events are POSTed to",
                ))
            }
        };
        let parsed = url::Url::parse(&url)
            .map_err(|e| Error::invalid("url", format!("is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::invalid(
                "url",
                "must be an http:// or https:// URL with a host",
            ));
        }
        if url.len() > 2048 {
            return Err(Error::invalid("url", "must be at most 2048 characters"));
        }
        let events = match obj.get("events") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for t in a {
                    let t = t.as_str().ok_or_else(|| {
                        Error::invalid("events", "must be an array of event type names")
                    })?;
                    if t != "*" && !EVENT_TYPES.contains(&t) {
                        return Err(Error::invalid(
                            "events",
                            format!(
                                "{t:?} is not an event type; known: {} (or \"*\")",
                                EVENT_TYPES.join(", ")
                            ),
                        ));
                    }
                    if !out.iter().any(|o| o == t) {
                        out.push(t.to_string());
                    }
                }
                if out.iter().any(|t| t == "*") {
                    vec![]
                } else {
                    out
                }
            }
            Some(_) => {
                return Err(Error::invalid(
                    "events",
                    "must be an array of event type names",
                ))
            }
        };
        let format = match obj.get("format") {
            None | Some(Value::Null) => WebhookFormat::Standard,
            Some(Value::String(s)) => WebhookFormat::parse(s).ok_or_else(|| {
                Error::invalid("format", format!("{s:?} is not one of standard, slack"))
            })?,
            Some(_) => {
                return Err(Error::invalid(
                    "format",
                    "must be \"standard\" or \"slack\"",
                ))
            }
        };
        Ok(Webhook {
            id: new_webhook_id(),
            url,
            secret: new_secret(),
            events,
            format,
            created_at_ms: now_ms,
            disabled: None,
        })
    }

    /// The webhook as its creation answers it: the only time the secret is shown.
    pub fn created_json(&self) -> Value {
        let mut out = self.to_json();
        out["secret"] = json!(self.secret);
        out
    }

    /// The webhook as listed: never its secret.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "events": if self.events.is_empty() { json!(["*"]) } else { json!(self.events) },
            "format": self.format.as_str(),
            "created_at": format_time_ms(self.created_at_ms),
            "disabled": self.disabled,
        })
    }
}

fn new_webhook_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    format!("wh_{}", hex::encode(b))
}

impl StoredEvent {
    pub fn to_json(&self) -> Value {
        let body: Value = serde_json::from_str(&self.payload).unwrap_or(Value::Null);
        json!({
            "id": self.id,
            "type": self.kind,
            "time": format_time_ms(self.time_ms),
            "key_id": self.key_id,
            "data": body.get("data").cloned().unwrap_or(Value::Null),
            "deliveries": self.deliveries.iter().map(|(w, state, attempts, status)| json!({
                "webhook_id": w, "state": state, "attempts": attempts, "last_status": status,
            })).collect::<Vec<_>>(),
        })
    }
}

impl Gateway {
    /// Create a webhook; the returned value holds its secret, which is never shown again.
    pub async fn create_webhook(&self, body: &Value) -> Result<Webhook> {
        let webhook = Webhook::from_json(body, self.now_ms())?;
        let existing = self.webhooks().await?;
        if existing.len() >= MAX_WEBHOOKS {
            return Err(Error::invalid(
                "url",
                format!("this gateway already has {MAX_WEBHOOKS} webhooks; delete one first"),
            ));
        }
        let w = webhook.clone();
        self.shared
            .store
            .blocking_op("insert_webhook", move |s| s.insert_webhook(&w))
            .await?;
        tracing::info!(webhook_id = %webhook.id, "webhook created");
        Ok(webhook)
    }

    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        self.shared
            .store
            .blocking_op("webhooks", |s| s.webhooks())
            .await
    }

    /// Delete a webhook; its pending deliveries are cancelled.
    pub async fn delete_webhook(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        let found = {
            let id = id.clone();
            self.shared
                .store
                .blocking_op("delete_webhook", move |s| s.delete_webhook(&id))
                .await?
        };
        if !found {
            return Err(Error::NotFound(format!("no webhook {id}")));
        }
        tracing::info!(webhook_id = %id, "webhook deleted");
        Ok(())
    }

    /// The newest events, at most `limit` (1 to [`MAX_EVENTS`]; 0: 100).
    pub async fn events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        let limit = if limit == 0 {
            100
        } else {
            limit.min(MAX_EVENTS)
        };
        self.shared
            .store
            .blocking_op("events", move |s| s.events(limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bodies_name_the_field() {
        for (body, field) in [
            (json!({}), "url"),
            (json!({"url": "ftp://x"}), "url"),
            (json!({"url": "not a url"}), "url"),
            (
                json!({"url": "http://127.0.0.1:9/h", "events": ["spend.nope"]}),
                "events",
            ),
            (
                json!({"url": "http://127.0.0.1:9/h", "format": "teams"}),
                "format",
            ),
            (
                json!({"url": "http://127.0.0.1:9/h", "secret": "x"}),
                "secret",
            ),
        ] {
            let e = Webhook::from_json(&body, 0).unwrap_err().to_string();
            assert!(e.contains(field), "{body}: {e}");
        }
        let w = Webhook::from_json(
            &json!({"url": "http://127.0.0.1:9/h", "events": ["key.revoked"], "format": "slack"}),
            0,
        )
        .unwrap();
        assert!(w.id.starts_with("wh_") && w.secret.starts_with("whsec_"));
        assert_eq!(w.format, WebhookFormat::Slack);
        assert!(!w.to_json().to_string().contains(&w.secret));
    }
}
