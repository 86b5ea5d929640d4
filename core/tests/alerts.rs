//! Early warnings and events, through the whole pipeline: `alert_at` thresholds fire once per
//! cap window (durably: a gateway reopened on the same store does not fire them again; a new
//! UTC day fires the daily ones again), the first refusal for a cap is one
//! `spend.cap_reached`, revocations and blocked duplicates are one event each, an unknown
//! outcome is a `spend.unknown`; and the outbox delivers signed events, retries a failing
//! receiver and stops at a 410. Runs against SQLite, and PostgreSQL with
//! `VENDORGATE_TEST_STORE=postgres`.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap as AxHeaders, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use common::*;
use http::{HeaderMap, HeaderValue};
use parking_lot::Mutex;
use serde_json::{json, Value};
use vendorgate::store::Budget;
use vendorgate::{Gateway, KeySpec, ProxyRequest, Vendor};

const USD: i64 = 1_000_000;
const CHARGE_100: &str = "amount=10000&currency=usd&confirm=true";
/// 2026-12-02T10:00:00Z
const T0: i64 = 1_796_205_600_000;

fn req(vk: &str, body: &str) -> ProxyRequest {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {vk}")).unwrap(),
    );
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    ProxyRequest {
        vendor: None,
        method: "POST".into(),
        path: "/v1/payment_intents".into(),
        query: None,
        vault_key: vendorgate::credentials::vault_key_from(&h),
        headers: h,
        body: Bytes::from(body.to_string()),
    }
}

/// A database two gateways can open one after the other: a SQLite file or a PostgreSQL URL.
fn reopenable(dir: &std::path::Path) -> String {
    if on_postgres() {
        return pg_url();
    }
    dir.join("alerts.db").to_string_lossy().into_owned()
}

fn clocked(config: vendorgate::Config, db: &str, now: &Arc<AtomicI64>) -> Gateway {
    let now = now.clone();
    Gateway::with_clock(
        config,
        open_shared(db),
        Arc::new(move || now.load(Ordering::SeqCst)),
    )
    .unwrap()
}

/// `(type, data)` of every stored event, oldest first.
async fn events(gw: &Gateway) -> Vec<(String, Value)> {
    let mut all: Vec<_> = gw
        .events(1000)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let v = e.to_json();
            (v["type"].as_str().unwrap().to_string(), v["data"].clone())
        })
        .collect();
    all.reverse();
    all
}

/// `"type cap period threshold"` per event, for compact assertions.
fn summary(evs: &[(String, Value)]) -> Vec<String> {
    evs.iter()
        .map(|(t, d)| {
            let mut s = t.clone();
            for f in ["budget", "cap", "period", "threshold"] {
                match &d[f] {
                    Value::Null => {}
                    Value::String(v) => s += &format!(" {v}"),
                    v => s += &format!(" {v}"),
                }
            }
            s
        })
        .collect()
}

async fn charge(gw: &Gateway, vk: &str) -> u16 {
    match gw.process(req(vk, CHARGE_100)).await {
        Ok(r) => r.status,
        Err(e) => e.error.http_status(),
    }
}

