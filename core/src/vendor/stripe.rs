//! Stripe: amounts in the request's `amount` + `currency`, remembered amounts for confirm,
//! capture, refunds and invoice pay, and the object's status in the answer.

use serde_json::Value;

use super::{
    classify_failure, single_field, CostModel, Estimate, MoneyState, ObjectFacts, Outcome,
    Remembered, RequestView, ResponseView,
};
use crate::config::Pricing;
use crate::currency::minor_to_micros;

pub struct Stripe;

/// POST endpoints that can move money but carry nothing the gateway can price. Calls to them
/// are refused rather than let through at zero.
const UNPRICEABLE: &[(&str, &str)] = &[
    (
        "/v1/subscriptions",
        "creating or changing a subscription may charge an invoice at once",
    ),
    ("/v1/topups", "top-ups are not priced by the gateway"),
    (
        "/v1/subscription_schedules",
        "subscription schedules may charge invoices, which the gateway cannot price",
    ),
    (
        "/v1/subscription_items",
        "changing subscription items may charge a prorated invoice at once",
    ),
    (
        "/v1/issuing/",
        "Issuing calls are not priced by the gateway",
    ),
    (
        "/v1/treasury/",
        "Treasury calls are not priced by the gateway",
    ),
    (
        "/v2/money_management/",
        "money-management calls are not priced by the gateway",
    ),
    ("/v1/quotes/", "accepting a quote may charge at once"),
];

impl CostModel for Stripe {
    fn estimate(&self, pricing: &Pricing, req: &RequestView<'_>) -> Estimate {
        if req.method != "POST" {
            return Estimate::Free;
        }
        match estimate_post(pricing, req) {
            Ok(e) => e,
            Err(why) => Estimate::CannotPrice(why),
        }
    }

    fn settle(
        &self,
        pricing: &Pricing,
        _req: &RequestView<'_>,
        estimate: i64,
        resp: &ResponseView<'_>,
    ) -> Outcome {
        if let Some(o) = classify_failure(resp.status, estimate) {
            return o;
        }
        let Ok(v) = serde_json::from_slice::<Value>(resp.body) else {
            return Outcome::unknown(estimate);
        };
        match object_outcome(pricing, &v) {
            Some(o) => o,
            // A priced call whose answer is not an object we understand: keep what was reserved.
            None if estimate > 0 => Outcome::unknown(estimate),
            None => Outcome::none(),
        }
    }
}

