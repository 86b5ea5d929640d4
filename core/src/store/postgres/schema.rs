//! The PostgreSQL schema: versioned migrations, applied in order under an advisory lock (so
//! several instances starting at once migrate once); `vendorgate_schema.version` records how
//! many ran, like SQLite's `PRAGMA user_version`.

use deadpool_postgres::GenericClient;

use super::ops::Fail;
use crate::error::StoreError;

/// Any fixed number: the lock only has to be the same for every vendorgate instance.
const MIGRATION_LOCK: i64 = 0x7665_6e64_6f72;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE keys (
    key_id        TEXT PRIMARY KEY,
    key_hash      BYTEA NOT NULL UNIQUE,
    vendor        TEXT NOT NULL,
    policy        TEXT NOT NULL,
    run_id        TEXT,
    metadata      TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
-- The key list, newest first (the dashboard's pages), and one run's keys in that order.
CREATE INDEX keys_created ON keys (created_at_ms DESC, key_id);
CREATE INDEX keys_run_created ON keys (run_id, created_at_ms DESC, key_id);
CREATE TABLE spends (
    spend_id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id        TEXT NOT NULL,
    day           TEXT NOT NULL,
    state         TEXT NOT NULL,
    estimate      BIGINT NOT NULL,
    amount        BIGINT NOT NULL,
    object_id     TEXT,
    idem_key      TEXT,
    idem_fp       BYTEA,
    -- The duplicate-action guard's fingerprint of what the call does (cost::action).
    action_fp     BYTEA,
    -- The instance that reserved it: a sweeper turns the reservations of an instance that
    -- stopped heartbeating into 'unknown'.
    instance_id   TEXT,
    -- When the reservation was taken, by the database's clock: one still 'reserved' long
    -- after any call could last lost its settlement (e.g. the database failed at that
    -- moment) and is swept too.
    reserved_db_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX spends_idem ON spends (key_id, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX spends_key ON spends (key_id, state, day);
-- Only counted rows: a settlement rewrites those, and a long-lived object's superseded
-- calls must not be re-read by every later call on it.
CREATE INDEX spends_object ON spends (key_id, object_id)
    WHERE object_id IS NOT NULL AND state NOT IN ('none', 'superseded');
CREATE INDEX spends_reserved ON spends (instance_id) WHERE state = 'reserved';
-- The duplicate-action guard: each money call's action fingerprint, found by key.
CREATE INDEX spends_action ON spends (key_id, action_fp, created_at_ms) WHERE action_fp IS NOT NULL;
CREATE TABLE objects (
    key_id        TEXT NOT NULL,
    object_id     TEXT NOT NULL,
    micros        BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (key_id, object_id)
);
CREATE TABLE audit (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_ms             BIGINT NOT NULL,
    key_id              TEXT,
    run_id              TEXT,
    vendor              TEXT,
    method              TEXT NOT NULL,
    endpoint            TEXT NOT NULL,
    decision            TEXT NOT NULL,
    status              INTEGER NOT NULL,
    upstream_status     INTEGER,
    estimate            BIGINT NOT NULL,
    cost                BIGINT NOT NULL,
    money_state         TEXT,
    latency_us          BIGINT NOT NULL,
    upstream_latency_us BIGINT,
    idempotency_key     TEXT,
    vendor_request_id   TEXT,
    message             TEXT
);
CREATE INDEX audit_key ON audit (key_id, id);
CREATE INDEX audit_run ON audit (run_id, id);
-- Running totals per key and UTC day, kept by a trigger in the same transaction as every
-- change to `spends`, so a cap check reads a key's few day rows, not its history.
CREATE TABLE spend_totals (
    key_id TEXT NOT NULL,
    day    TEXT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (key_id, day)
);
CREATE FUNCTION vendorgate_spend_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state NOT IN ('none', 'superseded') THEN
        UPDATE spend_totals SET amount = amount - OLD.amount
            WHERE key_id = OLD.key_id AND day = OLD.day;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.state NOT IN ('none', 'superseded') THEN
        INSERT INTO spend_totals (key_id, day, amount) VALUES (NEW.key_id, NEW.day, NEW.amount)
            ON CONFLICT (key_id, day) DO UPDATE SET amount = spend_totals.amount + EXCLUDED.amount;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER spends_totals_insert AFTER INSERT ON spends
    FOR EACH ROW EXECUTE FUNCTION vendorgate_spend_totals();
-- Only changes that move a total: 'reserved' → 'unknown' (the sweeper) or → 'moved' at the
-- same amount leaves the totals as they are.
CREATE TRIGGER spends_totals_update AFTER UPDATE OF state, amount, day, key_id ON spends
    FOR EACH ROW WHEN (OLD.amount IS DISTINCT FROM NEW.amount OR OLD.day IS DISTINCT FROM NEW.day
        OR OLD.key_id IS DISTINCT FROM NEW.key_id
        OR (OLD.state IN ('none', 'superseded')) IS DISTINCT FROM (NEW.state IN ('none', 'superseded')))
    EXECUTE FUNCTION vendorgate_spend_totals();
CREATE TRIGGER spends_totals_delete AFTER DELETE ON spends
    FOR EACH ROW EXECUTE FUNCTION vendorgate_spend_totals();
-- Budgets shared by many keys: a key joins its budgets at issue; the totals follow the
-- spends of every member key by the same rule as spend_totals.
CREATE TABLE budgets (
    name          TEXT PRIMARY KEY,
    max_usd       BIGINT,
    daily_usd_cap BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE key_budgets (
    key_id TEXT NOT NULL REFERENCES keys (key_id),
    budget TEXT NOT NULL REFERENCES budgets (name),
    PRIMARY KEY (key_id, budget)
);
CREATE INDEX key_budgets_budget ON key_budgets (budget, key_id);
CREATE TABLE budget_totals (
    budget TEXT NOT NULL,
    day    TEXT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (budget, day)
);
CREATE FUNCTION vendorgate_budget_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state NOT IN ('none', 'superseded') THEN
        UPDATE budget_totals SET amount = amount - OLD.amount
            WHERE day = OLD.day AND budget IN (SELECT budget FROM key_budgets WHERE key_id = OLD.key_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.state NOT IN ('none', 'superseded') THEN
        INSERT INTO budget_totals (budget, day, amount)
            SELECT budget, NEW.day, NEW.amount FROM key_budgets WHERE key_id = NEW.key_id
            ON CONFLICT (budget, day) DO UPDATE SET amount = budget_totals.amount + EXCLUDED.amount;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER spends_budgets_insert AFTER INSERT ON spends
    FOR EACH ROW EXECUTE FUNCTION vendorgate_budget_totals();
CREATE TRIGGER spends_budgets_update AFTER UPDATE OF state, amount, day, key_id ON spends
    FOR EACH ROW WHEN (OLD.amount IS DISTINCT FROM NEW.amount OR OLD.day IS DISTINCT FROM NEW.day
        OR OLD.key_id IS DISTINCT FROM NEW.key_id
        OR (OLD.state IN ('none', 'superseded')) IS DISTINCT FROM (NEW.state IN ('none', 'superseded')))
    EXECUTE FUNCTION vendorgate_budget_totals();
CREATE TRIGGER spends_budgets_delete AFTER DELETE ON spends
    FOR EACH ROW EXECUTE FUNCTION vendorgate_budget_totals();
-- Live instances: each heartbeats with the database's clock.
CREATE TABLE instances (
    instance_id  TEXT PRIMARY KEY,
    host         TEXT,
    started_ms   BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
"#,
    // 2: early warnings and webhooks (as SQLite's migration 9). An event is stored once per
    // dedupe key; one delivery row per subscribed webhook; workers claim due rows with
    // FOR UPDATE SKIP LOCKED and a lease on `next_at_ms`.
    r#"
ALTER TABLE budgets ADD COLUMN alert_at TEXT;
CREATE TABLE events (
    seq     BIGSERIAL PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    type    TEXT NOT NULL,
    dedupe  TEXT UNIQUE,
    time_ms BIGINT NOT NULL,
    key_id  TEXT,
    payload TEXT NOT NULL
);
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    secret        TEXT NOT NULL,
    events        TEXT NOT NULL,
    format        TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    disabled      TEXT
);
CREATE TABLE deliveries (
    id            BIGSERIAL PRIMARY KEY,
    event_seq     BIGINT NOT NULL REFERENCES events (seq),
    webhook_id    TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at_ms    BIGINT NOT NULL,
    last_status   INTEGER,
    last_error    TEXT,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (event_seq, webhook_id)
);
CREATE INDEX deliveries_due ON deliveries (next_at_ms) WHERE state = 'pending';
"#,
    // 3: the audit row names the ledger row of its call's money (as SQLite's migration 10).
    "ALTER TABLE audit ADD COLUMN spend_id BIGINT;",
];

/// Bring the schema up to date (or refuse a database migrated by a newer vendorgate).
pub(super) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(Fail::from)?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS vendorgate_schema (version INTEGER NOT NULL);"
    ))
    .await
    .map_err(Fail::from)?;
    let version: i32 = match tx
        .query_opt("SELECT version FROM vendorgate_schema", &[])
        .await
        .map_err(Fail::from)?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO vendorgate_schema (version) VALUES (0)", &[])
                .await
                .map_err(Fail::from)?;
            0
        }
    };
    let supported = MIGRATIONS.len() as i32;
    if version > supported {
        return Err(StoreError::SchemaTooNew {
            found: version.into(),
            supported: supported.into(),
        });
    }
    for m in &MIGRATIONS[version as usize..] {
        tx.batch_execute(m).await.map_err(Fail::from)?;
    }
    tx.execute("UPDATE vendorgate_schema SET version = $1", &[&supported])
        .await
        .map_err(Fail::from)?;
    tx.commit().await.map_err(Fail::from)?;
    Ok(())
}
