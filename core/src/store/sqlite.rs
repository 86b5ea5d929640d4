//! SQLite store: WAL, versioned schema, one `BEGIN IMMEDIATE` transaction per operation so
//! several processes sharing the file keep the ledger invariant.

use std::path::Path;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::journal::{self, Journal};
use super::outbox;
use super::rows::{exec, insert_audit, one};
use super::writer::Writer;
use super::{
    AuditQuery, Budget, BudgetStatus, Finish, KeyFilter, Queued, ReserveOutcome, ReserveRequest,
    Store, Usage,
};
use super::{Delivery, DeliveryOutcome, StoredEvent, Webhook};
use crate::alerts::{self, Crossing};
use crate::audit::AuditRow;
use crate::error::StoreError;
use crate::events::NewEvent;
use crate::keys::{KeyHash, KeyRecord, Policy};
use crate::ledger::{self, Caps, MoneyState, Remembered, Retry};

/// WAL size (pages) past which the checkpoint thread rewinds it (about 16 MiB).
const WAL_RESTART_FRAMES: i64 = 4_000;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE keys (
    key_id        TEXT PRIMARY KEY,
    key_hash      BLOB NOT NULL UNIQUE,
    vendor        TEXT NOT NULL,
    policy        TEXT NOT NULL,
    run_id        TEXT,
    metadata      TEXT,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
CREATE INDEX keys_run ON keys(run_id);
CREATE TABLE spends (
    spend_id      INTEGER PRIMARY KEY,
    key_id        TEXT NOT NULL,
    day           TEXT NOT NULL,
    state         TEXT NOT NULL,
    estimate      INTEGER NOT NULL,
    amount        INTEGER NOT NULL,
    object_id     TEXT,
    idem_key      TEXT,
    idem_fp       BLOB,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX spends_idem ON spends(key_id, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX spends_key ON spends(key_id, state, day);
CREATE INDEX spends_object ON spends(key_id, object_id) WHERE object_id IS NOT NULL;
CREATE TABLE objects (
    key_id        TEXT NOT NULL,
    object_id     TEXT NOT NULL,
    micros        INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (key_id, object_id)
);
CREATE TABLE audit (
    id                  INTEGER PRIMARY KEY,
    time_ms             INTEGER NOT NULL,
    key_id              TEXT,
    run_id              TEXT,
    vendor              TEXT,
    method              TEXT NOT NULL,
    endpoint            TEXT NOT NULL,
    decision            TEXT NOT NULL,
    status              INTEGER NOT NULL,
    upstream_status     INTEGER,
    estimate            INTEGER NOT NULL,
    cost                INTEGER NOT NULL,
    money_state         TEXT,
    latency_us          INTEGER NOT NULL,
    upstream_latency_us INTEGER,
    idempotency_key     TEXT,
    vendor_request_id   TEXT,
    message             TEXT
);
CREATE INDEX audit_key ON audit(key_id, id);
CREATE INDEX audit_run ON audit(run_id, id);
CREATE INDEX audit_time ON audit(time_ms);
"#,
    // Running totals per key and UTC day, kept by triggers in the same transaction as every
    // change to `spends`, so a cap check reads one row instead of summing a key's history.
    r#"
CREATE TABLE spend_totals (
    key_id TEXT NOT NULL,
    day    TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (key_id, day)
) WITHOUT ROWID;
INSERT INTO spend_totals (key_id, day, amount)
    SELECT key_id, day, SUM(amount) FROM spends WHERE state NOT IN ('none', 'superseded') GROUP BY key_id, day;
CREATE TRIGGER spends_totals_insert AFTER INSERT ON spends WHEN NEW.state NOT IN ('none', 'superseded') BEGIN
    INSERT INTO spend_totals (key_id, day, amount) VALUES (NEW.key_id, NEW.day, NEW.amount)
        ON CONFLICT (key_id, day) DO UPDATE SET amount = amount + excluded.amount;
END;
CREATE TRIGGER spends_totals_update AFTER UPDATE OF state, amount, day, key_id ON spends BEGIN
    UPDATE spend_totals SET amount = amount - OLD.amount
        WHERE key_id = OLD.key_id AND day = OLD.day AND OLD.state NOT IN ('none', 'superseded');
    INSERT INTO spend_totals (key_id, day, amount)
        SELECT NEW.key_id, NEW.day, NEW.amount WHERE NEW.state NOT IN ('none', 'superseded')
        ON CONFLICT (key_id, day) DO UPDATE SET amount = amount + excluded.amount;
END;
CREATE TRIGGER spends_totals_delete AFTER DELETE ON spends WHEN OLD.state NOT IN ('none', 'superseded') BEGIN
    UPDATE spend_totals SET amount = amount - OLD.amount WHERE key_id = OLD.key_id AND day = OLD.day;
END;
"#,
    // 3: the time index cost a B-tree insert (and a WAL frame) per audit row and served no
    // query: `/v1/audit` walks ids, and `since` is a filter on that walk.
    r#"
DROP INDEX IF EXISTS audit_time;
"#,
    // 4: rows that went through the audit journal carry their journal reference, so a
    // replay after a crash inserts only the rows that are missing.
    r#"
ALTER TABLE audit ADD COLUMN journal_ref TEXT;
"#,
    // 5: the key list (newest first, optionally one run's keys) walks an index in its order
    // and stops at the page instead of scanning and sorting every key. `keys_run_created`
    // serves the run filter in that order; `keys_run` is its prefix, so it goes.
    r#"
CREATE INDEX IF NOT EXISTS keys_created ON keys(created_at_ms DESC, key_id);
CREATE INDEX IF NOT EXISTS keys_run_created ON keys(run_id, created_at_ms DESC, key_id);
DROP INDEX IF EXISTS keys_run;
"#,
    // 6: a settlement rewrites only an object's counted rows, but the object index held every
    // row of it, so each call on a long-lived object (updates of one PaymentIntent, status
    // reads of one call) read all its earlier calls. Rows leave this index when superseded.
    r#"
DROP INDEX IF EXISTS spends_object;
CREATE INDEX spends_object ON spends(key_id, object_id) WHERE object_id IS NOT NULL AND state NOT IN ('none', 'superseded');
"#,
    // 7: the duplicate-action guard: each money call's action fingerprint, found by key.
    r#"
ALTER TABLE spends ADD COLUMN action_fp BLOB;
CREATE INDEX spends_action ON spends(key_id, action_fp, created_at_ms) WHERE action_fp IS NOT NULL;
"#,
    // 8: budgets shared by many keys. A key joins its budgets at issue (`key_budgets`);
    // `budget_totals` is kept by the same triggers' rule as `spend_totals`, for every budget
    // of the spend's key, so a reservation checks a budget's caps on two reads.
    r#"
CREATE TABLE budgets (
    name          TEXT PRIMARY KEY,
    max_usd       INTEGER,
    daily_usd_cap INTEGER,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE key_budgets (
    key_id TEXT NOT NULL REFERENCES keys(key_id),
    budget TEXT NOT NULL REFERENCES budgets(name),
    PRIMARY KEY (key_id, budget)
);
CREATE INDEX key_budgets_budget ON key_budgets(budget, key_id);
CREATE TABLE budget_totals (
    budget TEXT NOT NULL,
    day    TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (budget, day)
);
CREATE TRIGGER spends_budgets_insert AFTER INSERT ON spends WHEN NEW.state NOT IN ('none', 'superseded') BEGIN
    INSERT INTO budget_totals (budget, day, amount)
        SELECT budget, NEW.day, NEW.amount FROM key_budgets WHERE key_id = NEW.key_id
        ON CONFLICT (budget, day) DO UPDATE SET amount = amount + excluded.amount;
END;
CREATE TRIGGER spends_budgets_update AFTER UPDATE OF state, amount, day, key_id ON spends BEGIN
    UPDATE budget_totals SET amount = amount - OLD.amount
        WHERE OLD.state NOT IN ('none', 'superseded') AND day = OLD.day
          AND budget IN (SELECT budget FROM key_budgets WHERE key_id = OLD.key_id);
    INSERT INTO budget_totals (budget, day, amount)
        SELECT budget, NEW.day, NEW.amount FROM key_budgets
        WHERE key_id = NEW.key_id AND NEW.state NOT IN ('none', 'superseded')
        ON CONFLICT (budget, day) DO UPDATE SET amount = amount + excluded.amount;
END;
CREATE TRIGGER spends_budgets_delete AFTER DELETE ON spends WHEN OLD.state NOT IN ('none', 'superseded') BEGIN
    UPDATE budget_totals SET amount = amount - OLD.amount
        WHERE day = OLD.day AND budget IN (SELECT budget FROM key_budgets WHERE key_id = OLD.key_id);
END;
"#,
    // 9: early warnings and webhooks. An event is stored once per dedupe key (a threshold's
    // key names its cap window), with one delivery row per webhook subscribed when it was
    // stored; the delivery worker claims due rows by moving `next_at_ms` past a lease.
    r#"
ALTER TABLE budgets ADD COLUMN alert_at TEXT;
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    type    TEXT NOT NULL,
    dedupe  TEXT UNIQUE,
    time_ms INTEGER NOT NULL,
    key_id  TEXT,
    payload TEXT NOT NULL
);
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    secret        TEXT NOT NULL,
    events        TEXT NOT NULL,
    format        TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    disabled      TEXT
);
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    event_seq     INTEGER NOT NULL REFERENCES events(seq),
    webhook_id    TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at_ms    INTEGER NOT NULL,
    last_status   INTEGER,
    last_error    TEXT,
    updated_at_ms INTEGER NOT NULL,
    UNIQUE (event_seq, webhook_id)
);
CREATE INDEX deliveries_due ON deliveries(next_at_ms) WHERE state = 'pending';
"#,
    // 10: the audit row names the ledger row of its call's money (no index: it is read with
    // the row, not searched).
    "ALTER TABLE audit ADD COLUMN spend_id INTEGER;",
];

