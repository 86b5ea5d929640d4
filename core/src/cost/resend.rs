//! Resend: recipients (to + cc + bcc) × the configured price per email; batches sum their
//! items. Answers carry no price, so a send settles at its estimate.

use serde_json::Value;

use super::model::{
    classify_failure, CostModel, Estimate, ObjectFacts, Outcome, RequestView, ResponseView,
};
use super::prices::Pricing;
use crate::ledger::MoneyState;
use crate::vendors::Vendor;

pub struct Resend;

/// Recipients of one email object: `to`, `cc`, `bcc`, each a string or an array of strings.
pub fn recipients(email: &Value) -> Result<i64, String> {
    let obj = email
        .as_object()
        .ok_or("each email must be a JSON object")?;
    if !obj.contains_key("to") {
        return Err("field to is required".into());
    }
    let mut n = 0i64;
    for field in ["to", "cc", "bcc"] {
        n += match obj.get(field) {
            None | Some(Value::Null) => 0,
            Some(Value::String(_)) => 1,
            Some(Value::Array(items)) => {
                if !items.iter().all(Value::is_string) {
                    return Err(format!("field {field} must hold strings"));
                }
                items.len() as i64
            }
            Some(_) => {
                return Err(format!(
                    "field {field} must be a string or an array of strings"
                ))
            }
        };
    }
    Ok(n)
}

/// The models `core/catalogue/resend.ops` may name.
pub const MODELS: &[&str] = &["email", "email_batch", "broadcast_create"];

fn emails_of(req: &RequestView<'_>) -> Result<Option<Vec<Value>>, String> {
    let batch = match req.segments().as_slice() {
        ["emails"] => false,
        ["emails", "batch"] => true,
        _ => return Ok(None),
    };
    let v: Value = serde_json::from_slice(req.body)
        .map_err(|e| format!("the body is not valid JSON ({e})"))?;
    Ok(Some(if batch {
        match v {
            Value::Array(items) => items,
            _ => return Err("a batch body must be a JSON array of emails".into()),
        }
    } else {
        vec![v]
    }))
}

/// A broadcast created as a draft sends nothing; `send: true` mails its whole audience.
fn broadcast_create(req: &RequestView<'_>) -> Result<Estimate, String> {
    let v: Value = serde_json::from_slice(req.body)
        .map_err(|e| format!("the body is not valid JSON ({e})"))?;
    match v.get("send") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(Estimate::Free),
        _ => Err("a broadcast created with send mails every contact of its audience, whose size the gateway does not know; create it as a draft, or send with /emails/batch".into()),
    }
}

impl CostModel for Resend {
    fn vendor(&self) -> Vendor {
        Vendor::Resend
    }

