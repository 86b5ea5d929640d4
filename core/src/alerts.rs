//! Early warnings: `alert_at` thresholds on a key's or a budget's caps, pure rules (no I/O).
//!
//! A threshold is a fraction of a cap kept as basis points (1/10 000), parsed from the JSON
//! number's own digits so `0.8` is exactly 8 000 and no float ever touches money. A threshold
//! is *crossed* by the one admitted reservation that takes what counts against the cap
//! (spent, pending, unknown and reserved — the same sum the cap is checked against, so a
//! warning comes no later than the money it warns of) from below `ceil(cap × bp / 10 000)`
//! to at or above it. Reservations of a key (and of a budget) are serialized by the store,
//! so exactly one reservation crosses each threshold; the store records the event in that
//! reservation's transaction. Its dedupe key (scope, cap, period, threshold) keeps it to once
//! per cap window even when a settlement below the estimate lets the total cross again.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::ledger::{CapWindow, Caps};

/// Basis points in a whole cap.
pub const WHOLE: u16 = 10_000;

/// At most this many thresholds per key or budget.
pub const MAX_THRESHOLDS: usize = 10;

/// One threshold of one cap crossed by an admitted reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// The budget whose cap it is, or `None` for the key's own.
    pub budget: Option<String>,
    pub window: CapWindow,
    /// The threshold, basis points of the cap.
    pub bp: u16,
    pub cap: i64,
    /// What counts against the cap with this reservation, µUSD.
    pub counted: i64,
}

/// The µUSD amount at which `bp` of `cap` is reached (rounded up: never early by a fraction).
pub fn threshold_amount(cap: i64, bp: u16) -> i64 {
    let n = i128::from(cap) * i128::from(bp);
    let w = i128::from(WHOLE);
    ((n + w - 1) / w) as i64
}

/// Every threshold of every cap that `counted` more µUSD cross, from `total`/`today` (the
/// key's or budget's counted amounts *before* this reservation). A cap of 0 has no thresholds
/// (nothing can be spent under it).
pub fn crossed(
    budget: Option<&str>,
    caps: Caps,
    alert_at: &[u16],
    total: i64,
    today: i64,
    counted: i64,
) -> Vec<Crossing> {
    let mut out = Vec::new();
    if alert_at.is_empty() {
        return out;
    }
    for (window, cap, before) in [
        (CapWindow::Run, caps.max_usd, total),
        (CapWindow::Daily, caps.daily_usd_cap, today),
    ] {
        let Some(cap) = cap.filter(|c| *c > 0) else {
            continue;
        };
        let after = before.saturating_add(counted);
        for &bp in alert_at {
            let at = threshold_amount(cap, bp);
            if before < at && after >= at {
                out.push(Crossing {
                    budget: budget.map(str::to_string),
                    window,
                    bp,
                    cap,
                    counted: after,
                });
            }
        }
    }
    out
}

/// [`crossed`] for a key (its own `alert_at`, `total`, `today`) and every budget it joined,
/// from `(name, caps, alert_at, total, today)` rows: what a reservation of `counted` more
/// µUSD reports, on either store.
pub fn crossed_by_key_and_budgets<'a>(
    caps: Caps,
    alert_at: &[u16],
    total: i64,
    today: i64,
    budgets: impl IntoIterator<Item = (&'a str, Caps, &'a [u16], i64, i64)>,
    counted: i64,
) -> Vec<Crossing> {
    let mut out = crossed(None, caps, alert_at, total, today, counted);
    for (name, caps, alert_at, total, today) in budgets {
        out.extend(crossed(Some(name), caps, alert_at, total, today, counted));
    }
    out
}

