//! The request pipeline end to end against a fake vendor: refusals never reach the vendor,
//! credentials are swapped, money is never under-counted.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::{HeaderMap, HeaderValue};
use vendorgate::{AuthFailure, Error, Gateway, KeySpec, ProxyRequest, UpstreamFailure, Vendor};

fn bearer(vk: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {vk}")).unwrap(),
    );
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    h
}

fn req(vk: &str, method: &str, path: &str, body: &str) -> ProxyRequest {
    ProxyRequest {
        vendor: None,
        method: method.into(),
        path: path.into(),
        query: None,
        vault_key: vendorgate::credentials::vault_key_from(&bearer(vk)),
        headers: bearer(vk),
        body: Bytes::from(body.to_string()),
    }
}

async fn stripe_key(gw: &Gateway, max_usd: i64, allowed: &[&str]) -> (String, String) {
    let mut spec = KeySpec::new(Vendor::Stripe);
    spec.max_usd = Some(max_usd);
    spec.allowed_endpoints = allowed.iter().map(|s| s.to_string()).collect();
    // These tests repeat one call to fill a cap; the duplicate guard has tests of its own.
    spec.duplicate_window_secs = Some(0);
    let k = gw.issue_key(spec).await.unwrap();
    (k.vault_key, k.record.key_id)
}

/// The call was refused with 401 because its key is revoked.
fn assert_revoked(r: Result<vendorgate::ProxyResponse, vendorgate::Refused>) {
    let Err(e) = r else {
        panic!("a call with a revoked key was answered")
    };
    assert!(
        matches!(e.error, Error::Unauthorized(AuthFailure::KeyRevoked)),
        "{e:?}"
    );
}

const CHARGE_100: &str = "amount=10000&currency=usd&confirm=true";

#[tokio::test]
async fn forwards_with_real_credential_and_counts_cost() {
    let (base, up) = start_upstream().await;
    let gw = gateway(config_for(&base));
    let (vk, key_id) = stripe_key(&gw, 500_000_000, &["POST /v1/payment_intents"]).await;
    let resp = gw
        .process(req(&vk, "POST", "/v1/payment_intents", CHARGE_100))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.cost_micros, 100_000_000);
    assert_eq!(resp.headers["vendorgate-cost-usd"], "100.00");
    assert_eq!(resp.headers["vendorgate-remaining-usd"], "400.00");
    let seen = up.auth_seen.lock().clone();
    assert_eq!(seen, vec![format!("Bearer {REAL_STRIPE_KEY}")]);
    let st = gw.key_status(&key_id).await.unwrap();
    assert_eq!(st.usage.spent, 100_000_000);
    let rows = gw.audit(Default::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = rows[0].to_json();
    assert_eq!(row["decision"], "forwarded");
    assert_eq!(row["endpoint"], "/v1/payment_intents");
    assert_eq!(row["cost_usd"], "100.00");
    assert_eq!(row["money_state"], "moved");
    assert_eq!(row["upstream_status"], 200);
    assert!(!row.to_string().contains(&vk) && !row.to_string().contains(REAL_STRIPE_KEY));
}

