//! An offline simulator of the Stripe, Twilio and Resend APIs: the upstream of `vendorgate demo`,
//! `vendorgate serve --upstream sim` and the end-to-end tests.
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

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, RequestExt, Router};
use base64::Engine;
use parking_lot::Mutex;
use rand::distr::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Map, Value};
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

/// The Stripe secret key the simulator accepts (Bearer, or Basic with it as the username).
pub const SIM_STRIPE_KEY: &str = "sk_test_vendorgate_sim_51XyZ";
/// The Twilio account SID the simulator accepts, in Basic auth and in `/Accounts/{sid}/`.
pub const SIM_TWILIO_SID: &str = "AC00000000000000000000000000000042";
/// The Twilio auth token that goes with [`SIM_TWILIO_SID`].
pub const SIM_TWILIO_TOKEN: &str = "sim_twilio_auth_token_7c1e";
/// The Resend API key the simulator accepts (Bearer).
pub const SIM_RESEND_KEY: &str = "re_sim_2b9d4f";

/// How long the `timeout` and `slow-body` faults keep the client waiting.
const FAULT_DELAY: Duration = Duration::from_secs(30);
/// Size of the `huge` fault's body.
const HUGE_BODY_BYTES: usize = 20 << 20;
/// Larger request bodies are refused before anything else happens.
const MAX_REQUEST_BODY: usize = 16 << 20;
/// Twilio's simulated SMS price: 0.0079 USD per segment, in units of 1e-5 USD.
const TWILIO_PRICE_PER_SEGMENT: i64 = 790;
/// Twilio's simulated outbound call price: 0.014 USD per minute, in units of 1e-5 USD.
const TWILIO_PRICE_PER_CALL_MINUTE: i64 = 1_400;

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

/// All three vendors on one router; see the module docs.
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
// Request plumbing
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Vendor {
    Stripe,
    Twilio,
    Resend,
}

impl Vendor {
    fn name(self) -> &'static str {
        match self {
            Vendor::Stripe => "stripe",
            Vendor::Twilio => "twilio",
            Vendor::Resend => "resend",
        }
    }
}

/// Which vendor a path belongs to, and the path that vendor sees.
fn split_vendor(path: &str) -> (Option<Vendor>, &str) {
    for vendor in [Vendor::Stripe, Vendor::Twilio, Vendor::Resend] {
        let prefix = format!("/{}", vendor.name());
        if let Some(rest) = path.strip_prefix(prefix.as_str()) {
            if rest.is_empty() {
                return (Some(vendor), "/");
            }
            if rest.starts_with('/') {
                return (Some(vendor), rest);
            }
        }
    }
    let vendor = if path == "/v1" || path.starts_with("/v1/") || path.starts_with("/v2/") {
        Some(Vendor::Stripe)
    } else if path.starts_with("/2010-04-01/") {
        Some(Vendor::Twilio)
    } else if path == "/emails" || path.starts_with("/emails/") {
        Some(Vendor::Resend)
    } else {
        None
    };
    (vendor, path)
}

/// The parts of a request the vendor handlers look at.
struct Call<'a> {
    method: &'a Method,
    /// Vendor path, no prefix, no query.
    path: &'a str,
    /// The query string, without `?` (list parameters such as `limit`).
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl Call<'_> {
    fn header(&self, name: &str) -> Option<String> {
        header(self.headers, name)
    }

    fn segments(&self) -> Vec<&str> {
        self.path.trim_start_matches('/').split('/').collect()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// A vendor's JSON answer, before faults are applied.
#[derive(Clone, Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
    /// Extra headers; names must be lowercase.
    headers: Vec<(&'static str, String)>,
}

/// Handlers return `Err` for the vendor's error answers so `?` can be used.
type Answer = Result<Reply, Reply>;

impl Reply {
    fn new(status: StatusCode, body: Value) -> Self {
        Reply {
            status,
            body,
            headers: Vec::new(),
        }
    }

    fn ok(body: Value) -> Self {
        Reply::new(StatusCode::OK, body)
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        (self.status, headers, body).into_response()
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Form fields in order; repeated keys are kept.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The last value of a field.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The last value of a field, if not empty.
    fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(k, _)| k == name).count()
    }

    /// Stripe's `metadata[key]=value` fields as an object.
    fn metadata(&self) -> Map<String, Value> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((key.to_string(), Value::String(v.clone())))
            })
            .collect()
    }
}

enum Credential {
    Missing,
    Malformed,
    Bearer(String),
    Basic(String, String),
}

fn credential(headers: &HeaderMap) -> Credential {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Credential::Missing;
    };
    let Some((scheme, rest)) = value.to_str().ok().and_then(|v| v.trim().split_once(' ')) else {
        return Credential::Malformed;
    };
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Credential::Bearer(rest.to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Credential::Malformed;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded {
        Some(pair) => match pair.split_once(':') {
            Some((user, password)) => Credential::Basic(user.to_string(), password.to_string()),
            None => Credential::Basic(pair, String::new()),
        },
        None => Credential::Malformed,
    }
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

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

async fn inject_fault(fault: &str, vendor: Vendor, reply: Reply) -> Response {
    match fault.trim() {
        "reset" => Response::new(aborting_body()),
        "timeout" => {
            tokio::time::sleep(FAULT_DELAY).await;
            reply.into_response()
        }
        "slow-body" => {
            let body = Bytes::from(serde_json::to_vec(&reply.body).unwrap_or_default());
            let status = reply.status;
            let delayed = delayed_body(body, FAULT_DELAY).await;
            with_body(reply, status, "application/json", delayed)
        }
        "500" => Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: server_error_body(vendor),
            headers: reply.headers,
        }
        .into_response(),
        "malformed" => with_body(
            reply,
            StatusCode::OK,
            "application/json",
            "{not json".into(),
        ),
        "huge" => with_body(
            reply,
            StatusCode::OK,
            "application/json",
            huge_body().into(),
        ),
        "html" => with_body(
            reply,
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html>oops</html>".into(),
        ),
        other => (
            StatusCode::BAD_REQUEST,
            format!(
                "vendorgate sim: unknown X-Sim-Fault {other:?}; \
                 use reset, timeout, slow-body, 500, malformed, huge or html"
            ),
        )
            .into_response(),
    }
}

/// The reply's extra headers (request ids) with another status, content type and body.
fn with_body(reply: Reply, status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = reply.into_response();
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.remove(CONTENT_LENGTH);
    *response.body_mut() = body;
    response
}

fn server_error_body(vendor: Vendor) -> Value {
    match vendor {
        Vendor::Stripe => json!({ "error": {
            "type": "api_error",
            "message": "An unknown error occurred",
        }}),
        Vendor::Twilio => twilio_error_body(500, 20500, "An internal server error has occurred"),
        Vendor::Resend => resend_error_body(
            500,
            "application_error",
            "An unexpected error occurred, please try again later.",
        ),
    }
}

/// A valid JSON document of exactly [`HUGE_BODY_BYTES`].
fn huge_body() -> Vec<u8> {
    let mut body = Vec::with_capacity(HUGE_BODY_BYTES);
    body.extend_from_slice(br#"{"object":"huge","padding":""#);
    body.resize(HUGE_BODY_BYTES - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

/// A response body whose first poll fails, for the `reset` fault.
///
/// hyper writes a response by buffering the status line and headers, then polling the body in
/// the same turn; when that poll fails it drops the connection without flushing, so the client
/// sees the connection close and no response at all. axum has no public way to build an
/// erroring body from scratch (no `Stream` or `Frame` type is reachable from this crate's
/// dependencies), so this uses axum's own body limiter: a 2-byte body under a 1-byte limit fails
/// on its first frame.
fn aborting_body() -> Body {
    let mut carrier = Request::new(Body::from("xx"));
    DefaultBodyLimit::max(1).apply(&mut carrier);
    carrier.into_limited_body()
}

/// A body that arrives `delay` after the response headers, for the `slow-body` fault.
///
/// axum streams only from a `Stream`, which none of this crate's dependencies can build, so
/// the bytes take a detour: a one-shot HTTP responder on a loopback port writes its headers at
/// once and the body after `delay`; reqwest's still-streaming body of that answer becomes this
/// response's body. If the detour cannot be set up, the connection is dropped instead.
async fn delayed_body(bytes: Bytes, delay: Duration) -> Body {
    match loopback_drip(bytes, delay).await {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, "sim: slow-body fault could not be set up; dropping the connection");
            aborting_body()
        }
    }
}

async fn loopback_drip(
    bytes: Bytes,
    delay: Duration,
) -> Result<Body, Box<dyn std::error::Error + Send + Sync>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            bytes.len()
        );
        if read_request_head(&socket).await.is_ok()
            && write_all(&socket, head.as_bytes()).await.is_ok()
        {
            tokio::time::sleep(delay).await;
            let _ = write_all(&socket, &bytes).await;
        }
    });
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("http://{addr}/"))
        .send()
        .await?;
    Ok(Body::new(reqwest::Body::from(response)))
}

