//! The gateway: admin operations on keys and the one request pipeline
//! authenticate → canonicalize → allow → estimate → reserve → swap → forward → settle → audit.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::allowlist::{canonical_method, canonicalize_path, METHOD_OVERRIDE_HEADERS};
use crate::audit::{format_time_ms, AuditRow};
use crate::caches::{KeyCache, RecentlyCapped, TotalsCache};
use crate::config::Config;
use crate::cost::currency::minor_to_micros;
use crate::cost::{Estimate, RequestView, ResponseView};
use crate::credentials::{authorization_for, redact_secret, rewrite_twilio_path, vault_key_from};
use crate::error::{AuthFailure, Error, Result, StoreError};
use crate::keys::{
    hash_vault_key, new_key_id, new_vault_key, IssuedKey, KeyRecord, KeySpec, Policy,
};
use crate::ledger::{self, MoneyState};
use crate::metrics::Metrics;
use crate::money::format_usd;
use crate::store::{
    AuditQuery, Finish, KeyFilter, Reconcile, ReserveOutcome, ReserveRequest, Settle, SqliteStore,
    Store, Usage,
};
use crate::upstream;
use crate::vendors::Vendor;

/// Milliseconds since the Unix epoch. Injectable so expiry and day roll-over can be tested.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

/// The UTC calendar day of a timestamp, `YYYY-MM-DD`.
pub fn utc_day(ms: i64) -> String {
    format_time_ms(ms)[..10].to_string()
}

/// One request as the edge received it.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    /// Vendor from a `/{vendor}/` route prefix; `None` takes it from the vault key.
    pub vendor: Option<Vendor>,
    pub method: String,
    /// Raw path (percent-encoded as sent), without the vendor prefix or the query.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A forwarded answer, passed through unchanged plus the gateway's two headers.
#[derive(Debug, Clone)]
pub struct ProxyResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub cost_micros: i64,
    pub remaining_micros: i64,
}

/// A refused request: the error and the vendor whose error shape to answer in.
#[derive(Debug)]
pub struct Refused {
    pub vendor: Option<Vendor>,
    pub error: Error,
}

impl Refused {
    /// Render the refusal as the vendor's own error answer.
    pub fn to_response(&self) -> ProxyResponse {
        let (status, headers, body) = crate::refusal::render(self.vendor, &self.error);
        ProxyResponse {
            status,
            headers,
            body,
            cost_micros: 0,
            remaining_micros: 0,
        }
    }
}

/// A key with what it has counted.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub record: KeyRecord,
    pub usage: Usage,
    pub now_ms: i64,
}

impl KeyStatus {
    pub fn remaining(&self) -> i64 {
        remaining(&self.record.policy, &self.usage)
    }

    pub fn revoked(&self) -> bool {
        self.record.revoked_at_ms.is_some()
    }

    pub fn expired(&self) -> bool {
        self.record.expires_at_ms <= self.now_ms
    }

    pub fn to_json(&self) -> Value {
        let r = &self.record;
        json!({
            "key_id": r.key_id,
            "vendor": r.policy.vendor,
            "run_id": r.run_id,
            "metadata": r.metadata,
            "policy": r.policy.to_json(),
            "created_at": format_time_ms(r.created_at_ms),
            "expires_at": format_time_ms(r.expires_at_ms),
            "revoked": self.revoked(),
            "revoked_at": r.revoked_at_ms.map(format_time_ms),
            "expired": self.expired(),
            "active": !self.revoked() && !self.expired(),
            "spent_usd": format_usd(self.usage.spent),
            "pending_usd": format_usd(self.usage.pending),
            "reserved_usd": format_usd(self.usage.reserved),
            "today_usd": format_usd(self.usage.today),
            "total_usd": format_usd(self.usage.total),
            "remaining_usd": format_usd(self.remaining()),
        })
    }
}

impl IssuedKey {
    /// The answer to "issue a key": the key's status plus the vault key, shown this once.
    pub fn to_json(&self, now_ms: i64) -> Value {
        let mut v = KeyStatus {
            record: self.record.clone(),
            usage: Usage::default(),
            now_ms,
        }
        .to_json();
        v["vault_key"] = json!(self.vault_key);
        v
    }
}

