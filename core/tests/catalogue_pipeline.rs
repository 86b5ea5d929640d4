//! The price phase through the whole pipeline: operations outside the catalogue, refused and
//! credential operations never reach the vendor; an operator override prices and says so in
//! the audit; answers that leave out the fields a model reads never settle a call at zero.
//!
//! The fake vendor here answers like the independent Stripe emulator that found the bugs:
//! succeeded PaymentIntents without `amount_received`, captures without
//! `amount_capturable`, invoices with `amount_due` and `total` but no `amount_remaining`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap as AxumHeaders;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use parking_lot::Mutex;
use serde_json::{json, Value};
mod common;

use vendorgate::config::twilio_credentials;
use vendorgate::cost::PriceOverride;
use vendorgate::{AuditQuery, Config, Credentials, Gateway, KeySpec, ProxyRequest, Secret, Vendor};

#[derive(Clone, Default)]
struct Emulator {
    seen: Arc<Mutex<Vec<String>>>,
    objects: Arc<Mutex<HashMap<String, Value>>>,
}

fn form(body: &str) -> HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

impl Emulator {
    fn see(&self, what: String) {
        self.seen.lock().push(what);
    }
    fn store(&self, v: Value) -> Value {
        let id = v["id"].as_str().unwrap().to_string();
        self.objects.lock().insert(id, v.clone());
        v
    }
}

async fn pi_create(State(e): State<Emulator>, body: String) -> Json<Value> {
    e.see("POST /v1/payment_intents".into());
    let f = form(&body);
    let n = e.objects.lock().len() + 1;
    let manual = f.get("capture_method").map(String::as_str) == Some("manual");
    let status = match (f.get("confirm").map(String::as_str), manual) {
        (Some("true"), true) => "requires_capture",
        (Some("true"), false) => "succeeded",
        _ => "requires_payment_method",
    };
    // No amount_received, no amount_capturable: the shape that settled at $0 before.
    Json(e.store(json!({
        "object": "payment_intent", "id": format!("pi_e{n}"), "status": status,
        "amount": f["amount"].parse::<i64>().unwrap(), "currency": f["currency"],
    })))
}

async fn pi_get(State(e): State<Emulator>, Path(id): Path<String>) -> Json<Value> {
    e.see(format!("GET /v1/payment_intents/{id}"));
    let mut v = e.objects.lock()[&id].clone();
    // A read that leaves out the amounts entirely.
    v.as_object_mut().unwrap().remove("amount");
    Json(v)
}

async fn invoice_create(State(e): State<Emulator>, body: String) -> Json<Value> {
    e.see("POST /v1/invoices".into());
    let f = form(&body);
    let n = e.objects.lock().len() + 1;
    Json(e.store(json!({
        "object": "invoice", "id": format!("in_e{n}"), "status": "draft",
        "customer": f["customer"], "currency": "usd", "amount_due": 4200, "total": 4200,
    })))
}

async fn invoice_pay(State(e): State<Emulator>, Path(id): Path<String>) -> Json<Value> {
    e.see(format!("POST /v1/invoices/{id}/pay"));
    let mut objects = e.objects.lock();
    let inv = objects.get_mut(&id).unwrap();
    inv["status"] = json!("paid");
    Json(inv.clone())
}

async fn anything(State(e): State<Emulator>, h: AxumHeaders, body: String) -> Json<Value> {
    let _ = (h, body);
    e.see("other".into());
    Json(json!({"object": "widget", "id": "w_1"}))
}

async fn start() -> (String, Emulator) {
    let e = Emulator::default();
    let app = Router::new()
        .route("/v1/payment_intents", post(pi_create))
        .route("/v1/payment_intents/{id}", get(pi_get))
        .route("/v1/invoices", post(invoice_create))
        .route("/v1/invoices/{id}/pay", post(invoice_pay))
        .fallback(anything)
        .with_state(e.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), e)
}

fn config(base: &str) -> Config {
    let mut c = Config::default();
    for v in [Vendor::Stripe, Vendor::Twilio, Vendor::Resend] {
        c.upstream_mut(v).base_url = url::Url::parse(base).unwrap();
    }
    c.stripe.credentials = Some(Credentials::Bearer(Secret::new("sk_test_emulator")));
    c.resend.credentials = Some(Credentials::Bearer(Secret::new("re_emulator")));
    c.twilio.credentials =
        Some(twilio_credentials("AC00000000000000000000000000000001", "tok").unwrap());
    c
}

fn gateway(c: Config) -> Gateway {
    Gateway::new(c, common::test_store()).unwrap()
}

