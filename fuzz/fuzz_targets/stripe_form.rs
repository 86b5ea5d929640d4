#![no_main]
//! Any Stripe form body: the estimate never panics and is never negative.
use libfuzzer_sys::fuzz_target;
use vendorgate::cost::{Estimate, RequestView, ResponseView};
use vendorgate::Pricing;

const PATHS: [&str; 14] = ["/v1/payment_intents", "/v1/charges", "/v1/refunds", "/v1/payouts", "/v1/transfers", "/v1/payment_intents/pi_1/capture", "/v1/invoices/in_1/pay", "/v1/topups", "/v1/invoiceitems", "/v1/credit_notes", "/v1/invoices/in_1/add_lines", "/v1/customers/cus_1/balance_transactions", "/v1/subscriptions/sub_1", "/v1/invoices"];

fuzz_target!(|data: &[u8]| {
    let pricing = Pricing::default();
    let model = vendorgate::Vendor::Stripe.model();
    for path in PATHS {
        let req = RequestView { method: "POST", path, query: None, content_type: Some("application/x-www-form-urlencoded"), body: data };
        if let Estimate::Priced { micros, .. } = vendorgate::cost::estimate(&pricing, vendorgate::Vendor::Stripe, &req) {
            assert!(micros >= 0);
        }
        let out = model.settle(&pricing, &req, 1_000, &ResponseView { status: 200, body: data });
        assert!(out.cost_micros >= 0);
    }
});
