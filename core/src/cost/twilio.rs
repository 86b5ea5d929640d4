//! Twilio Messages: segments of `Body` × the per-segment rate of the `To` country; the
//! answer's `price` (negative decimal string, `price_unit`) when Twilio has set it.

use serde_json::Value;

use super::currency::decimal_to_micros;
use super::model::{
    classify_failure, single_field, CostModel, Estimate, ObjectFacts, Outcome, RequestView,
    ResponseView,
};
use super::prices::Pricing;
use crate::ledger::MoneyState;
use crate::vendors::Vendor;

pub struct Twilio;

/// GSM 03.38 basic character set (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table (escape + char: two septets each).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{000C}";

/// How a message body is encoded and how many segments it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub ucs2: bool,
    pub count: u32,
}

/// Count SMS segments the way the carrier splits them: GSM-7 160 septets in one segment or
/// 153 per part, extension characters two septets and never split across parts; otherwise
/// UCS-2 70 code units or 67 per part, surrogate pairs never split. An empty body is one
/// segment.
pub fn count_segments(body: &str) -> Segments {
    let gsm_width = |c: char| {
        if GSM7_BASIC.contains(c) {
            Some(1u32)
        } else if GSM7_EXTENDED.contains(c) {
            Some(2u32)
        } else {
            None
        }
    };
    let widths: Option<Vec<u32>> = body.chars().map(gsm_width).collect();
    let (ucs2, widths, single, part) = match widths {
        Some(w) => (false, w, 160, 153),
        None => (
            true,
            body.chars().map(|c| c.len_utf16() as u32).collect(),
            70,
            67,
        ),
    };
    let total: u32 = widths.iter().sum();
    if total <= single {
        return Segments { ucs2, count: 1 };
    }
    let mut count = 1;
    let mut used = 0;
    for w in widths {
        if used + w > part {
            count += 1;
            used = 0;
        }
        used += w;
    }
    Segments { ucs2, count }
}

/// The per-segment rate for a destination: longest calling-code prefix of an E.164 `To`;
/// anything else (unknown country, not E.164, a channel address) gets the table's highest rate.
pub fn segment_rate(pricing: &Pricing, to: &str) -> i64 {
    let highest = pricing
        .twilio_sms_segment_micros
        .values()
        .copied()
        .max()
        .unwrap_or(0);
    let Some(digits) = to.trim().strip_prefix('+') else {
        return highest;
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return highest;
    }
    (1..=digits.len().min(4))
        .rev()
        .find_map(|n| pricing.twilio_sms_segment_micros.get(&digits[..n]).copied())
        .unwrap_or(highest)
}

/// The models `core/catalogue/twilio.ops` may name.
pub const MODELS: &[&str] = &["message", "call", "call_update", "number_purchase"];

impl CostModel for Twilio {
    fn vendor(&self) -> Vendor {
        Vendor::Twilio
    }

    fn models(&self) -> &'static [&'static str] {
        MODELS
    }

    fn estimate_with(&self, pricing: &Pricing, model: &str, req: &RequestView<'_>) -> Estimate {
        let price = match model {
            "message" => price_message(pricing, req),
            "call" => price_call(pricing, req),
            "call_update" => return call_update(req).unwrap_or_else(Estimate::CannotPrice),
            "number_purchase" => price_number(pricing, req),
            other => Err(format!("the Twilio cost model has no rule named {other}")),
        };
        match price {
            Ok(micros) => Estimate::Priced {
                micros,
                object_id: None,
            },
            Err(why) => Estimate::CannotPrice(why),
        }
    }

    fn settle(
        &self,
        pricing: &Pricing,
        _req: &RequestView<'_>,
        estimate: i64,
        resp: &ResponseView<'_>,
    ) -> Outcome {
        if let Some(o) = classify_failure(resp.status, estimate) {
            return o;
        }
        let Ok(v) = serde_json::from_slice::<Value>(resp.body) else {
            return Outcome::unknown(estimate);
        };
        match resource_outcome(pricing, &v, estimate) {
            Some(o) => o,
            None if estimate > 0 => Outcome::unknown(estimate),
            None => Outcome::none(),
        }
    }
}

