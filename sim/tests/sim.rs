//! The offline vendor simulator, exercised over real HTTP.

use std::time::Duration;

use serde_json::{json, Value};
use vendorgate_sim::{
    resend_key, stripe_key, twilio_account_sid, twilio_auth_token, SeenRequest, SimState,
};

struct Sim {
    state: SimState,
    url: String,
    http: reqwest::Client,
}

/// The simulator on a free loopback port, serving until the test's runtime ends.
async fn start() -> Sim {
    let state = SimState::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let app = vendorgate_sim::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    Sim { state, url, http }
}

impl Sim {
    fn stripe(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/stripe{path}", self.url))
            .bearer_auth(stripe_key())
    }

    fn twilio(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!(
                    "{}/twilio/2010-04-01/Accounts/{}{path}",
                    self.url,
                    twilio_account_sid()
                ),
            )
            .basic_auth(twilio_account_sid(), Some(twilio_auth_token()))
    }

    fn resend(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/resend{path}", self.url))
            .bearer_auth(resend_key())
    }
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

fn with_json(builder: reqwest::RequestBuilder, body: Value) -> reqwest::RequestBuilder {
    builder
        .header("content-type", "application/json")
        .body(body.to_string())
}

use reqwest::Method as M;

#[tokio::test]
async fn wrong_or_missing_credentials_get_each_vendors_401_and_are_recorded() {
    let sim = start().await;

    // Stripe: no key, then a wrong key (masked in the message, never echoed whole).
    let (status, body) = json_of(
        sim.http
            .get(format!("{}/v1/balance", sim.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let wrong = "sk_test_thisIsNotTheRightKeyAtAll1234";
    let resp = sim
        .http
        .get(format!("{}/stripe/v1/balance", sim.url))
        .bearer_auth(wrong)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("request-id").is_some());
    let (status, body) = json_of(resp).await;
    assert_eq!(status, 401);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Invalid API Key provided: sk_test_"),
        "{message}"
    );
    assert!(
        message.ends_with("1234") && !message.contains(wrong),
        "{message}"
    );

    // Stripe also takes Basic with the key as username.
    let resp = sim
        .http
        .get(format!("{}/v1/balance", sim.url))
        .basic_auth(stripe_key(), Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Twilio: wrong token, and right credentials against another account's path.
    let (status, body) = json_of(
        sim.http
            .get(format!(
                "{}/2010-04-01/Accounts/{}.json",
                sim.url,
                twilio_account_sid()
            ))
            .basic_auth(twilio_account_sid(), Some("nope"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": 20003, "message": "Authenticate",
               "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
    );
    let other = "AC11111111111111111111111111111111";
    let resp = sim
        .http
        .get(format!(
            "{}/twilio/2010-04-01/Accounts/{other}/Messages/SM1.json",
            sim.url
        ))
        .basic_auth(twilio_account_sid(), Some(twilio_auth_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = sim.twilio(M::GET, ".json").send().await.unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(
        (status, body["sid"].as_str()),
        (200, Some(twilio_account_sid()))
    );

    // Resend: wrong key.
    let (status, body) = json_of(
        with_json(
            sim.http
                .post(format!("{}/emails", sim.url))
                .bearer_auth("re_wrong"),
            json!({"from": "a@example.com", "to": "b@example.com", "subject": "hi", "text": "x"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"statusCode": 403, "message": "API key is invalid", "name": "invalid_api_key"})
    );

    let seen = sim.state.seen();
    assert_eq!(seen.len(), 7);
    assert_eq!(seen[0].authorization, None);
    assert_eq!(
        seen[1].authorization.as_deref(),
        Some(format!("Bearer {wrong}").as_str())
    );
    assert_eq!(seen[1].path, "/v1/balance");
    assert_eq!(
        seen.iter().map(|s| s.vendor.as_str()).collect::<Vec<_>>(),
        ["stripe", "stripe", "stripe", "twilio", "twilio", "twilio", "resend"]
    );

    // The same list over HTTP, and a reset.
    let over_http: Vec<SeenRequest> = serde_json::from_str(
        &sim.http
            .get(format!("{}/__sim/seen", sim.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(over_http.len(), 7);
    let resp = sim
        .http
        .post(format!("{}/__sim/reset", sim.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(sim.state.seen().is_empty());
}

#[tokio::test]
async fn payment_intent_lifecycle() {
    let sim = start().await;

    // Unconfirmed with a payment method, then confirm: succeeded.
    let (status, pi) = json_of(
        sim.stripe(M::POST, "/v1/payment_intents")
            .form(&[
                ("amount", "2000"),
                ("currency", "USD"),
                ("payment_method", "pm_card_visa"),
                ("metadata[run]", "r1"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{pi}");
    let id = pi["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("pi_") && id.len() == 27, "{id}");
    assert_eq!(pi["object"], "payment_intent");
    assert_eq!(pi["status"], "requires_confirmation");
    assert_eq!(pi["currency"], "usd");
    assert_eq!(pi["livemode"], false);
    assert_eq!(pi["metadata"], json!({"run": "r1"}));
    assert_eq!(pi["amount_received"], 0);
    let (status, pi) = json_of(
        sim.stripe(M::POST, &format!("/v1/payment_intents/{id}/confirm"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, pi["status"].as_str()), (200, Some("succeeded")));
    assert_eq!(pi["amount_received"], 2000);
    // A succeeded intent cannot be canceled.
    let (status, err) = json_of(
        sim.stripe(M::POST, &format!("/v1/payment_intents/{id}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "payment_intent_unexpected_state");

    // Manual capture: authorize, increment, cancel (unprefixed path this time).
    let (status, pi) = json_of(
        sim.http
            .post(format!("{}/v1/payment_intents", sim.url))
            .bearer_auth(stripe_key())
            .form(&[
                ("amount", "1000"),
                ("currency", "usd"),
                ("confirm", "true"),
                ("capture_method", "manual"),
                ("payment_method", "pm_card_visa"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, pi["status"].as_str()),
        (200, Some("requires_capture"))
    );
    assert_eq!(
        (
            pi["amount_capturable"].as_i64(),
            pi["amount_received"].as_i64()
        ),
        (Some(1000), Some(0))
    );
    let id = pi["id"].as_str().unwrap().to_string();
    let (status, err) = json_of(
        sim.stripe(
            M::POST,
            &format!("/v1/payment_intents/{id}/increment_authorization"),
        )
        .form(&[("amount", "900")])
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("amount"))
    );
    let (status, pi) = json_of(
        sim.stripe(
            M::POST,
            &format!("/v1/payment_intents/{id}/increment_authorization"),
        )
        .form(&[("amount", "1500")])
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (
            status,
            pi["amount"].as_i64(),
            pi["amount_capturable"].as_i64()
        ),
        (200, Some(1500), Some(1500))
    );
    let (status, pi) = json_of(
        sim.stripe(M::POST, &format!("/v1/payment_intents/{id}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, pi["status"].as_str()), (200, Some("canceled")));
    assert_eq!(pi["amount_capturable"], 0);
    let (_, got) = json_of(
        sim.stripe(M::GET, &format!("/v1/payment_intents/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got["status"], "canceled");

    // A declined card: 402 card_error carrying the intent, which stays retrievable.
    let (status, err) = json_of(
        sim.stripe(M::POST, "/v1/payment_intents")
            .form(&[
                ("amount", "500"),
                ("currency", "usd"),
                ("confirm", "true"),
                ("payment_method", "pm_card_chargeDeclined"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 402);
    assert_eq!(err["error"]["type"], "card_error");
    assert_eq!(err["error"]["code"], "card_declined");
    assert_eq!(err["error"]["decline_code"], "generic_decline");
    assert_eq!(
        err["error"]["payment_intent"]["status"],
        "requires_payment_method"
    );
    let declined = err["error"]["payment_intent"]["id"].as_str().unwrap();
    let resp = sim
        .stripe(M::GET, &format!("/v1/payment_intents/{declined}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Missing object, bad input, unknown route.
    let (status, err) = json_of(
        sim.stripe(M::GET, "/v1/payment_intents/pi_nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "resource_missing");
    assert_eq!(err["error"]["message"], "No such payment_intent: 'pi_nope'");
    let (status, err) = json_of(
        sim.stripe(M::POST, "/v1/payment_intents")
            .form(&[("amount", "ten"), ("currency", "usd")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("amount"))
    );
    let (status, err) = json_of(sim.stripe(M::POST, "/v1/x").send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unrecognized request URL (POST: /v1/x)"));
}

#[tokio::test]
async fn charges_and_refunds() {
    let sim = start().await;
    let (status, ch) = json_of(
        sim.stripe(M::POST, "/v1/charges")
            .form(&[
                ("amount", "1000"),
                ("currency", "usd"),
                ("source", "tok_visa"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, ch["status"].as_str(), ch["paid"].as_bool()),
        (200, Some("succeeded"), Some(true))
    );
    assert_eq!(ch["amount_captured"], 1000);
    let charge = ch["id"].as_str().unwrap();
    let refund = |amount: Option<&'static str>| {
        let mut form = vec![("charge", charge.to_string())];
        if let Some(a) = amount {
            form.push(("amount", a.to_string()));
        }
        sim.stripe(M::POST, "/v1/refunds").form(&form).send()
    };
    let (status, re) = json_of(refund(Some("300")).await.unwrap()).await;
    assert_eq!(
        (status, re["amount"].as_i64(), re["status"].as_str()),
        (200, Some(300), Some("succeeded"))
    );
    let (status, err) = json_of(refund(Some("800")).await.unwrap()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("charge_already_refunded"))
    );
    let (_, re) = json_of(refund(None).await.unwrap()).await;
    assert_eq!(re["amount"], 700);
    let (_, ch) = json_of(
        sim.stripe(M::GET, &format!("/v1/charges/{charge}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (ch["amount_refunded"].as_i64(), ch["refunded"].as_bool()),
        (Some(1000), Some(true))
    );

    let (_, uncaptured) = json_of(
        sim.stripe(M::POST, "/v1/charges")
            .form(&[
                ("amount", "1000"),
                ("currency", "usd"),
                ("source", "tok_visa"),
                ("capture", "false"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (
            uncaptured["captured"].as_bool(),
            uncaptured["amount_captured"].as_i64()
        ),
        (Some(false), Some(0))
    );
}

#[tokio::test]
async fn topups_and_lists() {
    let sim = start().await;
    let (status, tu) = json_of(
        sim.stripe(M::POST, "/v1/topups")
            .form(&[("amount", "6000"), ("currency", "usd")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{tu}");
    assert_eq!(
        (
            tu["object"].as_str(),
            tu["status"].as_str(),
            tu["amount"].as_i64()
        ),
        (Some("topup"), Some("pending"), Some(6000))
    );
    assert!(tu["id"].as_str().unwrap().starts_with("tu_"));
    let (status, got) = json_of(
        sim.stripe(
            M::GET,
            &format!("/v1/topups/{}", tu["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, &got), (200, &tu));
    let (status, err) = json_of(
        sim.stripe(M::POST, "/v1/topups")
            .form(&[("currency", "usd")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["param"].as_str()),
        (400, Some("amount"))
    );

    for amount in ["1000", "2000", "3000"] {
        sim.stripe(M::POST, "/v1/payment_intents")
            .form(&[("amount", amount), ("currency", "usd")])
            .send()
            .await
            .unwrap();
    }
    let (status, list) = json_of(
        sim.stripe(M::GET, "/v1/payment_intents?limit=2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (list["object"].as_str(), list["has_more"].as_bool()),
        (Some("list"), Some(true))
    );
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][0]["object"], "payment_intent");
}

#[tokio::test]
async fn invoice_lifecycle() {
    let sim = start().await;
    let post = |path: &str, form: &[(&str, &str)]| {
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sim.stripe(M::POST, path).form(&form).send()
    };
    // A pending item is left out of a new invoice unless asked for.
    let (_, pending) = json_of(
        post(
            "/v1/invoiceitems",
            &[
                ("customer", "cus_1"),
                ("unit_amount", "250"),
                ("quantity", "4"),
                ("currency", "usd"),
            ],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (
            pending["object"].as_str(),
            pending["amount"].as_i64(),
            &pending["invoice"]
        ),
        (Some("invoiceitem"), Some(1000), &Value::Null)
    );
    let (status, inv) = json_of(
        post("/v1/invoices", &[("customer", "cus_1")])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{inv}");
    assert_eq!(
        (
            inv["status"].as_str(),
            inv["auto_advance"].as_bool(),
            inv["amount_due"].as_i64()
        ),
        (Some("draft"), Some(false), Some(0))
    );
    let (_, with_pending) = json_of(
        post(
            "/v1/invoices",
            &[
                ("customer", "cus_1"),
                ("pending_invoice_items_behavior", "include"),
            ],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(with_pending["amount_due"], 1000);
    assert_eq!(with_pending["lines"]["total_count"], 1);

    // An item put on the draft raises what is due; finalize opens it, pay collects it.
    let id = inv["id"].as_str().unwrap();
    let (status, item) = json_of(
        post(
            "/v1/invoiceitems",
            &[
                ("customer", "cus_1"),
                ("invoice", id),
                ("amount", "1500"),
                ("currency", "usd"),
            ],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, item["invoice"].as_str()), (200, Some(id)));
    let (_, got) = json_of(
        sim.stripe(M::GET, &format!("/v1/invoices/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (got["amount_due"].as_i64(), got["total"].as_i64()),
        (Some(1500), Some(1500))
    );
    let (status, err) = json_of(post(&format!("/v1/invoices/{id}/pay"), &[]).await.unwrap()).await;
    assert_eq!(
        (status, err["status"].as_str()),
        (200, Some("paid")),
        "a draft is finalized then paid"
    );
    assert_eq!(
        (
            err["amount_paid"].as_i64(),
            err["amount_remaining"].as_i64()
        ),
        (Some(1500), Some(0))
    );
    let (status, err) = json_of(
        post(&format!("/v1/invoices/{id}/finalize"), &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invoice_unexpected_state"))
    );
    let (status, err) = json_of(
        post(
            "/v1/invoiceitems",
            &[
                ("customer", "cus_1"),
                ("invoice", id),
                ("amount", "1"),
                ("currency", "usd"),
            ],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invoice_not_editable"))
    );

    // Finalize alone: open with its amount due; nothing due is paid at once.
    let other = with_pending["id"].as_str().unwrap();
    let (_, open) = json_of(
        post(&format!("/v1/invoices/{other}/finalize"), &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (open["status"].as_str(), open["amount_remaining"].as_i64()),
        (Some("open"), Some(1000))
    );
    let (_, empty) = json_of(
        post(
            "/v1/invoices",
            &[("customer", "cus_2"), ("auto_advance", "true")],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(empty["auto_advance"], true);
    let empty_id = empty["id"].as_str().unwrap();
    let (_, paid) = json_of(
        post(&format!("/v1/invoices/{empty_id}/finalize"), &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(paid["status"], "paid");

    let (_, list) = json_of(sim.stripe(M::GET, "/v1/invoices").send().await.unwrap()).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    let (status, err) = json_of(
        post(
            "/v1/invoiceitems",
            &[("customer", "cus_1"), ("price", "price_x")],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("resource_missing"))
    );
    let (status, err) = json_of(
        sim.stripe(M::GET, "/v1/invoices/in_nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("resource_missing"))
    );
}

#[tokio::test]
async fn idempotent_requests_replay_and_conflict() {
    let sim = start().await;
    let form = [
        ("amount", "1200"),
        ("currency", "usd"),
        ("confirm", "true"),
        ("payment_method", "pm_card_visa"),
    ];
    let send = |form: &[(&str, &str)]| {
        sim.stripe(M::POST, "/v1/payment_intents")
            .header("Idempotency-Key", "key-1")
            .form(form)
            .send()
    };
    let first = send(&form).await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_request_id = first.headers()["request-id"].to_str().unwrap().to_string();
    let (_, first) = json_of(first).await;
    let second = send(&form).await.unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(
        second.headers()["original-request"],
        first_request_id.as_str()
    );
    let (status, second) = json_of(second).await;
    assert_eq!(status, 200);
    assert_eq!(first, second);

    let (status, err) = json_of(
        send(&[("amount", "9999"), ("currency", "usd")])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "idempotency_error");

    // Resend: replay, then 409 for another payload.
    let email =
        json!({"from": "a@example.com", "to": ["b@example.com"], "subject": "hi", "text": "x"});
    let send = |body: Value| {
        with_json(sim.resend(M::POST, "/emails"), body)
            .header("Idempotency-Key", "mail-1")
            .send()
    };
    let (s1, b1) = json_of(send(email.clone()).await.unwrap()).await;
    let (s2, b2) = json_of(send(email.clone()).await.unwrap()).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(b1, b2);
    let (status, err) = json_of(
        send(json!({"from": "a@example.com", "to": "c@example.com", "subject": "x"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["name"].as_str()),
        (409, Some("invalid_idempotent_request"))
    );
}

#[tokio::test]
async fn twilio_message_is_priced_once_fetched() {
    let sim = start().await;
    let resp = sim
        .twilio(M::POST, "/Messages.json")
        .form(&[
            ("To", "+15551234567"),
            ("From", "+15005550006"),
            ("Body", "hello there"),
        ])
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["twilio-request-id"]
        .to_str()
        .unwrap()
        .starts_with("RQ"));
    let (status, msg) = json_of(resp).await;
    assert_eq!(status, 201, "{msg}");
    let sid = msg["sid"].as_str().unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert_eq!(msg["status"], "queued");
    assert_eq!(msg["price"], Value::Null);
    assert_eq!(msg["num_segments"], "1");
    assert_eq!(
        msg["uri"],
        format!(
            "/2010-04-01/Accounts/{}/Messages/{sid}.json",
            twilio_account_sid()
        )
    );
    let (status, got) = json_of(
        sim.twilio(M::GET, &format!("/Messages/{sid}.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["status"], "delivered");
    assert_eq!(got["price"], "-0.00790");
    assert_eq!(got["price_unit"], "USD");

    // 161 GSM-7 characters: two segments. An emoji forces UCS-2: 71 units → two segments.
    for (body, segments, price) in [
        ("a".repeat(161), "2", "-0.01580"),
        (format!("{}🙂", "a".repeat(69)), "2", "-0.01580"),
    ] {
        let (_, msg) = json_of(
            sim.twilio(M::POST, "/Messages.json")
                .form(&[
                    ("To", "+15551234567"),
                    ("From", "+15005550006"),
                    ("Body", body.as_str()),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(msg["num_segments"], segments, "{body}");
        let sid = msg["sid"].as_str().unwrap();
        let (_, got) = json_of(
            sim.twilio(M::GET, &format!("/Messages/{sid}.json"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(got["price"], price);
    }

    let (status, err) = json_of(
        sim.twilio(M::POST, "/Messages.json")
            .form(&[("From", "+15005550006"), ("Body", "x")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        err,
        json!({"code": 21604, "message": "A 'To' phone number is required.",
               "more_info": "https://www.twilio.com/docs/errors/21604", "status": 400})
    );
    let (status, err) = json_of(
        sim.twilio(M::GET, "/Messages/SM00000000000000000000000000000000.json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, err["code"].as_i64()), (404, Some(20404)));
}

#[tokio::test]
async fn twilio_call_is_priced_once_fetched() {
    let sim = start().await;
    let (status, call) = json_of(
        sim.twilio(M::POST, "/Calls.json")
            .form(&[
                ("To", "+15551234567"),
                ("From", "+15005550006"),
                ("Url", "https://example.com/twiml"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{call}");
    let sid = call["sid"].as_str().unwrap();
    assert!(sid.starts_with("CA") && sid.len() == 34);
    assert_eq!(
        (call["status"].as_str(), &call["price"], &call["duration"]),
        (Some("queued"), &Value::Null, &Value::Null)
    );
    let (status, got) = json_of(
        sim.twilio(M::GET, &format!("/Calls/{sid}.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            got["status"].as_str(),
            got["price"].as_str(),
            got["duration"].as_str()
        ),
        (Some("completed"), Some("-0.01400"), Some("60"))
    );
    let (status, err) = json_of(
        sim.twilio(M::POST, "/Calls.json")
            .form(&[("To", "+15551234567"), ("From", "+15005550006")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, err["code"].as_i64()), (400, Some(21205)));
    let (status, err) = json_of(
        sim.twilio(M::POST, "/Calls.json")
            .form(&[("From", "+15005550006"), ("Twiml", "<Response/>")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, err["code"].as_i64()), (400, Some(21201)));
}

#[tokio::test]
async fn resend_broadcast_create() {
    let sim = start().await;
    let draft = json!({"segment_id": "78261eea-8f8b-4381-83c6-79fa7120f1cf", "from": "a@example.com", "subject": "June", "html": "<p>hi</p>"});
    let (status, body) = json_of(
        with_json(sim.resend(M::POST, "/broadcasts"), draft.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(body, json!({ "id": id }));
    let (_, got) = json_of(
        sim.resend(M::GET, &format!("/broadcasts/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (got["object"].as_str(), got["status"].as_str()),
        (Some("broadcast"), Some("draft"))
    );
    let mut sent = draft.clone();
    sent["send"] = json!(true);
    let (_, body) = json_of(
        with_json(sim.resend(M::POST, "/broadcasts"), sent)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (_, got) = json_of(
        sim.resend(
            M::GET,
            &format!("/broadcasts/{}", body["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(got["status"], "queued");
    let (status, err) = json_of(
        with_json(
            sim.resend(M::POST, "/broadcasts"),
            json!({"from": "a@example.com", "subject": "x"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["name"].as_str()),
        (422, Some("missing_required_field"))
    );
}

#[tokio::test]
async fn resend_batch_and_fetch() {
    let sim = start().await;
    let batch = json!([
        {"from": "a@example.com", "to": "b@example.com", "subject": "one", "text": "1"},
        {"from": "a@example.com", "to": ["c@example.com", "d@example.com"], "subject": "two", "html": "<p>2</p>"},
    ]);
    let (status, body) = json_of(
        with_json(sim.resend(M::POST, "/emails/batch"), batch)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let id = data[1]["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    let (status, email) = json_of(
        sim.resend(M::GET, &format!("/emails/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(email["object"], "email");
    assert_eq!(email["last_event"], "delivered");
    assert_eq!(email["to"], json!(["c@example.com", "d@example.com"]));

    let (status, err) = json_of(
        with_json(
            sim.resend(M::POST, "/emails"),
            json!({"from": "a@example.com", "subject": "x"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        err,
        json!({"statusCode": 422, "message": "Missing `to` field.", "name": "missing_required_field"})
    );
    // The unprefixed path works too.
    let (status, _) = json_of(
        with_json(
            sim.http
                .post(format!("{}/emails", sim.url))
                .bearer_auth(resend_key()),
            json!({"from": "a@example.com", "to": "b@example.com", "subject": "x", "text": "y"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn reset_fault_drops_the_connection_after_the_effect() {
    let sim = start().await;
    let form = [
        ("amount", "5000"),
        ("currency", "usd"),
        ("confirm", "true"),
        ("payment_method", "pm_card_visa"),
    ];
    let result = sim
        .stripe(M::POST, "/v1/payment_intents")
        .header("Idempotency-Key", "after-reset")
        .header("X-Sim-Fault", "reset")
        .form(&form)
        .send()
        .await;
    let error = result.expect_err("a reset must not produce a response");
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");
    assert_eq!(sim.state.seen().len(), 1);

    // On the wire: not a single byte of a response comes back before the close.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(sim.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!(
        "GET /v1/balance HTTP/1.1\r\nhost: sim\r\nauthorization: Bearer {}\r\n\
         x-sim-fault: reset\r\n\r\n",
        stripe_key()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));

    // The intent was created before the connection dropped: the retry is a replay.
    let resp = sim
        .stripe(M::POST, "/v1/payment_intents")
        .header("Idempotency-Key", "after-reset")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["idempotent-replayed"], "true");
    let (_, pi) = json_of(resp).await;
    assert_eq!(pi["status"], "succeeded");
}

#[tokio::test]
async fn response_faults() {
    let sim = start().await;
    let balance = |fault: &'static str| {
        sim.stripe(M::GET, "/v1/balance")
            .header("X-Sim-Fault", fault)
    };

    let (status, body) = json_of(balance("500").send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (500, Some("api_error"))
    );
    let resp = sim
        .twilio(M::GET, ".json")
        .header("X-Sim-Fault", "500")
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!((status, body["code"].as_i64()), (500, Some(20500)));

    let resp = balance("malformed").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "{not json");

    let resp = balance("html").send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), "<html>oops</html>");

    let resp = balance("huge").send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 20 << 20);

    // timeout: no answer within the client's deadline.
    let error = balance("timeout")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");

    // slow-body: the head arrives at once, the body does not.
    let resp = tokio::time::timeout(Duration::from_secs(5), balance("slow-body").send())
        .await
        .expect("headers at once")
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("request-id").is_some());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), resp.bytes())
            .await
            .is_err()
    );

    let resp = balance("nonsense").send().await.unwrap();
    assert_eq!(resp.status(), 400);
}
