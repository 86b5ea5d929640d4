//! The store: keys, the spend ledger, object memory and the audit log.
//!
//! The trait is synchronous on purpose: the gateway calls it through [`AsyncStore`] (inline,
//! queued or on the blocking pool, decided in `face.rs` alone), so an implementation may use
//! a blocking driver, and one with its own runtime (PostgreSQL) answers the queued forms
//! without holding a thread. Each method is one atomic unit (one SQLite transaction; for
//! PostgreSQL one transaction that locks the key's row), which is what keeps the ledger
//! invariant across processes and machines.

use std::time::Duration;

use serde::Serialize;

use crate::alerts::Crossing;
use crate::audit::AuditRow;
use crate::error::StoreError;
use crate::events::NewEvent;
use crate::keys::{KeyHash, KeyRecord};
use crate::ledger::{CapWindow, Caps, MoneyState, Remembered};

mod face;
mod journal;
mod outbox;
#[cfg(feature = "postgres")]
pub mod postgres;
mod rows;
pub mod sqlite;
mod writer;

pub use face::AsyncStore;
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore, Revocation};
pub use sqlite::SqliteStore;

/// Whether `db` names a PostgreSQL database (`postgres://…`, `postgresql://…`) rather than
/// a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Ask for room under the key's caps.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    pub key_id: String,
    /// The UTC day (`YYYY-MM-DD`) the spend is counted in.
    pub day: String,
    pub now_ms: i64,
    /// Estimated cost of the call, µUSD.
    pub estimate: i64,
    /// The vendor object the call acts on: money already counted for it is subtracted.
    pub object_id: Option<String>,
    /// `(Idempotency-Key, fingerprint of method + path + body)`.
    pub idempotency: Option<(String, [u8; 32])>,
    pub max_usd: Option<i64>,
    pub daily_usd_cap: Option<i64>,
    /// The duplicate-action guard: refuse if the key has a call with this action's
    /// fingerprint created at or after `since_ms` that did not end in "nothing moved".
    pub action: Option<ActionGuard>,
    /// The key's `alert_at` thresholds (basis points of each cap): the store records a
    /// `spend.threshold_crossed` event, in the reservation's transaction, for each threshold
    /// (the key's and its budgets') this reservation crosses.
    pub alert_at: Vec<u16>,
    /// Who those events are about, beyond the key id.
    pub about: Option<About>,
}

/// The key's run and vendor, as events name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    pub run_id: Option<String>,
    pub vendor: crate::vendors::Vendor,
}

/// The duplicate-action guard's part of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionGuard {
    pub fingerprint: [u8; 32],
    pub since_ms: i64,
}

impl ReserveRequest {
    pub fn caps(&self) -> Caps {
        Caps {
            max_usd: self.max_usd,
            daily_usd_cap: self.daily_usd_cap,
        }
    }

    /// The events a store records with this reservation when it crosses thresholds.
    pub fn threshold_events(&self, crossed: &[Crossing]) -> Vec<NewEvent> {
        let about = self.about.as_ref();
        let who = crate::events::Subject {
            key_id: &self.key_id,
            run_id: about.and_then(|a| a.run_id.as_deref()),
            vendor: about.map_or("", |a| a.vendor.as_str()),
        };
        crossed
            .iter()
            .map(|c| crate::events::threshold_crossed(self.now_ms, &self.day, who, c))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Room was found; `counted` µUSD now count against the caps. `crossed`: every
    /// `alert_at` threshold (the key's, its budgets') it crossed (their events are stored).
    Reserved {
        spend_id: i64,
        counted: i64,
        crossed: Vec<Crossing>,
    },
    /// The same idempotent request was already counted: forward it, count nothing new.
    Replay { spend_id: i64 },
    /// The same idempotency key is on a call still in flight.
    InFlight,
    /// The key was revoked (or is unknown) when the reservation ran: nothing reserved.
    KeyRevoked,
    /// The key had expired when the reservation ran: nothing reserved.
    KeyExpired,
    /// The idempotency key was used with a different request.
    Conflict,
    /// The same action (see [`ActionGuard`]) was already forwarded within the window: the
    /// first such call's spend and when it was reserved.
    Duplicate { spend_id: i64, at_ms: i64 },
    /// The call would cross a cap: the key's own (`budget: None`) or a budget's.
    OverCap {
        window: CapWindow,
        cap: i64,
        spent: i64,
        budget: Option<String>,
    },
}

/// Caps shared by every key that joins the budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub name: String,
    pub max_usd: Option<i64>,
    pub daily_usd_cap: Option<i64>,
    /// Early-warning thresholds, basis points of each cap.
    pub alert_at: Vec<u16>,
    pub created_at_ms: i64,
}

impl Budget {
    pub fn caps(&self) -> Caps {
        Caps {
            max_usd: self.max_usd,
            daily_usd_cap: self.daily_usd_cap,
        }
    }
}

