#![no_main]
//! Any Resend body: the estimate never panics and is never negative.
use libfuzzer_sys::fuzz_target;
use vendorgate::cost::{Estimate, RequestView, ResponseView};
use vendorgate::Pricing;

fuzz_target!(|data: &[u8]| {
    let pricing = Pricing::default();
    for path in ["/emails", "/emails/batch"] {
        let req = RequestView { method: "POST", path, query: None, content_type: Some("application/json"), body: data };
        if let Estimate::Priced { micros, .. } = vendorgate::cost::estimate(&pricing, vendorgate::Vendor::Resend, &req) {
            assert!(micros >= 0);
        }
        let out = vendorgate::Vendor::Resend.model().settle(&pricing, &req, 900, &ResponseView { status: 200, body: data });
        assert!(out.cost_micros >= 0);
    }
});
