//! The cost of one more call on a vendor object as its history grows: a reservation plus an
//! authoritative settlement on the same object (say, updates of one PaymentIntent), timed
//! after 0, 1,000, 5,000 and 10,000 earlier calls on it. A settlement rewrites the object's
//! rows so they add up to what the vendor says; it must not re-read every earlier row.
//!
//!     cargo bench -p vendorgate --features postgres --bench object_history
//!
//! SQLite always; PostgreSQL too when built with `--features postgres` and a server is at
//! hand (`VENDORGATE_PG_URL`, or the system's PostgreSQL binaries: see tests/common/pg.rs).

use std::time::Instant;

use vendorgate::keys::{hash_vault_key, KeyRecord, Policy};
use vendorgate::store::{Finish, ReserveOutcome, ReserveRequest, Settle, Store};
use vendorgate::{MoneyState, SqliteStore, Vendor};

#[cfg(feature = "postgres")]
#[path = "../tests/common/pg.rs"]
mod pg;

const OBJECT: &str = "pi_bench_history";
const CHECKPOINTS: [usize; 4] = [0, 1_000, 5_000, 10_000];
const TIMED: usize = 300;
/// $1M: a key without caps moves nothing.
const CAP: i64 = 1_000_000_000_000;

fn key(store: &dyn Store) {
    let policy = Policy {
        max_usd: Some(CAP),
        ..Policy::new(Vendor::Stripe)
    };
    let rec = KeyRecord::new("key_history", policy);
    store
        .insert_key(&rec, &hash_vault_key("vk_history"))
        .unwrap();
}

/// One call on the object: reserve its estimate, settle it as the vendor's whole answer.
fn call(store: &dyn Store, i: usize) {
    let out = store
        .reserve(&ReserveRequest {
            key_id: "key_history".into(),
            day: "2026-12-02".into(),
            now_ms: i as i64,
            estimate: 2_000_000,
            object_id: Some(OBJECT.into()),
            idempotency: None,
            max_usd: Some(CAP),
            daily_usd_cap: None,
            action: None,
            alert_at: vec![],
            about: None,
        })
        .unwrap();
    let ReserveOutcome::Reserved { spend_id, .. } = out else {
        panic!("not reserved: {out:?}")
    };
    store
        .finish(&Finish {
            settle: Some(Settle {
                spend_id,
                key_id: "key_history".into(),
                state: MoneyState::Moved,
                cost: 1_000_000,
                object_id: Some(OBJECT.into()),
                authoritative: true,
            }),
            ..Default::default()
        })
        .unwrap();
}

fn run(name: &str, store: &dyn Store) {
    key(store);
    let mut done = 0;
    let mut cells = Vec::new();
    for &at in &CHECKPOINTS {
        while done < at {
            call(store, done);
            done += 1;
        }
        let started = Instant::now();
        for _ in 0..TIMED {
            call(store, done);
            done += 1;
        }
        let per_call = started.elapsed().as_micros() as usize / TIMED;
        cells.push(format!("{per_call} µs"));
    }
    let usage = store.usage("key_history", "2026-12-02").unwrap();
    println!(
        "| {name} | {} | {} |",
        cells.join(" | "),
        vendorgate::format_usd(usage.spent + usage.pending + usage.reserved)
    );
}

fn main() {
    println!(
        "| store | {} | counted at the end |",
        CHECKPOINTS
            .iter()
            .map(|c| format!("after {c} calls"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---|---|---|---|---|");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("history.db")).unwrap();
    run("SQLite", &sqlite);
    #[cfg(feature = "postgres")]
    match pg::server() {
        Some(server) => {
            let store =
                vendorgate::PgStore::open(vendorgate::PgOptions::new(server.database())).unwrap();
            run("PostgreSQL", &store);
        }
        None => println!("(no PostgreSQL server: see tests/common/pg.rs)"),
    }
}
