//! Settlement robustness on the vendors' own example answers (pinned in
//! `tests/data/answers/`, each file naming its source): every top-level field of every
//! example, and of variants of it in each status the cost model knows, is deleted, set to
//! null and retyped, and the settled outcome is checked against the contract (DESIGN.md):
//! a field the model reads may be missing, null or of another type, and the call then
//! settles at its estimate, never at zero; a read lowers what is counted only when the
//! answer states the object's position completely.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use vendorgate::cost::{Outcome, RequestView, ResponseView};
use vendorgate::MoneyState;
use vendorgate::{Pricing, Vendor};

const STRIPE: &str = include_str!("data/answers/stripe.json");
const TWILIO: &str = include_str!("data/answers/twilio.json");
const RESEND: &str = include_str!("data/answers/resend.json");

/// The Resend request every Resend answer settles against: a batch of two emails with
/// three recipients in all (the single-email answers ignore the request).
const RESEND_BATCH: &str = r#"[{"from":"a@x.dev","to":"b@x.dev","subject":"s"},{"from":"a@x.dev","to":["c@x.dev","d@x.dev"],"subject":"s"}]"#;

/// One answer to settle: a vendor's example object, or a variant of it in another status.
#[derive(Debug, Clone)]
struct Case {
    label: String,
    vendor: Vendor,
    status: u16,
    answer: Value,
}

fn examples(text: &str) -> Map<String, Value> {
    let mut m: Map<String, Value> = serde_json::from_str(text).expect("pinned answers are JSON");
    let source = m
        .remove("_source")
        .expect("pinned answers name their source");
    assert!(source.get("repository").is_some() && source.get("commit").is_some());
    m
}

fn stripe_example(kind: &str) -> Value {
    examples(STRIPE)
        .remove(kind)
        .unwrap_or_else(|| panic!("no Stripe example {kind}"))
}

fn twilio_example(name: &str) -> Value {
    examples(TWILIO)
        .remove(name)
        .unwrap_or_else(|| panic!("no Twilio example {name}"))
}

fn with(base: &Value, fields: &[(&str, Value)]) -> Value {
    let mut v = base.clone();
    for (k, x) in fields {
        v[*k] = x.clone();
    }
    v
}

fn int(v: &Value, k: &str) -> i64 {
    v[k].as_i64()
        .unwrap_or_else(|| panic!("example field {k} is not an integer"))
}

