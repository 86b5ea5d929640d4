//! Race trials: many clients, many keys, mixed charges / confirms / captures / refunds against
//! run and daily caps, with the UTC day rolling over mid-trial (injected clock). After each
//! trial: what the vendor moved never exceeds a cap, and the ledger never counts less than
//! the vendor moved.
//!
//! `cargo test -p vendorgate-server --test races` runs 30 trials; `RACE_TRIALS=1000 cargo test
//! --release -p vendorgate-server --test races -- --nocapture` prints the figure for
//! docs/RELIABILITY.md. With `VENDORGATE_TEST_STORE=postgres` the same trials run on the
//! PostgreSQL store (a throwaway server: see core/tests/common/pg.rs).

#[path = "../../core/tests/common/pg.rs"]
mod pg;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use vendorgate::store::Store;
use vendorgate::{Config, Gateway, KeySpec, PgOptions, PgStore, ProxyRequest, SqliteStore, Vendor};

const DAY_MS: i64 = 86_400_000;

struct Trial {
    gw: Gateway,
    store: Arc<dyn Store>,
    clock: Arc<AtomicI64>,
}

async fn post(gw: &Gateway, vk: &str, path: &str, body: String) -> Option<Value> {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {vk}")).unwrap(),
    );
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let req = ProxyRequest {
        vendor: Some(Vendor::Stripe),
        method: "POST".into(),
        path: path.into(),
        query: None,
        vault_key: vendorgate::credentials::vault_key_from(&h),
        headers: h,
        body: Bytes::from(body),
    };
    match gw.process(req).await {
        Ok(r) if r.status == 200 => serde_json::from_slice(&r.body).ok(),
        _ => None,
    }
}

