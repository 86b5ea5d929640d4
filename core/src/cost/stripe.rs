//! Stripe: amounts in the request's `amount` + `currency`, remembered amounts for confirm,
//! capture, refunds, reversals and invoices, and the object's status in the answer. Which
//! model prices which operation is written in `core/catalogue/stripe.ops`.

use serde_json::Value;

use super::currency::minor_to_micros;
use super::model::{
    classify_failure, single_field, CostModel, Estimate, ObjectFacts, Outcome, RequestView,
    ResponseView,
};
use super::prices::Pricing;
use crate::ledger::{MoneyState, Remembered};
use crate::vendors::Vendor;

pub struct Stripe;

/// The models `core/catalogue/stripe.ops` may name.
pub const MODELS: &[&str] = &[
    "payment_intent_create",
    "payment_intent_confirm",
    "payment_intent_capture",
    "payment_intent_increment",
    "payment_intent_apply_balance",
    "charge_create",
    "charge_capture",
    "refund_create",
    "amount_currency",
    "balance_transaction",
    "transfer_reversal",
    "payout_reverse",
    "invoice_create",
    "invoice_update",
    "invoice_finalize",
    "invoice_pay",
    "invoice_lines",
    "invoiceitem",
    "credit_note",
    "customer_write",
    "subscription_update",
    "subscription_cancel",
    "proration_none",
    "v2_amount",
];

impl CostModel for Stripe {
    fn vendor(&self) -> Vendor {
        Vendor::Stripe
    }

    fn models(&self) -> &'static [&'static str] {
        MODELS
    }

    fn estimate_with(&self, pricing: &Pricing, model: &str, req: &RequestView<'_>) -> Estimate {
        let result = if model == "v2_amount" {
            v2_amount(pricing, req)
        } else {
            match fields_of(req) {
                Ok(form) => estimate_form(pricing, model, req, &Form(&form)),
                Err(why) => Err(why),
            }
        };
        result.unwrap_or_else(Estimate::CannotPrice)
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
        match object_outcome(pricing, &v, estimate) {
            Some(o) => o,
            // A priced call whose answer is not an object we understand: keep what was reserved.
            None if estimate > 0 => Outcome::unknown(estimate),
            None => Outcome::none(),
        }
    }
}

/// The form fields of a request: the body, plus the query of a DELETE (the SDKs send a
/// DELETE's parameters there).
fn fields_of(req: &RequestView<'_>) -> Result<Vec<(String, String)>, String> {
    let mut form = req.form().ok_or_else(|| {
        "a money-moving Stripe call must be form-encoded (application/x-www-form-urlencoded)"
            .to_string()
    })?;
    if let Some(q) = req.query {
        form.extend(
            form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
    }
    Ok(form)
}

struct Form<'f>(&'f [(String, String)]);

impl Form<'_> {
    fn get(&self, name: &str) -> Result<Option<&str>, String> {
        single_field(self.0, name)
    }
    fn amount(&self, name: &str) -> Result<Option<i64>, String> {
        self.get(name)?.map(|v| parse_minor(name, v)).transpose()
    }
    fn required(&self, name: &str) -> Result<i64, String> {
        self.amount(name)?
            .ok_or_else(|| format!("field {name} is required to price this call"))
    }
    fn currency(&self) -> Result<&str, String> {
        self.get("currency")?
            .ok_or_else(|| "field currency is required to price this call".to_string())
    }
    /// A flag that turns money on counts as set unless it is absent or exactly `false`.
    fn flag(&self, name: &str) -> Result<bool, String> {
        Ok(self.get(name)?.is_some_and(|v| v != "false"))
    }
    fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

fn priced(pricing: &Pricing, amount: i64, currency: &str) -> Result<Estimate, String> {
    let micros = minor_to_micros(pricing, amount, currency).ok_or_else(|| {
        format!("currency {currency:?} has no FX rate in the gateway's config; add one or use another currency")
    })?;
    Ok(Estimate::Priced {
        micros,
        object_id: None,
    })
}

fn memory(lookup: &str, amount_minor: Option<i64>, same_object: bool) -> Estimate {
    Estimate::FromMemory {
        lookup: lookup.to_string(),
        amount_minor,
        same_object,
        at_most_remembered: false,
    }
}

