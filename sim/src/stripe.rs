//! Stripe: payment intents, charges, refunds, customers, top-ups, invoices, balance.

use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::ids::{alnum, stripe_id, unix_now};
use crate::plumbing::{credential, to_json, Answer, Call, Credential, Form, Reply, Vendor};
use crate::stripe_key;
use crate::world::{idempotent, World};

#[derive(Clone, Serialize)]
pub(crate) struct PaymentIntent {
    id: String,
    object: &'static str,
    amount: i64,
    amount_capturable: i64,
    amount_received: i64,
    canceled_at: Option<i64>,
    cancellation_reason: Option<String>,
    capture_method: String,
    client_secret: String,
    confirmation_method: &'static str,
    created: i64,
    currency: String,
    customer: Option<String>,
    description: Option<String>,
    last_payment_error: Option<Value>,
    latest_charge: Option<String>,
    livemode: bool,
    metadata: Map<String, Value>,
    payment_method: Option<String>,
    payment_method_types: Vec<&'static str>,
    status: &'static str,
}

#[derive(Clone, Serialize)]
pub(crate) struct Charge {
    id: String,
    object: &'static str,
    amount: i64,
    amount_captured: i64,
    amount_refunded: i64,
    captured: bool,
    created: i64,
    currency: String,
    customer: Option<String>,
    description: Option<String>,
    failure_code: Option<&'static str>,
    failure_message: Option<&'static str>,
    livemode: bool,
    metadata: Map<String, Value>,
    paid: bool,
    payment_intent: Option<String>,
    payment_method: Option<String>,
    refunded: bool,
    status: &'static str,
}

impl Charge {
    fn new(amount: i64, currency: &str) -> Self {
        Charge {
            id: stripe_id("ch"),
            object: "charge",
            amount,
            amount_captured: amount,
            amount_refunded: 0,
            captured: true,
            created: unix_now(),
            currency: currency.to_string(),
            customer: None,
            description: None,
            failure_code: None,
            failure_message: None,
            livemode: false,
            metadata: Map::new(),
            paid: true,
            payment_intent: None,
            payment_method: None,
            refunded: false,
            status: "succeeded",
        }
    }
}

pub(crate) fn stripe(world: &mut World, call: &Call) -> Reply {
    let request_id = format!("req_{}", alnum(14));
    let reply = match stripe_auth(call.headers) {
        Ok(()) => idempotent(world, Vendor::Stripe, call, Some(&request_id), stripe_route),
        Err(reply) => reply,
    };
    reply.with("request-id", request_id)
}

fn stripe_auth(headers: &HeaderMap) -> Result<(), Reply> {
    let presented = match credential(headers) {
        Credential::Bearer(key) | Credential::Basic(key, _) => key,
        Credential::Malformed => String::new(),
        Credential::Missing => {
            return Err(stripe_unauthorized(
                "You did not provide an API key. You need to provide your API key in the \
                 Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
                 YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, \
                 or we can help at https://support.stripe.com/."
                    .to_string(),
            ))
        }
    };
    if presented == stripe_key() {
        return Ok(());
    }
    Err(stripe_unauthorized(format!(
        "Invalid API Key provided: {}",
        mask_key(&presented)
    )))
}

fn stripe_unauthorized(message: String) -> Reply {
    let error = json!({ "type": "invalid_request_error", "message": message });
    stripe_error(StatusCode::UNAUTHORIZED, error).with("www-authenticate", "Basic realm=\"Stripe\"")
}

/// Like Stripe: the key's `prefix_` and last four characters, stars between.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let head = chars
        .iter()
        .take(8)
        .rposition(|&c| c == '_')
        .map_or(0, |i| i + 1);
    let tail = if chars.len() >= head + 16 { 4 } else { 0 };
    let stars = chars.len() - head - tail;
    let head: String = chars[..head].iter().collect();
    let tail: String = chars[chars.len() - tail..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(stars))
}