#[tokio::test]
async fn refusals_never_reach_the_vendor() {
    let (base, up) = start_upstream().await;
    let gw = gateway(config_for(&base));
    let (vk, _) = stripe_key(&gw, 150_000_000, &["POST /v1/payment_intents"]).await;
    let reason = |r: Result<vendorgate::ProxyResponse, vendorgate::Refused>| {
        r.map(|r| r.status.to_string())
            .unwrap_or_else(|e| e.error.reason().to_string())
    };
    assert_eq!(
        reason(
            gw.process(req(&vk, "POST", "/v1/refunds", "charge=ch_1"))
                .await
        ),
        "endpoint_not_allowed"
    );
    assert_eq!(
        reason(
            gw.process(req(&vk, "POST", "/v1/payment_intents/../refunds", ""))
                .await
        ),
        "bad_path"
    );
    assert_eq!(
        reason(
            gw.process(req(
                &vk,
                "POST",
                "/v1/payment_intents",
                "amount=1&currency=zzz&confirm=true"
            ))
            .await
        ),
        "cannot_price"
    );
    assert_eq!(
        reason(
            gw.process(req(
                "vk_not_a_key_at_all",
                "POST",
                "/v1/payment_intents",
                CHARGE_100
            ))
            .await
        ),
        "unknown_key"
    );
    let mut override_req = req(&vk, "POST", "/v1/payment_intents", CHARGE_100);
    override_req
        .headers
        .insert("x-http-method-override", HeaderValue::from_static("DELETE"));
    assert_eq!(reason(gw.process(override_req).await), "bad_request");
    let mut acct = req(&vk, "POST", "/v1/payment_intents", CHARGE_100);
    acct.headers
        .insert("stripe-account", HeaderValue::from_static("acct_other"));
    assert_eq!(reason(gw.process(acct).await), "endpoint_not_allowed");
    assert_eq!(up.hits(), 0, "nothing refused may reach the vendor");
    // Two $100 charges against $150: the second is refused with 402 before the vendor.
    assert_eq!(
        reason(
            gw.process(req(&vk, "POST", "/v1/payment_intents", CHARGE_100))
                .await
        ),
        "200"
    );
    let err = gw
        .process(req(&vk, "POST", "/v1/payment_intents", CHARGE_100))
        .await
        .unwrap_err();
    assert_eq!(err.error.http_status(), 402);
    let (status, headers, body) = vendorgate::refusal::render(err.vendor, &err.error);
    assert_eq!(status, 402);
    assert_eq!(headers["stripe-should-retry"], "false");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "vendorgate_spend_cap_exceeded");
    assert_eq!(up.hits(), 1);
    // Every request has one audit row.
    assert_eq!(gw.audit(Default::default()).await.unwrap().len(), 8);
}

#[tokio::test]
async fn revocation_and_expiry_take_effect_on_next_request() {
    let (base, _up) = start_upstream().await;
    let now = Arc::new(AtomicI64::new(1_800_000_000_000));
    let clock_now = now.clone();
    let gw = Gateway::with_clock(
        config_for(&base),
        common::test_store(),
        Arc::new(move || clock_now.load(Ordering::SeqCst)),
    )
    .unwrap();
    let (vk1, id1) = stripe_key(&gw, 500_000_000, &["POST /v1/payment_intents"]).await;
    let (vk2, _) = stripe_key(&gw, 500_000_000, &["POST /v1/payment_intents"]).await;
    gw.process(req(&vk1, "POST", "/v1/payment_intents", CHARGE_100))
        .await
        .unwrap();
    gw.revoke(&id1).await.unwrap();
    assert_revoked(
        gw.process(req(&vk1, "POST", "/v1/payment_intents", CHARGE_100))
            .await,
    );
    // No collateral damage.
    gw.process(req(&vk2, "POST", "/v1/payment_intents", CHARGE_100))
        .await
        .unwrap();
    // Revoking by vault key works too.
    gw.revoke(&vk2).await.unwrap();
    assert!(gw
        .process(req(&vk2, "POST", "/v1/payment_intents", CHARGE_100))
        .await
        .is_err());
    let (vk3, _) = stripe_key(&gw, 500_000_000, &["POST /v1/payment_intents"]).await;
    now.fetch_add(3600 * 1000, Ordering::SeqCst);
    let e = gw
        .process(req(&vk3, "POST", "/v1/payment_intents", CHARGE_100))
        .await
        .unwrap_err();
    assert!(
        matches!(e.error, Error::Unauthorized(AuthFailure::KeyExpired)),
        "{e:?}"
    );
}

