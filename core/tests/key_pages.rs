//! `Gateway::list_keys_page` (the dashboard's key list): pages newest first, a cursor that
//! neither repeats nor skips a key when keys are issued between pages, exact search by key
//! id or run id, and the active filter.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use vendorgate::gateway::{KeyCursor, KeyPage};
use vendorgate::{Config, Gateway, KeySpec, Vendor};

/// A gateway on a fresh store (SQLite, or PostgreSQL with `VENDORGATE_TEST_STORE=postgres`)
/// with a clock the test moves.
fn gateway() -> (Gateway, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(1_800_000_000_000));
    let clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let g = Gateway::with_clock(Config::default(), common::test_store(), clock).unwrap();
    (g, now)
}

async fn issue(g: &Gateway, run: Option<&str>) -> String {
    let mut spec = KeySpec::new(Vendor::Stripe);
    spec.allowed_endpoints = vec!["/v1/charges".into()];
    spec.run_id = run.map(Into::into);
    g.issue_key(spec).await.unwrap().record.key_id
}

async fn page(
    g: &Gateway,
    after: Option<KeyCursor>,
    limit: usize,
) -> (Vec<String>, Option<KeyCursor>) {
    let (keys, next) = g
        .list_keys_page(KeyPage {
            after,
            limit,
            ..Default::default()
        })
        .await
        .unwrap();
    (keys.into_iter().map(|k| k.record.key_id).collect(), next)
}

#[tokio::test]
async fn pages_cover_every_key_once_even_when_keys_arrive_between_pages() {
    let (g, now) = gateway();
    let mut issued = Vec::new();
    // Several keys per millisecond: ties are ordered by key id.
    for i in 0..23 {
        if i % 3 == 0 {
            now.fetch_add(1, Ordering::SeqCst);
        }
        issued.push(issue(&g, None).await);
    }
    let (first, mut cursor) = page(&g, None, 5).await;
    assert_eq!(first.len(), 5);
    let mut seen = first;
    // Newer keys land before the cursor: the pages after it are unchanged.
    now.fetch_add(1, Ordering::SeqCst);
    let late = issue(&g, None).await;
    while let Some(c) = cursor {
        let (keys, next) = page(&g, Some(KeyCursor::decode(&c.encode()).unwrap()), 5).await;
        assert!(!keys.is_empty());
        seen.extend(keys);
        cursor = next;
    }
    assert!(!seen.contains(&late));
    let mut want = issued.clone();
    want.sort();
    let mut got = seen.clone();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), seen.len(), "a key was listed twice");
    assert_eq!(got, want, "a key was skipped");
    // Newest first.
    assert_eq!(page(&g, None, 1).await.0, vec![late]);
}

