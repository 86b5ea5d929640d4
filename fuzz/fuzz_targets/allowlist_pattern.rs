#![no_main]
//! Pattern parsing and matching never panic; a pattern never matches a path that failed
//! canonicalization.
use libfuzzer_sys::fuzz_target;
use vendorgate::allowlist::{canonicalize_path, Allowlist};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, path) = text.split_once('\n').unwrap_or((text, "/v1/charges"));
    if let Ok(list) = Allowlist::parse(&[pattern.to_string()]) {
        if let Ok(p) = canonicalize_path(path) {
            let _ = list.allows("POST", &p);
            let _ = list.allows("GET", &p);
        }
    }
});