/// States whose amounts count against caps.
const COUNTED: &str = "state NOT IN ('none', 'superseded')";

/// How long an operation waits for another process's lock by default.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections per store: reads (key lookups, usage) run beside the writer (WAL).
const READERS: usize = 4;

pub struct SqliteStore {
    /// The writer connection, used by the writer thread (and, for an in-memory database, by
    /// reads too, since such a database is private to one connection).
    conn: Arc<Mutex<Connection>>,
    /// The writer thread: every write goes through it, batched into shared transactions.
    writer: Writer,
    /// Read-only connections; empty for an in-memory database (which is private to `conn`).
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Tells the checkpoint thread to stop when the store is dropped.
    stop: Arc<AtomicBool>,
    /// Where audit rows of calls that moved no money go first (file databases only).
    journal: Option<Arc<Journal>>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl SqliteStore {
    /// Open (creating if needed) a database file and bring its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_busy_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// Like [`SqliteStore::open`], with how long an operation waits for another process's
    /// lock before failing (and the request being refused with 503).
    pub fn open_with_busy_timeout(
        path: impl AsRef<Path>,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                return Err(StoreError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("directory {} does not exist", dir.display()),
                )));
            }
        }
        let mut store = Self::setup(Connection::open(path)?, busy_timeout)?;
        journal::recover(path, &store.writer)?;
        match Journal::create(path) {
            Ok(j) => {
                let j = Arc::new(j);
                let on_exit = j.clone();
                store.writer.set_on_exit(move || on_exit.close());
                store.journal = Some(j);
            }
            // Still correct without it: every audit row is then committed before the answer.
            Err(e) => {
                tracing::warn!(error = %e, "no audit journal; audit rows are written synchronously")
            }
        }
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            r.busy_timeout(busy_timeout)?;
            store.readers.push(Mutex::new(r));
        }
        // Checkpoints (copying the WAL into the database file, with an fsync) run on their
        // own thread, so a commit never waits for one. The writer's own auto-checkpoint is
        // off: under steady load it fired inside commits (p99 45 ms). PASSIVE never blocks
        // anyone but cannot make the WAL start over while writes keep coming, so once the
        // WAL passes WAL_RESTART_FRAMES and is fully copied, a RESTART waits for a gap
        // between batches and rewinds it (the WAL stays bounded).
        store
            .conn
            .lock()
            .pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Connection::open(path)?;
        checkpointer.busy_timeout(busy_timeout)?;
        let stop = store.stop.clone();
        std::thread::Builder::new()
            .name("vendorgate-sqlite-checkpoint".into())
            .spawn(move || {
                let checkpoint = |mode: &str| {
                    checkpointer.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    })
                };
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let result = checkpoint("PASSIVE").and_then(|(log, done)| {
                        if log >= WAL_RESTART_FRAMES && done >= log {
                            checkpoint("RESTART").map(|_| ())
                        } else {
                            Ok(())
                        }
                    });
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                    }
                }
            })
            .map_err(StoreError::Io)?;
        Ok(store)
    }

    /// A read connection: the first free one, else wait on one in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        if self.readers.is_empty() {
            return self.conn.lock();
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            if let Some(g) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return g;
            }
        }
        self.readers[start % self.readers.len()].lock()
    }

    /// Whether a write with no other write queued commits on the calling thread (default:
    /// yes, the embedded case). A server should turn it off; see `docs/BENCHMARKS.md`.
    pub fn set_lone_writes_inline(&self, on: bool) {
        self.writer.set_inline(on);
    }

    /// Queue a journaled row for the writer; on failure it goes back to the journal's retry
    /// list.
    fn queue_journaled(&self, journal: &Arc<Journal>, p: journal::Pending) {
        let (j, done) = (journal.clone(), p.clone());
        self.writer.submit_detached(
            move |c| Ok(insert_audit(c, &p.0, Some(&p.1))?),
            move |r| j.done(done, r),
        );
    }

    /// A private in-memory database (tests, throwaway demos).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?, DEFAULT_BUSY_TIMEOUT)
    }

    fn setup(mut conn: Connection, busy_timeout: Duration) -> Result<Self, StoreError> {
        conn.busy_timeout(busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(64);
        // WAL + NORMAL: a commit survives a killed process (the WAL is written before the
        // commit returns); only an OS crash can lose the newest transactions.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported,
            });
        }
        for m in &MIGRATIONS[version as usize..] {
            tx.execute_batch(m)?;
        }
        tx.pragma_update(None, "user_version", supported)?;
        tx.commit()?;
        let conn = Arc::new(Mutex::new(conn));
        let writer = Writer::start(conn.clone(), busy_timeout)?;
        Ok(SqliteStore {
            conn,
            writer,
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
            stop: Arc::new(AtomicBool::new(false)),
            journal: None,
        })
    }
}

