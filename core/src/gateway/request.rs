//! A request as an edge hands it to the gateway, and what comes back: transport-free types
//! the proxy server and both bindings build and read.

use bytes::Bytes;
use http::HeaderMap;

use crate::error::Error;
use crate::vendors::Vendor;

/// One request as the edge received it.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    /// Vendor from a `/{vendor}/` route prefix; `None` takes it from the vault key.
    pub vendor: Option<Vendor>,
    /// The vault key, as the edge found it (the server: where the vendor's SDK puts its key,
    /// see `credentials::vault_key_from`; the bindings: the value they were given).
    pub vault_key: Option<String>,
    pub method: String,
    /// Raw path (percent-encoded as sent), without the vendor prefix or the query.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A forwarded answer, passed through unchanged plus the gateway's two headers.
#[derive(Debug, Clone)]
pub struct ProxyResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub cost_micros: i64,
    pub remaining_micros: i64,
}

/// A refused request: the error and the vendor whose error shape to answer in.
#[derive(Debug)]
pub struct Refused {
    pub vendor: Option<Vendor>,
    pub error: Error,
}

impl Refused {
    /// Render the refusal as the vendor's own error answer.
    pub fn to_response(&self) -> ProxyResponse {
        let (status, headers, body) = crate::refusal::render(self.vendor, &self.error);
        ProxyResponse {
            status,
            headers,
            body,
            cost_micros: 0,
            remaining_micros: 0,
        }
    }
}