/// Two gateways on one database file (an agent process and a server, say). Keys are cached
/// in memory, so a revocation made by the *other* gateway must still stop money at once
/// (the reservation re-reads the key) and free calls within the cache's TTL.
#[tokio::test]
async fn revocation_by_another_process_stops_money_at_once() {
    let (base, up) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let a = Gateway::open(&db, config_for(&base)).unwrap();
    let b = Gateway::open(&db, config_for(&base)).unwrap();
    let (vk, id) = stripe_key(
        &a,
        500_000_000,
        &["POST /v1/payment_intents", "GET /v1/payment_intents/*"],
    )
    .await;
    let pi = a
        .process(req(&vk, "POST", "/v1/payment_intents", CHARGE_100))
        .await
        .unwrap();
    let pi_id = serde_json::from_slice::<serde_json::Value>(&pi.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let read = format!("/v1/payment_intents/{pi_id}");
    a.process(req(&vk, "GET", &read, "")).await.unwrap();
    b.revoke(&id).await.unwrap();
    let hits = up.hits();

    assert_revoked(
        a.process(req(&vk, "POST", "/v1/payment_intents", CHARGE_100))
            .await,
    );
    assert_eq!(
        up.hits(),
        hits,
        "a money call with a revoked key reached the vendor"
    );

    tokio::time::sleep(vendorgate::caches::TTL + std::time::Duration::from_millis(50)).await;
    assert_revoked(a.process(req(&vk, "GET", &read, "")).await);
    assert_eq!(
        up.hits(),
        hits,
        "a free call with a revoked key reached the vendor"
    );
    let st = a.key_status(&id).await.unwrap();
    assert_eq!(st.usage.spent, 100_000_000, "only the first charge counts");
}

/// `max_upstream_requests` bounds how many calls are at the vendor at once; the rest wait
/// for a slot and still go through.
#[tokio::test]
async fn upstream_calls_in_flight_are_bounded() {
    let (base, up) = start_upstream().await;
    let mut config = config_for(&base);
    config.max_upstream_requests = 2;
    let gw = gateway(config);
    let (vk, _) = stripe_key(&gw, 1_000_000, &["GET /v1/customers/*"]).await;
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (gw, vk) = (gw.clone(), vk.clone());
            tokio::spawn(
                async move { gw.process(req(&vk, "GET", "/v1/customers/cus_1", "")).await },
            )
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().status, 200);
    }
    assert_eq!(up.hits(), 8);
    assert_eq!(
        up.max_in_flight.load(Ordering::SeqCst),
        2,
        "the vendor saw more (or fewer) calls at once than the slots allow"
    );
}

#[tokio::test]
async fn refused_connection_releases_the_reservation() {
    // A port nothing listens on: bind, note the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = gateway(config_for(&format!("http://127.0.0.1:{port}")));
    let (vk, id) = stripe_key(&gw, 500_000_000, &["POST /v1/payment_intents"]).await;
    let e = gw
        .process(req(&vk, "POST", "/v1/payment_intents", CHARGE_100))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.error,
            Error::Upstream {
                kind: UpstreamFailure::ConnectFailed,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.error.http_status(), 502);
    assert_eq!(gw.key_status(&id).await.unwrap().usage.total, 0);
}

#[tokio::test]
async fn timeout_after_send_keeps_the_reservation() {
    let (base, up) = start_upstream().await;
    let gw = gateway(config_for(&base));
    let (vk, id) = stripe_key(&gw, 500_000_000, &["POST /v1/charges"]).await;
    let e = gw
        .process(req(&vk, "POST", "/v1/charges", "amount=10000&currency=usd"))
        .await
        .unwrap_err();
    assert_eq!(e.error.http_status(), 504, "{e:?}");
    assert_eq!(up.hits(), 1);
    let usage = gw.key_status(&id).await.unwrap().usage;
    assert_eq!(
        usage.pending, 100_000_000,
        "an unknown outcome stays counted"
    );
    let row = gw.audit(Default::default()).await.unwrap()[0].to_json();
    assert_eq!(row["money_state"], "unknown");
}