#[tokio::test]
async fn search_is_exact_on_key_id_or_run_id_and_respects_active() {
    let (g, now) = gateway();
    let a = issue(&g, Some("run-a")).await;
    now.fetch_add(1, Ordering::SeqCst);
    let b = issue(&g, Some("run-a")).await;
    let c = issue(&g, Some("run-c")).await;
    g.revoke(&b).await.unwrap();
    let search = |q: &str, active_only| {
        let g = g.clone();
        let q = q.to_string();
        async move {
            g.list_keys_page(KeyPage {
                search: Some(q),
                active_only,
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|k| k.record.key_id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("run-a", false).await, vec![b.clone(), a.clone()]);
    assert_eq!(search("run-a", true).await, vec![a.clone()]);
    assert_eq!(search(&c, false).await, vec![c.clone()]);
    assert_eq!(search(&b, true).await, Vec::<String>::new());
    assert_eq!(search("run", false).await, Vec::<String>::new()); // not a prefix search
                                                                  // A cursor a client made up is only a position in the order: before every key, after
                                                                  // every key.
    let (keys, _) = page(&g, Some(KeyCursor::decode("0.key_x").unwrap()), 5).await;
    assert!(keys.is_empty());
    let (keys, _) = page(
        &g,
        Some(KeyCursor::decode(&format!("{}.key_x", i64::MAX)).unwrap()),
        5,
    )
    .await;
    assert_eq!(keys.len(), 3);
}

#[test]
fn a_cursor_is_parsed_safely() {
    let c = KeyCursor {
        created_at_ms: 1_800_000_000_123,
        key_id: "key_0123456789abcdef01234567".into(),
    };
    assert_eq!(KeyCursor::decode(&c.encode()).unwrap(), c);
    let negative = KeyCursor {
        created_at_ms: -5,
        key_id: "key_a".into(),
    };
    assert_eq!(KeyCursor::decode(&negative.encode()).unwrap(), negative);
    let long = format!("1.{}", "k".repeat(129));
    for bad in [
        "",
        "nonsense",
        ".key_a",
        "1.",
        "x.key_a",
        "99999999999999999999.key_a",
        "1.key a",
        "1.key_a\n",
        "1.ключ",
        // The old `position.created_at_ms.key_id` form.
        "20.1800000000000.key_a",
        long.as_str(),
    ] {
        let err = KeyCursor::decode(bad).unwrap_err().to_string();
        assert!(err.contains("cursor"), "{bad:?}: {err}");
    }
}

/// Where `id` sorts in the list: newest first, ties by key id.
async fn order_of(g: &Gateway, id: &str) -> (std::cmp::Reverse<i64>, String) {
    let k = g.key_status(id).await.unwrap().record;
    (std::cmp::Reverse(k.created_at_ms), k.key_id)
}

#[tokio::test]
async fn ties_on_created_at_are_paged_by_key_id_while_keys_are_issued_between_pages() {
    let (g, now) = gateway();
    // Every key in the same millisecond: only the key id orders them.
    let mut issued = Vec::new();
    for _ in 0..17 {
        issued.push(issue(&g, None).await);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = None;
    let mut round = 0;
    loop {
        let (keys, next) = page(&g, cursor, 4).await;
        assert!(!keys.is_empty(), "an empty page before the end");
        seen.extend(keys);
        // Between pages: keys in the same millisecond (their random ids land before or
        // after the cursor) and, every other page, a newer one.
        issue(&g, None).await;
        issue(&g, None).await;
        if round % 2 == 1 {
            now.fetch_add(1, Ordering::SeqCst);
            issue(&g, None).await;
        }
        round += 1;
        match next {
            Some(c) => cursor = Some(KeyCursor::decode(&c.encode()).unwrap()),
            None => break,
        }
    }
    // Strictly in the list's order, so nothing repeated.
    let mut orders = Vec::new();
    for id in &seen {
        orders.push(order_of(&g, id).await);
    }
    assert!(
        orders.windows(2).all(|w| w[0] < w[1]),
        "pages out of order or a key repeated: {seen:?}"
    );
    for id in &issued {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} skipped or repeated"
        );
    }
}

#[tokio::test]
async fn pages_follow_the_run_and_active_filters_and_a_run_search() {
    let (g, now) = gateway();
    let mut run = Vec::new();
    for i in 0..12 {
        if i % 5 == 0 {
            now.fetch_add(1, Ordering::SeqCst);
        }
        run.push(issue(&g, Some("run-p")).await);
        issue(&g, Some("run-other")).await;
        issue(&g, None).await;
    }
    let mut revoked = Vec::new();
    for id in run.iter().step_by(3) {
        g.revoke(id).await.unwrap();
        revoked.push(id.clone());
    }
    let all = |p: KeyPage| {
        let g = g.clone();
        async move {
            let mut out = Vec::new();
            let mut after = None;
            loop {
                let (keys, next) = g
                    .list_keys_page(KeyPage {
                        after,
                        limit: 5,
                        ..p.clone()
                    })
                    .await
                    .unwrap();
                out.extend(keys.into_iter().map(|k| k.record.key_id));
                match next {
                    Some(c) => after = Some(c),
                    None => break out,
                }
            }
        }
    };
    let mut want: Vec<(std::cmp::Reverse<i64>, String)> = Vec::new();
    for id in &run {
        want.push(order_of(&g, id).await);
    }
    want.sort();
    let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();
    let active: Vec<String> = want
        .iter()
        .filter(|id| !revoked.contains(id))
        .cloned()
        .collect();
    let by_run = KeyPage {
        run_id: Some("run-p".into()),
        ..Default::default()
    };
    assert_eq!(all(by_run.clone()).await, want);
    assert_eq!(
        all(KeyPage {
            active_only: true,
            ..by_run
        })
        .await,
        active
    );
    let search = KeyPage {
        search: Some("run-p".into()),
        ..Default::default()
    };
    assert_eq!(all(search.clone()).await, want);
    assert_eq!(
        all(KeyPage {
            active_only: true,
            ..search.clone()
        })
        .await,
        active
    );
    // A search within another run finds nothing.
    assert!(all(KeyPage {
        run_id: Some("run-other".into()),
        ..search
    })
    .await
    .is_empty());
    // Every key once, across the three kinds.
    let everything = all(KeyPage::default()).await;
    assert_eq!(everything.len(), 36);
    let mut dedup = everything.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 36);
}