    fn models(&self) -> &'static [&'static str] {
        MODELS
    }

    fn estimate_with(&self, pricing: &Pricing, model: &str, req: &RequestView<'_>) -> Estimate {
        if model == "broadcast_create" {
            return broadcast_create(req).unwrap_or_else(Estimate::CannotPrice);
        }
        let emails = match emails_of(req) {
            Ok(Some(e)) => e,
            Ok(None) => {
                return Estimate::CannotPrice(format!(
                    "the Resend cost model {model} does not price {}",
                    req.path
                ))
            }
            Err(why) => return Estimate::CannotPrice(why),
        };
        let mut total = 0i64;
        for e in &emails {
            match recipients(e) {
                Ok(n) => total += n,
                Err(why) => return Estimate::CannotPrice(why),
            }
        }
        Estimate::Priced {
            micros: total.saturating_mul(pricing.resend_email_micros),
            object_id: None,
        }
    }

    fn settle(
        &self,
        pricing: &Pricing,
        req: &RequestView<'_>,
        estimate: i64,
        resp: &ResponseView<'_>,
    ) -> Outcome {
        if let Some(o) = classify_failure(resp.status, estimate) {
            return o;
        }
        if estimate == 0 {
            return Outcome::none();
        }
        let Ok(v) = serde_json::from_slice::<Value>(resp.body) else {
            return Outcome::unknown(estimate);
        };
        // In permissive batch mode the answer lists the items that were refused; they are not
        // sent, so their recipients do not count.
        let mut cost = estimate;
        if let (Some(errors), Ok(Some(emails))) =
            (v.get("errors").and_then(Value::as_array), emails_of(req))
        {
            for idx in errors
                .iter()
                .filter_map(|e| e.get("index").and_then(Value::as_u64))
            {
                if let Some(n) = emails.get(idx as usize).and_then(|e| recipients(e).ok()) {
                    cost -= n * pricing.resend_email_micros;
                }
            }
        }
        let id = v.get("id").and_then(Value::as_str).map(str::to_string);
        Outcome {
            state: MoneyState::Moved,
            cost_micros: cost.max(0),
            object: id.map(|id| ObjectFacts {
                id,
                remember: None,
                authoritative: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(path: &'a str, body: &'a str) -> RequestView<'a> {
        RequestView::json_test(path, body)
    }

    #[test]
    fn counts_recipients_and_batches() {
        let p = Pricing::default();
        let one = r#"{"from":"a@x.dev","to":"b@x.dev","subject":"s"}"#;
        assert_eq!(
            crate::cost::estimate(&p, Vendor::Resend, &req("/emails", one)),
            Estimate::Priced {
                micros: 900,
                object_id: None
            }
        );
        let many = r#"{"from":"a@x.dev","to":["b@x.dev","c@x.dev"],"cc":"d@x.dev","bcc":["e@x.dev"],"subject":"s"}"#;
        assert_eq!(
            crate::cost::estimate(&p, Vendor::Resend, &req("/emails", many)),
            Estimate::Priced {
                micros: 4 * 900,
                object_id: None
            }
        );
        let batch = format!("[{one},{many}]");
        assert_eq!(
            crate::cost::estimate(&p, Vendor::Resend, &req("/emails/batch", &batch)),
            Estimate::Priced {
                micros: 5 * 900,
                object_id: None
            }
        );
    }

    #[test]
    fn refuses_unpriceable_bodies() {
        let p = Pricing::default();
        for (path, body) in [
            ("/emails", "not json"),
            ("/emails", r#"{"subject":"s"}"#),
            ("/emails", r#"{"to":5}"#),
            ("/emails/batch", r#"{"to":"a"}"#),
        ] {
            assert!(
                matches!(
                    crate::cost::estimate(&p, Vendor::Resend, &req(path, body)),
                    Estimate::CannotPrice(_)
                ),
                "{body}"
            );
        }
        let get = RequestView {
            method: "GET",
            ..req("/emails/abc", "")
        };
        assert_eq!(
            crate::cost::estimate(&p, Vendor::Resend, &get),
            Estimate::Free
        );
    }

    #[test]
    fn settles_at_estimate_and_releases_failures() {
        let p = Pricing::default();
        let body = r#"[{"to":"a@x"},{"to":["b@x","c@x"]}]"#;
        let r = req("/emails/batch", body);
        let ok = Resend.settle(
            &p,
            &r,
            2700,
            &ResponseView {
                status: 200,
                body: br#"{"data":[{"id":"1"},{"id":"2"}]}"#,
            },
        );
        assert_eq!((ok.state, ok.cost_micros), (MoneyState::Moved, 2700));
        let partial = Resend.settle(
            &p,
            &r,
            2700,
            &ResponseView {
                status: 200,
                body: br#"{"data":[{"id":"1"}],"errors":[{"index":1,"message":"bad"}]}"#,
            },
        );
        assert_eq!(partial.cost_micros, 900);
        let failed = Resend.settle(
            &p,
            &r,
            2700,
            &ResponseView {
                status: 422,
                body: br#"{"statusCode":422}"#,
            },
        );
        assert_eq!(failed.state, MoneyState::None);
        let broken = Resend.settle(
            &p,
            &r,
            2700,
            &ResponseView {
                status: 503,
                body: b"",
            },
        );
        assert_eq!(
            (broken.state, broken.cost_micros),
            (MoneyState::Unknown, 2700)
        );
    }
}