fn stripe_route(world: &mut World, call: &Call) -> Reply {
    let form = Form::parse(call.body);
    let answer = match (call.method.as_str(), call.segments().as_slice()) {
        ("GET", ["v1", "payment_intents"]) => Ok(stripe_list(
            "/v1/payment_intents",
            world.payment_intents.values().map(to_json),
            &Form::parse(call.query.unwrap_or_default().as_bytes()),
        )),
        ("POST", ["v1", "payment_intents"]) => pi_create(world, &form),
        ("GET", ["v1", "payment_intents", id]) => {
            pi_get(world, id).map(|pi| Reply::ok(to_json(&pi)))
        }
        ("POST", ["v1", "payment_intents", id, "confirm"]) => pi_confirm(world, id, &form),
        ("POST", ["v1", "payment_intents", id, "capture"]) => pi_capture(world, id, &form),
        ("POST", ["v1", "payment_intents", id, "cancel"]) => pi_cancel(world, id, &form),
        ("POST", ["v1", "payment_intents", id, "increment_authorization"]) => {
            pi_increment(world, id, &form)
        }
        ("POST", ["v1", "charges"]) => charge_create(world, &form),
        ("GET", ["v1", "charges", id]) => charge_get(world, id).map(|ch| Reply::ok(to_json(&ch))),
        ("POST", ["v1", "charges", id, "capture"]) => charge_capture(world, id, &form),
        ("POST", ["v1", "refunds"]) => refund_create(world, &form),
        ("GET", ["v1", "refunds", id]) => stored(world, "refund", id),
        ("POST", ["v1", "customers"]) => Ok(customer_create(world, &form)),
        ("GET", ["v1", "customers", id]) => stored(world, "customer", id),
        ("GET", ["v1", "balance"]) => Ok(Reply::ok(balance())),
        ("POST", ["v1", "topups"]) => topup_create(world, &form),
        ("GET", ["v1", "topups", id]) => stored(world, "topup", id),
        ("POST", ["v1", "invoiceitems"]) => invoice_item_create(world, &form),
        ("GET", ["v1", "invoiceitems", id]) => world
            .invoice_items
            .get(*id)
            .map(|item| Reply::ok(item.clone()))
            .ok_or_else(|| resource_missing("invoiceitem", id, "id")),
        ("POST", ["v1", "invoices"]) => invoice_create(world, &form),
        ("GET", ["v1", "invoices"]) => Ok(stripe_list(
            "/v1/invoices",
            world.invoices.values().cloned(),
            &Form::parse(call.query.unwrap_or_default().as_bytes()),
        )),
        ("GET", ["v1", "invoices", id]) => invoice_get(world, id).map(Reply::ok),
        ("POST", ["v1", "invoices", id, "finalize"]) => invoice_finalize(world, id),
        ("POST", ["v1", "invoices", id, "pay"]) => invoice_pay(world, id),
        _ => Err(stripe_error(
            StatusCode::NOT_FOUND,
            json!({
                "type": "invalid_request_error",
                "message": format!(
                    "Unrecognized request URL ({}: {}). Please see https://stripe.com/docs or \
                     we can help at https://support.stripe.com/.",
                    call.method, call.path
                ),
            }),
        )),
    };
    answer.unwrap_or_else(|error| error)
}

pub(crate) fn stripe_error(status: StatusCode, error: Value) -> Reply {
    Reply::new(status, json!({ "error": error }))
}

/// 400 `invalid_request_error`, with a `doc_url` when there is a code.
pub(crate) fn stripe_invalid(
    param: Option<&str>,
    code: Option<&str>,
    message: impl Into<String>,
) -> Reply {
    let mut error = json!({ "type": "invalid_request_error", "message": message.into() });
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(stripe_doc_url(code));
    }
    stripe_error(StatusCode::BAD_REQUEST, error)
}

fn stripe_doc_url(code: &str) -> String {
    format!(
        "https://stripe.com/docs/error-codes/{}",
        code.replace('_', "-")
    )
}

fn resource_missing(kind: &str, id: &str, param: &str) -> Reply {
    let error = json!({
        "type": "invalid_request_error",
        "code": "resource_missing",
        "doc_url": stripe_doc_url("resource_missing"),
        "message": format!("No such {kind}: '{id}'"),
        "param": param,
    });
    stripe_error(StatusCode::NOT_FOUND, error)
}

fn unexpected_state(pi: &PaymentIntent, action: &str, allowed: &[&str]) -> Reply {
    let error = json!({
        "type": "invalid_request_error",
        "code": "payment_intent_unexpected_state",
        "doc_url": stripe_doc_url("payment_intent_unexpected_state"),
        "message": format!(
            "You cannot {action} this PaymentIntent because it has a status of {}. It must \
             have one of these statuses: {}.",
            pi.status,
            allowed.join(", ")
        ),
        "payment_intent": to_json(pi),
    });
    stripe_error(StatusCode::BAD_REQUEST, error)
}

