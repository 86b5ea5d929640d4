//! Currency minor units and FX into micro-USD.

use super::prices::Pricing;
use crate::money::{clamp_micros, div_ceil_i128};

/// Stripe's zero-decimal currencies: the amount is in whole units.
const ZERO_DECIMAL: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Stripe's three-decimal currencies.
const THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

/// How many minor units make one major unit in Stripe amounts. ISK, HUF and TWD stay
/// two-decimal in charge amounts (Stripe docs, "special cases"), so they fall to 100.
pub fn minor_units_per_major(code: &str) -> i64 {
    let up = code.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&up.as_str()) {
        1
    } else if THREE_DECIMAL.contains(&up.as_str()) {
        1000
    } else {
        100
    }
}

/// Convert an amount in a currency's minor units to micro-USD, rounding up. `None` when the
/// currency has no configured rate: such a call is refused, never guessed.
pub fn minor_to_micros(pricing: &Pricing, amount_minor: i64, currency: &str) -> Option<i64> {
    let code = currency.to_ascii_uppercase();
    let rate = *pricing.fx_micros_per_unit.get(&code)?;
    let n = i128::from(amount_minor) * i128::from(rate);
    Some(clamp_micros(div_ceil_i128(
        n,
        i128::from(minor_units_per_major(&code)),
    )))
}

/// Convert a decimal string amount in a currency ("-0.00750", "USD") to micro-USD, taking the
/// absolute value and rounding up.
pub fn decimal_to_micros(pricing: &Pricing, amount: &str, currency: &str) -> Option<i64> {
    let code = currency.to_ascii_uppercase();
    let rate = *pricing.fx_micros_per_unit.get(&code)?;
    let t = amount.trim().trim_start_matches(['-', '+']);
    let (i, f) = t.split_once('.').unwrap_or((t, ""));
    if (i.is_empty() && f.is_empty())
        || !i.bytes().all(|b| b.is_ascii_digit())
        || !f.bytes().all(|b| b.is_ascii_digit())
        || f.len() > 18
    {
        return None;
    }
    let scale = 10_i128.pow(f.len() as u32);
    let int: i128 = if i.is_empty() { 0 } else { i.parse().ok()? };
    let frac: i128 = if f.is_empty() { 0 } else { f.parse().ok()? };
    let units_scaled = int.checked_mul(scale)?.checked_add(frac)?;
    let n = units_scaled.checked_mul(i128::from(rate))?;
    Some(clamp_micros(div_ceil_i128(n, scale)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_stripe() {
        let p = Pricing::default();
        // $12.34 is 1234 cents.
        assert_eq!(minor_to_micros(&p, 1234, "usd"), Some(12_340_000));
        // ¥500 is 500 (zero-decimal), at 7,000 µUSD per yen.
        assert_eq!(minor_to_micros(&p, 500, "jpy"), Some(3_500_000));
        // 5.120 KWD is 5120 (three-decimal).
        assert_eq!(
            minor_to_micros(&p, 5120, "KWD"),
            Some(5 * 3_300_000 + 396_000)
        );
        // ISK stays two-decimal in the API: 100 = 1 króna.
        assert_eq!(minor_units_per_major("isk"), 100);
        assert_eq!(minor_to_micros(&p, 100, "isk"), Some(8_000));
        assert_eq!(minor_units_per_major("huf"), 100);
        assert_eq!(minor_units_per_major("twd"), 100);
        assert_eq!(minor_units_per_major("krw"), 1);
    }

    #[test]
    fn unknown_currency_is_not_guessed() {
        assert_eq!(minor_to_micros(&Pricing::default(), 100, "xyz"), None);
    }

    #[test]
    fn conversion_rounds_up() {
        // 1 JPY-sen does not exist, but 1 KRW at 760 µUSD per won is exact; 1 cent of EUR is
        // 11,000 µUSD; a third of something rounds up.
        let mut p = Pricing::default();
        p.fx_micros_per_unit.insert("ABC".into(), 1);
        assert_eq!(minor_to_micros(&p, 1, "abc"), Some(1));
        assert_eq!(decimal_to_micros(&p, "0.0000001", "abc"), Some(1));
    }

    #[test]
    fn decimal_prices() {
        let p = Pricing::default();
        assert_eq!(decimal_to_micros(&p, "-0.00750", "USD"), Some(7_500));
        assert_eq!(decimal_to_micros(&p, "0.0079", "usd"), Some(7_900));
        assert_eq!(decimal_to_micros(&p, "abc", "USD"), None);
        assert_eq!(decimal_to_micros(&p, "1", "ZZZ"), None);
    }
}
