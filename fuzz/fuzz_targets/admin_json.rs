#![no_main]
//! Any admin API body: parsing and validating a key spec never panics.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(spec) = vendorgate::KeySpec::from_json(&v) {
            let _ = spec.validate(86_400);
        }
    }
});
