//! The operator's prices: FX rates, per-country SMS and call rates, number fees, email and
//! MMS prices, and overrides of the operation catalogue. All money is micro-USD.

use std::collections::BTreeMap;

use crate::catalogue::Template;
use crate::error::{Error, Result};
use crate::vendors::Vendor;

/// Prices, FX rates and per-country SMS rates. All money is micro-USD.
#[derive(Clone, Debug)]
pub struct Pricing {
    /// µUSD for one major unit of each currency (upper-case ISO code). A currency missing here
    /// cannot be priced and its calls are refused.
    pub fx_micros_per_unit: BTreeMap<String, i64>,
    /// µUSD per SMS segment, keyed by the E.164 calling-code prefix of `To` ("1", "44", ...).
    /// Longest prefix wins; a number matching none is priced at the highest rate in the table.
    pub twilio_sms_segment_micros: BTreeMap<String, i64>,
    /// µUSD per MMS message (a message with `MediaUrl`).
    pub twilio_mms_micros: i64,
    /// µUSD per minute of a voice call to a destination not in `twilio_call_minute_by_prefix`.
    pub twilio_call_minute_micros: i64,
    /// µUSD per minute of a voice call, keyed by the E.164 calling-code prefix of `To`
    /// (longest prefix wins). Empty by default: every call is priced at
    /// `twilio_call_minute_micros`.
    pub twilio_call_minute_by_prefix: BTreeMap<String, i64>,
    /// Minutes a call without `TimeLimit` is priced at (default 240: Twilio's own 4-hour cap,
    /// so an estimate is never below what the call can cost).
    pub twilio_call_max_minutes: i64,
    /// µUSD for the first month of a phone number, keyed `"<calling code>:<type>"` with type
    /// `local`, `mobile` or `toll_free` (e.g. `"1:local"`). A number whose country and type are
    /// not in the table cannot be priced and its purchase is refused.
    pub twilio_number_monthly_micros: BTreeMap<String, i64>,
    /// Operator overrides of the operation catalogue (an operation declared free, or given a
    /// fixed price), checked before the catalogue.
    pub overrides: Vec<PriceOverride>,
    /// µUSD per email recipient (to + cc + bcc).
    pub resend_email_micros: i64,
}