/// What the vendor says moved, in cents, from an answer (cards: amount received or held;
/// refunds: amount).
fn moved_cents(v: &Value) -> i64 {
    match (v["object"].as_str(), v["status"].as_str()) {
        (Some("payment_intent"), Some("succeeded")) => v["amount_received"].as_i64().unwrap_or(0),
        (Some("payment_intent"), Some("requires_capture")) => {
            v["amount_capturable"].as_i64().unwrap_or(0)
        }
        (Some("refund"), Some("succeeded" | "pending")) => v["amount"].as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// One client: a random mix of money calls; returns the vendor's final word per object.
async fn client(gw: Gateway, vk: String, seed: u64, ops: usize) -> Vec<(String, i64)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut objects: Vec<(String, i64)> = vec![];
    for _ in 0..ops {
        let amount = rng.random_range(50..=12_000);
        match rng.random_range(0..4) {
            0 => {
                if let Some(v) = post(
                    &gw,
                    &vk,
                    "/v1/payment_intents",
                    format!(
                        "amount={amount}&currency=usd&confirm=true&payment_method=pm_card_visa"
                    ),
                )
                .await
                {
                    objects.push((v["id"].as_str().unwrap().into(), moved_cents(&v)));
                }
            }
            1 => {
                if let Some(v) = post(
                    &gw,
                    &vk,
                    "/v1/payment_intents",
                    format!("amount={amount}&currency=usd&payment_method=pm_card_visa"),
                )
                .await
                {
                    let id = v["id"].as_str().unwrap().to_string();
                    if let Some(c) = post(
                        &gw,
                        &vk,
                        &format!("/v1/payment_intents/{id}/confirm"),
                        String::new(),
                    )
                    .await
                    {
                        objects.push((id, moved_cents(&c)));
                    }
                }
            }
            2 => {
                let body = format!("amount={amount}&currency=usd&confirm=true&capture_method=manual&payment_method=pm_card_visa");
                if let Some(v) = post(&gw, &vk, "/v1/payment_intents", body).await {
                    let id = v["id"].as_str().unwrap().to_string();
                    let held = moved_cents(&v);
                    match post(
                        &gw,
                        &vk,
                        &format!("/v1/payment_intents/{id}/capture"),
                        String::new(),
                    )
                    .await
                    {
                        Some(c) => objects.push((id, moved_cents(&c))),
                        None => objects.push((id, held)),
                    }
                }
            }
            _ => {
                let succeeded: Vec<String> = objects
                    .iter()
                    .filter(|(id, c)| id.starts_with("pi_") && *c > 0)
                    .map(|(id, _)| id.clone())
                    .collect();
                if let Some(pi) = succeeded
                    .get(rng.random_range(0..succeeded.len().max(1)))
                    .filter(|_| !succeeded.is_empty())
                {
                    if let Some(v) = post(
                        &gw,
                        &vk,
                        "/v1/refunds",
                        format!("payment_intent={pi}&amount={}", rng.random_range(50..=500)),
                    )
                    .await
                    {
                        objects.push((v["id"].as_str().unwrap().into(), moved_cents(&v)));
                    }
                }
            }
        }
    }
    objects
}

async fn setup() -> (Trial, vendorgate_server::ServerHandle) {
    let mut config = Config::default();
    let (sim, _) = vendorgate_server::start_sim(&mut config).await.unwrap();
    let store: Arc<dyn Store> =
        if std::env::var("VENDORGATE_TEST_STORE").as_deref() == Ok("postgres") {
            let url = pg::server()
                .expect("VENDORGATE_TEST_STORE=postgres needs PostgreSQL")
                .database();
            Arc::new(PgStore::open(PgOptions::new(url)).unwrap())
        } else {
            Arc::new(SqliteStore::in_memory().unwrap())
        };
    let clock = Arc::new(AtomicI64::new(
        1_800_000_000_000 / DAY_MS * DAY_MS + DAY_MS - 2_000,
    ));
    let c = clock.clone();
    let gw = Gateway::with_clock(
        config,
        store.clone(),
        Arc::new(move || c.load(Ordering::SeqCst)),
    )
    .unwrap();
    (Trial { gw, store, clock }, sim)
}

async fn run_trials(trials: usize) -> (usize, usize, i64) {
    let (t, sim) = setup().await;
    let (mut overshoot_trials, mut undercount_trials, mut vendor_cents_total) = (0, 0, 0i64);
    for n in 0..trials {
        let mut spec = KeySpec::new(Vendor::Stripe);
        let max_cents: i64 = 20_000 + (n as i64 * 7_919) % 80_000;
        let daily_cents: i64 = max_cents * 2 / 3;
        spec.max_usd = Some(max_cents * 10_000);
        spec.daily_usd_cap = Some(daily_cents * 10_000);
        spec.allowed_endpoints = vec![
            "POST /v1/payment_intents".into(),
            "POST /v1/payment_intents/*/confirm".into(),
            "POST /v1/payment_intents/*/capture".into(),
            "POST /v1/refunds".into(),
        ];
        spec.expires_in_secs = 30 * 86_400;
        // The trials repeat identical calls to race the ledger; the duplicate guard has its own.
        spec.duplicate_window_secs = Some(0);
        let key = t.gw.issue_key(spec).await.unwrap();
        let day1 = vendorgate::gateway::utc_day(t.clock.load(Ordering::SeqCst));
        let clients: Vec<_> = (0..6)
            .map(|c| {
                tokio::spawn(client(
                    t.gw.clone(),
                    key.vault_key.clone(),
                    (n * 100 + c) as u64,
                    8,
                ))
            })
            .collect();
        // The UTC day rolls over while the clients are running.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        t.clock.fetch_add(DAY_MS, Ordering::SeqCst);
        let day2 = vendorgate::gateway::utc_day(t.clock.load(Ordering::SeqCst));
        let mut per_object = std::collections::HashMap::new();
        for c in clients {
            for (id, cents) in c.await.unwrap() {
                per_object.insert(id, cents);
            }
        }
        let vendor_cents: i64 = per_object.values().sum();
        vendor_cents_total += vendor_cents;
        let u1 = t.store.usage(&key.record.key_id, &day1).unwrap();
        let u2 = t.store.usage(&key.record.key_id, &day2).unwrap();
        if vendor_cents > max_cents
            || u1.total > max_cents * 10_000
            || u1.today > daily_cents * 10_000
            || u2.today > daily_cents * 10_000
        {
            overshoot_trials += 1;
        }
        if u1.total < vendor_cents * 10_000 {
            undercount_trials += 1;
            eprintln!(
                "trial {n}: ledger {} µUSD < vendor {} cents",
                u1.total, vendor_cents
            );
        }
        // Next trial starts just before the next midnight.
        let now = t.clock.load(Ordering::SeqCst);
        t.clock
            .store(now / DAY_MS * DAY_MS + DAY_MS - 2_000, Ordering::SeqCst);
    }
    sim.shutdown().await;
    (overshoot_trials, undercount_trials, vendor_cents_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_races_with_day_rollover_never_overshoot_or_undercount() {
    let trials: usize = std::env::var("RACE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let started = std::time::Instant::now();
    let (overshoot, undercount, vendor_cents) = run_trials(trials).await;
    println!("RACES trials={trials} overshoot_trials={overshoot} undercount_trials={undercount} vendor_usd_moved={:.2} seconds={:.1}", vendor_cents as f64 / 100.0, started.elapsed().as_secs_f64());
    assert!(vendor_cents > 0, "the trials moved money");
    assert_eq!(overshoot, 0);
    assert_eq!(undercount, 0);
}
