//! `revocation = "notify"` on PostgreSQL: an instance that caches keys hears a revocation made
//! at another instance through LISTEN/NOTIFY. Prints the delay between the revoking call's
//! return and the other instance dropping its cached keys (docs/BENCHMARKS.md).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use vendorgate::keys::{hash_vault_key, KeyRecord, Policy};
use vendorgate::store::Store;
use vendorgate::{PgOptions, PgStore, Revocation, Vendor};

fn key(id: &str) -> KeyRecord {
    let policy = Policy {
        max_usd: Some(1),
        ..Policy::new(Vendor::Stripe)
    };
    KeyRecord::new(id, policy)
}

#[test]
fn a_revocation_elsewhere_reaches_a_caching_instance() {
    let Some(server) = common::pg::server() else {
        return;
    };
    let url = server.database();
    let revoker = PgStore::open(PgOptions::new(url.clone())).unwrap();
    let mut opts = PgOptions::new(url);
    opts.revocation = Revocation::Notify;
    let cacher = PgStore::open(opts).unwrap();
    assert_eq!(
        revoker.key_trust(),
        Duration::ZERO,
        "read mode trusts no cached key"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while cacher.key_trust() == Duration::ZERO {
        assert!(Instant::now() < deadline, "the listener never connected");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let tx = Arc::new(parking_lot::Mutex::new(tx));
    cacher.on_key_change(Box::new(move || {
        let _ = tx.lock().send(Instant::now());
    }));
    let trials = 200;
    let mut delays_us: Vec<u128> = Vec::with_capacity(trials);
    for i in 0..trials {
        let id = format!("k{i}");
        revoker
            .insert_key(&key(&id), &hash_vault_key(&format!("vk_{id}")))
            .unwrap();
        while rx.try_recv().is_ok() {}
        assert!(revoker.revoke(&id, 1, None).unwrap());
        let returned = Instant::now();
        let heard = rx
            .recv_timeout(Duration::from_secs(2))
            .expect("the caching instance never heard of the revocation");
        delays_us.push(heard.saturating_duration_since(returned).as_micros());
    }
    delays_us.sort_unstable();
    let pct = |p: usize| delays_us[(delays_us.len() * p / 100).min(delays_us.len() - 1)];
    println!(
        "NOTIFY trials={trials} p50_us={} p99_us={} max_us={}",
        pct(50),
        pct(99),
        delays_us[delays_us.len() - 1]
    );
    assert!(
        cacher.key_trust() > Duration::ZERO,
        "still listening, so cached keys are trusted"
    );
}
