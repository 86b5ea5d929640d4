//! Errors across the boundary. The core decides each error's class (`Error::class`, an
//! exhaustive match); this file names the JavaScript class for each, again exhaustively. An
//! error crosses as a JS `Error` whose message is a marker plus JSON
//! `{class, reason, status, message, details}`; `index.js` turns it into that class, with
//! `code` = the reason.

use napi_derive::napi;
use serde_json::json;
use vendorgate::error::{reason_classes, ErrorClass};

/// Prefix of the message of every error thrown by this module.
const ERROR_MARKER: &str = "__vendorgate_error__";

/// The `index.js` class of each error class: the core's name, but `RangeError` (the built-in,
/// for a bad argument, as Node's own APIs do). The suite checks the tree against [`error_classes`].
pub(crate) fn js_class(c: ErrorClass) -> &'static str {
    match c {
        ErrorClass::InvalidInput => "RangeError",
        other => other.name(),
    }
}

pub(crate) fn to_js_error(e: vendorgate::Error) -> napi::Error {
    let body = json!({
        "class": js_class(e.class()),
        "reason": e.reason(),
        "status": e.http_status(),
        "message": e.to_string(),
        "details": e.details(),
    });
    napi::Error::from_reason(format!("{ERROR_MARKER}{body}"))
}

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> napi::Error {
    to_js_error(vendorgate::Error::invalid(field, message))
}

/// `[[class, parent or null]]` for every error class, parents first (`RangeError` has no
/// parent among ours): `index.js` checks its class tree against it.
#[napi]
pub fn error_classes() -> Vec<Vec<Option<String>>> {
    ErrorClass::ALL
        .iter()
        .map(|c| {
            vec![
                Some(js_class(*c).to_string()),
                c.parent().map(|p| js_class(p).to_string()),
            ]
        })
        .collect()
}

/// `[[reason, class]]` for every reason code the gateway can answer with.
#[napi]
pub fn reason_classes_js() -> Vec<Vec<String>> {
    reason_classes()
        .into_iter()
        .map(|(r, c)| vec![r.to_string(), js_class(c).to_string()])
        .collect()
}

/// The class a reason code raises (a reason this version does not know: by `status`).
#[napi]
pub fn class_of_reason(reason: String, status: u32) -> String {
    js_class(ErrorClass::of_reason(&reason, status.min(999) as u16)).to_string()
}
