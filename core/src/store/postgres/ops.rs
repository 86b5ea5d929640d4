//! The store's operations as SQL on one PostgreSQL client or transaction. The ledger's rules
//! themselves are in `crate::ledger`, shared with SQLite; this file only reads and writes rows.
//!
//! Exactness rests on one rule: every write that changes a key's money (reserve, settle,
//! reconcile, the sweeper) first holds that key's `keys` row lock (`FOR UPDATE`, taken for
//! a whole batch in `batch.rs`). Under READ COMMITTED each later statement takes a fresh
//! snapshot, so the reservation's reads see every change committed before the lock was
//! granted. (A cap computed by an aggregate inside the *same* statement that waits for the
//! lock would keep its old snapshot and admit 200 of 200: see docs/DEPLOYMENT.md.)

use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::super::sqlite::{build_key, usage_of, KeyRow};
use super::super::{
    AuditQuery, Budget, BudgetStatus, Finish, KeyFilter, ReserveOutcome, ReserveRequest, Settle,
    Usage,
};
use super::outbox;
use crate::alerts;
use crate::audit::AuditRow;
use crate::error::StoreError;
use crate::events::NewEvent;
use crate::keys::{KeyHash, KeyRecord};
use crate::ledger::{self, MoneyState, Remembered, Retry};

/// A failed operation: the store error, plus the SQLSTATE when PostgreSQL gave one (the
/// batcher decides by it whether the rest of a batch can still commit).
#[derive(Debug)]
pub(crate) struct Fail {
    pub code: Option<SqlState>,
    pub error: StoreError,
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        let code = e.code().cloned();
        let text = match e.as_db_error() {
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None => {
                // The driver's own text is terse ("error connecting to server"); the cause
                // chain says what happened. It never holds the password.
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text.push_str(": ");
                    text.push_str(&c.to_string());
                    cause = c.source();
                }
                text
            }
        };
        let error = if e.is_closed() || e.as_db_error().is_none() {
            StoreError::Unavailable(text)
        } else {
            StoreError::Postgres(text)
        };
        Fail { code, error }
    }
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail { code: None, error }
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        f.error
    }
}

impl Fail {
    /// The transaction was already aborted by an earlier statement (not this one's fault).
    pub fn is_aborted_by_another(&self) -> bool {
        self.code == Some(SqlState::IN_FAILED_SQL_TRANSACTION)
    }

    /// A failure of this operation's own data (a constraint, a bad value): the rest of its
    /// batch can run again without it. Anything else (timeouts, lost connection, deadlock)
    /// fails the whole batch.
    pub fn is_own(&self) -> bool {
        match &self.code {
            Some(c) => {
                let class = &c.code()[..2];
                class == "22" || class == "23"
            }
            None => matches!(self.error, StoreError::Corrupt(_)),
        }
    }
}

pub(crate) type Res<T> = Result<T, Fail>;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(super) async fn rows<C: GenericClient>(c: &C, sql: &str, p: Params<'_>) -> Res<Vec<Row>> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query(&st, p).await?)
}

pub(super) async fn opt<C: GenericClient>(c: &C, sql: &str, p: Params<'_>) -> Res<Option<Row>> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&st, p).await?)
}

pub(super) async fn exec<C: GenericClient>(c: &C, sql: &str, p: Params<'_>) -> Res<u64> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.execute(&st, p).await?)
}

/// The database's clock in ms: instances on several machines agree on it.
pub(super) const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::BIGINT";

const KEY_COLS: &str =
    "key_id, policy, run_id, metadata, created_at_ms, expires_at_ms, revoked_at_ms";

fn key_row(r: &Row) -> KeyRow {
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
    )
}

/// Lock the `keys` rows of a batch, in key order so two batches never wait on each other in
/// a circle.
/// Lock the keys' rows, then the rows of every budget they joined, each in name order: one
/// global lock order (keys, then budgets), so batches in different lanes never deadlock, and
/// a budget's totals are read and written only by the one transaction holding its lock.
/// Both statements go out together (the server runs them in order). Returns whether any of
/// the keys is in a budget.
pub(super) async fn lock_keys<C: GenericClient>(c: &C, keys: &[&str]) -> Res<bool> {
    let (_, budgets) = futures_util::future::try_join(
        rows(
            c,
            "SELECT key_id FROM keys WHERE key_id = ANY($1) ORDER BY key_id FOR UPDATE",
            &[&keys],
        ),
        rows(
            c,
            "SELECT name FROM budgets WHERE name IN (SELECT budget FROM key_budgets WHERE key_id = ANY($1))
             ORDER BY name FOR UPDATE",
            &[&keys],
        ),
    )
    .await?;
    Ok(!budgets.is_empty())
}