fn estimate_post(pricing: &Pricing, req: &RequestView<'_>) -> Result<Estimate, String> {
    let seg = req.segments();
    let s: Vec<&str> = seg.iter().map(|s| &**s).collect();
    let is_money_path = matches!(
        s.as_slice(),
        ["v1", "payment_intents"]
            | [
                "v1",
                "payment_intents",
                _,
                "confirm" | "capture" | "increment_authorization"
            ]
            | ["v1", "charges"]
            | ["v1", "charges", _, "capture" | "refund" | "refunds"]
            | ["v1", "refunds"]
            | ["v1", "transfers"]
            | ["v1", "payouts"]
            | ["v1", "invoices", _, "pay"]
    );
    if !is_money_path {
        let seg_count = s.len();
        let finalize = seg_count == 4 && s[1] == "invoices" && s[3] == "finalize";
        if finalize {
            return Err(format!("finalizing an invoice may charge the customer automatically later, which the gateway cannot price; leave {} out of the key's allowed_endpoints", req.path));
        }
        // A prefix without a trailing slash covers the path and everything below it.
        if let Some((_, why)) = UNPRICEABLE.iter().find(|(p, _)| {
            req.path == *p
                || req
                    .path
                    .starts_with(&format!("{}/", p.trim_end_matches('/')))
        }) {
            return Err(format!(
                "{why}; leave {} out of the key's allowed_endpoints",
                req.path
            ));
        }
        return Ok(Estimate::Free);
    }
    let form = req.form().ok_or_else(|| {
        "a money-moving Stripe call must be form-encoded (application/x-www-form-urlencoded)"
            .to_string()
    })?;
    let field = |name: &str| single_field(&form, name);
    let amount = |name: &str| -> Result<Option<i64>, String> {
        field(name)?.map(|v| parse_minor(name, v)).transpose()
    };
    let priced = |amount: i64,
                  currency: &str,
                  object_id: Option<String>|
     -> Result<Estimate, String> {
        let micros = minor_to_micros(pricing, amount, currency)
            .ok_or_else(|| format!("currency {currency:?} has no FX rate in the gateway's config; add one or use another currency"))?;
        Ok(Estimate::Priced { micros, object_id })
    };
    let required = |name: &str| -> Result<i64, String> {
        amount(name)?.ok_or_else(|| format!("field {name} is required to price this call"))
    };
    let currency = || -> Result<String, String> {
        field("currency")?
            .map(str::to_string)
            .ok_or_else(|| "field currency is required to price this call".to_string())
    };

    match s.as_slice() {
        ["v1", "payment_intents"] => {
            // An unconfirmed intent moves nothing; its amount is remembered from the answer.
            if field("confirm")? == Some("true") {
                priced(required("amount")?, &currency()?, None)
            } else {
                Ok(Estimate::Free)
            }
        }
        ["v1", "payment_intents", id, "confirm"] => Ok(Estimate::FromMemory {
            lookup: id.to_string(),
            amount_minor: amount("amount_to_confirm")?,
            same_object: true,
        }),
        ["v1", "payment_intents", id, "capture"] => Ok(Estimate::FromMemory {
            lookup: id.to_string(),
            amount_minor: amount("amount_to_capture")?,
            same_object: true,
        }),
        ["v1", "payment_intents", id, "increment_authorization"] => Ok(Estimate::FromMemory {
            lookup: id.to_string(),
            amount_minor: Some(required("amount")?),
            same_object: true,
        }),
        ["v1", "charges"] => priced(required("amount")?, &currency()?, None),
        ["v1", "charges", id, "capture"] => Ok(Estimate::FromMemory {
            lookup: id.to_string(),
            amount_minor: amount("amount")?,
            same_object: true,
        }),
        ["v1", "charges", id, "refund" | "refunds"] => Ok(Estimate::FromMemory {
            lookup: id.to_string(),
            amount_minor: amount("amount")?,
            same_object: false,
        }),
        ["v1", "refunds"] => {
            let target = match (field("charge")?, field("payment_intent")?) {
                (Some(c), None) => c,
                (None, Some(p)) => p,
                _ => {
                    return Err("a refund must name exactly one of charge or payment_intent".into())
                }
            };
            Ok(Estimate::FromMemory {
                lookup: target.to_string(),
                amount_minor: amount("amount")?,
                same_object: false,
            })
        }
        ["v1", "transfers"] | ["v1", "payouts"] => priced(required("amount")?, &currency()?, None),
        ["v1", "invoices", id, "pay"] => {
            if field("paid_out_of_band")? == Some("true") {
                Ok(Estimate::Free)
            } else {
                Ok(Estimate::FromMemory {
                    lookup: id.to_string(),
                    amount_minor: None,
                    same_object: true,
                })
            }
        }
        _ => Ok(Estimate::Free),
    }
}

fn parse_minor(name: &str, v: &str) -> Result<i64, String> {
    if v.is_empty() || v.len() > 15 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "field {name} must be a non-negative integer amount in minor units, got {v:?}"
        ));
    }
    v.parse()
        .map_err(|_| format!("field {name} is out of range"))
}

fn int(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0).max(0)
}