/// The statuses each Stripe object's model knows, applied to the vendor's example, with the
/// amounts the status implies set consistently (a succeeded intent received its amount).
fn stripe_variants(kind: &str, ex: &Value) -> Vec<(String, Value)> {
    let st = |s: &str| with(ex, &[("status", json!(s))]);
    let statuses = |list: &[&str]| -> Vec<(String, Value)> {
        list.iter().map(|s| (s.to_string(), st(s))).collect()
    };
    let mut out = vec![("example".to_string(), ex.clone())];
    match kind {
        "payment_intent" => {
            let amount = int(ex, "amount");
            for s in [
                "succeeded",
                "requires_capture",
                "processing",
                "requires_action",
                "canceled",
                "requires_confirmation",
                "requires_payment_method",
            ] {
                let received = if s == "succeeded" { amount } else { 0 };
                let capturable = if s == "requires_capture" { amount } else { 0 };
                out.push((
                    s.to_string(),
                    with(
                        ex,
                        &[
                            ("status", json!(s)),
                            ("amount_received", json!(received)),
                            ("amount_capturable", json!(capturable)),
                        ],
                    ),
                ));
            }
        }
        "charge" => {
            let amount = int(ex, "amount");
            for (s, captured) in [
                ("succeeded", true),
                ("succeeded", false),
                ("pending", false),
                ("failed", false),
            ] {
                let label = format!("{s} captured={captured}");
                let got = if captured { amount } else { 0 };
                out.push((
                    label,
                    with(
                        ex,
                        &[
                            ("status", json!(s)),
                            ("captured", json!(captured)),
                            ("amount_captured", json!(got)),
                        ],
                    ),
                ));
            }
        }
        "refund" => out.extend(statuses(&[
            "succeeded",
            "pending",
            "requires_action",
            "failed",
            "canceled",
        ])),
        "payout" => out.extend(statuses(&[
            "paid",
            "pending",
            "in_transit",
            "failed",
            "canceled",
        ])),
        "topup" => out.extend(statuses(&[
            "succeeded",
            "pending",
            "failed",
            "canceled",
            "reversed",
        ])),
        "treasury.outbound_payment" | "treasury.outbound_transfer" => out.extend(statuses(&[
            "processing",
            "posted",
            "failed",
            "canceled",
            "returned",
        ])),
        "treasury.inbound_transfer" => {
            out.extend(statuses(&["processing", "succeeded", "failed", "canceled"]))
        }
        "credit_note" => out.extend(statuses(&["issued", "void"])),
        "climate.order" => out.extend(statuses(&[
            "open",
            "awaiting_funds",
            "confirmed",
            "delivered",
            "canceled",
        ])),
        "invoice" => {
            let due = int(ex, "amount_due");
            for s in ["draft", "open", "paid", "void", "uncollectible"] {
                let (paid, remaining) = if s == "paid" { (due, 0) } else { (0, due) };
                out.push((
                    s.to_string(),
                    with(
                        ex,
                        &[
                            ("status", json!(s)),
                            ("amount_paid", json!(paid)),
                            ("amount_remaining", json!(remaining)),
                        ],
                    ),
                ));
            }
        }
        "invoiceitem" => {
            let invoice = stripe_example("invoice")["id"].clone();
            out.push(("on its invoice".into(), with(ex, &[("invoice", invoice)])));
        }
        "customer_balance_transaction" => {
            let size = int(ex, "amount").abs();
            out.push(("debit".into(), with(ex, &[("amount", json!(size))])));
        }
        // A transfer has no status; the example is its only state.
        _ => {}
    }
    out
}

/// Variants whose amounts say only part of the object moved (a partial capture, a partly
/// reversed transfer). Deleting the partial figure makes the model fall back to the whole
/// amount, which is more than the answer says.
fn stripe_partial_cases() -> Vec<Case> {
    let pi = stripe_example("payment_intent");
    let half = int(&pi, "amount") / 2;
    let ch = stripe_example("charge");
    let tr = stripe_example("transfer");
    let inv = stripe_example("invoice");
    let total = int(&inv, "total");
    [
        (
            "payment_intent succeeded, partly captured",
            with(
                &pi,
                &[
                    ("status", json!("succeeded")),
                    ("amount_received", json!(half)),
                    ("amount_capturable", json!(0)),
                ],
            ),
        ),
        (
            "charge succeeded, partly captured",
            with(
                &ch,
                &[
                    ("status", json!("succeeded")),
                    ("captured", json!(true)),
                    ("amount_captured", json!(int(&ch, "amount") / 2)),
                ],
            ),
        ),
        (
            "transfer partly reversed",
            with(&tr, &[("amount_reversed", json!(int(&tr, "amount") / 4))]),
        ),
        (
            "invoice paid after a credit",
            with(
                &inv,
                &[
                    ("status", json!("paid")),
                    ("amount_due", json!(total * 4 / 5)),
                    ("amount_paid", json!(total * 4 / 5)),
                    ("amount_remaining", json!(0)),
                ],
            ),
        ),
    ]
    .into_iter()
    .map(|(label, answer)| Case {
        label: format!("stripe {label}"),
        vendor: Vendor::Stripe,
        status: 200,
        answer,
    })
    .collect()
}

