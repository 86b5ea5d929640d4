//! `vendorgate._vendorgate`: the native half of the Python package. It is deliberately thin:
//! values cross the boundary as JSON text, plain strings and bytes, and the pure-Python
//! package (`bindings-python/python/vendorgate`) turns them into the idiomatic API (Decimal
//! money, datetimes, typed exceptions). Decisions are the core's: settings are parsed by
//! `vendorgate::config::Settings`, error classes by `Error::class`, bodies by `RequestBody`.
//!
//! - `runtime.rs`: the fork-aware tokio runtime and the GIL-free, Ctrl-C-aware wait;
//! - `error.rs`: the Python class of every error class, and `NativeError`;
//! - `gateway.rs`: `NativeGateway` (embedded or connected) and `NativeResponse`.

use pyo3::prelude::*;

mod error;
mod gateway;
mod runtime;

/// Every settings key (`Gateway.open(config=…)`), with unit and default, in README order.
#[pyfunction]
fn settings_keys() -> Vec<(&'static str, &'static str, &'static str)> {
    vendorgate::config::SETTINGS
        .iter()
        .map(|s| (s.key, s.unit, s.default))
        .collect()
}

#[pymodule]
fn _vendorgate(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<gateway::NativeGateway>()?;
    m.add_class::<gateway::NativeResponse>()?;
    m.add("NativeError", m.py().get_type::<error::NativeError>())?;
    m.add_function(wrap_pyfunction!(runtime::_after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(error::error_classes, m)?)?;
    m.add_function(wrap_pyfunction!(error::reason_class_names, m)?)?;
    m.add_function(wrap_pyfunction!(error::class_of_reason, m)?)?;
    m.add_function(wrap_pyfunction!(settings_keys, m)?)?;
    m.add(
        "AUDIT_DEFAULT_LIMIT",
        vendorgate::client::AUDIT_DEFAULT_LIMIT,
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
