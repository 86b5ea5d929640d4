//! Request plumbing: which vendor a path is for, the parts of a call the handlers read, replies,
//! forms and credentials.

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Vendor {
    Stripe,
    Twilio,
    Resend,
}

impl Vendor {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Vendor::Stripe => "stripe",
            Vendor::Twilio => "twilio",
            Vendor::Resend => "resend",
        }
    }
}

/// Which vendor a path belongs to, and the path that vendor sees.
pub(crate) fn split_vendor(path: &str) -> (Option<Vendor>, &str) {
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
pub(crate) struct Call<'a> {
    pub(crate) method: &'a Method,
    /// Vendor path, no prefix, no query.
    pub(crate) path: &'a str,
    /// The query string, without `?` (list parameters such as `limit`).
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

impl Call<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        header(self.headers, name)
    }

    pub(crate) fn segments(&self) -> Vec<&str> {
        self.path.trim_start_matches('/').split('/').collect()
    }
}

pub(crate) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// A vendor's JSON answer, before faults are applied.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    /// Extra headers; names must be lowercase.
    pub(crate) headers: Vec<(&'static str, String)>,
}

/// Handlers return `Err` for the vendor's error answers so `?` can be used.
pub(crate) type Answer = Result<Reply, Reply>;

impl Reply {
    pub(crate) fn new(status: StatusCode, body: Value) -> Self {
        Reply {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub(crate) fn ok(body: Value) -> Self {
        Reply::new(StatusCode::OK, body)
    }

    pub(crate) fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
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

pub(crate) fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Form fields in order; repeated keys are kept.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The last value of a field.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The last value of a field, if not empty.
    pub(crate) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub(crate) fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(k, _)| k == name).count()
    }

    /// Stripe's `metadata[key]=value` fields as an object.
    pub(crate) fn metadata(&self) -> Map<String, Value> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((key.to_string(), Value::String(v.clone())))
            })
            .collect()
    }
}

pub(crate) enum Credential {
    Missing,
    Malformed,
    Bearer(String),
    Basic(String, String),
}

pub(crate) fn credential(headers: &HeaderMap) -> Credential {
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
