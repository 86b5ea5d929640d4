//! Budgets shared by many keys, in the store: a reservation is admitted only if the key's
//! caps and every budget's caps hold, in one atomic step, so keys of one budget racing from
//! many threads never exceed it and fill it exactly; settling and releasing move the budget's
//! totals with the key's. Runs against SQLite, and PostgreSQL with
//! `VENDORGATE_TEST_STORE=postgres`.

mod common;

use vendorgate::keys::{hash_vault_key, KeyRecord, Policy};
use vendorgate::store::{Budget, Finish, ReserveOutcome, ReserveRequest, Settle, Store};
use vendorgate::{CapWindow, MoneyState, Vendor};

const DAY: &str = "2026-12-02";
const USD: i64 = 1_000_000;

fn budget(store: &dyn Store, name: &str, max: Option<i64>, daily: Option<i64>) {
    let b = Budget {
        name: name.into(),
        max_usd: max,
        daily_usd_cap: daily,
        alert_at: vec![],
        created_at_ms: 0,
    };
    assert!(store.insert_budget(&b).unwrap(), "budget {name} created");
}

fn key(store: &dyn Store, id: &str, max: i64, budgets: &[&str]) {
    let policy = Policy {
        max_usd: Some(max),
        budgets: budgets.iter().map(|b| b.to_string()).collect(),
        ..Policy::new(Vendor::Stripe)
    };
    store
        .insert_key(
            &KeyRecord::new(id, policy),
            &hash_vault_key(&format!("vk_{id}")),
        )
        .unwrap();
}

fn req(key: &str, estimate: i64, max: i64, day: &str) -> ReserveRequest {
    ReserveRequest {
        key_id: key.into(),
        day: day.into(),
        now_ms: 0,
        estimate,
        object_id: None,
        idempotency: None,
        max_usd: Some(max),
        daily_usd_cap: None,
        action: None,
        alert_at: vec![],
        about: None,
    }
}

fn spend(o: ReserveOutcome) -> i64 {
    match o {
        ReserveOutcome::Reserved { spend_id, .. } => spend_id,
        other => panic!("not reserved: {other:?}"),
    }
}