/// A budget with what its keys have counted and who they are.
#[derive(Debug, Clone)]
pub struct BudgetStatus {
    pub budget: Budget,
    pub usage: Usage,
    pub keys: Vec<String>,
}

/// Settle one reservation with what the vendor's answer says.
#[derive(Debug, Clone)]
pub struct Settle {
    pub spend_id: i64,
    /// The key the reservation belongs to (a store may lock it first).
    pub key_id: String,
    pub state: MoneyState,
    pub cost: i64,
    pub object_id: Option<String>,
    /// The state and cost describe the whole object: earlier records of it are replaced.
    pub authoritative: bool,
}

/// Update what is recorded for an object from a pass-through read.
#[derive(Debug, Clone)]
pub struct Reconcile {
    pub key_id: String,
    pub object_id: String,
    pub state: MoneyState,
    pub cost: i64,
}

/// Everything that happens after the vendor answers (or the request is refused), written in
/// one transaction so the audit row and the ledger never disagree.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    pub settle: Option<Settle>,
    pub reconcile: Option<Reconcile>,
    pub remember: Option<(String, String, Remembered)>,
    pub audit: Option<AuditRow>,
    /// Events the call caused; each is stored (once per dedupe key) with the audit row.
    pub events: Vec<NewEvent>,
}

/// What a key has counted, µUSD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Moved or committed.
    pub spent: i64,
    /// Pending at the vendor or unknown.
    pub pending: i64,
    /// Reserved for calls in flight.
    pub reserved: i64,
    /// Everything counted today (UTC).
    pub today: i64,
    /// Everything counted over the key's life.
    pub total: i64,
}

/// How a webhook's body is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The event itself, `{type, timestamp, data}`, signed (Standard Webhooks).
    Standard,
    /// A Slack incoming-webhook message, `{"text": …}` (still signed).
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Standard => "standard",
            WebhookFormat::Slack => "slack",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(WebhookFormat::Standard),
            "slack" => Some(WebhookFormat::Slack),
            _ => None,
        }
    }
}

/// An operator's endpoint for events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `wh_…`
    pub id: String,
    pub url: String,
    /// `whsec_…`: shown once at creation, then only used to sign.
    pub secret: String,
    /// Event types it receives; empty: every type.
    pub events: Vec<String>,
    pub format: WebhookFormat,
    pub created_at_ms: i64,
    /// Set when the receiver answered 410 Gone: nothing more is sent to it.
    pub disabled: Option<String>,
}

/// One event due at one webhook, claimed by a delivery worker for `lease` (another worker
/// takes it after that, so a killed process delays a delivery but never loses it).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub key_id: Option<String>,
    pub webhook: Webhook,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up: attempts ran out, or the endpoint is gone.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// What one attempt came to, recorded with its audit row in one transaction.
#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    pub delivery_id: i64,
    pub state: DeliveryState,
    /// When to try again (state `Pending`).
    pub next_at_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Disable the webhook with this reason (it answered 410 Gone).
    pub disable: Option<String>,
    pub now_ms: i64,
    pub audit: AuditRow,
}

/// A stored event with how its deliveries stand (`GET /v1/events`).
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub time_ms: i64,
    pub key_id: Option<String>,
    pub payload: String,
    /// `(webhook id, state, attempts, last status)`.
    pub deliveries: Vec<(String, String, i64, Option<i64>)>,
}

#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub run_id: Option<String>,
    /// Only keys neither revoked nor expired at `now_ms`.
    pub active_at_ms: Option<i64>,
    /// Keyset cursor: the `(created_at_ms, key_id)` of the last key of the previous page;
    /// only keys strictly after it in the list's order (`created_at_ms DESC, key_id ASC`).
    pub after: Option<(i64, String)>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub key_id: Option<String>,
    pub run_id: Option<String>,
    pub since_ms: Option<i64>,
    pub after_id: Option<i64>,
    pub limit: usize,
}

/// The answer to a queued write, delivered after its transaction commits.
pub type Queued<T> = tokio::sync::oneshot::Receiver<Result<T, StoreError>>;