/// `alert_at` from JSON: an array of fractions of each cap, each above 0 and at most 1, with
/// at most four decimal places (`[0.5, 0.8, 0.95]`). Sorted, duplicates refused.
pub fn parse_alert_at(v: Option<&Value>) -> Result<Vec<u16>> {
    let items = match v {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(Error::invalid(
                "alert_at",
                "must be an array of fractions of each cap, e.g. [0.5, 0.8]",
            ))
        }
    };
    if items.len() > MAX_THRESHOLDS {
        return Err(Error::invalid(
            "alert_at",
            format!("at most {MAX_THRESHOLDS} thresholds"),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let text = match item {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => {
                return Err(Error::invalid(
                    "alert_at",
                    format!("{item} is not a number; give fractions of each cap, e.g. [0.5, 0.8]"),
                ))
            }
        };
        let bp = fraction_bp(&text).ok_or_else(|| {
            Error::invalid(
                "alert_at",
                format!("{text} is not a fraction above 0 and at most 1 with at most 4 decimals (0.8 is 80 % of the cap)"),
            )
        })?;
        if out.contains(&bp) {
            return Err(Error::invalid("alert_at", format!("{text} is given twice")));
        }
        out.push(bp);
    }
    out.sort_unstable();
    Ok(out)
}

/// `"0.8"` → 8 000; `"1"` → 10 000; anything else outside (0, 1] or finer than 1e-4 → `None`.
fn fraction_bp(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 4 {
        return None;
    }
    let int: u32 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_bp: u32 = format!("{frac:0<4}").parse().ok()?;
    let bp = int.checked_mul(u32::from(WHOLE))?.checked_add(frac_bp)?;
    (1..=u32::from(WHOLE)).contains(&bp).then_some(bp as u16)
}

/// Basis points as the fraction the operator wrote: 8 000 → `0.8`.
pub fn bp_json(bp: u16) -> Value {
    let s = format!("{}.{:04}", bp / WHOLE, bp % WHOLE);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    serde_json::from_str(s).unwrap_or(Value::Null)
}

/// Thresholds as kept in a store column: `"5000,8000"` (empty: none).
pub fn to_column(alert_at: &[u16]) -> String {
    alert_at
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The column form back; anything unreadable is dropped (a warning, never a cap).
pub fn from_column(s: Option<&str>) -> Vec<u16> {
    s.unwrap_or("")
        .split(',')
        .filter_map(|p| p.trim().parse::<u16>().ok())
        .filter(|bp| (1..=WHOLE).contains(bp))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fractions_are_read_from_their_digits() {
        assert_eq!(
            parse_alert_at(Some(&json!([0.8, 0.5, "0.95", 1]))).unwrap(),
            vec![5000, 8000, 9500, 10000]
        );
        assert_eq!(parse_alert_at(Some(&json!([0.0001]))).unwrap(), vec![1]);
        for bad in [
            json!([0]),
            json!([1.5]),
            json!([0.00001]),
            json!([-0.5]),
            json!(["x"]),
            json!(0.5),
            json!([0.5, 0.5]),
        ] {
            let e = parse_alert_at(Some(&bad)).unwrap_err().to_string();
            assert!(e.contains("alert_at"), "{bad}: {e}");
        }
        assert_eq!(bp_json(8000), json!(0.8));
        assert_eq!(bp_json(10000), json!(1));
        assert_eq!(bp_json(125), json!(0.0125));
        assert_eq!(
            from_column(Some(&to_column(&[5000, 8000]))),
            vec![5000, 8000]
        );
    }

    #[test]
    fn a_threshold_is_crossed_once_at_its_amount_rounded_up() {
        let run = Caps {
            max_usd: Some(100_000_000),
            daily_usd_cap: None,
        };
        // $100 run cap, 80 %: $80 exactly reaches it, $79.999999 does not.
        assert!(crossed(None, run, &[8000], 0, 0, 79_999_999).is_empty());
        let r = crossed(None, run, &[8000], 70_000_000, 0, 10_000_000);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].window, r[0].bp, r[0].counted),
            (CapWindow::Run, 8000, 80_000_000)
        );
        let caps = Caps {
            max_usd: Some(100_000_000),
            daily_usd_cap: Some(3),
        };
        // 3 µUSD daily cap at 50 %: 1.5 rounds up to 2.
        assert!(crossed(None, caps, &[5000], 0, 1, 0).is_empty());
        assert_eq!(
            crossed(None, caps, &[5000], 0, 1, 1)[0].window,
            CapWindow::Daily
        );
        // Zero caps and no thresholds report nothing.
        let zero = Caps {
            max_usd: Some(0),
            daily_usd_cap: None,
        };
        assert!(crossed(None, zero, &[5000], 0, 0, 0).is_empty());
        assert!(crossed(None, caps, &[], 0, 0, 1 << 40).is_empty());
        // Already at or past it: no second crossing by a later reservation.
        assert!(crossed(None, run, &[8000], 80_000_000, 0, 1).is_empty());
        assert!(crossed(None, run, &[8000], 90_000_000, 0, 0).is_empty());
    }
}