fn missing_param(name: &str) -> Reply {
    stripe_invalid(
        Some(name),
        Some("parameter_missing"),
        format!("Missing required param: {name}."),
    )
}

/// A positive integer amount (minor units), if given.
fn stripe_amount(form: &Form, name: &str) -> Result<Option<i64>, Reply> {
    let Some(raw) = form.get(name) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(amount) if amount >= 1 => Ok(Some(amount)),
        Ok(_) => Err(stripe_invalid(
            Some(name),
            Some("parameter_invalid_integer"),
            "This value must be greater than or equal to 1.",
        )),
        Err(_) => Err(stripe_invalid(
            Some(name),
            Some("parameter_invalid_integer"),
            format!("Invalid integer: {raw}"),
        )),
    }
}

/// Stripe's limits on a charge amount: at most eight digits, and at least $0.50 in USD.
fn check_amount(amount: i64, currency: &str, param: &str) -> Result<(), Reply> {
    if amount > 99_999_999 {
        return Err(stripe_invalid(
            Some(param),
            Some("amount_too_large"),
            "Amount must be no more than 99999999 in the currency's smallest unit.",
        ));
    }
    if currency == "usd" && amount < 50 {
        return Err(stripe_invalid(
            Some(param),
            Some("amount_too_small"),
            "Amount must be at least $0.50 usd",
        ));
    }
    Ok(())
}

fn stripe_currency(form: &Form) -> Result<String, Reply> {
    let raw = form
        .get("currency")
        .ok_or_else(|| missing_param("currency"))?;
    let currency = raw.to_ascii_lowercase();
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(currency)
    } else {
        Err(stripe_invalid(
            Some("currency"),
            None,
            format!("Invalid currency: {raw}."),
        ))
    }
}

fn stripe_bool(form: &Form, name: &str) -> Result<Option<bool>, Reply> {
    match form.get(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(raw) => Err(stripe_invalid(
            Some(name),
            None,
            format!("Invalid boolean: {raw}"),
        )),
    }
}

fn capture_method(raw: &str) -> Result<String, Reply> {
    match raw {
        "automatic" | "automatic_async" | "manual" => Ok(raw.to_string()),
        _ => Err(stripe_invalid(
            Some("capture_method"),
            None,
            format!("Invalid capture_method: must be one of automatic, automatic_async, or manual (got {raw})"),
        )),
    }
}

/// Stripe's test payment methods that decline: (decline_code, message).
fn decline(payment_method: &str) -> Option<(&'static str, &'static str)> {
    match payment_method {
        "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" | "tok_chargeDeclined" => {
            Some(("generic_decline", "Your card was declined."))
        }
        "pm_card_chargeDeclinedInsufficientFunds" | "tok_chargeDeclinedInsufficientFunds" => {
            Some(("insufficient_funds", "Your card has insufficient funds."))
        }
        _ => None,
    }
}

fn card_error(decline_code: &str, message: &str) -> Value {
    json!({
        "type": "card_error",
        "code": "card_declined",
        "decline_code": decline_code,
        "doc_url": stripe_doc_url("card_declined"),
        "message": message,
    })
}

fn pi_get(world: &World, id: &str) -> Result<PaymentIntent, Reply> {
    world
        .payment_intents
        .get(id)
        .cloned()
        .ok_or_else(|| resource_missing("payment_intent", id, "id"))
}

fn pi_save(world: &mut World, pi: &PaymentIntent) -> Reply {
    world.payment_intents.insert(pi.id.clone(), pi.clone());
    Reply::ok(to_json(pi))
}

fn no_payment_method() -> Reply {
    stripe_invalid(
        Some("payment_method"),
        Some("payment_intent_unexpected_state"),
        "You cannot confirm this PaymentIntent because it's missing a payment method. Pass \
         `payment_method` (for example pm_card_visa).",
    )
}