fn settle(store: &dyn Store, key: &str, spend_id: i64, state: MoneyState, cost: i64) {
    store
        .finish(&Finish {
            settle: Some(Settle {
                spend_id,
                key_id: key.into(),
                state,
                cost,
                object_id: None,
                authoritative: false,
            }),
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn a_budget_caps_all_its_keys_and_names_itself_when_it_refuses() {
    let store = common::test_store();
    budget(&*store, "support", Some(100 * USD), Some(60 * USD));
    budget(&*store, "fleet", Some(1_000 * USD), None);
    assert!(
        !store
            .insert_budget(&Budget {
                name: "support".into(),
                max_usd: Some(USD),
                daily_usd_cap: None,
                alert_at: vec![],
                created_at_ms: 1,
            })
            .unwrap(),
        "a taken name is not replaced"
    );
    key(&*store, "a", 500 * USD, &["support", "fleet"]);
    key(&*store, "b", 500 * USD, &["support"]);
    key(&*store, "loner", 500 * USD, &[]);

    let a1 = spend(store.reserve(&req("a", 40 * USD, 500 * USD, DAY)).unwrap());
    spend(store.reserve(&req("b", 20 * USD, 500 * USD, DAY)).unwrap());
    // $60 of the budget's $60 a day are taken by two keys: a third call is refused by the
    // budget's daily cap, with the budget named, though the key has room.
    assert_eq!(
        store.reserve(&req("b", USD, 500 * USD, DAY)).unwrap(),
        ReserveOutcome::OverCap {
            window: CapWindow::Daily,
            cap: 60 * USD,
            spent: 60 * USD,
            budget: Some("support".into()),
        }
    );
    // A key outside the budget is not touched by it.
    spend(
        store
            .reserve(&req("loner", 300 * USD, 500 * USD, DAY))
            .unwrap(),
    );
    // The first call settles at less than its estimate: the budget gets the difference back.
    settle(&*store, "a", a1, MoneyState::Moved, 30 * USD);
    let b2 = spend(store.reserve(&req("b", 10 * USD, 500 * USD, DAY)).unwrap());
    // Released (nothing moved): the budget gets it all back.
    settle(&*store, "b", b2, MoneyState::None, 0);
    // Another day: the daily cap resets, the run cap ($100) still counts $50.
    let next = "2026-12-03";
    spend(store.reserve(&req("b", 50 * USD, 500 * USD, next)).unwrap());
    assert!(matches!(
        store.reserve(&req("a", USD, 500 * USD, next)).unwrap(),
        ReserveOutcome::OverCap { window: CapWindow::Run, budget: Some(ref b), .. } if b == "support"
    ));

    let st = store.budget_status("support", next).unwrap().unwrap();
    assert_eq!(st.keys, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(
        (
            st.usage.spent,
            st.usage.reserved,
            st.usage.total,
            st.usage.today
        ),
        (30 * USD, 70 * USD, 100 * USD, 50 * USD)
    );
    let fleet = store.budget_status("fleet", next).unwrap().unwrap();
    assert_eq!((fleet.keys.len(), fleet.usage.total), (1, 30 * USD));
    assert!(store.budget_status("nope", DAY).unwrap().is_none());
    let names: Vec<String> = store
        .budgets()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, vec!["fleet".to_string(), "support".to_string()]);
}

/// 8 keys of one $500 budget, each with a $1,000 cap of its own; 200 threads reserve $100 at
/// once, spread over the keys: exactly 5 are admitted, every trial.
#[test]
fn keys_of_one_budget_racing_fill_it_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::shared_store(dir.path());
    let trials = 10;
    for t in 0..trials {
        let name = format!("fleet_{t}");
        budget(&*store, &name, Some(500 * USD), None);
        let keys: Vec<String> = (0..8).map(|k| format!("k{t}_{k}")).collect();
        for k in &keys {
            key(&*store, k, 1_000 * USD, &[&name]);
        }
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let (store, key) = (store.clone(), keys[i % keys.len()].clone());
                std::thread::spawn(move || {
                    store
                        .reserve(&req(&key, 100 * USD, 1_000 * USD, DAY))
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<ReserveOutcome> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        let admitted = outcomes
            .iter()
            .filter(|o| matches!(o, ReserveOutcome::Reserved { .. }))
            .count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, ReserveOutcome::OverCap { budget: Some(b), .. } if *b == name))
            .count();
        println!("BUDGET trial={t} admitted={admitted} refused_by_budget={refused}");
        assert_eq!((admitted, refused), (5, 195), "trial {t}: {outcomes:?}");
        let st = store.budget_status(&name, DAY).unwrap().unwrap();
        assert_eq!(st.usage.total, 500 * USD, "trial {t}");
    }
}

/// Warnings under the same race: 8 keys of a $500 budget with `alert_at` 0.5 and 0.8, each key
/// warning at 0.5 of its own $100 cap; 120 threads reserve $10. Each threshold is crossed by
/// exactly one reservation, so each event is stored once, and it names the amount that
/// crossed it ($250 and $400 for the budget: reservations of $10 land exactly on them).
#[test]
fn thresholds_racing_are_crossed_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::shared_store(dir.path());
    for t in 0..5 {
        let name = format!("warned_{t}");
        store
            .insert_budget(&Budget {
                name: name.clone(),
                max_usd: Some(500 * USD),
                daily_usd_cap: None,
                alert_at: vec![5000, 8000],
                created_at_ms: 0,
            })
            .unwrap();
        let keys: Vec<String> = (0..8).map(|k| format!("w{t}_{k}")).collect();
        for k in &keys {
            key(&*store, k, 100 * USD, &[&name]);
        }
        let handles: Vec<_> = (0..120)
            .map(|i| {
                let (store, key) = (store.clone(), keys[i % keys.len()].clone());
                std::thread::spawn(move || {
                    let mut r = req(&key, 10 * USD, 100 * USD, DAY);
                    r.alert_at = vec![5000];
                    store.reserve(&r).unwrap()
                })
            })
            .collect();
        let crossed: Vec<_> = handles
            .into_iter()
            .flat_map(|h| match h.join().unwrap() {
                ReserveOutcome::Reserved { crossed, .. } => crossed,
                _ => vec![],
            })
            .collect();
        let events: Vec<serde_json::Value> = store
            .events(10_000)
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str::<serde_json::Value>(&e.payload).unwrap()["data"].clone())
            .filter(|d| {
                d["budget"] == name.as_str()
                    || keys
                        .iter()
                        .any(|k| d["key_id"] == k.as_str() && d["budget"].is_null())
            })
            .collect();
        let of_budget: Vec<_> = events
            .iter()
            .filter(|d| d["budget"] == name.as_str())
            .map(|d| {
                (
                    d["threshold"].to_string(),
                    d["counted_usd"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let of_keys = events.iter().filter(|d| d["budget"].is_null()).count();
        assert!(of_keys > 0, "trial {t}: some key reached its own 50 %");
        println!(
            "THRESHOLDS trial={t} crossings={} budget_events={of_budget:?} key_events={of_keys}",
            crossed.len()
        );
        assert_eq!(
            crossed.len(),
            events.len(),
            "trial {t}: one event per crossing"
        );
        let mut of_budget = of_budget;
        of_budget.sort();
        assert_eq!(
            of_budget,
            [
                ("0.5".to_string(), "250.00".to_string()),
                ("0.8".to_string(), "400.00".to_string())
            ],
            "trial {t}"
        );
        // The budget admits 50 of the 120; a key that got 5 or more crossed its own 50 %.
        let st = store.budget_status(&name, DAY).unwrap().unwrap();
        assert_eq!(st.usage.total, 500 * USD, "trial {t}");
        // A key warned exactly when it got to its own 50 %, once.
        for k in &keys {
            let warned = events
                .iter()
                .filter(|d| d["budget"].is_null() && d["key_id"] == k.as_str())
                .count();
            let reached = store.usage(k, DAY).unwrap().total >= 50 * USD;
            assert_eq!(warned, usize::from(reached), "trial {t} key {k}");
        }
    }
}
