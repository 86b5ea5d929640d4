//! Embedded decisions per second: the pipeline up to (and including) the ledger, without a
//! network forward. Each iteration also writes its audit row (durable, WAL).
//!
//!     cargo bench -p vendorgate --bench decision

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use vendorgate::{
    Config, Credentials, Gateway, KeySpec, ProxyRequest, Secret, SqliteStore, Vendor,
};

fn request(vk: &str, path: &str, body: &'static str) -> ProxyRequest {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {vk}")).unwrap(),
    );
    h.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    ProxyRequest {
        vendor: None,
        method: "POST".into(),
        path: path.into(),
        query: None,
        vault_key: vendorgate::credentials::vault_key_from(&h),
        headers: h,
        body: Bytes::from_static(body.as_bytes()),
    }
}

fn decisions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.stripe.credentials = Some(Credentials::Bearer(Secret::new("sk_test_bench")));
    let gw = Gateway::new(
        config,
        Arc::new(SqliteStore::open(dir.path().join("bench.db")).unwrap()),
    )
    .unwrap();
    let key = rt.block_on(async {
        let mut spec = KeySpec::new(Vendor::Stripe);
        spec.max_usd = Some(1_000_000);
        spec.allowed_endpoints = vec!["POST /v1/payment_intents".into()];
        gw.issue_key(spec).await.unwrap()
    });
    let vk = key.vault_key.clone();

    let mut g = c.benchmark_group("embedded_decision");
    // authenticate → canonicalize → allow: refused 403, audit row written.
    g.bench_function("endpoint_refused_403", |b| {
        b.to_async(&rt).iter(|| async {
            gw.process(request(&vk, "/v1/refunds", "charge=ch_1"))
                .await
                .unwrap_err()
        })
    });
    // … → estimate → reserve (one BEGIN IMMEDIATE transaction): refused 402, audit row written.
    g.bench_function("cap_refused_402", |b| {
        b.to_async(&rt).iter(|| async {
            gw.process(request(
                &vk,
                "/v1/payment_intents",
                "amount=10000&currency=usd&confirm=true",
            ))
            .await
            .unwrap_err()
        })
    });
    // The in-memory part of a decision: canonicalize, allowlist match, Stripe estimate.
    let allow = vendorgate::allowlist::Allowlist::parse(&[
        "POST /v1/payment_intents".to_string(),
        "GET /v1/customers/*".to_string(),
    ])
    .unwrap();
    let pricing = vendorgate::Pricing::default();
    g.bench_function("canonicalize_allow_estimate", |b| {
        b.iter(|| {
            let path = vendorgate::allowlist::canonicalize_path(std::hint::black_box(
                "/v1/payment_intents",
            ))
            .unwrap();
            assert!(allow.allows("POST", &path));
            let view = vendorgate::cost::RequestView {
                method: "POST",
                path: &path,
                query: None,
                content_type: Some("application/x-www-form-urlencoded"),
                body: b"amount=10000&currency=usd&confirm=true&payment_method=pm_card_visa",
            };
            vendorgate::cost::estimate(&pricing, Vendor::Stripe, &view)
        })
    });
    g.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