fn pi_create(world: &mut World, form: &Form) -> Answer {
    let amount = stripe_amount(form, "amount")?.ok_or_else(|| missing_param("amount"))?;
    let currency = stripe_currency(form)?;
    check_amount(amount, &currency, "amount")?;
    let capture_method = capture_method(form.get("capture_method").unwrap_or("automatic_async"))?;
    let confirm = stripe_bool(form, "confirm")?.unwrap_or(false);
    let payment_method = form.non_empty("payment_method").map(str::to_string);
    if confirm && payment_method.is_none() {
        return Err(no_payment_method());
    }
    let id = stripe_id("pi");
    let mut pi = PaymentIntent {
        client_secret: format!("{id}_secret_{}", alnum(25)),
        id,
        object: "payment_intent",
        amount,
        amount_capturable: 0,
        amount_received: 0,
        canceled_at: None,
        cancellation_reason: None,
        capture_method,
        confirmation_method: "automatic",
        created: unix_now(),
        currency,
        customer: form.non_empty("customer").map(str::to_string),
        description: form.non_empty("description").map(str::to_string),
        last_payment_error: None,
        latest_charge: None,
        livemode: false,
        metadata: form.metadata(),
        status: if payment_method.is_some() {
            "requires_confirmation"
        } else {
            "requires_payment_method"
        },
        payment_method,
        payment_method_types: vec!["card"],
    };
    let result = if confirm {
        confirm_pi(world, &mut pi)
    } else {
        Ok(())
    };
    let reply = pi_save(world, &pi);
    result.map(|()| reply)
}

/// Charges the intent's payment method. A decline leaves the intent in
/// `requires_payment_method` and answers 402; the caller saves the intent either way.
fn confirm_pi(world: &mut World, pi: &mut PaymentIntent) -> Result<(), Reply> {
    let Some(payment_method) = pi.payment_method.clone() else {
        return Err(no_payment_method());
    };
    let mut charge = Charge::new(pi.amount, &pi.currency);
    charge.payment_intent = Some(pi.id.clone());
    charge.payment_method = Some(payment_method.clone());
    charge.customer = pi.customer.clone();
    pi.latest_charge = Some(charge.id.clone());

    if let Some((decline_code, message)) = decline(&payment_method) {
        charge.amount_captured = 0;
        charge.captured = false;
        charge.paid = false;
        charge.status = "failed";
        charge.failure_code = Some("card_declined");
        charge.failure_message = Some(message);
        let mut error = card_error(decline_code, message);
        error["charge"] = json!(charge.id);
        pi.status = "requires_payment_method";
        pi.last_payment_error = Some(error.clone());
        error["payment_intent"] = to_json(pi);
        world.charges.insert(charge.id.clone(), charge);
        return Err(stripe_error(StatusCode::PAYMENT_REQUIRED, error));
    }

    pi.last_payment_error = None;
    if pi.capture_method == "manual" {
        charge.amount_captured = 0;
        charge.captured = false;
        pi.status = "requires_capture";
        pi.amount_capturable = pi.amount;
    } else {
        pi.status = "succeeded";
        pi.amount_received = pi.amount;
    }
    world.charges.insert(charge.id.clone(), charge);
    Ok(())
}

fn pi_confirm(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut pi = pi_get(world, id)?;
    let allowed = [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ];
    if !allowed.contains(&pi.status) {
        return Err(unexpected_state(&pi, "confirm", &allowed));
    }
    if let Some(payment_method) = form.non_empty("payment_method") {
        pi.payment_method = Some(payment_method.to_string());
    }
    if let Some(raw) = form.get("capture_method") {
        pi.capture_method = capture_method(raw)?;
    }
    let result = confirm_pi(world, &mut pi);
    let reply = pi_save(world, &pi);
    result.map(|()| reply)
}

fn pi_capture(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut pi = pi_get(world, id)?;
    if pi.status != "requires_capture" {
        return Err(unexpected_state(&pi, "capture", &["requires_capture"]));
    }
    let amount = stripe_amount(form, "amount_to_capture")?.unwrap_or(pi.amount_capturable);
    if amount > pi.amount_capturable {
        return Err(stripe_invalid(
            Some("amount_to_capture"),
            Some("amount_too_large"),
            format!(
                "The amount to capture ({amount}) is greater than the amount capturable ({}).",
                pi.amount_capturable
            ),
        ));
    }
    pi.status = "succeeded";
    pi.amount_received = amount;
    pi.amount_capturable = 0;
    if let Some(charge) = pi
        .latest_charge
        .as_ref()
        .and_then(|c| world.charges.get_mut(c))
    {
        charge.captured = true;
        charge.amount_captured = amount;
    }
    Ok(pi_save(world, &pi))
}