/// A part of what is left on a remembered object (a refund of a charge, a reversal of a
/// transfer): the vendor cannot move more than is left, so the estimate is bounded by it.
fn part_of(lookup: &str, amount_minor: Option<i64>) -> Estimate {
    Estimate::FromMemory {
        lookup: lookup.to_string(),
        amount_minor,
        same_object: false,
        at_most_remembered: true,
    }
}

/// Keys whose change cannot charge anything (descriptive fields).
fn descriptive(key: &str) -> bool {
    ["metadata", "description", "expand"]
        .iter()
        .any(|k| key == *k || key.starts_with(&format!("{k}[")))
}

fn estimate_form(
    pricing: &Pricing,
    model: &str,
    req: &RequestView<'_>,
    f: &Form<'_>,
) -> Result<Estimate, String> {
    let seg = req.segments();
    // The object a call acts on: /v1/<resource>/{id}/...
    let id = seg.get(2).copied().unwrap_or_default();
    match model {
        "payment_intent_create" => {
            // An unconfirmed intent moves nothing; its amount is remembered from the answer.
            if f.flag("confirm")? {
                priced(pricing, f.required("amount")?, f.currency()?)
            } else {
                Ok(Estimate::Free)
            }
        }
        "payment_intent_confirm" => Ok(memory(id, f.amount("amount_to_confirm")?, true)),
        "payment_intent_capture" => Ok(memory(id, f.amount("amount_to_capture")?, true)),
        "payment_intent_increment" => Ok(memory(id, Some(f.required("amount")?), true)),
        "payment_intent_apply_balance" => Ok(memory(id, f.amount("amount")?, true)),
        "charge_create" | "amount_currency" => priced(pricing, f.required("amount")?, f.currency()?),
        "charge_capture" => Ok(memory(id, f.amount("amount")?, true)),
        "refund_create" => {
            let target = match (f.get("charge")?, f.get("payment_intent")?) {
                (Some(c), None) => c,
                (None, Some(p)) => p,
                _ => return Err("a refund must name exactly one of charge or payment_intent".into()),
            };
            Ok(part_of(target, f.amount("amount")?))
        }
        "balance_transaction" => {
            let v = f
                .get("amount")?
                .ok_or("field amount is required to price this call")?;
            let size = parse_minor("amount", v.strip_prefix('-').unwrap_or(v))?;
            priced(pricing, size, f.currency()?)
        }
        "transfer_reversal" => Ok(part_of(id, f.amount("amount")?)),
        "payout_reverse" => Ok(part_of(id, None)),
        "invoice_create" => {
            if f.get("auto_advance")? == Some("false") {
                Ok(Estimate::Free)
            } else {
                Err("an invoice created with auto_advance finalizes and charges by itself, for an amount that is not in the request; create it with auto_advance=false, then finalize or pay it (both priced from its amount due)".into())
            }
        }
        "invoice_update" => {
            if f.flag("auto_advance")? {
                Ok(memory(id, None, true))
            } else {
                Ok(Estimate::Free)
            }
        }
        "invoice_finalize" => Ok(memory(id, None, true)),
        "invoice_pay" => {
            if f.get("paid_out_of_band")? == Some("true") {
                Ok(Estimate::Free)
            } else {
                Ok(memory(id, None, true))
            }
        }
        "invoice_lines" => {
            let total = line_amounts(f)?;
            if total == 0 && !f.keys().any(|k| k.starts_with("lines[") || is_amount_key(k)) {
                return Ok(Estimate::Free);
            }
            Ok(memory(id, Some(total), false))
        }
        "invoiceitem" => {
            let amount = item_amount(f, "")?;
            match amount {
                None if f.keys().all(descriptive_item_key) => Ok(Estimate::Free),
                None => Err("an invoice item by price id (or a new quantity) carries no amount the gateway can read; give amount or unit_amount with currency".into()),
                Some(a) if seg.len() > 2 => Err(format!("changing an invoice item's amount (to {a} in minor units) is not priced: delete it and create a new one")),
                Some(a) => priced(pricing, a, f.currency()?),
            }
        }
        "credit_note" => {
            let invoice = f
                .get("invoice")?
                .ok_or("field invoice is required to price a credit note")?;
            let explicit = ["amount", "refund_amount", "credit_amount", "out_of_band_amount"]
                .iter()
                .map(|k| f.amount(k))
                .collect::<Result<Vec<_>, _>>()?;
            let amount = match (explicit[0], &explicit[1..]) {
                (Some(a), _) => a,
                (None, parts) if parts.iter().any(Option::is_some) => {
                    parts.iter().flatten().sum()
                }
                _ if f.keys().any(|k| k.starts_with("lines[")) => line_amounts(f)?,
                _ => return Err("a credit note without amount or lines credits the whole invoice, an amount the request does not carry; give amount".into()),
            };
            Ok(memory(invoice, Some(amount), false))
        }
        "customer_write" => match f.keys().find(|k| *k == "balance") {
            Some(_) => Err("setting a customer's balance changes what they owe or are credited; use POST /v1/customers/{customer}/balance_transactions, which is priced".into()),
            None => Ok(Estimate::Free),
        },
        "subscription_update" => {
            for (k, v) in f.0 {
                let harmless = descriptive(k)
                    || ["default_payment_method", "default_source", "off_session"].contains(&k.as_str())
                    || k.starts_with("cancellation_details[")
                    || k.starts_with("payment_settings[")
                    || (k == "cancel_at_period_end" && v == "true")
                    || (k.starts_with("pause_collection[") && !v.is_empty());
                if !harmless {
                    return Err(format!("changing {k} on a subscription may invoice a proration or raise future invoices, which the gateway cannot price; only descriptive fields, the payment method, cancel_at_period_end=true and pause_collection are free"));
                }
            }
            Ok(Estimate::Free)
        }
        "subscription_cancel" => {
            if f.flag("invoice_now")? {
                Err("canceling with invoice_now bills a final invoice of unknown size; cancel without it".into())
            } else {
                Ok(Estimate::Free)
            }
        }
        "proration_none" => {
            if f.get("proration_behavior")? == Some("none") {
                Ok(Estimate::Free)
            } else {
                Err("without proration_behavior=none this may invoice a proration of unknown size; send proration_behavior=none".into())
            }
        }
        other => Err(format!("the Stripe cost model has no rule named {other}")),
    }
}