async fn read_request_head(socket: &tokio::net::TcpStream) -> io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        socket.readable().await?;
        match socket.try_read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn write_all(socket: &tokio::net::TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        socket.writable().await?;
        match socket.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Objects and idempotency
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct World {
    payment_intents: HashMap<String, PaymentIntent>,
    charges: HashMap<String, Charge>,
    /// Refunds, customers and top-ups: created once, never changed.
    stripe_objects: HashMap<String, Value>,
    invoices: HashMap<String, Value>,
    invoice_items: HashMap<String, Value>,
    messages: HashMap<String, Message>,
    calls: HashMap<String, Value>,
    emails: HashMap<String, Value>,
    broadcasts: HashMap<String, Value>,
    idempotent: HashMap<(Vendor, String), Saved>,
}

/// The first answer to an idempotency key.
struct Saved {
    fingerprint: Vec<u8>,
    reply: Reply,
    request_id: Option<String>,
}

/// Stripe- and Resend-style idempotency for POSTs: the first answer to a key (unless the
/// request was refused as invalid: 400/401/403/422) is saved and replayed for the same method,
/// path and body; the same key with anything else is a conflict.
fn idempotent(
    world: &mut World,
    vendor: Vendor,
    call: &Call,
    request_id: Option<&str>,
    run: fn(&mut World, &Call) -> Reply,
) -> Reply {
    let key = match call.header("idempotency-key") {
        Some(key) if call.method == Method::POST => key,
        _ => return run(world, call),
    };
    let max_len = if vendor == Vendor::Stripe { 255 } else { 256 };
    if key.is_empty() || key.chars().count() > max_len {
        let message = format!("The idempotency key must be 1 to {max_len} characters long.");
        return match vendor {
            Vendor::Stripe => stripe_invalid(None, None, message),
            _ => resend_error(400, "invalid_idempotency_key", message),
        };
    }
    let fingerprint = [
        call.method.as_str().as_bytes(),
        b" ",
        call.path.as_bytes(),
        b"\n",
        call.body,
    ]
    .concat();
    let slot = (vendor, key);
    if let Some(saved) = world.idempotent.get(&slot) {
        if saved.fingerprint != fingerprint {
            return idempotency_conflict(vendor, &slot.1);
        }
        let mut reply = saved.reply.clone();
        if vendor == Vendor::Stripe {
            reply = reply.with("idempotent-replayed", "true");
            if let Some(original) = &saved.request_id {
                reply = reply.with("original-request", original.clone());
            }
        }
        return reply;
    }
    let reply = run(world, call);
    if !matches!(reply.status.as_u16(), 400 | 401 | 403 | 422) {
        let saved = Saved {
            fingerprint,
            reply: reply.clone(),
            request_id: request_id.map(str::to_string),
        };
        world.idempotent.insert(slot, saved);
    }
    reply
}

fn idempotency_conflict(vendor: Vendor, key: &str) -> Reply {
    match vendor {
        Vendor::Stripe => stripe_error(
            StatusCode::BAD_REQUEST,
            json!({
                "type": "idempotency_error",
                "message": format!(
                    "Keys for idempotent requests can only be used with the same parameters \
                     they were first used with. Try using a key other than '{key}' if you \
                     meant to execute a different request."
                ),
            }),
        ),
        _ => resend_error(
            409,
            "invalid_idempotent_request",
            "Same idempotency key used with a different request payload. Change your \
             idempotency key or payload.",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Stripe
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Serialize)]
struct PaymentIntent {
    id: String,
    object: &'static str,
    amount: i64,
    amount_capturable: i64,
    amount_received: i64,
    canceled_at: Option<i64>,
    cancellation_reason: Option<String>,
    capture_method: String,
    client_secret: String,
    confirmation_method: &'static str,
    created: i64,
    currency: String,
    customer: Option<String>,
    description: Option<String>,
    last_payment_error: Option<Value>,
    latest_charge: Option<String>,
    livemode: bool,
    metadata: Map<String, Value>,
    payment_method: Option<String>,
    payment_method_types: Vec<&'static str>,
    status: &'static str,
}

#[derive(Clone, Serialize)]
struct Charge {
    id: String,
    object: &'static str,
    amount: i64,
    amount_captured: i64,
    amount_refunded: i64,
    captured: bool,
    created: i64,
    currency: String,
    customer: Option<String>,
    description: Option<String>,
    failure_code: Option<&'static str>,
    failure_message: Option<&'static str>,
    livemode: bool,
    metadata: Map<String, Value>,
    paid: bool,
    payment_intent: Option<String>,
    payment_method: Option<String>,
    refunded: bool,
    status: &'static str,
}

impl Charge {
    fn new(amount: i64, currency: &str) -> Self {
        Charge {
            id: stripe_id("ch"),
            object: "charge",
            amount,
            amount_captured: amount,
            amount_refunded: 0,
            captured: true,
            created: unix_now(),
            currency: currency.to_string(),
            customer: None,
            description: None,
            failure_code: None,
            failure_message: None,
            livemode: false,
            metadata: Map::new(),
            paid: true,
            payment_intent: None,
            payment_method: None,
            refunded: false,
            status: "succeeded",
        }
    }
}

fn stripe(world: &mut World, call: &Call) -> Reply {
    let request_id = format!("req_{}", alnum(14));
    let reply = match stripe_auth(call.headers) {
        Ok(()) => idempotent(world, Vendor::Stripe, call, Some(&request_id), stripe_route),
        Err(reply) => reply,
    };
    reply.with("request-id", request_id)
}

fn stripe_auth(headers: &HeaderMap) -> Result<(), Reply> {
    let presented = match credential(headers) {
        Credential::Bearer(key) | Credential::Basic(key, _) => key,
        Credential::Malformed => String::new(),
        Credential::Missing => {
            return Err(stripe_unauthorized(
                "You did not provide an API key. You need to provide your API key in the \
                 Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
                 YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, \
                 or we can help at https://support.stripe.com/."
                    .to_string(),
            ))
        }
    };
    if presented == SIM_STRIPE_KEY {
        return Ok(());
    }
    Err(stripe_unauthorized(format!(
        "Invalid API Key provided: {}",
        mask_key(&presented)
    )))
}

fn stripe_unauthorized(message: String) -> Reply {
    let error = json!({ "type": "invalid_request_error", "message": message });
    stripe_error(StatusCode::UNAUTHORIZED, error).with("www-authenticate", "Basic realm=\"Stripe\"")
}

/// Like Stripe: the key's `prefix_` and last four characters, stars between.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let head = chars
        .iter()
        .take(8)
        .rposition(|&c| c == '_')
        .map_or(0, |i| i + 1);
    let tail = if chars.len() >= head + 16 { 4 } else { 0 };
    let stars = chars.len() - head - tail;
    let head: String = chars[..head].iter().collect();
    let tail: String = chars[chars.len() - tail..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(stars))
}

fn stripe_route(world: &mut World, call: &Call) -> Reply {
    let form = Form::parse(call.body);
    let answer = match (call.method.as_str(), call.segments().as_slice()) {
        ("GET", ["v1", "payment_intents"]) => Ok(stripe_list(
            "/v1/payment_intents",
            world.payment_intents.values().map(to_json),
            &Form::parse(call.query.unwrap_or_default().as_bytes()),
        )),
        ("POST", ["v1", "payment_intents"]) => pi_create(world, &form),
        ("GET", ["v1", "payment_intents", id]) => {
            pi_get(world, id).map(|pi| Reply::ok(to_json(&pi)))
        }
        ("POST", ["v1", "payment_intents", id, "confirm"]) => pi_confirm(world, id, &form),
        ("POST", ["v1", "payment_intents", id, "capture"]) => pi_capture(world, id, &form),
        ("POST", ["v1", "payment_intents", id, "cancel"]) => pi_cancel(world, id, &form),
        ("POST", ["v1", "payment_intents", id, "increment_authorization"]) => {
            pi_increment(world, id, &form)
        }
        ("POST", ["v1", "charges"]) => charge_create(world, &form),
        ("GET", ["v1", "charges", id]) => charge_get(world, id).map(|ch| Reply::ok(to_json(&ch))),
        ("POST", ["v1", "charges", id, "capture"]) => charge_capture(world, id, &form),
        ("POST", ["v1", "refunds"]) => refund_create(world, &form),
        ("GET", ["v1", "refunds", id]) => stored(world, "refund", id),
        ("POST", ["v1", "customers"]) => Ok(customer_create(world, &form)),
        ("GET", ["v1", "customers", id]) => stored(world, "customer", id),
        ("GET", ["v1", "balance"]) => Ok(Reply::ok(balance())),
        ("POST", ["v1", "topups"]) => topup_create(world, &form),
        ("GET", ["v1", "topups", id]) => stored(world, "topup", id),
        ("POST", ["v1", "invoiceitems"]) => invoice_item_create(world, &form),
        ("GET", ["v1", "invoiceitems", id]) => world
            .invoice_items
            .get(*id)
            .map(|item| Reply::ok(item.clone()))
            .ok_or_else(|| resource_missing("invoiceitem", id, "id")),
        ("POST", ["v1", "invoices"]) => invoice_create(world, &form),
        ("GET", ["v1", "invoices"]) => Ok(stripe_list(
            "/v1/invoices",
            world.invoices.values().cloned(),
            &Form::parse(call.query.unwrap_or_default().as_bytes()),
        )),
        ("GET", ["v1", "invoices", id]) => invoice_get(world, id).map(Reply::ok),
        ("POST", ["v1", "invoices", id, "finalize"]) => invoice_finalize(world, id),
        ("POST", ["v1", "invoices", id, "pay"]) => invoice_pay(world, id),
        _ => Err(stripe_error(
            StatusCode::NOT_FOUND,
            json!({
                "type": "invalid_request_error",
                "message": format!(
                    "Unrecognized request URL ({}: {}). Please see https://stripe.com/docs or \
                     we can help at https://support.stripe.com/.",
                    call.method, call.path
                ),
            }),
        )),
    };
    answer.unwrap_or_else(|error| error)
}

fn stripe_error(status: StatusCode, error: Value) -> Reply {
    Reply::new(status, json!({ "error": error }))
}

/// 400 `invalid_request_error`, with a `doc_url` when there is a code.
fn stripe_invalid(param: Option<&str>, code: Option<&str>, message: impl Into<String>) -> Reply {
    let mut error = json!({ "type": "invalid_request_error", "message": message.into() });
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(stripe_doc_url(code));
    }
    stripe_error(StatusCode::BAD_REQUEST, error)
}