fn pi_cancel(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut pi = pi_get(world, id)?;
    let allowed = [
        "requires_payment_method",
        "requires_capture",
        "requires_confirmation",
        "requires_action",
        "processing",
    ];
    if !allowed.contains(&pi.status) {
        return Err(unexpected_state(&pi, "cancel", &allowed));
    }
    if pi.status == "requires_capture" {
        // The uncaptured authorization is released.
        if let Some(charge) = pi
            .latest_charge
            .as_ref()
            .and_then(|c| world.charges.get_mut(c))
        {
            charge.refunded = true;
            charge.amount_refunded = charge.amount;
        }
    }
    pi.status = "canceled";
    pi.amount_capturable = 0;
    pi.canceled_at = Some(unix_now());
    pi.cancellation_reason = form.non_empty("cancellation_reason").map(str::to_string);
    Ok(pi_save(world, &pi))
}

fn pi_increment(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut pi = pi_get(world, id)?;
    if pi.status != "requires_capture" {
        return Err(unexpected_state(
            &pi,
            "increment the authorization of",
            &["requires_capture"],
        ));
    }
    let amount = stripe_amount(form, "amount")?.ok_or_else(|| missing_param("amount"))?;
    if amount <= pi.amount {
        return Err(stripe_invalid(
            Some("amount"),
            None,
            format!(
                "The new amount ({amount}) must be greater than the currently authorized amount ({}).",
                pi.amount
            ),
        ));
    }
    check_amount(amount, &pi.currency, "amount")?;
    pi.amount = amount;
    pi.amount_capturable = amount;
    if let Some(charge) = pi
        .latest_charge
        .as_ref()
        .and_then(|c| world.charges.get_mut(c))
    {
        charge.amount = amount;
    }
    Ok(pi_save(world, &pi))
}

fn charge_get(world: &World, id: &str) -> Result<Charge, Reply> {
    world
        .charges
        .get(id)
        .cloned()
        .ok_or_else(|| resource_missing("charge", id, "id"))
}

fn charge_create(world: &mut World, form: &Form) -> Answer {
    let amount = stripe_amount(form, "amount")?.ok_or_else(|| missing_param("amount"))?;
    let currency = stripe_currency(form)?;
    check_amount(amount, &currency, "amount")?;
    let capture = stripe_bool(form, "capture")?.unwrap_or(true);
    let source = form.non_empty("source");
    if source.is_none() && form.non_empty("customer").is_none() {
        return Err(stripe_invalid(
            Some("source"),
            Some("parameter_missing"),
            "Must provide source or customer.",
        ));
    }
    let mut charge = Charge::new(amount, &currency);
    charge.customer = form.non_empty("customer").map(str::to_string);
    charge.description = form.non_empty("description").map(str::to_string);
    charge.metadata = form.metadata();
    charge.payment_method = source.map(str::to_string);
    if let Some((decline_code, message)) = source.and_then(decline) {
        charge.amount_captured = 0;
        charge.captured = false;
        charge.paid = false;
        charge.status = "failed";
        charge.failure_code = Some("card_declined");
        charge.failure_message = Some(message);
        let mut error = card_error(decline_code, message);
        error["charge"] = json!(charge.id);
        world.charges.insert(charge.id.clone(), charge);
        return Err(stripe_error(StatusCode::PAYMENT_REQUIRED, error));
    }
    if !capture {
        charge.captured = false;
        charge.amount_captured = 0;
    }
    let reply = Reply::ok(to_json(&charge));
    world.charges.insert(charge.id.clone(), charge);
    Ok(reply)
}

fn charge_capture(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut charge = charge_get(world, id)?;
    if charge.captured || charge.status != "succeeded" || charge.refunded {
        return Err(stripe_invalid(
            None,
            Some("charge_already_captured"),
            format!("Charge {id} has already been captured."),
        ));
    }
    let amount = stripe_amount(form, "amount")?.unwrap_or(charge.amount);
    if amount > charge.amount {
        return Err(stripe_invalid(
            Some("amount"),
            Some("amount_too_large"),
            format!(
                "The amount to capture ({amount}) is greater than the charge amount ({}).",
                charge.amount
            ),
        ));
    }
    charge.captured = true;
    charge.amount_captured = amount;
    let reply = Reply::ok(to_json(&charge));
    world.charges.insert(charge.id.clone(), charge);
    Ok(reply)
}