/// Twilio's examples, and variants: priced in another currency, not priced yet, canceled.
fn twilio_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let fetched_price = twilio_example("message_fetch")["price"].clone();
    for (name, ex) in examples(TWILIO) {
        let status = if name.ends_with("_create") { 201 } else { 200 };
        let mut push = |label: &str, answer: Value| {
            out.push(Case {
                label: format!("twilio {name} {label}"),
                vendor: Vendor::Twilio,
                status,
                answer,
            })
        };
        push("example", ex.clone());
        let price = if ex["price"].is_string() {
            ex["price"].clone()
        } else {
            fetched_price.clone()
        };
        let live = if name.starts_with("call") {
            "completed"
        } else {
            "delivered"
        };
        push(
            "priced",
            with(
                &ex,
                &[
                    ("status", json!(live)),
                    ("price", price.clone()),
                    ("price_unit", json!("USD")),
                ],
            ),
        );
        push(
            "priced in EUR",
            with(
                &ex,
                &[
                    ("status", json!(live)),
                    ("price", price),
                    ("price_unit", json!("EUR")),
                ],
            ),
        );
        push(
            "not priced yet",
            with(&ex, &[("status", json!("queued")), ("price", Value::Null)]),
        );
        push(
            "canceled",
            with(
                &ex,
                &[("status", json!("canceled")), ("price", Value::Null)],
            ),
        );
    }
    out
}

fn resend_cases() -> Vec<Case> {
    let mut out: Vec<Case> = examples(RESEND)
        .into_iter()
        .map(|(name, answer)| Case {
            label: format!("resend {name}"),
            vendor: Vendor::Resend,
            status: 200,
            answer,
        })
        .collect();
    // Permissive batch mode: the answer lists the items Resend refused.
    let batch = examples(RESEND).remove("send_batch").unwrap();
    out.push(Case {
        label: "resend send_batch, item 1 refused".into(),
        vendor: Vendor::Resend,
        status: 200,
        answer: with(
            &batch,
            &[(
                "errors",
                json!([{"index": 1, "message": "The `to` field is invalid."}]),
            )],
        ),
    });
    out
}

fn stripe_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (kind, ex) in examples(STRIPE) {
        assert_eq!(ex["object"], json!(kind), "example {kind} is a {kind}");
        for (label, answer) in stripe_variants(&kind, &ex) {
            out.push(Case {
                label: format!("stripe {kind} {label}"),
                vendor: Vendor::Stripe,
                status: 200,
                answer,
            });
        }
    }
    out
}

/// Every answer the properties run on whose amounts are consistent with its status.
fn consistent_cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut all = stripe_cases();
        all.extend(twilio_cases());
        all.extend(resend_cases());
        all
    })
}

fn request(vendor: Vendor) -> RequestView<'static> {
    match vendor {
        Vendor::Stripe => RequestView {
            method: "POST",
            path: "/v1/payment_intents/pi_1/confirm",
            query: None,
            content_type: Some("application/x-www-form-urlencoded"),
            body: b"",
        },
        Vendor::Twilio => RequestView {
            method: "POST",
            path: "/2010-04-01/Accounts/AC1/Messages.json",
            query: None,
            content_type: Some("application/x-www-form-urlencoded"),
            body: b"To=%2B14155552345&From=%2B14155552345&Body=hi",
        },
        Vendor::Resend => RequestView {
            method: "POST",
            path: "/emails/batch",
            query: None,
            content_type: Some("application/json"),
            body: RESEND_BATCH.as_bytes(),
        },
    }
}

fn settle(vendor: Vendor, status: u16, answer: &Value, estimate: i64) -> Outcome {
    let body = serde_json::to_vec(answer).unwrap();
    vendor.model().settle(
        &Pricing::default(),
        &request(vendor),
        estimate,
        &ResponseView {
            status,
            body: &body,
        },
    )
}

fn authoritative(o: &Outcome) -> bool {
    o.object.as_ref().is_some_and(|f| f.authoritative)
}

#[derive(Debug, Clone, Copy)]
enum Mutation {
    Delete,
    Null,
    Retype,
}

const MUTATIONS: [Mutation; 3] = [Mutation::Delete, Mutation::Null, Mutation::Retype];

