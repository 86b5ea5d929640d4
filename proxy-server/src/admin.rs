//! The admin API (DESIGN.md, "Admin API"). Every route but `/healthz` needs
//! `Authorization: Bearer <admin token>`, compared in constant time.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use vendorgate::gateway::{KeyCursor, KeyPage};
use vendorgate::{AuditQuery, Error, KeySpec};

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/keys", get(list_keys).post(issue_key))
        .route("/v1/keys/{key}", get(show_key).delete(revoke_key))
        .route("/v1/budgets", get(list_budgets).post(create_budget))
        .route("/v1/budgets/{name}", get(show_budget))
        .route("/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route("/v1/webhooks/{id}", axum::routing::delete(delete_webhook))
        .route("/v1/events", get(list_events))
        .route("/v1/audit", get(audit))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::dashboard::router())
        .with_state(state)
}

/// An admin API error: `{"error": {"code", "message", "field"?}}`.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({"error": {"code": e.reason(), "message": e.to_string()}});
        if let Error::InvalidInput { field, .. } = &e {
            body["error"]["field"] = json!(field);
        }
        ApiError(status, body)
    }
}

fn api_error(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError(
        status,
        json!({"error": {"code": code, "message": message.into()}}),
    )
}

pub(crate) fn check_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = state.admin_token.as_deref() else {
        return Err(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "admin_disabled",
            "the admin API is disabled because no admin token is set: set VENDORGATE_ADMIN_TOKEN (or admin_token in the config file) and restart",
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        Some(g) if bool::from(g.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
        Some(_) => Err(api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin token is wrong",
        )),
        None => Err(api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as Authorization: Bearer <token>",
        )),
    }
}

/// An admin request's JSON body, or a 400 that says why not.
fn json_body(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid("body", format!("is not valid JSON: {e}")))
}

async fn issue_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let v = json_body(&body)?;
    let spec = KeySpec::from_json(&v)?;
    let issued = state.gateway.issue_key(spec).await?;
    let body = issued.to_json(state.gateway.now_ms());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
struct ListParams {
    run_id: Option<String>,
    active: Option<String>,
    limit: Option<usize>,
    /// From the `Vendorgate-Next-Cursor` header of the previous page.
    cursor: Option<String>,
    /// An exact key id or run id.
    q: Option<String>,
}

/// Where the next page of `GET /v1/keys?cursor=…` starts; absent on the last page.
pub const NEXT_CURSOR_HEADER: &str = "vendorgate-next-cursor";

async fn list_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let active = match p.active.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(
                Error::invalid("active", format!("must be true or false, got {other:?}")).into(),
            )
        }
    };
    // A cursor or a search asks for pages (the dashboard); without them the old list stays.
    if p.cursor.is_some() || p.q.is_some() {
        let after = p.cursor.as_deref().map(KeyCursor::decode).transpose()?;
        let (keys, next) = state
            .gateway
            .list_keys_page(KeyPage {
                run_id: p.run_id,
                active_only: active,
                search: p.q.map(|q| q.trim().to_string()),
                after,
                limit: p.limit.unwrap_or(50),
            })
            .await?;
        let mut resp =
            Json(Value::Array(keys.iter().map(|k| k.to_json()).collect())).into_response();
        if let Some(next) = next {
            if let Ok(v) = axum::http::HeaderValue::from_str(&next.encode()) {
                resp.headers_mut().insert(NEXT_CURSOR_HEADER, v);
            }
        }
        return Ok(resp);
    }
    let keys = state
        .gateway
        .list_keys(p.run_id, active, p.limit.unwrap_or(1000).min(10_000))
        .await?;
    Ok(Json(Value::Array(keys.iter().map(|k| k.to_json()).collect())).into_response())
}

async fn create_budget(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let v = json_body(&body)?;
    let budget = vendorgate::store::Budget::from_json(&v, state.gateway.now_ms())?;
    let created = state.gateway.create_budget(budget).await?;
    Ok((StatusCode::CREATED, Json(created.to_json())).into_response())
}

async fn list_budgets(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let all: Vec<Value> = state
        .gateway
        .budgets()
        .await?
        .iter()
        .map(|b| b.to_json())
        .collect();
    Ok(Json(Value::Array(all)).into_response())
}

async fn show_budget(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    Ok(Json(state.gateway.budget(&name).await?.to_json()).into_response())
}

/// 201 with the secret: the only time it is shown.
async fn create_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let v = json_body(&body)?;
    let w = state.gateway.create_webhook(&v).await?;
    Ok((StatusCode::CREATED, Json(w.created_json())).into_response())
}

async fn list_webhooks(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let all: Vec<Value> = state
        .gateway
        .webhooks()
        .await?
        .iter()
        .map(|w| w.to_json())
        .collect();
    Ok(Json(Value::Array(all)).into_response())
}

async fn delete_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    state.gateway.delete_webhook(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct EventParams {
    limit: Option<usize>,
}

/// The newest events first, each with how its deliveries stand.
async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<EventParams>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let events = state.gateway.events(p.limit.unwrap_or(100)).await?;
    Ok(Json(Value::Array(events.iter().map(|e| e.to_json()).collect())).into_response())
}

async fn show_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    Ok(Json(state.gateway.key_status(&key).await?.to_json()).into_response())
}

async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    state.gateway.revoke(&key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct AuditParams {
    key_id: Option<String>,
    run_id: Option<String>,
    since: Option<String>,
    after_id: Option<i64>,
    limit: Option<usize>,
}

/// `since` is RFC 3339 or milliseconds since the epoch.
pub(crate) fn parse_since(s: &str) -> Result<i64, Error> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| Error::invalid("since", format!("{s:?} is neither RFC 3339 (2026-01-31T12:00:00Z) nor milliseconds since the epoch")))
}

async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<AuditParams>,
) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    let since_ms = p.since.as_deref().map(parse_since).transpose()?;
    let rows = state
        .gateway
        .audit(AuditQuery {
            key_id: p.key_id,
            run_id: p.run_id,
            since_ms,
            after_id: p.after_id,
            limit: p.limit.unwrap_or(100),
        })
        .await?;
    Ok(Json(Value::Array(rows.iter().map(|r| r.to_json()).collect())).into_response())
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.gateway.health().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    check_admin(&state, &headers)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            vendorgate::metrics::CONTENT_TYPE,
        )],
        state.gateway.render_metrics(),
    )
        .into_response())
}
