//! Objects and idempotency: what the simulator remembers between calls.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::plumbing::{Call, Reply, Vendor};
use crate::resend::resend_error;
use crate::stripe::{stripe_error, stripe_invalid, Charge, PaymentIntent};
use crate::twilio::Message;

#[derive(Default)]
pub(crate) struct World {
    pub(crate) payment_intents: HashMap<String, PaymentIntent>,
    pub(crate) charges: HashMap<String, Charge>,
    /// Refunds, customers and top-ups: created once, never changed.
    pub(crate) stripe_objects: HashMap<String, Value>,
    pub(crate) invoices: HashMap<String, Value>,
    pub(crate) invoice_items: HashMap<String, Value>,
    pub(crate) messages: HashMap<String, Message>,
    pub(crate) calls: HashMap<String, Value>,
    pub(crate) emails: HashMap<String, Value>,
    pub(crate) broadcasts: HashMap<String, Value>,
    idempotent: HashMap<(Vendor, String), Saved>,
}

/// The first answer to an idempotency key.
struct Saved {
    fingerprint: Vec<u8>,
    reply: Reply,
    request_id: Option<String>,
}

/// Stripe- and Resend-style idempotency for POSTs: the first answer to a key (unless the
/// request was refused as invalid: 400/401/403/422) is saved and replayed for the same method,
/// path and body; the same key with anything else is a conflict.
pub(crate) fn idempotent(
    world: &mut World,
    vendor: Vendor,
    call: &Call,
    request_id: Option<&str>,
    run: fn(&mut World, &Call) -> Reply,
) -> Reply {
    let key = match call.header("idempotency-key") {
        Some(key) if call.method == Method::POST => key,
        _ => return run(world, call),
    };
    let max_len = if vendor == Vendor::Stripe { 255 } else { 256 };
    if key.is_empty() || key.chars().count() > max_len {
        let message = format!("The idempotency key must be 1 to {max_len} characters long.");
        return match vendor {
            Vendor::Stripe => stripe_invalid(None, None, message),
            _ => resend_error(400, "invalid_idempotency_key", message),
        };
    }
    let fingerprint = [
        call.method.as_str().as_bytes(),
        b" ",
        call.path.as_bytes(),
        b"\n",
        call.body,
    ]
    .concat();
    let slot = (vendor, key);
    if let Some(saved) = world.idempotent.get(&slot) {
        if saved.fingerprint != fingerprint {
            return idempotency_conflict(vendor, &slot.1);
        }
        let mut reply = saved.reply.clone();
        if vendor == Vendor::Stripe {
            reply = reply.with("idempotent-replayed", "true");
            if let Some(original) = &saved.request_id {
                reply = reply.with("original-request", original.clone());
            }
        }
        return reply;
    }
    let reply = run(world, call);
    if !matches!(reply.status.as_u16(), 400 | 401 | 403 | 422) {
        let saved = Saved {
            fingerprint,
            reply: reply.clone(),
            request_id: request_id.map(str::to_string),
        };
        world.idempotent.insert(slot, saved);
    }
    reply
}

fn idempotency_conflict(vendor: Vendor, key: &str) -> Reply {
    match vendor {
        Vendor::Stripe => stripe_error(
            StatusCode::BAD_REQUEST,
            json!({
                "type": "idempotency_error",
                "message": format!(
                    "Keys for idempotent requests can only be used with the same parameters \
                     they were first used with. Try using a key other than '{key}' if you \
                     meant to execute a different request."
                ),
            }),
        ),
        _ => resend_error(
            409,
            "invalid_idempotent_request",
            "Same idempotency key used with a different request payload. Change your \
             idempotency key or payload.",
        ),
    }
}