/// The key list's query: only the filters given (as in `audit`), so SQLite walks
/// `keys_created` or `keys_run_created` in the list's order (`created_at_ms DESC, key_id`)
/// from the cursor and stops at the limit; `?1 IS NULL OR …` forms forced a scan and sort of
/// every key (202 ms for a page at 100k keys).
fn list_keys_sql(filter: &KeyFilter) -> (String, Vec<rusqlite::types::Value>) {
    let mut clauses = Vec::new();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(run_id) = &filter.run_id {
        values.push(run_id.clone().into());
        clauses.push(format!("run_id = ?{}", values.len()));
    }
    if let Some(now) = filter.active_at_ms {
        values.push(now.into());
        clauses.push(format!(
            "revoked_at_ms IS NULL AND expires_at_ms > ?{}",
            values.len()
        ));
    }
    if let Some((created_at_ms, key_id)) = &filter.after {
        // Strictly after the cursor in the list's order. The leading `<=` is implied by the
        // rest; it is there so the index walk starts at the cursor.
        let n = values.len();
        clauses.push(format!(
            "created_at_ms <= ?{a} AND (created_at_ms < ?{a} OR (created_at_ms = ?{a} AND key_id > ?{b}))",
            a = n + 1,
            b = n + 2
        ));
        values.push((*created_at_ms).into());
        values.push(key_id.clone().into());
    }
    let limit = if filter.limit == 0 {
        1000
    } else {
        filter.limit
    };
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let n = values.len();
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (
        format!(
            "SELECT {KEY_COLS} FROM keys {filter} ORDER BY created_at_ms DESC, key_id LIMIT ?{n}"
        ),
        values,
    )
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

pub(super) type KeyRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

pub(super) fn build_key(row: KeyRow) -> Result<KeyRecord, StoreError> {
    let (key_id, policy, run_id, metadata, created_at_ms, expires_at_ms, revoked_at_ms) = row;
    let policy: Policy = serde_json::from_str(&policy)
        .map_err(|e| StoreError::Corrupt(format!("policy of {key_id}: {e}")))?;
    let metadata = match metadata {
        Some(m) => serde_json::from_str(&m)
            .map_err(|e| StoreError::Corrupt(format!("metadata of {key_id}: {e}")))?,
        None => serde_json::Value::Null,
    };
    Ok(KeyRecord {
        key_id,
        policy,
        run_id,
        metadata,
        created_at_ms,
        expires_at_ms,
        revoked_at_ms,
    })
}

const KEY_COLS: &str =
    "key_id, policy, run_id, metadata, created_at_ms, expires_at_ms, revoked_at_ms";

/// Counted µUSD for a key over its life and on `day`, from the running totals.
fn counted_totals(conn: &Connection, key_id: &str, day: &str) -> rusqlite::Result<(i64, i64)> {
    conn.prepare_cached("SELECT COALESCE(SUM(amount), 0), COALESCE(SUM(CASE WHEN day = ?2 THEN amount END), 0) FROM spend_totals WHERE key_id = ?1")?
        .query_row(params![key_id, day], |r| Ok((r.get(0)?, r.get(1)?)))
}

/// Make the rows of one vendor object add up to what the vendor now says about it; the rule
/// is [`ledger::object_position`]. Rows still in flight are left alone.
fn set_object_position(
    tx: &Connection,
    key_id: &str,
    object_id: &str,
    own: Option<i64>,
    state: MoneyState,
    cost: i64,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT spend_id, amount, state FROM spends WHERE key_id = ?1 AND object_id = ?2 AND spend_id != ?3 AND state != 'reserved' AND {COUNTED} ORDER BY spend_id DESC"
    ))?;
    let others: Vec<ledger::RowPosition> = stmt
        .query_map(params![key_id, object_id, own.unwrap_or(-1)], |r| {
            let state: String = r.get(2)?;
            Ok(ledger::RowPosition {
                spend_id: r.get(0)?,
                amount: r.get(1)?,
                state: MoneyState::parse(&state).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        2,
                        rusqlite::types::Type::Text,
                        format!("unknown spend state {state:?}").into(),
                    )
                })?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for row in ledger::object_position(&others, own, state, cost) {
        exec(
            tx,
            "UPDATE spends SET state = ?2, amount = ?3 WHERE spend_id = ?1",
            params![row.spend_id, row.state.as_str(), row.amount],
        )?;
    }
    Ok(())
}