/// `answer` with top-level `field` mutated; `None` when the mutation changes nothing.
fn mutate(answer: &Value, field: &str, m: Mutation) -> Option<Value> {
    let mut v = answer.clone();
    let obj = v.as_object_mut()?;
    let old = obj.get(field)?.clone();
    let new = match m {
        Mutation::Delete => {
            obj.remove(field);
            return Some(v);
        }
        Mutation::Null => Value::Null,
        Mutation::Retype => match &old {
            Value::Null => return None,
            Value::Number(n) => Value::String(n.to_string()),
            Value::String(_) => json!(7),
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Object(_) => json!([]),
            Value::Array(_) => json!({}),
        },
    };
    if new == old {
        return None;
    }
    obj.insert(field.to_string(), new);
    Some(v)
}

/// Every (field, mutation, mutated answer) of an answer's top-level fields.
fn mutations(answer: &Value) -> Vec<(String, Mutation, Value)> {
    let fields: Vec<String> = answer
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for f in fields {
        for m in MUTATIONS {
            if let Some(v) = mutate(answer, &f, m) {
                out.push((f.clone(), m, v));
            }
        }
    }
    out
}

fn show(o: &Outcome) -> String {
    format!(
        "{} {} µUSD{}",
        o.state.as_str(),
        o.cost_micros,
        if authoritative(o) {
            " authoritative"
        } else {
            ""
        }
    )
}

/// What the example states, in µUSD: its settlement as a free read.
fn stated(case: &Case) -> i64 {
    settle(case.vendor, case.status, &case.answer, 0).cost_micros
}

/// Estimates below, at and above what the example states.
fn estimates(case: &Case) -> Vec<i64> {
    let s = stated(case).max(0);
    let mut e = vec![1, s / 2, s, s + 1, 2 * s + 1_000_000];
    e.retain(|x| *x > 0);
    e.sort_unstable();
    e.dedup();
    e
}

/// A Twilio answer whose price the mutation removed, whose status says the resource was
/// canceled: the
/// contract releases it, whatever the unmutated answer said (Twilio's own `call_cancel`
/// example is canceled *and* priced; without its price it is shaped like `message_cancel`).
fn released_by_status(case: &Case, field: &str, answer: &Value) -> bool {
    case.vendor == Vendor::Twilio
        && field == "price"
        && answer["status"] == json!("canceled")
        && answer.get("price").is_none_or(Value::is_null)
}

/// Such an answer settles released and says so; anything else is a violation.
fn check_release(case: &Case, what: &str, got: &Outcome, failures: &mut Vec<String>) {
    if (got.state, got.cost_micros, authoritative(got)) != (MoneyState::None, 0, true) {
        failures.push(format!(
            "canceled without a price not released: {} | {what}: {}",
            case.label,
            show(got)
        ));
    }
}

/// Property 1 on one answer at one estimate; returns how many mutations were checked and
/// pushes a line per violation.
fn check_priced(case: &Case, estimate: i64, failures: &mut Vec<String>) -> usize {
    let base = settle(case.vendor, case.status, &case.answer, estimate);
    let mut n = 0;
    for (field, m, mutated) in mutations(&case.answer) {
        n += 1;
        let got = settle(case.vendor, case.status, &mutated, estimate);
        let at = || {
            format!(
                "{} | {field} {m:?} | estimate {estimate}: base {} -> mutated {}",
                case.label,
                show(&base),
                show(&got)
            )
        };
        if released_by_status(case, &field, &mutated) {
            let what = format!("{field} {m:?} | estimate {estimate}");
            check_release(case, &what, &got, failures);
            continue;
        }
        if base.state.counts() {
            let floor = base.cost_micros.min(estimate);
            if !got.state.counts() || got.cost_micros < floor {
                failures.push(format!("counted below min(base, estimate): {}", at()));
            }
        }
        if authoritative(&got) && (got.state, got.cost_micros) != (base.state, base.cost_micros) {
            failures.push(format!("authoritative but changed: {}", at()));
        }
    }
    n
}

