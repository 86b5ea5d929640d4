//! Refusals in each vendor's own error shape, so the official SDK raises its normal error
//! with a `vendorgate_<reason>` code and a message a person can act on.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::error::Error;
use crate::vendors::Vendor;

/// Status, headers and body of a refusal.
pub fn render(vendor: Option<Vendor>, err: &Error) -> (u16, HeaderMap, Bytes) {
    let status = err.http_status();
    let code = format!("vendorgate_{}", err.reason());
    let message = err.to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Lets a client in connect mode tell a gateway refusal from a vendor's own error.
    if let Ok(v) = HeaderValue::from_str(err.reason()) {
        headers.insert("vendorgate-refusal", v);
    }
    let mut body = match vendor {
        Some(Vendor::Stripe) => {
            // The SDKs retry 409 and 5xx unless told not to; a refusal will not change on retry.
            headers.insert("stripe-should-retry", HeaderValue::from_static("false"));
            let kind = if status >= 500 {
                "api_error"
            } else {
                "invalid_request_error"
            };
            json!({"error": {"type": kind, "code": code, "message": message, "doc_url": "https://github.com/vendorgate/vendorgate#refusals"}})
        }
        Some(Vendor::Twilio) => json!({
            "code": code,
            "message": message,
            "more_info": "https://github.com/vendorgate/vendorgate#refusals",
            "status": status,
        }),
        Some(Vendor::Resend) => json!({"statusCode": status, "name": code, "message": message}),
        None => json!({"error": {"type": "vendorgate_error", "code": code, "message": message}}),
    };
    // Machine-readable details for the bindings' connect mode; the SDKs ignore the field.
    body["vendorgate"] = err.details();
    (status, headers, Bytes::from(body.to_string()))
}