fn refund_create(world: &mut World, form: &Form) -> Answer {
    let charge_id = match (form.non_empty("charge"), form.non_empty("payment_intent")) {
        (Some(charge), _) => charge.to_string(),
        (None, Some(pi_id)) => {
            let pi = world
                .payment_intents
                .get(pi_id)
                .ok_or_else(|| resource_missing("payment_intent", pi_id, "payment_intent"))?;
            pi.latest_charge.clone().filter(|_| pi.amount_received > 0).ok_or_else(|| {
                stripe_invalid(
                    Some("payment_intent"),
                    None,
                    format!("This PaymentIntent ({pi_id}) does not have a successful charge to refund."),
                )
            })?
        }
        (None, None) => {
            return Err(stripe_invalid(
                Some("charge"),
                Some("parameter_missing"),
                "One of `charge` or `payment_intent` is required.",
            ))
        }
    };
    let charge = world
        .charges
        .get_mut(&charge_id)
        .ok_or_else(|| resource_missing("charge", &charge_id, "charge"))?;
    let refundable = charge.amount_captured - charge.amount_refunded;
    if refundable <= 0 {
        return Err(stripe_invalid(
            Some("charge"),
            Some("charge_already_refunded"),
            format!("Charge {charge_id} has already been refunded."),
        ));
    }
    let amount = stripe_amount(form, "amount")?.unwrap_or(refundable);
    if amount > refundable {
        return Err(stripe_invalid(
            Some("amount"),
            Some("charge_already_refunded"),
            format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})"
            ),
        ));
    }
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded >= charge.amount_captured;
    let refund = json!({
        "id": stripe_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": null,
        "charge": charge.id,
        "created": unix_now(),
        "currency": charge.currency,
        "livemode": false,
        "metadata": form.metadata(),
        "payment_intent": charge.payment_intent,
        "reason": form.non_empty("reason"),
        "status": "succeeded",
    });
    Ok(store_stripe_object(world, refund))
}

fn customer_create(world: &mut World, form: &Form) -> Reply {
    let customer = json!({
        "id": stripe_id("cus"),
        "object": "customer",
        "balance": 0,
        "created": unix_now(),
        "currency": null,
        "delinquent": false,
        "description": form.non_empty("description"),
        "email": form.non_empty("email"),
        "livemode": false,
        "metadata": form.metadata(),
        "name": form.non_empty("name"),
        "phone": form.non_empty("phone"),
    });
    store_stripe_object(world, customer)
}

fn store_stripe_object(world: &mut World, object: Value) -> Reply {
    if let Some(id) = object["id"].as_str() {
        world.stripe_objects.insert(id.to_string(), object.clone());
    }
    Reply::ok(object)
}

fn stored(world: &World, kind: &str, id: &str) -> Answer {
    world
        .stripe_objects
        .get(id)
        .filter(|object| object["object"] == kind)
        .map(|object| Reply::ok(object.clone()))
        .ok_or_else(|| resource_missing(kind, id, "id"))
}

fn balance() -> Value {
    let funds = json!([{ "amount": 0, "currency": "usd", "source_types": { "card": 0 } }]);
    json!({ "object": "balance", "available": funds, "livemode": false, "pending": funds })
}

/// A Stripe list answer: newest first, `limit` (1 to 100, default 10) objects.
fn stripe_list(url: &str, objects: impl Iterator<Item = Value>, query: &Form) -> Reply {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| (1..=100).contains(l))
        .unwrap_or(10);
    let mut data: Vec<Value> = objects.collect();
    data.sort_by(|a, b| {
        let key = |v: &Value| (v["created"].as_i64().unwrap_or(0), v["id"].to_string());
        key(b).cmp(&key(a))
    });
    let has_more = data.len() > limit;
    data.truncate(limit);
    Reply::ok(json!({ "object": "list", "data": data, "has_more": has_more, "url": url }))
}

/// A top-up from the account's default bank account: pending until the bank pays it.
fn topup_create(world: &mut World, form: &Form) -> Answer {
    let amount = stripe_amount(form, "amount")?.ok_or_else(|| missing_param("amount"))?;
    let currency = stripe_currency(form)?;
    check_amount(amount, &currency, "amount")?;
    let created = unix_now();
    let topup = json!({
        "id": stripe_id("tu"),
        "object": "topup",
        "amount": amount,
        "balance_transaction": null,
        "created": created,
        "currency": currency,
        "description": form.non_empty("description"),
        "expected_availability_date": created + 5 * 86_400,
        "failure_code": null,
        "failure_message": null,
        "livemode": false,
        "metadata": form.metadata(),
        "source": null,
        "statement_descriptor": form.non_empty("statement_descriptor"),
        "status": "pending",
        "transfer_group": form.non_empty("transfer_group"),
    });
    Ok(store_stripe_object(world, topup))
}

