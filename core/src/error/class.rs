//! Error classes: the one decision, made here, of which exception class each error raises in
//! the bindings. `Error::class` is an exhaustive match, so a new error variant does not
//! compile until it is placed; each binding maps every `ErrorClass` to its language's class
//! (again an exhaustive match), and both binding suites check their class trees against
//! [`ErrorClass::ALL`].

use super::{AuthFailure, Error, REASONS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The gateway refused the call; nothing reached the vendor.
    Denied,
    /// A key or token was not accepted (401).
    Unauthorized,
    /// No vault key, or one this gateway did not issue.
    UnknownKey,
    KeyRevoked,
    KeyExpired,
    /// The allowlist (or the catalogue's credential rule) does not let the call through (403).
    EndpointNotAllowed,
    /// The call would cross a cap (402).
    SpendCapExceeded,
    /// The Idempotency-Key is in flight or was used with another request (409).
    DuplicateRequest,
    /// The request cannot be checked or priced safely, or is too large (400, 413).
    BadRequest,
    /// The vendor (or the remote gateway) failed or timed out (502, 504).
    UpstreamError,
    /// The store cannot answer; nothing was forwarded (503).
    StoreError,
    /// The gateway is misconfigured.
    ConfigError,
    /// An argument of a binding call is invalid.
    InvalidInput,
    /// No such key.
    NotFound,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 14] = [
        ErrorClass::Denied,
        ErrorClass::Unauthorized,
        ErrorClass::UnknownKey,
        ErrorClass::KeyRevoked,
        ErrorClass::KeyExpired,
        ErrorClass::EndpointNotAllowed,
        ErrorClass::SpendCapExceeded,
        ErrorClass::DuplicateRequest,
        ErrorClass::BadRequest,
        ErrorClass::UpstreamError,
        ErrorClass::StoreError,
        ErrorClass::ConfigError,
        ErrorClass::InvalidInput,
        ErrorClass::NotFound,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Denied => "Denied",
            ErrorClass::Unauthorized => "Unauthorized",
            ErrorClass::UnknownKey => "UnknownKey",
            ErrorClass::KeyRevoked => "KeyRevoked",
            ErrorClass::KeyExpired => "KeyExpired",
            ErrorClass::EndpointNotAllowed => "EndpointNotAllowed",
            ErrorClass::SpendCapExceeded => "SpendCapExceeded",
            ErrorClass::DuplicateRequest => "DuplicateRequest",
            ErrorClass::BadRequest => "BadRequest",
            ErrorClass::UpstreamError => "UpstreamError",
            ErrorClass::StoreError => "StoreError",
            ErrorClass::ConfigError => "ConfigError",
            ErrorClass::InvalidInput => "InvalidInput",
            ErrorClass::NotFound => "NotFound",
        }
    }

    /// The class this one extends; `None`: it extends the package's base error.
    pub fn parent(self) -> Option<ErrorClass> {
        match self {
            ErrorClass::Unauthorized
            | ErrorClass::EndpointNotAllowed
            | ErrorClass::SpendCapExceeded
            | ErrorClass::DuplicateRequest
            | ErrorClass::BadRequest => Some(ErrorClass::Denied),
            ErrorClass::UnknownKey | ErrorClass::KeyRevoked | ErrorClass::KeyExpired => {
                Some(ErrorClass::Unauthorized)
            }
            ErrorClass::Denied
            | ErrorClass::UpstreamError
            | ErrorClass::StoreError
            | ErrorClass::ConfigError
            | ErrorClass::InvalidInput
            | ErrorClass::NotFound => None,
        }
    }

    /// The class of a reason code a remote gateway answered with. A reason this version does
    /// not know (a newer server) is classed by its status, never dropped.
    pub fn of_reason(reason: &str, status: u16) -> ErrorClass {
        match reason {
            "missing_key" | "unknown_key" => ErrorClass::UnknownKey,
            "key_revoked" => ErrorClass::KeyRevoked,
            "key_expired" => ErrorClass::KeyExpired,
            "unauthorized" => ErrorClass::Unauthorized,
            "endpoint_not_allowed" | "credential" => ErrorClass::EndpointNotAllowed,
            "spend_cap_exceeded" => ErrorClass::SpendCapExceeded,
            "duplicate_request" | "duplicate_action" => ErrorClass::DuplicateRequest,
            "bad_path" | "bad_request" | "cannot_price" | "body_too_large" => {
                ErrorClass::BadRequest
            }
            "upstream_error" => ErrorClass::UpstreamError,
            "store_error" => ErrorClass::StoreError,
            "config_error" | "vendor_not_configured" => ErrorClass::ConfigError,
            "invalid_input" => ErrorClass::InvalidInput,
            "not_found" => ErrorClass::NotFound,
            _ if status == 401 => ErrorClass::Unauthorized,
            _ if status >= 500 => ErrorClass::UpstreamError,
            _ => ErrorClass::Denied,
        }
    }

    /// `(name, parent name)` of every class, parents first: what a binding builds or checks
    /// its class tree from.
    pub fn tree() -> Vec<(&'static str, Option<&'static str>)> {
        ErrorClass::ALL
            .iter()
            .map(|c| (c.name(), c.parent().map(ErrorClass::name)))
            .collect()
    }
}