fn budget_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Budget> {
    Ok(Budget {
        name: r.get(0)?,
        max_usd: r.get(1)?,
        daily_usd_cap: r.get(2)?,
        created_at_ms: r.get(3)?,
        alert_at: alerts::from_column(r.get::<_, Option<String>>(4)?.as_deref()),
    })
}

/// Usage from `(state, amount, amount today)` sums of counted spends.
pub(super) fn usage_of(rows: Vec<(String, i64, i64)>) -> Result<Usage, StoreError> {
    let mut u = Usage::default();
    for (state, amount, today) in rows {
        match MoneyState::parse(&state) {
            Some(MoneyState::Moved | MoneyState::Committed) => u.spent += amount,
            Some(MoneyState::Pending | MoneyState::Unknown) => u.pending += amount,
            Some(MoneyState::Reserved) => u.reserved += amount,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "unknown spend state {state:?}"
                )))
            }
        }
        u.total += amount;
        u.today += today;
    }
    Ok(u)
}

fn key_by_hash_on(conn: &Connection, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {KEY_COLS} FROM keys WHERE key_hash = ?1"))?
        .query_row(params![&hash[..]], key_from_row)
        .optional()?;
    row.map(build_key).transpose()
}

fn insert_key_on(conn: &Connection, record: &KeyRecord, hash: &KeyHash) -> Result<(), StoreError> {
    let policy =
        serde_json::to_string(&record.policy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let metadata = (!record.metadata.is_null()).then(|| record.metadata.to_string());
    exec(conn,
        "INSERT INTO keys (key_id, key_hash, vendor, policy, run_id, metadata, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![record.key_id, &hash[..], record.policy.vendor.as_str(), policy, record.run_id, metadata, record.created_at_ms, record.expires_at_ms],
    )?;
    for b in &record.policy.budgets {
        exec(
            conn,
            "INSERT INTO key_budgets (key_id, budget) VALUES (?1, ?2)",
            params![record.key_id, b],
        )?;
    }
    Ok(())
}

/// A budget the key joined, as a reservation reads it: name, caps, `alert_at`, and what its
/// keys have counted over its life and today.
type BudgetRow = (String, Caps, Vec<u16>, i64, i64);

fn budget_rows(conn: &Connection, key_id: &str, day: &str) -> rusqlite::Result<Vec<BudgetRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.name, b.max_usd, b.daily_usd_cap, b.alert_at,
                COALESCE((SELECT SUM(amount) FROM budget_totals t WHERE t.budget = b.name), 0),
                COALESCE((SELECT amount FROM budget_totals t WHERE t.budget = b.name AND t.day = ?2), 0)
         FROM key_budgets kb JOIN budgets b ON b.name = kb.budget WHERE kb.key_id = ?1 ORDER BY b.name",
    )?;
    let rows = stmt.query_map(params![key_id, day], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Caps {
                max_usd: r.get(1)?,
                daily_usd_cap: r.get(2)?,
            },
            alerts::from_column(r.get::<_, Option<String>>(3)?.as_deref()),
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    rows.collect()
}