fn stripe_doc_url(code: &str) -> String {
    format!(
        "https://stripe.com/docs/error-codes/{}",
        code.replace('_', "-")
    )
}

fn resource_missing(kind: &str, id: &str, param: &str) -> Reply {
    let error = json!({
        "type": "invalid_request_error",
        "code": "resource_missing",
        "doc_url": stripe_doc_url("resource_missing"),
        "message": format!("No such {kind}: '{id}'"),
        "param": param,
    });
    stripe_error(StatusCode::NOT_FOUND, error)
}

fn unexpected_state(pi: &PaymentIntent, action: &str, allowed: &[&str]) -> Reply {
    let error = json!({
        "type": "invalid_request_error",
        "code": "payment_intent_unexpected_state",
        "doc_url": stripe_doc_url("payment_intent_unexpected_state"),
        "message": format!(
            "You cannot {action} this PaymentIntent because it has a status of {}. It must \
             have one of these statuses: {}.",
            pi.status,
            allowed.join(", ")
        ),
        "payment_intent": to_json(pi),
    });
    stripe_error(StatusCode::BAD_REQUEST, error)
}

fn missing_param(name: &str) -> Reply {
    stripe_invalid(
        Some(name),
        Some("parameter_missing"),
        format!("Missing required param: {name}."),
    )
}

/// A positive integer amount (minor units), if given.
fn stripe_amount(form: &Form, name: &str) -> Result<Option<i64>, Reply> {
    let Some(raw) = form.get(name) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(amount) if amount >= 1 => Ok(Some(amount)),
        Ok(_) => Err(stripe_invalid(
            Some(name),
            Some("parameter_invalid_integer"),
            "This value must be greater than or equal to 1.",
        )),
        Err(_) => Err(stripe_invalid(
            Some(name),
            Some("parameter_invalid_integer"),
            format!("Invalid integer: {raw}"),
        )),
    }
}

/// Stripe's limits on a charge amount: at most eight digits, and at least $0.50 in USD.
fn check_amount(amount: i64, currency: &str, param: &str) -> Result<(), Reply> {
    if amount > 99_999_999 {
        return Err(stripe_invalid(
            Some(param),
            Some("amount_too_large"),
            "Amount must be no more than 99999999 in the currency's smallest unit.",
        ));
    }
    if currency == "usd" && amount < 50 {
        return Err(stripe_invalid(
            Some(param),
            Some("amount_too_small"),
            "Amount must be at least $0.50 usd",
        ));
    }
    Ok(())
}

fn stripe_currency(form: &Form) -> Result<String, Reply> {
    let raw = form
        .get("currency")
        .ok_or_else(|| missing_param("currency"))?;
    let currency = raw.to_ascii_lowercase();
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(currency)
    } else {
        Err(stripe_invalid(
            Some("currency"),
            None,
            format!("Invalid currency: {raw}."),
        ))
    }
}

fn stripe_bool(form: &Form, name: &str) -> Result<Option<bool>, Reply> {
    match form.get(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(raw) => Err(stripe_invalid(
            Some(name),
            None,
            format!("Invalid boolean: {raw}"),
        )),
    }
}

fn capture_method(raw: &str) -> Result<String, Reply> {
    match raw {
        "automatic" | "automatic_async" | "manual" => Ok(raw.to_string()),
        _ => Err(stripe_invalid(
            Some("capture_method"),
            None,
            format!("Invalid capture_method: must be one of automatic, automatic_async, or manual (got {raw})"),
        )),
    }
}

/// Stripe's test payment methods that decline: (decline_code, message).
fn decline(payment_method: &str) -> Option<(&'static str, &'static str)> {
    match payment_method {
        "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" | "tok_chargeDeclined" => {
            Some(("generic_decline", "Your card was declined."))
        }
        "pm_card_chargeDeclinedInsufficientFunds" | "tok_chargeDeclinedInsufficientFunds" => {
            Some(("insufficient_funds", "Your card has insufficient funds."))
        }
        _ => None,
    }
}

fn card_error(decline_code: &str, message: &str) -> Value {
    json!({
        "type": "card_error",
        "code": "card_declined",
        "decline_code": decline_code,
        "doc_url": stripe_doc_url("card_declined"),
        "message": message,
    })
}

fn pi_get(world: &World, id: &str) -> Result<PaymentIntent, Reply> {
    world
        .payment_intents
        .get(id)
        .cloned()
        .ok_or_else(|| resource_missing("payment_intent", id, "id"))
}

fn pi_save(world: &mut World, pi: &PaymentIntent) -> Reply {
    world.payment_intents.insert(pi.id.clone(), pi.clone());
    Reply::ok(to_json(pi))
}

fn no_payment_method() -> Reply {
    stripe_invalid(
        Some("payment_method"),
        Some("payment_intent_unexpected_state"),
        "You cannot confirm this PaymentIntent because it's missing a payment method. Pass \
         `payment_method` (for example pm_card_visa).",
    )
}