impl Error {
    /// The exception class this error raises in the bindings.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Unauthorized(AuthFailure::Missing | AuthFailure::UnknownKey) => {
                ErrorClass::UnknownKey
            }
            Error::Unauthorized(AuthFailure::KeyRevoked) => ErrorClass::KeyRevoked,
            Error::Unauthorized(AuthFailure::KeyExpired) => ErrorClass::KeyExpired,
            Error::BadPath(_)
            | Error::BadRequest(_)
            | Error::CannotPrice(_)
            | Error::BodyTooLarge { .. } => ErrorClass::BadRequest,
            Error::EndpointNotAllowed { .. } | Error::Credential { .. } => {
                ErrorClass::EndpointNotAllowed
            }
            Error::SpendCapExceeded { .. } => ErrorClass::SpendCapExceeded,
            Error::DuplicateRequest(_) | Error::DuplicateAction { .. } => {
                ErrorClass::DuplicateRequest
            }
            Error::VendorNotConfigured(_) | Error::Config(_) => ErrorClass::ConfigError,
            Error::Store(_) => ErrorClass::StoreError,
            Error::Upstream { .. } => ErrorClass::UpstreamError,
            Error::InvalidInput { .. } => ErrorClass::InvalidInput,
            Error::NotFound(_) => ErrorClass::NotFound,
            Error::Remote { reason, status, .. } => ErrorClass::of_reason(reason, *status),
        }
    }
}

/// Every reason code with its class, for the bindings' tables and the shared test vectors.
pub fn reason_classes() -> Vec<(&'static str, ErrorClass)> {
    REASONS
        .iter()
        .map(|r| (*r, ErrorClass::of_reason(r, 400)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{StoreError, UpstreamFailure};
    use crate::ledger::CapWindow;
    use crate::vendors::Vendor;

    /// One error of every variant: a local error and the same error seen through a remote
    /// gateway (its reason code and status) must raise the same class.
    #[test]
    fn local_and_remote_errors_raise_the_same_class() {
        let errors = vec![
            Error::Unauthorized(AuthFailure::Missing),
            Error::Unauthorized(AuthFailure::UnknownKey),
            Error::Unauthorized(AuthFailure::KeyRevoked),
            Error::Unauthorized(AuthFailure::KeyExpired),
            Error::BadPath("x".into()),
            Error::BadRequest("x".into()),
            Error::EndpointNotAllowed {
                method: "GET".into(),
                path: "/".into(),
            },
            Error::CannotPrice("x".into()),
            Error::Credential {
                operation: "POST /v1/x".into(),
                why: "x".into(),
            },
            Error::SpendCapExceeded {
                window: CapWindow::Run,
                cap: "1".into(),
                spent: "1".into(),
                estimate: "1".into(),
                cap_micros: 1,
                spent_micros: 1,
                budget: None,
            },
            Error::DuplicateRequest("x".into()),
            Error::DuplicateAction {
                operation: "POST /v1/refunds".into(),
                first_spend: 1,
                first_time: "x".into(),
                window: "10m".into(),
            },
            Error::BodyTooLarge { size: 2, limit: 1 },
            Error::VendorNotConfigured(Vendor::Stripe),
            Error::Store(StoreError::Task("x".into())),
            Error::Upstream {
                vendor: Vendor::Stripe,
                kind: UpstreamFailure::Timeout,
                detail: "x".into(),
            },
            Error::invalid("f", "x"),
            Error::Config("x".into()),
            Error::NotFound("x".into()),
        ];
        let mut reasons: Vec<&str> = Vec::new();
        for e in &errors {
            let remote = ErrorClass::of_reason(e.reason(), e.http_status());
            assert_eq!(remote, e.class(), "{}", e.reason());
            reasons.push(e.reason());
        }
        // Every reason a local error gives is one of REASONS, and every reason is placed by
        // name (not by the status fallback).
        for r in &reasons {
            assert!(REASONS.contains(r), "{r} is not in REASONS");
        }
        for r in REASONS {
            let by_name = ErrorClass::of_reason(r, 400);
            assert_eq!(
                by_name,
                ErrorClass::of_reason(r, 503),
                "{r} is classed by status"
            );
        }
    }

    #[test]
    fn the_tree_is_rooted_and_lists_parents_first() {
        let tree = ErrorClass::tree();
        assert_eq!(tree.len(), ErrorClass::ALL.len());
        for (i, (_, parent)) in tree.iter().enumerate() {
            if let Some(p) = parent {
                assert!(
                    tree[..i].iter().any(|(n, _)| n == p),
                    "{p} comes after its child"
                );
            }
        }
    }

    #[test]
    fn an_unknown_remote_reason_is_classed_by_status() {
        assert_eq!(
            ErrorClass::of_reason("new_thing", 401),
            ErrorClass::Unauthorized
        );
        assert_eq!(
            ErrorClass::of_reason("new_thing", 503),
            ErrorClass::UpstreamError
        );
        assert_eq!(ErrorClass::of_reason("new_thing", 400), ErrorClass::Denied);
    }
}
