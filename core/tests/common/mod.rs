//! A small fake vendor for pipeline tests: Stripe PaymentIntents and Twilio messages, a
//! record of every Authorization header it saw, and a slow route.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};
use vendorgate::config::twilio_credentials;
use vendorgate::store::Store;
use vendorgate::{Config, Credentials, Gateway, Secret, SqliteStore};

pub mod pg;

pub const REAL_STRIPE_KEY: &str = "sk_test_REALKEY_do_not_leak_4242";
pub const REAL_TWILIO_SID: &str = "ACREAL0000000000000000000000000001";
pub const REAL_TWILIO_TOKEN: &str = "twilio_REAL_token_do_not_leak";

#[derive(Clone, Default)]
pub struct Upstream {
    pub auth_seen: Arc<Mutex<Vec<String>>>,
    pub paths_seen: Arc<Mutex<Vec<String>>>,
    intents: Arc<Mutex<HashMap<String, Value>>>,
    /// Calls being answered right now, and the most there ever were at once.
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    pub max_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

fn form(body: &str) -> HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

impl Upstream {
    fn see(&self, h: &HeaderMap, path: &str) {
        if let Some(a) = h.get("authorization").and_then(|v| v.to_str().ok()) {
            self.auth_seen.lock().push(a.to_string());
        }
        self.paths_seen.lock().push(path.to_string());
    }

    pub fn hits(&self) -> usize {
        self.paths_seen.lock().len()
    }
}

async fn create_pi(State(u): State<Upstream>, h: HeaderMap, body: String) -> impl IntoResponse {
    u.see(&h, "/v1/payment_intents");
    let f = form(&body);
    let amount: i64 = f.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
    let id = format!("pi_{}", u.intents.lock().len() + 1);
    let confirmed = f.get("confirm").map(String::as_str) == Some("true");
    let v = json!({
        "object": "payment_intent", "id": id, "amount": amount, "currency": f.get("currency").cloned().unwrap_or("usd".into()),
        "status": if confirmed { "succeeded" } else { "requires_payment_method" },
        "amount_received": if confirmed { amount } else { 0 }, "amount_capturable": 0
    });
    u.intents.lock().insert(id, v.clone());
    Json(v)
}

async fn pi_action(
    State(u): State<Upstream>,
    h: HeaderMap,
    Path((id, action)): Path<(String, String)>,
) -> impl IntoResponse {
    u.see(&h, &format!("/v1/payment_intents/{id}/{action}"));
    let mut intents = u.intents.lock();
    let Some(pi) = intents.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"type": "invalid_request_error", "code": "resource_missing"}})),
        );
    };
    match action.as_str() {
        "confirm" => {
            pi["status"] = json!("succeeded");
            pi["amount_received"] = pi["amount"].clone();
        }
        "cancel" => pi["status"] = json!("canceled"),
        _ => {}
    }
    (StatusCode::OK, Json(pi.clone()))
}

async fn get_pi(
    State(u): State<Upstream>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> impl IntoResponse {
    u.see(&h, &format!("/v1/payment_intents/{id}"));
    match u.intents.lock().get(&id) {
        Some(pi) => (StatusCode::OK, Json(pi.clone())),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"type": "invalid_request_error"}})),
        ),
    }
}

async fn slow(State(u): State<Upstream>, h: HeaderMap) -> impl IntoResponse {
    u.see(&h, "/v1/charges");
    tokio::time::sleep(Duration::from_secs(5)).await;
    Json(json!({}))
}

/// A read that takes 50 ms, counting how many overlap.
async fn get_customer(State(u): State<Upstream>, h: HeaderMap) -> impl IntoResponse {
    use std::sync::atomic::Ordering;
    u.see(&h, "/v1/customers");
    let now = u.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    u.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    u.in_flight.fetch_sub(1, Ordering::SeqCst);
    Json(json!({"object": "customer", "id": "cus_1"}))
}

