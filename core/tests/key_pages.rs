//! `Gateway::list_keys_page` (the dashboard's key list): pages newest first, a cursor that
//! neither repeats nor skips a key when keys are issued between pages, exact search by key
//! id or run id, and the active filter.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use vendorgate::gateway::{KeyCursor, KeyPage};
use vendorgate::{Config, Gateway, KeySpec, SqliteStore, Vendor};

fn gateway(dir: &std::path::Path) -> (Gateway, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(1_800_000_000_000));
    let clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let store = SqliteStore::open(dir.join("k.db")).unwrap();
    let g = Gateway::with_clock(Config::default(), Arc::new(store), clock).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let (g, now) = gateway(dir.path());
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
    let dir = tempfile::tempdir().unwrap();
    let (g, now) = gateway(dir.path());
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
    assert!(KeyCursor::decode("nonsense").is_err());
    // A position a client made up cannot overflow the arithmetic behind the page.
    let (keys, _) = page(
        &g,
        Some(KeyCursor::decode(&format!("{}.0.key_x", usize::MAX)).unwrap()),
        5,
    )
    .await;
    assert!(keys.is_empty());
}
