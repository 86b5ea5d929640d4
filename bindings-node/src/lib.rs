//! The native half of the Node package `vendorgate`. It is deliberately thin: decisions are
//! the core's (settings by `vendorgate::config::Settings`, error classes by `Error::class`,
//! bodies by `RequestBody`), and `index.js` makes the results idiomatic (camelCase, Promises,
//! Error classes with a stable `code`).
//!
//! - `error.rs`: the JavaScript class of every error class, and the error marker;
//! - `gateway.rs`: `NativeGateway` (embedded or connected) and `NativeResponse`.

use napi_derive::napi;

pub mod error;
pub mod gateway;

/// Every settings key (`Gateway.open(path, config)`, snake_case), with unit and default.
#[napi]
pub fn settings_keys() -> Vec<Vec<String>> {
    vendorgate::config::SETTINGS
        .iter()
        .map(|s| vec![s.key.to_string(), s.unit.to_string(), s.default.to_string()])
        .collect()
}

/// Rows `audit()` returns when no limit is given (the same in both bindings).
#[napi]
pub fn audit_default_limit() -> u32 {
    vendorgate::client::AUDIT_DEFAULT_LIMIT as u32
}

/// Which vendor a path belongs to, when nothing else says (`/v1/…` is Stripe, …).
#[napi]
pub fn guess_vendor(path: String) -> Option<String> {
    vendorgate::Vendor::guess_from_path(&path).map(|v| v.as_str().to_string())
}
