//! The audit journal: rows answered before their commit are stored exactly once, even when
//! the process that wrote them died first.

use std::io::Write;

use vendorgate::audit::AuditRow;
use vendorgate::store::{AuditQuery, Store};
use vendorgate::SqliteStore;

fn row(endpoint: &str) -> AuditRow {
    AuditRow {
        time_ms: 1_800_000_000_000,
        method: "GET".into(),
        endpoint: endpoint.into(),
        decision: "forwarded".into(),
        status: 200,
        ..AuditRow::default()
    }
}

fn journals(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .collect()
}

#[test]
fn a_dead_stores_journal_is_replayed_once_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("j.db");
    let dead = dir.path().join("j.db-audit-00000000deadbeef.jnl");
    {
        let store = SqliteStore::open(&db).unwrap();
        store.audit_soon(row("/v1/a")).unwrap();
        store.audit_soon(row("/v1/b")).unwrap();
        // Reading the audit log stores what is queued first.
        assert_eq!(store.audit(&AuditQuery::default()).unwrap().len(), 2);
        // A copy of the live journal stands for a process that died after these two rows
        // committed and before a third did; its last line is torn.
        let live = journals(dir.path());
        assert_eq!(live.len(), 1, "one journal per open store");
        let text = std::fs::read_to_string(&live[0]).unwrap();
        let first_ref = text
            .lines()
            .next()
            .unwrap()
            .split('"')
            .nth(3)
            .unwrap()
            .to_string();
        let third_ref = first_ref.replace(":1", ":3");
        let third = serde_json::json!({"ref": third_ref, "row": row("/v1/c")});
        let mut f = std::fs::File::create(&dead).unwrap();
        write!(f, "{text}{third}\n{{\"ref\":\"tor").unwrap();
        store.close().unwrap();
    }
    assert_eq!(
        journals(dir.path()),
        vec![dead.clone()],
        "a clean close removes the live journal"
    );

    let store = SqliteStore::open(&db).unwrap();
    let mut endpoints: Vec<String> = store
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.endpoint)
        .collect();
    endpoints.sort();
    assert_eq!(
        endpoints,
        ["/v1/a", "/v1/b", "/v1/c"],
        "missing row replayed, none twice"
    );
    assert!(!dead.exists(), "a replayed journal is removed");
}

#[test]
fn a_live_stores_journal_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("j.db");
    let a = SqliteStore::open(&db).unwrap();
    assert!(
        journals(dir.path()).is_empty(),
        "no file before the first row"
    );
    a.audit_soon(row("/v1/a")).unwrap();
    let a_journal = journals(dir.path());
    assert_eq!(a_journal.len(), 1);
    let b = SqliteStore::open(&db).unwrap();
    assert_eq!(
        journals(dir.path()),
        a_journal,
        "b must not take a's journal"
    );
    // a's row is stored once, by a; b sees it through the shared database.
    assert_eq!(a.audit(&AuditQuery::default()).unwrap().len(), 1);
    assert_eq!(b.audit(&AuditQuery::default()).unwrap().len(), 1);
}