/// The key each settlement belongs to, so its batch can lock it first.
pub(super) async fn keys_of_spends<C: GenericClient>(
    c: &C,
    spend_ids: &[i64],
) -> Res<Vec<(i64, String)>> {
    Ok(rows(
        c,
        "SELECT spend_id, key_id FROM spends WHERE spend_id = ANY($1)",
        &[&spend_ids],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// One reservation (the caller's batch holds the key's row lock).
pub(super) async fn reserve<C: GenericClient>(
    c: &C,
    req: &ReserveRequest,
    instance: &str,
) -> Res<ReserveOutcome> {
    let idem = req.idempotency.as_ref().map(|(k, _)| k.as_str());
    let action_fp = req.action.as_ref().map(|a| &a.fingerprint[..]);
    let since = req.action.as_ref().map_or(i64::MAX, |a| a.since_ms);
    // One round trip for every read: the key's revocation and expiry, its totals, what is
    // already counted for the object, and the call that first used the Idempotency-Key.
    let row = opt(
        c,
        "SELECT k.revoked_at_ms, k.expires_at_ms,
            COALESCE((SELECT SUM(t.amount) FROM spend_totals t WHERE t.key_id = k.key_id), 0)::BIGINT,
            COALESCE((SELECT SUM(t.amount) FROM spend_totals t WHERE t.key_id = k.key_id AND t.day = $2), 0)::BIGINT,
            COALESCE((SELECT SUM(s.amount) FROM spends s WHERE s.key_id = k.key_id AND s.object_id = $3
                      AND s.state NOT IN ('none', 'superseded')), 0)::BIGINT,
            i.spend_id, i.idem_fp, i.state, dup.spend_id, dup.created_at_ms,
            (SELECT json_agg(json_build_array(b.name, b.max_usd, b.daily_usd_cap, b.alert_at,
                    COALESCE((SELECT SUM(t.amount) FROM budget_totals t WHERE t.budget = b.name), 0),
                    COALESCE((SELECT SUM(t.amount) FROM budget_totals t WHERE t.budget = b.name AND t.day = $2), 0))
                    ORDER BY b.name)::TEXT
             FROM key_budgets kb JOIN budgets b ON b.name = kb.budget WHERE kb.key_id = k.key_id)
         FROM keys k LEFT JOIN spends i ON i.key_id = k.key_id AND i.idem_key = $4
         LEFT JOIN LATERAL (SELECT d.spend_id, d.created_at_ms FROM spends d
             WHERE d.key_id = k.key_id AND d.action_fp = $5 AND d.created_at_ms >= $6 AND d.state <> 'none'
             ORDER BY d.spend_id LIMIT 1) dup ON true
         WHERE k.key_id = $1",
        &[&req.key_id, &req.day, &req.object_id, &idem, &action_fp, &since],
    )
    .await?;
    let Some(row) = row else {
        return Ok(ReserveOutcome::KeyRevoked);
    };
    let revoked: Option<i64> = row.get(0);
    let expires: i64 = row.get(1);
    if revoked.is_some() {
        return Ok(ReserveOutcome::KeyRevoked);
    }
    if expires <= req.now_ms {
        return Ok(ReserveOutcome::KeyExpired);
    }
    let (total, today, already): (i64, i64, i64) = (row.get(2), row.get(3), row.get(4));
    let mut reuse = None;
    if let (Some((_, fp)), Some(prior)) = (&req.idempotency, row.get::<_, Option<i64>>(5)) {
        let prior_fp: Option<Vec<u8>> = row.get(6);
        let state: Option<String> = row.get(7);
        let same = prior_fp.as_deref() == Some(&fp[..]);
        match ledger::idempotent_retry(same, state.as_deref().and_then(MoneyState::parse)) {
            Retry::Conflict => return Ok(ReserveOutcome::Conflict),
            Retry::InFlight => return Ok(ReserveOutcome::InFlight),
            Retry::Replay => return Ok(ReserveOutcome::Replay { spend_id: prior }),
            Retry::Reuse => reuse = Some(prior),
        }
    }
    // In flight counts: two identical calls racing must not both pass.
    if let Some(spend_id) = row.get::<_, Option<i64>>(8) {
        return Ok(ReserveOutcome::Duplicate {
            spend_id,
            at_ms: row.get(9),
        });
    }
    let counted = (req.estimate - already).max(0);
    if let Err(over) = ledger::check_caps(req.caps(), total, today, counted) {
        return Ok(ReserveOutcome::OverCap {
            window: over.window,
            cap: over.cap,
            spent: over.spent,
            budget: None,
        });
    }
    let budgets = budget_rows(row.get::<_, Option<&str>>(10))?;
    if let Some(over) = over_budget(&budgets, counted) {
        return Ok(over);
    }
    let crossed = alerts::crossed_by_key_and_budgets(
        req.caps(),
        &req.alert_at,
        total,
        today,
        budgets
            .iter()
            .map(|(n, c, a, t, d)| (n.as_str(), *c, a.as_slice(), *t, *d)),
        counted,
    );
    let spend_id = match reuse {
        Some(id) => {
            exec(c,
                &format!("UPDATE spends SET state = 'reserved', day = $2, estimate = $3, amount = $4, object_id = $5, updated_at_ms = $6, instance_id = $7, reserved_db_ms = {NOW_MS}, action_fp = $8 WHERE spend_id = $1"),
                &[&id, &req.day, &req.estimate, &counted, &req.object_id, &req.now_ms, &instance, &action_fp],
            )
            .await?;
            id
        }
        None => {
            let fp = req.idempotency.as_ref().map(|(_, f)| &f[..]);
            let row = opt(c,
                &format!("INSERT INTO spends (key_id, day, state, estimate, amount, object_id, idem_key, idem_fp, instance_id, reserved_db_ms, created_at_ms, updated_at_ms, action_fp)
                 VALUES ($1, $2, 'reserved', $3, $4, $5, $6, $7, $8, {NOW_MS}, $9, $9, $10) RETURNING spend_id"),
                &[&req.key_id, &req.day, &req.estimate, &counted, &req.object_id, &idem, &fp, &instance, &req.now_ms, &action_fp],
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("INSERT … RETURNING gave no row".into()))?;
            row.get(0)
        }
    };
    outbox::insert_events(c, &req.threshold_events(&crossed)).await?;
    Ok(ReserveOutcome::Reserved {
        spend_id,
        counted,
        crossed,
    })
}

/// A budget of the key as the reservation read it: name, caps, `alert_at`, total, today.
type BudgetRow = (String, ledger::Caps, Vec<u16>, i64, i64);

/// The reservation read's `[name, max_usd, daily_usd_cap, alert_at, total, today]` rows
/// (JSON; `None`: the key joined no budget).
fn budget_rows(json: Option<&str>) -> Res<Vec<BudgetRow>> {
    let Some(json) = json else { return Ok(vec![]) };
    type Raw = (String, Option<i64>, Option<i64>, Option<String>, i64, i64);
    let raw: Vec<Raw> = serde_json::from_str(json)
        .map_err(|e| Fail::from(StoreError::Corrupt(format!("budget totals: {e}"))))?;
    Ok(raw
        .into_iter()
        .map(|(name, max_usd, daily_usd_cap, alert_at, total, today)| {
            let caps = ledger::Caps {
                max_usd,
                daily_usd_cap,
            };
            (
                name,
                caps,
                alerts::from_column(alert_at.as_deref()),
                total,
                today,
            )
        })
        .collect())
}

/// The first budget (by name) that `counted` more µUSD would cross.
fn over_budget(budgets: &[BudgetRow], counted: i64) -> Option<ReserveOutcome> {
    let rows = budgets
        .iter()
        .map(|(name, caps, _, total, today)| (name.as_str(), *caps, *total, *today));
    ledger::check_budgets(rows, counted).map(|(name, over)| ReserveOutcome::OverCap {
        window: over.window,
        cap: over.cap,
        spent: over.spent,
        budget: Some(name.to_string()),
    })
}

/// Rewrite the rows of one vendor object by [`ledger::object_position`] (one statement for
/// all of them). Rows still in flight are left alone.
async fn set_object_position<C: GenericClient>(
    c: &C,
    key_id: &str,
    object_id: &str,
    own: Option<i64>,
    state: MoneyState,
    cost: i64,
) -> Res<()> {
    let others = rows(c,
        "SELECT spend_id, amount, state FROM spends WHERE key_id = $1 AND object_id = $2 AND spend_id <> $3
         AND state <> 'reserved' AND state NOT IN ('none', 'superseded') ORDER BY spend_id DESC",
        &[&key_id, &object_id, &own.unwrap_or(-1)],
    )
    .await?
    .iter()
    .map(|r| {
        let state: &str = r.get(2);
        Ok(ledger::RowPosition {
            spend_id: r.get(0),
            amount: r.get(1),
            state: MoneyState::parse(state)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown spend state {state:?}")))?,
        })
    })
    .collect::<Res<Vec<_>>>()?;
    let moves = ledger::object_position(&others, own, state, cost);
    if moves.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = moves.iter().map(|m| m.spend_id).collect();
    let states: Vec<&str> = moves.iter().map(|m| m.state.as_str()).collect();
    let amounts: Vec<i64> = moves.iter().map(|m| m.amount).collect();
    exec(
        c,
        "UPDATE spends s SET state = u.state, amount = u.amount
         FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[]) AS u(id, state, amount)
         WHERE s.spend_id = u.id",
        &[&ids, &states, &amounts],
    )
    .await?;
    Ok(())
}

/// Settle, reconcile, remember and audit, then read the key's `(total, today)` when asked
/// (the caller's batch holds the key's row lock).
///
/// tokio-postgres sends statements in the order they are first polled and the server runs
/// them in that order, so the audit row and the object memory (other tables) go out beside
/// the ledger's statements instead of after them: one round trip fewer each.
pub(super) async fn finish<C: GenericClient>(
    c: &C,
    f: &Finish,
    totals_for: Option<(&str, &str)>,
) -> Res<Option<(i64, i64)>> {
    let ledger = async {
        if let Some(s) = &f.settle {
            settle(c, s).await?;
        }
        if let Some(r) = &f.reconcile {
            set_object_position(c, &r.key_id, &r.object_id, None, r.state, r.cost).await?;
        }
        match totals_for {
            Some((k, d)) => Ok(Some(totals(c, k, d).await?)),
            None => Ok(None),
        }
    };
    let remember = async {
        if let Some((key_id, object_id, m)) = &f.remember {
            exec(c, &format!(
                "INSERT INTO objects (key_id, object_id, micros, currency, updated_at_ms) VALUES ($1, $2, $3, $4, {NOW_MS})
                 ON CONFLICT (key_id, object_id) DO UPDATE SET micros = EXCLUDED.micros, currency = EXCLUDED.currency, updated_at_ms = EXCLUDED.updated_at_ms"),
                &[key_id, object_id, &m.micros, &m.currency],
            )
            .await?;
        }
        Ok::<_, Fail>(())
    };
    let audit = async {
        if let Some(a) = &f.audit {
            insert_audit(c, a).await?;
        }
        Ok(outbox::insert_events(c, &f.events).await?)
    };
    let (totals, remembered, audited) = futures_util::future::join3(ledger, remember, audit).await;
    // If one statement failed, the others fail as "transaction aborted": report the cause.
    let (totals, totals_err) = match totals {
        Ok(t) => (Some(t), None),
        Err(e) => (None, Some(e)),
    };
    let mut failures: Vec<Fail> = [totals_err, remembered.err(), audited.err()]
        .into_iter()
        .flatten()
        .collect();
    if failures.is_empty() {
        return Ok(totals.flatten());
    }
    let cause = failures
        .iter()
        .position(|f| !f.is_aborted_by_another())
        .unwrap_or(0);
    Err(failures.swap_remove(cause))
}

async fn settle<C: GenericClient>(c: &C, s: &Settle) -> Res<()> {
    if s.state == MoneyState::Unknown {
        // Unknown keeps whatever was reserved: it is not proof of anything.
        let n = exec(c, "UPDATE spends SET state = 'unknown', object_id = COALESCE($2, object_id) WHERE spend_id = $1",
            &[&s.spend_id, &s.object_id]).await?;
        return found(n, s.spend_id);
    }
    if !s.authoritative {
        let amount = if s.state.counts() { s.cost } else { 0 };
        let n = exec(c,
            "UPDATE spends SET state = $2, amount = $3, object_id = COALESCE($4, object_id) WHERE spend_id = $1",
            &[&s.spend_id, &s.state.as_str(), &amount, &s.object_id],
        )
        .await?;
        return found(n, s.spend_id);
    }
    // An authoritative answer describes the whole object: its rows are rewritten together.
    let row = opt(
        c,
        "SELECT key_id, object_id FROM spends WHERE spend_id = $1",
        &[&s.spend_id],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("no reservation {}", s.spend_id)))?;
    let key_id: String = row.get(0);
    let object_id: Option<String> = s.object_id.clone().or_else(|| row.get(1));
    match &object_id {
        Some(obj) => {
            exec(
                c,
                "UPDATE spends SET object_id = $2 WHERE spend_id = $1",
                &[&s.spend_id, obj],
            )
            .await?;
            set_object_position(c, &key_id, obj, Some(s.spend_id), s.state, s.cost).await
        }
        None => {
            let amount = if s.state.counts() { s.cost } else { 0 };
            exec(
                c,
                "UPDATE spends SET state = $2, amount = $3 WHERE spend_id = $1",
                &[&s.spend_id, &s.state.as_str(), &amount],
            )
            .await?;
            Ok(())
        }
    }
}

fn found(rows: u64, spend_id: i64) -> Res<()> {
    if rows == 0 {
        return Err(StoreError::Corrupt(format!("no reservation {spend_id}")).into());
    }
    Ok(())
}

pub(super) async fn insert_audit<C: GenericClient>(c: &C, a: &AuditRow) -> Res<()> {
    let status = i32::from(a.status);
    let upstream = a.upstream_status.map(i32::from);
    exec(c,
        "INSERT INTO audit (time_ms, key_id, run_id, vendor, method, endpoint, decision, status, upstream_status, estimate, cost, money_state, latency_us, upstream_latency_us, idempotency_key, vendor_request_id, message, spend_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        &[&a.time_ms, &a.key_id, &a.run_id, &a.vendor, &a.method, &a.endpoint, &a.decision, &status, &upstream,
          &a.estimate_micros, &a.cost_micros, &a.money_state, &a.latency_us, &a.upstream_latency_us,
          &a.idempotency_key, &a.vendor_request_id, &a.message, &a.spend_id],
    )
    .await?;
    Ok(())
}

/// `(total, today)` counted for a key, from the running totals.
pub(super) async fn totals<C: GenericClient>(c: &C, key_id: &str, day: &str) -> Res<(i64, i64)> {
    let row = opt(c,
        "SELECT COALESCE(SUM(amount), 0)::BIGINT, COALESCE(SUM(amount) FILTER (WHERE day = $2), 0)::BIGINT FROM spend_totals WHERE key_id = $1",
        &[&key_id, &day],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("an aggregate gave no row".into()))?;
    Ok((row.get(0), row.get(1)))
}

pub(super) async fn insert_key<C: GenericClient>(c: &C, r: &KeyRecord, hash: &KeyHash) -> Res<()> {
    let policy =
        serde_json::to_string(&r.policy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let metadata = (!r.metadata.is_null()).then(|| r.metadata.to_string());
    // One statement, so the key and its budget memberships exist together or not at all.
    exec(c,
        "WITH k AS (INSERT INTO keys (key_id, key_hash, vendor, policy, run_id, metadata, created_at_ms, expires_at_ms)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING key_id)
         INSERT INTO key_budgets (key_id, budget) SELECT k.key_id, b FROM k, unnest($9::TEXT[]) AS b",
        &[&r.key_id, &&hash[..], &r.policy.vendor.as_str(), &policy, &r.run_id, &metadata, &r.created_at_ms, &r.expires_at_ms, &r.policy.budgets],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_budget<C: GenericClient>(c: &C, b: &Budget) -> Res<bool> {
    let n = exec(c,
        "INSERT INTO budgets (name, max_usd, daily_usd_cap, created_at_ms, alert_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        &[&b.name, &b.max_usd, &b.daily_usd_cap, &b.created_at_ms, &alerts::to_column(&b.alert_at)],
    )
    .await?;
    Ok(n == 1)
}

fn budget_row(r: &Row) -> Budget {
    Budget {
        name: r.get(0),
        max_usd: r.get(1),
        daily_usd_cap: r.get(2),
        created_at_ms: r.get(3),
        alert_at: alerts::from_column(r.get(4)),
    }
}

pub(super) async fn budgets<C: GenericClient>(c: &C) -> Res<Vec<Budget>> {
    Ok(rows(
        c,
        "SELECT name, max_usd, daily_usd_cap, created_at_ms, alert_at FROM budgets ORDER BY name",
        &[],
    )
    .await?
    .iter()
    .map(budget_row)
    .collect())
}

pub(super) async fn budget_status<C: GenericClient>(
    c: &C,
    name: &str,
    day: &str,
) -> Res<Option<BudgetStatus>> {
    let Some(b) = opt(
        c,
        "SELECT name, max_usd, daily_usd_cap, created_at_ms, alert_at FROM budgets WHERE name = $1",
        &[&name],
    )
    .await?
    else {
        return Ok(None);
    };
    let keys = rows(
        c,
        "SELECT key_id FROM key_budgets WHERE budget = $1 ORDER BY key_id",
        &[&name],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let sums = rows(c,
        "SELECT s.state, SUM(s.amount)::BIGINT, SUM(CASE WHEN s.day = $2 THEN s.amount ELSE 0 END)::BIGINT
         FROM spends s JOIN key_budgets kb ON kb.key_id = s.key_id
         WHERE kb.budget = $1 AND s.state NOT IN ('none', 'superseded') GROUP BY s.state",
        &[&name, &day],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    Ok(Some(BudgetStatus {
        budget: budget_row(&b),
        usage: usage_of(sums)?,
        keys,
    }))
}

/// Mark revoked (keeping the first time) and tell listening instances, in one statement: the
/// notice goes out when it commits.
/// The event goes in with the first revocation only (the caller's transaction).
pub(super) async fn revoke<C: GenericClient>(
    c: &C,
    key_id: &str,
    now_ms: i64,
    event: Option<&NewEvent>,
) -> Res<bool> {
    let first = rows(c,
        "WITH r AS (UPDATE keys SET revoked_at_ms = $2 WHERE key_id = $1 AND revoked_at_ms IS NULL RETURNING key_id)
         SELECT pg_notify('vendorgate_keys', key_id) FROM r",
        &[&key_id, &now_ms],
    )
    .await?;
    if !first.is_empty() {
        if let Some(e) = event {
            outbox::insert_events(c, std::slice::from_ref(e)).await?;
        }
        return Ok(true);
    }
    Ok(opt(c, "SELECT 1 FROM keys WHERE key_id = $1", &[&key_id])
        .await?
        .is_some())
}

pub(super) async fn key_by_hash<C: GenericClient>(c: &C, hash: &KeyHash) -> Res<Option<KeyRecord>> {
    let row = opt(
        c,
        &format!("SELECT {KEY_COLS} FROM keys WHERE key_hash = $1"),
        &[&&hash[..]],
    )
    .await?;
    Ok(row.map(|r| build_key(key_row(&r))).transpose()?)
}

pub(super) async fn key_by_id<C: GenericClient>(c: &C, key_id: &str) -> Res<Option<KeyRecord>> {
    let row = opt(
        c,
        &format!("SELECT {KEY_COLS} FROM keys WHERE key_id = $1"),
        &[&key_id],
    )
    .await?;
    Ok(row.map(|r| build_key(key_row(&r))).transpose()?)
}

pub(super) async fn list_keys<C: GenericClient>(c: &C, f: &KeyFilter) -> Res<Vec<KeyRecord>> {
    let limit = i64::try_from(if f.limit == 0 { 1000 } else { f.limit }).unwrap_or(i64::MAX);
    // Only the filters given, so the planner walks `keys_created` / `keys_run_created` in the
    // list's order (`created_at_ms DESC, key_id`) from the cursor and stops at the limit.
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(run_id) = &f.run_id {
        params.push(run_id);
        clauses.push(format!("run_id = ${}", params.len()));
    }
    if let Some(now) = &f.active_at_ms {
        params.push(now);
        clauses.push(format!(
            "revoked_at_ms IS NULL AND expires_at_ms > ${}",
            params.len()
        ));
    }
    if let Some((created_at_ms, key_id)) = &f.after {
        // Strictly after the cursor in the list's order; the leading `<=` (implied by the
        // rest) bounds the index scan.
        params.push(created_at_ms);
        params.push(key_id);
        let (a, b) = (params.len() - 1, params.len());
        clauses.push(format!(
            "created_at_ms <= ${a} AND (created_at_ms < ${a} OR (created_at_ms = ${a} AND key_id > ${b}))"
        ));
    }
    params.push(&limit);
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {KEY_COLS} FROM keys {filter} ORDER BY created_at_ms DESC, key_id LIMIT ${}",
        params.len()
    );
    let found = rows(c, &sql, &params).await?;
    found
        .iter()
        .map(|r| build_key(key_row(r)).map_err(Fail::from))
        .collect()
}

pub(super) async fn recall<C: GenericClient>(
    c: &C,
    key_id: &str,
    object_id: &str,
) -> Res<Option<Remembered>> {
    Ok(opt(
        c,
        "SELECT micros, currency FROM objects WHERE key_id = $1 AND object_id = $2",
        &[&key_id, &object_id],
    )
    .await?
    .map(|r| Remembered {
        micros: r.get(0),
        currency: r.get(1),
    }))
}

pub(super) async fn usage<C: GenericClient>(c: &C, key_id: &str, day: &str) -> Res<Usage> {
    let found = rows(c,
        "SELECT state, SUM(amount)::BIGINT, SUM(CASE WHEN day = $2 THEN amount ELSE 0 END)::BIGINT FROM spends
         WHERE key_id = $1 AND state NOT IN ('none', 'superseded') GROUP BY state",
        &[&key_id, &day],
    )
    .await?;
    Ok(usage_of(
        found
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect(),
    )?)
}

pub(super) async fn audit<C: GenericClient>(c: &C, q: &AuditQuery) -> Res<Vec<AuditRow>> {
    let limit = if q.limit == 0 {
        100
    } else {
        q.limit.min(10_000)
    } as i64;
    // Only the filters given, so the planner walks `audit_key` / `audit_run` (or the primary
    // key) in id order and stops at the limit.
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    let filters: [(&str, Option<&(dyn ToSql + Sync)>); 4] = [
        ("key_id = ", q.key_id.as_ref().map(|v| v as _)),
        ("run_id = ", q.run_id.as_ref().map(|v| v as _)),
        ("time_ms >= ", q.since_ms.as_ref().map(|v| v as _)),
        ("id > ", q.after_id.as_ref().map(|v| v as _)),
    ];
    for (clause, value) in filters {
        if let Some(v) = value {
            params.push(v);
            clauses.push(format!("{clause}${}", params.len()));
        }
    }
    params.push(&limit);
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let order = if q.after_id.is_some() { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT id, time_ms, key_id, run_id, vendor, method, endpoint, decision, status, upstream_status, estimate, cost, money_state, latency_us, upstream_latency_us, idempotency_key, vendor_request_id, message, spend_id
         FROM audit {filter} ORDER BY id {order} LIMIT ${}",
        params.len()
    );
    let found = rows(c, &sql, &params).await?;
    let mut out = Vec::with_capacity(found.len());
    for r in &found {
        let status: i32 = r.get(8);
        let upstream: Option<i32> = r.get(9);
        out.push(AuditRow {
            id: r.get(0),
            time_ms: r.get(1),
            key_id: r.get(2),
            run_id: r.get(3),
            vendor: r.get(4),
            method: r.get(5),
            endpoint: r.get(6),
            decision: r.get(7),
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("audit status {status}")))?,
            upstream_status: upstream.and_then(|s| u16::try_from(s).ok()),
            estimate_micros: r.get(10),
            cost_micros: r.get(11),
            money_state: r.get(12),
            latency_us: r.get(13),
            upstream_latency_us: r.get(14),
            idempotency_key: r.get(15),
            vendor_request_id: r.get(16),
            message: r.get(17),
            spend_id: r.get(18),
        });
    }
    // Newest N for a plain query, oldest-first after a cursor; both returned oldest-first.
    if q.after_id.is_none() {
        out.reverse();
    }
    Ok(out)
}