fn is_amount_key(k: &str) -> bool {
    k == "amount"
        || k == "quantity"
        || k == "price"
        || k.starts_with("price_data[")
        || k.starts_with("pricing[")
}

/// Keys of an invoice item that change no amount.
fn descriptive_item_key(k: &str) -> bool {
    descriptive(k)
        || k.starts_with("period[")
        || k == "customer"
        || k == "invoice"
        || k == "currency"
}

/// The amount of one invoice line or item whose fields start with `p` (`lines[0]` or ``):
/// `amount`, or a unit amount × `quantity`. `None` when it names neither.
fn item_amount(f: &Form<'_>, p: &str) -> Result<Option<i64>, String> {
    let key = |k: &str| {
        if p.is_empty() {
            k.to_string()
        } else {
            match k.split_once('[') {
                Some((head, rest)) => format!("{p}[{head}][{rest}"),
                None => format!("{p}[{k}]"),
            }
        }
    };
    if let Some(v) = f.get(&key("amount"))? {
        // A negative line is a credit: it moves nothing to the customer's debit.
        let size = parse_minor("amount", v.strip_prefix('-').unwrap_or(v))?;
        return Ok(Some(if v.starts_with('-') { 0 } else { size }));
    }
    let quantity = match f.get(&key("quantity"))? {
        Some(q) => parse_minor("quantity", q)?,
        None => 1,
    };
    for unit in ["unit_amount", "price_data[unit_amount]"] {
        if let Some(v) = f.get(&key(unit))? {
            return Ok(Some(parse_minor(unit, v)?.saturating_mul(quantity)));
        }
    }
    for unit in ["unit_amount_decimal", "price_data[unit_amount_decimal]"] {
        if let Some(v) = f.get(&key(unit))? {
            return Ok(Some(decimal_minor_ceil(unit, v)?.saturating_mul(quantity)));
        }
    }
    Ok(None)
}

