//! Settle: the vendor's cost model reads the answer and says what moved; that becomes the
//! settlement of the reservation (or a reconciliation of an object a free call read, or an
//! amount to remember), and the answer goes back with `Vendorgate-Cost-Usd`.

use http::{HeaderMap, HeaderValue};

use super::call::Call;
use crate::caches::CachedKey;
use crate::config::Credentials;
use crate::cost::ResponseView;
use crate::credentials::redact_secret;
use crate::events;
use crate::gateway::shared::Shared;
use crate::ledger::{counted_cost, MoneyState};
use crate::money::format_usd;
use crate::store::{Finish, Reconcile, Settle};
use crate::upstream::{self, UpstreamAnswer};

use crate::gateway::request::ProxyResponse;

pub(super) fn settle(
    s: &Shared,
    key: &CachedKey,
    creds: &Credentials,
    call: &mut Call<'_>,
    answer: UpstreamAnswer,
) -> (ProxyResponse, Finish) {
    let key_id = &key.record.key_id;
    let model = key.record.policy.vendor.model();
    let outcome = model.settle(
        &s.config.pricing,
        &call.view(),
        call.estimate,
        &ResponseView {
            status: answer.status,
            body: &answer.body,
        },
    );
    let mut finish = Finish::default();
    let object = outcome.object.as_ref();
    if let Some(spend_id) = call.spend {
        finish.settle = Some(Settle {
            spend_id,
            key_id: call
                .key
                .as_ref()
                .map(|(k, _)| k.clone())
                .unwrap_or_default(),
            state: outcome.state,
            cost: outcome.cost_micros,
            object_id: object.map(|o| o.id.clone()).or(call.object_id.take()),
            authoritative: object.is_some_and(|o| o.authoritative),
        });
        call.audit.money_state = Some(outcome.state.as_str().to_string());
        call.audit.cost_micros = counted_cost(outcome.state, outcome.cost_micros, call.estimate);
        if outcome.state == MoneyState::Unknown {
            let counted = call.audit.cost_micros;
            if let Some(who) = call.subject() {
                let e = events::spend_unknown(
                    s.now_ms(),
                    who,
                    spend_id,
                    &format!("{} {}", call.method, call.path),
                    counted,
                    "the vendor's answer does not say what moved; counted at the estimate",
                );
                s.push_event(&mut call.events, e);
            }
        }
    } else if let Some(o) = object.filter(|o| o.authoritative) {
        // A pass-through read or a free call that tells us where an object stands.
        finish.reconcile = Some(Reconcile {
            key_id: key_id.clone(),
            object_id: o.id.clone(),
            state: outcome.state,
            cost: outcome.cost_micros,
        });
    }
    if let Some(o) = object {
        if let Some(m) = &o.remember {
            finish.remember = Some((key_id.clone(), o.id.clone(), m.clone()));
        }
    }
    call.audit.decision = "forwarded".into();
    call.audit.status = answer.status;

    let mut headers = upstream::passable_response_headers(&answer.headers);
    insert_usd(&mut headers, "vendorgate-cost-usd", call.audit.cost_micros);
    let resp = ProxyResponse {
        status: answer.status,
        headers,
        body: redact_secret(answer.body, creds),
        cost_micros: call.audit.cost_micros,
        remaining_micros: 0,
    };
    (resp, finish)
}

pub(super) fn insert_usd(h: &mut HeaderMap, name: &'static str, micros: i64) {
    if let Ok(v) = HeaderValue::from_str(&format_usd(micros)) {
        h.insert(name, v);
    }
}
