//! Ids and clocks.

use rand::distr::Alphanumeric;
use rand::Rng;
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

pub(crate) fn alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

pub(crate) fn hex(len: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(DIGITS[rng.random_range(0..16)]))
        .collect()
}

/// `pi_` + 24 alphanumerics, like Stripe's ids.
pub(crate) fn stripe_id(prefix: &str) -> String {
    format!("{prefix}_{}", alnum(24))
}

/// A random (version 4) UUID.
pub(crate) fn uuid() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(crate) fn unix_now() -> i64 {
    now().unix_timestamp()
}

pub(crate) fn rfc2822_now() -> String {
    now().format(&Rfc2822).unwrap_or_default()
}