fn pi_create(world: &mut World, form: &Form) -> Answer {
    let amount = stripe_amount(form, "amount")?.ok_or_else(|| missing_param("amount"))?;
    let currency = stripe_currency(form)?;
    check_amount(amount, &currency, "amount")?;
    let capture_method = capture_method(form.get("capture_method").unwrap_or("automatic_async"))?;
    let confirm = stripe_bool(form, "confirm")?.unwrap_or(false);
    let payment_method = form.non_empty("payment_method").map(str::to_string);
    if confirm && payment_method.is_none() {
        return Err(no_payment_method());
    }
    let id = stripe_id("pi");
    let mut pi = PaymentIntent {
        client_secret: format!("{id}_secret_{}", alnum(25)),
        id,
        object: "payment_intent",
        amount,
        amount_capturable: 0,
        amount_received: 0,
        canceled_at: None,
        cancellation_reason: None,
        capture_method,
        confirmation_method: "automatic",
        created: unix_now(),
        currency,
        customer: form.non_empty("customer").map(str::to_string),
        description: form.non_empty("description").map(str::to_string),
        last_payment_error: None,
        latest_charge: None,
        livemode: false,
        metadata: form.metadata(),
        status: if payment_method.is_some() {
            "requires_confirmation"
        } else {
            "requires_payment_method"
        },
        payment_method,
        payment_method_types: vec!["card"],
    };
    let result = if confirm {
        confirm_pi(world, &mut pi)
    } else {
        Ok(())
    };
    let reply = pi_save(world, &pi);
    result.map(|()| reply)
}

/// Charges the intent's payment method. A decline leaves the intent in
/// `requires_payment_method` and answers 402; the caller saves the intent either way.
fn confirm_pi(world: &mut World, pi: &mut PaymentIntent) -> Result<(), Reply> {
    let Some(payment_method) = pi.payment_method.clone() else {
        return Err(no_payment_method());
    };
    let mut charge = Charge::new(pi.amount, &pi.currency);
    charge.payment_intent = Some(pi.id.clone());
    charge.payment_method = Some(payment_method.clone());
    charge.customer = pi.customer.clone();
    pi.latest_charge = Some(charge.id.clone());

    if let Some((decline_code, message)) = decline(&payment_method) {
        charge.amount_captured = 0;
        charge.captured = false;
        charge.paid = false;
        charge.status = "failed";
        charge.failure_code = Some("card_declined");
        charge.failure_message = Some(message);
        let mut error = card_error(decline_code, message);
        error["charge"] = json!(charge.id);
        pi.status = "requires_payment_method";
        pi.last_payment_error = Some(error.clone());
        error["payment_intent"] = to_json(pi);
        world.charges.insert(charge.id.clone(), charge);
        return Err(stripe_error(StatusCode::PAYMENT_REQUIRED, error));
    }

    pi.last_payment_error = None;
    if pi.capture_method == "manual" {
        charge.amount_captured = 0;
        charge.captured = false;
        pi.status = "requires_capture";
        pi.amount_capturable = pi.amount;
    } else {
        pi.status = "succeeded";
        pi.amount_received = pi.amount;
    }
    world.charges.insert(charge.id.clone(), charge);
    Ok(())
}

fn pi_confirm(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut pi = pi_get(world, id)?;
    let allowed = [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ];
    if !allowed.contains(&pi.status) {
        return Err(unexpected_state(&pi, "confirm", &allowed));
    }
    if let Some(payment_method) = form.non_empty("payment_method") {
        pi.payment_method = Some(payment_method.to_string());
    }
    if let Some(raw) = form.get("capture_method") {
        pi.capture_method = capture_method(raw)?;
    }
    let result = confirm_pi(world, &mut pi);
    let reply = pi_save(world, &pi);
    result.map(|()| reply)
}

fn pi_capture(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut pi = pi_get(world, id)?;
    if pi.status != "requires_capture" {
        return Err(unexpected_state(&pi, "capture", &["requires_capture"]));
    }
    let amount = stripe_amount(form, "amount_to_capture")?.unwrap_or(pi.amount_capturable);
    if amount > pi.amount_capturable {
        return Err(stripe_invalid(
            Some("amount_to_capture"),
            Some("amount_too_large"),
            format!(
                "The amount to capture ({amount}) is greater than the amount capturable ({}).",
                pi.amount_capturable
            ),
        ));
    }
    pi.status = "succeeded";
    pi.amount_received = amount;
    pi.amount_capturable = 0;
    if let Some(charge) = pi
        .latest_charge
        .as_ref()
        .and_then(|c| world.charges.get_mut(c))
    {
        charge.captured = true;
        charge.amount_captured = amount;
    }
    Ok(pi_save(world, &pi))
}

fn pi_cancel(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut pi = pi_get(world, id)?;
    let allowed = [
        "requires_payment_method",
        "requires_capture",
        "requires_confirmation",
        "requires_action",
        "processing",
    ];
    if !allowed.contains(&pi.status) {
        return Err(unexpected_state(&pi, "cancel", &allowed));
    }
    if pi.status == "requires_capture" {
        // The uncaptured authorization is released.
        if let Some(charge) = pi
            .latest_charge
            .as_ref()
            .and_then(|c| world.charges.get_mut(c))
        {
            charge.refunded = true;
            charge.amount_refunded = charge.amount;
        }
    }
    pi.status = "canceled";
    pi.amount_capturable = 0;
    pi.canceled_at = Some(unix_now());
    pi.cancellation_reason = form.non_empty("cancellation_reason").map(str::to_string);
    Ok(pi_save(world, &pi))
}

fn pi_increment(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut pi = pi_get(world, id)?;
    if pi.status != "requires_capture" {
        return Err(unexpected_state(
            &pi,
            "increment the authorization of",
            &["requires_capture"],
        ));
    }
    let amount = stripe_amount(form, "amount")?.ok_or_else(|| missing_param("amount"))?;
    if amount <= pi.amount {
        return Err(stripe_invalid(
            Some("amount"),
            None,
            format!(
                "The new amount ({amount}) must be greater than the currently authorized amount ({}).",
                pi.amount
            ),
        ));
    }
    check_amount(amount, &pi.currency, "amount")?;
    pi.amount = amount;
    pi.amount_capturable = amount;
    if let Some(charge) = pi
        .latest_charge
        .as_ref()
        .and_then(|c| world.charges.get_mut(c))
    {
        charge.amount = amount;
    }
    Ok(pi_save(world, &pi))
}

fn charge_get(world: &World, id: &str) -> Result<Charge, Reply> {
    world
        .charges
        .get(id)
        .cloned()
        .ok_or_else(|| resource_missing("charge", id, "id"))
}

fn charge_create(world: &mut World, form: &Form) -> Answer {
    let amount = stripe_amount(form, "amount")?.ok_or_else(|| missing_param("amount"))?;
    let currency = stripe_currency(form)?;
    check_amount(amount, &currency, "amount")?;
    let capture = stripe_bool(form, "capture")?.unwrap_or(true);
    let source = form.non_empty("source");
    if source.is_none() && form.non_empty("customer").is_none() {
        return Err(stripe_invalid(
            Some("source"),
            Some("parameter_missing"),
            "Must provide source or customer.",
        ));
    }
    let mut charge = Charge::new(amount, &currency);
    charge.customer = form.non_empty("customer").map(str::to_string);
    charge.description = form.non_empty("description").map(str::to_string);
    charge.metadata = form.metadata();
    charge.payment_method = source.map(str::to_string);
    if let Some((decline_code, message)) = source.and_then(decline) {
        charge.amount_captured = 0;
        charge.captured = false;
        charge.paid = false;
        charge.status = "failed";
        charge.failure_code = Some("card_declined");
        charge.failure_message = Some(message);
        let mut error = card_error(decline_code, message);
        error["charge"] = json!(charge.id);
        world.charges.insert(charge.id.clone(), charge);
        return Err(stripe_error(StatusCode::PAYMENT_REQUIRED, error));
    }
    if !capture {
        charge.captured = false;
        charge.amount_captured = 0;
    }
    let reply = Reply::ok(to_json(&charge));
    world.charges.insert(charge.id.clone(), charge);
    Ok(reply)
}