/// An integer amount in minor units that may be negative (an invoice item's credit).
fn signed_amount(form: &Form, name: &str) -> Result<Option<i64>, Reply> {
    form.get(name)
        .map(|raw| {
            raw.parse::<i64>().map_err(|_| {
                stripe_invalid(
                    Some(name),
                    Some("parameter_invalid_integer"),
                    format!("Invalid integer: {raw}"),
                )
            })
        })
        .transpose()
}

/// An invoice item: `amount`, or `unit_amount` × `quantity`, in `currency`; attached to a
/// draft `invoice` if one is named, else pending on the customer's next invoice.
fn invoice_item_create(world: &mut World, form: &Form) -> Answer {
    let customer = form
        .non_empty("customer")
        .ok_or_else(|| missing_param("customer"))?
        .to_string();
    let quantity = stripe_amount(form, "quantity")?.unwrap_or(1);
    let unit = stripe_amount(form, "unit_amount")?;
    let amount = match (signed_amount(form, "amount")?, unit) {
        (Some(amount), None) => amount,
        (None, Some(unit)) => unit * quantity,
        (Some(_), Some(_)) => {
            return Err(stripe_invalid(
                Some("amount"),
                None,
                "You may only specify one of these parameters: amount, unit_amount.",
            ))
        }
        (None, None) if form.non_empty("price").is_some() => {
            let price = form.non_empty("price").unwrap_or_default();
            return Err(resource_missing("price", price, "price"));
        }
        (None, None) => return Err(missing_param("amount")),
    };
    let currency = stripe_currency(form)?;
    let invoice = match form.non_empty("invoice") {
        Some(id) => {
            let invoice = invoice_get(world, id)?;
            if invoice["status"] != "draft" {
                return Err(stripe_invalid(
                    Some("invoice"),
                    Some("invoice_not_editable"),
                    format!(
                        "Invoice {id} is no longer editable: it is {}.",
                        invoice["status"]
                    ),
                ));
            }
            Some(id.to_string())
        }
        None => None,
    };
    let now = unix_now();
    let item = json!({
        "id": stripe_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "date": now,
        "description": form.non_empty("description"),
        "discountable": amount >= 0,
        "invoice": invoice,
        "livemode": false,
        "metadata": form.metadata(),
        "period": { "start": now, "end": now },
        "proration": false,
        "quantity": quantity,
        "unit_amount_decimal": (amount / quantity).to_string(),
    });
    if let Some(id) = &invoice {
        add_invoice_line(world, id, &item);
    }
    let id = item["id"].as_str().unwrap_or_default().to_string();
    world.invoice_items.insert(id, item.clone());
    Ok(Reply::ok(item))
}

/// Adds an invoice item to a draft invoice's lines and totals.
fn add_invoice_line(world: &mut World, invoice_id: &str, item: &Value) {
    let Some(invoice) = world.invoices.get_mut(invoice_id) else {
        return;
    };
    let amount = item["amount"].as_i64().unwrap_or(0);
    let line = json!({
        "id": format!("il_{}", alnum(24)),
        "object": "line_item",
        "amount": amount,
        "currency": item["currency"],
        "description": item["description"],
        "invoice": invoice_id,
        "quantity": item["quantity"],
        "parent": { "type": "invoice_item_details", "invoice_item_details": { "invoice_item": item["id"] } },
    });
    if let Some(lines) = invoice["lines"]["data"].as_array_mut() {
        lines.push(line);
    }
    invoice["lines"]["total_count"] =
        json!(invoice["lines"]["data"].as_array().map_or(0, Vec::len));
    let total = invoice["total"].as_i64().unwrap_or(0) + amount;
    let due = total.max(0);
    for field in ["subtotal", "total"] {
        invoice[field] = json!(total);
    }
    for field in ["amount_due", "amount_remaining"] {
        invoice[field] = json!(due);
    }
}

fn invoice_get(world: &World, id: &str) -> Result<Value, Reply> {
    world
        .invoices
        .get(id)
        .cloned()
        .ok_or_else(|| resource_missing("invoice", id, "invoice"))
}