#[tokio::test]
async fn thresholds_fire_once_per_cap_window_and_survive_a_restart() {
    let (base, _up) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let db = reopenable(dir.path());
    let now = Arc::new(AtomicI64::new(T0));
    let gw = clocked(config_for(&base), &db, &now);
    let mut spec = KeySpec::new(Vendor::Stripe);
    spec.max_usd = Some(500 * USD);
    spec.daily_usd_cap = Some(300 * USD);
    spec.alert_at = vec![5000, 8000];
    spec.allowed_endpoints = vec!["POST /v1/payment_intents".into()];
    spec.duplicate_window_secs = Some(0);
    spec.expires_in_secs = 3 * 86_400;
    spec.run_id = Some("billing-7".into());
    let key = gw.issue_key(spec).await.unwrap();
    let vk = key.vault_key.clone();

    assert_eq!(charge(&gw, &vk).await, 200); // $100: run 20 %, day 33 %
    assert!(events(&gw).await.is_empty(), "nothing reached yet");
    assert_eq!(charge(&gw, &vk).await, 200); // $200: day 67 %
    assert_eq!(charge(&gw, &vk).await, 200); // $300: run 60 %, day 100 %
    assert_eq!(charge(&gw, &vk).await, 402); // the daily cap refuses
    assert_eq!(charge(&gw, &vk).await, 402); // and again: no second event
    let evs = events(&gw).await;
    assert_eq!(
        summary(&evs),
        [
            "spend.threshold_crossed daily_usd_cap 2026-12-02 0.5",
            "spend.threshold_crossed max_usd run 0.5",
            "spend.threshold_crossed daily_usd_cap 2026-12-02 0.8",
            "spend.cap_reached daily_usd_cap 2026-12-02",
        ]
    );
    let (_, first) = &evs[0];
    assert_eq!(first["key_id"], key.record.key_id.as_str());
    assert_eq!(first["run_id"], "billing-7");
    assert_eq!(first["cap_usd"], "300.00");
    assert_eq!(
        first["counted_usd"], "200.00",
        "what counted when it was reached"
    );
    assert_eq!(evs[3].1["refused_estimate_usd"], "100.00");

    // A restart (a new gateway on the same store, nothing cached) fires nothing again.
    drop(gw);
    let gw = clocked(config_for(&base), &db, &now);
    assert_eq!(charge(&gw, &vk).await, 402);
    assert_eq!(
        events(&gw).await.len(),
        4,
        "{:?}",
        summary(&events(&gw).await)
    );

    // A new UTC day: the daily thresholds can fire again; the run's only once ever.
    now.fetch_add(86_400_000, Ordering::SeqCst);
    assert_eq!(charge(&gw, &vk).await, 200); // run $400 = 80 %, day 33 %
    assert_eq!(charge(&gw, &vk).await, 200); // run $500, day 67 %
    assert_eq!(charge(&gw, &vk).await, 402); // run cap
    assert_eq!(
        summary(&events(&gw).await)[4..],
        [
            "spend.threshold_crossed max_usd run 0.8",
            "spend.threshold_crossed daily_usd_cap 2026-12-03 0.5",
            "spend.cap_reached max_usd run",
        ]
    );
}

#[tokio::test]
async fn a_budgets_warning_fires_once_for_all_its_keys() {
    let (base, _up) = start_upstream().await;
    let gw = gateway(config_for(&base));
    gw.create_budget(Budget {
        name: "team-a".into(),
        max_usd: Some(300 * USD),
        daily_usd_cap: None,
        alert_at: vec![5000],
        created_at_ms: 0,
    })
    .await
    .unwrap();
    let mut vks = vec![];
    for _ in 0..3 {
        let mut spec = KeySpec::new(Vendor::Stripe);
        spec.max_usd = Some(1000 * USD);
        spec.budgets = vec!["team-a".into()];
        spec.allowed_endpoints = vec!["POST /v1/payment_intents".into()];
        spec.duplicate_window_secs = Some(0);
        vks.push(gw.issue_key(spec).await.unwrap().vault_key);
    }
    let statuses = [
        charge(&gw, &vks[0]).await,
        charge(&gw, &vks[1]).await, // the budget at 67 %
        charge(&gw, &vks[2]).await, // 100 %
        charge(&gw, &vks[0]).await, // refused by the budget
        charge(&gw, &vks[1]).await, // refused again, another key
    ];
    assert_eq!(statuses, [200, 200, 200, 402, 402]);
    let evs = events(&gw).await;
    assert_eq!(
        summary(&evs),
        [
            "spend.threshold_crossed team-a max_usd run 0.5",
            "spend.cap_reached team-a max_usd run",
        ]
    );
    assert_eq!(evs[0].1["counted_usd"], "200.00");
}