/// The sum of `lines[N]` amounts (or the top-level amount of a single line). A line whose
/// amount cannot be read but which changes price or quantity is refused.
fn line_amounts(f: &Form<'_>) -> Result<i64, String> {
    let mut indexes: Vec<&str> = f
        .keys()
        .filter_map(|k| k.strip_prefix("lines[")?.split_once(']').map(|(i, _)| i))
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    let prefixes: Vec<String> = if indexes.is_empty() {
        vec![String::new()]
    } else {
        indexes.iter().map(|i| format!("lines[{i}]")).collect()
    };
    let mut total = 0i64;
    for p in &prefixes {
        match item_amount(f, p)? {
            Some(a) => total = total.saturating_add(a),
            None => {
                let own = |k: &&str| {
                    if p.is_empty() {
                        true
                    } else {
                        k.starts_with(p.as_str())
                    }
                };
                let changes_price = f.keys().filter(own).any(|k| {
                    let rest = k.strip_prefix(p.as_str()).unwrap_or(k);
                    let rest = rest.trim_start_matches('[');
                    [
                        "price",
                        "pricing",
                        "quantity",
                        "discount",
                        "tax",
                        "invoice_item",
                        "price_data",
                    ]
                    .iter()
                    .any(|w| rest.starts_with(w))
                });
                if changes_price {
                    return Err(format!("line {} changes price or quantity without an amount the gateway can read; give amount or price_data[unit_amount]", if p.is_empty() { "" } else { p }));
                }
            }
        }
    }
    Ok(total)
}

/// A decimal amount in minor units (`"12.5"` cents), rounded up.
fn decimal_minor_ceil(name: &str, v: &str) -> Result<i64, String> {
    let (i, frac) = v.split_once('.').unwrap_or((v, ""));
    let whole = parse_minor(name, i)?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 12 {
        return Err(format!(
            "field {name} must be a non-negative decimal, got {v:?}"
        ));
    }
    Ok(whole.saturating_add(i64::from(frac.bytes().any(|b| b != b'0'))))
}

/// Stripe API v2 (JSON): `amount.value` in minor units and `amount.currency`.
fn v2_amount(pricing: &Pricing, req: &RequestView<'_>) -> Result<Estimate, String> {
    let v: Value = serde_json::from_slice(req.body)
        .map_err(|e| format!("a Stripe v2 call must be a JSON body ({e})"))?;
    let amount = v
        .get("amount")
        .ok_or("field amount is required to price this call")?;
    let value = amount
        .get("value")
        .and_then(Value::as_i64)
        .filter(|v| *v >= 0)
        .ok_or("field amount.value must be a non-negative integer amount in minor units")?;
    let currency = amount
        .get("currency")
        .and_then(Value::as_str)
        .ok_or("field amount.currency is required to price this call")?;
    priced(pricing, value, currency)
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

/// A non-negative integer field of an answer; `None` when it is missing, null, negative or
/// of another type (the caller then falls back, never to zero).
fn amt(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64).filter(|n| *n >= 0)
}

/// The positive figure `key` the answer states, else `or` (the whole amount) — a figure that
/// is not the position itself, so the answer is then not complete.
fn fallback(v: &Value, key: &str, or: Option<i64>, complete: &mut bool) -> Option<i64> {
    match amt(v, key).filter(|n| *n > 0) {
        Some(n) => Some(n),
        None => {
            *complete = false;
            or
        }
    }
}

/// The first of `keys` that the answer states.
fn first(v: &Value, keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|k| amt(v, k))
}

