//! Faults: how an `X-Sim-Fault` header spoils an answer.

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::RequestExt;
use serde_json::{json, Value};

use crate::plumbing::{Reply, Vendor};
use crate::resend::resend_error_body;
use crate::twilio::twilio_error_body;

/// How long the `timeout` and `slow-body` faults keep the client waiting.
const FAULT_DELAY: Duration = Duration::from_secs(30);
/// Size of the `huge` fault's body.
const HUGE_BODY_BYTES: usize = 20 << 20;

pub(crate) async fn inject_fault(fault: &str, vendor: Vendor, reply: Reply) -> Response {
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
