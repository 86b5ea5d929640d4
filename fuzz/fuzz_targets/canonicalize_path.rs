#![no_main]
//! A canonical path is plain: ASCII, no escapes, no empty or dot segments, and canonical
//! again when fed back (so what is matched is what is forwarded).
use libfuzzer_sys::fuzz_target;
use vendorgate::allowlist::canonicalize_path;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    if let Ok(p) = canonicalize_path(raw) {
        assert!(p.is_ascii() && p.starts_with('/'));
        assert!(!p.contains('%') && !p.contains('\\') && !p.contains('\0'));
        assert!(p.split('/').skip(1).all(|s| !s.is_empty() && s != "." && s != ".."));
        assert_eq!(canonicalize_path(&p).unwrap(), p);
    }
});
