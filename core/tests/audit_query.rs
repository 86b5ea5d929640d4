//! `/v1/audit` semantics at the store: filters combine, a plain query returns the newest rows
//! (oldest first), a cursor (`after_id`) pages forward.

mod common;

use vendorgate::audit::AuditRow;
use vendorgate::store::{AuditQuery, Finish};

fn row(key: &str, run: &str, time_ms: i64) -> AuditRow {
    AuditRow {
        time_ms,
        key_id: Some(key.into()),
        run_id: Some(run.into()),
        method: "GET".into(),
        endpoint: "/v1/x".into(),
        decision: "forwarded".into(),
        status: 200,
        ..AuditRow::default()
    }
}

fn ids(rows: &[AuditRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

#[test]
fn filters_order_and_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::shared_store(dir.path());
    // ids 1..=10: odd ids key "a" / run "r1", even ids key "b" / run "r2"; time = id * 1000.
    for i in 1..=10i64 {
        let (k, r) = if i % 2 == 1 { ("a", "r1") } else { ("b", "r2") };
        store
            .finish(&Finish {
                audit: Some(row(k, r, i * 1000)),
                ..Finish::default()
            })
            .unwrap();
    }
    let q =
        |key: Option<&str>, run: Option<&str>, since: Option<i64>, after: Option<i64>, limit| {
            ids(&store
                .audit(&AuditQuery {
                    key_id: key.map(Into::into),
                    run_id: run.map(Into::into),
                    since_ms: since,
                    after_id: after,
                    limit,
                })
                .unwrap())
        };
    assert_eq!(
        q(None, None, None, None, 3),
        [8, 9, 10],
        "newest three, oldest first"
    );
    assert_eq!(q(Some("a"), None, None, None, 0), [1, 3, 5, 7, 9]);
    assert_eq!(q(None, Some("r2"), None, None, 2), [8, 10]);
    assert_eq!(q(Some("a"), None, Some(4000), None, 0), [5, 7, 9]);
    assert_eq!(
        q(None, None, None, Some(6), 2),
        [7, 8],
        "a cursor pages forward"
    );
    assert_eq!(
        q(Some("b"), Some("r2"), Some(3000), Some(4), 10),
        [6, 8, 10]
    );
    assert!(
        q(Some("a"), Some("r2"), None, None, 0).is_empty(),
        "filters combine"
    );
}