async fn twilio_create(
    State(u): State<Upstream>,
    h: HeaderMap,
    Path(sid): Path<String>,
) -> impl IntoResponse {
    u.see(&h, &format!("/2010-04-01/Accounts/{sid}/Messages.json"));
    (
        StatusCode::CREATED,
        Json(
            json!({"sid": "SM1", "account_sid": sid, "status": "queued", "price": null, "price_unit": "USD"}),
        ),
    )
}

async fn twilio_get(
    State(u): State<Upstream>,
    h: HeaderMap,
    Path((sid, msg)): Path<(String, String)>,
) -> impl IntoResponse {
    u.see(&h, &format!("/2010-04-01/Accounts/{sid}/Messages/{msg}"));
    Json(
        json!({"sid": "SM1", "account_sid": sid, "status": "delivered", "price": "-0.00500", "price_unit": "USD"}),
    )
}

/// Start the fake vendor; returns its base URL.
pub async fn start_upstream() -> (String, Upstream) {
    let u = Upstream::default();
    let app = Router::new()
        .route("/v1/payment_intents", post(create_pi))
        .route("/v1/payment_intents/{id}", get(get_pi))
        .route("/v1/payment_intents/{id}/{action}", post(pi_action))
        .route("/v1/charges", post(slow))
        .route("/v1/customers/{id}", get(get_customer))
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(twilio_create),
        )
        .route("/2010-04-01/Accounts/{sid}/Messages/{msg}", get(twilio_get))
        .with_state(u.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), u)
}

/// A config pointing Stripe and Twilio at `base` with the fake real credentials.
pub fn config_for(base: &str) -> Config {
    let mut c = Config::default();
    c.stripe.base_url = url::Url::parse(base).unwrap();
    c.stripe.credentials = Some(Credentials::Bearer(Secret::new(REAL_STRIPE_KEY)));
    c.twilio.base_url = url::Url::parse(base).unwrap();
    c.twilio.credentials = Some(twilio_credentials(REAL_TWILIO_SID, REAL_TWILIO_TOKEN).unwrap());
    c.request_timeout = Duration::from_millis(400);
    c.connect_timeout = Duration::from_millis(400);
    c
}

pub fn gateway(config: Config) -> Gateway {
    Gateway::new(config, test_store()).unwrap()
}

/// Whether this run of the store-level tests is against PostgreSQL
/// (`VENDORGATE_TEST_STORE=postgres`): the same tests run against both stores.
pub fn on_postgres() -> bool {
    std::env::var("VENDORGATE_TEST_STORE").as_deref() == Ok("postgres")
}

/// A fresh, empty store: SQLite in memory, or a new PostgreSQL database when
/// [`on_postgres`].
pub fn test_store() -> Arc<dyn Store> {
    if on_postgres() {
        return Arc::new(pg_store(pg_url()));
    }
    Arc::new(SqliteStore::in_memory().unwrap())
}

/// A fresh store that several connections share (the concurrency tests): a SQLite file in
/// `dir`, or a new PostgreSQL database.
pub fn shared_store(dir: &std::path::Path) -> Arc<dyn Store> {
    if on_postgres() {
        return Arc::new(pg_store(pg_url()));
    }
    Arc::new(SqliteStore::open(dir.join("shared.db")).unwrap())
}

/// A store on `db`: a PostgreSQL URL or a SQLite file (child processes of a test).
pub fn open_shared(db: &str) -> Arc<dyn Store> {
    if vendorgate::is_postgres_url(db) {
        return Arc::new(pg_store(db.to_string()));
    }
    Arc::new(SqliteStore::open(db).unwrap())
}

/// The URL of a fresh PostgreSQL database (the PostgreSQL run needs a server: see `pg.rs`).
pub fn pg_url() -> String {
    pg::server()
        .expect("VENDORGATE_TEST_STORE=postgres needs a PostgreSQL server")
        .database()
}

#[cfg(feature = "postgres")]
pub fn pg_store(url: String) -> vendorgate::PgStore {
    vendorgate::PgStore::open(vendorgate::PgOptions::new(url)).unwrap()
}

#[cfg(not(feature = "postgres"))]
pub fn pg_store(_url: String) -> SqliteStore {
    panic!("VENDORGATE_TEST_STORE=postgres: build the tests with --features postgres")
}