fn vendor_slot(v: Vendor) -> usize {
    match v {
        Vendor::Stripe => 0,
        Vendor::Twilio => 1,
        Vendor::Resend => 2,
    }
}

/// Room left under the tighter of the key's caps (0 for a key with no cap).
fn remaining(policy: &Policy, usage: &Usage) -> i64 {
    ledger::remaining(policy.caps(), usage.total, usage.today)
}

struct Inner {
    config: Config,
    store: Arc<dyn Store>,
    keys: KeyCache,
    totals: TotalsCache,
    capped: RecentlyCapped,
    /// Upstream call slots per vendor (`Config::max_upstream_requests`).
    slots: [tokio::sync::Semaphore; 3],
    clock: Clock,
    metrics: Metrics,
}

/// The gateway. Cheap to clone; all clones share the store, client and metrics.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
    http: reqwest::Client,
}

impl Gateway {
    pub fn new(config: Config, store: Arc<dyn Store>) -> Result<Self> {
        Self::with_clock(config, store, system_clock())
    }

    pub fn with_clock(config: Config, store: Arc<dyn Store>, clock: Clock) -> Result<Self> {
        config.validate()?;
        let http = upstream::build_client(&config);
        let slots = config.max_upstream_requests;
        Ok(Gateway {
            inner: Arc::new(Inner {
                config,
                store,
                keys: KeyCache::default(),
                totals: TotalsCache::default(),
                capped: RecentlyCapped::default(),
                slots: std::array::from_fn(|_| tokio::sync::Semaphore::new(slots)),
                clock,
                metrics: Metrics::default(),
            }),
            http,
        })
    }

    /// A clone sharing everything but the upstream connection pool. A connection is driven
    /// by the runtime that opened it, so a server with one single-threaded runtime per core
    /// gives each runtime its own pool instead of waking another core for every answer.
    pub fn with_own_connections(&self) -> Self {
        Gateway {
            inner: self.inner.clone(),
            http: upstream::build_client(&self.inner.config),
        }
    }

    /// Open a gateway on a local SQLite file.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Self> {
        let store = SqliteStore::open(path)?;
        Self::new(config, Arc::new(store))
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn now_ms(&self) -> i64 {
        (self.inner.clock)()
    }

    /// Run a store operation off the async runtime's worker threads.
    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T> {
        let store = self.inner.store.clone();
        let out = tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        out.map_err(|e| self.store_failed(e))
    }

    fn store_failed(&self, e: StoreError) -> Error {
        self.inner.metrics.store_error();
        tracing::error!(error = %e, "store operation failed");
        Error::Store(e)
    }

    // ---- keys -------------------------------------------------------------------------

    pub async fn issue_key(&self, spec: KeySpec) -> Result<IssuedKey> {
        spec.validate(self.inner.config.max_key_ttl.as_secs() as i64)?;
        let now = self.now_ms();
        let vault_key = new_vault_key();
        let record = KeyRecord {
            key_id: new_key_id(),
            policy: Policy {
                vendor: spec.vendor,
                max_usd: spec.max_usd,
                daily_usd_cap: spec.daily_usd_cap,
                allowed_endpoints: spec.allowed_endpoints,
                stripe_accounts: spec.stripe_accounts,
            },
            run_id: spec.run_id,
            metadata: spec.metadata,
            created_at_ms: now,
            expires_at_ms: now + spec.expires_in_secs * 1000,
            revoked_at_ms: None,
        };
        let hash = hash_vault_key(&vault_key);
        let rec = record.clone();
        self.store(move |s| s.insert_key(&rec, &hash)).await?;
        Ok(IssuedKey { vault_key, record })
    }

    /// Find a key by its id or by the vault key itself.
    async fn find_key(&self, key: &str) -> Result<KeyRecord> {
        let key = key.trim().to_string();
        let found = if key.starts_with(crate::keys::VAULT_KEY_PREFIX) {
            let hash = hash_vault_key(&key);
            self.store(move |s| s.key_by_hash(&hash)).await?
        } else {
            let id = key.clone();
            self.store(move |s| s.key_by_id(&id)).await?
        };
        found.ok_or_else(|| {
            let shown = if key.starts_with(crate::keys::VAULT_KEY_PREFIX) {
                "vk_…".to_string()
            } else {
                key.chars().take(64).collect()
            };
            Error::NotFound(format!("no key {shown}"))
        })
    }

