//! Counters for `/metrics` (Prometheus text). Kept in-process; cheap enough for the hot path.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

#[derive(Default)]
pub struct Metrics {
    /// (vendor, decision) → (count, total latency µs)
    requests: Mutex<BTreeMap<(String, String), (u64, u64)>>,
    store_errors: AtomicU64,
}

impl Metrics {
    pub fn record(&self, vendor: Option<&str>, decision: &str, latency_us: i64) {
        let mut m = self.requests.lock();
        let e = m
            .entry((
                vendor.unwrap_or("unknown").to_string(),
                decision.to_string(),
            ))
            .or_default();
        e.0 += 1;
        e.1 += latency_us.max(0) as u64;
    }

    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP vendorgate_requests_total Requests through the pipeline by vendor and decision.\n# TYPE vendorgate_requests_total counter\n");
        let m = self.requests.lock();
        for ((v, d), (n, _)) in m.iter() {
            let _ = writeln!(
                out,
                "vendorgate_requests_total{{vendor=\"{v}\",decision=\"{d}\"}} {n}"
            );
        }
        out.push_str("# HELP vendorgate_request_latency_seconds_sum Total time in the gateway by vendor and decision.\n# TYPE vendorgate_request_latency_seconds_sum counter\n");
        for ((v, d), (_, us)) in m.iter() {
            let _ = writeln!(
                out,
                "vendorgate_request_latency_seconds_sum{{vendor=\"{v}\",decision=\"{d}\"}} {}",
                *us as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "# HELP vendorgate_store_errors_total Store operations that failed.\n# TYPE vendorgate_store_errors_total counter\nvendorgate_store_errors_total {}",
            self.store_errors.load(Ordering::Relaxed)
        );
        out
    }
}
