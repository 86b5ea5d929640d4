//! Settings: the one shape in which every face configures a gateway. The TOML file of
//! `vendorgate serve`, the environment, Python's `Gateway.open(config=…)` and Node's
//! `Gateway.open(path, config)` all deserialize into [`Settings`] (same keys, same units:
//! durations in the unit their name ends with, money as decimal USD strings), and
//! [`Config::from_layers`] merges them in order: defaults < file < environment < code.
//! A later layer replaces a value; a table (`pricing.fx`, `pricing.twilio_sms`, …) is merged
//! entry by entry over the defaults. Secrets are never settings: a vendor's section names the
//! environment variable that holds its credential.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{parse_upstream_url, twilio_credentials, Config, Credentials, Secret};
use crate::cost::PriceOverride;
use crate::error::{Error, Result};
use crate::money::parse_usd;
use crate::vendors::Vendor;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub stripe: Option<VendorSettings>,
    pub twilio: Option<VendorSettings>,
    pub resend: Option<VendorSettings>,
    pub max_body_bytes: Option<u64>,
    pub max_response_bytes: Option<u64>,
    pub max_upstream_requests: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub max_key_ttl_secs: Option<u64>,
    pub store_busy_timeout_ms: Option<u64>,
    pub duplicate_window_secs: Option<u64>,
    pub webhook_retry_secs: Option<Vec<u64>>,
    pub webhook_timeout_ms: Option<u64>,
    pub pricing: Option<PricingSettings>,
}

/// `[stripe]`, `[twilio]`, `[resend]`: where the vendor is and which environment variables
/// hold its credential.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorSettings {
    pub url: Option<String>,
    /// Stripe: the variable holding the secret key (default `STRIPE_SECRET_KEY`).
    pub secret_key_env: Option<String>,
    /// Resend: the variable holding the API key (default `RESEND_API_KEY`).
    pub api_key_env: Option<String>,
    /// Twilio: the variables holding the account SID and auth token (defaults
    /// `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`).
    pub account_sid_env: Option<String>,
    pub auth_token_env: Option<String>,
}

/// `[pricing]`: every amount a decimal USD string, e.g. `"0.0009"`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingSettings {
    pub resend_email_usd: Option<String>,
    pub twilio_mms_usd: Option<String>,
    pub twilio_call_minute_usd: Option<String>,
    pub twilio_call_max_minutes: Option<i64>,
    pub twilio_sms: Option<BTreeMap<String, String>>,
    pub fx: Option<BTreeMap<String, String>>,
    pub twilio_call_minute_usd_by_prefix: Option<BTreeMap<String, String>>,
    pub twilio_number_monthly_usd: Option<BTreeMap<String, String>>,
    #[serde(rename = "override")]
    pub overrides: Option<Vec<OverrideSettings>>,
}

/// `[[pricing.override]]`: `vendor`, `operation = "METHOD /path/{param}"`, and exactly one of
/// `free = true` or `price_usd = "0.50"`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSettings {
    pub vendor: String,
    pub operation: String,
    pub free: Option<bool>,
    pub price_usd: Option<String>,
}

/// One documented setting, for the README's table, `--help` texts and the bindings.
pub struct SettingDoc {
    pub key: &'static str,
    pub unit: &'static str,
    pub default: &'static str,
    pub env: &'static str,
    pub help: &'static str,
}