async fn key(gw: &Gateway, vendor: Vendor, max_usd: i64, allowed: &[&str]) -> (String, String) {
    let mut spec = KeySpec::new(vendor);
    spec.max_usd = Some(max_usd);
    spec.allowed_endpoints = allowed.iter().map(|s| s.to_string()).collect();
    // These tests repeat one call to fill a cap; the duplicate guard has tests of its own.
    spec.duplicate_window_secs = Some(0);
    let k = gw.issue_key(spec).await.unwrap();
    (k.vault_key, k.record.key_id)
}

fn req(vk: &str, method: &str, path: &str, ct: &'static str, body: &str) -> ProxyRequest {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {vk}")).unwrap(),
    );
    h.insert("content-type", HeaderValue::from_static(ct));
    ProxyRequest {
        vendor: None,
        method: method.into(),
        path: path.into(),
        query: None,
        vault_key: vendorgate::credentials::vault_key_from(&h),
        headers: h,
        body: Bytes::from(body.to_string()),
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn succeeded_intents_without_amount_received_are_counted() {
    let (base, emu) = start().await;
    let gw = gateway(config(&base));
    let (vk, id) = key(
        &gw,
        Vendor::Stripe,
        500_000_000,
        &["POST /v1/payment_intents"],
    )
    .await;
    let mut through = 0;
    for _ in 0..20 {
        let r = gw
            .process(req(
                &vk,
                "POST",
                "/v1/payment_intents",
                FORM,
                "amount=10000&currency=usd&confirm=true",
            ))
            .await;
        if let Ok(r) = r {
            assert_eq!(
                r.cost_micros, 100_000_000,
                "settled at what the intent states"
            );
            through += 1;
        }
    }
    // Before: each answer settled at $0 and released its reservation (16-23 got through).
    assert_eq!(through, 5);
    assert_eq!(emu.seen.lock().len(), 5);
    assert_eq!(gw.key_status(&id).await.unwrap().usage.total, 500_000_000);
}

#[tokio::test]
async fn a_read_that_states_too_little_does_not_release() {
    let (base, _emu) = start().await;
    let gw = gateway(config(&base));
    let (vk, id) = key(
        &gw,
        Vendor::Stripe,
        500_000_000,
        &["POST /v1/payment_intents", "GET /v1/payment_intents/*"],
    )
    .await;
    let r = gw
        .process(req(
            &vk,
            "POST",
            "/v1/payment_intents",
            FORM,
            "amount=20000&currency=usd&confirm=true&capture_method=manual",
        ))
        .await
        .unwrap();
    // requires_capture without amount_capturable: committed at the intent's amount.
    assert_eq!(r.cost_micros, 200_000_000);
    let pi: Value = serde_json::from_slice(&r.body).unwrap();
    let read = gw
        .process(req(
            &vk,
            "GET",
            &format!("/v1/payment_intents/{}", pi["id"].as_str().unwrap()),
            FORM,
            "",
        ))
        .await
        .unwrap();
    assert_eq!(read.cost_micros, 0);
    // The read left out the amount, so it proves nothing: the $200 stays counted.
    assert_eq!(gw.key_status(&id).await.unwrap().usage.total, 200_000_000);
}

#[tokio::test]
async fn invoice_without_amount_remaining_is_paid_at_amount_due() {
    let (base, emu) = start().await;
    let gw = gateway(config(&base));
    let (vk, id) = key(
        &gw,
        Vendor::Stripe,
        100_000_000,
        &["/v1/invoices", "/v1/invoices/*/pay"],
    )
    .await;
    // auto_advance would charge by itself: refused before the vendor sees it.
    let e = gw
        .process(req(&vk, "POST", "/v1/invoices", FORM, "customer=cus_1"))
        .await
        .unwrap_err();
    assert_eq!(e.error.reason(), "cannot_price");
    assert!(e.error.to_string().contains("auto_advance"), "{}", e.error);
    assert!(emu.seen.lock().is_empty());
    let draft = gw
        .process(req(
            &vk,
            "POST",
            "/v1/invoices",
            FORM,
            "customer=cus_1&auto_advance=false",
        ))
        .await
        .unwrap();
    assert_eq!(draft.cost_micros, 0);
    let inv: Value = serde_json::from_slice(&draft.body).unwrap();
    let paid = gw
        .process(req(
            &vk,
            "POST",
            &format!("/v1/invoices/{}/pay", inv["id"].as_str().unwrap()),
            FORM,
            "",
        ))
        .await
        .unwrap();
    assert_eq!(paid.cost_micros, 42_000_000);
    assert_eq!(gw.key_status(&id).await.unwrap().usage.spent, 42_000_000);
}

#[tokio::test]
async fn broad_allowlists_admit_only_priced_or_free_operations() {
    let (base, emu) = start().await;
    let gw = gateway(config(&base));
    let (vk, _) = key(&gw, Vendor::Stripe, 100_000_000, &["/**"]).await;
    for (method, path, body, reason) in [
        ("POST", "/v1/widgets", "amount=1", "cannot_price"),
        (
            "POST",
            "/v1/subscriptions",
            "customer=cus_1",
            "cannot_price",
        ),
        (
            "POST",
            "/v1/billing/meter_events",
            "event_name=x",
            "cannot_price",
        ),
        ("POST", "/v1/ephemeral_keys", "customer=cus_1", "credential"),
        ("POST", "/v1/account_links", "account=acct_1", "credential"),
        ("DELETE", "/v1/customers/cus_1/discount", "", "cannot_price"),
        ("PUT", "/v1/charges", "", "cannot_price"),
    ] {
        let e = gw
            .process(req(&vk, method, path, FORM, body))
            .await
            .expect_err(path);
        assert_eq!(e.error.reason(), reason, "{method} {path}: {}", e.error);
    }
    assert!(
        emu.seen.lock().is_empty(),
        "a refused call reached the vendor"
    );
    let e = gw
        .process(req(&vk, "POST", "/v1/ephemeral_keys", FORM, ""))
        .await
        .unwrap_err();
    assert_eq!(e.error.http_status(), 403);

    // Twilio: the .xml and bare forms of a priced create are refused, a credential is 403.
    let (tk, _) = key(&gw, Vendor::Twilio, 100_000_000, &["/**"]).await;
    let msgs = "/2010-04-01/Accounts/AC00000000000000000000000000000009/Messages";
    for path in [format!("{msgs}.xml"), msgs.to_string()] {
        let e = gw
            .process(req(&tk, "POST", &path, FORM, "To=%2B14155550100&Body=hi"))
            .await
            .unwrap_err();
        assert_eq!(e.error.reason(), "cannot_price", "{path}");
        assert!(e.error.to_string().contains("Messages.json"), "{}", e.error);
    }
    let e = gw
        .process(req(
            &tk,
            "POST",
            "/2010-04-01/Accounts/AC00000000000000000000000000000009/Keys.json",
            FORM,
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error.reason(), "credential");
    let e = gw
        .process(req(
            &tk,
            "POST",
            "/v2/Services/VA1/Verifications",
            FORM,
            "To=%2B1",
        ))
        .await
        .unwrap_err();
    assert!(
        e.error.to_string().contains("verify.twilio.com"),
        "{}",
        e.error
    );

    // Resend: a new API key is a credential.
    let (rk, _) = key(&gw, Vendor::Resend, 100_000_000, &["/**"]).await;
    let e = gw
        .process(req(
            &rk,
            "POST",
            "/api-keys",
            "application/json",
            "{\"name\":\"x\"}",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error.reason(), "credential");
    assert!(
        emu.seen.lock().is_empty(),
        "a refused call reached the vendor"
    );
}

#[tokio::test]
async fn an_override_prices_an_unknown_operation_and_the_audit_says_so() {
    let (base, emu) = start().await;
    let mut c = config(&base);
    c.pricing.overrides = vec![
        PriceOverride::new(Vendor::Stripe, "POST /v1/widgets/{id}/buy", Some(2_500_000)).unwrap(),
        PriceOverride::new(Vendor::Stripe, "GET /v1/widgets", None).unwrap(),
        // An override cannot free a credential.
        PriceOverride::new(Vendor::Stripe, "POST /v1/ephemeral_keys", None).unwrap(),
    ];
    let gw = gateway(c);
    let (vk, id) = key(&gw, Vendor::Stripe, 5_000_000, &["/**"]).await;
    let r = gw
        .process(req(&vk, "POST", "/v1/widgets/w_1/buy", FORM, ""))
        .await
        .unwrap();
    // The emulator's answer is no object the model knows: counted at the fixed price.
    assert_eq!(r.cost_micros, 2_500_000);
    gw.process(req(&vk, "GET", "/v1/widgets", FORM, ""))
        .await
        .unwrap();
    let e = gw
        .process(req(&vk, "POST", "/v1/widgets/w_1/buy", FORM, ""))
        .await;
    assert!(e.is_ok(), "a second $2.50 fits in $5");
    let e = gw
        .process(req(&vk, "POST", "/v1/widgets/w_1/buy", FORM, ""))
        .await
        .unwrap_err();
    assert_eq!(e.error.reason(), "spend_cap_exceeded");
    let e = gw
        .process(req(&vk, "POST", "/v1/ephemeral_keys", FORM, ""))
        .await
        .unwrap_err();
    assert_eq!(e.error.reason(), "credential");
    assert_eq!(emu.seen.lock().len(), 3);
    gw.close().await.unwrap();
    let rows = gw
        .audit(AuditQuery {
            key_id: Some(id),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let forwarded: Vec<_> = rows.iter().filter(|r| r.decision == "forwarded").collect();
    assert_eq!(forwarded.len(), 3);
    for r in forwarded {
        let m = r.message.as_deref().unwrap_or_default();
        assert!(m.contains("operator override"), "{m}");
    }
}