fn charge_capture(world: &mut World, id: &str, form: &Form) -> Answer {
    let mut charge = charge_get(world, id)?;
    if charge.captured || charge.status != "succeeded" || charge.refunded {
        return Err(stripe_invalid(
            None,
            Some("charge_already_captured"),
            format!("Charge {id} has already been captured."),
        ));
    }
    let amount = stripe_amount(form, "amount")?.unwrap_or(charge.amount);
    if amount > charge.amount {
        return Err(stripe_invalid(
            Some("amount"),
            Some("amount_too_large"),
            format!(
                "The amount to capture ({amount}) is greater than the charge amount ({}).",
                charge.amount
            ),
        ));
    }
    charge.captured = true;
    charge.amount_captured = amount;
    let reply = Reply::ok(to_json(&charge));
    world.charges.insert(charge.id.clone(), charge);
    Ok(reply)
}

fn refund_create(world: &mut World, form: &Form) -> Answer {
    let charge_id = match (form.non_empty("charge"), form.non_empty("payment_intent")) {
        (Some(charge), _) => charge.to_string(),
        (None, Some(pi_id)) => {
            let pi = world
                .payment_intents
                .get(pi_id)
                .ok_or_else(|| resource_missing("payment_intent", pi_id, "payment_intent"))?;
            pi.latest_charge.clone().filter(|_| pi.amount_received > 0).ok_or_else(|| {
                stripe_invalid(
                    Some("payment_intent"),
                    None,
                    format!("This PaymentIntent ({pi_id}) does not have a successful charge to refund."),
                )
            })?
        }
        (None, None) => {
            return Err(stripe_invalid(
                Some("charge"),
                Some("parameter_missing"),
                "One of `charge` or `payment_intent` is required.",
            ))
        }
    };
    let charge = world
        .charges
        .get_mut(&charge_id)
        .ok_or_else(|| resource_missing("charge", &charge_id, "charge"))?;
    let refundable = charge.amount_captured - charge.amount_refunded;
    if refundable <= 0 {
        return Err(stripe_invalid(
            Some("charge"),
            Some("charge_already_refunded"),
            format!("Charge {charge_id} has already been refunded."),
        ));
    }
    let amount = stripe_amount(form, "amount")?.unwrap_or(refundable);
    if amount > refundable {
        return Err(stripe_invalid(
            Some("amount"),
            Some("charge_already_refunded"),
            format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})"
            ),
        ));
    }
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded >= charge.amount_captured;
    let refund = json!({
        "id": stripe_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": null,
        "charge": charge.id,
        "created": unix_now(),
        "currency": charge.currency,
        "livemode": false,
        "metadata": form.metadata(),
        "payment_intent": charge.payment_intent,
        "reason": form.non_empty("reason"),
        "status": "succeeded",
    });
    Ok(store_stripe_object(world, refund))
}

fn customer_create(world: &mut World, form: &Form) -> Reply {
    let customer = json!({
        "id": stripe_id("cus"),
        "object": "customer",
        "balance": 0,
        "created": unix_now(),
        "currency": null,
        "delinquent": false,
        "description": form.non_empty("description"),
        "email": form.non_empty("email"),
        "livemode": false,
        "metadata": form.metadata(),
        "name": form.non_empty("name"),
        "phone": form.non_empty("phone"),
    });
    store_stripe_object(world, customer)
}

fn store_stripe_object(world: &mut World, object: Value) -> Reply {
    if let Some(id) = object["id"].as_str() {
        world.stripe_objects.insert(id.to_string(), object.clone());
    }
    Reply::ok(object)
}

fn stored(world: &World, kind: &str, id: &str) -> Answer {
    world
        .stripe_objects
        .get(id)
        .filter(|object| object["object"] == kind)
        .map(|object| Reply::ok(object.clone()))
        .ok_or_else(|| resource_missing(kind, id, "id"))
}

fn balance() -> Value {
    let funds = json!([{ "amount": 0, "currency": "usd", "source_types": { "card": 0 } }]);
    json!({ "object": "balance", "available": funds, "livemode": false, "pending": funds })
}

/// A Stripe list answer: newest first, `limit` (1 to 100, default 10) objects.
fn stripe_list(url: &str, objects: impl Iterator<Item = Value>, query: &Form) -> Reply {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| (1..=100).contains(l))
        .unwrap_or(10);
    let mut data: Vec<Value> = objects.collect();
    data.sort_by(|a, b| {
        let key = |v: &Value| (v["created"].as_i64().unwrap_or(0), v["id"].to_string());
        key(b).cmp(&key(a))
    });
    let has_more = data.len() > limit;
    data.truncate(limit);
    Reply::ok(json!({ "object": "list", "data": data, "has_more": has_more, "url": url }))
}

/// A top-up from the account's default bank account: pending until the bank pays it.
fn topup_create(world: &mut World, form: &Form) -> Answer {
    let amount = stripe_amount(form, "amount")?.ok_or_else(|| missing_param("amount"))?;
    let currency = stripe_currency(form)?;
    check_amount(amount, &currency, "amount")?;
    let created = unix_now();
    let topup = json!({
        "id": stripe_id("tu"),
        "object": "topup",
        "amount": amount,
        "balance_transaction": null,
        "created": created,
        "currency": currency,
        "description": form.non_empty("description"),
        "expected_availability_date": created + 5 * 86_400,
        "failure_code": null,
        "failure_message": null,
        "livemode": false,
        "metadata": form.metadata(),
        "source": null,
        "statement_descriptor": form.non_empty("statement_descriptor"),
        "status": "pending",
        "transfer_group": form.non_empty("transfer_group"),
    });
    Ok(store_stripe_object(world, topup))
}

/// An integer amount in minor units that may be negative (an invoice item's credit).
fn signed_amount(form: &Form, name: &str) -> Result<Option<i64>, Reply> {
    form.get(name)
        .map(|raw| {
            raw.parse::<i64>().map_err(|_| {
                stripe_invalid(
                    Some(name),
                    Some("parameter_invalid_integer"),
                    format!("Invalid integer: {raw}"),
                )
            })
        })
        .transpose()
}

/// An invoice item: `amount`, or `unit_amount` × `quantity`, in `currency`; attached to a
/// draft `invoice` if one is named, else pending on the customer's next invoice.
fn invoice_item_create(world: &mut World, form: &Form) -> Answer {
    let customer = form
        .non_empty("customer")
        .ok_or_else(|| missing_param("customer"))?
        .to_string();
    let quantity = stripe_amount(form, "quantity")?.unwrap_or(1);
    let unit = stripe_amount(form, "unit_amount")?;
    let amount = match (signed_amount(form, "amount")?, unit) {
        (Some(amount), None) => amount,
        (None, Some(unit)) => unit * quantity,
        (Some(_), Some(_)) => {
            return Err(stripe_invalid(
                Some("amount"),
                None,
                "You may only specify one of these parameters: amount, unit_amount.",
            ))
        }
        (None, None) if form.non_empty("price").is_some() => {
            let price = form.non_empty("price").unwrap_or_default();
            return Err(resource_missing("price", price, "price"));
        }
        (None, None) => return Err(missing_param("amount")),
    };
    let currency = stripe_currency(form)?;
    let invoice = match form.non_empty("invoice") {
        Some(id) => {
            let invoice = invoice_get(world, id)?;
            if invoice["status"] != "draft" {
                return Err(stripe_invalid(
                    Some("invoice"),
                    Some("invoice_not_editable"),
                    format!(
                        "Invoice {id} is no longer editable: it is {}.",
                        invoice["status"]
                    ),
                ));
            }
            Some(id.to_string())
        }
        None => None,
    };
    let now = unix_now();
    let item = json!({
        "id": stripe_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "date": now,
        "description": form.non_empty("description"),
        "discountable": amount >= 0,
        "invoice": invoice,
        "livemode": false,
        "metadata": form.metadata(),
        "period": { "start": now, "end": now },
        "proration": false,
        "quantity": quantity,
        "unit_amount_decimal": (amount / quantity).to_string(),
    });
    if let Some(id) = &invoice {
        add_invoice_line(world, id, &item);
    }
    let id = item["id"].as_str().unwrap_or_default().to_string();
    world.invoice_items.insert(id, item.clone());
    Ok(Reply::ok(item))
}

