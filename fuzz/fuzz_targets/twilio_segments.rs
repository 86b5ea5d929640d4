#![no_main]
//! Segment counting and Twilio pricing never panic; at least one segment.
use libfuzzer_sys::fuzz_target;
use vendorgate::cost::twilio::{count_segments, segment_rate};
use vendorgate::cost::RequestView;
use vendorgate::Pricing;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        assert!(count_segments(s).count >= 1);
        let _ = segment_rate(&Pricing::default(), s);
    }
    let req = RequestView { method: "POST", path: "/2010-04-01/Accounts/AC1/Messages.json", query: None, content_type: None, body: data };
    let _ = vendorgate::cost::estimate(&Pricing::default(), vendorgate::Vendor::Twilio, &req);
});