/// Property 2 on one answer: a free read of a mutated answer that is authoritative states
/// the same position as the unmutated one.
fn check_read(case: &Case, failures: &mut Vec<String>) -> usize {
    let base = settle(case.vendor, case.status, &case.answer, 0);
    let mut n = 0;
    for (field, m, mutated) in mutations(&case.answer) {
        n += 1;
        let got = settle(case.vendor, case.status, &mutated, 0);
        if released_by_status(case, &field, &mutated) {
            let what = format!("{field} {m:?} | free read");
            check_release(case, &what, &got, failures);
            continue;
        }
        if authoritative(&got) && (got.state, got.cost_micros) != (base.state, base.cost_micros) {
            failures.push(format!(
                "{} | {field} {m:?} | free read: base {} -> mutated {}",
                case.label,
                show(&base),
                show(&got)
            ));
        }
    }
    n
}

fn report(what: &str, checked: usize, failures: &[String]) {
    eprintln!("{what}: {checked} mutated answers checked");
    assert!(
        failures.is_empty(),
        "{what}: {} violations\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_examples_are_the_vendors_own() {
    let stripe = examples(STRIPE);
    assert!(stripe.len() >= 14);
    let pi = &stripe["payment_intent"];
    assert!(pi["id"].as_str().unwrap().starts_with("pi_"));
    let tw = examples(TWILIO);
    assert!(tw["message_create"]["sid"]
        .as_str()
        .unwrap()
        .starts_with("SM"));
    assert!(tw["call_create"]["sid"].as_str().unwrap().starts_with("CA"));
    let rs = examples(RESEND);
    assert!(rs["send_email"]["id"].is_string());
    // Every consistent case settles to something the properties can compare.
    assert!(consistent_cases().len() > 60);
}

#[test]
fn mutated_answers_never_settle_below_the_estimate() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in consistent_cases() {
        for e in estimates(case) {
            checked += check_priced(case, e, &mut failures);
        }
    }
    report("priced calls", checked, &failures);
}

#[test]
fn mutated_free_reads_lower_nothing_unless_complete() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in consistent_cases() {
        checked += check_read(case, &mut failures);
    }
    report("free reads", checked, &failures);
}

/// A partial figure that goes missing falls back to the whole amount: a priced call never
/// settles below min(what the answer said, the estimate) nor out of a counting state, and a
/// mutated answer that is still authoritative states the same state and at least as much.
#[test]
fn partial_amounts_fall_back_upwards() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in stripe_partial_cases() {
        let stated = stated(&case);
        assert!(stated > 0, "{}", case.label);
        for e in [0, 1, stated / 2, stated, 2 * stated] {
            let base = settle(case.vendor, case.status, &case.answer, e);
            for (field, m, mutated) in mutations(&case.answer) {
                checked += 1;
                let got = settle(case.vendor, case.status, &mutated, e);
                let below =
                    e > 0 && (!got.state.counts() || got.cost_micros < base.cost_micros.min(e));
                let lowered = authoritative(&got)
                    && (got.state != base.state || got.cost_micros < base.cost_micros);
                if below || lowered {
                    failures.push(format!(
                        "{} | {field} {m:?} | estimate {e}: base {} -> mutated {}",
                        case.label,
                        show(&base),
                        show(&got)
                    ));
                }
            }
        }
    }
    report("partial amounts", checked, &failures);
}

/// The strict form of properties 1 and 2 on the partial variants: a mutated answer that is
/// still authoritative states exactly what the unmutated one does. A missing
/// `amount_received` / `amount_captured` / `amount_paid` falls back to `amount` / `total`
/// and a missing `amount_reversed` to nothing reversed; those figures are not the object's
/// position, so such an answer must not be authoritative (a read would otherwise replace the
/// records with more than moved).
#[test]
fn partial_amounts_missing_are_not_authoritative() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in stripe_partial_cases() {
        checked += check_read(&case, &mut failures);
        for e in estimates(&case) {
            checked += check_priced(&case, e, &mut failures);
        }
    }
    report("partial amounts, strict", checked, &failures);
}

