//! The fuzz targets' properties as proptests, so CI checks them on every run (cargo-fuzz
//! needs a nightly toolchain; see fuzz/ and docs/RELIABILITY.md for the long runs).

use proptest::prelude::*;
use vendorgate::allowlist::{canonicalize_path, Allowlist};
use vendorgate::cost::{Estimate, RequestView, ResponseView};
use vendorgate::{KeySpec, Pricing, Vendor};

fn path_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("/".to_string()),
            Just(".".to_string()),
            Just("%".to_string()),
            Just("%2e".to_string()),
            Just("%2F".to_string()),
            Just("%25".to_string()),
            "[a-zA-Z0-9_;\\\\]{0,4}",
            Just("é".to_string())
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn canonical_paths_are_plain_and_stable(raw in path_like()) {
        if let Ok(p) = canonicalize_path(&raw) {
            prop_assert!(p.is_ascii() && p.starts_with('/'));
            prop_assert!(!p.contains('%') && !p.contains('\\'));
            prop_assert!(p.split('/').skip(1).all(|s| !s.is_empty() && s != "." && s != ".."));
            prop_assert_eq!(canonicalize_path(&p).unwrap(), p);
        }
    }

    #[test]
    fn patterns_never_panic(pattern in ".{0,40}", raw in path_like()) {
        if let Ok(list) = Allowlist::parse(&[pattern]) {
            if let Ok(p) = canonicalize_path(&raw) {
                let _ = list.allows("POST", &p);
            }
        }
    }

    #[test]
    fn cost_models_never_panic_or_go_negative(body in proptest::collection::vec(any::<u8>(), 0..300), text in "[a-z=&%0-9\\[\\]]{0,80}") {
        let pricing = Pricing::default();
        for (vendor, path, ct) in [
            (Vendor::Stripe, "/v1/payment_intents", "application/x-www-form-urlencoded"),
            (Vendor::Stripe, "/v1/charges", "application/x-www-form-urlencoded"),
            (Vendor::Stripe, "/v1/refunds", "application/x-www-form-urlencoded"),
            (Vendor::Twilio, "/2010-04-01/Accounts/AC1/Messages.json", "application/x-www-form-urlencoded"),
            (Vendor::Resend, "/emails/batch", "application/json"),
        ] {
            for b in [&body[..], text.as_bytes()] {
                let req = RequestView { method: "POST", path, query: None, content_type: Some(ct), body: b };
                if let Estimate::Priced { micros, .. } = vendorgate::cost::estimate(&pricing, vendor, &req) {
                    prop_assert!(micros >= 0);
                }
                let settled = vendor.model().settle(&pricing, &req, 100, &ResponseView { status: 200, body: b });
                prop_assert!(settled.cost_micros >= 0);
            }
        }
    }

    #[test]
    fn admin_json_never_panics(v in proptest_json()) {
        if let Ok(spec) = KeySpec::from_json(&v) {
            let _ = spec.validate(86_400);
        }
    }
}

fn proptest_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-z0-9 ./*-]{0,12}".prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("vendor"),
        Just("max_usd"),
        Just("daily_usd_cap"),
        Just("allowed_endpoints"),
        Just("expires_in"),
        Just("run_id"),
        Just("metadata"),
        Just("x")
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}
