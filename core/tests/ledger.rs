//! The ledger invariant: for every key and cap window, settled + pending + unknown + reserved
//! never exceeds the cap — under threads, under processes sharing one file, and for any
//! sequence of operations (proptest).

mod common;

use proptest::prelude::*;
use vendorgate::keys::{hash_vault_key, KeyRecord, Policy};
use vendorgate::store::{Finish, ReserveOutcome, ReserveRequest, Settle, Store};
use vendorgate::{CapWindow, MoneyState, SqliteStore, Vendor};

const DAY: &str = "2026-11-27";

fn add_key(store: &dyn Store, id: &str, max: Option<i64>, daily: Option<i64>) {
    let policy = Policy {
        max_usd: max,
        daily_usd_cap: daily,
        ..Policy::new(Vendor::Stripe)
    };
    let rec = KeyRecord::new(id, policy);
    store
        .insert_key(&rec, &hash_vault_key(&format!("vk_{id}")))
        .unwrap();
}

fn reserve_req(
    key: &str,
    estimate: i64,
    max: Option<i64>,
    daily: Option<i64>,
    day: &str,
) -> ReserveRequest {
    ReserveRequest {
        key_id: key.into(),
        day: day.into(),
        now_ms: 0,
        estimate,
        object_id: None,
        idempotency: None,
        max_usd: max,
        daily_usd_cap: daily,
        action: None,
        alert_at: vec![],
        about: None,
    }
}

fn reserved(o: &ReserveOutcome) -> bool {
    matches!(o, ReserveOutcome::Reserved { .. })
}

/// 200 concurrent $100 reservations against a $500 cap, repeated: exactly 5 succeed each time.
#[test]
fn concurrent_reservations_never_pass_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::shared_store(dir.path());
    let trials = 20;
    let mut overshoot_trials = 0;
    for t in 0..trials {
        let key = format!("key_{t}");
        add_key(&*store, &key, Some(500_000_000), None);
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                std::thread::spawn(move || {
                    reserved(
                        &store
                            .reserve(&reserve_req(
                                &key,
                                100_000_000,
                                Some(500_000_000),
                                None,
                                DAY,
                            ))
                            .unwrap(),
                    )
                })
            })
            .collect();
        let ok = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|b| *b)
            .count();
        assert_eq!(ok, 5, "trial {t}");
        let total = store.usage(&key, DAY).unwrap().total;
        if total > 500_000_000 {
            overshoot_trials += 1;
        }
    }
    assert_eq!(overshoot_trials, 0);
}

/// Child half of `two_processes_share_one_cap`: does nothing unless the parent set the env.
#[test]
#[ignore = "run by two_processes_share_one_cap as a child process"]
fn child_reserver() {
    let (Ok(db), Ok(key)) = (std::env::var("VG_CHILD_DB"), std::env::var("VG_CHILD_KEY")) else {
        return;
    };
    let store = common::open_shared(&db);
    let mut ok = 0;
    for _ in 0..100 {
        if reserved(
            &store
                .reserve(&reserve_req(
                    &key,
                    100_000_000,
                    Some(500_000_000),
                    None,
                    DAY,
                ))
                .unwrap(),
        ) {
            ok += 1;
        }
    }
    println!("CHILD_OK={ok}");
}

#[test]
fn two_processes_share_one_cap() {
    let dir = tempfile::tempdir().unwrap();
    let db = if common::on_postgres() {
        common::pg_url()
    } else {
        dir.path().join("shared.db").display().to_string()
    };
    let store = common::open_shared(&db);
    add_key(&*store, "shared", Some(500_000_000), None);
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "child_reserver",
                    "--include-ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("VG_CHILD_DB", &db)
                .env("VG_CHILD_KEY", "shared")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total_ok = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let n: usize = text
            .split("CHILD_OK=")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .expect("child reported")
            .parse()
            .unwrap();
        total_ok += n;
    }
    assert_eq!(
        total_ok, 5,
        "200 reservations from two processes against $500 in $100 steps"
    );
    assert_eq!(store.usage("shared", DAY).unwrap().total, 500_000_000);
}

#[test]
fn daily_cap_resets_at_utc_midnight_but_run_cap_does_not() {
    let store = common::test_store();
    add_key(&*store, "k", Some(300), Some(200));
    let r = |est, day| {
        store
            .reserve(&reserve_req("k", est, Some(300), Some(200), day))
            .unwrap()
    };
    assert!(reserved(&r(150, "2026-11-27")));
    assert!(matches!(
        r(100, "2026-11-27"),
        ReserveOutcome::OverCap {
            window: CapWindow::Daily,
            ..
        }
    ));
    assert!(
        reserved(&r(100, "2026-11-28")),
        "a new UTC day has a fresh daily window"
    );
    assert!(
        matches!(
            r(100, "2026-11-29"),
            ReserveOutcome::OverCap {
                window: CapWindow::Run,
                ..
            }
        ),
        "the run cap spans days"
    );
}

