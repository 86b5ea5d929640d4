//! An offline simulator of the Stripe, Twilio and Resend APIs: the upstream of `vendorgate demo`,
//! `vendorgate sim`, `vendorgate serve --upstream sim` and the end-to-end tests.
//!
//! It imports nothing from the `vendorgate` core crate, on purpose: it is an independent oracle
//! of the vendors' behaviour (their shapes, errors, idempotency and prices), written apart from
//! the gateway's cost models and catalogue, so a test that checks the gateway against it checks
//! two readings of the vendors' documentation against each other, not one against itself.
//!
//! One router serves the three vendors, each under a prefix (`/stripe/v1/…`,
//! `/twilio/2010-04-01/…`, `/resend/emails…`) and unprefixed (`/v1/…`, `/2010-04-01/…`,
//! `/emails…`). It checks each vendor's credential, answers in the vendor's shapes and error
//! shapes, and keeps the objects it created in memory, so a later GET, confirm, capture or
//! refund sees them.
//!
//! Every request, rejected ones included, is recorded ([`SimState::seen`], `GET /__sim/seen`);
//! `POST /__sim/reset` forgets requests and objects. Neither needs a credential.
//!
//! Fault injection: a request header `X-Sim-Fault` makes the simulator first handle the request
//! normally (objects are created, an idempotent answer is saved) and then spoil the answer:
//!
//! | value       | what the client gets                                                    |
//! |-------------|-------------------------------------------------------------------------|
//! | `reset`     | the connection closes with no response at all                          |
//! | `timeout`   | the normal answer, after 30 s                                           |
//! | `slow-body` | the normal status and headers at once, the body 30 s later              |
//! | `500`       | 500 with the vendor's error shape                                       |
//! | `malformed` | 200 `application/json` with the body `{not json`                        |
//! | `huge`      | 200 `application/json` with a 20 MiB (valid JSON) body                   |
//! | `html`      | 200 `text/html` `<html>oops</html>`                                     |
//!
//! The credentials it accepts live in `sim/credentials.json` (see [`credentials()`]), the one
//! copy that the Python and Node harnesses read too.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::faults::inject_fault;
use crate::plumbing::{header, split_vendor, Call, Reply, Vendor};
use crate::resend::resend;
use crate::stripe::stripe;
use crate::twilio::twilio;
use crate::world::World;

mod credentials;
mod faults;
mod ids;
mod plumbing;
mod resend;
mod stripe;
mod twilio;
mod world;

pub use credentials::{
    credentials, gateway_env, resend_key, stripe_key, twilio_account_sid, twilio_auth_token,
    SimCredentials, CREDENTIALS_JSON,
};

/// Larger request bodies are refused before anything else happens.
const MAX_REQUEST_BODY: usize = 16 << 20;

/// The simulator's memory: the requests it saw and the objects it created. Cheap to clone.
#[derive(Clone, Default)]
pub struct SimState {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    seen: Mutex<Vec<SeenRequest>>,
    world: Mutex<World>,
}

/// One request as the simulator received it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SeenRequest {
    /// `stripe`, `twilio`, `resend`, or `unknown` for a path no vendor serves.
    pub vendor: String,
    pub method: String,
    /// The vendor path (a `/stripe`, `/twilio` or `/resend` prefix removed), with `?query` if any.
    pub path: String,
    /// The `Authorization` header exactly as received.
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    /// The request body (lossy UTF-8).
    pub body: String,
}

impl SimState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every request received since the start (or the last reset), oldest first.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.inner.seen.lock().clone()
    }

    /// Forget all requests and objects.
    pub fn reset(&self) {
        self.inner.seen.lock().clear();
        *self.inner.world.lock() = World::default();
    }
}

/// All three vendors on one router; see the crate docs.
pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/__sim/seen", get(seen_handler))
        .route("/__sim/reset", post(reset_handler))
        .fallback(handle)
        .with_state(state)
}

async fn seen_handler(State(state): State<SimState>) -> Json<Vec<SeenRequest>> {
    Json(state.seen())
}

async fn reset_handler(State(state): State<SimState>) -> Json<Value> {
    state.reset();
    Json(json!({ "reset": true }))
}

// ---------------------------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------------------------

async fn handle(State(state): State<SimState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BODY).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "vendorgate sim: request body too large",
        )
            .into_response();
    };
    let (vendor, path) = split_vendor(parts.uri.path());
    state.inner.seen.lock().push(SeenRequest {
        vendor: vendor.map_or("unknown", Vendor::name).to_string(),
        method: parts.method.to_string(),
        path: match parts.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_string(),
        },
        authorization: header(&parts.headers, "authorization"),
        idempotency_key: header(&parts.headers, "idempotency-key"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let Some(vendor) = vendor else {
        let message = "vendorgate sim serves /stripe/v1/…, /twilio/2010-04-01/…, /resend/emails… \
                       (or the same paths without the prefix)";
        return Reply::new(StatusCode::NOT_FOUND, json!({ "error": message })).into_response();
    };
    let call = Call {
        method: &parts.method,
        path,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    let reply = respond(&state, vendor, &call);
    match header(&parts.headers, "x-sim-fault") {
        None => reply.into_response(),
        Some(fault) => inject_fault(&fault, vendor, reply).await,
    }
}

/// The vendor's answer; all state changes happen here, under one lock.
fn respond(state: &SimState, vendor: Vendor, call: &Call) -> Reply {
    let mut world = state.inner.world.lock();
    match vendor {
        Vendor::Stripe => stripe(&mut world, call),
        Vendor::Twilio => twilio(&mut world, call),
        Vendor::Resend => resend(&mut world, call),
    }
}