/// Adds an invoice item to a draft invoice's lines and totals.
fn add_invoice_line(world: &mut World, invoice_id: &str, item: &Value) {
    let Some(invoice) = world.invoices.get_mut(invoice_id) else {
        return;
    };
    let amount = item["amount"].as_i64().unwrap_or(0);
    let line = json!({
        "id": format!("il_{}", alnum(24)),
        "object": "line_item",
        "amount": amount,
        "currency": item["currency"],
        "description": item["description"],
        "invoice": invoice_id,
        "quantity": item["quantity"],
        "parent": { "type": "invoice_item_details", "invoice_item_details": { "invoice_item": item["id"] } },
    });
    if let Some(lines) = invoice["lines"]["data"].as_array_mut() {
        lines.push(line);
    }
    invoice["lines"]["total_count"] =
        json!(invoice["lines"]["data"].as_array().map_or(0, Vec::len));
    let total = invoice["total"].as_i64().unwrap_or(0) + amount;
    let due = total.max(0);
    for field in ["subtotal", "total"] {
        invoice[field] = json!(total);
    }
    for field in ["amount_due", "amount_remaining"] {
        invoice[field] = json!(due);
    }
}

fn invoice_get(world: &World, id: &str) -> Result<Value, Reply> {
    world
        .invoices
        .get(id)
        .cloned()
        .ok_or_else(|| resource_missing("invoice", id, "invoice"))
}

/// A draft invoice. Like the API today, `auto_advance` defaults to false and the customer's
/// pending invoice items are left out unless `pending_invoice_items_behavior=include`.
fn invoice_create(world: &mut World, form: &Form) -> Answer {
    let customer = form
        .non_empty("customer")
        .ok_or_else(|| missing_param("customer"))?
        .to_string();
    let auto_advance = stripe_bool(form, "auto_advance")?.unwrap_or(false);
    let include = match form.get("pending_invoice_items_behavior") {
        None | Some("exclude") => false,
        Some("include") => true,
        Some(other) => {
            return Err(stripe_invalid(
                Some("pending_invoice_items_behavior"),
                None,
                format!("Invalid pending_invoice_items_behavior: must be one of exclude or include (got {other})"),
            ))
        }
    };
    let currency = match form.get("currency") {
        Some(_) => stripe_currency(form)?,
        None => "usd".to_string(),
    };
    let id = stripe_id("in");
    let invoice = json!({
        "id": id,
        "object": "invoice",
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "attempt_count": 0,
        "auto_advance": auto_advance,
        "collection_method": form.get("collection_method").unwrap_or("charge_automatically"),
        "created": unix_now(),
        "currency": currency,
        "customer": customer,
        "description": form.non_empty("description"),
        "hosted_invoice_url": null,
        "lines": { "object": "list", "data": [], "has_more": false, "total_count": 0, "url": format!("/v1/invoices/{id}/lines") },
        "livemode": false,
        "metadata": form.metadata(),
        "number": null,
        "status": "draft",
        "status_transitions": { "finalized_at": null, "paid_at": null, "voided_at": null },
        "subtotal": 0,
        "total": 0,
    });
    world.invoices.insert(id.clone(), invoice);
    if include {
        let mut pending: Vec<Value> = world
            .invoice_items
            .values()
            .filter(|item| item["customer"] == customer.as_str() && item["invoice"].is_null())
            .cloned()
            .collect();
        pending.sort_by_key(|item| item["date"].as_i64().unwrap_or(0));
        for mut item in pending {
            item["invoice"] = json!(id);
            add_invoice_line(world, &id, &item);
            if let Some(item_id) = item["id"].as_str() {
                world
                    .invoice_items
                    .insert(item_id.to_string(), item.clone());
            }
        }
    }
    invoice_get(world, &id).map(Reply::ok)
}

fn invoice_state_error(invoice: &Value, action: &str) -> Reply {
    stripe_invalid(
        None,
        Some("invoice_unexpected_state"),
        format!(
            "You can only {action} this invoice if it is {}; it is {}.",
            if action == "finalize" {
                "a draft"
            } else {
                "open"
            },
            invoice["status"].as_str().unwrap_or_default()
        ),
    )
}

/// Finalizing a draft opens it; an invoice with nothing due is paid at once.
fn invoice_finalize(world: &mut World, id: &str) -> Answer {
    let mut invoice = invoice_get(world, id)?;
    if invoice["status"] != "draft" {
        return Err(invoice_state_error(&invoice, "finalize"));
    }
    let now = unix_now();
    invoice["number"] = json!(format!("SIM-{:04}", world.invoices.len()));
    invoice["status_transitions"]["finalized_at"] = json!(now);
    invoice["hosted_invoice_url"] =
        json!(format!("https://invoice.stripe.com/i/sim_{}", alnum(16)));
    if invoice["amount_due"].as_i64().unwrap_or(0) == 0 {
        invoice["status"] = json!("paid");
        invoice["auto_advance"] = json!(false);
        invoice["status_transitions"]["paid_at"] = json!(now);
    } else {
        invoice["status"] = json!("open");
    }
    world.invoices.insert(id.to_string(), invoice.clone());
    Ok(Reply::ok(invoice))
}

/// Paying an open invoice charges its amount remaining (a draft is finalized first).
fn invoice_pay(world: &mut World, id: &str) -> Answer {
    let invoice = invoice_get(world, id)?;
    match invoice["status"].as_str() {
        Some("draft") => {
            invoice_finalize(world, id)?;
        }
        Some("open") => {}
        _ => return Err(invoice_state_error(&invoice, "pay")),
    }
    let mut invoice = invoice_get(world, id)?;
    if invoice["status"] == "open" {
        let due = invoice["amount_remaining"].as_i64().unwrap_or(0);
        invoice["amount_paid"] = json!(due);
        invoice["amount_remaining"] = json!(0);
        invoice["attempt_count"] = json!(1);
        invoice["auto_advance"] = json!(false);
        invoice["status"] = json!("paid");
        invoice["status_transitions"]["paid_at"] = json!(unix_now());
        world.invoices.insert(id.to_string(), invoice.clone());
    }
    Ok(Reply::ok(invoice))
}

// ---------------------------------------------------------------------------------------------
// Twilio
// ---------------------------------------------------------------------------------------------

struct Message {
    /// The message resource as last answered.
    json: Value,
    segments: i64,
}

fn twilio(world: &mut World, call: &Call) -> Reply {
    let reply = match twilio_auth(call) {
        Ok(()) => twilio_route(world, call).unwrap_or_else(|error| error),
        Err(reply) => reply,
    };
    reply.with("twilio-request-id", format!("RQ{}", hex(32)))
}

fn twilio_auth(call: &Call) -> Result<(), Reply> {
    let credentials_ok = matches!(
        credential(call.headers),
        Credential::Basic(user, password) if user == SIM_TWILIO_SID && password == SIM_TWILIO_TOKEN
    );
    let segments = call.segments();
    let path_account = match segments.as_slice() {
        ["2010-04-01", "Accounts", sid, ..] => Some(sid.strip_suffix(".json").unwrap_or(sid)),
        _ => None,
    };
    if credentials_ok && path_account.is_none_or(|sid| sid == SIM_TWILIO_SID) {
        Ok(())
    } else {
        Err(twilio_error(401, 20003, "Authenticate")
            .with("www-authenticate", "Basic realm=\"Twilio API\""))
    }
}

fn twilio_error_body(status: u16, code: u32, message: &str) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

fn twilio_error(status: u16, code: u32, message: &str) -> Reply {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    Reply::new(status_code, twilio_error_body(status, code, message))
}