/// One atomic check of every cap window plus the insert (inside the writer's transaction).
/// What a reservation would do, read-only: a final outcome, or room for `counted` µUSD
/// (reusing row `reuse` after an idempotent "nothing moved").
enum Check {
    Final(ReserveOutcome),
    Room {
        counted: i64,
        reuse: Option<i64>,
        crossed: Vec<Crossing>,
    },
}

fn reserve_on(tx: &Connection, req: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
    let (counted, reuse_row, crossed) = match check_reserve(tx, req)? {
        Check::Final(outcome) => return Ok(outcome),
        Check::Room {
            counted,
            reuse,
            crossed,
        } => (counted, reuse, crossed),
    };
    let action_fp = req.action.as_ref().map(|a| &a.fingerprint[..]);
    let spend_id = match reuse_row {
        Some(id) => {
            exec(tx,
                "UPDATE spends SET state = 'reserved', day = ?2, estimate = ?3, amount = ?4, object_id = ?5, updated_at_ms = ?6, action_fp = ?7 WHERE spend_id = ?1",
                params![id, req.day, req.estimate, counted, req.object_id, req.now_ms, action_fp],
            )?;
            id
        }
        None => {
            let (idem, fp) = match &req.idempotency {
                Some((k, f)) => (Some(k.as_str()), Some(&f[..])),
                None => (None, None),
            };
            exec(tx,
                "INSERT INTO spends (key_id, day, state, estimate, amount, object_id, idem_key, idem_fp, created_at_ms, updated_at_ms, action_fp) VALUES (?1, ?2, 'reserved', ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
                params![req.key_id, req.day, req.estimate, counted, req.object_id, idem, fp, req.now_ms, action_fp],
            )?;
            tx.last_insert_rowid()
        }
    };
    outbox::insert_events(tx, &req.threshold_events(&crossed))?;
    Ok(ReserveOutcome::Reserved {
        spend_id,
        counted,
        crossed,
    })
}

