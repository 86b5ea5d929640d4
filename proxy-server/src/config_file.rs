//! The TOML config file (example: examples/vendorgate.toml). Every field is optional; flags
//! beat the environment, which beats the file, which beats the defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vendorgate::config::{parse_upstream_url, twilio_credentials};
use vendorgate::{Config, Credentials, Secret, Vendor};

use crate::error::ServerError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub db: Option<PathBuf>,
    /// Name of the environment variable holding the admin token.
    pub admin_token_env: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_upstream_requests: Option<usize>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    /// How long a store operation waits for another process's lock before the request is
    /// refused with 503 (default 5000).
    pub store_busy_timeout_ms: Option<u64>,
    pub stripe: Option<VendorSection>,
    pub twilio: Option<VendorSection>,
    pub resend: Option<VendorSection>,
    pub pricing: Option<PricingSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorSection {
    pub url: Option<String>,
    /// Stripe: variable holding the secret key (default STRIPE_SECRET_KEY).
    pub secret_key_env: Option<String>,
    /// Resend: variable holding the API key (default RESEND_API_KEY).
    pub api_key_env: Option<String>,
    /// Twilio: variables holding the account SID and auth token.
    pub account_sid_env: Option<String>,
    pub auth_token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingSection {
    /// USD per email recipient, as a decimal string.
    pub resend_email_usd: Option<String>,
    pub twilio_mms_usd: Option<String>,
    pub twilio_call_minute_usd: Option<String>,
    /// USD per SMS segment by calling code; replaces the whole default table when given.
    pub twilio_sms: Option<BTreeMap<String, String>>,
    /// USD per major unit of a currency; merged over the defaults.
    pub fx: Option<BTreeMap<String, String>>,
    /// USD per call minute by calling code (longest prefix wins); other destinations are
    /// priced at `twilio_call_minute_usd`.
    pub twilio_call_minute_usd_by_prefix: Option<BTreeMap<String, String>>,
    /// Minutes a call without TimeLimit is priced at (default 240).
    pub twilio_call_max_minutes: Option<i64>,
    /// USD for a number's first month, keyed "<calling code>:<local|mobile|toll_free>";
    /// merged over the defaults.
    pub twilio_number_monthly_usd: Option<BTreeMap<String, String>>,
    /// Operations declared free or given a fixed price, over the catalogue.
    #[serde(rename = "override")]
    pub overrides: Option<Vec<OverrideSection>>,
}

/// `[[pricing.override]]`: `vendor`, `operation = "METHOD /path/{param}"`, and exactly one of
/// `free = true` or `price_usd = "0.50"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSection {
    pub vendor: String,
    pub operation: String,
    pub free: Option<bool>,
    pub price_usd: Option<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ServerError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        toml::from_str(&text).map_err(|e| {
            ServerError::Config(format!(
                "config file {}: {}",
                path.display(),
                e.to_string().trim()
            ))
        })
    }

    /// Build the core config: defaults, then this file, then the environment.
    pub fn to_config(
        &self,
        path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ServerError> {
        let cfg_err = |field: &str, msg: String| {
            ServerError::Config(format!("config file {path}: {field}: {msg}"))
        };
        let mut c = Config::default();
        if let Some(n) = self.max_body_bytes {
            if n == 0 {
                return Err(cfg_err("max_body_bytes", "must be positive".into()));
            }
            c.max_body_bytes = n;
        }
        if let Some(n) = self.max_upstream_requests {
            if n == 0 {
                return Err(cfg_err("max_upstream_requests", "must be positive".into()));
            }
            c.max_upstream_requests = n;
        }
        if let Some(ms) = self.connect_timeout_ms {
            c.connect_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.request_timeout_ms {
            c.request_timeout = Duration::from_millis(ms);
        }
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        for (vendor, section) in [
            (Vendor::Stripe, &self.stripe),
            (Vendor::Twilio, &self.twilio),
            (Vendor::Resend, &self.resend),
        ] {
            let s = section.as_ref();
            if let Some(u) = s.and_then(|s| s.url.as_deref()) {
                c.upstream_mut(vendor).base_url =
                    parse_upstream_url(&format!("{vendor}.url"), u)
                        .map_err(|e| ServerError::Config(format!("config file {path}: {e}")))?;
            }
            let var = |field: Option<&String>, default: &str| {
                field.cloned().unwrap_or_else(|| default.to_string())
            };
            let creds = match vendor {
                Vendor::Stripe => env(&var(
                    s.and_then(|s| s.secret_key_env.as_ref()),
                    "STRIPE_SECRET_KEY",
                ))
                .map(|k| Credentials::Bearer(Secret::new(k.trim()))),
                Vendor::Resend => env(&var(
                    s.and_then(|s| s.api_key_env.as_ref()),
                    "RESEND_API_KEY",
                ))
                .map(|k| Credentials::Bearer(Secret::new(k.trim()))),
                Vendor::Twilio => {
                    let sid_var = var(
                        s.and_then(|s| s.account_sid_env.as_ref()),
                        "TWILIO_ACCOUNT_SID",
                    );
                    let tok_var = var(
                        s.and_then(|s| s.auth_token_env.as_ref()),
                        "TWILIO_AUTH_TOKEN",
                    );
                    match (env(&sid_var), env(&tok_var)) {
                        (Some(sid), Some(tok)) => Some(
                            twilio_credentials(sid.trim(), tok.trim())
                                .map_err(|e| ServerError::Config(e.to_string()))?,
                        ),
                        (None, None) => None,
                        (Some(_), None) => {
                            return Err(ServerError::Config(format!(
                                "{sid_var} is set but {tok_var} is not; set both"
                            )))
                        }
                        (None, Some(_)) => {
                            return Err(ServerError::Config(format!(
                                "{tok_var} is set but {sid_var} is not; set both"
                            )))
                        }
                    }
                }
            };
            c.upstream_mut(vendor).credentials = creds;
        }
        for (var, vendor) in [
            ("VENDORGATE_STRIPE_URL", Vendor::Stripe),
            ("VENDORGATE_TWILIO_URL", Vendor::Twilio),
            ("VENDORGATE_RESEND_URL", Vendor::Resend),
        ] {
            if let Some(u) = env(var) {
                c.upstream_mut(vendor).base_url =
                    parse_upstream_url(var, &u).map_err(|e| ServerError::Config(e.to_string()))?;
            }
        }
        if let Some(p) = &self.pricing {
            let usd = |field: &str, v: &str| {
                vendorgate::parse_usd(field, v)
                    .map_err(|e| cfg_err(&format!("pricing.{field}"), e.to_string()))
            };
            if let Some(v) = &p.resend_email_usd {
                c.pricing.resend_email_micros = usd("resend_email_usd", v)?;
            }
            if let Some(v) = &p.twilio_mms_usd {
                c.pricing.twilio_mms_micros = usd("twilio_mms_usd", v)?;
            }
            if let Some(v) = &p.twilio_call_minute_usd {
                c.pricing.twilio_call_minute_micros = usd("twilio_call_minute_usd", v)?;
            }
            if let Some(t) = &p.twilio_sms {
                c.pricing.twilio_sms_segment_micros = t
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), usd(&format!("twilio_sms.{k}"), v)?)))
                    .collect::<Result<_, ServerError>>()?;
            }
            if let Some(t) = &p.twilio_call_minute_usd_by_prefix {
                for (k, v) in t {
                    let rate = usd(&format!("twilio_call_minute_usd_by_prefix.{k}"), v)?;
                    c.pricing
                        .twilio_call_minute_by_prefix
                        .insert(k.clone(), rate);
                }
            }
            if let Some(m) = p.twilio_call_max_minutes {
                c.pricing.twilio_call_max_minutes = m;
            }
            if let Some(t) = &p.twilio_number_monthly_usd {
                for (k, v) in t {
                    let fee = usd(&format!("twilio_number_monthly_usd.{k}"), v)?;
                    c.pricing
                        .twilio_number_monthly_micros
                        .insert(k.clone(), fee);
                }
            }
            for (i, o) in p.overrides.iter().flatten().enumerate() {
                let field = format!("pricing.override[{i}]");
                let vendor = Vendor::parse(&o.vendor).ok_or_else(|| {
                    cfg_err(
                        &field,
                        format!("vendor {:?} must be stripe, twilio or resend", o.vendor),
                    )
                })?;
                let micros = match (o.free, &o.price_usd) {
                    (Some(true), None) => None,
                    (None | Some(false), Some(v)) => {
                        Some(usd(&format!("override[{i}].price_usd"), v)?)
                    }
                    _ => {
                        return Err(cfg_err(
                            &field,
                            "set exactly one of free = true or price_usd = \"…\"".into(),
                        ))
                    }
                };
                let ov = vendorgate::cost::PriceOverride::new(vendor, &o.operation, micros)
                    .map_err(|e| cfg_err(&field, e))?;
                c.pricing.overrides.push(ov);
            }
            if let Some(fx) = &p.fx {
                for (code, rate) in fx {
                    c.pricing
                        .fx_micros_per_unit
                        .insert(code.to_ascii_uppercase(), usd(&format!("fx.{code}"), rate)?);
                }
            }
        }
        c.validate()
            .map_err(|e| ServerError::Config(format!("config file {path}: {e}")))?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_named() {
        let err = toml::from_str::<FileConfig>("listne = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listne"), "{err}");
    }

    #[test]
    fn pricing_and_credentials_by_env_name() {
        let f: FileConfig = toml::from_str(
            r#"
            [stripe]
            url = "http://127.0.0.1:1/stripe"
            secret_key_env = "MY_STRIPE"
            [pricing]
            resend_email_usd = "0.001"
            [pricing.fx]
            EUR = "1.2"
            "#,
        )
        .unwrap();
        let c = f
            .to_config("t.toml", &|k| {
                (k == "MY_STRIPE").then(|| "sk_test_1".to_string())
            })
            .unwrap();
        assert!(c.stripe.credentials.is_some());
        assert_eq!(c.pricing.resend_email_micros, 1_000);
        assert_eq!(c.pricing.fx_micros_per_unit["EUR"], 1_200_000);
        let bad: FileConfig = toml::from_str("[pricing]\nresend_email_usd = \"-1\"").unwrap();
        let e = bad.to_config("t.toml", &|_| None).unwrap_err().to_string();
        assert!(
            e.contains("resend_email_usd") && e.contains("t.toml"),
            "{e}"
        );
    }

    #[test]
    fn catalogue_overrides_and_twilio_tables() {
        let f: FileConfig = toml::from_str(
            r#"
            [pricing]
            twilio_call_max_minutes = 60
            [pricing.twilio_call_minute_usd_by_prefix]
            "44" = "0.20"
            [pricing.twilio_number_monthly_usd]
            "44:mobile" = "1.50"
            [[pricing.override]]
            vendor = "stripe"
            operation = "POST /v1/widgets/{id}/buy"
            price_usd = "2.50"
            [[pricing.override]]
            vendor = "resend"
            operation = "get /widgets"
            free = true
            "#,
        )
        .unwrap();
        let c = f.to_config("t.toml", &|_| None).unwrap();
        assert_eq!(c.pricing.twilio_call_max_minutes, 60);
        assert_eq!(c.pricing.twilio_call_minute_by_prefix["44"], 200_000);
        assert_eq!(
            c.pricing.twilio_number_monthly_micros["44:mobile"],
            1_500_000
        );
        // Merged over the defaults.
        assert_eq!(c.pricing.twilio_number_monthly_micros["1:local"], 1_500_000);
        let o = &c.pricing.overrides;
        assert_eq!(
            (o[0].vendor, o[0].micros),
            (Vendor::Stripe, Some(2_500_000))
        );
        assert!(o[0].matches("/v1/widgets/w_1/buy") && !o[0].matches("/v1/widgets/w_1"));
        assert_eq!((o[1].method.as_str(), o[1].micros), ("GET", None));
        for (bad, needle) in [
            (
                "vendor = \"stripe\"\noperation = \"POST /v1/x\"\nfree = true\nprice_usd = \"1\"",
                "exactly one",
            ),
            (
                "vendor = \"stripe\"\noperation = \"POST /v1/x\"",
                "exactly one",
            ),
            (
                "vendor = \"paypal\"\noperation = \"POST /v1/x\"\nfree = true",
                "vendor",
            ),
            (
                "vendor = \"stripe\"\noperation = \"/v1/x\"\nfree = true",
                "METHOD /path",
            ),
        ] {
            let f: FileConfig = toml::from_str(&format!("[[pricing.override]]\n{bad}")).unwrap();
            let e = f.to_config("t.toml", &|_| None).unwrap_err().to_string();
            assert!(
                e.contains("pricing.override[0]") && e.contains(needle),
                "{e}"
            );
        }
        let f: FileConfig =
            toml::from_str("[pricing.twilio_number_monthly_usd]\n\"44:landline\" = \"1\"").unwrap();
        let e = f.to_config("t.toml", &|_| None).unwrap_err().to_string();
        assert!(e.contains("44:landline"), "{e}");
    }
}