/// A draft invoice. Like the API today, `auto_advance` defaults to false and the customer's
/// pending invoice items are left out unless `pending_invoice_items_behavior=include`.
fn invoice_create(world: &mut World, form: &Form) -> Answer {
    let customer = form
        .non_empty("customer")
        .ok_or_else(|| missing_param("customer"))?
        .to_string();
    let auto_advance = stripe_bool(form, "auto_advance")?.unwrap_or(false);
    let include = match form.get("pending_invoice_items_behavior") {
        None | Some("exclude") => false,
        Some("include") => true,
        Some(other) => {
            return Err(stripe_invalid(
                Some("pending_invoice_items_behavior"),
                None,
                format!("Invalid pending_invoice_items_behavior: must be one of exclude or include (got {other})"),
            ))
        }
    };
    let currency = match form.get("currency") {
        Some(_) => stripe_currency(form)?,
        None => "usd".to_string(),
    };
    let id = stripe_id("in");
    let invoice = json!({
        "id": id,
        "object": "invoice",
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "attempt_count": 0,
        "auto_advance": auto_advance,
        "collection_method": form.get("collection_method").unwrap_or("charge_automatically"),
        "created": unix_now(),
        "currency": currency,
        "customer": customer,
        "description": form.non_empty("description"),
        "hosted_invoice_url": null,
        "lines": { "object": "list", "data": [], "has_more": false, "total_count": 0, "url": format!("/v1/invoices/{id}/lines") },
        "livemode": false,
        "metadata": form.metadata(),
        "number": null,
        "status": "draft",
        "status_transitions": { "finalized_at": null, "paid_at": null, "voided_at": null },
        "subtotal": 0,
        "total": 0,
    });
    world.invoices.insert(id.clone(), invoice);
    if include {
        let mut pending: Vec<Value> = world
            .invoice_items
            .values()
            .filter(|item| item["customer"] == customer.as_str() && item["invoice"].is_null())
            .cloned()
            .collect();
        pending.sort_by_key(|item| item["date"].as_i64().unwrap_or(0));
        for mut item in pending {
            item["invoice"] = json!(id);
            add_invoice_line(world, &id, &item);
            if let Some(item_id) = item["id"].as_str() {
                world
                    .invoice_items
                    .insert(item_id.to_string(), item.clone());
            }
        }
    }
    invoice_get(world, &id).map(Reply::ok)
}

fn invoice_state_error(invoice: &Value, action: &str) -> Reply {
    stripe_invalid(
        None,
        Some("invoice_unexpected_state"),
        format!(
            "You can only {action} this invoice if it is {}; it is {}.",
            if action == "finalize" {
                "a draft"
            } else {
                "open"
            },
            invoice["status"].as_str().unwrap_or_default()
        ),
    )
}

/// Finalizing a draft opens it; an invoice with nothing due is paid at once.
fn invoice_finalize(world: &mut World, id: &str) -> Answer {
    let mut invoice = invoice_get(world, id)?;
    if invoice["status"] != "draft" {
        return Err(invoice_state_error(&invoice, "finalize"));
    }
    let now = unix_now();
    invoice["number"] = json!(format!("SIM-{:04}", world.invoices.len()));
    invoice["status_transitions"]["finalized_at"] = json!(now);
    invoice["hosted_invoice_url"] =
        json!(format!("https://invoice.stripe.com/i/sim_{}", alnum(16)));
    if invoice["amount_due"].as_i64().unwrap_or(0) == 0 {
        invoice["status"] = json!("paid");
        invoice["auto_advance"] = json!(false);
        invoice["status_transitions"]["paid_at"] = json!(now);
    } else {
        invoice["status"] = json!("open");
    }
    world.invoices.insert(id.to_string(), invoice.clone());
    Ok(Reply::ok(invoice))
}

/// Paying an open invoice charges its amount remaining (a draft is finalized first).
fn invoice_pay(world: &mut World, id: &str) -> Answer {
    let invoice = invoice_get(world, id)?;
    match invoice["status"].as_str() {
        Some("draft") => {
            invoice_finalize(world, id)?;
        }
        Some("open") => {}
        _ => return Err(invoice_state_error(&invoice, "pay")),
    }
    let mut invoice = invoice_get(world, id)?;
    if invoice["status"] == "open" {
        let due = invoice["amount_remaining"].as_i64().unwrap_or(0);
        invoice["amount_paid"] = json!(due);
        invoice["amount_remaining"] = json!(0);
        invoice["attempt_count"] = json!(1);
        invoice["auto_advance"] = json!(false);
        invoice["status"] = json!("paid");
        invoice["status_transitions"]["paid_at"] = json!(unix_now());
        world.invoices.insert(id.to_string(), invoice.clone());
    }
    Ok(Reply::ok(invoice))
}
