//! Vendor routes: `/{vendor}/{vendor path}` and the same paths with no prefix (the vendor
//! then comes from the vault key; stripe-node cannot add a prefix).

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use vendorgate::credentials::vault_key_from;
use vendorgate::{Error, ProxyRequest, ProxyResponse, Refused, Vendor};

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Split a `/{vendor}/…` prefix off a path.
pub fn vendor_from_prefix(path: &str) -> (Option<Vendor>, &str) {
    for v in Vendor::ALL {
        let prefix = v.as_str();
        if let Some(rest) = path.strip_prefix('/').and_then(|p| p.strip_prefix(prefix)) {
            if rest.starts_with('/') {
                return (Some(v), rest);
            }
        }
    }
    (None, path)
}

async fn handle(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let (vendor, path) = vendor_from_prefix(parts.uri.path());
    let path = path.to_string();
    let limit = state.gateway.config().max_body_bytes;
    let body: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let refused = Refused {
                vendor: vendor.or_else(|| Vendor::guess_from_path(&path)),
                error: Error::BodyTooLarge {
                    size: limit + 1,
                    limit,
                },
            };
            return to_response(refused.to_response());
        }
    };
    let proxy_req = ProxyRequest {
        vendor,
        vault_key: vault_key_from(&parts.headers),
        method: parts.method.as_str().to_string(),
        path,
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    // The pipeline runs to the end even if the agent hangs up, so every reservation is
    // settled and audited.
    let gateway = state.gateway.clone();
    let joined = tokio::spawn(async move { gateway.process(proxy_req).await }).await;
    match joined {
        Ok(Ok(resp)) => to_response(resp),
        Ok(Err(refused)) => to_response(refused.to_response()),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    }
}

fn to_response(r: ProxyResponse) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = resp.headers_mut();
    for (name, value) in r.headers.iter() {
        headers.append(HeaderName::from(name), HeaderValue::from(value));
    }
    resp
}
