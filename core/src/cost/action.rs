//! What makes two money calls "the same action" (the duplicate-action guard): the vendor,
//! method, canonical path and the fields that decide what moves, chosen per cost model. A
//! field that changes per call without changing the action (metadata, a description, a
//! status callback, an SDK's own additions) is left out, so a support agent's second
//! identical refund matches its first even if the two bodies differ.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::RequestView;
use crate::vendors::Vendor;

/// The fields of a form body that name the action, per `(vendor, model)`; `None`: every
/// field but the descriptive ones.
fn form_fields(vendor: Vendor, model: &str) -> Option<&'static [&'static str]> {
    Some(match (vendor, model) {
        (Vendor::Stripe, "refund_create") => &["charge", "payment_intent", "amount"],
        (Vendor::Stripe, "payment_intent_create") => &[
            "amount",
            "currency",
            "customer",
            "payment_method",
            "on_behalf_of",
            "transfer_data[destination]",
        ],
        (Vendor::Stripe, "charge_create") => &[
            "amount",
            "currency",
            "customer",
            "source",
            "destination",
            "on_behalf_of",
            "transfer_data[destination]",
        ],
        (Vendor::Stripe, "amount_currency") => &[
            "amount",
            "currency",
            "destination",
            "customer",
            "source",
            "financial_account",
            "destination_payment_method",
        ],
        (Vendor::Stripe, "payment_intent_confirm") => &["amount_to_confirm", "payment_method"],
        (Vendor::Stripe, "payment_intent_capture") => &["amount_to_capture"],
        (Vendor::Stripe, "charge_capture") => &["amount"],
        (
            Vendor::Stripe,
            "payment_intent_increment" | "payment_intent_apply_balance" | "transfer_reversal",
        ) => &["amount"],
        (Vendor::Stripe, "balance_transaction") => &["amount", "currency"],
        // The path names the object; nothing in the body changes what moves.
        (
            Vendor::Stripe,
            "payout_reverse" | "invoice_update" | "invoice_finalize" | "invoice_pay",
        ) => &[],
        (Vendor::Twilio, "message") => {
            &["To", "Body", "MediaUrl", "ContentSid", "ContentVariables"]
        }
        (Vendor::Twilio, "call") => &["To", "Url", "Twiml", "ApplicationSid", "TimeLimit"],
        (Vendor::Twilio, "call_update") => &["Url", "Twiml", "Status"],
        (Vendor::Twilio, "number_purchase") => &["PhoneNumber", "AreaCode"],
        _ => return None,
    })
}

/// Fields that describe a call without changing what it moves.
fn descriptive(key: &str) -> bool {
    [
        "metadata",
        "description",
        "expand",
        "StatusCallback",
        "StatusCallbackMethod",
    ]
    .iter()
    .any(|k| key == *k || key.starts_with(&format!("{k}[")))
}

/// The action's fingerprint. `model` is the catalogue's cost model for the operation (`None`
/// for an operator's fixed price: every non-descriptive field counts).
pub fn fingerprint(vendor: Vendor, model: Option<&str>, req: &RequestView<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [vendor.as_str(), req.method, req.path] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    // Each body is read once, as what its content type says it is. One neither reader can
    // read is hashed whole: never two different bodies as one action.
    let parts = match req.form() {
        Some(form) => form_parts(vendor, model, &form),
        None => match serde_json::from_slice::<Value>(req.body) {
            Ok(v) => json_parts(vendor, model, &v),
            Err(_) => vec![format!("raw={}", hex(&Sha256::digest(req.body)))],
        },
    };
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().into()
}

