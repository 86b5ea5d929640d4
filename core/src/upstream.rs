//! Forwarding: one pooled HTTP client, no redirects, no environment proxy, bounded answers.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName};

use crate::config::Config;
use crate::error::UpstreamFailure;

/// Request headers never forwarded: hop-by-hop, routing, and the agent's own credentials.
/// `accept-encoding` is dropped so answers come back readable for settling.
const DROP_REQUEST: [&str; 14] = [
    "host",
    "authorization",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "forwarded",
    "accept-encoding",
    "expect",
];

/// Answer headers not passed back (the edge sets its own framing).
const DROP_RESPONSE: [&str; 7] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "trailer",
    "upgrade",
    "proxy-connection",
];

pub fn build_client(config: &Config) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(config.max_upstream_requests)
        .tcp_nodelay(true)
        .build()
        .expect("the HTTP client configuration is static and valid")
}

pub fn forwardable_request_headers(incoming: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(incoming.len());
    for (name, value) in incoming {
        let n = name.as_str();
        if DROP_REQUEST.contains(&n) || n.starts_with("x-forwarded-") || n.starts_with("proxy-") {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

pub fn passable_response_headers(incoming: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(incoming.len());
    for (name, value) in incoming {
        if DROP_RESPONSE.contains(&name.as_str()) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

pub struct UpstreamAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub latency: Duration,
}

pub struct UpstreamError {
    pub kind: UpstreamFailure,
    pub detail: String,
    pub latency: Duration,
    /// The status line arrived before the failure (a broken or oversized body).
    pub status: Option<u16>,
}

/// Send one request and read the whole answer (bounded by `max_response`).
pub async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: HeaderMap,
    body: Bytes,
    max_response: usize,
) -> Result<UpstreamAnswer, UpstreamError> {
    let started = Instant::now();
    let fail = |kind, detail: String, status| UpstreamError {
        kind,
        detail,
        latency: started.elapsed(),
        status,
    };
    let mut resp = match client
        .request(method, url)
        .headers(headers)
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let kind = classify(&e);
            return Err(fail(kind, describe(&e), None));
        }
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > max_response {
                    return Err(fail(
                        UpstreamFailure::Broken,
                        format!("answer larger than {max_response} bytes"),
                        Some(status),
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                // The request was sent: a failure reading the answer is never "nothing sent".
                let kind = if e.is_timeout() {
                    UpstreamFailure::Timeout
                } else {
                    UpstreamFailure::Broken
                };
                return Err(fail(kind, describe(&e), Some(status)));
            }
        }
    }
    Ok(UpstreamAnswer {
        status,
        headers,
        body: buf.freeze(),
        latency: started.elapsed(),
    })
}

fn classify(e: &reqwest::Error) -> UpstreamFailure {
    // A connect error (refused, DNS, TLS handshake, connect timeout) means the request never
    // left: nothing can have moved.
    if e.is_connect() {
        UpstreamFailure::ConnectFailed
    } else if e.is_timeout() {
        UpstreamFailure::Timeout
    } else {
        UpstreamFailure::Broken
    }
}

/// Error text without the URL (which is fine) or anything from headers (which could hold a
/// credential): reqwest errors never include header values, but keep only the cause chain.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = vec![];
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    if parts.is_empty() {
        parts.push(if e.is_timeout() {
            "timed out".into()
        } else {
            "request failed".into()
        });
    }
    parts.join(": ")
}

/// The vendor's request id, for the audit row.
pub fn vendor_request_id(headers: &HeaderMap) -> Option<String> {
    ["request-id", "twilio-request-id", "x-request-id"]
        .iter()
        .find_map(|h| headers.get(HeaderName::from_static(h)))
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect())
}