/// The money position of a Stripe object, from its `object` and `status` fields. `estimate`
/// is what the call reserved: an amount the answer does not state settles there, and such an
/// answer is not authoritative (a read may lower what is counted only when the answer states
/// the object's position completely).
pub fn object_outcome(pricing: &Pricing, v: &Value, estimate: i64) -> Option<Outcome> {
    let kind = v.get("object")?.as_str()?;
    let mut id = v.get("id")?.as_str()?.to_string();
    let status = v.get("status").and_then(Value::as_str);
    let currency = v.get("currency").and_then(Value::as_str);
    // (state, amount the answer states for it, amount to remember for later calls)
    let mut complete = currency.is_some();
    let (state, minor, remember): (MoneyState, Option<i64>, Option<i64>) = match kind {
        "payment_intent" => {
            let amount = amt(v, "amount");
            let (state, minor) = match status {
                // A succeeded intent that states 0 received proves nothing: fall back (to a
                // figure that is not the position, so not authoritative).
                Some("succeeded") => (
                    MoneyState::Moved,
                    fallback(v, "amount_received", amount, &mut complete),
                ),
                Some("requires_capture") => (
                    MoneyState::Committed,
                    fallback(v, "amount_capturable", amount, &mut complete),
                ),
                Some("processing" | "requires_action") => (MoneyState::Pending, amount),
                Some("requires_payment_method" | "requires_confirmation" | "canceled") => {
                    (MoneyState::None, Some(0))
                }
                _ => (MoneyState::Unknown, None),
            };
            // The position is complete only if what it states fits in the intent's amount.
            complete &= !state.counts() || minor.zip(amount).is_some_and(|(m, a)| m <= a);
            (state, minor, amount)
        }
        "charge" => {
            let amount = amt(v, "amount");
            let refundable = amount.map(|a| (a - amt(v, "amount_refunded").unwrap_or(0)).max(0));
            let captured = v.get("captured").and_then(Value::as_bool);
            let (state, minor) = match (status, captured) {
                (Some("succeeded"), Some(true)) => (
                    MoneyState::Moved,
                    fallback(v, "amount_captured", amount, &mut complete),
                ),
                (Some("succeeded"), Some(false)) => (MoneyState::Committed, amount),
                // Captured or not, both count; which one is unknown.
                (Some("succeeded"), None) => (MoneyState::Moved, None),
                (Some("pending"), _) => (MoneyState::Pending, amount),
                (Some("failed"), _) => (MoneyState::None, Some(0)),
                _ => (MoneyState::Unknown, None),
            };
            (state, minor, refundable)
        }
        "refund" => {
            let (state, minor) = match status {
                Some("succeeded") => (MoneyState::Moved, amt(v, "amount")),
                Some("pending" | "requires_action") => (MoneyState::Pending, amt(v, "amount")),
                Some("failed" | "canceled") => (MoneyState::None, Some(0)),
                _ => (MoneyState::Unknown, None),
            };
            (state, minor, None)
        }
        "transfer" => {
            let reversed = amt(v, "amount_reversed");
            complete &= reversed.is_some();
            let left = amt(v, "amount").map(|a| (a - reversed.unwrap_or(0)).max(0));
            (MoneyState::Moved, left, left)
        }
        "payout" | "topup" => {
            let amount = amt(v, "amount");
            let (state, minor) = match status {
                Some("paid" | "succeeded") => (MoneyState::Moved, amount),
                Some("pending" | "in_transit") => (MoneyState::Pending, amount),
                Some("failed" | "canceled" | "reversed") => (MoneyState::None, Some(0)),
                _ => (MoneyState::Unknown, None),
            };
            (state, minor, amount)
        }
        "treasury.outbound_payment"
        | "treasury.outbound_transfer"
        | "treasury.inbound_transfer" => {
            let amount = amt(v, "amount");
            let (state, minor) = match status {
                Some("posted" | "succeeded") => (MoneyState::Moved, amount),
                Some("processing") => (MoneyState::Pending, amount),
                Some("failed" | "canceled" | "returned") => (MoneyState::None, Some(0)),
                _ => (MoneyState::Unknown, None),
            };
            (state, minor, None)
        }
        "customer_balance_transaction" => {
            let size = v.get("amount").and_then(Value::as_i64).map(i64::abs);
            (MoneyState::Moved, size, None)
        }
        "credit_note" => {
            let (state, minor) = match status {
                Some("issued") => (MoneyState::Moved, amt(v, "amount")),
                Some("void") => (MoneyState::None, Some(0)),
                _ => (MoneyState::Unknown, None),
            };
            (state, minor, None)
        }
        "invoiceitem" => {
            // An item is part of its invoice's money: its count is kept under the invoice's
            // id, so finalizing or paying the invoice (priced from the invoice's amount due)
            // counts only what the items have not, and the paid invoice settles them all.
            // Never authoritative: the item alone does not state the invoice's position.
            if let Some(invoice) = v.get("invoice").and_then(Value::as_str) {
                id = invoice.to_string();
            }
            complete = false;
            let amount = v.get("amount").and_then(Value::as_i64).map(|a| a.max(0));
            (MoneyState::Pending, amount, None)
        }
        "climate.order" => {
            let (state, minor) = match status {
                Some("canceled") => (MoneyState::None, Some(0)),
                Some(_) => (MoneyState::Moved, amt(v, "amount_total")),
                None => (MoneyState::Unknown, None),
            };
            (state, minor, None)
        }
        "invoice" => {
            let due = first(v, &["amount_remaining", "amount_due", "total"]);
            let (state, minor) = match status {
                Some("paid") => (
                    MoneyState::Moved,
                    fallback(v, "amount_paid", amt(v, "total"), &mut complete),
                ),
                Some("void" | "uncollectible") => (MoneyState::None, Some(0)),
                // An open or draft invoice proves nothing either way: a finalize or pay
                // answered with one stays counted at what was reserved, a read changes nothing.
                _ => (MoneyState::Unknown, None),
            };
            (state, minor, due)
        }
        _ => return None,
    };
    let conv = |minor: i64| currency.and_then(|c| minor_to_micros(pricing, minor, c));
    let remember = remember.and_then(|m| {
        let keep = m > 0 || kind == "invoice";
        keep.then(|| conv(m)).flatten().map(|micros| Remembered {
            micros,
            currency: currency.unwrap_or_default().to_ascii_uppercase(),
        })
    });
    // What the answer states, in µUSD; `None` when it states too little to say.
    let stated = match minor {
        _ if state == MoneyState::Unknown => None,
        Some(0) if !state.counts() => Some(0),
        Some(m) => conv(m),
        None => None,
    };
    let (cost, authoritative) = match stated {
        Some(c) if complete => (c, true),
        // Incomplete: settle at the estimate (or more, if the answer states more) in the
        // state the status implies; a read leaves the records alone.
        _ => (estimate.max(stated.unwrap_or(0)), false),
    };
    Some(Outcome {
        state: if state.counts() || authoritative {
            state
        } else {
            MoneyState::Unknown
        },
        cost_micros: if state.counts() || !authoritative {
            cost
        } else {
            0
        },
        object: Some(ObjectFacts {
            id,
            remember,
            authoritative,
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
        crate::cost::estimate(&Pricing::default(), Vendor::Stripe, &post(path, body))
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
            crate::cost::estimate(&Pricing::default(), Vendor::Stripe, &json_body),
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
                same_object: true,
                at_most_remembered: false
            }
        );
        assert_eq!(
            est("/v1/payment_intents/pi_1/capture", "amount_to_capture=300"),
            Estimate::FromMemory {
                lookup: "pi_1".into(),
                amount_minor: Some(300),
                same_object: true,
                at_most_remembered: false
            }
        );
        assert_eq!(
            est("/v1/refunds", "payment_intent=pi_1"),
            Estimate::FromMemory {
                lookup: "pi_1".into(),
                amount_minor: None,
                same_object: false,
                at_most_remembered: true
            }
        );
        assert_eq!(
            est("/v1/invoices/in_1/pay", ""),
            Estimate::FromMemory {
                lookup: "in_1".into(),
                amount_minor: None,
                same_object: true,
                at_most_remembered: false
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
        assert_eq!(
            crate::cost::estimate(&Pricing::default(), Vendor::Stripe, &get),
            Estimate::Free
        );
    }

    fn outcome(v: Value) -> (MoneyState, i64) {
        let o = object_outcome(&Pricing::default(), &v, 0).unwrap();
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
        let open = object_outcome(&Pricing::default(), &inv("open"), 0).unwrap();
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

#[cfg(test)]
mod catalogue_models {
    use super::*;

    fn req<'a>(method: &'a str, path: &'a str, body: &'a str) -> RequestView<'a> {
        RequestView::form_test(method, path, body)
    }

    fn est(path: &str, body: &str) -> Estimate {
        crate::cost::estimate(
            &Pricing::default(),
            Vendor::Stripe,
            &req("POST", path, body),
        )
    }

    fn micros(e: Estimate) -> i64 {
        match e {
            Estimate::Priced { micros, .. } => micros,
            other => panic!("not priced: {other:?}"),
        }
    }

    fn refused(e: &Estimate) -> bool {
        matches!(e, Estimate::CannotPrice(_))
    }

    #[test]
    fn money_out_of_the_balance_is_priced_from_the_request() {
        for path in [
            "/v1/topups",
            "/v1/transfers",
            "/v1/payouts",
            "/v1/treasury/outbound_payments",
            "/v1/treasury/outbound_transfers",
            "/v1/climate/orders",
        ] {
            assert_eq!(
                micros(est(path, "amount=2500&currency=usd")),
                25_000_000,
                "{path}"
            );
            assert!(refused(&est(path, "currency=usd")), "{path}");
        }
        // A customer balance adjustment counts by its size, debit or credit.
        let bt = "/v1/customers/cus_1/balance_transactions";
        assert_eq!(micros(est(bt, "amount=-1500&currency=usd")), 15_000_000);
        assert_eq!(micros(est(bt, "amount=700&currency=eur")), 7_700_000);
        assert!(refused(&est(bt, "amount=700")));
        // Setting the balance directly is refused, other customer fields are free.
        assert!(refused(&est("/v1/customers/cus_1", "balance=5000")));
        assert_eq!(
            est("/v1/customers/cus_1", "name=Ada&metadata%5Bx%5D=1"),
            Estimate::Free
        );
        // Stripe v2 carries the amount in JSON.
        let v2 = RequestView {
            content_type: Some("application/json"),
            ..req(
                "POST",
                "/v2/money_management/outbound_payments",
                r#"{"amount":{"value":1234,"currency":"usd"},"from":{}}"#,
            )
        };
        assert_eq!(
            micros(crate::cost::estimate(
                &Pricing::default(),
                Vendor::Stripe,
                &v2
            )),
            12_340_000
        );
        let no_amount = RequestView { body: b"{}", ..v2 };
        assert!(refused(&crate::cost::estimate(
            &Pricing::default(),
            Vendor::Stripe,
            &no_amount
        )));
    }

    #[test]
    fn invoices_and_their_items() {
        assert!(refused(&est("/v1/invoices", "customer=cus_1")));
        assert!(refused(&est(
            "/v1/invoices",
            "customer=cus_1&auto_advance=true"
        )));
        assert_eq!(
            est("/v1/invoices", "customer=cus_1&auto_advance=false"),
            Estimate::Free
        );
        assert!(matches!(
            est("/v1/invoices/in_1", "auto_advance=true"),
            Estimate::FromMemory {
                same_object: true,
                ..
            }
        ));
        assert_eq!(est("/v1/invoices/in_1", "description=x"), Estimate::Free);
        assert!(matches!(
            est("/v1/invoices/in_1/finalize", ""),
            Estimate::FromMemory {
                same_object: true,
                amount_minor: None,
                ..
            }
        ));
        let item = "/v1/invoiceitems";
        assert_eq!(
            micros(est(item, "customer=cus_1&amount=900&currency=usd")),
            9_000_000
        );
        assert_eq!(
            micros(est(
                item,
                "customer=cus_1&unit_amount_decimal=12.5&quantity=4&currency=usd"
            )),
            520_000
        );
        assert_eq!(
            micros(est(
                item,
                "customer=cus_1&price_data%5Bunit_amount%5D=300&quantity=3&currency=usd"
            )),
            9_000_000
        );
        assert_eq!(
            micros(est(item, "customer=cus_1&amount=-900&currency=usd")),
            0
        );
        assert!(refused(&est(item, "customer=cus_1&price=price_1")));
        assert!(refused(&est("/v1/invoiceitems/ii_1", "amount=100")));
        assert_eq!(
            est("/v1/invoiceitems/ii_1", "description=x"),
            Estimate::Free
        );
        // Lines are priced in the remembered invoice's currency; one without an amount is refused.
        let lines = est("/v1/invoices/in_1/add_lines", "lines%5B0%5D%5Bamount%5D=500&lines%5B1%5D%5Bprice_data%5D%5Bunit_amount%5D=200&lines%5B1%5D%5Bquantity%5D=2");
        assert_eq!(
            lines,
            Estimate::FromMemory {
                lookup: "in_1".into(),
                amount_minor: Some(900),
                same_object: false,
                at_most_remembered: false
            }
        );
        assert!(refused(&est(
            "/v1/invoices/in_1/add_lines",
            "lines%5B0%5D%5Bpricing%5D%5Bprice%5D=price_1"
        )));
        assert_eq!(
            est("/v1/invoices/in_1/lines/il_1", "description=x"),
            Estimate::Free
        );
        // A credit note refunds or credits: its amount (or its parts), on the remembered invoice.
        assert_eq!(
            est(
                "/v1/credit_notes",
                "invoice=in_1&refund_amount=300&credit_amount=200"
            ),
            Estimate::FromMemory {
                lookup: "in_1".into(),
                amount_minor: Some(500),
                same_object: false,
                at_most_remembered: false
            }
        );
        assert!(refused(&est("/v1/credit_notes", "invoice=in_1")));
    }

    #[test]
    fn subscriptions_change_only_in_ways_that_cannot_charge() {
        let sub = "/v1/subscriptions/sub_1";
        assert_eq!(
            est(sub, "metadata%5Ba%5D=1&cancel_at_period_end=true"),
            Estimate::Free
        );
        assert_eq!(
            est(sub, "pause_collection%5Bbehavior%5D=void"),
            Estimate::Free
        );
        for body in [
            "cancel_at_period_end=false",
            "items%5B0%5D%5Bprice%5D=p",
            "trial_end=now",
            "pause_collection=",
        ] {
            assert!(refused(&est(sub, body)), "{body}");
        }
        // Canceling is free unless it bills a final invoice; a DELETE carries it in the query.
        let del = |q: Option<&'static str>| {
            crate::cost::estimate(
                &Pricing::default(),
                Vendor::Stripe,
                &RequestView {
                    query: q,
                    ..req("DELETE", sub, "")
                },
            )
        };
        assert_eq!(del(None), Estimate::Free);
        assert!(refused(&del(Some("invoice_now=true"))));
        assert_eq!(del(Some("invoice_now=false")), Estimate::Free);
        assert!(refused(&crate::cost::estimate(
            &Pricing::default(),
            Vendor::Stripe,
            &req("DELETE", "/v1/subscription_items/si_1", "")
        )));
    }

    #[test]
    fn refunds_and_reversals_are_bounded_by_what_is_left() {
        assert_eq!(
            est("/v1/refunds", "charge=ch_1&amount=100"),
            Estimate::FromMemory {
                lookup: "ch_1".into(),
                amount_minor: Some(100),
                same_object: false,
                at_most_remembered: true
            }
        );
        assert!(matches!(
            est("/v1/transfers/tr_1/reversals", ""),
            Estimate::FromMemory {
                at_most_remembered: true,
                ..
            }
        ));
        assert!(matches!(
            est("/v1/payouts/po_1/reverse", ""),
            Estimate::FromMemory {
                at_most_remembered: true,
                ..
            }
        ));
    }

    #[test]
    fn confirm_flag_fails_closed() {
        // Anything but an absent or literal false confirm is priced.
        assert!(matches!(
            est(
                "/v1/payment_intents",
                "amount=100&currency=usd&confirm=True"
            ),
            Estimate::Priced { .. }
        ));
        assert!(matches!(
            est("/v1/payment_intents", "amount=100&currency=usd&confirm=1"),
            Estimate::Priced { .. }
        ));
        assert_eq!(
            est(
                "/v1/payment_intents",
                "amount=100&currency=usd&confirm=false"
            ),
            Estimate::Free
        );
    }
}
