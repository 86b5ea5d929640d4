//! Money is integer micro-USD (`i64`, 1 µUSD = 1e-6 USD) everywhere inside. These helpers are
//! the only place decimal text becomes micros and back.

use crate::error::{Error, Result};

/// Micro-USD per USD.
pub const MICROS_PER_USD: i64 = 1_000_000;

/// Parse a non-negative decimal USD amount ("12", "12.5", "0.000001") into micro-USD.
/// More than six decimals is refused rather than rounded: a cap must mean what was typed.
pub fn parse_usd(field: &str, text: &str) -> Result<i64> {
    parse_decimal_micros(text).map_err(|why| Error::invalid(field, why))
}

fn parse_decimal_micros(text: &str) -> std::result::Result<i64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(
            "expected a decimal USD amount such as \"25\" or \"0.50\", got an empty value".into(),
        );
    }
    if t.starts_with('-') {
        return Err(format!("amount must not be negative, got {t}"));
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    let (int_part, frac_part) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_ok(int_part)
        || !digits_ok(frac_part)
    {
        return Err(format!(
            "expected a decimal USD amount such as \"25\" or \"0.50\", got {t:?}"
        ));
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > 6 {
        return Err(format!(
            "{t} has more than 6 decimal places (the gateway counts in micro-USD)"
        ));
    }
    let int: i64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| format!("{t} is too large"))?
    };
    let mut frac: i64 = 0;
    for (i, b) in frac_trimmed.bytes().enumerate() {
        frac += i64::from(b - b'0') * 10_i64.pow(5 - i as u32);
    }
    int.checked_mul(MICROS_PER_USD)
        .and_then(|v| v.checked_add(frac))
        .filter(|v| *v <= MAX_USD_MICROS)
        .ok_or_else(|| format!("{t} is too large (at most 1e12 USD)"))
}

/// The largest amount the gateway accepts anywhere (one trillion USD): far from i64 overflow
/// even when many such amounts are summed.
pub const MAX_USD_MICROS: i64 = 1_000_000_000_000 * MICROS_PER_USD;

/// Format micro-USD as a decimal string with at least two decimals: 5_000_000 → "5.00",
/// 8_300 → "0.0083".
pub fn format_usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let int = m / 1_000_000;
    let frac = format!("{:06}", m % 1_000_000);
    let mut frac = frac.trim_end_matches('0').to_string();
    while frac.len() < 2 {
        frac.push('0');
    }
    format!("{sign}{int}.{frac}")
}

/// Ceiling division for non-negative numerators: conversions round up so the gateway never
/// under-counts.
pub(crate) fn div_ceil_i128(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    if n >= 0 {
        (n + d - 1) / d
    } else {
        n / d
    }
}

/// Clamp an i128 into the accepted micro-USD range.
pub(crate) fn clamp_micros(v: i128) -> i64 {
    v.clamp(0, i128::from(MAX_USD_MICROS)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_decimal_usd() {
        assert_eq!(parse_usd("x", "500").unwrap(), 500_000_000);
        assert_eq!(parse_usd("x", "0.5").unwrap(), 500_000);
        assert_eq!(parse_usd("x", ".25").unwrap(), 250_000);
        assert_eq!(parse_usd("x", "0.000001").unwrap(), 1);
        assert_eq!(parse_usd("x", "1.2300000").unwrap(), 1_230_000);
        assert_eq!(format_usd(5_000_000), "5.00");
        assert_eq!(format_usd(8_300), "0.0083");
        assert_eq!(format_usd(1), "0.000001");
        assert_eq!(format_usd(123_450_000), "123.45");
    }

    #[test]
    fn refuses_ambiguous_or_negative_amounts() {
        for bad in [
            "",
            "-1",
            "1.0000001",
            "abc",
            "1e3",
            "1.2.3",
            ".",
            "NaN",
            "1 000",
        ] {
            let err = parse_usd("max_usd", bad).unwrap_err().to_string();
            assert!(err.contains("max_usd"), "{bad}: {err}");
        }
        assert!(parse_usd("x", "99999999999999999999").is_err());
    }
}