    /// Revoke a key (by key id or vault key). The next request with it gets 401.
    pub async fn revoke(&self, key: &str) -> Result<KeyRecord> {
        let rec = self.find_key(key).await?;
        let now = self.now_ms();
        let id = rec.key_id.clone();
        self.store(move |s| s.revoke(&id, now)).await?;
        self.inner.keys.forget(&rec.key_id);
        tracing::info!(key_id = %rec.key_id, "key revoked");
        Ok(KeyRecord {
            revoked_at_ms: rec.revoked_at_ms.or(Some(now)),
            ..rec
        })
    }

    pub async fn key_status(&self, key: &str) -> Result<KeyStatus> {
        let record = self.find_key(key).await?;
        let now = self.now_ms();
        let day = utc_day(now);
        let id = record.key_id.clone();
        let usage = self.store(move |s| s.usage(&id, &day)).await?;
        Ok(KeyStatus {
            record,
            usage,
            now_ms: now,
        })
    }

    pub async fn list_keys(
        &self,
        run_id: Option<String>,
        active_only: bool,
        limit: usize,
    ) -> Result<Vec<KeyStatus>> {
        let now = self.now_ms();
        let filter = KeyFilter {
            run_id,
            active_at_ms: active_only.then_some(now),
            limit,
        };
        let day = utc_day(now);
        self.store(move |s| {
            let keys = s.list_keys(&filter)?;
            keys.into_iter()
                .map(|record| {
                    let usage = s.usage(&record.key_id, &day)?;
                    Ok(KeyStatus {
                        record,
                        usage,
                        now_ms: now,
                    })
                })
                .collect()
        })
        .await
    }

    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditRow>> {
        self.store(move |s| s.audit(&query)).await
    }

    /// Store everything still queued (audit rows answered before their commit) and tidy
    /// the store; for a clean stop. The gateway keeps working afterwards.
    pub async fn close(&self) -> Result<()> {
        self.store(|s| s.close()).await
    }

    pub async fn health(&self) -> Result<()> {
        self.store(|s| s.ping()).await
    }

    // ---- the pipeline -----------------------------------------------------------------