/// Every setting, in the order the README lists them.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc { key: "stripe.url", unit: "URL", default: "https://api.stripe.com", env: "VENDORGATE_STRIPE_URL", help: "Where Stripe calls go (the only host contacted for Stripe)." },
    SettingDoc { key: "stripe.secret_key_env", unit: "variable name", default: "STRIPE_SECRET_KEY", env: "", help: "The environment variable holding the real Stripe secret key." },
    SettingDoc { key: "twilio.url", unit: "URL", default: "https://api.twilio.com", env: "VENDORGATE_TWILIO_URL", help: "Where Twilio calls go." },
    SettingDoc { key: "twilio.account_sid_env", unit: "variable name", default: "TWILIO_ACCOUNT_SID", env: "", help: "The variable holding the real account SID (set both Twilio variables or neither)." },
    SettingDoc { key: "twilio.auth_token_env", unit: "variable name", default: "TWILIO_AUTH_TOKEN", env: "", help: "The variable holding the real auth token." },
    SettingDoc { key: "resend.url", unit: "URL", default: "https://api.resend.com", env: "VENDORGATE_RESEND_URL", help: "Where Resend calls go." },
    SettingDoc { key: "resend.api_key_env", unit: "variable name", default: "RESEND_API_KEY", env: "", help: "The variable holding the real Resend API key." },
    SettingDoc { key: "max_body_bytes", unit: "bytes", default: "1048576", env: "", help: "Largest request body forwarded; larger is refused with 413." },
    SettingDoc { key: "max_response_bytes", unit: "bytes", default: "16777216", env: "", help: "Largest vendor answer read back; larger counts the call as unknown (502)." },
    SettingDoc { key: "max_upstream_requests", unit: "calls", default: "64", env: "", help: "Calls in flight to one vendor at once; more wait up to request_timeout_ms, then 502 with nothing sent." },
    SettingDoc { key: "connect_timeout_ms", unit: "ms", default: "5000", env: "", help: "Time to open a connection to the vendor (nothing was sent if it runs out: released)." },
    SettingDoc { key: "request_timeout_ms", unit: "ms", default: "60000", env: "", help: "Time for the vendor's whole answer after sending (unknown if it runs out: kept counted)." },
    SettingDoc { key: "max_key_ttl_secs", unit: "s", default: "2592000", env: "", help: "Longest TTL a key may be issued with (30 days)." },
    SettingDoc { key: "store_busy_timeout_ms", unit: "ms", default: "5000", env: "", help: "How long a store operation waits for another process's lock before 503." },
    SettingDoc { key: "duplicate_window_secs", unit: "s", default: "600", env: "", help: "How long a key's money-moving action is remembered: the same action again within it is refused with 409 (keys may set their own duplicate_window; 0 turns the guard off)." },
    SettingDoc { key: "webhook_retry_secs", unit: "list of s", default: "5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400", env: "", help: "Waits between a webhook delivery's attempts (Standard Webhooks' schedule, about 3 days); after the last one the delivery is given up and the audit log says so." },
    SettingDoc { key: "webhook_timeout_ms", unit: "ms", default: "15000", env: "", help: "Time a webhook receiver has to answer an attempt (no answer: retried)." },
    SettingDoc { key: "pricing.resend_email_usd", unit: "USD", default: "0.0009", env: "", help: "Price per email recipient (to + cc + bcc)." },
    SettingDoc { key: "pricing.twilio_mms_usd", unit: "USD", default: "0.025", env: "", help: "Price per MMS message." },
    SettingDoc { key: "pricing.twilio_call_minute_usd", unit: "USD", default: "0.14", env: "", help: "Price per call minute to a destination not in twilio_call_minute_usd_by_prefix." },
    SettingDoc { key: "pricing.twilio_call_max_minutes", unit: "minutes", default: "240", env: "", help: "Minutes a call without TimeLimit is priced at (Twilio's own 4-hour cap)." },
    SettingDoc { key: "pricing.twilio_sms", unit: "USD by calling code", default: "15 countries", env: "", help: "Price per SMS segment by E.164 calling code; merged over the defaults; longest prefix wins, others pay the highest rate." },
    SettingDoc { key: "pricing.fx", unit: "USD by currency", default: "30 currencies", env: "", help: "USD per major unit of a currency; merged over the defaults; a currency missing here is refused." },
    SettingDoc { key: "pricing.twilio_call_minute_usd_by_prefix", unit: "USD by calling code", default: "empty", env: "", help: "Price per call minute by calling code; merged." },
    SettingDoc { key: "pricing.twilio_number_monthly_usd", unit: "USD by \"code:type\"", default: "1:local, 1:mobile, 1:toll_free", env: "", help: "First month of a phone number (type local, mobile or toll_free); merged; others are refused." },
    SettingDoc { key: "pricing.override", unit: "list", default: "none", env: "", help: "Operations declared free or given a fixed price over the catalogue: {vendor, operation = \"METHOD /path\", free = true | price_usd}." },
];

impl Settings {
    /// The environment as a layer: the `VENDORGATE_<VENDOR>_URL` variables. (Credentials
    /// are read from the environment at the end, under the names the layers chose.)
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Settings {
        let url = |var: &str| {
            env(var)
                .filter(|v| !v.trim().is_empty())
                .map(|url| VendorSettings {
                    url: Some(url),
                    ..VendorSettings::default()
                })
        };
        Settings {
            stripe: url("VENDORGATE_STRIPE_URL"),
            twilio: url("VENDORGATE_TWILIO_URL"),
            resend: url("VENDORGATE_RESEND_URL"),
            ..Settings::default()
        }
    }

