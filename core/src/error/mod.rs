//! The one error type of the core. Every refusal a request can meet is a variant here, so the
//! edges (proxy server, Python, Node) map one enum to HTTP statuses and language exceptions.

use crate::ledger::CapWindow;
use crate::vendors::{UnknownVendor, Vendor};

mod class;

pub use class::{reason_classes, ErrorClass};

/// Why a vault key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No vault key was found where the vendor's SDK puts its key.
    Missing,
    /// The key is not one this gateway issued.
    UnknownKey,
    /// The key was revoked.
    KeyRevoked,
    /// The key is past its `expires_at`.
    KeyExpired,
}

impl AuthFailure {
    pub fn code(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_key",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::KeyRevoked => "key_revoked",
            AuthFailure::KeyExpired => "key_expired",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", auth_message(*.0))]
    Unauthorized(AuthFailure),

    #[error("the request path cannot be checked safely: {0}; send a plain path without dot segments, empty segments, encoded slashes, NUL or non-ASCII characters")]
    BadPath(String),

    #[error("{0}")]
    BadRequest(String),

    #[error("this vault key may not call {method} {path}; ask for a key whose allowed_endpoints include it")]
    EndpointNotAllowed { method: String, path: String },

    #[error("the gateway cannot price this call, so it will not forward it: {0}")]
    CannotPrice(String),

    /// The operation's answer holds a credential that works without the gateway; refused
    /// whatever the key's allowlist says.
    #[error("{operation} is never forwarded, whatever the key's allowed_endpoints say: {why}; an agent must not hold a credential that works without the gateway")]
    Credential { operation: String, why: String },

    #[error("spend cap exceeded: this call is estimated at ${estimate} and {} {window} cap is ${cap} with ${spent} already counted; {}", cap_owner(.budget), cap_advice(.budget))]
    SpendCapExceeded {
        window: CapWindow,
        cap: String,
        spent: String,
        estimate: String,
        cap_micros: i64,
        spent_micros: i64,
        /// The budget whose cap refused, or `None` for the key's own.
        budget: Option<String>,
    },

    #[error("{0}")]
    DuplicateRequest(String),

    /// The key already forwarded the same money-moving action within its duplicate window.
    #[error("this repeats a call this key made at {first_time} (its audit row has spend_id {first_spend}): the same {operation} within the key's duplicate_window of {window}; if the repeat is meant, wait for the window to pass or issue a key with a shorter duplicate_window (0 turns the guard off); to retry the first call, send it again with its own Idempotency-Key")]
    DuplicateAction {
        operation: String,
        first_spend: i64,
        first_time: String,
        window: String,
    },

    #[error("request body is {size} bytes, over the gateway's limit of {limit} bytes")]
    BodyTooLarge { size: usize, limit: usize },

    #[error("vendor {0} is not configured on this gateway: set its credentials (see README, Configuration) and restart")]
    VendorNotConfigured(Vendor),

    #[error("the gateway's store is unavailable, so no request is forwarded: {0}")]
    Store(#[from] StoreError),

    #[error("upstream {vendor} {kind}: {detail}")]
    Upstream {
        vendor: Vendor,
        kind: UpstreamFailure,
        detail: String,
    },

    #[error("invalid {field}: {message}")]
    InvalidInput { field: String, message: String },

    #[error("configuration error: {0}")]
    Config(String),

    #[error("not found: {0}")]
    NotFound(String),

    /// A refusal reported by a remote gateway (connect mode), carried by its reason code.
    #[error("{message}")]
    Remote {
        reason: &'static str,
        status: u16,
        message: String,
        details: serde_json::Value,
    },
}

/// Every reason code the gateway can answer with (see [`Error::reason`]).
pub const REASONS: [&str; 20] = [
    "missing_key",
    "unknown_key",
    "key_revoked",
    "key_expired",
    "bad_path",
    "bad_request",
    "endpoint_not_allowed",
    "cannot_price",
    "credential",
    "spend_cap_exceeded",
    "duplicate_request",
    "duplicate_action",
    "body_too_large",
    "vendor_not_configured",
    "store_error",
    "upstream_error",
    "invalid_input",
    "config_error",
    "not_found",
    "unauthorized",
];

fn cap_owner(budget: &Option<String>) -> String {
    match budget {
        Some(b) => format!("the budget {b:?}'s"),
        None => "the key's".into(),
    }
}

fn cap_advice(budget: &Option<String>) -> &'static str {
    match budget {
        Some(_) => "the budget is shared by every key that joined it; wait for the window to reset or raise the budget's cap",
        None => "issue a key with a higher cap or wait for the window to reset",
    }
}

fn auth_message(f: AuthFailure) -> &'static str {
    match f {
        AuthFailure::Missing => {
            "no vault key was sent: put the vk_ key where the vendor SDK puts its API key"
        }
        AuthFailure::UnknownKey => {
            "this vault key is not known to the gateway: issue a new key for the run"
        }
        AuthFailure::KeyRevoked => "this vault key was revoked: issue a new key for the run",
        AuthFailure::KeyExpired => "this vault key has expired: issue a new key for the run",
    }
}