fn form_of(req: &RequestView<'_>) -> Result<Vec<(String, String)>, String> {
    req.form().ok_or_else(|| {
        "a Twilio create must be form-encoded (application/x-www-form-urlencoded)".to_string()
    })
}

fn price_message(pricing: &Pricing, req: &RequestView<'_>) -> Result<i64, String> {
    let form = form_of(req)?;
    let to = single_field(&form, "To")?.ok_or("field To is required to price a message")?;
    if form.iter().any(|(k, _)| k == "MediaUrl") {
        return Ok(pricing.twilio_mms_micros);
    }
    if single_field(&form, "ContentSid")?.is_some() && single_field(&form, "Body")?.is_none() {
        return Err("a message from a ContentSid template has no Body to count segments from; send Body instead".into());
    }
    let body = single_field(&form, "Body")?.unwrap_or("");
    let segments = count_segments(body).count;
    Ok(segment_rate(pricing, to).saturating_mul(i64::from(segments)))
}

/// The per-minute rate of a call to `to`: longest calling-code prefix in the table, else the
/// flat rate — and never below the highest rate in the table for a destination that is not
/// an E.164 number (a SIP URI, a client).
pub fn call_minute_rate(pricing: &Pricing, to: &str) -> i64 {
    let table = &pricing.twilio_call_minute_by_prefix;
    let highest = table
        .values()
        .copied()
        .chain([pricing.twilio_call_minute_micros])
        .max()
        .unwrap_or(0);
    let Some(digits) = to.trim().strip_prefix('+') else {
        return highest;
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return highest;
    }
    (1..=digits.len().min(4))
        .rev()
        .find_map(|n| table.get(&digits[..n]).copied())
        .unwrap_or(pricing.twilio_call_minute_micros)
}

fn price_call(pricing: &Pricing, req: &RequestView<'_>) -> Result<i64, String> {
    let form = form_of(req)?;
    let to = single_field(&form, "To")?.ok_or("field To is required to price a call")?;
    let minutes = match single_field(&form, "TimeLimit")? {
        Some(limit) => {
            let secs: i64 = limit
                .parse()
                .ok()
                .filter(|s| *s > 0 && *s <= 24 * 3600)
                .ok_or_else(|| {
                    format!("TimeLimit must be a whole number of seconds between 1 and 86400, got {limit:?}")
                })?;
            (secs + 59) / 60
        }
        // Twilio ends a call without TimeLimit after 4 hours by default: price that long.
        None => pricing.twilio_call_max_minutes,
    };
    Ok(call_minute_rate(pricing, to).saturating_mul(minutes))
}

/// Updating a live call: ending it is free; anything else (new TwiML or Url) can dial more.
fn call_update(req: &RequestView<'_>) -> Result<Estimate, String> {
    let form = form_of(req)?;
    let ends = matches!(
        single_field(&form, "Status")?,
        Some("canceled" | "completed")
    );
    let other = form.iter().find(|(k, _)| k != "Status");
    match (ends, other) {
        (true, None) => Ok(Estimate::Free),
        (_, Some((k, _))) => Err(format!("updating a call with {k} runs new TwiML that can dial more numbers, which the gateway cannot price; only Status=canceled or completed is free")),
        (false, None) => Err("only Status=canceled or Status=completed is forwarded on a live call".into()),
    }
}