/// The money position of a Stripe object, from its `object` and `status` fields.
pub fn object_outcome(pricing: &Pricing, v: &Value) -> Option<Outcome> {
    let kind = v.get("object")?.as_str()?;
    let id = v.get("id")?.as_str()?.to_string();
    let status = v.get("status").and_then(Value::as_str).unwrap_or("");
    let currency = v.get("currency").and_then(Value::as_str).unwrap_or("usd");
    let conv = |minor: i64| minor_to_micros(pricing, minor, currency);
    let remembered = |minor: i64| {
        conv(minor).map(|micros| Remembered {
            micros,
            currency: currency.to_ascii_uppercase(),
        })
    };
    // An amount in a currency with no rate cannot be counted exactly: count it as unknown at
    // the reserved estimate rather than as zero.
    let (state, minor, remember) = match kind {
        "payment_intent" => {
            let (state, minor) = match status {
                "succeeded" => (MoneyState::Moved, int(v, "amount_received")),
                "requires_capture" => (MoneyState::Committed, int(v, "amount_capturable")),
                "processing" | "requires_action" => (MoneyState::Pending, int(v, "amount")),
                _ => (MoneyState::None, 0),
            };
            (state, minor, Some(int(v, "amount")))
        }
        "charge" => {
            let captured = v.get("captured").and_then(Value::as_bool).unwrap_or(false);
            let refundable = int(v, "amount") - int(v, "amount_refunded");
            let (state, minor) = match status {
                "succeeded" if captured => {
                    let captured_amount = match int(v, "amount_captured") {
                        0 => int(v, "amount"),
                        n => n,
                    };
                    (MoneyState::Moved, captured_amount)
                }
                "succeeded" => (MoneyState::Committed, int(v, "amount")),
                "pending" => (MoneyState::Pending, int(v, "amount")),
                _ => (MoneyState::None, 0),
            };
            (state, minor, Some(refundable.max(0)))
        }
        "refund" => {
            let (state, minor) = match status {
                "succeeded" => (MoneyState::Moved, int(v, "amount")),
                "pending" | "requires_action" => (MoneyState::Pending, int(v, "amount")),
                _ => (MoneyState::None, 0),
            };
            (state, minor, None)
        }
        "transfer" => (
            MoneyState::Moved,
            (int(v, "amount") - int(v, "amount_reversed")).max(0),
            None,
        ),
        "payout" => {
            let (state, minor) = match status {
                "paid" => (MoneyState::Moved, int(v, "amount")),
                "pending" | "in_transit" => (MoneyState::Pending, int(v, "amount")),
                _ => (MoneyState::None, 0),
            };
            (state, minor, None)
        }
        "invoice" => {
            let remember = Some(int(v, "amount_remaining")).filter(|a| *a > 0);
            let outcome_state = match status {
                "paid" => Some((MoneyState::Moved, int(v, "amount_paid"))),
                "void" | "uncollectible" => Some((MoneyState::None, 0)),
                _ => None,
            };
            return Some(match outcome_state {
                Some((state, minor)) => Outcome {
                    state,
                    cost_micros: conv(minor)?,
                    object: Some(ObjectFacts {
                        id,
                        remember: remember.and_then(remembered),
                        authoritative: true,
                    }),
                },
                // An open or draft invoice says nothing final about money: keep what is recorded.
                // An open or draft invoice proves nothing either way: a pay call on it stays
                // counted at what was reserved (unknown), and a read leaves records alone.
                None => Outcome {
                    state: MoneyState::Unknown,
                    cost_micros: 0,
                    object: Some(ObjectFacts {
                        id,
                        remember: remember.and_then(remembered),
                        authoritative: false,
                    }),
                },
            });
        }
        _ => return None,
    };
    Some(Outcome {
        state,
        cost_micros: if state.counts() { conv(minor)? } else { 0 },
        object: Some(ObjectFacts {
            id,
            remember: remember.filter(|m| *m > 0).and_then(remembered),
            authoritative: true,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn post<'a>(path: &'a str, body: &'a str) -> RequestView<'a> {
        RequestView {
            method: "POST",
            path,
            query: None,
            content_type: Some("application/x-www-form-urlencoded"),
            body: body.as_bytes(),
        }
    }

    fn est(path: &str, body: &str) -> Estimate {
        Stripe.estimate(&Pricing::default(), &post(path, body))
    }

    #[test]
    fn unconfirmed_intent_is_free_confirmed_is_priced() {
        assert_eq!(
            est("/v1/payment_intents", "amount=10000&currency=usd"),
            Estimate::Free
        );
        assert_eq!(
            est(
                "/v1/payment_intents",
                "amount=10000&currency=usd&confirm=true"
            ),
            Estimate::Priced {
                micros: 100_000_000,
                object_id: None
            }
        );
        assert_eq!(
            est(
                "/v1/payment_intents",
                "amount=500&currency=jpy&confirm=true"
            ),
            Estimate::Priced {
                micros: 3_500_000,
                object_id: None
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_price() {
        for (path, body) in [
            ("/v1/charges", "currency=usd"),
            ("/v1/charges", "amount=100&amount=1&currency=usd"),
            ("/v1/charges", "amount=-5&currency=usd"),
            ("/v1/charges", "amount=1.5&currency=usd"),
            ("/v1/charges", "amount=100&currency=xyz"),
            ("/v1/payouts", "amount=100"),
            ("/v1/subscriptions", "customer=cus_1"),
            (
                "/v1/subscriptions/sub_1",
                "proration_behavior=always_invoice",
            ),
            ("/v1/subscription_items/si_1", "quantity=3"),
            ("/v1/invoices/in_1/finalize", ""),
            ("/v1/refunds", "amount=5"),
        ] {
            assert!(
                matches!(est(path, body), Estimate::CannotPrice(_)),
                "{path} {body}"
            );
        }
        let json_body = RequestView {
            content_type: Some("application/json"),
            ..post("/v1/charges", "{\"amount\":1}")
        };
        assert!(matches!(
            Stripe.estimate(&Pricing::default(), &json_body),
            Estimate::CannotPrice(_)
        ));
    }

    #[test]
    fn confirm_capture_and_pay_need_memory() {
        assert_eq!(
            est("/v1/payment_intents/pi_1/confirm", ""),
            Estimate::FromMemory {
                lookup: "pi_1".into(),
                amount_minor: None,
                same_object: true
            }
        );
        assert_eq!(
            est("/v1/payment_intents/pi_1/capture", "amount_to_capture=300"),
            Estimate::FromMemory {
                lookup: "pi_1".into(),
                amount_minor: Some(300),
                same_object: true
            }
        );
        assert_eq!(
            est("/v1/refunds", "payment_intent=pi_1"),
            Estimate::FromMemory {
                lookup: "pi_1".into(),
                amount_minor: None,
                same_object: false
            }
        );
        assert_eq!(
            est("/v1/invoices/in_1/pay", ""),
            Estimate::FromMemory {
                lookup: "in_1".into(),
                amount_minor: None,
                same_object: true
            }
        );
        assert_eq!(
            est("/v1/invoices/in_1/pay", "paid_out_of_band=true"),
            Estimate::Free
        );
        assert_eq!(est("/v1/customers", "email=a@b.c"), Estimate::Free);
        let get = RequestView {
            method: "GET",
            ..post("/v1/charges", "")
        };
        assert_eq!(Stripe.estimate(&Pricing::default(), &get), Estimate::Free);
    }

    fn outcome(v: Value) -> (MoneyState, i64) {
        let o = object_outcome(&Pricing::default(), &v).unwrap();
        (o.state, o.cost_micros)
    }

    #[test]
    fn payment_intent_status_to_money_state() {
        let pi = |status: &str| json!({"object":"payment_intent","id":"pi_1","status":status,"currency":"usd","amount":1000,"amount_received": if status=="succeeded" {1000} else {0},"amount_capturable": if status=="requires_capture" {1000} else {0}});
        assert_eq!(outcome(pi("succeeded")), (MoneyState::Moved, 10_000_000));
        assert_eq!(
            outcome(pi("requires_capture")),
            (MoneyState::Committed, 10_000_000)
        );
        assert_eq!(outcome(pi("processing")), (MoneyState::Pending, 10_000_000));
        assert_eq!(
            outcome(pi("requires_action")),
            (MoneyState::Pending, 10_000_000)
        );
        for s in [
            "requires_payment_method",
            "requires_confirmation",
            "canceled",
        ] {
            assert_eq!(outcome(pi(s)), (MoneyState::None, 0), "{s}");
        }
    }

    #[test]
    fn other_objects_status_to_money_state() {
        let ch = |status: &str, captured: bool| json!({"object":"charge","id":"ch_1","status":status,"captured":captured,"currency":"usd","amount":500,"amount_captured": if captured {500} else {0}});
        assert_eq!(
            outcome(ch("succeeded", true)),
            (MoneyState::Moved, 5_000_000)
        );
        assert_eq!(
            outcome(ch("succeeded", false)),
            (MoneyState::Committed, 5_000_000)
        );
        assert_eq!(
            outcome(ch("pending", false)),
            (MoneyState::Pending, 5_000_000)
        );
        assert_eq!(outcome(ch("failed", false)), (MoneyState::None, 0));
        let re = |status: &str| json!({"object":"refund","id":"re_1","status":status,"currency":"usd","amount":200});
        assert_eq!(outcome(re("succeeded")), (MoneyState::Moved, 2_000_000));
        assert_eq!(outcome(re("pending")), (MoneyState::Pending, 2_000_000));
        assert_eq!(
            outcome(re("requires_action")),
            (MoneyState::Pending, 2_000_000)
        );
        assert_eq!(outcome(re("failed")), (MoneyState::None, 0));
        assert_eq!(outcome(re("canceled")), (MoneyState::None, 0));
        assert_eq!(
            outcome(
                json!({"object":"transfer","id":"tr_1","currency":"usd","amount":300,"amount_reversed":100})
            ),
            (MoneyState::Moved, 2_000_000)
        );
        let po = |status: &str| json!({"object":"payout","id":"po_1","status":status,"currency":"usd","amount":100});
        assert_eq!(outcome(po("paid")), (MoneyState::Moved, 1_000_000));
        assert_eq!(outcome(po("pending")), (MoneyState::Pending, 1_000_000));
        assert_eq!(outcome(po("in_transit")), (MoneyState::Pending, 1_000_000));
        assert_eq!(outcome(po("failed")), (MoneyState::None, 0));
        assert_eq!(outcome(po("canceled")), (MoneyState::None, 0));
        let inv = |status: &str| json!({"object":"invoice","id":"in_1","status":status,"currency":"usd","amount_paid": if status=="paid" {700} else {0},"amount_remaining": if status=="paid" {0} else {700}});
        assert_eq!(outcome(inv("paid")), (MoneyState::Moved, 7_000_000));
        assert_eq!(outcome(inv("void")), (MoneyState::None, 0));
        let open = object_outcome(&Pricing::default(), &inv("open")).unwrap();
        assert!(!open.object.as_ref().unwrap().authoritative);
        // A pay answered with an open invoice keeps its reservation (unknown), never zero.
        assert_eq!(open.state, MoneyState::Unknown);
        assert_eq!(open.object.unwrap().remember.unwrap().micros, 7_000_000);
    }

    #[test]
    fn failures_keep_or_release() {
        let req = post("/v1/charges", "amount=100&currency=usd");
        let p = Pricing::default();
        let s = |status, body: &str| {
            Stripe
                .settle(
                    &p,
                    &req,
                    1_000_000,
                    &ResponseView {
                        status,
                        body: body.as_bytes(),
                    },
                )
                .state
        };
        assert_eq!(
            s(402, r#"{"error":{"type":"card_error"}}"#),
            MoneyState::None
        );
        assert_eq!(s(500, "{}"), MoneyState::Unknown);
        assert_eq!(s(200, "not json"), MoneyState::Unknown);
        assert_eq!(
            s(200, r#"{"object":"mystery","id":"x"}"#),
            MoneyState::Unknown
        );
    }
}
