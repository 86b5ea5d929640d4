//! vendorgate core: per-run vault keys, endpoint allowlists, USD spend caps priced by vendor
//! cost models, and a per-call audit log for agents calling Stripe, Twilio and Resend.
//!
//! No HTTP server, Python or Node code lives here; the proxy server and the bindings are thin
//! edges over [`Gateway`].

pub mod allowlist;
pub mod audit;
pub mod catalogue;
pub mod client;
pub mod config;
pub mod credentials;
pub mod currency;
pub mod error;
pub mod forward;
pub mod gateway;
pub mod key_cache;
pub mod keys;
pub mod metrics;
pub mod money;
pub mod refusal;
pub mod store;
pub mod vendor;

pub use audit::AuditRow;
pub use config::{Config, Credentials, Pricing, Secret};
pub use error::{AuthFailure, CapWindow, Error, Result, StoreError, UpstreamFailure};
pub use gateway::{Clock, Gateway, KeyStatus, ProxyRequest, ProxyResponse, Refused};
pub use keys::{IssuedKey, KeyRecord, KeySpec, Policy};
pub use money::{format_usd, parse_usd};
pub use store::{AuditQuery, SqliteStore, Store, Usage};
pub use vendor::{MoneyState, Vendor};
