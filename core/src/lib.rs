//! vendorgate core: per-run vault keys, endpoint allowlists, USD spend caps priced by vendor
//! cost models, and a per-call audit log for agents calling Stripe, Twilio and Resend.
//!
//! No HTTP server, Python or Node code lives here; the proxy server and the bindings are thin
//! edges over [`Gateway`].
//!
//! # Layout
//!
//! Start at [`gateway`]: `Gateway::process` runs one request through the pipeline, one file
//! per phase in `gateway/pipeline/` (authenticate → admit → price → forward → settle, then
//! record, which always runs). Key administration is `gateway/admin.rs`.
//!
//! - [`vendors`]: which vendors exist. [`ledger`]: money states and the cap rule, pure.
//! - [`catalogue`]: every vendor operation and its pricing class, read from `core/catalogue/`.
//! - [`cost`]: the price phase's decision (`cost::price`), one cost model per vendor, the
//!   operator's prices and currency conversion.
//! - [`store`]: the `Store` trait (atomic units), SQLite with its writer thread and audit
//!   journal, and `AsyncStore`, the one face the pipeline calls.
//! - [`keys`], [`allowlist`], [`credentials`], [`caches`]: vault keys, their allowlists, the
//!   real credentials swapped in, and the caches in front of the store.
//! - [`upstream`]: the HTTP client to the vendors. [`refusal`]: refusals in each vendor's
//!   error shape. [`error`]: the one error enum and its classes for the bindings.
//! - [`client`]: one handle over an embedded gateway or a remote server, for the bindings.
//! - [`config`], [`money`], [`audit`], [`metrics`]: settings, µUSD text, audit rows, counters.
//! - [`alerts`] (`alert_at` thresholds, pure), [`events`] (what webhooks carry), [`signing`]
//!   (Standard Webhooks); delivery is `gateway/deliver.rs`, the outbox rows `store/outbox.rs`.

pub mod alerts;
pub mod allowlist;
pub mod audit;
pub mod caches;
pub mod catalogue;
pub mod client;
pub mod config;
pub mod cost;
pub mod credentials;
pub mod error;
pub mod events;
pub mod gateway;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod money;
pub mod refusal;
pub mod signing;
pub mod store;
pub mod upstream;
pub mod vendors;

pub use audit::AuditRow;
pub use config::{Config, Credentials, Secret};
pub use cost::Pricing;
pub use error::{AuthFailure, Error, Result, StoreError, UpstreamFailure};
pub use gateway::{Clock, Gateway, KeyStatus, ProxyRequest, ProxyResponse, Refused};
pub use keys::{IssuedKey, KeyRecord, KeySpec, Policy};
pub use ledger::{CapWindow, MoneyState};
pub use money::{format_usd, parse_usd};
pub use store::{is_postgres_url, AuditQuery, SqliteStore, Store, Usage};
#[cfg(feature = "postgres")]
pub use store::{PgOptions, PgStore, Revocation};
pub use vendors::Vendor;