#[tokio::test]
async fn reset_after_send_keeps_the_reservation() {
    // A vendor that reads the request and hangs up without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            drop(sock);
        }
    });
    let gw = gateway(config_for(&format!("http://{addr}")));
    let (vk, id) = stripe_key(&gw, 500_000_000, &["POST /v1/charges"]).await;
    let e = gw
        .process(req(&vk, "POST", "/v1/charges", "amount=10000&currency=usd"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.error,
            Error::Upstream {
                kind: UpstreamFailure::Broken,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(gw.key_status(&id).await.unwrap().usage.pending, 100_000_000);
}

#[tokio::test]
async fn unconfirmed_intent_is_free_and_confirm_is_priced_from_memory() {
    let (base, _up) = start_upstream().await;
    let gw = gateway(config_for(&base));
    let (vk, id) = stripe_key(
        &gw,
        150_000_000,
        &[
            "POST /v1/payment_intents",
            "POST /v1/payment_intents/*/confirm",
            "POST /v1/payment_intents/*/cancel",
            "GET /v1/payment_intents/*",
        ],
    )
    .await;
    // Two unconfirmed $100 intents cost nothing.
    let a = gw
        .process(req(
            &vk,
            "POST",
            "/v1/payment_intents",
            "amount=10000&currency=usd",
        ))
        .await
        .unwrap();
    let b = gw
        .process(req(
            &vk,
            "POST",
            "/v1/payment_intents",
            "amount=10000&currency=usd",
        ))
        .await
        .unwrap();
    assert_eq!((a.cost_micros, b.cost_micros), (0, 0));
    let id_of = |r: &vendorgate::ProxyResponse| {
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (pa, pb) = (id_of(&a), id_of(&b));
    // Confirming the first is priced at its remembered $100.
    let c = gw
        .process(req(
            &vk,
            "POST",
            &format!("/v1/payment_intents/{pa}/confirm"),
            "",
        ))
        .await
        .unwrap();
    assert_eq!(c.cost_micros, 100_000_000);
    // The second would cross $150.
    let e = gw
        .process(req(
            &vk,
            "POST",
            &format!("/v1/payment_intents/{pb}/confirm"),
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error.reason(), "spend_cap_exceeded");
    // An intent the gateway never saw cannot be priced.
    let e = gw
        .process(req(
            &vk,
            "POST",
            "/v1/payment_intents/pi_unknown/confirm",
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error.reason(), "cannot_price");
    assert_eq!(gw.key_status(&id).await.unwrap().usage.spent, 100_000_000);
}

#[tokio::test]
async fn idempotent_retry_is_one_spend_and_reuse_is_a_conflict() {
    let (base, up) = start_upstream().await;
    let gw = gateway(config_for(&base));
    let (vk, id) = stripe_key(&gw, 500_000_000, &["POST /v1/payment_intents"]).await;
    let with_key = |body: &str, k: &str| {
        let mut r = req(&vk, "POST", "/v1/payment_intents", body);
        r.headers
            .insert("idempotency-key", HeaderValue::from_str(k).unwrap());
        r
    };
    gw.process(with_key(CHARGE_100, "k1")).await.unwrap();
    gw.process(with_key(CHARGE_100, "k1")).await.unwrap();
    assert_eq!(
        up.hits(),
        2,
        "the retry is forwarded so the vendor can replay its answer"
    );
    assert_eq!(
        gw.key_status(&id).await.unwrap().usage.total,
        100_000_000,
        "but counted once"
    );
    let e = gw
        .process(with_key("amount=20000&currency=usd&confirm=true", "k1"))
        .await
        .unwrap_err();
    assert_eq!(e.error.http_status(), 409);
}

#[tokio::test]
async fn twilio_sid_rewritten_and_price_reconciled_on_read() {
    let (base, up) = start_upstream().await;
    let gw = gateway(config_for(&base));
    let mut spec = KeySpec::new(Vendor::Twilio);
    spec.max_usd = Some(1_000_000);
    spec.allowed_endpoints = vec![
        "POST /2010-04-01/Accounts/*/Messages.json".into(),
        "GET /2010-04-01/Accounts/*/Messages/*".into(),
    ];
    let k = gw.issue_key(spec).await.unwrap();
    let mut h = HeaderMap::new();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("ACfake00000000000000000000000000:{}", k.vault_key));
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
    );
    let mk = |method: &str, path: &str, body: &str| ProxyRequest {
        vendor: Some(Vendor::Twilio),
        method: method.into(),
        path: path.into(),
        query: None,
        vault_key: vendorgate::credentials::vault_key_from(&h),
        headers: h.clone(),
        body: Bytes::from(body.to_string()),
    };
    let r = gw
        .process(mk(
            "POST",
            "/2010-04-01/Accounts/ACfake00000000000000000000000000/Messages.json",
            "To=%2B14155550100&Body=hello",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.cost_micros, 8_300);
    assert_eq!(
        up.paths_seen.lock()[0],
        format!("/2010-04-01/Accounts/{REAL_TWILIO_SID}/Messages.json")
    );
    assert!(up.auth_seen.lock()[0].starts_with("Basic "));
    assert!(!up.auth_seen.lock()[0].contains(&k.vault_key));
    let u = gw.key_status(&k.record.key_id).await.unwrap().usage;
    assert_eq!(
        u.pending, 8_300,
        "price unknown at create: the estimate stands, pending"
    );
    gw.process(mk(
        "GET",
        "/2010-04-01/Accounts/ACfake00000000000000000000000000/Messages/SM1.json",
        "",
    ))
    .await
    .unwrap();
    let u = gw.key_status(&k.record.key_id).await.unwrap().usage;
    assert_eq!(
        (u.spent, u.pending),
        (5_000, 0),
        "Twilio's price replaces the estimate"
    );
}

/// The duplicate-action guard end to end: the same SMS three times within the key's window
/// reaches the vendor once; the repeats get 409 `duplicate_action` naming the first call;
/// another text goes through; a key with `duplicate_window` 0 is not guarded.
#[tokio::test]
async fn the_same_money_call_again_is_refused_as_a_duplicate() {
    let (base, up) = start_upstream().await;
    let gw = gateway(config_for(&base));
    let twilio_key = |window: Option<i64>| {
        let mut spec = KeySpec::new(Vendor::Twilio);
        spec.max_usd = Some(1_000_000);
        spec.allowed_endpoints = vec!["POST /2010-04-01/Accounts/*/Messages.json".into()];
        spec.duplicate_window_secs = window;
        spec
    };
    let sms = |vk: &str, body: &str| {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("ACfake00000000000000000000000000:{vk}"));
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
        );
        ProxyRequest {
            vendor: Some(Vendor::Twilio),
            method: "POST".into(),
            path: "/2010-04-01/Accounts/ACfake00000000000000000000000000/Messages.json".into(),
            query: None,
            vault_key: vendorgate::credentials::vault_key_from(&h),
            headers: h,
            body: Bytes::from(body.to_string()),
        }
    };
    let k = gw.issue_key(twilio_key(None)).await.unwrap();
    let text = "To=%2B14155550100&Body=Your+refund+is+on+its+way";
    assert_eq!(
        gw.process(sms(&k.vault_key, text)).await.unwrap().status,
        201
    );
    let mut named = vec![];
    for _ in 0..2 {
        // The SDK's per-call additions (a status callback here) do not make it another action.
        let again = format!("{text}&StatusCallback=https%3A%2F%2Fexample.com%2Fcb");
        let e = gw.process(sms(&k.vault_key, &again)).await.unwrap_err();
        assert_eq!(e.error.reason(), "duplicate_action", "{e:?}");
        assert_eq!(e.error.http_status(), 409);
        let msg = e.error.to_string();
        assert!(msg.contains("duplicate_window of 10m"), "{msg}");
        let spend = e.error.details()["first_call"]["spend_id"].as_i64();
        assert!(
            msg.contains(&format!("spend_id {}", spend.unwrap_or(-1))),
            "{msg}"
        );
        named.push(spend);
    }
    assert_eq!(up.hits(), 1, "the repeats never reached the vendor");
    let other = "To=%2B14155550100&Body=Another+message";
    assert_eq!(
        gw.process(sms(&k.vault_key, other)).await.unwrap().status,
        201
    );
    assert_eq!(up.hits(), 2);
    // The repeats are in the audit log as refusals; only the two sent SMS are counted.
    let rows = gw.audit(Default::default()).await.unwrap();
    // The 409s name the first SMS's ledger row, and that call's audit row carries it; the
    // refusals reserved nothing and carry none.
    let first = rows.iter().find(|r| r.decision == "forwarded").unwrap();
    assert!(first.spend_id.is_some());
    assert_eq!(named, vec![first.spend_id; 2]);
    assert!(rows
        .iter()
        .filter(|r| r.decision == "duplicate_action")
        .all(|r| r.spend_id.is_none()));
    let refused = rows
        .iter()
        .filter(|r| r.decision == "duplicate_action")
        .count();
    assert_eq!(refused, 2);
    let u = gw.key_status(&k.record.key_id).await.unwrap().usage;
    assert_eq!(u.pending + u.spent, 2 * 8_300);

    let unguarded = gw.issue_key(twilio_key(Some(0))).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            gw.process(sms(&unguarded.vault_key, text))
                .await
                .unwrap()
                .status,
            201
        );
    }
    assert_eq!(up.hits(), 4);
}