pub trait Store: Send + Sync + 'static {
    fn insert_key(&self, record: &KeyRecord, hash: &KeyHash) -> Result<(), StoreError>;
    fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError>;
    fn key_by_id(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// Mark revoked; `false` if no such key. Revoking twice keeps the first time; `event`
    /// is stored with the first revocation only, in its transaction.
    fn revoke(
        &self,
        key_id: &str,
        now_ms: i64,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError>;
    fn list_keys(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError>;
    /// One atomic check of every cap window plus the insert.
    fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, StoreError>;
    fn finish(&self, finish: &Finish) -> Result<(), StoreError>;
    fn recall(&self, key_id: &str, object_id: &str) -> Result<Option<Remembered>, StoreError>;
    /// What a key has counted by state (admin views).
    fn usage(&self, key_id: &str, day: &str) -> Result<Usage, StoreError>;
    /// `(total, today)` counted for a key: what the caps are checked against (hot path).
    fn totals(&self, key_id: &str, day: &str) -> Result<(i64, i64), StoreError>;
    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError>;
    /// Cheap liveness check for `/healthz`.
    fn ping(&self) -> Result<(), StoreError>;
    /// Create a budget; `false` (and nothing changed) if one with its name exists.
    fn insert_budget(&self, budget: &Budget) -> Result<bool, StoreError>;
    /// Every budget, by name.
    fn budgets(&self) -> Result<Vec<Budget>, StoreError>;
    /// A budget with what its keys have counted (by state, and today) and its member keys.
    fn budget_status(&self, name: &str, day: &str) -> Result<Option<BudgetStatus>, StoreError>;
    fn insert_webhook(&self, webhook: &Webhook) -> Result<(), StoreError>;
    /// Every webhook (disabled ones included), oldest first.
    fn webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// Delete a webhook and cancel its pending deliveries; `false` if no such webhook.
    fn delete_webhook(&self, id: &str) -> Result<bool, StoreError>;
    /// Claim up to `limit` deliveries due at `now_ms` for `lease_ms` (counting the attempt).
    fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Record an attempt's outcome and its audit row, in one transaction.
    fn finish_delivery(&self, outcome: &DeliveryOutcome) -> Result<(), StoreError>;
    /// The newest events (by store order), with their deliveries.
    fn events(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;

    /// How long a key row read from this store may be trusted for calls that move no money
    /// (money calls re-read the key inside the reservation whatever this says). SQLite: a
    /// revocation by another process on the same file is seen within the cache's TTL.
    fn key_trust(&self) -> Duration {
        crate::caches::TTL
    }

    /// Call `f` whenever a key may have changed elsewhere (another instance revoked one, or
    /// the store lost its way of hearing about it), so cached keys are dropped.
    fn on_key_change(&self, _f: Box<dyn Fn() + Send + Sync>) {}

    /// Record the audit row of a call that moved no money without waiting for its commit,
    /// once it is safe from a killed process (SQLite: appended to the store's journal).
    /// `Err` hands the row back: record it with `finish`.
    #[allow(clippy::result_large_err)] // Err hands the caller's row back
    fn audit_soon(&self, row: AuditRow) -> Result<(), AuditRow> {
        Err(row)
    }

    /// Store everything still queued and tidy up (SQLite: remove the audit journal once
    /// every row in it is stored). Calls after this still work.
    fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The over-cap refusal a reservation would give, read without writing (inline only if
    /// it needs no waiting). `Some(Ok(None))`: no such refusal now, reserve as usual.
    fn try_refuse_over_cap(
        &self,
        _req: &ReserveRequest,
    ) -> Option<Result<Option<ReserveOutcome>, StoreError>> {
        None
    }

    /// `totals`, answered inline only if it needs no waiting; `None`: call `totals`.
    fn try_totals(&self, _key_id: &str, _day: &str) -> Option<Result<(i64, i64), StoreError>> {
        None
    }

    /// The key lookup, answered inline only if it needs no waiting (a read connection is free
    /// right now); `None` sends the caller to the blocking pool. Saves a thread hand-off on
    /// every request; an implementation without such a fast path keeps the default.
    fn try_key_by_hash(&self, _hash: &KeyHash) -> Option<Result<Option<KeyRecord>, StoreError>> {
        None
    }

    /// `key_by_hash` without holding a thread while it waits. `Err` hands the hash back: use
    /// `key_by_hash`.
    fn key_by_hash_queued(&self, hash: KeyHash) -> Result<Queued<Option<KeyRecord>>, KeyHash> {
        Err(hash)
    }

    /// `reserve` without holding a thread while it waits (SQLite: its writer thread, which
    /// commits many reservations at once). `Err` hands the request back: use `reserve`.
    // The Err side hands the caller's own input back; it is not an error value.
    #[allow(clippy::result_large_err)]
    fn reserve_queued(
        &self,
        req: ReserveRequest,
    ) -> Result<Queued<ReserveOutcome>, ReserveRequest> {
        Err(req)
    }

    /// `finish`, then `totals(key_id, day)` when asked, without holding a thread. `Err`
    /// hands the inputs back: use `finish` and `totals`.
    #[allow(clippy::type_complexity, clippy::result_large_err)]
    fn finish_queued(
        &self,
        finish: Finish,
        totals_for: Option<(String, String)>,
    ) -> Result<Queued<Option<(i64, i64)>>, (Finish, Option<(String, String)>)> {
        Err((finish, totals_for))
    }
}