    /// Run one request through the pipeline. Every request that reaches here gets exactly
    /// one audit row, refusals included.
    pub async fn process(&self, req: ProxyRequest) -> Result<ProxyResponse, Refused> {
        let started = Instant::now();
        let mut audit = AuditRow {
            time_ms: self.now_ms(),
            vendor: req.vendor.map(|v| v.as_str().to_string()),
            method: req.method.chars().take(16).collect(),
            endpoint: req.path.chars().take(256).collect(),
            idempotency_key: header(&req.headers, "idempotency-key")
                .map(|s| s.chars().take(255).collect()),
            ..AuditRow::default()
        };
        let mut ctx = Ctx {
            vendor: req.vendor,
            spend: None,
            estimate: 0,
            key_id: None,
            policy: None,
        };
        let result = self.run(&req, &mut audit, &mut ctx).await;
        audit.latency_us = started.elapsed().as_micros() as i64;
        match result {
            Ok((mut resp, mut finish)) => {
                self.inner
                    .metrics
                    .record(audit.vendor.as_deref(), "forwarded", audit.latency_us);
                finish.audit = Some(audit);
                // A call that moved money: settle, audit and the usage behind
                // Vendorgate-Remaining-Usd in one trip, answered after its commit.
                let (key_id, policy) = (ctx.key_id.unwrap_or_default(), ctx.policy);
                let day = utc_day(self.now_ms());
                let usage = match self.moved_nothing(finish) {
                    // Nothing to settle: the row is safe in the journal; the header shows
                    // the key's totals as last seen (at most `key_cache::TTL` old).
                    Ok(()) => match self.inner.totals.get(&key_id, &day) {
                        Some(t) => Ok(Some(t)),
                        None => {
                            let read = match self.inner.store.try_totals(&key_id, &day) {
                                Some(r) => r.map_err(|e| self.store_failed(e)),
                                None => {
                                    let (k, d) = (key_id.clone(), day.clone());
                                    self.store(move |s| s.totals(&k, &d)).await
                                }
                            };
                            read.inspect(|t| self.inner.totals.put(&key_id, &day, *t))
                                .map(Some)
                        }
                    },
                    Err(finish) => {
                        let (k, d) = (key_id.clone(), day.clone());
                        let done = self.finish(finish, Some((k, d))).await;
                        if let Ok(Some(t)) = &done {
                            self.inner.totals.put(&key_id, &day, *t);
                        }
                        done
                    }
                };
                // A failed write leaves any reservation counted (state `reserved`), which can
                // only over-count; the vendor's answer still goes back to the agent.
                if let (Ok(Some((total, today))), Some(policy)) = (usage, policy) {
                    let u = Usage {
                        total,
                        today,
                        ..Usage::default()
                    };
                    resp.remaining_micros = remaining(&policy, &u);
                    insert_usd(
                        &mut resp.headers,
                        "vendorgate-remaining-usd",
                        resp.remaining_micros,
                    );
                }
                Ok(resp)
            }
            Err(error) => {
                audit.decision = error.reason().to_string();
                audit.status = error.http_status();
                audit.message = Some(error.to_string());
                audit.vendor = ctx.vendor.map(|v| v.as_str().to_string());
                audit.estimate_micros = ctx.estimate;
                self.inner.metrics.record(
                    audit.vendor.as_deref(),
                    error.reason(),
                    audit.latency_us,
                );
                let mut finish = Finish {
                    audit: Some(audit),
                    ..Finish::default()
                };
                if let Error::Upstream { kind, .. } = &error {
                    if let Some(spend_id) = ctx.spend {
                        // Nothing left the gateway: release. Anything else: keep it counted.
                        let state = if *kind == crate::error::UpstreamFailure::ConnectFailed {
                            MoneyState::None
                        } else {
                            MoneyState::Unknown
                        };
                        finish.settle = Some(Settle {
                            spend_id,
                            state,
                            cost: 0,
                            object_id: None,
                            authoritative: false,
                        });
                        if let Some(a) = finish.audit.as_mut() {
                            a.money_state = Some(state.as_str().to_string());
                            a.cost_micros = if state == MoneyState::Unknown {
                                ctx.estimate
                            } else {
                                0
                            };
                        }
                    }
                }
                self.finish_or_log(finish).await;
                Err(Refused {
                    vendor: ctx.vendor.or_else(|| Vendor::guess_from_path(&req.path)),
                    error,
                })
            }
        }
    }

    async fn finish_or_log(&self, finish: Finish) {
        // Failures are logged; a reservation left `reserved` only over-counts.
        if let Err(finish) = self.moved_nothing(finish) {
            let _ = self.finish(finish, None).await;
        }
    }

    /// A call with nothing to settle, reconcile or remember needs only its audit row, and
    /// that row need not be committed before the answer: the store journals it (safe from a
    /// killed process) and commits it with a later batch. `Err` hands the work back.
    // The Err side hands the caller's own input back; it is not an error value.
    #[allow(clippy::result_large_err)]
    fn moved_nothing(&self, mut finish: Finish) -> std::result::Result<(), Finish> {
        if finish.settle.is_some() || finish.reconcile.is_some() || finish.remember.is_some() {
            return Err(finish);
        }
        let Some(row) = finish.audit.take() else {
            return Ok(());
        };
        self.inner.store.audit_soon(row).map_err(|row| {
            finish.audit = Some(row);
            finish
        })
    }

    /// Settle + audit (and read the key's totals when asked) in one store transaction,
    /// through the store's write queue when it has one.
    async fn finish(
        &self,
        finish: Finish,
        totals_for: Option<(String, String)>,
    ) -> Result<Option<(i64, i64)>> {
        match self.inner.store.finish_queued(finish, totals_for) {
            Ok(rx) => self.queued(rx).await,
            Err((finish, totals_for)) => {
                self.store(move |s| {
                    s.finish(&finish)?;
                    totals_for.map(|(k, d)| s.totals(&k, &d)).transpose()
                })
                .await
            }
        }
    }