fn case_and_estimate() -> impl Strategy<Value = (usize, i64)> {
    (0..consistent_cases().len(), 1i64..=1_000_000_000_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Property 1 at random estimates, far from and close to the stated amounts.
    #[test]
    fn mutated_answers_hold_at_any_estimate((i, e) in case_and_estimate(), near in 0i64..3) {
        let case = &consistent_cases()[i];
        let e = if near == 0 { e } else { (stated(case) + near - 2).max(1) };
        let mut failures = Vec::new();
        check_priced(case, e, &mut failures);
        prop_assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

// ---- regressions seen with an external emulator

fn usd(minor: i64) -> i64 {
    minor * 10_000
}

fn pi(status: &str) -> Value {
    let ex = stripe_example("payment_intent");
    let amount = int(&ex, "amount");
    with(
        &ex,
        &[
            ("status", json!(status)),
            (
                "amount_received",
                json!(if status == "succeeded" { amount } else { 0 }),
            ),
            (
                "amount_capturable",
                json!(if status == "requires_capture" {
                    amount
                } else {
                    0
                }),
            ),
        ],
    )
}

fn without(v: &Value, fields: &[&str]) -> Value {
    let mut v = v.clone();
    for f in fields {
        v.as_object_mut().unwrap().remove(*f);
    }
    v
}

fn stripe_settle(answer: &Value, estimate: i64) -> Outcome {
    settle(Vendor::Stripe, 200, answer, estimate)
}

#[test]
fn succeeded_intent_without_amount_received_settles_at_amount() {
    let ok = pi("succeeded");
    let amount = usd(int(&ok, "amount"));
    for (label, answer) in [
        ("missing", without(&ok, &["amount_received"])),
        ("null", with(&ok, &[("amount_received", Value::Null)])),
        ("zero", with(&ok, &[("amount_received", json!(0))])),
        ("a string", with(&ok, &[("amount_received", json!("1099"))])),
    ] {
        for e in [0, 1, amount / 2, amount] {
            let o = stripe_settle(&answer, e);
            assert_eq!(
                (o.state, o.cost_micros),
                (MoneyState::Moved, amount),
                "amount_received {label}, estimate {e}"
            );
        }
        // An estimate above the amount is never undercut by a guess below it.
        let o = stripe_settle(&answer, 2 * amount);
        assert!(o.state == MoneyState::Moved && o.cost_micros >= amount);
    }
    // Neither amount_received nor amount: the estimate stands, and the answer is no proof.
    let bare = without(&ok, &["amount_received", "amount"]);
    for e in [1, amount / 2, amount, 3 * amount] {
        let o = stripe_settle(&bare, e);
        assert_eq!(
            (o.state, o.cost_micros),
            (MoneyState::Moved, e),
            "estimate {e}"
        );
        assert!(!authoritative(&o));
    }
    assert!(!authoritative(&stripe_settle(&bare, 0)));
}

#[test]
fn capturable_intent_without_amount_capturable_is_committed_at_amount() {
    let held = pi("requires_capture");
    let amount = usd(int(&held, "amount"));
    for answer in [
        without(&held, &["amount_capturable"]),
        with(&held, &[("amount_capturable", Value::Null)]),
        with(&held, &[("amount_capturable", json!(0))]),
    ] {
        for e in [0, 1, amount] {
            let o = stripe_settle(&answer, e);
            assert_eq!((o.state, o.cost_micros), (MoneyState::Committed, amount));
        }
    }
    let bare = without(&held, &["amount_capturable", "amount"]);
    let o = stripe_settle(&bare, amount / 3);
    assert_eq!(
        (o.state, o.cost_micros),
        (MoneyState::Committed, amount / 3)
    );
    assert!(!authoritative(&o));
}

#[test]
fn invoice_memory_falls_back_from_remaining_to_due_to_total() {
    let ex = stripe_example("invoice");
    let total = int(&ex, "total");
    // Distinct figures so each fallback is told apart: a credit lowered what is due, and
    // part of it was paid.
    let (due, remaining) = (total * 4 / 5, total * 3 / 10);
    let remembered = |answer: &Value, e: i64| {
        stripe_settle(answer, e)
            .object
            .and_then(|o| o.remember)
            .map(|r| (r.micros, r.currency))
    };
    for status in ["draft", "open"] {
        let inv = with(
            &ex,
            &[
                ("status", json!(status)),
                ("amount_due", json!(due)),
                ("amount_remaining", json!(remaining)),
                ("total", json!(total)),
            ],
        );
        let cur = Some("USD".to_string());
        for e in [0, usd(total)] {
            assert_eq!(
                remembered(&inv, e),
                Some((usd(remaining), cur.clone().unwrap()))
            );
            for gone in [
                without(&inv, &["amount_remaining"]),
                with(&inv, &[("amount_remaining", Value::Null)]),
                with(&inv, &[("amount_remaining", json!("300"))]),
            ] {
                assert_eq!(
                    remembered(&gone, e),
                    Some((usd(due), cur.clone().unwrap())),
                    "{status}: no amount_remaining is remembered at amount_due"
                );
            }
            let only_total = without(&inv, &["amount_remaining", "amount_due"]);
            assert_eq!(
                remembered(&only_total, e),
                Some((usd(total), cur.clone().unwrap())),
                "{status}: only total is remembered at total"
            );
            // An open or draft invoice proves nothing: the reservation stands.
            let o = stripe_settle(&only_total, e);
            assert_eq!((o.state, o.cost_micros), (MoneyState::Unknown, e));
        }
    }
}

// ---- Twilio

/// The examples that carry a price, or a variant priced like Twilio's fetched message.
fn twilio_priced() -> Vec<Case> {
    twilio_cases()
        .into_iter()
        .filter(|c| c.label.ends_with(" priced"))
        .collect()
}

#[test]
fn twilio_price_unreadable_keeps_the_estimate() {
    let mut checked = 0;
    for case in twilio_priced() {
        let priced = settle(case.vendor, case.status, &case.answer, 1);
        assert_eq!(priced.state, MoneyState::Moved, "{}", case.label);
        assert!(priced.cost_micros > 0);
        let as_number: f64 = case.answer["price"].as_str().unwrap().parse().unwrap();
        let mut broken: Vec<(String, Value)> = vec![
            ("deleted".into(), without(&case.answer, &["price"])),
            ("null".into(), with(&case.answer, &[("price", Value::Null)])),
            (
                "a number".into(),
                with(&case.answer, &[("price", json!(as_number))]),
            ),
        ];
        for garbage in [
            "",
            "abc",
            "-",
            "1e-2",
            "NaN",
            "-0.0075 USD",
            "0.00.1",
            "- 0.01",
        ] {
            broken.push((
                format!("{garbage:?}"),
                with(&case.answer, &[("price", json!(garbage))]),
            ));
        }
        for (what, answer) in broken {
            for e in [1, 8_300, 33_600_000] {
                checked += 1;
                let o = settle(case.vendor, case.status, &answer, e);
                assert!(
                    matches!(o.state, MoneyState::Pending | MoneyState::Unknown),
                    "{} price {what}: {}",
                    case.label,
                    show(&o)
                );
                assert_eq!(o.cost_micros, e, "{} price {what}", case.label);
                assert!(!authoritative(&o), "{} price {what}", case.label);
            }
        }
    }
    assert!(checked > 0);
}

/// Twilio states its price in `price_unit`; a price whose unit is missing or unreadable
/// cannot be converted, so the estimate stands.
#[test]
fn twilio_price_without_its_unit_keeps_the_estimate() {
    for case in twilio_cases()
        .into_iter()
        .filter(|c| c.label.contains(" priced"))
    {
        for (what, answer) in [
            ("deleted", without(&case.answer, &["price_unit"])),
            ("null", with(&case.answer, &[("price_unit", Value::Null)])),
            ("a number", with(&case.answer, &[("price_unit", json!(7))])),
            (
                "unknown",
                with(&case.answer, &[("price_unit", json!("XYZ"))]),
            ),
        ] {
            for e in [1, 8_300, 33_600_000] {
                let o = settle(case.vendor, case.status, &answer, e);
                assert!(
                    o.state.counts() && o.cost_micros == e && !authoritative(&o),
                    "{} price_unit {what}, estimate {e}: {}",
                    case.label,
                    show(&o)
                );
            }
        }
    }
}

#[test]
fn twilio_canceled_releases() {
    let cancel = twilio_example("message_cancel");
    assert_eq!(cancel["status"], json!("canceled"));
    for case in twilio_cases()
        .into_iter()
        .filter(|c| c.label.ends_with(" canceled") || c.label == "twilio message_cancel example")
    {
        for e in [0, 1, 8_300] {
            let o = settle(case.vendor, case.status, &case.answer, e);
            assert_eq!(
                (o.state, o.cost_micros),
                (MoneyState::None, 0),
                "{}",
                case.label
            );
            assert!(authoritative(&o));
        }
        // Without a status that says so, nothing is released.
        for answer in [
            without(&case.answer, &["status"]),
            with(&case.answer, &[("status", Value::Null)]),
            with(&case.answer, &[("status", json!(7))]),
        ] {
            let o = settle(case.vendor, case.status, &answer, 8_300);
            assert!(o.state.counts() && o.cost_micros == 8_300, "{}", show(&o));
        }
    }
}

/// Twilio's own `call_cancel` example is canceled and priced: the price counts. A price it
/// states but the gateway cannot read does not turn it into a release.
#[test]
fn twilio_canceled_with_an_unreadable_price_is_not_released() {
    let cancel = twilio_example("call_cancel");
    assert_eq!(cancel["status"], json!("canceled"));
    assert!(cancel["price"].is_string());
    let priced = settle(Vendor::Twilio, 200, &cancel, 8_300);
    assert_eq!(priced.state, MoneyState::Moved);
    assert!(priced.cost_micros > 0);
    let as_number: f64 = cancel["price"].as_str().unwrap().parse().unwrap();
    for (what, answer) in [
        (
            "price a number",
            with(&cancel, &[("price", json!(as_number))]),
        ),
        ("price garbage", with(&cancel, &[("price", json!("abc"))])),
        ("price_unit deleted", without(&cancel, &["price_unit"])),
        (
            "price_unit null",
            with(&cancel, &[("price_unit", Value::Null)]),
        ),
        (
            "price_unit a number",
            with(&cancel, &[("price_unit", json!(7))]),
        ),
    ] {
        for e in [1, 8_300, 33_600_000] {
            let o = settle(Vendor::Twilio, 200, &answer, e);
            assert!(
                o.state.counts() && o.cost_micros == e && !authoritative(&o),
                "{what}, estimate {e}: {}",
                show(&o)
            );
        }
    }
}

// ---- Resend

#[test]
fn resend_answers_missing_fields_settle_at_the_estimate() {
    let e = 3 * Pricing::default().resend_email_micros;
    let mut checked = 0;
    for case in resend_cases()
        .into_iter()
        .filter(|c| !c.label.contains("refused"))
    {
        let mut answers = vec![case.answer.clone(), json!({}), json!([]), Value::Null];
        answers.extend(mutations(&case.answer).into_iter().map(|(_, _, v)| v));
        for answer in answers {
            checked += 1;
            let o = settle(Vendor::Resend, 200, &answer, e);
            assert_eq!(
                (o.state, o.cost_micros),
                (MoneyState::Moved, e),
                "{}: {answer}",
                case.label
            );
            assert!(!authoritative(&o));
        }
    }
    // A permissive batch whose refused items cannot be read is counted whole.
    let refused = resend_cases()
        .into_iter()
        .find(|c| c.label.contains("refused"))
        .unwrap();
    let one = Pricing::default().resend_email_micros;
    let o = settle(Vendor::Resend, 200, &refused.answer, e);
    assert_eq!(o.cost_micros, e - 2 * one, "item 1 had two recipients");
    for (field, m, answer) in mutations(&refused.answer) {
        checked += 1;
        let o = settle(Vendor::Resend, 200, &answer, e);
        let want = if field == "errors" { e } else { e - 2 * one };
        assert_eq!(o.cost_micros, want, "{field} {m:?}");
    }
    assert!(checked > 0);
}
