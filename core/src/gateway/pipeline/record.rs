//! Record: the one step that always runs. It alone decides the money state of a failed call,
//! writes the audit row (with the settlement, in one transaction), and adds the
//! `Vendorgate-Remaining-Usd` header to a forwarded answer.

use super::call::Call;
use super::settle::insert_usd;
use crate::error::{Error, Result, UpstreamFailure};
use crate::events::{self, Subject};
use crate::gateway::request::{ProxyResponse, Refused};
use crate::gateway::shared::utc_day;
use crate::gateway::shared::Shared;
use crate::ledger::{self, counted_cost, state_of_failure, MoneyState};
use crate::store::{Finish, Settle};
use crate::vendors::Vendor;

pub(super) async fn record(
    s: &Shared,
    mut call: Call<'_>,
    outcome: Result<(ProxyResponse, Finish)>,
) -> Result<ProxyResponse, Refused> {
    call.audit.latency_us = call.started.elapsed().as_micros() as i64;
    match outcome {
        Ok((resp, finish)) => Ok(forwarded(s, call, resp, finish).await),
        Err(error) => Err(refused(s, call, error).await),
    }
}

async fn forwarded(
    s: &Shared,
    call: Call<'_>,
    mut resp: ProxyResponse,
    mut finish: Finish,
) -> ProxyResponse {
    let mut audit = call.audit;
    audit.spend_id = call.spend;
    s.metrics.record_call(&audit);
    finish.audit = Some(audit);
    finish.events = call.events;
    let Some((key_id, caps)) = call.key else {
        return resp;
    };
    let day = utc_day(s.now_ms());
    // A call that moved money: settle, audit and the totals behind the header in one trip,
    // answered after its commit. One that moved nothing: its row is safe in the journal, and
    // the header shows the key's totals as last seen (at most `caches::TTL` old).
    // A failed write leaves any reservation counted (state `reserved`), which can only
    // over-count; the vendor's answer still goes back to the agent, without the header.
    // Totals read from the store are kept for the next free call; a cached value is not
    // kept again (that would stretch its age past `caches::TTL`).
    let fresh = |t: (i64, i64)| {
        s.totals.put(&key_id, &day, t);
        t
    };
    let totals = match moved_nothing(s, finish) {
        Ok(()) => match s.totals.get(&key_id, &day) {
            Some(t) => Some(t),
            None => s.store.totals(&key_id, &day).await.ok().map(fresh),
        },
        Err(finish) => {
            let stored = dedupe_keys(&finish);
            let out = s
                .store
                .finish(finish, Some((key_id.clone(), day.clone())))
                .await;
            if out.is_ok() {
                s.stored_events.add(stored.iter().map(String::as_str));
            }
            out.ok().flatten().map(fresh)
        }
    };
    if let Some((total, today)) = totals {
        resp.remaining_micros = ledger::remaining(caps, total, today);
        insert_usd(
            &mut resp.headers,
            "vendorgate-remaining-usd",
            resp.remaining_micros,
        );
    }
    resp
}

async fn refused(s: &Shared, mut call: Call<'_>, error: Error) -> Refused {
    let events = std::mem::take(&mut call.events);
    let subject = call.subject().map(|w| {
        (
            w.key_id.to_string(),
            w.run_id.map(str::to_string),
            w.vendor.to_string(),
        )
    });
    let endpoint = format!("{} {}", call.audit.method, call.audit.endpoint);
    let mut audit = call.audit;
    audit.decision = error.reason().to_string();
    audit.status = error.http_status();
    audit.message = Some(error.to_string());
    audit.vendor = call.shape.map(|v| v.as_str().to_string());
    audit.estimate_micros = call.estimate;
    audit.spend_id = call.spend;
    let mut finish = Finish::default();
    if let (Error::Upstream { kind, .. }, Some(spend_id)) = (&error, call.spend) {
        // Nothing left the gateway: release. Anything else: keep it counted.
        let state = state_of_failure(*kind == UpstreamFailure::ConnectFailed);
        finish.settle = Some(Settle {
            spend_id,
            key_id: call
                .key
                .as_ref()
                .map(|(k, _)| k.clone())
                .unwrap_or_default(),
            state,
            cost: 0,
            object_id: None,
            authoritative: false,
        });
        audit.money_state = Some(state.as_str().to_string());
        audit.cost_micros = counted_cost(state, 0, call.estimate);
        if let (MoneyState::Unknown, Some((key_id, run_id, vendor))) = (state, &subject) {
            let who = Subject {
                key_id,
                run_id: run_id.as_deref(),
                vendor,
            };
            let e = events::spend_unknown(
                s.now_ms(),
                who,
                spend_id,
                &endpoint,
                audit.cost_micros,
                &error.to_string(),
            );
            s.push_event(&mut finish.events, e);
        }
    }
    finish.events.extend(events);
    s.metrics.record_call(&audit);
    finish.audit = Some(audit);
    // Failures are logged by the store face; a reservation left `reserved` only over-counts.
    if let Err(finish) = moved_nothing(s, finish) {
        let stored = dedupe_keys(&finish);
        if s.store.finish(finish, None).await.is_ok() {
            s.stored_events.add(stored.iter().map(String::as_str));
        }
    }
    Refused {
        vendor: call
            .shape
            .or_else(|| Vendor::guess_from_path(&call.req.path)),
        error,
    }
}

/// The dedupe keys of the events a finish stores (remembered once it committed).
fn dedupe_keys(finish: &Finish) -> Vec<String> {
    finish
        .events
        .iter()
        .filter_map(|e| e.dedupe.clone())
        .collect()
}

/// A call with nothing to settle, reconcile or remember needs only its audit row, and that
/// row need not be committed before the answer: the store journals it (safe from a killed
/// process) and commits it with a later batch. `Err` hands the work back.
#[allow(clippy::result_large_err)] // Err hands the caller's own input back
fn moved_nothing(s: &Shared, mut finish: Finish) -> std::result::Result<(), Finish> {
    if finish.settle.is_some()
        || finish.reconcile.is_some()
        || finish.remember.is_some()
        || !finish.events.is_empty()
    {
        return Err(finish);
    }
    let Some(row) = finish.audit.take() else {
        return Ok(());
    };
    s.store.audit_soon(row).map_err(|row| {
        finish.audit = Some(row);
        finish
    })
}