    /// Settings from JSON text (the bindings' `config`); an unknown key or a wrong value is
    /// refused naming where it is (`config.pricing.fx.EUR: …`).
    pub fn from_json(text: &str) -> Result<Settings> {
        located(&mut serde_json::Deserializer::from_str(text)).map_err(|(path, why)| {
            Error::Config(match path {
                Some(p) => format!("config.{p}: {why}"),
                None => format!("config: {why}"),
            })
        })
    }

    /// Settings from any serde format (the server's TOML file). The error names the path of
    /// the key it refuses, e.g. `pricing.twilio_call_max_minutes: invalid type: …`.
    pub fn from_deserializer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Settings, String> {
        located(d).map_err(|(path, why)| match path {
            Some(p) => format!("{p}: {why}"),
            None => why,
        })
    }

    fn vendor(&self, v: Vendor) -> Option<&VendorSettings> {
        match v {
            Vendor::Stripe => self.stripe.as_ref(),
            Vendor::Twilio => self.twilio.as_ref(),
            Vendor::Resend => self.resend.as_ref(),
        }
    }

    /// Apply this layer's values over `c`.
    fn apply(&self, c: &mut Config) -> Result<()> {
        for v in Vendor::ALL {
            if let Some(url) = self.vendor(v).and_then(|s| s.url.as_deref()) {
                c.upstream_mut(v).base_url = parse_upstream_url(&format!("{v}.url"), url)?;
            }
        }
        let positive = |field: &str, n: Option<u64>| -> Result<Option<u64>> {
            match n {
                Some(0) => Err(Error::Config(format!("{field} must be positive"))),
                other => Ok(other),
            }
        };
        if let Some(n) = positive("max_body_bytes", self.max_body_bytes)? {
            c.max_body_bytes = n as usize;
        }
        if let Some(n) = positive("max_response_bytes", self.max_response_bytes)? {
            c.max_response_bytes = n as usize;
        }
        if let Some(n) = positive("max_upstream_requests", self.max_upstream_requests)? {
            c.max_upstream_requests = n as usize;
        }
        if let Some(ms) = positive("connect_timeout_ms", self.connect_timeout_ms)? {
            c.connect_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = positive("request_timeout_ms", self.request_timeout_ms)? {
            c.request_timeout = Duration::from_millis(ms);
        }
        if let Some(s) = positive("max_key_ttl_secs", self.max_key_ttl_secs)? {
            c.max_key_ttl = Duration::from_secs(s);
        }
        if let Some(ms) = positive("store_busy_timeout_ms", self.store_busy_timeout_ms)? {
            c.store_busy_timeout = Duration::from_millis(ms);
        }
        if let Some(s) = self.duplicate_window_secs {
            if s > crate::keys::MAX_DUPLICATE_WINDOW_SECS as u64 {
                return Err(Error::invalid(
                    "duplicate_window_secs",
                    format!(
                        "must be at most {} seconds (0 turns the guard off)",
                        crate::keys::MAX_DUPLICATE_WINDOW_SECS
                    ),
                ));
            }
            c.duplicate_window = Duration::from_secs(s);
        }
        if let Some(list) = &self.webhook_retry_secs {
            if list.len() > 50 || list.iter().any(|s| *s == 0 || *s > 7 * 86_400) {
                return Err(Error::invalid(
                    "webhook_retry_secs",
                    "must be at most 50 waits, each 1 second to 7 days",
                ));
            }
            c.webhook_retry = list.iter().map(|s| Duration::from_secs(*s)).collect();
        }
        if let Some(ms) = positive("webhook_timeout_ms", self.webhook_timeout_ms)? {
            c.webhook_timeout = Duration::from_millis(ms);
        }
        if let Some(p) = &self.pricing {
            p.apply(c)?;
        }
        Ok(())
    }
}

impl PricingSettings {
    fn apply(&self, c: &mut Config) -> Result<()> {
        let usd = |field: &str, v: &str| {
            parse_usd(field, v).map_err(|e| Error::Config(format!("pricing.{field}: {e}")))
        };
        let p = &mut c.pricing;
        if let Some(v) = &self.resend_email_usd {
            p.resend_email_micros = usd("resend_email_usd", v)?;
        }
        if let Some(v) = &self.twilio_mms_usd {
            p.twilio_mms_micros = usd("twilio_mms_usd", v)?;
        }
        if let Some(v) = &self.twilio_call_minute_usd {
            p.twilio_call_minute_micros = usd("twilio_call_minute_usd", v)?;
        }
        if let Some(m) = self.twilio_call_max_minutes {
            p.twilio_call_max_minutes = m;
        }
        let merge = |into: &mut BTreeMap<String, i64>,
                     name: &str,
                     table: &Option<BTreeMap<String, String>>,
                     key: fn(&str) -> String|
         -> Result<()> {
            for (k, v) in table.iter().flatten() {
                into.insert(key(k), usd(&format!("{name}.{k}"), v)?);
            }
            Ok(())
        };
        let same = |k: &str| k.to_string();
        merge(
            &mut p.twilio_sms_segment_micros,
            "twilio_sms",
            &self.twilio_sms,
            same,
        )?;
        merge(&mut p.fx_micros_per_unit, "fx", &self.fx, |k| {
            k.to_ascii_uppercase()
        })?;
        merge(
            &mut p.twilio_call_minute_by_prefix,
            "twilio_call_minute_usd_by_prefix",
            &self.twilio_call_minute_usd_by_prefix,
            same,
        )?;
        merge(
            &mut p.twilio_number_monthly_micros,
            "twilio_number_monthly_usd",
            &self.twilio_number_monthly_usd,
            same,
        )?;
        for (i, o) in self.overrides.iter().flatten().enumerate() {
            let field = format!("pricing.override[{i}]");
            let vendor: Vendor = o
                .vendor
                .parse()
                .map_err(|e| Error::Config(format!("{field}: vendor {e}")))?;
            let micros = match (o.free, &o.price_usd) {
                (Some(true), None) => None,
                (None | Some(false), Some(v)) => Some(usd(&format!("override[{i}].price_usd"), v)?),
                _ => {
                    return Err(Error::Config(format!(
                        "{field}: set exactly one of free = true or price_usd = \"…\""
                    )))
                }
            };
            let ov = PriceOverride::new(vendor, &o.operation, micros)
                .map_err(|e| Error::Config(format!("{field}: {e}")))?;
            p.overrides.push(ov);
        }
        Ok(())
    }
}

impl Config {
    /// Defaults, then each layer in order (later wins; tables merge), then each vendor's
    /// credential from the environment variable the layers name (or its default name).
    pub fn from_layers(
        layers: &[&Settings],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        let mut c = Config::default();
        for layer in layers {
            layer.apply(&mut c)?;
        }
        let name = |v: Vendor, pick: fn(&VendorSettings) -> Option<&String>, default: &str| {
            layers
                .iter()
                .rev()
                .find_map(|l| l.vendor(v).and_then(pick).cloned())
                .unwrap_or_else(|| default.to_string())
        };
        let env = |var: &str| env(var).filter(|v| !v.trim().is_empty());
        let stripe = name(
            Vendor::Stripe,
            |s| s.secret_key_env.as_ref(),
            "STRIPE_SECRET_KEY",
        );
        c.stripe.credentials = env(&stripe).map(|k| Credentials::Bearer(Secret::new(k.trim())));
        let resend = name(Vendor::Resend, |s| s.api_key_env.as_ref(), "RESEND_API_KEY");
        c.resend.credentials = env(&resend).map(|k| Credentials::Bearer(Secret::new(k.trim())));
        let sid_var = name(
            Vendor::Twilio,
            |s| s.account_sid_env.as_ref(),
            "TWILIO_ACCOUNT_SID",
        );
        let tok_var = name(
            Vendor::Twilio,
            |s| s.auth_token_env.as_ref(),
            "TWILIO_AUTH_TOKEN",
        );
        c.twilio.credentials = match (env(&sid_var), env(&tok_var)) {
            (Some(sid), Some(tok)) => Some(twilio_credentials(sid.trim(), tok.trim())?),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::Config(format!(
                    "{sid_var} is set but {tok_var} is not; set both"
                )))
            }
            (None, Some(_)) => {
                return Err(Error::Config(format!(
                    "{tok_var} is set but {sid_var} is not; set both"
                )))
            }
        };
        c.validate()?;
        Ok(c)
    }
}

