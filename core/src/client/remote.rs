//! Connect mode: a running `vendorgate serve` through its admin API and vendor routes. A
//! refusal comes back as the same `Error` an embedded gateway raises, recognised here once:
//! by the `Vendorgate-Refusal` header, or by the `"vendorgate"` object every refusal body
//! carries (a proxy in between may drop headers).

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use super::ClientResponse;
use crate::error::{Error, Result, REASONS};
use crate::money::parse_usd;
use crate::vendors::Vendor;

/// A connection to a running server.
#[derive(Clone)]
pub struct Remote {
    base: String,
    admin_token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Read a `Vendorgate-*-Usd` header back into micro-USD.
fn usd_header(h: &reqwest::header::HeaderMap, name: &str) -> Option<i64> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| parse_usd(name, s).ok())
}

impl Remote {
    pub fn connect(url: &str, admin_token: Option<String>) -> Result<Remote> {
        let u = crate::config::parse_upstream_url("url", url)
            .map_err(|e| Error::invalid("url", e.to_string()))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Remote {
            base: u.as_str().trim_end_matches('/').to_string(),
            admin_token,
            http,
        })
    }

    pub(super) async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.admin_token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| unreachable_server(&self.base, &e))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| unreachable_server(&self.base, &e))?;
        if status == 204 {
            return Ok(Value::Null);
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let err = v.get("error").cloned().unwrap_or(Value::Null);
        let code = err
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("upstream_error")
            .to_string();
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("the server answered {status}"));
        let reason = match code.as_str() {
            // The admin API's own 401 is about the admin token, not a vault key.
            "unauthorized" | "admin_disabled" => "unauthorized",
            other => other,
        };
        Err(Error::from_remote(reason, status, message, err))
    }

    pub(super) async fn vendor_request(
        &self,
        vendor: Option<Vendor>,
        method: &str,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<ClientResponse> {
        let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::invalid("method", format!("{method:?} is not an HTTP method")))?;
        let resp = self
            .http
            .request(m, vendor_url(&self.base, vendor, path))
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable_server(&self.base, &e))?;
        let status = resp.status().as_u16();
        let refusal = resp
            .headers()
            .get("vendorgate-refusal")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let cost_micros = usd_header(resp.headers(), "vendorgate-cost-usd").unwrap_or(0);
        let remaining_micros = usd_header(resp.headers(), "vendorgate-remaining-usd");
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect();
        let body = resp
            .bytes()
            .await
            .map_err(|e| unreachable_server(&self.base, &e))?;
        if let Some(e) = refusal_of(status, refusal.as_deref(), &body) {
            return Err(e);
        }
        Ok(ClientResponse {
            status,
            headers,
            body,
            cost_micros,
            remaining_micros,
        })
    }
}

/// A vendor route on the server: `/{vendor}/path`, or `/path` when the vendor is left to the
/// key (the server then takes it from the vault key).
fn vendor_url(base: &str, vendor: Option<Vendor>, path: &str) -> String {
    match vendor {
        Some(v) => format!("{base}/{}{path}", v.as_str()),
        None => format!("{base}{path}"),
    }
}

fn unreachable_server(base: &str, e: &reqwest::Error) -> Error {
    Error::Remote {
        reason: "upstream_error",
        status: 502,
        message: format!(
            "could not reach the vendorgate server at {base}: {}",
            if e.is_timeout() {
                "timed out".to_string()
            } else {
                e.to_string()
            }
        ),
        details: Value::Null,
    }
}

/// The refusal an answer of a remote gateway carries, if it is one.
fn refusal_of(status: u16, header: Option<&str>, body: &[u8]) -> Option<Error> {
    if header.is_none() && status < 400 {
        return None;
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let details = v.get("vendorgate").cloned().unwrap_or(Value::Null);
    let reason = match header {
        Some(r) => r.to_string(),
        // Without the header, only a body whose reason is one of ours is a refusal; anything
        // else is the vendor's own error answer, passed through.
        None => details
            .get("reason")
            .and_then(Value::as_str)
            .filter(|r| REASONS.contains(r))?
            .to_string(),
    };
    let message = details
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("refused by the gateway")
        .to_string();
    Some(Error::from_remote(&reason, status, message, details))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_found_by_header_or_by_body() {
        let body = br#"{"error": {"code": "vendorgate_spend_cap_exceeded"}, "vendorgate": {"reason": "spend_cap_exceeded", "message": "cap"}}"#;
        let by_header = refusal_of(402, Some("spend_cap_exceeded"), body).unwrap();
        assert_eq!(by_header.reason(), "spend_cap_exceeded");
        let by_body = refusal_of(402, None, body).unwrap();
        assert_eq!(by_body.to_string(), "cap");
        // A vendor's own 402 (a declined card) is not a refusal.
        let vendor = br#"{"error": {"code": "card_declined", "message": "declined"}}"#;
        assert!(refusal_of(402, None, vendor).is_none());
        assert!(refusal_of(200, None, body).is_none());
    }
}
