//! Metrics for `GET /metrics`, kept with the `prometheus-client` crate (the Prometheus
//! project's Rust client) and exported as OpenMetrics text, which Prometheus scrapes natively.
//!
//! Money is counted in integer micro-USD (`vendorgate_spend_micro_usd_total`), the same unit
//! as the ledger, so a counter never drifts from the audit log by float rounding.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::audit::AuditRow;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    vendor: String,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpendLabels {
    vendor: String,
    money_state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VendorLabels {
    vendor: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// From 0.5 ms to about 16 s: a refusal decided from the caches takes well under a
/// millisecond, a vendor answer can take seconds.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// From 50 µs to about 1.6 s: a store read from a free connection to a commit under load.
fn store_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RequestLabels>,
    upstream_duration: HistogramFamily<RequestLabels>,
    spend: Family<SpendLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
    store_duration: HistogramFamily<OperationLabels>,
    store_errors: Family<OperationLabels, Counter>,
    slots_in_use: Family<VendorLabels, Gauge>,
    slots_limit: Family<VendorLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration: HistogramFamily<RequestLabels> =
            Family::new_with_constructor(latency_histogram);
        let upstream_duration: HistogramFamily<RequestLabels> =
            Family::new_with_constructor(latency_histogram);
        let spend = Family::<SpendLabels, Counter>::default();
        let refusals = Family::<ReasonLabels, Counter>::default();
        let store_duration: HistogramFamily<OperationLabels> =
            Family::new_with_constructor(store_histogram);
        let store_errors = Family::<OperationLabels, Counter>::default();
        let slots_in_use = Family::<VendorLabels, Gauge>::default();
        let slots_limit = Family::<VendorLabels, Gauge>::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "vendorgate_requests",
            "Requests through the pipeline by vendor and decision (forwarded or the refusal reason)",
            requests.clone(),
        );
        registry.register(
            "vendorgate_request_duration_seconds",
            "Total time in the gateway per request, by vendor and decision",
            request_duration.clone(),
        );
        registry.register(
            "vendorgate_upstream_duration_seconds",
            "Time waiting on the vendor per forwarded request, by vendor and decision",
            upstream_duration.clone(),
        );
        registry.register(
            "vendorgate_spend_micro_usd",
            "Money counted against keys' caps, in micro-USD, by vendor and money state (moved, committed, pending, unknown, reserved)",
            spend.clone(),
        );
        registry.register(
            "vendorgate_refusals",
            "Requests the gateway refused, by reason (the vendorgate_<reason> error code without its prefix)",
            refusals.clone(),
        );
        registry.register(
            "vendorgate_store_operation_duration_seconds",
            "Time per store operation, by operation",
            store_duration.clone(),
        );
        registry.register(
            "vendorgate_store_errors",
            "Store operations that failed, by operation (each one refused its request with 503)",
            store_errors.clone(),
        );
        registry.register(
            "vendorgate_upstream_slots_in_use",
            "Upstream call slots taken right now, by vendor",
            slots_in_use.clone(),
        );
        registry.register(
            "vendorgate_upstream_slots_limit",
            "Upstream call slots per vendor (max_upstream_requests)",
            slots_limit.clone(),
        );
        // Series that exist from the start, at 0, so a rate or an alert on them works before
        // the first request or failure (Prometheus: "avoid missing metrics").
        for v in crate::vendors::Vendor::ALL {
            requests
                .get_or_create(&RequestLabels {
                    vendor: v.as_str().into(),
                    decision: "forwarded".into(),
                })
                .get();
        }
        for operation in ["key_by_hash", "reserve", "finish", "totals"] {
            store_errors
                .get_or_create(&OperationLabels { operation })
                .get();
        }
        Metrics {
            registry,
            requests,
            request_duration,
            upstream_duration,
            spend,
            refusals,
            store_duration,
            store_errors,
            slots_in_use,
            slots_limit,
        }
    }
}

impl Metrics {
    /// Count one request from its final audit row (decision, latencies, money).
    pub fn record_call(&self, row: &AuditRow) {
        let labels = RequestLabels {
            vendor: row.vendor.clone().unwrap_or_else(|| "unknown".into()),
            decision: row.decision.clone(),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_duration
            .get_or_create(&labels)
            .observe(micros_to_seconds(row.latency_us));
        if let Some(us) = row.upstream_latency_us {
            self.upstream_duration
                .get_or_create(&labels)
                .observe(micros_to_seconds(us));
        }
        if row.decision != "forwarded" {
            self.refusals
                .get_or_create(&ReasonLabels {
                    reason: row.decision.clone(),
                })
                .inc();
        }
        if let Some(state) = &row.money_state {
            if row.cost_micros > 0 {
                self.spend
                    .get_or_create(&SpendLabels {
                        vendor: labels.vendor,
                        money_state: state.clone(),
                    })
                    .inc_by(row.cost_micros as u64);
            }
        }
    }

    pub fn store_op(&self, operation: &'static str, elapsed: Duration) {
        self.store_duration
            .get_or_create(&OperationLabels { operation })
            .observe(elapsed.as_secs_f64());
    }

    pub fn store_error(&self, operation: &'static str) {
        self.store_errors
            .get_or_create(&OperationLabels { operation })
            .inc();
    }

    /// Slots are read from the semaphores at scrape time rather than tracked on every call.
    pub fn set_upstream_slots(&self, vendor: &'static str, in_use: i64, limit: i64) {
        let l = VendorLabels { vendor };
        self.slots_in_use.get_or_create(&l).set(in_use);
        self.slots_limit.get_or_create(&l).set(limit);
    }

    /// OpenMetrics text (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn micros_to_seconds(us: i64) -> f64 {
    us.max(0) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_shows_up_under_prometheus_names() {
        let m = Metrics::default();
        m.record_call(&AuditRow {
            vendor: Some("stripe".into()),
            decision: "forwarded".into(),
            money_state: Some("moved".into()),
            cost_micros: 1_250_000,
            latency_us: 3_000,
            upstream_latency_us: Some(2_000),
            ..Default::default()
        });
        m.record_call(&AuditRow {
            vendor: Some("stripe".into()),
            decision: "spend_cap_exceeded".into(),
            ..Default::default()
        });
        m.store_error("reserve");
        m.set_upstream_slots("stripe", 3, 64);
        let text = m.render();
        for want in [
            "vendorgate_requests_total{vendor=\"stripe\",decision=\"forwarded\"} 1",
            "vendorgate_spend_micro_usd_total{vendor=\"stripe\",money_state=\"moved\"} 1250000",
            "vendorgate_refusals_total{reason=\"spend_cap_exceeded\"} 1",
            "vendorgate_store_errors_total{operation=\"reserve\"} 1",
            "vendorgate_upstream_slots_in_use{vendor=\"stripe\"} 3",
            "vendorgate_request_duration_seconds_count{vendor=\"stripe\",decision=\"forwarded\"} 1",
            "vendorgate_upstream_duration_seconds_bucket{le=\"0.002\",vendor=\"stripe\",decision=\"forwarded\"} 1",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // Known series exist at 0 before anything happened.
        let fresh = Metrics::default().render();
        assert!(
            fresh.contains("vendorgate_requests_total{vendor=\"twilio\",decision=\"forwarded\"} 0")
        );
        assert!(fresh.contains("vendorgate_store_errors_total{operation=\"finish\"} 0"));
        assert!(!text.contains(".."), "doubled full stop in a HELP line");
        // A refusal moved no money: no spend series for it.
        assert!(!text.contains("money_state=\"\""));
    }
}