fn twilio_not_found(path: &str) -> Reply {
    twilio_error(
        404,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

fn twilio_route(world: &mut World, call: &Call) -> Answer {
    let form = Form::parse(call.body);
    match (call.method.as_str(), call.segments().as_slice()) {
        ("GET", ["2010-04-01", "Accounts", sid]) if sid.ends_with(".json") => {
            Ok(Reply::ok(twilio_account()))
        }
        ("POST", ["2010-04-01", "Accounts", _, "Messages.json"]) => message_create(world, &form),
        ("POST", ["2010-04-01", "Accounts", _, "Calls.json"]) => call_create(world, &form),
        ("GET", ["2010-04-01", "Accounts", _, "Calls", file]) => {
            let sid = file.strip_suffix(".json").unwrap_or(file);
            call_fetch(world, sid).ok_or_else(|| twilio_not_found(call.path))
        }
        ("GET", ["2010-04-01", "Accounts", _, "Messages", file]) => {
            let sid = file.strip_suffix(".json").unwrap_or(file);
            message_fetch(world, sid).ok_or_else(|| twilio_not_found(call.path))
        }
        _ => Err(twilio_not_found(call.path)),
    }
}

fn twilio_account() -> Value {
    let base = format!("/2010-04-01/Accounts/{SIM_TWILIO_SID}");
    let now = rfc2822_now();
    json!({
        "sid": SIM_TWILIO_SID,
        "owner_account_sid": SIM_TWILIO_SID,
        "friendly_name": "vendorgate simulator",
        "status": "active",
        "type": "Full",
        "date_created": now,
        "date_updated": now,
        "uri": format!("{base}.json"),
        "subresource_uris": {
            "balance": format!("{base}/Balance.json"),
            "calls": format!("{base}/Calls.json"),
            "messages": format!("{base}/Messages.json"),
        },
    })
}

fn message_create(world: &mut World, form: &Form) -> Answer {
    let to = form
        .non_empty("To")
        .ok_or_else(|| twilio_error(400, 21604, "A 'To' phone number is required."))?;
    let from = form.non_empty("From");
    let service = form.non_empty("MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return Err(twilio_error(
            400,
            21603,
            "A 'From' phone number is required.",
        ));
    }
    let body = form.get("Body").unwrap_or("");
    let num_media = form.count("MediaUrl");
    if body.is_empty() && num_media == 0 && form.non_empty("ContentSid").is_none() {
        return Err(twilio_error(400, 21602, "Message body is required."));
    }
    if body.chars().count() > 1600 {
        return Err(twilio_error(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    if !is_phone_address(to) {
        let message = format!("The 'To' number {to} is not a valid phone number.");
        return Err(twilio_error(400, 21211, &message));
    }
    let sid = format!("SM{}", hex(32));
    let segments = sms_segments(body);
    let base = format!("/2010-04-01/Accounts/{SIM_TWILIO_SID}/Messages/{sid}");
    let now = rfc2822_now();
    // Through a Messaging Service no sender is assigned yet, so Twilio reports 0 segments.
    let (status, num_segments) = match service {
        Some(_) => ("accepted", 0),
        None => ("queued", segments),
    };
    let json = json!({
        "account_sid": SIM_TWILIO_SID,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": service,
        "num_media": num_media.to_string(),
        "num_segments": num_segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {
            "media": format!("{base}/Media.json"),
            "feedback": format!("{base}/Feedback.json"),
        },
        "to": to,
        "uri": format!("{base}.json"),
    });
    let reply = Reply::new(StatusCode::CREATED, json.clone());
    world.messages.insert(sid, Message { json, segments });
    Ok(reply)
}

/// An outbound call: queued, with no price until it has ended.
fn call_create(world: &mut World, form: &Form) -> Answer {
    let to = form
        .non_empty("To")
        .ok_or_else(|| twilio_error(400, 21201, "No 'To' number is specified"))?;
    let from = form
        .non_empty("From")
        .ok_or_else(|| twilio_error(400, 21213, "No 'From' number is specified"))?;
    if ["Url", "Twiml", "ApplicationSid"]
        .iter()
        .all(|k| form.non_empty(k).is_none())
    {
        return Err(twilio_error(
            400,
            21205,
            "Either Url, Twiml or ApplicationSid is required",
        ));
    }
    if !is_phone_address(to) && !to.starts_with("client:") {
        let message = format!("The phone number you are attempting to call, {to}, is not valid.");
        return Err(twilio_error(400, 13223, &message));
    }
    let sid = format!("CA{}", hex(32));
    let base = format!("/2010-04-01/Accounts/{SIM_TWILIO_SID}/Calls/{sid}");
    let now = rfc2822_now();
    let json = json!({
        "account_sid": SIM_TWILIO_SID,
        "annotation": null,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": now,
        "date_updated": now,
        "direction": "outbound-api",
        "duration": null,
        "end_time": null,
        "forwarded_from": null,
        "from": from,
        "from_formatted": from,
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": null,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": sid,
        "start_time": null,
        "status": "queued",
        "subresource_uris": {
            "notifications": format!("{base}/Notifications.json"),
            "recordings": format!("{base}/Recordings.json"),
        },
        "to": to,
        "to_formatted": to,
        "trunk_sid": null,
        "uri": format!("{base}.json"),
    });
    world.calls.insert(sid, json.clone());
    Ok(Reply::new(StatusCode::CREATED, json))
}

/// The call, ended after one minute and priced from the first fetch on.
fn call_fetch(world: &mut World, sid: &str) -> Option<Reply> {
    let call = world.calls.get_mut(sid)?;
    if call["status"] != "completed" {
        let now = rfc2822_now();
        call["status"] = json!("completed");
        call["duration"] = json!("60");
        call["price"] = json!(format!("-0.{TWILIO_PRICE_PER_CALL_MINUTE:05}"));
        call["start_time"] = json!(now);
        call["end_time"] = json!(now);
        call["date_updated"] = json!(now);
    }
    Some(Reply::ok(call.clone()))
}

/// The message, delivered and priced from the first fetch on.
fn message_fetch(world: &mut World, sid: &str) -> Option<Reply> {
    let message = world.messages.get_mut(sid)?;
    if message.json["status"] != "delivered" {
        let now = rfc2822_now();
        let json = &mut message.json;
        json["status"] = json!("delivered");
        json["price"] = json!(twilio_price(message.segments));
        json["num_segments"] = json!(message.segments.to_string());
        json["date_sent"] = json!(now);
        json["date_updated"] = json!(now);
        if json["from"].is_null() {
            json["from"] = json!("+15005550006");
        }
    }
    Some(Reply::ok(message.json.clone()))
}

/// `-(0.0079 × segments)` with five decimals, e.g. `-0.00790`.
fn twilio_price(segments: i64) -> String {
    let total = TWILIO_PRICE_PER_SEGMENT * segments;
    format!("-{}.{:05}", total / 100_000, total % 100_000)
}

/// An E.164-ish number (`+` optional, 5 to 15 digits) or a channel address like `whatsapp:+1…`.
fn is_phone_address(to: &str) -> bool {
    if to.contains(':') {
        return true;
    }
    let digits = to.strip_prefix('+').unwrap_or(to);
    (5..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
                          ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM-7 extension characters take two septets.
const GSM7_EXTENDED: &str = "\u{c}^{}\\[~]|€";

/// SMS segments: GSM-7 160 per message / 153 per segment, else UCS-2 70 / 67 (UTF-16 units).
fn sms_segments(body: &str) -> i64 {
    let septets: Option<usize> = body
        .chars()
        .map(|c| {
            if GSM7_BASIC.contains(c) {
                Some(1)
            } else if GSM7_EXTENDED.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (units, single, per_segment) = match septets {
        Some(septets) => (septets, 160, 153),
        None => (body.encode_utf16().count(), 70, 67),
    };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(per_segment)
    };
    i64::try_from(segments).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Resend
// ---------------------------------------------------------------------------------------------

fn resend(world: &mut World, call: &Call) -> Reply {
    match resend_auth(call.headers) {
        Ok(()) => idempotent(world, Vendor::Resend, call, None, resend_route),
        Err(reply) => reply,
    }
}

fn resend_auth(headers: &HeaderMap) -> Result<(), Reply> {
    match credential(headers) {
        Credential::Bearer(key) if key == SIM_RESEND_KEY => Ok(()),
        Credential::Missing => Err(resend_error(
            401,
            "missing_api_key",
            "Missing API key in the authorization header. Include the following header in \
             the request: Authorization: Bearer YOUR_API_KEY",
        )),
        _ => Err(resend_error(403, "invalid_api_key", "API key is invalid")),
    }
}

fn resend_error_body(status: u16, name: &str, message: &str) -> Value {
    json!({ "statusCode": status, "message": message, "name": name })
}

fn resend_error(status: u16, name: &str, message: impl AsRef<str>) -> Reply {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    Reply::new(
        status_code,
        resend_error_body(status, name, message.as_ref()),
    )
}

fn resend_route(world: &mut World, call: &Call) -> Reply {
    let answer = match (call.method.as_str(), call.segments().as_slice()) {
        ("POST", ["emails"]) => send_email(world, call.body),
        ("POST", ["emails", "batch"]) => send_batch(world, call),
        ("POST", ["broadcasts"]) => broadcast_create(world, call.body),
        ("GET", ["broadcasts", id]) => world
            .broadcasts
            .get(*id)
            .map(|broadcast| Reply::ok(broadcast.clone()))
            .ok_or_else(|| resend_error(404, "not_found", "Broadcast not found")),
        ("GET", ["emails", id]) => world
            .emails
            .get(*id)
            .map(|email| Reply::ok(email.clone()))
            .ok_or_else(|| resend_error(404, "not_found", "Email not found")),
        _ => Err(resend_error(
            404,
            "not_found",
            "The requested endpoint does not exist.",
        )),
    };
    answer.unwrap_or_else(|error| error)
}

fn resend_json(body: &[u8]) -> Result<Value, Reply> {
    serde_json::from_slice(body).map_err(|error| {
        resend_error(
            400,
            "validation_error",
            format!("Invalid JSON body: {error}"),
        )
    })
}

fn send_email(world: &mut World, body: &[u8]) -> Answer {
    let email = resend_email(&resend_json(body)?)?;
    let id = store_email(world, email);
    Ok(Reply::ok(json!({ "id": id })))
}

fn send_batch(world: &mut World, call: &Call) -> Answer {
    let body = resend_json(call.body)?;
    let Some(items) = body.as_array() else {
        return Err(resend_error(
            422,
            "validation_error",
            "The batch body must be a JSON array of emails.",
        ));
    };
    if items.is_empty() || items.len() > 100 {
        return Err(resend_error(
            422,
            "validation_error",
            "A batch must hold between 1 and 100 emails.",
        ));
    }
    let permissive = call
        .header("x-batch-validation")
        .is_some_and(|mode| mode.eq_ignore_ascii_case("permissive"));
    let checked: Vec<Result<Value, Reply>> = items.iter().map(resend_email).collect();
    if !permissive {
        if let Some(Err(error)) = checked.iter().find(|result| result.is_err()) {
            return Err(error.clone());
        }
    }
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for (index, result) in checked.into_iter().enumerate() {
        match result {
            Ok(email) => data.push(json!({ "id": store_email(world, email) })),
            Err(error) => errors.push(json!({ "index": index, "message": error.body["message"] })),
        }
    }
    let mut answer = json!({ "data": data });
    if permissive {
        answer["errors"] = json!(errors);
    }
    Ok(Reply::ok(answer))
}

/// A broadcast to a segment: a draft, or queued (scheduled) when `send` is true. The answer,
/// like Resend's, holds only the id.
fn broadcast_create(world: &mut World, body: &[u8]) -> Answer {
    let input = resend_json(body)?;
    let Some(fields) = input.as_object() else {
        return Err(resend_error(
            422,
            "validation_error",
            "The body must be a JSON object.",
        ));
    };
    let text = |field: &str| {
        fields
            .get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.trim().is_empty())
    };
    let segment = text("segment_id").or_else(|| text("audience_id"));
    for (field, value) in [
        ("segment_id", segment),
        ("from", text("from")),
        ("subject", text("subject")),
    ] {
        if value.is_none() {
            return Err(resend_error(
                422,
                "missing_required_field",
                format!("Missing `{field}` field."),
            ));
        }
    }
    let send = fields.get("send").and_then(Value::as_bool).unwrap_or(false);
    let scheduled_at = fields.get("scheduled_at").cloned().unwrap_or(Value::Null);
    let status = match (send, scheduled_at.is_null()) {
        (false, _) => "draft",
        (true, true) => "queued",
        (true, false) => "scheduled",
    };
    let id = uuid();
    let broadcast = json!({
        "object": "broadcast",
        "id": id,
        "name": fields.get("name").cloned().unwrap_or(Value::Null),
        "segment_id": segment,
        "from": text("from"),
        "subject": text("subject"),
        "reply_to": fields.get("reply_to").cloned().unwrap_or(Value::Null),
        "preview_text": fields.get("preview_text").cloned().unwrap_or(Value::Null),
        "html": fields.get("html").cloned().unwrap_or(Value::Null),
        "text": fields.get("text").cloned().unwrap_or(Value::Null),
        "status": status,
        "created_at": now().format(&Rfc3339).unwrap_or_default(),
        "scheduled_at": scheduled_at,
        "sent_at": null,
    });
    world.broadcasts.insert(id.clone(), broadcast);
    Ok(Reply::ok(json!({ "id": id })))
}

/// Validates one email and returns it as GET /emails/{id} will show it (without id yet).
fn resend_email(input: &Value) -> Result<Value, Reply> {
    let Some(fields) = input.as_object() else {
        return Err(resend_error(
            422,
            "validation_error",
            "Each email must be a JSON object.",
        ));
    };
    let missing = |field: &str| {
        resend_error(
            422,
            "missing_required_field",
            format!("Missing `{field}` field."),
        )
    };
    let text = |field: &str| {
        fields
            .get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.trim().is_empty())
    };
    let from = text("from").ok_or_else(|| missing("from"))?;
    let to = addresses(fields, "to")?;
    if to.is_empty() {
        return Err(missing("to"));
    }
    if to.len() > 50 {
        return Err(resend_error(
            422,
            "validation_error",
            "Too many recipients in the `to` field: at most 50.",
        ));
    }
    let subject = text("subject").ok_or_else(|| missing("subject"))?;
    let list_or_null = |list: Vec<String>| {
        if list.is_empty() {
            Value::Null
        } else {
            json!(list)
        }
    };
    Ok(json!({
        "object": "email",
        "to": to,
        "from": from,
        "created_at": now().format(&Rfc3339).unwrap_or_default(),
        "subject": subject,
        "html": fields.get("html").cloned().unwrap_or(Value::Null),
        "text": fields.get("text").cloned().unwrap_or(Value::Null),
        "cc": list_or_null(addresses(fields, "cc")?),
        "bcc": list_or_null(addresses(fields, "bcc")?),
        "reply_to": list_or_null(addresses(fields, "reply_to")?),
        "last_event": "delivered",
        "scheduled_at": fields.get("scheduled_at").cloned().unwrap_or(Value::Null),
        "tags": fields.get("tags").cloned().unwrap_or(Value::Null),
    }))
}

/// A recipient field: absent, a string, or an array of strings.
fn addresses(fields: &Map<String, Value>, field: &str) -> Result<Vec<String>, Reply> {
    let invalid = || {
        resend_error(
            422,
            "validation_error",
            format!("Invalid `{field}` field: expected a string or an array of strings."),
        )
    };
    match fields.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(one)) if one.trim().is_empty() => Ok(Vec::new()),
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(many)) => many
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

fn store_email(world: &mut World, mut email: Value) -> String {
    let id = uuid();
    email["id"] = json!(id);
    world.emails.insert(id.clone(), email);
    id
}

// ---------------------------------------------------------------------------------------------
// Ids and clocks
// ---------------------------------------------------------------------------------------------

fn alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn hex(len: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(DIGITS[rng.random_range(0..16)]))
        .collect()
}

/// `pi_` + 24 alphanumerics, like Stripe's ids.
fn stripe_id(prefix: &str) -> String {
    format!("{prefix}_{}", alnum(24))
}

/// A random (version 4) UUID.
fn uuid() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn unix_now() -> i64 {
    now().unix_timestamp()
}

fn rfc2822_now() -> String {
    now().format(&Rfc2822).unwrap_or_default()
}