impl Config {
    /// The config of a binding's `Gateway.open`: the environment, then `code` (the `config`
    /// argument as JSON). A mistake in `code` is the caller's bad argument (`InvalidInput`,
    /// field `config`); one in the environment stays a `Config` error.
    pub fn for_binding(code: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let as_input = |e: Error| match e {
            Error::Config(m) => Error::invalid("config", m),
            other => other,
        };
        let code = match code {
            Some(text) => Settings::from_json(text).map_err(as_input)?,
            None => Settings::default(),
        };
        Config::from_layers(&[&code], &|_| None).map_err(as_input)?;
        Config::from_layers(&[&Settings::from_env(env), &code], env)
    }
}

/// Deserialize, keeping the path of the key that failed (`None`: the top level).
fn located<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Settings, (Option<String>, String)> {
    serde_path_to_error::deserialize(d).map_err(|e| {
        let path = e.path().to_string();
        let why = e.into_inner().to_string();
        let why = why
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string();
        ((path != ".").then_some(path), why)
    })
}

/// The README's settings table, generated from [`SETTINGS`] (a test keeps the README equal).
pub fn settings_table() -> String {
    let mut out = String::from(
        "| key | unit | default | environment | what it does |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let env = if s.env.is_empty() {
            String::new()
        } else {
            format!("`{}`", s.env)
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            s.key, s.unit, s.default, env, s.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn later_layers_win_and_tables_merge() {
        let file: Settings = serde_json::from_str(
            r#"{"request_timeout_ms": 1000, "stripe": {"url": "http://127.0.0.1:1/file"},
                "pricing": {"fx": {"eur": "1.2"}, "twilio_sms": {"44": "0.1"}}}"#,
        )
        .unwrap();
        let env = env_of(&[("VENDORGATE_STRIPE_URL", "http://127.0.0.1:2/env")]);
        let code: Settings = serde_json::from_str(
            r#"{"request_timeout_ms": 2000, "pricing": {"fx": {"GBP": "2"}}}"#,
        )
        .unwrap();
        let c = Config::from_layers(&[&file, &Settings::from_env(&env), &code], &env).unwrap();
        assert_eq!(c.stripe.base_url.as_str(), "http://127.0.0.1:2/env");
        assert_eq!(c.request_timeout, Duration::from_millis(2000));
        assert_eq!(c.pricing.fx_micros_per_unit["EUR"], 1_200_000);
        assert_eq!(c.pricing.fx_micros_per_unit["GBP"], 2_000_000);
        // merged, not replaced: a default entry stays
        assert_eq!(c.pricing.fx_micros_per_unit["USD"], 1_000_000);
        assert_eq!(c.pricing.twilio_sms_segment_micros["44"], 100_000);
        assert_eq!(c.pricing.twilio_sms_segment_micros["1"], 8_300);
    }

    #[test]
    fn credentials_come_from_the_named_variables() {
        let s: Settings =
            serde_json::from_str(r#"{"stripe": {"secret_key_env": "MY_STRIPE"}}"#).unwrap();
        let env = env_of(&[
            ("MY_STRIPE", "sk_test_1"),
            ("STRIPE_SECRET_KEY", "sk_test_default"),
        ]);
        let c = Config::from_layers(&[&s], &env).unwrap();
        match &c.stripe.credentials {
            Some(Credentials::Bearer(k)) => assert_eq!(k.expose(), "sk_test_1"),
            other => panic!("{other:?}"),
        }
        let half = env_of(&[("TWILIO_ACCOUNT_SID", "AC123")]);
        let err = Config::from_layers(&[], &half).unwrap_err().to_string();
        assert!(err.contains("TWILIO_AUTH_TOKEN"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = Settings::from_json(r#"{"request_timeout_secs": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("request_timeout_secs"), "{err}");
        let bad: Settings =
            serde_json::from_str(r#"{"pricing": {"fx": {"EUR": "lots"}}}"#).unwrap();
        let err = Config::from_layers(&[&bad], &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pricing.fx.EUR"), "{err}");
        let zero: Settings = serde_json::from_str(r#"{"max_body_bytes": 0}"#).unwrap();
        let err = Config::from_layers(&[&zero], &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_body_bytes"), "{err}");
    }

    #[test]
    fn every_settings_key_is_documented() {
        // Each top-level and nested key the structs accept appears in SETTINGS.
        let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        for k in [
            "max_body_bytes",
            "max_response_bytes",
            "max_upstream_requests",
            "connect_timeout_ms",
            "request_timeout_ms",
            "max_key_ttl_secs",
            "store_busy_timeout_ms",
            "duplicate_window_secs",
            "webhook_retry_secs",
            "webhook_timeout_ms",
            "pricing.resend_email_usd",
            "pricing.twilio_mms_usd",
            "pricing.twilio_call_minute_usd",
            "pricing.twilio_call_max_minutes",
            "pricing.twilio_sms",
            "pricing.fx",
            "pricing.twilio_call_minute_usd_by_prefix",
            "pricing.twilio_number_monthly_usd",
            "pricing.override",
            "stripe.url",
            "stripe.secret_key_env",
            "twilio.url",
            "twilio.account_sid_env",
            "twilio.auth_token_env",
            "resend.url",
            "resend.api_key_env",
        ] {
            assert!(keys.contains(&k), "{k} is not in SETTINGS");
        }
    }
}