/// The first month's fee of a number purchase, from `twilio_number_monthly_micros`.
fn price_number(pricing: &Pricing, req: &RequestView<'_>) -> Result<i64, String> {
    let form = form_of(req)?;
    let kind = match req.segments().last().copied() {
        Some("Local.json") => Some("local"),
        Some("Mobile.json") => Some("mobile"),
        Some("TollFree.json") => Some("toll_free"),
        _ => None,
    };
    let country = match (
        single_field(&form, "PhoneNumber")?,
        single_field(&form, "AreaCode")?,
    ) {
        (Some(n), _) => {
            let digits = n.trim().strip_prefix('+').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("PhoneNumber must be an E.164 number (+ and digits) to price its monthly fee, got {n:?}"))?;
            (1..=digits.len().min(3)).rev().map(|n| &digits[..n]).find(|cc| {
                pricing.twilio_number_monthly_micros.keys().any(|k| k.split(':').next() == Some(cc))
            }).ok_or_else(|| format!("no monthly fee is configured for numbers of {n}; add it to pricing.twilio_number_monthly_usd as \"<calling code>:<local|mobile|toll_free>\""))?
        }
        // An area code is a US or Canadian number.
        (None, Some(_)) => "1",
        (None, None) => {
            return Err(
                "a number purchase needs PhoneNumber (or AreaCode) to price its monthly fee".into(),
            )
        }
    };
    let fees = pricing
        .twilio_number_monthly_micros
        .iter()
        .filter(|(k, _)| {
            k.split_once(':')
                .is_some_and(|(cc, t)| cc == country && kind.is_none_or(|want| want == t))
        })
        .map(|(_, v)| *v);
    // The generic endpoint does not say the number's type: the country's highest fee.
    fees.max().ok_or_else(|| {
        format!("no monthly fee is configured for +{country} {} numbers; add pricing.twilio_number_monthly_usd.\"{country}:{}\"", kind.unwrap_or("any"), kind.unwrap_or("local"))
    })
}

