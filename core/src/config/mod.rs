//! Everything the gateway is told: upstream addresses, credentials, prices, FX and limits.
//! One type with documented defaults; the proxy server fills it from TOML and the
//! environment, the bindings from the environment and keyword arguments.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::vendors::Vendor;

pub use crate::cost::Pricing;
pub use settings::{Settings, SETTINGS};

pub mod settings;

/// A vendor credential. `Debug` never prints the secret.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The real credentials for one vendor.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// Stripe secret key or Resend API key, sent as `Authorization: Bearer`.
    Bearer(Secret),
    /// Twilio account SID and auth token, sent as HTTP Basic; the SID also replaces the
    /// agent's SID in `/Accounts/{sid}/` paths.
    Twilio {
        account_sid: String,
        auth_token: Secret,
    },
}

/// Where and how to reach one vendor.
#[derive(Clone, Debug)]
pub struct VendorUpstream {
    /// Base URL, e.g. `https://api.stripe.com`. Only this host is ever contacted.
    pub base_url: url::Url,
    /// `None`: the vendor is unconfigured and its routes answer 503.
    pub credentials: Option<Credentials>,
}

/// The whole gateway configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub stripe: VendorUpstream,
    pub twilio: VendorUpstream,
    pub resend: VendorUpstream,
    pub pricing: Pricing,
    /// Largest request body forwarded (default 1 MiB).
    pub max_body_bytes: usize,
    /// Largest response body read back from a vendor (default 16 MiB).
    pub max_response_bytes: usize,
    pub connect_timeout: Duration,
    /// Time allowed for the vendor's whole answer after the request was sent.
    pub request_timeout: Duration,
    /// Longest TTL a key may be issued with.
    pub max_key_ttl: Duration,
    /// Most calls in flight to one vendor at once (default 64); more wait for a slot, up to
    /// `request_timeout` (then 502, nothing sent). Bounds upstream connections and the
    /// memory behind them.
    pub max_upstream_requests: usize,
    /// How long a store operation waits for another process's lock before it fails (503).
    pub store_busy_timeout: Duration,
    /// How long a money-moving action is remembered against a repeat, for keys that do not
    /// set their own `duplicate_window` (default 10 minutes; zero turns the guard off).
    pub duplicate_window: Duration,
    /// Waits between a webhook delivery's attempts; its length + 1 is the number of attempts.
    pub webhook_retry: Vec<Duration>,
    /// Time a webhook receiver has to answer.
    pub webhook_timeout: Duration,
}

pub const DEFAULT_STRIPE_URL: &str = "https://api.stripe.com";
pub const DEFAULT_TWILIO_URL: &str = "https://api.twilio.com";
pub const DEFAULT_RESEND_URL: &str = "https://api.resend.com";

impl Default for Config {
    fn default() -> Self {
        let up = |u: &str| VendorUpstream {
            base_url: url::Url::parse(u).expect("default vendor URL is valid"),
            credentials: None,
        };
        Config {
            stripe: up(DEFAULT_STRIPE_URL),
            twilio: up(DEFAULT_TWILIO_URL),
            resend: up(DEFAULT_RESEND_URL),
            pricing: Pricing::default(),
            max_body_bytes: 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_key_ttl: Duration::from_secs(30 * 24 * 3600),
            max_upstream_requests: 64,
            store_busy_timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(600),
            webhook_retry: [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
                .map(Duration::from_secs)
                .to_vec(),
            webhook_timeout: Duration::from_secs(15),
        }
    }
}

impl Config {
    /// Defaults plus whatever the environment sets (see DESIGN.md, Environment). Variables
    /// that are set but empty count as unset.
    pub fn from_env() -> Result<Self> {
        let env = |k: &str| std::env::var(k).ok();
        Config::from_layers(&[&Settings::from_env(&env)], &env)
    }

    pub fn upstream(&self, v: Vendor) -> &VendorUpstream {
        match v {
            Vendor::Stripe => &self.stripe,
            Vendor::Twilio => &self.twilio,
            Vendor::Resend => &self.resend,
        }
    }

    pub fn upstream_mut(&mut self, v: Vendor) -> &mut VendorUpstream {
        match v {
            Vendor::Stripe => &mut self.stripe,
            Vendor::Twilio => &mut self.twilio,
            Vendor::Resend => &mut self.resend,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.pricing.validate()?;
        if self.max_body_bytes == 0 {
            return Err(Error::Config("max_body_bytes must be positive".into()));
        }
        if self.max_upstream_requests == 0 {
            return Err(Error::Config(
                "max_upstream_requests must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Build Twilio credentials, checking the SID's shape so a mix-up fails at start, not later.
pub fn twilio_credentials(sid: &str, token: &str) -> Result<Credentials> {
    if !(sid.starts_with("AC") && sid.len() >= 4 && sid.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(Error::Config(
            "TWILIO_ACCOUNT_SID must be an account SID starting with AC".into(),
        ));
    }
    Ok(Credentials::Twilio {
        account_sid: sid.to_string(),
        auth_token: Secret::new(token),
    })
}

/// Parse an upstream base URL: http or https, a host, no credentials, no query.
pub fn parse_upstream_url(field: &str, text: &str) -> Result<url::Url> {
    let u = url::Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("{field}: {text:?} is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(Error::Config(format!(
            "{field}: {text:?} must be an http:// or https:// URL with a host"
        )));
    }
    if !u.username().is_empty() || u.password().is_some() || u.query().is_some() {
        return Err(Error::Config(format!(
            "{field}: the URL must not carry credentials or a query"
        )));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_configures_vendors_and_rejects_half_twilio() {
        let env = |k: &str| match k {
            "STRIPE_SECRET_KEY" => Some("sk_test_x".into()),
            "VENDORGATE_STRIPE_URL" => Some("http://127.0.0.1:9".into()),
            _ => None,
        };
        let c = Config::from_layers(&[&Settings::from_env(&env)], &env).unwrap();
        assert!(c.stripe.credentials.is_some());
        assert!(c.twilio.credentials.is_none());
        assert_eq!(c.stripe.base_url.as_str(), "http://127.0.0.1:9/");
        let half = |k: &str| (k == "TWILIO_ACCOUNT_SID").then(|| "AC123".to_string());
        let err = Config::from_layers(&[&Settings::from_env(&half)], &half).unwrap_err();
        assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credentials::Bearer(Secret::new("sk_test_verysecret"));
        assert!(!format!("{c:?}").contains("verysecret"));
    }
}