#[test]
fn a_key_with_no_cap_moves_no_money() {
    let store = common::test_store();
    add_key(&*store, "k", None, None);
    assert!(matches!(
        store
            .reserve(&reserve_req("k", 1, None, None, DAY))
            .unwrap(),
        ReserveOutcome::OverCap { cap: 0, .. }
    ));
    assert!(reserved(
        &store
            .reserve(&reserve_req("k", 0, None, None, DAY))
            .unwrap()
    ));
}

#[test]
fn capture_of_a_held_amount_is_not_counted_twice() {
    let store = common::test_store();
    add_key(&*store, "k", Some(500), None);
    let settle = |id, state, cost| {
        store
            .finish(&Finish {
                settle: Some(Settle {
                    spend_id: id,
                    key_id: "k".into(),
                    state,
                    cost,
                    object_id: Some("pi_1".into()),
                    authoritative: true,
                }),
                ..Default::default()
            })
            .unwrap()
    };
    // Authorize 400 (held), then capture it: the capture reserves only the difference.
    let ReserveOutcome::Reserved { spend_id, .. } = store
        .reserve(&reserve_req("k", 400, Some(500), None, DAY))
        .unwrap()
    else {
        panic!()
    };
    settle(spend_id, MoneyState::Committed, 400);
    let mut cap_req = reserve_req("k", 400, Some(500), None, DAY);
    cap_req.object_id = Some("pi_1".into());
    let ReserveOutcome::Reserved {
        spend_id, counted, ..
    } = store.reserve(&cap_req).unwrap()
    else {
        panic!("capture refused")
    };
    assert_eq!(counted, 0);
    settle(spend_id, MoneyState::Moved, 400);
    let u = store.usage("k", DAY).unwrap();
    assert_eq!((u.spent, u.total), (400, 400));
    // Cancelled later (e.g. a pass-through read): everything for the object is released.
    store
        .finish(&Finish {
            reconcile: Some(vendorgate::store::Reconcile {
                key_id: "k".into(),
                object_id: "pi_1".into(),
                state: MoneyState::None,
                cost: 0,
            }),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(store.usage("k", DAY).unwrap().total, 0);
}

#[derive(Debug, Clone)]
enum Op {
    Reserve(i64),
    /// Settle the n-th open reservation with a fraction (0..=100 %) of its estimate.
    Settle(usize, u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..300).prop_map(Op::Reserve),
        (0usize..8, 0u8..=100, 0u8..5).prop_map(|(i, pct, s)| Op::Settle(i, pct, s))
    ]
}

proptest! {
    // Each case is a fresh store: a fresh database on PostgreSQL, so fewer cases there.
    #![proptest_config(ProptestConfig { cases: if common::on_postgres() { 40 } else { 200 }, ..ProptestConfig::default() })]

    /// Whatever the sequence of reservations and settlements (actual ≤ estimate), the counted
    /// total never exceeds the cap, and a definite "nothing moved" is the only release.
    #[test]
    fn ledger_invariant_holds(cap in 0i64..1000, ops in proptest::collection::vec(op(), 1..60)) {
        let store = common::test_store();
        add_key(&*store, "k", Some(cap), None);
        let mut open: Vec<(i64, i64)> = vec![];
        for o in ops {
            match o {
                Op::Reserve(est) => {
                    let before = store.usage("k", DAY).unwrap().total;
                    match store.reserve(&reserve_req("k", est, Some(cap), None, DAY)).unwrap() {
                        ReserveOutcome::Reserved { spend_id, counted, .. } => {
                            prop_assert_eq!(counted, est);
                            prop_assert!(before + est <= cap);
                            open.push((spend_id, est));
                        }
                        ReserveOutcome::OverCap { .. } => prop_assert!(before + est > cap),
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
                Op::Settle(i, pct, s) => {
                    if open.is_empty() { continue; }
                    let (id, est) = open.remove(i % open.len());
                    let state = [MoneyState::Moved, MoneyState::Committed, MoneyState::Pending, MoneyState::Unknown, MoneyState::None][s as usize];
                    let cost = est * i64::from(pct) / 100;
                    let before = store.usage("k", DAY).unwrap().total;
                    store.finish(&Finish { settle: Some(Settle { spend_id: id, key_id: "k".into(), state, cost, object_id: None, authoritative: false }), ..Default::default() }).unwrap();
                    let after = store.usage("k", DAY).unwrap().total;
                    match state {
                        MoneyState::Unknown => prop_assert_eq!(after, before, "unknown keeps the reservation"),
                        MoneyState::None => prop_assert_eq!(after, before - est),
                        _ => prop_assert_eq!(after, before - est + cost),
                    }
                }
            }
            prop_assert!(store.usage("k", DAY).unwrap().total <= cap);
            // The running totals the cap check reads agree with the rows they summarise.
            prop_assert_eq!(store.totals("k", DAY).unwrap().0, store.usage("k", DAY).unwrap().total);
        }
    }

    /// The segment counter: one segment iff the body fits a single message; otherwise the
    /// parts hold at most 153 septets (GSM-7) or 67 code units (UCS-2) and no fewer parts
    /// than the total requires; appending never lowers the count.
    #[test]
    fn segment_counter_is_consistent(body in "[a-z{€😀é ]{0,400}", extra in "[a-z€]{1,5}") {
        use vendorgate::cost::twilio::count_segments;
        let s = count_segments(&body);
        let units: u32 = if s.ucs2 {
            body.chars().map(|c| c.len_utf16() as u32).sum()
        } else {
            body.chars().map(|c| if "{}[]~^|€\\".contains(c) { 2 } else { 1 }).sum()
        };
        let (single, part) = if s.ucs2 { (70, 67) } else { (160, 153) };
        if units <= single {
            prop_assert_eq!(s.count, 1);
        } else {
            prop_assert!(s.count >= units.div_ceil(part));
            prop_assert!(s.count <= units.div_ceil(part - 1));
        }
        let longer = count_segments(&format!("{body}{extra}"));
        prop_assert!(longer.count >= s.count || (s.ucs2 && !longer.ucs2));
    }
}

/// Found by the race trials: a capture on day 2 of an authorization held on day 1 moved the
/// whole amount into day 2's window without a cap check.
#[test]
fn an_object_settled_on_a_later_day_keeps_its_first_day() {
    let store = common::test_store();
    add_key(&*store, "k", Some(10_000), Some(500));
    let ReserveOutcome::Reserved { spend_id, .. } = store
        .reserve(&reserve_req(
            "k",
            400,
            Some(10_000),
            Some(500),
            "2026-11-27",
        ))
        .unwrap()
    else {
        panic!()
    };
    store
        .finish(&Finish {
            settle: Some(Settle {
                spend_id,
                key_id: "k".into(),
                state: MoneyState::Committed,
                cost: 400,
                object_id: Some("pi_1".into()),
                authoritative: true,
            }),
            ..Default::default()
        })
        .unwrap();
    assert!(reserved(
        &store
            .reserve(&reserve_req(
                "k",
                300,
                Some(10_000),
                Some(500),
                "2026-11-28"
            ))
            .unwrap()
    ));
    let mut capture = reserve_req("k", 400, Some(10_000), Some(500), "2026-11-28");
    capture.object_id = Some("pi_1".into());
    let ReserveOutcome::Reserved {
        spend_id, counted, ..
    } = store.reserve(&capture).unwrap()
    else {
        panic!("capture refused")
    };
    assert_eq!(counted, 0);
    store
        .finish(&Finish {
            settle: Some(Settle {
                spend_id,
                key_id: "k".into(),
                state: MoneyState::Moved,
                cost: 400,
                object_id: Some("pi_1".into()),
                authoritative: true,
            }),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(store.usage("k", "2026-11-27").unwrap().today, 400);
    assert_eq!(
        store.usage("k", "2026-11-28").unwrap().today,
        300,
        "day 2 holds only what was reserved on day 2"
    );
    let u = store.usage("k", "2026-11-28").unwrap();
    // The held 400 is now moved (kept on day 1); the 300 charge is still in flight.
    assert_eq!((u.spent, u.reserved, u.total), (400, 300, 700));
}

#[test]
fn upgrading_a_version_1_database_backfills_the_running_totals() {
    if common::on_postgres() {
        eprintln!("SQLite's own migration: not a PostgreSQL test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v1.db");
    {
        let store = SqliteStore::open(&db).unwrap();
        add_key(&store, "k", Some(1_000), None);
        for _ in 0..3 {
            assert!(reserved(
                &store
                    .reserve(&reserve_req("k", 100, Some(1_000), None, DAY))
                    .unwrap()
            ));
        }
    }
    // Turn the file back into a version-1 database (no totals table, no triggers).
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DROP TRIGGER spends_totals_insert; DROP TRIGGER spends_totals_update; DROP TRIGGER spends_totals_delete; DROP TABLE spend_totals; ALTER TABLE audit DROP COLUMN journal_ref; DROP INDEX spends_action; ALTER TABLE spends DROP COLUMN action_fp; DROP TRIGGER spends_budgets_insert; DROP TRIGGER spends_budgets_update; DROP TRIGGER spends_budgets_delete; DROP TABLE budget_totals; DROP TABLE key_budgets; DROP TABLE budgets; DROP TABLE deliveries; DROP TABLE webhooks; DROP TABLE events; ALTER TABLE audit DROP COLUMN spend_id; PRAGMA user_version = 1;").unwrap();
    drop(conn);
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.totals("k", DAY).unwrap(), (300, 300));
    assert!(matches!(
        store
            .reserve(&reserve_req("k", 800, Some(1_000), None, DAY))
            .unwrap(),
        ReserveOutcome::OverCap { spent: 300, .. }
    ));
}
