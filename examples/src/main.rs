//! A runaway billing agent, with and without the gate. Offline: the vendor is vendorgate's
//! built-in simulator.
//!
//!     cargo run -p vendorgate-examples --bin runaway-agent
//!
//! Without the gate the agent holds the real key and every retry charges the customer. With
//! the gate it holds a vault key capped at $500: the duplicate guard lets the first charge
//! through and refuses its repeats with 409; with the guard off for the key, five charges go
//! through and the cap refuses the rest with 402.

use std::sync::Arc;

use vendorgate::{Config, Gateway, KeySpec, SqliteStore, Vendor};
use vendorgate_server::{sim, AppState};

/// The agent: retries a $100 charge `times` times against `base` with `key`; returns how
/// many went through and how many were refused with 402 and with 409.
async fn runaway_agent(base: &str, key: &str, times: usize) -> (usize, usize, usize) {
    let http = reqwest::Client::new();
    let (mut ok, mut capped, mut duplicate) = (0, 0, 0);
    for _ in 0..times {
        let resp = http
            .post(format!("{base}/v1/payment_intents"))
            .bearer_auth(key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("amount=10000&currency=usd&confirm=true&payment_method=pm_card_visa")
            .send()
            .await;
        match resp.map(|r| r.status().as_u16()) {
            Ok(200) => ok += 1,
            Ok(402) => capped += 1,
            Ok(409) => duplicate += 1,
            other => eprintln!("unexpected answer: {other:?}"),
        }
    }
    (ok, capped, duplicate)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    let (vendor, _) = vendorgate_server::start_sim(&mut config).await?;

    let (ok, _, _) =
        runaway_agent(&format!("{}/stripe", vendor.url()), sim::stripe_key(), 200).await;
    println!(
        "without the gate: {ok} charges of $100 went through (${} moved)",
        ok * 100
    );

    let gateway = Gateway::new(config, Arc::new(SqliteStore::in_memory()?))?;
    let server = vendorgate_server::spawn(
        vendorgate_server::app(AppState::new(gateway.clone(), None)),
        "127.0.0.1:0",
    )
    .await?;
    let mut spec = KeySpec::new(Vendor::Stripe);
    spec.max_usd = Some(500_000_000);
    spec.allowed_endpoints = vec!["POST /v1/payment_intents".into()];
    let key = gateway.issue_key(spec.clone()).await?;
    let (ok, _, duplicate) = runaway_agent(&server.url(), &key.vault_key, 200).await;
    println!(
        "with the gate (duplicate guard): {ok} went through (${} moved), {duplicate} refused with 409 as repeats",
        ok * 100
    );
    spec.duplicate_window_secs = Some(0);
    let key = gateway.issue_key(spec).await?;
    let (ok, capped, _) = runaway_agent(&server.url(), &key.vault_key, 200).await;
    println!(
        "with the gate ($500 cap): {ok} went through (${} moved), {capped} refused with 402",
        ok * 100
    );
    server.shutdown().await;
    vendor.shutdown().await;
    Ok(())
}
