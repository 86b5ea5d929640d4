//! What every clone of a gateway shares, and the clock the pipeline reads.

use std::sync::Arc;

use crate::audit::format_time_ms;
use crate::caches::{KeyCache, RecentlyCapped, StoredEvents, TotalsCache};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::AsyncStore;
use crate::vendors::Vendor;

/// Milliseconds since the Unix epoch. Injectable so expiry and day roll-over can be tested.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

/// The UTC calendar day of a timestamp, `YYYY-MM-DD`.
pub fn utc_day(ms: i64) -> String {
    format_time_ms(ms)[..10].to_string()
}

/// What every clone of a gateway shares.
pub(crate) struct Shared {
    pub config: Config,
    pub store: AsyncStore,
    pub keys: KeyCache,
    pub totals: TotalsCache,
    pub capped: RecentlyCapped,
    /// Events (by dedupe key) this process already stored.
    pub stored_events: StoredEvents,
    /// Upstream call slots per vendor (`Config::max_upstream_requests`).
    pub slots: [tokio::sync::Semaphore; 3],
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

impl Shared {
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// Keep `e` unless this process already stored an event with its dedupe key.
    pub fn push_event(
        &self,
        events: &mut Vec<crate::events::NewEvent>,
        e: crate::events::NewEvent,
    ) {
        if e.dedupe
            .as_deref()
            .is_some_and(|d| self.stored_events.contains(d))
        {
            return;
        }
        events.push(e);
    }

    pub fn slot(&self, v: Vendor) -> &tokio::sync::Semaphore {
        &self.slots[match v {
            Vendor::Stripe => 0,
            Vendor::Twilio => 1,
            Vendor::Resend => 2,
        }]
    }
}
