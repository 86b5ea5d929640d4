//! The credentials the simulator accepts, from `sim/credentials.json`: the one copy, which the
//! Python and Node test harnesses and examples read too. Also the environment that points a
//! gateway at a running simulator.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// `sim/credentials.json` as built into the simulator.
pub const CREDENTIALS_JSON: &str = include_str!("../credentials.json");

/// What `sim/credentials.json` holds. Not real secrets.
#[derive(Clone, Debug, Deserialize)]
pub struct SimCredentials {
    /// The Stripe secret key the simulator accepts (Bearer, or Basic with it as the username).
    pub stripe_key: String,
    /// The Twilio account SID the simulator accepts, in Basic auth and in `/Accounts/{sid}/`.
    pub twilio_account_sid: String,
    /// The Twilio auth token that goes with the account SID.
    pub twilio_auth_token: String,
    /// The Resend API key the simulator accepts (Bearer).
    pub resend_key: String,
    /// Each environment variable the gateway reads a credential from → the field above that
    /// holds its value.
    env: BTreeMap<String, String>,
    /// Each environment variable the gateway reads a vendor's base URL from → that vendor's
    /// path under the simulator's URL.
    url_env: BTreeMap<String, String>,
}

static CREDENTIALS: LazyLock<SimCredentials> = LazyLock::new(|| {
    // Built in, and parsed by this crate's tests: a broken file fails them, not a caller.
    serde_json::from_str(CREDENTIALS_JSON)
        .expect("sim/credentials.json is a valid credentials file")
});

/// The simulator's credentials.
pub fn credentials() -> &'static SimCredentials {
    &CREDENTIALS
}

/// The Stripe secret key the simulator accepts.
pub fn stripe_key() -> &'static str {
    &credentials().stripe_key
}

/// The Twilio account SID the simulator accepts.
pub fn twilio_account_sid() -> &'static str {
    &credentials().twilio_account_sid
}

/// The Twilio auth token that goes with [`twilio_account_sid`].
pub fn twilio_auth_token() -> &'static str {
    &credentials().twilio_auth_token
}

/// The Resend API key the simulator accepts.
pub fn resend_key() -> &'static str {
    &credentials().resend_key
}

impl SimCredentials {
    fn field(&self, name: &str) -> Option<&str> {
        match name {
            "stripe_key" => Some(&self.stripe_key),
            "twilio_account_sid" => Some(&self.twilio_account_sid),
            "twilio_auth_token" => Some(&self.twilio_auth_token),
            "resend_key" => Some(&self.resend_key),
            _ => None,
        }
    }

    /// `(variable, value)` for each credential, as the gateway reads it from the environment
    /// (`STRIPE_SECRET_KEY`, …).
    pub fn env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env
            .iter()
            .filter_map(|(var, field)| Some((var.as_str(), self.field(field)?)))
    }

    /// Every environment variable a gateway needs to use a simulator listening on `base_url`
    /// as all three vendors: the credentials and each vendor's base URL
    /// (`VENDORGATE_STRIPE_URL` = `{base_url}/stripe`, …).
    pub fn gateway_env(&self, base_url: &str) -> BTreeMap<String, String> {
        let base = base_url.trim_end_matches('/');
        let urls = self
            .url_env
            .iter()
            .map(|(var, path)| (var.clone(), format!("{base}{path}")));
        self.env()
            .map(|(var, value)| (var.to_string(), value.to_string()))
            .chain(urls)
            .collect()
    }
}

/// [`SimCredentials::gateway_env`] of the simulator's credentials.
pub fn gateway_env(base_url: &str) -> BTreeMap<String, String> {
    credentials().gateway_env(base_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_parses_and_every_variable_names_a_field() {
        let c = credentials();
        for (var, field) in &c.env {
            assert!(c.field(field).is_some(), "{var} names no field: {field:?}");
        }
        let vars: Vec<_> = c.env().map(|(var, _)| var).collect();
        assert_eq!(
            vars,
            [
                "RESEND_API_KEY",
                "STRIPE_SECRET_KEY",
                "TWILIO_ACCOUNT_SID",
                "TWILIO_AUTH_TOKEN"
            ]
        );
        assert!(c.twilio_account_sid.starts_with("AC"));
    }

    #[test]
    fn gateway_env_has_credentials_and_urls() {
        let env = gateway_env("http://127.0.0.1:9/");
        assert_eq!(env["STRIPE_SECRET_KEY"], stripe_key());
        assert_eq!(env["TWILIO_ACCOUNT_SID"], twilio_account_sid());
        assert_eq!(env["TWILIO_AUTH_TOKEN"], twilio_auth_token());
        assert_eq!(env["RESEND_API_KEY"], resend_key());
        assert_eq!(env["VENDORGATE_STRIPE_URL"], "http://127.0.0.1:9/stripe");
        assert_eq!(env["VENDORGATE_TWILIO_URL"], "http://127.0.0.1:9/twilio");
        assert_eq!(env["VENDORGATE_RESEND_URL"], "http://127.0.0.1:9/resend");
        assert_eq!(env.len(), 7);
    }
}