/// The money position of a Message or Call resource from an answer.
pub fn resource_outcome(pricing: &Pricing, v: &Value, estimate: i64) -> Option<Outcome> {
    let sid = v.get("sid")?.as_str()?.to_string();
    let status = v.get("status").and_then(Value::as_str).unwrap_or("");
    let price = v
        .get("price")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    // A price without its unit proves nothing: the estimate stands.
    let unit = v.get("price_unit").and_then(Value::as_str);
    if let (Some(p), Some(unit)) = (price, unit) {
        // Twilio's figure is the final word on the message, replacing the estimate.
        let cost = decimal_to_micros(pricing, p, unit)?;
        return Some(Outcome {
            state: MoneyState::Moved,
            cost_micros: cost,
            object: Some(ObjectFacts {
                id: sid,
                remember: None,
                authoritative: true,
            }),
        });
    }
    // A canceled resource that states a price the gateway cannot read (another type, no
    // unit) may have cost something: only a canceled answer without a price releases.
    let unreadable_price = v
        .get("price")
        .is_some_and(|p| !p.is_null() && p.as_str() != Some(""));
    let canceled = status == "canceled" && !unreadable_price;
    Some(Outcome {
        // No price yet: the estimate stands, pending, until a later read brings the price.
        state: if canceled {
            MoneyState::None
        } else {
            MoneyState::Pending
        },
        cost_micros: if canceled { 0 } else { estimate },
        object: Some(ObjectFacts {
            id: sid,
            remember: None,
            authoritative: canceled,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_segments() {
        assert_eq!(
            count_segments(""),
            Segments {
                ucs2: false,
                count: 1
            }
        );
        assert_eq!(count_segments(&"a".repeat(160)).count, 1);
        assert_eq!(count_segments(&"a".repeat(161)).count, 2);
        assert_eq!(count_segments(&"a".repeat(306)).count, 2);
        assert_eq!(count_segments(&"a".repeat(307)).count, 3);
        // Extension characters count double: 80 '{' are 160 septets (one segment), 81 are two.
        assert_eq!(count_segments(&"{".repeat(80)).count, 1);
        assert_eq!(count_segments(&"{".repeat(81)).count, 2);
        assert!(!count_segments("€[]").ucs2);
        // An escape pair is never split: 152 'a' then '€' fills 154 septets, so the '€' moves.
        let s = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(count_segments(&s).count, 2);
    }

    #[test]
    fn ucs2_segments() {
        assert!(count_segments("héllo ✓").ucs2);
        assert_eq!(count_segments(&"✓".repeat(70)).count, 1);
        assert_eq!(count_segments(&"✓".repeat(71)).count, 2);
        assert_eq!(count_segments(&"✓".repeat(134)).count, 2);
        assert_eq!(count_segments(&"✓".repeat(135)).count, 3);
        // Twilio's own example: 152 GSM-7 characters and one unicode character make 3 parts.
        assert_eq!(count_segments(&format!("{}✓", "a".repeat(152))).count, 3);
        // An emoji is a surrogate pair (2 code units) and is not split across parts.
        assert_eq!(count_segments(&"😀".repeat(35)).count, 1);
        assert_eq!(count_segments(&"😀".repeat(36)).count, 2);
    }

    #[test]
    fn rates_by_country_unknown_gets_highest() {
        let p = Pricing::default();
        let highest = *p.twilio_sms_segment_micros.values().max().unwrap();
        assert_eq!(segment_rate(&p, "+14155550100"), 8_300);
        assert_eq!(segment_rate(&p, "+447700900000"), 52_400);
        assert_eq!(segment_rate(&p, "+353851234567"), 95_000);
        assert_eq!(segment_rate(&p, "+999123"), highest);
        assert_eq!(segment_rate(&p, "4155550100"), highest);
        assert_eq!(segment_rate(&p, "whatsapp:+14155550100"), highest);
    }

    fn req(body: &str) -> RequestView<'_> {
        RequestView {
            method: "POST",
            path: "/2010-04-01/Accounts/AC1/Messages.json",
            query: None,
            content_type: Some("application/x-www-form-urlencoded"),
            body: body.as_bytes(),
        }
    }

    #[test]
    fn estimates_messages() {
        let p = Pricing::default();
        assert_eq!(
            crate::cost::estimate(
                &p,
                Vendor::Twilio,
                &req("To=%2B14155550100&From=%2B1&Body=hi")
            ),
            Estimate::Priced {
                micros: 8_300,
                object_id: None
            }
        );
        let long = format!("To=%2B447700900000&Body={}", "a".repeat(200));
        assert_eq!(
            crate::cost::estimate(&p, Vendor::Twilio, &req(&long)),
            Estimate::Priced {
                micros: 2 * 52_400,
                object_id: None
            }
        );
        assert!(matches!(
            crate::cost::estimate(&p, Vendor::Twilio, &req("Body=hi")),
            Estimate::CannotPrice(_)
        ));
        assert!(matches!(
            crate::cost::estimate(&p, Vendor::Twilio, &req("To=%2B1&To=%2B44&Body=hi")),
            Estimate::CannotPrice(_)
        ));
    }

    #[test]
    fn price_replaces_estimate_when_present() {
        let p = Pricing::default();
        let o = resource_outcome(
            &p,
            &serde_json::json!({"sid":"SM1","status":"sent","price":"-0.00750","price_unit":"USD"}),
            8_300,
        )
        .unwrap();
        assert_eq!((o.state, o.cost_micros), (MoneyState::Moved, 7_500));
        let o = resource_outcome(
            &p,
            &serde_json::json!({"sid":"SM1","status":"queued","price":null}),
            8_300,
        )
        .unwrap();
        assert_eq!((o.state, o.cost_micros), (MoneyState::Pending, 8_300));
        assert!(!o.object.unwrap().authoritative);
    }
}

#[cfg(test)]
mod catalogue_models {
    use super::*;

    fn post<'a>(path: &'a str, body: &'a str) -> RequestView<'a> {
        RequestView {
            method: "POST",
            path,
            query: None,
            content_type: Some("application/x-www-form-urlencoded"),
            body: body.as_bytes(),
        }
    }

    fn priced(e: Estimate) -> i64 {
        match e {
            Estimate::Priced { micros, .. } => micros,
            other => panic!("not priced: {other:?}"),
        }
    }

    const ACCT: &str = "/2010-04-01/Accounts/AC1";

    #[test]
    fn calls_are_priced_at_time_limit_or_the_longest_call() {
        let mut p = Pricing::default();
        let calls = format!("{ACCT}/Calls.json");
        let est =
            |p: &Pricing, body: &str| crate::cost::estimate(p, Vendor::Twilio, &post(&calls, body));
        assert_eq!(
            priced(est(&p, "To=%2B14155550100&TimeLimit=90")),
            2 * 140_000
        );
        // No TimeLimit: Twilio's own 4-hour default, never less.
        assert_eq!(priced(est(&p, "To=%2B14155550100")), 240 * 140_000);
        p.twilio_call_minute_by_prefix.insert("1".into(), 30_000);
        p.twilio_call_minute_by_prefix.insert("44".into(), 500_000);
        assert_eq!(priced(est(&p, "To=%2B14155550100&TimeLimit=60")), 30_000);
        // Not in the table: the flat rate; not a number at all: the highest rate known.
        assert_eq!(priced(est(&p, "To=%2B33612345678&TimeLimit=60")), 140_000);
        assert_eq!(
            priced(est(&p, "To=sip%3Aa%40b.example&TimeLimit=60")),
            500_000
        );
        for bad in ["TimeLimit=60", "To=%2B1&TimeLimit=0", "To=%2B1&TimeLimit=x"] {
            assert!(matches!(est(&p, bad), Estimate::CannotPrice(_)), "{bad}");
        }
        let participants = format!("{ACCT}/Conferences/CF1/Participants.json");
        let participant = crate::cost::estimate(
            &p,
            Vendor::Twilio,
            &post(&participants, "To=%2B14155550100&From=%2B1"),
        );
        assert_eq!(priced(participant), 240 * 30_000);
    }

    #[test]
    fn ending_a_call_is_free_new_twiml_is_refused() {
        let p = Pricing::default();
        let call = format!("{ACCT}/Calls/CA1.json");
        assert_eq!(
            crate::cost::estimate(&p, Vendor::Twilio, &post(&call, "Status=completed")),
            Estimate::Free
        );
        for body in [
            "Twiml=%3CResponse%3E%3CDial%3E%2B1%3C%2FDial%3E%3C%2FResponse%3E",
            "Url=https%3A%2F%2Fx",
            "Status=completed&Url=x",
            "",
        ] {
            assert!(
                matches!(
                    crate::cost::estimate(&p, Vendor::Twilio, &post(&call, body)),
                    Estimate::CannotPrice(_)
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn number_purchases_cost_their_first_month() {
        let p = Pricing::default();
        let buy = |kind: &str, body: &str| {
            let path = format!("{ACCT}/IncomingPhoneNumbers{kind}.json");
            crate::cost::estimate(&p, Vendor::Twilio, &post(&path, body))
        };
        assert_eq!(
            priced(buy("/Local", "PhoneNumber=%2B14155550100")),
            1_500_000
        );
        assert_eq!(priced(buy("/TollFree", "AreaCode=800")), 2_500_000);
        // The generic endpoint does not say the type: the country's highest fee.
        assert_eq!(priced(buy("", "PhoneNumber=%2B18005550100")), 2_500_000);
        // A country with no configured fee is refused, not guessed.
        assert!(matches!(
            buy("/Mobile", "PhoneNumber=%2B447700900000"),
            Estimate::CannotPrice(_)
        ));
        assert!(matches!(buy("/Local", ""), Estimate::CannotPrice(_)));
    }
}