    /// Await a queued store write.
    async fn queued<T>(&self, rx: crate::store::Queued<T>) -> Result<T> {
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Task("the store dropped a queued write".into())))
            .map_err(|e| self.store_failed(e))
    }

    async fn run(
        &self,
        req: &ProxyRequest,
        audit: &mut AuditRow,
        ctx: &mut Ctx,
    ) -> Result<(ProxyResponse, Finish)> {
        let cfg = &self.inner.config;

        // authenticate
        let vault_key =
            vault_key_from(&req.headers).ok_or(Error::Unauthorized(AuthFailure::Missing))?;
        let hash = hash_vault_key(&vault_key);
        let cached = match self.inner.keys.get(&hash) {
            Some(k) => k,
            None => {
                let generation = self.inner.keys.generation();
                let found = match self.inner.store.try_key_by_hash(&hash) {
                    Some(r) => r.map_err(|e| self.store_failed(e))?,
                    None => self.store(move |s| s.key_by_hash(&hash)).await?,
                };
                let record = found.ok_or(Error::Unauthorized(AuthFailure::UnknownKey))?;
                self.inner.keys.insert(hash, record, generation)?
            }
        };
        let key = &*cached.record;
        audit.key_id = Some(key.key_id.clone());
        audit.run_id = key.run_id.clone();
        let vendor = key.policy.vendor;
        let routed = ctx.vendor;
        // Refusals answer in the routed vendor's shape, else the key's.
        ctx.vendor = Some(routed.unwrap_or(vendor));
        audit.vendor = Some(vendor.as_str().to_string());
        if key.revoked_at_ms.is_some() {
            return Err(Error::Unauthorized(AuthFailure::KeyRevoked));
        }
        if key.expires_at_ms <= self.now_ms() {
            return Err(Error::Unauthorized(AuthFailure::KeyExpired));
        }
        if let Some(routed) = routed {
            if routed != vendor {
                return Err(Error::EndpointNotAllowed {
                    method: req.method.clone(),
                    path: format!("/{routed}{} (this key is for {vendor})", req.path),
                });
            }
        }
        if req.body.len() > cfg.max_body_bytes {
            return Err(Error::BodyTooLarge {
                size: req.body.len(),
                limit: cfg.max_body_bytes,
            });
        }

        // canonicalize
        if let Some(h) = METHOD_OVERRIDE_HEADERS
            .iter()
            .find(|h| req.headers.contains_key(**h))
        {
            return Err(Error::BadRequest(format!(
                "the {h} header is refused: send the real method instead"
            )));
        }
        let method = canonical_method(&req.method)?;
        let path = canonicalize_path(&req.path)?;
        audit.method = method.clone();
        audit.endpoint = path.clone();
        let query = req.query.as_deref().filter(|q| !q.is_empty());
        if query.is_some() && matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            return Err(Error::BadRequest(format!(
                "{method} parameters must be in the body, not the query string"
            )));
        }

        // allow
        if !cached.allowlist.allows(&method, &path) {
            return Err(Error::EndpointNotAllowed { method, path });
        }
        for h in ["stripe-account", "stripe-context"] {
            if let Some(acct) = header(&req.headers, h) {
                if !key.policy.stripe_accounts.iter().any(|a| a == acct) {
                    return Err(Error::EndpointNotAllowed {
                        method,
                        path: format!("{path} as {h} {acct}"),
                    });
                }
            }
        }
        let upstream = cfg.upstream(vendor);
        let creds = upstream
            .credentials
            .as_ref()
            .ok_or(Error::VendorNotConfigured(vendor))?;

        // estimate
        let view = RequestView {
            method: &method,
            path: &path,
            query,
            content_type: header(&req.headers, "content-type"),
            body: &req.body,
        };
        let model = vendor.model();
        // price: the catalogue's class (or an operator override), then the cost model
        let priced = crate::cost::price(&cfg.pricing, vendor, &view)?;
        if let Some(note) = priced.note {
            audit.message = Some(note);
        }
        let (estimate, object_id) = match priced.estimate {
            Estimate::Free => (None, None),
            Estimate::Priced { micros, object_id } => (Some(micros), object_id),
            Estimate::FromMemory {
                lookup,
                amount_minor,
                same_object,
                at_most_remembered,
            } => {
                let key_id = key.key_id.clone();
                let obj = lookup.clone();
                let remembered = self.store(move |s| s.recall(&key_id, &obj)).await?.ok_or_else(|| {
                    Error::CannotPrice(format!("no amount is known for {lookup}; create it or GET it through the gateway with this key first"))
                })?;
                let micros = match amount_minor {
                    Some(a) => {
                        let asked = minor_to_micros(&cfg.pricing, a, &remembered.currency)
                            .ok_or_else(|| {
                                Error::CannotPrice(format!(
                                    "currency {} has no FX rate",
                                    remembered.currency
                                ))
                            })?;
                        if at_most_remembered {
                            asked.min(remembered.micros)
                        } else {
                            asked
                        }
                    }
                    None => remembered.micros,
                };
                (Some(micros), same_object.then_some(lookup))
            }
            Estimate::CannotPrice(why) => return Err(Error::CannotPrice(why)),
        };
        ctx.estimate = estimate.unwrap_or(0);
        audit.estimate_micros = ctx.estimate;

        // reserve
        if let Some(estimate) = estimate {
            let idempotency = audit
                .idempotency_key
                .clone()
                .map(|k| (k, fingerprint(&method, &path, &req.body)));
            let now = self.now_ms();
            let reserve = ReserveRequest {
                key_id: key.key_id.clone(),
                day: utc_day(now),
                now_ms: now,
                estimate,
                object_id: object_id.clone(),
                idempotency,
                max_usd: key.policy.max_usd,
                daily_usd_cap: key.policy.daily_usd_cap,
            };
            // A key refused for its cap a moment ago (a runaway agent's retries) is checked
            // on a read first, without the write lock; other calls skip that read (it cost
            // ~8 % of money-call throughput when done for every call).
            let refused = if self.inner.capped.recent(&key.key_id) {
                match self.inner.store.try_refuse_over_cap(&reserve) {
                    Some(r) => r.map_err(|e| self.store_failed(e))?,
                    None => None,
                }
            } else {
                None
            };
            let outcome = match refused {
                Some(o) => o,
                None => match self.inner.store.reserve_queued(reserve) {
                    Ok(rx) => self.queued(rx).await?,
                    Err(reserve) => self.store(move |s| s.reserve(&reserve)).await?,
                },
            };
            match outcome {
                ReserveOutcome::Reserved { spend_id, .. } | ReserveOutcome::Replay { spend_id } => ctx.spend = Some(spend_id),
                // Another process revoked the key after this one read it: money waits for no cache.
                ReserveOutcome::KeyRevoked => {
                    self.inner.keys.forget(&key.key_id);
                    return Err(Error::Unauthorized(AuthFailure::KeyRevoked));
                }
                ReserveOutcome::KeyExpired => return Err(Error::Unauthorized(AuthFailure::KeyExpired)),
                ReserveOutcome::InFlight => return Err(Error::DuplicateRequest("a request with this Idempotency-Key is still in flight; wait for its answer".into())),
                ReserveOutcome::Conflict => {
                    return Err(Error::DuplicateRequest("this Idempotency-Key was already used with a different request; use a new key for a new request".into()))
                }
                ReserveOutcome::OverCap { window, cap, spent } => {
                    self.inner.capped.mark(&key.key_id);
                    return Err(Error::SpendCapExceeded {
                        window,
                        cap: format_usd(cap),
                        spent: format_usd(spent),
                        estimate: format_usd(estimate),
                        cap_micros: cap,
                        spent_micros: spent,
                    })
                }
            }
        }

        // swap
        let upstream_path = if vendor == Vendor::Twilio {
            rewrite_twilio_path(&path, creds)
        } else {
            path.clone()
        };
        let mut url =
            String::with_capacity(upstream.base_url.as_str().len() + upstream_path.len() + 64);
        url.push_str(upstream.base_url.as_str().trim_end_matches('/'));
        url.push_str(&upstream_path);
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        let mut headers = upstream::forwardable_request_headers(&req.headers);
        headers.insert(http::header::AUTHORIZATION, authorization_for(creds));
        let http_method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| Error::BadRequest(format!("method {method} is not valid")))?;

        // forward, once one of the vendor's call slots is free
        let slot = self.inner.slots[vendor_slot(vendor)].acquire();
        let Ok(Ok(_slot)) = tokio::time::timeout(cfg.request_timeout, slot).await else {
            return Err(Error::Upstream {
                vendor,
                kind: crate::error::UpstreamFailure::ConnectFailed,
                detail: format!(
                    "all {} upstream call slots stayed busy for {} ms (max_upstream_requests); nothing was sent",
                    cfg.max_upstream_requests,
                    cfg.request_timeout.as_millis()
                ),
            });
        };
        let answer = match upstream::send(
            &self.http,
            http_method,
            &url,
            headers,
            req.body.clone(),
            cfg.max_response_bytes,
        )
        .await
        {
            Ok(a) => a,
            Err(e) => {
                audit.upstream_status = e.status;
                audit.upstream_latency_us = Some(e.latency.as_micros() as i64);
                tracing::warn!(vendor = %vendor, endpoint = %path, kind = ?e.kind, detail = %e.detail, "upstream failure");
                return Err(Error::Upstream {
                    vendor,
                    kind: e.kind,
                    detail: e.detail,
                });
            }
        };
        audit.upstream_status = Some(answer.status);
        audit.upstream_latency_us = Some(answer.latency.as_micros() as i64);
        audit.vendor_request_id = upstream::vendor_request_id(&answer.headers);

        // settle
        let outcome = model.settle(
            &cfg.pricing,
            &view,
            ctx.estimate,
            &ResponseView {
                status: answer.status,
                body: &answer.body,
            },
        );
        let mut finish = Finish::default();
        let object = outcome.object.as_ref();
        if let Some(spend_id) = ctx.spend {
            finish.settle = Some(Settle {
                spend_id,
                state: outcome.state,
                cost: outcome.cost_micros,
                object_id: object.map(|o| o.id.clone()).or(object_id),
                authoritative: object.is_some_and(|o| o.authoritative),
            });
            audit.money_state = Some(outcome.state.as_str().to_string());
            audit.cost_micros = if outcome.state == MoneyState::Unknown {
                ctx.estimate
            } else if outcome.state.counts() {
                outcome.cost_micros
            } else {
                0
            };
        } else if let Some(o) = object.filter(|o| o.authoritative) {
            // A pass-through read or a free call that tells us where an object stands.
            finish.reconcile = Some(Reconcile {
                key_id: key.key_id.clone(),
                object_id: o.id.clone(),
                state: outcome.state,
                cost: outcome.cost_micros,
            });
        }
        if let Some(o) = object {
            if let Some(m) = &o.remember {
                finish.remember = Some((key.key_id.clone(), o.id.clone(), m.clone()));
            }
        }
        audit.decision = "forwarded".into();
        audit.status = answer.status;

        let mut headers = upstream::passable_response_headers(&answer.headers);
        insert_usd(&mut headers, "vendorgate-cost-usd", audit.cost_micros);
        let resp = ProxyResponse {
            status: answer.status,
            headers,
            body: redact_secret(answer.body, creds),
            cost_micros: audit.cost_micros,
            remaining_micros: 0,
        };
        ctx.policy = Some(key.policy.clone());
        ctx.key_id = Some(key.key_id.clone());
        Ok((resp, finish))
    }
}

/// What the pipeline learned on the way, needed after it returns.
struct Ctx {
    vendor: Option<Vendor>,
    spend: Option<i64>,
    estimate: i64,
    key_id: Option<String>,
    policy: Option<Policy>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn insert_usd(h: &mut HeaderMap, name: &'static str, micros: i64) {
    if let Ok(v) = HeaderValue::from_str(&format_usd(micros)) {
        h.insert(name, v);
    }
}

/// What makes two requests "the same" for idempotency: method, canonical path and body bytes.
fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().into()
}
