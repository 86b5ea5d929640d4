//! Request bodies as the bindings hand them over, and their encoding: JSON, raw bytes, or a
//! form encoded Stripe-style (`a[b]=`, `a[0]=`) once, here, for both bindings.

use bytes::Bytes;
use serde_json::Value;

use crate::error::{Error, Result};

/// A request body.
#[derive(Debug, Clone)]
pub enum RequestBody {
    Empty,
    /// Form fields; nested objects and arrays are encoded Stripe-style (`a[b]=`, `a[0]=`).
    Form(Value),
    Json(Value),
    Raw(Bytes),
}

impl RequestBody {
    /// A body from a binding: `kind` is `empty`, `form` or `json` (then `bytes` is JSON
    /// text) or `raw` (the bytes to send).
    pub fn from_kind(kind: &str, bytes: Option<Vec<u8>>) -> Result<RequestBody> {
        let json = |b: &Option<Vec<u8>>| -> Result<Value> {
            serde_json::from_slice(b.as_deref().unwrap_or(b"null"))
                .map_err(|e| Error::invalid(kind, format!("is not JSON-encodable: {e}")))
        };
        Ok(match kind {
            "empty" => RequestBody::Empty,
            "form" => RequestBody::Form(json(&bytes)?),
            "json" => RequestBody::Json(json(&bytes)?),
            "raw" => RequestBody::Raw(Bytes::from(bytes.unwrap_or_default())),
            other => {
                return Err(Error::invalid(
                    "body",
                    format!(
                        "unknown body kind {:?} (empty, form, json or raw)",
                        other.chars().take(16).collect::<String>()
                    ),
                ))
            }
        })
    }
}

/// Encode a body; returns its content type.
pub fn encode_body(body: RequestBody) -> Result<(Option<&'static str>, Bytes)> {
    Ok(match body {
        RequestBody::Empty => (None, Bytes::new()),
        RequestBody::Raw(b) => (None, b),
        RequestBody::Json(v) => (Some("application/json"), Bytes::from(v.to_string())),
        RequestBody::Form(v) => {
            let obj = v.as_object().ok_or_else(|| {
                Error::invalid("form", "must be a mapping of field names to values")
            })?;
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, val) in obj {
                flatten(&mut ser, k, val)?;
            }
            (
                Some("application/x-www-form-urlencoded"),
                Bytes::from(ser.finish()),
            )
        }
    })
}

fn flatten(ser: &mut form_urlencoded::Serializer<'_, String>, key: &str, v: &Value) -> Result<()> {
    match v {
        Value::Null => {}
        Value::Bool(b) => {
            ser.append_pair(key, if *b { "true" } else { "false" });
        }
        Value::Number(n) => {
            ser.append_pair(key, &n.to_string());
        }
        Value::String(s) => {
            ser.append_pair(key, s);
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(ser, &format!("{key}[{i}]"), item)?;
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                flatten(ser, &format!("{key}[{k}]"), item)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_encode_stripe_style() {
        let (ct, b) = encode_body(RequestBody::Form(json!({"amount": 100, "confirm": true, "metadata": {"run": "r 1"}, "expand": ["customer"]}))).unwrap();
        assert_eq!(ct, Some("application/x-www-form-urlencoded"));
        let s = String::from_utf8(b.to_vec()).unwrap();
        assert!(s.contains("amount=100"));
        assert!(s.contains("confirm=true"));
        assert!(s.contains("metadata%5Brun%5D=r+1"));
        assert!(s.contains("expand%5B0%5D=customer"));
    }
}