impl Default for Pricing {
    fn default() -> Self {
        // Rates are deliberately on the high side of 2026 market rates: an estimate above the
        // actual cost keeps the cap exact (DESIGN.md, ledger invariant).
        let fx: &[(&str, i64)] = &[
            ("USD", 1_000_000),
            ("EUR", 1_100_000),
            ("GBP", 1_300_000),
            ("JPY", 7_000),
            ("CAD", 750_000),
            ("AUD", 680_000),
            ("CHF", 1_200_000),
            ("SEK", 100_000),
            ("NOK", 100_000),
            ("DKK", 150_000),
            ("INR", 12_500),
            ("KRW", 760),
            ("SGD", 780_000),
            ("HKD", 130_000),
            ("MXN", 58_000),
            ("BRL", 200_000),
            ("KWD", 3_300_000),
            ("BHD", 2_700_000),
            ("JOD", 1_420_000),
            ("OMR", 2_600_000),
            ("TND", 340_000),
            ("ISK", 8_000),
            ("HUF", 2_900),
            ("TWD", 33_000),
            ("NZD", 620_000),
            ("PLN", 270_000),
            ("CZK", 46_000),
            ("ZAR", 58_000),
            ("CLP", 1_100),
            ("VND", 42),
        ];
        let sms: &[(&str, i64)] = &[
            ("1", 8_300),    // US, Canada
            ("44", 52_400),  // United Kingdom
            ("49", 113_000), // Germany
            ("33", 88_000),  // France
            ("34", 90_000),  // Spain
            ("39", 90_000),  // Italy
            ("31", 115_000), // Netherlands
            ("61", 61_000),  // Australia
            ("81", 92_000),  // Japan
            ("91", 83_000),  // India
            ("55", 63_000),  // Brazil
            ("52", 60_000),  // Mexico
            ("65", 55_000),  // Singapore
            ("353", 95_000), // Ireland
            ("86", 60_000),  // China
        ];
        Pricing {
            fx_micros_per_unit: fx.iter().map(|(c, r)| (c.to_string(), *r)).collect(),
            twilio_sms_segment_micros: sms.iter().map(|(c, r)| (c.to_string(), *r)).collect(),
            twilio_mms_micros: 25_000,
            twilio_call_minute_micros: 140_000,
            twilio_call_minute_by_prefix: BTreeMap::new(),
            twilio_call_max_minutes: 240,
            // Twilio's US/Canada list prices are $1.15 (local, mobile) and $2.15 (toll-free) a
            // month; rounded up.
            twilio_number_monthly_micros: [
                ("1:local", 1_500_000),
                ("1:mobile", 1_500_000),
                ("1:toll_free", 2_500_000),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
            overrides: Vec::new(),
            resend_email_micros: 900,
        }
    }
}

impl Pricing {
    pub fn validate(&self) -> Result<()> {
        for (code, rate) in &self.fx_micros_per_unit {
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(Error::Config(format!(
                    "fx: currency code {code:?} must be three upper-case letters"
                )));
            }
            if *rate <= 0 {
                return Err(Error::Config(format!("fx.{code}: rate must be positive")));
            }
        }
        if self.twilio_sms_segment_micros.is_empty() {
            return Err(Error::Config(
                "pricing.twilio_sms: the table must have at least one entry".into(),
            ));
        }
        for (prefix, rate) in &self.twilio_sms_segment_micros {
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::Config(format!(
                    "pricing.twilio_sms: {prefix:?} must be a calling code of digits, e.g. \"44\""
                )));
            }
            if *rate < 0 {
                return Err(Error::Config(format!(
                    "pricing.twilio_sms.{prefix}: rate must not be negative"
                )));
            }
        }
        for (prefix, rate) in &self.twilio_call_minute_by_prefix {
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || *rate < 0 {
                return Err(Error::Config(format!(
                    "twilio_call_minute_usd_by_prefix.{prefix}: the key must be a calling code of digits and the rate not negative"
                )));
            }
        }
        for (key, fee) in &self.twilio_number_monthly_micros {
            let ok = key.split_once(':').is_some_and(|(cc, t)| {
                !cc.is_empty()
                    && cc.bytes().all(|b| b.is_ascii_digit())
                    && matches!(t, "local" | "mobile" | "toll_free")
            });
            if !ok || *fee < 0 {
                return Err(Error::Config(format!(
                    "twilio_number_monthly_usd.{key}: the key must be \"<calling code>:<local|mobile|toll_free>\" and the fee not negative"
                )));
            }
        }
        if !(1..=24 * 60).contains(&self.twilio_call_max_minutes) {
            return Err(Error::Config(
                "twilio_call_max_minutes must be between 1 and 1440".into(),
            ));
        }
        for (name, v) in [
            ("twilio_mms_usd", self.twilio_mms_micros),
            ("twilio_call_minute_usd", self.twilio_call_minute_micros),
            ("resend_email_usd", self.resend_email_micros),
        ] {
            if v < 0 {
                return Err(Error::Config(format!("{name} must not be negative")));
            }
        }
        Ok(())
    }
}

/// An operator's override of the catalogue (config `[[pricing.override]]`): an operation
/// declared free, or given a fixed price, e.g. for an API version newer than the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceOverride {
    pub vendor: Vendor,
    /// Upper-case method.
    pub method: String,
    /// A path template in the catalogue's syntax (`/v1/widgets/{id}/buy`).
    pub template: String,
    /// `None`: free; else the fixed estimate, µUSD.
    pub micros: Option<i64>,
    parsed: Template,
}

impl PriceOverride {
    /// `operation` is `"METHOD /path/{param}"`.
    pub fn new(vendor: Vendor, operation: &str, micros: Option<i64>) -> Result<Self, String> {
        let (method, template) = operation
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("operation {operation:?} must be \"METHOD /path\""))?;
        let method = method.to_ascii_uppercase();
        if !["GET", "POST", "DELETE", "PUT", "PATCH"].contains(&method.as_str()) {
            return Err(format!("operation {operation:?}: unknown method {method}"));
        }
        let template = template.trim().to_string();
        let parsed =
            Template::parse(&template).map_err(|e| format!("operation {operation:?}: {e}"))?;
        if micros.is_some_and(|m| m < 0) {
            return Err(format!(
                "operation {operation:?}: the price must not be negative"
            ));
        }
        Ok(PriceOverride {
            vendor,
            method,
            template,
            micros,
            parsed,
        })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.parsed.matches(path)
    }
}
