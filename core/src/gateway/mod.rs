//! The gateway: one value shared by every edge (the proxy server, the Python and Node
//! bindings). [`Gateway::process`] runs one request through the pipeline (`pipeline/`, one
//! file per phase); key administration is in `admin.rs`.

use std::path::Path;
use std::sync::Arc;

use crate::caches::{KeyCache, RecentlyCapped, StoredEvents, TotalsCache};
use crate::config::Config;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::{AsyncStore, SqliteStore, Store};
use crate::upstream;
use shared::Shared;

mod admin;
mod budgets;
mod deliver;
mod pipeline;
mod request;
mod shared;
mod status;
mod webhooks;

pub use admin::{KeyCursor, KeyPage};
pub use request::{ProxyRequest, ProxyResponse, Refused};
pub use shared::{system_clock, utc_day, Clock};
pub use status::KeyStatus;
pub use webhooks::MAX_EVENTS;

/// The gateway. Cheap to clone; all clones share the store, client and metrics.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    http: reqwest::Client,
}

impl Gateway {
    pub fn new(config: Config, store: Arc<dyn Store>) -> Result<Self> {
        Self::with_clock(config, store, system_clock())
    }

    pub fn with_clock(config: Config, store: Arc<dyn Store>, clock: Clock) -> Result<Self> {
        config.validate()?;
        let http = upstream::build_client(&config);
        let slots = config.max_upstream_requests;
        let metrics = Arc::new(Metrics::default());
        let gateway = Gateway {
            shared: Arc::new(Shared {
                config,
                store: AsyncStore::new(store, metrics.clone()),
                keys: KeyCache::default(),
                totals: TotalsCache::default(),
                capped: RecentlyCapped::default(),
                stored_events: StoredEvents::default(),
                slots: std::array::from_fn(|_| tokio::sync::Semaphore::new(slots)),
                clock,
                metrics,
            }),
            http,
        };
        // Another instance revoked a key (or the store lost track): cached keys go.
        let shared = Arc::downgrade(&gateway.shared);
        gateway.shared.store.on_key_change(Box::new(move || {
            if let Some(s) = shared.upgrade() {
                s.keys.forget_all();
            }
        }));
        Ok(gateway)
    }

    /// A clone sharing everything but the upstream connection pool. A connection is driven
    /// by the runtime that opened it, so a server with one single-threaded runtime per core
    /// gives each runtime its own pool instead of waking another core for every answer.
    pub fn with_own_connections(&self) -> Self {
        Gateway {
            shared: self.shared.clone(),
            http: upstream::build_client(&self.shared.config),
        }
    }

    /// Open a gateway on a local SQLite file.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Self> {
        let store = SqliteStore::open_with_busy_timeout(path, config.store_busy_timeout)?;
        Self::new(config, Arc::new(store))
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// `/metrics` as OpenMetrics text, with the upstream slots read as of now.
    pub fn render_metrics(&self) -> String {
        let limit = self.shared.config.max_upstream_requests;
        for v in crate::vendors::Vendor::ALL {
            let free = self.shared.slot(v).available_permits();
            self.shared.metrics.set_upstream_slots(
                v.as_str(),
                limit.saturating_sub(free) as i64,
                limit as i64,
            );
        }
        self.shared.metrics.render()
    }

    pub fn now_ms(&self) -> i64 {
        self.shared.now_ms()
    }

    /// Run one request through the pipeline. Every request that reaches here gets exactly
    /// one audit row, refusals included.
    pub async fn process(&self, req: ProxyRequest) -> Result<ProxyResponse, Refused> {
        pipeline::run(&self.shared, &self.http, req).await
    }
}