#[tokio::test]
async fn revocations_duplicates_and_unknown_outcomes_are_events() {
    let (base, _up) = start_upstream().await;
    let gw = gateway(config_for(&base));
    let mut spec = KeySpec::new(Vendor::Stripe);
    spec.max_usd = Some(1000 * USD);
    spec.allowed_endpoints = vec!["POST /v1/payment_intents".into(), "POST /v1/charges".into()];
    let key = gw.issue_key(spec).await.unwrap();
    let vk = key.vault_key.clone();
    assert_eq!(charge(&gw, &vk).await, 200);
    assert_eq!(charge(&gw, &vk).await, 409, "the same charge again");
    assert_eq!(charge(&gw, &vk).await, 409, "and a third time");
    // A charge whose answer never comes: counted at its estimate, state unknown.
    let mut slow = req(&vk, "amount=2500&currency=usd");
    slow.path = "/v1/charges".into();
    assert_eq!(gw.process(slow).await.unwrap_err().error.http_status(), 504);
    gw.revoke(&key.record.key_id).await.unwrap();
    gw.revoke(&key.vault_key).await.unwrap();
    let evs = events(&gw).await;
    let types: Vec<_> = evs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["request.duplicate_blocked", "spend.unknown", "key.revoked"]
    );
    assert_eq!(evs[0].1["endpoint"], "POST /v1/payment_intents");
    assert!(evs[0].1["first_call"]["spend_id"].as_i64().is_some());
    assert_eq!(evs[1].1["counted_usd"], "25.00");
    assert_eq!(evs[2].1["key_id"], key.record.key_id.as_str());
    // Each event's spend_id leads to the audit row of the call it is about.
    let rows = gw.audit(Default::default()).await.unwrap();
    let row_of = |v: &serde_json::Value| {
        let id = v.as_i64();
        let found: Vec<_> = rows
            .iter()
            .filter(|r| id.is_some() && r.spend_id == id)
            .collect();
        assert_eq!(found.len(), 1, "{v}: {rows:?}");
        (found[0].endpoint.clone(), found[0].decision.clone())
    };
    assert_eq!(
        row_of(&evs[0].1["first_call"]["spend_id"]),
        ("/v1/payment_intents".to_string(), "forwarded".to_string())
    );
    assert_eq!(row_of(&evs[1].1["spend_id"]).0, "/v1/charges");
}

/// A receiver that answers with the statuses given, in turn (then 200), and keeps what it got.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(AxHeaders, String)>>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

async fn receive(State(r): State<Receiver>, h: AxHeaders, body: String) -> StatusCode {
    r.got.lock().push((h, body));
    let next = {
        let mut a = r.answers.lock();
        if a.is_empty() {
            200
        } else {
            a.remove(0)
        }
    };
    StatusCode::from_u16(next).unwrap()
}