/// What went wrong talking to the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The connection was never made: nothing reached the vendor.
    ConnectFailed,
    /// The request may have reached the vendor, but no (complete) answer came in time.
    Timeout,
    /// The connection broke after the request was sent, or the answer was unusable.
    Broken,
}

impl std::fmt::Display for UpstreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpstreamFailure::ConnectFailed => "could not be reached (nothing was sent)",
            UpstreamFailure::Timeout => "did not answer in time (the call may have gone through; its reservation stays counted)",
            UpstreamFailure::Broken => "connection failed after the request was sent (the call may have gone through; its reservation stays counted)",
        })
    }
}

/// A failure of the store. The message never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("database schema version {found} is newer than this build supports ({supported}); upgrade vendorgate")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("store task failed: {0}")]
    Task(String),
    /// The shared transaction a write was batched into failed (e.g. the database is locked).
    #[error("database error: {0}")]
    Batch(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// PostgreSQL answered with an error (or the connection failed); the text keeps the
    /// SQLSTATE and the server's message.
    #[error("database error: {0}")]
    Postgres(String),
    /// The database could not be reached in time (no pooled connection, connect failed).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database is set up in a way that breaks a guarantee (e.g. asynchronous commit).
    #[error("database refused: {0}")]
    Unsafe(String),
}

impl Error {
    /// The HTTP status the gateway answers with for this refusal.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Unauthorized(_) => 401,
            Error::BadPath(_) | Error::BadRequest(_) | Error::CannotPrice(_) => 400,
            Error::InvalidInput { .. } | Error::Config(_) => 400,
            Error::EndpointNotAllowed { .. } | Error::Credential { .. } => 403,
            Error::SpendCapExceeded { .. } => 402,
            Error::DuplicateRequest(_) | Error::DuplicateAction { .. } => 409,
            Error::BodyTooLarge { .. } => 413,
            Error::VendorNotConfigured(_) | Error::Store(_) => 503,
            Error::Upstream { kind, .. } => match kind {
                UpstreamFailure::Timeout => 504,
                _ => 502,
            },
            Error::NotFound(_) => 404,
            Error::Remote { status, .. } => *status,
        }
    }

    /// A stable reason code: the `decision` column of the audit log, the suffix of the
    /// `vendorgate_<reason>` error code, and the `code` of binding exceptions.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Unauthorized(f) => f.code(),
            Error::BadPath(_) => "bad_path",
            Error::BadRequest(_) => "bad_request",
            Error::EndpointNotAllowed { .. } => "endpoint_not_allowed",
            Error::CannotPrice(_) => "cannot_price",
            Error::Credential { .. } => "credential",
            Error::SpendCapExceeded { .. } => "spend_cap_exceeded",
            Error::DuplicateRequest(_) => "duplicate_request",
            Error::DuplicateAction { .. } => "duplicate_action",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::VendorNotConfigured(_) => "vendor_not_configured",
            Error::Store(_) => "store_error",
            Error::Upstream { .. } => "upstream_error",
            Error::InvalidInput { .. } => "invalid_input",
            Error::Config(_) => "config_error",
            Error::NotFound(_) => "not_found",
            Error::Remote { reason, .. } => reason,
        }
    }

    /// Machine-readable details: the reason, the message and, for a spend cap, the figures.
    pub fn details(&self) -> serde_json::Value {
        if let Error::Remote { details, .. } = self {
            return details.clone();
        }
        let mut d = serde_json::json!({"reason": self.reason(), "message": self.to_string()});
        if let Error::SpendCapExceeded {
            window,
            cap,
            spent,
            estimate,
            budget,
            ..
        } = self
        {
            if let Some(b) = budget {
                d["budget"] = serde_json::json!(b);
            }
            d["window"] = serde_json::json!(match window {
                CapWindow::Run => "run",
                CapWindow::Daily => "daily",
            });
            d["cap_usd"] = serde_json::json!(cap);
            d["spent_usd"] = serde_json::json!(spent);
            d["estimate_usd"] = serde_json::json!(estimate);
        }
        if let Error::InvalidInput { field, .. } = self {
            d["field"] = serde_json::json!(field);
        }
        if let Error::DuplicateAction {
            first_spend,
            first_time,
            ..
        } = self
        {
            d["first_call"] = serde_json::json!({"spend_id": first_spend, "time": first_time});
        }
        d
    }

    /// Rebuild an error from a reason code and message sent by a remote gateway.
    pub fn from_remote(
        reason: &str,
        status: u16,
        message: String,
        details: serde_json::Value,
    ) -> Self {
        match reason {
            "invalid_input" => Error::InvalidInput {
                field: details
                    .get("field")
                    .and_then(|f| f.as_str())
                    .unwrap_or("input")
                    .to_string(),
                message,
            },
            "not_found" => Error::NotFound(message),
            _ => Error::Remote {
                reason: REASONS
                    .iter()
                    .find(|r| **r == reason)
                    .copied()
                    .unwrap_or("refused"),
                status,
                message,
                details,
            },
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<UnknownVendor> for Error {
    fn from(e: UnknownVendor) -> Self {
        Error::invalid("vendor", e.to_string())
    }
}
