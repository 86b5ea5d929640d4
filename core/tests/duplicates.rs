//! The duplicate-action guard in the store: the check and the reservation are one atomic
//! step, so of many identical calls racing exactly one is reserved; a call that moved
//! nothing, a replay with the same Idempotency-Key and a call after the window are not
//! duplicates. Runs against SQLite, and PostgreSQL with `VENDORGATE_TEST_STORE=postgres`.

mod common;

use vendorgate::keys::{hash_vault_key, KeyRecord, Policy};
use vendorgate::store::{ActionGuard, Finish, ReserveOutcome, ReserveRequest, Settle, Store};
use vendorgate::{MoneyState, Vendor};

const DAY: &str = "2026-12-02";
const CAP: i64 = 1_000_000_000_000;
const WINDOW_MS: i64 = 600_000;

fn add_key(store: &dyn Store, id: &str) {
    let policy = Policy {
        max_usd: Some(CAP),
        ..Policy::new(Vendor::Stripe)
    };
    let rec = KeyRecord::new(id, policy);
    store
        .insert_key(&rec, &hash_vault_key(&format!("vk_{id}")))
        .unwrap();
}

fn req(key: &str, action: u8, now_ms: i64, idem: Option<&str>) -> ReserveRequest {
    ReserveRequest {
        key_id: key.into(),
        day: DAY.into(),
        now_ms,
        estimate: 5_000_000,
        object_id: None,
        idempotency: idem.map(|k| (k.to_string(), [action; 32])),
        max_usd: Some(CAP),
        daily_usd_cap: None,
        action: Some(ActionGuard {
            fingerprint: [action; 32],
            since_ms: now_ms - WINDOW_MS,
        }),
        alert_at: vec![],
        about: None,
    }
}

fn settle(store: &dyn Store, key: &str, spend_id: i64, state: MoneyState) {
    store
        .finish(&Finish {
            settle: Some(Settle {
                spend_id,
                key_id: key.into(),
                state,
                cost: if state == MoneyState::None {
                    0
                } else {
                    5_000_000
                },
                object_id: None,
                authoritative: false,
            }),
            ..Default::default()
        })
        .unwrap();
}

fn spend_of(o: &ReserveOutcome) -> i64 {
    match o {
        ReserveOutcome::Reserved { spend_id, .. } => *spend_id,
        other => panic!("not reserved: {other:?}"),
    }
}

#[test]
fn a_repeat_within_the_window_names_the_first_call() {
    let store = common::test_store();
    add_key(&*store, "k");
    let first = spend_of(&store.reserve(&req("k", 1, 1_000, None)).unwrap());
    settle(&*store, "k", first, MoneyState::Moved);
    // The same action a minute later: refused, naming the first call and when it was made.
    assert_eq!(
        store.reserve(&req("k", 1, 61_000, None)).unwrap(),
        ReserveOutcome::Duplicate {
            spend_id: first,
            at_ms: 1_000
        }
    );
    // Another action is not a duplicate.
    spend_of(&store.reserve(&req("k", 2, 61_000, None)).unwrap());
    // After the window the same action may run again.
    spend_of(
        &store
            .reserve(&req("k", 1, 1_000 + WINDOW_MS + 1, None))
            .unwrap(),
    );
    // Another key's identical action is its own.
    add_key(&*store, "other");
    spend_of(&store.reserve(&req("other", 1, 61_000, None)).unwrap());
    // Only the reservations that were made count against the key.
    let usage = store.usage("k", DAY).unwrap();
    assert_eq!(usage.spent + usage.reserved, 15_000_000);
}

#[test]
fn a_call_in_flight_counts_and_one_that_moved_nothing_does_not() {
    let store = common::test_store();
    add_key(&*store, "k");
    let first = spend_of(&store.reserve(&req("k", 7, 1_000, None)).unwrap());
    // Still reserved (the vendor has not answered): the repeat is refused.
    assert!(matches!(
        store.reserve(&req("k", 7, 2_000, None)).unwrap(),
        ReserveOutcome::Duplicate { spend_id, .. } if spend_id == first
    ));
    // The vendor declined it: nothing moved, so trying again is not a duplicate.
    settle(&*store, "k", first, MoneyState::None);
    let second = spend_of(&store.reserve(&req("k", 7, 3_000, None)).unwrap());
    assert_ne!(second, first);
    // An answer that left the outcome unknown still counts: money may have moved.
    settle(&*store, "k", second, MoneyState::Unknown);
    assert!(matches!(
        store.reserve(&req("k", 7, 4_000, None)).unwrap(),
        ReserveOutcome::Duplicate { spend_id, .. } if spend_id == second
    ));
}

#[test]
fn a_replay_with_the_same_idempotency_key_is_not_a_duplicate() {
    let store = common::test_store();
    add_key(&*store, "k");
    let first = spend_of(&store.reserve(&req("k", 3, 1_000, Some("idem-1"))).unwrap());
    settle(&*store, "k", first, MoneyState::Moved);
    assert_eq!(
        store.reserve(&req("k", 3, 2_000, Some("idem-1"))).unwrap(),
        ReserveOutcome::Replay { spend_id: first }
    );
    // A fresh Idempotency-Key (what the official SDKs send on every call) is a new call: a
    // duplicate of the first.
    assert!(matches!(
        store.reserve(&req("k", 3, 2_000, Some("idem-2"))).unwrap(),
        ReserveOutcome::Duplicate { spend_id, .. } if spend_id == first
    ));
}

/// 32 identical calls at once, repeated: exactly one is reserved each time, the others are
/// refused as duplicates of it.
#[test]
fn identical_calls_racing_reserve_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::shared_store(dir.path());
    let trials = 10;
    for t in 0..trials {
        let key = format!("race_{t}");
        add_key(&*store, &key);
        let handles: Vec<_> = (0..32)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                std::thread::spawn(move || store.reserve(&req(&key, 9, 5_000, None)).unwrap())
            })
            .collect();
        let outcomes: Vec<ReserveOutcome> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        let reserved: Vec<i64> = outcomes
            .iter()
            .filter_map(|o| match o {
                ReserveOutcome::Reserved { spend_id, .. } => Some(*spend_id),
                _ => None,
            })
            .collect();
        assert_eq!(reserved.len(), 1, "trial {t}: {outcomes:?}");
        for o in &outcomes {
            match o {
                ReserveOutcome::Reserved { .. } => {}
                ReserveOutcome::Duplicate { spend_id, .. } => assert_eq!(*spend_id, reserved[0]),
                other => panic!("trial {t}: {other:?}"),
            }
        }
        let usage = store.usage(&key, DAY).unwrap();
        assert_eq!(usage.reserved, 5_000_000, "trial {t}");
    }
}