/// The reading half of a reservation. Inside the writer's transaction it is the authority;
/// on a read connection it lets a call that is already over its cap be refused without a
/// write (a runaway agent's retries then cost a read each).
fn check_reserve(tx: &Connection, req: &ReserveRequest) -> Result<Check, StoreError> {
    // The key is re-read here, inside the write transaction, so a revocation by any process
    // stops money at once whatever the caller had cached.
    let key: Option<(Option<i64>, i64)> = tx
        .prepare_cached("SELECT revoked_at_ms, expires_at_ms FROM keys WHERE key_id = ?1")?
        .query_row(params![req.key_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match key {
        None | Some((Some(_), _)) => return Ok(Check::Final(ReserveOutcome::KeyRevoked)),
        Some((None, expires)) if expires <= req.now_ms => {
            return Ok(Check::Final(ReserveOutcome::KeyExpired))
        }
        Some(_) => {}
    }
    let mut reuse_row = None;
    if let Some((idem, fp)) = &req.idempotency {
        let prior: Option<(i64, Option<Vec<u8>>, String)> = tx
            .prepare_cached(
                "SELECT spend_id, idem_fp, state FROM spends WHERE key_id = ?1 AND idem_key = ?2",
            )?
            .query_row(params![req.key_id, idem], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some((spend_id, prior_fp, state)) = prior {
            let same = prior_fp.as_deref() == Some(&fp[..]);
            match ledger::idempotent_retry(same, MoneyState::parse(&state)) {
                Retry::Conflict => return Ok(Check::Final(ReserveOutcome::Conflict)),
                Retry::InFlight => return Ok(Check::Final(ReserveOutcome::InFlight)),
                Retry::Reuse => reuse_row = Some(spend_id),
                Retry::Replay => return Ok(Check::Final(ReserveOutcome::Replay { spend_id })),
            }
        }
    }
    if let Some(a) = &req.action {
        // In flight counts: two identical calls racing must not both pass.
        let first: Option<(i64, i64)> = tx
            .prepare_cached("SELECT spend_id, created_at_ms FROM spends WHERE key_id = ?1 AND action_fp = ?2 AND created_at_ms >= ?3 AND state != 'none' ORDER BY spend_id LIMIT 1")?
            .query_row(params![req.key_id, &a.fingerprint[..], a.since_ms], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((spend_id, at_ms)) = first {
            return Ok(Check::Final(ReserveOutcome::Duplicate { spend_id, at_ms }));
        }
    }
    let already: i64 = match &req.object_id {
        Some(obj) => one(tx,
            &format!("SELECT COALESCE(SUM(amount), 0) FROM spends WHERE key_id = ?1 AND object_id = ?2 AND {COUNTED}"),
            params![req.key_id, obj],
            |r| r.get(0),
        )?,
        None => 0,
    };
    let counted = (req.estimate - already).max(0);
    let (total, today) = counted_totals(tx, &req.key_id, &req.day)?;
    if let Err(over) = ledger::check_caps(req.caps(), total, today, counted) {
        return Ok(Check::Final(ReserveOutcome::OverCap {
            window: over.window,
            cap: over.cap,
            spent: over.spent,
            budget: None,
        }));
    }
    let budgets = budget_rows(tx, &req.key_id, &req.day)?;
    let rows = || {
        budgets
            .iter()
            .map(|(n, c, a, t, d)| (n.as_str(), *c, a.as_slice(), *t, *d))
    };
    let caps_only = rows().map(|(n, c, _, t, d)| (n, c, t, d));
    if let Some((name, over)) = ledger::check_budgets(caps_only, counted) {
        return Ok(Check::Final(ReserveOutcome::OverCap {
            window: over.window,
            cap: over.cap,
            spent: over.spent,
            budget: Some(name.to_string()),
        }));
    }
    let crossed = alerts::crossed_by_key_and_budgets(
        req.caps(),
        &req.alert_at,
        total,
        today,
        rows(),
        counted,
    );
    Ok(Check::Room {
        counted,
        reuse: reuse_row,
        crossed,
    })
}

/// Settle, reconcile, remember and audit (inside the writer's transaction).
fn finish_on(tx: &Connection, f: &Finish) -> Result<(), StoreError> {
    if let Some(s) = &f.settle {
        let object_id = match &s.object_id {
            Some(o) => Some(o.clone()),
            None => one(
                tx,
                "SELECT object_id FROM spends WHERE spend_id = ?1",
                params![s.spend_id],
                |r| r.get(0),
            )?,
        };
        if s.state == MoneyState::Unknown {
            // Unknown keeps whatever was reserved: it is not proof of anything.
            exec(tx, "UPDATE spends SET state = 'unknown', object_id = COALESCE(?2, object_id) WHERE spend_id = ?1", params![s.spend_id, object_id])?;
        } else if let (true, Some(obj)) = (s.authoritative, &object_id) {
            let key_id: String = one(
                tx,
                "SELECT key_id FROM spends WHERE spend_id = ?1",
                params![s.spend_id],
                |r| r.get(0),
            )?;
            exec(
                tx,
                "UPDATE spends SET object_id = ?2 WHERE spend_id = ?1",
                params![s.spend_id, obj],
            )?;
            set_object_position(tx, &key_id, obj, Some(s.spend_id), s.state, s.cost)?;
        } else {
            let amount = if s.state.counts() { s.cost } else { 0 };
            exec(tx,
                "UPDATE spends SET state = ?2, amount = ?3, object_id = COALESCE(?4, object_id) WHERE spend_id = ?1",
                params![s.spend_id, s.state.as_str(), amount, object_id],
            )?;
        }
    }
    if let Some(r) = &f.reconcile {
        set_object_position(tx, &r.key_id, &r.object_id, None, r.state, r.cost)?;
    }
    if let Some((key_id, object_id, m)) = &f.remember {
        exec(tx,
            "INSERT INTO objects (key_id, object_id, micros, currency, updated_at_ms) VALUES (?1, ?2, ?3, ?4, strftime('%s','now') * 1000)
             ON CONFLICT (key_id, object_id) DO UPDATE SET micros = excluded.micros, currency = excluded.currency, updated_at_ms = excluded.updated_at_ms",
            params![key_id, object_id, m.micros, m.currency],
        )?;
    }
    if let Some(a) = &f.audit {
        insert_audit(tx, a, None)?;
    }
    outbox::insert_events(tx, &f.events)?;
    Ok(())
}

impl Store for SqliteStore {
    fn insert_key(&self, record: &KeyRecord, hash: &KeyHash) -> Result<(), StoreError> {
        let (record, hash) = (record.clone(), *hash);
        self.writer.write(move |c| insert_key_on(c, &record, &hash))
    }

    fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        key_by_hash_on(&self.reader(), hash)
    }

    #[allow(clippy::result_large_err)] // Err hands the caller's row back
    fn audit_soon(&self, row: AuditRow) -> Result<(), AuditRow> {
        let Some(journal) = &self.journal else {
            return Err(row);
        };
        journal.append(row, |p| self.queue_journaled(journal, p))
    }

    fn close(&self) -> Result<(), StoreError> {
        if let Some(journal) = &self.journal {
            journal.retry_now(|p| self.queue_journaled(journal, p));
            self.writer.write(|_| Ok(()))?;
            journal.close();
        }
        Ok(())
    }

    fn try_refuse_over_cap(
        &self,
        req: &ReserveRequest,
    ) -> Option<Result<Option<ReserveOutcome>, StoreError>> {
        let conn = self.readers.iter().find_map(|r| r.try_lock())?;
        Some(match check_reserve(&conn, req) {
            Ok(Check::Final(o @ ReserveOutcome::OverCap { .. })) => Ok(Some(o)),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn try_totals(&self, key_id: &str, day: &str) -> Option<Result<(i64, i64), StoreError>> {
        let conn = self.readers.iter().find_map(|r| r.try_lock())?;
        Some(counted_totals(&conn, key_id, day).map_err(Into::into))
    }

    fn try_key_by_hash(&self, hash: &KeyHash) -> Option<Result<Option<KeyRecord>, StoreError>> {
        // Only a separate read connection is fast enough to run on an async worker: the writer
        // may be mid-transaction.
        let conn = self.readers.iter().find_map(|r| r.try_lock())?;
        Some(key_by_hash_on(&conn, hash))
    }

    fn key_by_id(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let conn = self.reader();
        let row = conn
            .prepare_cached(&format!("SELECT {KEY_COLS} FROM keys WHERE key_id = ?1"))?
            .query_row(params![key_id], key_from_row)
            .optional()?;
        row.map(build_key).transpose()
    }

    fn revoke(
        &self,
        key_id: &str,
        now_ms: i64,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError> {
        let (key_id, event) = (key_id.to_string(), event.cloned());
        self.writer
            .write(move |c| Ok(outbox::revoke(c, &key_id, now_ms, event.as_ref())?))
    }

    fn list_keys(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let conn = self.reader();
        let (sql, values) = list_keys_sql(filter);
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), key_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(build_key).collect()
    }

    fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
        let req = req.clone();
        self.writer.write(move |c| reserve_on(c, &req))
    }

    // The Err side hands the caller's own input back; it is not an error value.
    #[allow(clippy::result_large_err)]
    fn reserve_queued(
        &self,
        req: ReserveRequest,
    ) -> Result<Queued<ReserveOutcome>, ReserveRequest> {
        Ok(self.writer.submit(move |c| reserve_on(c, &req)))
    }

    fn finish(&self, f: &Finish) -> Result<(), StoreError> {
        let f = f.clone();
        self.writer.write(move |c| finish_on(c, &f))
    }

    #[allow(clippy::type_complexity, clippy::result_large_err)]
    fn finish_queued(
        &self,
        finish: Finish,
        totals_for: Option<(String, String)>,
    ) -> Result<Queued<Option<(i64, i64)>>, (Finish, Option<(String, String)>)> {
        Ok(self.writer.submit(move |c| {
            finish_on(c, &finish)?;
            match &totals_for {
                Some((key_id, day)) => Ok(Some(counted_totals(c, key_id, day)?)),
                None => Ok(None),
            }
        }))
    }

    fn recall(&self, key_id: &str, object_id: &str) -> Result<Option<Remembered>, StoreError> {
        let conn = self.reader();
        Ok(conn
            .query_row(
                "SELECT micros, currency FROM objects WHERE key_id = ?1 AND object_id = ?2",
                params![key_id, object_id],
                |r| {
                    Ok(Remembered {
                        micros: r.get(0)?,
                        currency: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn totals(&self, key_id: &str, day: &str) -> Result<(i64, i64), StoreError> {
        Ok(counted_totals(&self.reader(), key_id, day)?)
    }

    fn usage(&self, key_id: &str, day: &str) -> Result<Usage, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!("SELECT state, SUM(amount), SUM(CASE WHEN day = ?2 THEN amount ELSE 0 END) FROM spends WHERE key_id = ?1 AND {COUNTED} GROUP BY state"))?;
        let rows = stmt.query_map(params![key_id, day], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        usage_of(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn insert_budget(&self, budget: &Budget) -> Result<bool, StoreError> {
        let b = budget.clone();
        self.writer.write(move |c| {
            let n = c.execute(
                "INSERT INTO budgets (name, max_usd, daily_usd_cap, created_at_ms, alert_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
                params![b.name, b.max_usd, b.daily_usd_cap, b.created_at_ms, alerts::to_column(&b.alert_at)],
            )?;
            Ok(n == 1)
        })
    }

    fn budgets(&self) -> Result<Vec<Budget>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT name, max_usd, daily_usd_cap, created_at_ms, alert_at FROM budgets ORDER BY name",
        )?;
        let rows = stmt.query_map([], budget_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn budget_status(&self, name: &str, day: &str) -> Result<Option<BudgetStatus>, StoreError> {
        let conn = self.reader();
        let Some(budget) = conn
            .prepare_cached(
                "SELECT name, max_usd, daily_usd_cap, created_at_ms, alert_at FROM budgets WHERE name = ?1",
            )?
            .query_row(params![name], budget_from_row)
            .optional()?
        else {
            return Ok(None);
        };
        let keys: Vec<String> = conn
            .prepare_cached("SELECT key_id FROM key_budgets WHERE budget = ?1 ORDER BY key_id")?
            .query_map(params![name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT s.state, SUM(s.amount), SUM(CASE WHEN s.day = ?2 THEN s.amount ELSE 0 END) FROM spends s JOIN key_budgets kb ON kb.key_id = s.key_id WHERE kb.budget = ?1 AND s.{COUNTED} GROUP BY s.state"
        ))?;
        let rows = stmt.query_map(params![name, day], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let usage = usage_of(rows.collect::<rusqlite::Result<Vec<_>>>()?)?;
        Ok(Some(BudgetStatus {
            budget,
            usage,
            keys,
        }))
    }

    fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let w = webhook.clone();
        self.writer
            .write(move |c| Ok(outbox::insert_webhook(c, &w)?))
    }

    fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        outbox::webhooks(&self.reader())
    }

    fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.writer
            .write(move |c| Ok(outbox::delete_webhook(c, &id)?))
    }

    fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        // Most polls find nothing due: ask a read connection first, so an idle gateway's
        // worker never queues a write.
        let due: Option<i64> = self.reader().query_row(
            "SELECT MIN(next_at_ms) FROM deliveries WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?;
        if due.is_none_or(|t| t > now_ms) {
            return Ok(vec![]);
        }
        self.writer
            .write(move |c| outbox::claim(c, now_ms, lease_ms, limit))
    }

    fn finish_delivery(&self, outcome: &DeliveryOutcome) -> Result<(), StoreError> {
        let o = outcome.clone();
        self.writer
            .write(move |c| Ok(outbox::finish_delivery(c, &o)?))
    }

    fn events(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        outbox::events(&self.reader(), limit)
    }

    fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        if let Some(journal) = &self.journal {
            // Read your writes: rows queued from the journal commit before this query.
            journal.retry_now(|p| self.queue_journaled(journal, p));
            self.writer.write(|_| Ok(()))?;
        }
        let conn = self.reader();
        let limit = if q.limit == 0 {
            100
        } else {
            q.limit.min(10_000)
        } as i64;
        // Only the filters given, so SQLite can walk `audit_key` / `audit_run` (or the rowid)
        // in id order and stop at the limit; `?1 IS NULL OR …` forms forced a scan and sort
        // of the whole table (37 ms at 75k rows, growing with the log).
        let mut clauses = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        let filters = [
            ("key_id = ?", q.key_id.clone().map(Into::into)),
            ("run_id = ?", q.run_id.clone().map(Into::into)),
            ("time_ms >= ?", q.since_ms.map(Into::into)),
            ("id > ?", q.after_id.map(Into::into)),
        ];
        for (clause, value) in filters {
            if let Some(v) = value {
                clauses.push(clause);
                values.push(v);
            }
        }
        values.push(limit.into());
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let order = if q.after_id.is_some() { "ASC" } else { "DESC" };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, time_ms, key_id, run_id, vendor, method, endpoint, decision, status, upstream_status, estimate, cost, money_state, latency_us, upstream_latency_us, idempotency_key, vendor_request_id, message, spend_id
             FROM audit {filter} ORDER BY id {order} LIMIT ?"
        ))?;
        let mut rows = stmt
            .query_map(rusqlite::params_from_iter(values), |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    time_ms: r.get(1)?,
                    key_id: r.get(2)?,
                    run_id: r.get(3)?,
                    vendor: r.get(4)?,
                    method: r.get(5)?,
                    endpoint: r.get(6)?,
                    decision: r.get(7)?,
                    status: r.get(8)?,
                    upstream_status: r.get(9)?,
                    estimate_micros: r.get(10)?,
                    cost_micros: r.get(11)?,
                    money_state: r.get(12)?,
                    latency_us: r.get(13)?,
                    upstream_latency_us: r.get(14)?,
                    idempotency_key: r.get(15)?,
                    vendor_request_id: r.get(16)?,
                    message: r.get(17)?,
                    spend_id: r.get(18)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // Newest N for a plain query, oldest-first after a cursor; both returned oldest-first.
        if q.after_id.is_none() {
            rows.reverse();
        }
        Ok(rows)
    }

    fn ping(&self) -> Result<(), StoreError> {
        // Healthy means a reservation could be taken now: the writer's BEGIN IMMEDIATE takes
        // the write lock for this empty job.
        self.writer.write(|_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite picks for the key list's query with `filter`, one line per step.
    fn key_list_plan(store: &SqliteStore, filter: &KeyFilter) -> String {
        let (sql, values) = list_keys_sql(filter);
        let conn = store.conn.lock();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(rusqlite::params_from_iter(values), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
        .join("\n")
    }

    #[test]
    fn the_key_list_walks_an_index_and_never_sorts() {
        let store = SqliteStore::in_memory().unwrap();
        let after = Some((1_800_000_000_000, "key_x".to_string()));
        let cases = [
            (KeyFilter::default(), "keys_created"),
            (
                KeyFilter {
                    after: after.clone(),
                    active_at_ms: Some(1),
                    limit: 51,
                    ..Default::default()
                },
                "keys_created",
            ),
            (
                KeyFilter {
                    run_id: Some("run".into()),
                    ..Default::default()
                },
                "keys_run_created",
            ),
            (
                KeyFilter {
                    run_id: Some("run".into()),
                    active_at_ms: Some(1),
                    after,
                    limit: 51,
                },
                "keys_run_created",
            ),
        ];
        for (filter, index) in cases {
            let plan = key_list_plan(&store, &filter);
            assert!(plan.contains(index), "{filter:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{filter:?}: {plan}");
        }
    }
}
