//! Errors across the boundary. The core decides each error's class (`Error::class`, an
//! exhaustive match); this file names the Python class for each, again exhaustively, and
//! raises `NativeError(class, code, status, message, details_json)`, which the package turns
//! into that class (`vendorgate.errors._from_native`).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use vendorgate::error::{reason_classes, ErrorClass};
use vendorgate::Error;

create_exception!(
    _vendorgate,
    NativeError,
    PyException,
    "A gateway error: args are (class_name, code, status, message, details_json). The vendorgate package turns it into its typed exceptions."
);

/// The `vendorgate.errors` class of each error class: the core's name, but for `NotFound`
/// (`KeyNotFound`, also a `LookupError`). The package checks its tree against
/// [`error_classes`] at import, so a class added in the core and missing here fails loudly.
pub(crate) fn py_class(c: ErrorClass) -> &'static str {
    match c {
        ErrorClass::NotFound => "KeyNotFound",
        other => other.name(),
    }
}

pub(crate) fn to_py_err(e: Error) -> PyErr {
    let details = e.details().to_string();
    NativeError::new_err((
        py_class(e.class()),
        e.reason(),
        e.http_status(),
        e.to_string(),
        details,
    ))
}

/// `[(class, parent or None)]` for every error class, parents first: the package checks its
/// own tree against it.
#[pyfunction]
pub(crate) fn error_classes() -> Vec<(&'static str, Option<&'static str>)> {
    ErrorClass::ALL
        .iter()
        .map(|c| (py_class(*c), c.parent().map(py_class)))
        .collect()
}

/// `{reason code: class}` for every reason the gateway can answer with.
#[pyfunction]
pub(crate) fn reason_class_names() -> Vec<(&'static str, &'static str)> {
    reason_classes()
        .into_iter()
        .map(|(r, c)| (r, py_class(c)))
        .collect()
}

/// The class a reason code raises (a reason this version does not know: by `status`).
#[pyfunction]
#[pyo3(signature = (reason, status=400))]
pub(crate) fn class_of_reason(reason: &str, status: u16) -> &'static str {
    py_class(ErrorClass::of_reason(reason, status))
}