fn form_parts(vendor: Vendor, model: Option<&str>, form: &[(String, String)]) -> Vec<String> {
    let wanted = model.and_then(|m| form_fields(vendor, m));
    let mut parts: Vec<String> = form
        .iter()
        .filter(|(k, _)| match wanted {
            Some(names) => names.contains(&k.as_str()),
            None => !descriptive(k),
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    // Field order is the client's; repeated fields (MediaUrl) keep every value.
    parts.sort();
    parts
}

fn json_parts(vendor: Vendor, model: Option<&str>, v: &Value) -> Vec<String> {
    match (vendor, model, v) {
        (Vendor::Resend, Some("email"), email) => vec![email_part(email)],
        (Vendor::Resend, Some("email_batch"), Value::Array(emails)) => {
            emails.iter().map(email_part).collect()
        }
        (_, _, Value::Object(m)) => {
            let mut parts: Vec<String> = m
                .iter()
                .filter(|(k, _)| !descriptive(k) && k.as_str() != "tags")
                .map(|(k, v)| format!("{k}={}", canonical(v)))
                .collect();
            parts.sort();
            parts
        }
        (_, _, other) => vec![canonical(other)],
    }
}

/// One email as the action it is: its recipients (case and order ignored), subject and
/// content. Tags, headers and scheduling are left out.
fn email_part(e: &Value) -> String {
    let recipients = |k: &str| -> String {
        let mut list: Vec<String> = match e.get(k) {
            Some(Value::String(s)) => vec![s.trim().to_lowercase()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => s.trim().to_lowercase(),
                    other => canonical(other),
                })
                .collect(),
            Some(other) => vec![canonical(other)],
            None => vec![],
        };
        list.sort();
        list.join(",")
    };
    let content: String = ["subject", "html", "text", "template", "attachments"]
        .iter()
        .map(|k| e.get(*k).map(canonical).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\u{1}");
    format!(
        "to={}|cc={}|bcc={}|content={}",
        recipients("to"),
        recipients("cc"),
        recipients("bcc"),
        hex(&Sha256::digest(content.as_bytes()))
    )
}

/// JSON text with object keys sorted (serde_json's map is ordered by key).
fn canonical(v: &Value) -> String {
    v.to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form<'a>(method: &'a str, path: &'a str, body: &'a str) -> RequestView<'a> {
        RequestView::form_test(method, path, body)
    }

    fn json<'a>(path: &'a str, body: &'a str) -> RequestView<'a> {
        RequestView::json_test(path, body)
    }

    fn fp(v: Vendor, model: &str, r: RequestView<'_>) -> [u8; 32] {
        fingerprint(v, Some(model), &r)
    }

    #[test]
    fn a_refund_is_its_charge_and_amount() {
        let refund = |b| {
            fp(
                Vendor::Stripe,
                "refund_create",
                form("POST", "/v1/refunds", b),
            )
        };
        let first = refund("charge=ch_1&amount=500&reason=requested_by_customer");
        assert_eq!(first, refund("amount=500&charge=ch_1&metadata[try]=2"));
        assert_ne!(first, refund("charge=ch_1&amount=501"));
        assert_ne!(first, refund("charge=ch_2&amount=500"));
        assert_ne!(first, refund("payment_intent=ch_1&amount=500"));
        // Another operation with the same fields is another action.
        assert_ne!(
            first,
            fp(
                Vendor::Stripe,
                "refund_create",
                form("POST", "/v1/charges", "charge=ch_1&amount=500")
            )
        );
    }

    #[test]
    fn an_sms_is_its_recipient_and_text() {
        let path = "/2010-04-01/Accounts/AC1/Messages.json";
        let sms = |b| fp(Vendor::Twilio, "message", form("POST", path, b));
        let first = sms("To=%2B15550001&From=%2B15559999&Body=Your+code+is+1");
        assert_eq!(
            first,
            sms("Body=Your+code+is+1&To=%2B15550001&From=%2B15559999&StatusCallback=https://x/1")
        );
        assert_ne!(
            first,
            sms("To=%2B15550002&From=%2B15559999&Body=Your+code+is+1")
        );
        assert_ne!(
            first,
            sms("To=%2B15550001&From=%2B15559999&Body=Your+code+is+2")
        );
    }

    #[test]
    fn an_email_is_its_recipients_subject_and_content() {
        let email = |b| fp(Vendor::Resend, "email", json("/emails", b));
        let first = email(
            r#"{"from":"a@x.io","to":["B@y.io","c@y.io"],"subject":"Hi","html":"<p>1</p>","tags":[{"name":"t","value":"1"}]}"#,
        );
        assert_eq!(
            first,
            email(
                r#"{"to":["c@y.io","b@y.io"],"html":"<p>1</p>","subject":"Hi","from":"a@x.io","headers":{"X-Try":"2"}}"#
            )
        );
        assert_ne!(
            first,
            email(r#"{"from":"a@x.io","to":["b@y.io"],"subject":"Hi","html":"<p>1</p>"}"#)
        );
        assert_ne!(
            first,
            email(r#"{"from":"a@x.io","to":["b@y.io","c@y.io"],"subject":"Hi","html":"<p>2</p>"}"#)
        );
        let batch = |b| fp(Vendor::Resend, "email_batch", json("/emails/batch", b));
        assert_ne!(
            batch(r#"[{"to":"a@y.io","subject":"1","text":"x"}]"#),
            batch(
                r#"[{"to":"a@y.io","subject":"1","text":"x"},{"to":"b@y.io","subject":"1","text":"x"}]"#
            )
        );
    }

    #[test]
    fn without_a_field_list_every_field_but_the_descriptive_ones_counts() {
        let any = |b| {
            fingerprint(
                Vendor::Stripe,
                None,
                &form("POST", "/v1/widgets/w_1/buy", b),
            )
        };
        assert_eq!(any("size=2&metadata[a]=1"), any("size=2&description=again"));
        assert_ne!(any("size=2"), any("size=3"));
        // A body that is not a form is hashed whole.
        let raw = |b| {
            fingerprint(
                Vendor::Stripe,
                None,
                &RequestView {
                    content_type: Some("text/plain"),
                    ..form("POST", "/v1/x", b)
                },
            )
        };
        assert_ne!(raw("a"), raw("b"));
    }
}