async fn start_receiver(answers: Vec<u16>) -> (String, Receiver) {
    let r = Receiver {
        answers: Arc::new(Mutex::new(answers)),
        ..Receiver::default()
    };
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), r)
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn deliveries_are_signed_retried_and_stop_at_410() {
    let (base, _up) = start_upstream().await;
    let mut config = config_for(&base);
    config.webhook_retry = vec![Duration::from_millis(300), Duration::from_millis(300)];
    let gw = gateway(config);
    let _worker = gw.spawn_deliveries();
    // Fails twice, then takes it.
    let (url, receiver) = start_receiver(vec![500, 503]).await;
    let hook = gw
        .create_webhook(&json!({"url": url, "events": ["key.revoked"]}))
        .await
        .unwrap();
    let (gone_url, gone) = start_receiver(vec![410]).await;
    let gone_hook = gw.create_webhook(&json!({"url": gone_url})).await.unwrap();

    let mut spec = KeySpec::new(Vendor::Stripe);
    spec.max_usd = Some(USD);
    let a = gw.issue_key(spec.clone()).await.unwrap();
    gw.revoke(&a.record.key_id).await.unwrap();
    until("three attempts at the flaky receiver", || {
        receiver.got.lock().len() >= 3
    })
    .await;
    until("the 410 receiver's attempt", || !gone.got.lock().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = receiver.got.lock().clone();
    assert_eq!(
        got.len(),
        3,
        "delivered on the third attempt, then never again"
    );
    let ids: Vec<_> = got
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap().to_string())
        .collect();
    assert!(
        ids.iter().all(|i| i == &ids[0] && i.starts_with("evt_")),
        "one id on every attempt: {ids:?}"
    );
    let (h, body) = &got[2];
    let ts: i64 = h["webhook-timestamp"].to_str().unwrap().parse().unwrap();
    let expect = vendorgate::signing::sign(&hook.secret, &ids[0], ts, body.as_bytes()).unwrap();
    assert_eq!(h["webhook-signature"].to_str().unwrap(), expect);
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["type"], "key.revoked");
    assert_eq!(v["data"]["key_id"], a.record.key_id.as_str());

    // The 410 receiver got one attempt and was disabled: the next event is not sent to it.
    let hooks = gw.webhooks().await.unwrap();
    let g = hooks.iter().find(|w| w.id == gone_hook.id).unwrap();
    assert!(g.disabled.as_deref().unwrap_or("").contains("410"), "{g:?}");
    let b = gw.issue_key(spec).await.unwrap();
    gw.revoke(&b.record.key_id).await.unwrap();
    until("the second event at the flaky receiver", || {
        receiver.got.lock().len() >= 4
    })
    .await;
    assert_eq!(
        gone.got.lock().len(),
        1,
        "a disabled webhook gets nothing more"
    );

    // Every attempt is in the audit log, never with the URL.
    let rows: Vec<Value> = gw
        .audit(Default::default())
        .await
        .unwrap()
        .iter()
        .map(|r| r.to_json())
        .filter(|r| r["decision"].as_str().unwrap_or("").starts_with("webhook_"))
        .collect();
    let decisions: Vec<_> = rows
        .iter()
        .filter(|r| r["endpoint"] == format!("webhook {}", hook.id))
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        [
            "webhook_retrying",
            "webhook_retrying",
            "webhook_delivered",
            "webhook_delivered"
        ]
    );
    assert!(rows
        .iter()
        .any(|r| r["decision"] == "webhook_failed" && r["status"] == 410));
    for r in &rows {
        assert!(
            !r.to_string().contains("127.0.0.1"),
            "no URL in the audit log: {r}"
        );
    }
    // The event list shows each delivery's outcome.
    let listed = gw.events(10).await.unwrap();
    let first = listed.iter().find(|e| e.id == ids[0]).unwrap().to_json();
    let states: Vec<_> = first["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["webhook_id"].as_str().unwrap().to_string(),
                d["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        states.contains(&(hook.id.clone(), "delivered".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(gone_hook.id.clone(), "failed".into())),
        "{states:?}"
    );
}

/// Two gateways on one store (two processes on a SQLite file, two instances on PostgreSQL),
/// both delivering: each event reaches the receiver once — a claimed delivery is not taken by
/// the other worker.
#[tokio::test]
async fn two_workers_on_one_store_deliver_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = reopenable(dir.path());
    // The workers' leases and retries run on the real clock.
    let now = Arc::new(AtomicI64::new((vendorgate::gateway::system_clock())()));
    let config = || vendorgate::Config {
        webhook_retry: vec![Duration::from_millis(200); 5],
        ..Default::default()
    };
    let (a, b) = (clocked(config(), &db, &now), clocked(config(), &db, &now));
    let (url, receiver) = start_receiver(vec![]).await;
    a.create_webhook(&json!({"url": url, "events": ["key.revoked"]}))
        .await
        .unwrap();
    let mut spec = KeySpec::new(Vendor::Stripe);
    spec.max_usd = Some(USD);
    spec.expires_in_secs = 86_400;
    let mut ids = Vec::new();
    for i in 0..40 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let k = gw.issue_key(spec.clone()).await.unwrap();
        gw.revoke(&k.record.key_id).await.unwrap();
        ids.push(k.record.key_id);
    }
    let (wa, wb) = (a.spawn_deliveries(), b.spawn_deliveries());
    until("40 deliveries", || receiver.got.lock().len() >= 40).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wa.abort();
    wb.abort();
    let got = receiver.got.lock().clone();
    let mut event_ids: Vec<_> = got
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap().to_string())
        .collect();
    event_ids.sort();
    event_ids.dedup();
    println!(
        "TWO_WORKERS posts={} distinct_events={}",
        got.len(),
        event_ids.len()
    );
    assert_eq!((got.len(), event_ids.len()), (40, 40), "each event once");
    let mut revoked: Vec<String> = got
        .iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).unwrap()["data"]["key_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    revoked.sort();
    ids.sort();
    assert_eq!(revoked, ids);
}
