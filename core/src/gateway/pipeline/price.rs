//! Price: what the call may cost (the catalogue's class, an operator override, the vendor's
//! cost model, or an amount remembered from an earlier answer), then the reservation of that
//! estimate under the key's caps, in one atomic store operation.

use sha2::{Digest, Sha256};

use super::call::Call;
use crate::audit::format_time_ms;
use crate::caches::CachedKey;
use crate::cost::currency::minor_to_micros;
use crate::cost::{self, Estimate};
use crate::error::{AuthFailure, Error, Result};
use crate::events;
use crate::gateway::shared::utc_day;
use crate::gateway::shared::Shared;
use crate::money::format_usd;
use crate::store::{About, ActionGuard, ReserveOutcome, ReserveRequest};

pub(super) async fn price(s: &Shared, key: &CachedKey, call: &mut Call<'_>) -> Result<()> {
    let Some(estimate) = estimate(s, key, call).await? else {
        return Ok(());
    };
    call.estimate = estimate;
    call.audit.estimate_micros = estimate;
    reserve(s, key, call, estimate).await
}

/// The estimate, µUSD; `None` for a call that moves no money.
async fn estimate(s: &Shared, key: &CachedKey, call: &mut Call<'_>) -> Result<Option<i64>> {
    let vendor = key.record.policy.vendor;
    let priced = cost::price(&s.config.pricing, vendor, &call.view())?;
    if let Some(note) = priced.note {
        call.audit.message = Some(note);
    }
    call.action = priced.action;
    match priced.estimate {
        Estimate::Free => Ok(None),
        Estimate::Priced { micros, object_id } => {
            call.object_id = object_id;
            Ok(Some(micros))
        }
        Estimate::FromMemory {
            lookup,
            amount_minor,
            same_object,
            at_most_remembered,
        } => {
            let remembered = s
                .store
                .recall(&key.record.key_id, &lookup)
                .await?
                .ok_or_else(|| {
                    Error::CannotPrice(format!("no amount is known for {lookup}; create it or GET it through the gateway with this key first"))
                })?;
            let micros = match amount_minor {
                Some(a) => {
                    let asked = minor_to_micros(&s.config.pricing, a, &remembered.currency)
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
            call.object_id = same_object.then_some(lookup);
            Ok(Some(micros))
        }
        Estimate::CannotPrice(why) => Err(Error::CannotPrice(why)),
    }
}

async fn reserve(s: &Shared, key: &CachedKey, call: &mut Call<'_>, estimate: i64) -> Result<()> {
    let key_id = &key.record.key_id;
    let policy = &key.record.policy;
    let now = s.now_ms();
    let window_secs = policy
        .duplicate_window_secs
        .unwrap_or(s.config.duplicate_window.as_secs() as i64);
    let reserve = ReserveRequest {
        key_id: key_id.clone(),
        day: utc_day(now),
        now_ms: now,
        estimate,
        object_id: call.object_id.clone(),
        idempotency: call.audit.idempotency_key.clone().map(|k| {
            let fp = fingerprint(&call.method, &call.path, &call.req.body);
            (k, fp)
        }),
        max_usd: policy.max_usd,
        daily_usd_cap: policy.daily_usd_cap,
        action: call
            .action
            .filter(|_| window_secs > 0)
            .map(|fingerprint| ActionGuard {
                fingerprint,
                since_ms: now - window_secs * 1000,
            }),
        alert_at: policy.alert_at.clone(),
        about: Some(About {
            run_id: key.record.run_id.clone(),
            vendor: policy.vendor,
        }),
    };
    let day = reserve.day.clone();
    // A key refused for its cap a moment ago (a runaway agent's retries) is checked on a read
    // first, without the write lock; other calls skip that read (it cost ~8 % of money-call
    // throughput when done for every call).
    let refused = if s.capped.recent(key_id) {
        s.store.refuse_over_cap(&reserve)?
    } else {
        None
    };
    let outcome = match refused {
        Some(o) => o,
        None => s.store.reserve(reserve).await?,
    };
    let endpoint = format!("{} {}", call.method, call.path);
    match outcome {
        // A threshold this reservation crossed is already recorded, in its transaction.
        ReserveOutcome::Reserved { spend_id, .. } | ReserveOutcome::Replay { spend_id } => {
            call.spend = Some(spend_id);
            Ok(())
        }
        // Another process revoked the key after this one read it: money waits for no cache.
        ReserveOutcome::KeyRevoked => {
            s.keys.forget(key_id);
            Err(Error::Unauthorized(AuthFailure::KeyRevoked))
        }
        ReserveOutcome::KeyExpired => Err(Error::Unauthorized(AuthFailure::KeyExpired)),
        ReserveOutcome::InFlight => Err(Error::DuplicateRequest(
            "a request with this Idempotency-Key is still in flight; wait for its answer".into(),
        )),
        ReserveOutcome::Duplicate { spend_id, at_ms } => {
            if let Some(who) = call.subject() {
                let e = events::duplicate_blocked(now, who, &endpoint, spend_id, at_ms);
                s.push_event(&mut call.events, e);
            }
            Err(Error::DuplicateAction {
            operation: endpoint,
            first_spend: spend_id,
            first_time: format_time_ms(at_ms),
            window: if window_secs % 60 == 0 {
                format!("{}m", window_secs / 60)
            } else {
                format!("{window_secs}s")
            },
        })
        }
        ReserveOutcome::Conflict => Err(Error::DuplicateRequest(
            "this Idempotency-Key was already used with a different request; use a new key for a new request".into(),
        )),
        ReserveOutcome::OverCap {
            window,
            cap,
            spent,
            budget,
        } => {
            s.capped.mark(key_id);
            if let Some(who) = call.subject() {
                let e = events::cap_reached(
                    now,
                    &day,
                    who,
                    budget.as_deref(),
                    window,
                    cap,
                    spent,
                    estimate,
                    &endpoint,
                );
                s.push_event(&mut call.events, e);
            }
            Err(Error::SpendCapExceeded {
                window,
                cap: format_usd(cap),
                spent: format_usd(spent),
                estimate: format_usd(estimate),
                cap_micros: cap,
                spent_micros: spent,
                budget,
            })
        }
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
