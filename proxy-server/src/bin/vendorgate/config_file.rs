//! The TOML config file (example: examples/vendorgate.toml): the server's own keys (`listen`,
//! `admin_listen`, `db`, `admin_token_env`, the `[postgres]` table) plus the gateway's
//! [`Settings`], the same keys and
//! units as the environment and the bindings' `config` (the README's settings table). Flags
//! beat the environment, which beats the file, which beats the defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vendorgate::config::Settings;
use vendorgate::Config;

use vendorgate_server::ServerError;

/// The keys only the server has.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerKeys {
    listen: Option<String>,
    admin_listen: Option<String>,
    db: Option<String>,
    admin_token_env: Option<String>,
    postgres: Option<PostgresKeys>,
}

const SERVER_KEYS: [&str; 5] = [
    "listen",
    "admin_listen",
    "db",
    "admin_token_env",
    "postgres",
];

/// `[postgres]`: how the server uses a PostgreSQL `db` (ignored for a SQLite file). Every
/// key is optional; docs/DEPLOYMENT.md explains each.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresKeys {
    /// `"read"` (default: exact, a key read per request) or `"notify"` (cached keys dropped
    /// on LISTEN/NOTIFY).
    pub revocation: Option<String>,
    pub pool_size: Option<usize>,
    pub lanes: Option<usize>,
    pub pool_wait_ms: Option<u64>,
    pub lock_timeout_ms: Option<u64>,
    pub statement_timeout_ms: Option<u64>,
    pub instance_timeout_ms: Option<u64>,
    pub heartbeat_ms: Option<u64>,
    pub allow_async_commit: Option<bool>,
    pub ca_file: Option<PathBuf>,
}

impl PostgresKeys {
    /// The store's options for `url`: the defaults, then these keys.
    #[cfg(feature = "postgres")]
    pub fn options(&self, url: &str) -> Result<vendorgate::PgOptions, String> {
        let mut o = vendorgate::PgOptions::new(url);
        let ms = |key: &str, v: Option<u64>| -> Result<Option<Duration>, String> {
            match v {
                Some(0) => Err(format!("postgres.{key} must be more than 0")),
                v => Ok(v.map(Duration::from_millis)),
            }
        };
        if let Some(r) = &self.revocation {
            o.revocation = r.parse().map_err(|e| format!("postgres.revocation: {e}"))?;
        }
        if let Some(n) = self.pool_size {
            o.pool_size = n.max(2);
        }
        if let Some(n) = self.lanes {
            o.lanes = n.max(1);
        }
        if let Some(d) = ms("pool_wait_ms", self.pool_wait_ms)? {
            o.pool_wait = d;
        }
        if let Some(d) = ms("lock_timeout_ms", self.lock_timeout_ms)? {
            o.lock_timeout = d;
        }
        if let Some(d) = ms("statement_timeout_ms", self.statement_timeout_ms)? {
            o.statement_timeout = d;
        }
        if let Some(d) = ms("instance_timeout_ms", self.instance_timeout_ms)? {
            o.instance_timeout = d;
        }
        if let Some(d) = ms("heartbeat_ms", self.heartbeat_ms)? {
            o.heartbeat_every = d;
        }
        if o.heartbeat_every * 2 > o.instance_timeout {
            return Err(format!(
                "postgres.instance_timeout_ms ({} ms) must be at least twice heartbeat_ms ({} ms), or live instances would be swept",
                o.instance_timeout.as_millis(),
                o.heartbeat_every.as_millis()
            ));
        }
        o.allow_async_commit = self.allow_async_commit.unwrap_or(false);
        o.ca_file = self.ca_file.clone();
        Ok(o)
    }
}

#[derive(Debug, Default)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub db: Option<String>,
    pub postgres: PostgresKeys,
    /// Name of the environment variable holding the admin token.
    pub admin_token_env: Option<String>,
    /// Everything else: the gateway's settings.
    pub settings: Settings,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ServerError::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Self::parse(&text)
            .map_err(|e| ServerError::Config(format!("config file {}: {e}", path.display())))
    }

    /// Parse the file's text; an unknown key is refused by name.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        let mut server = toml::Table::new();
        for k in SERVER_KEYS {
            if let Some(v) = table.remove(k) {
                server.insert(k.to_string(), v);
            }
        }
        let keys =
            ServerKeys::deserialize(toml::Value::Table(server)).map_err(|e| e.to_string())?;
        let settings = Settings::from_deserializer(toml::Value::Table(table))?;
        Ok(FileConfig {
            listen: keys.listen,
            admin_listen: keys.admin_listen,
            db: keys.db,
            postgres: keys.postgres.unwrap_or_default(),
            admin_token_env: keys.admin_token_env,
            settings,
        })
    }

    /// Build the core config: defaults, then this file, then the environment.
    pub fn to_config(
        &self,
        path: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ServerError> {
        Config::from_layers(&[&self.settings, &Settings::from_env(env)], env)
            .map_err(|e| ServerError::Config(format!("config file {path}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vendorgate::Vendor;

    #[test]
    fn unknown_field_is_named() {
        let err = FileConfig::parse("listne = \"x\"").unwrap_err();
        assert!(err.contains("listne"), "{err}");
    }

    #[test]
    fn pricing_and_credentials_by_env_name() {
        let f = FileConfig::parse(
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
        let bad = FileConfig::parse("[pricing]\nresend_email_usd = \"-1\"").unwrap();
        let e = bad.to_config("t.toml", &|_| None).unwrap_err().to_string();
        assert!(
            e.contains("resend_email_usd") && e.contains("t.toml"),
            "{e}"
        );
    }

    #[test]
    fn catalogue_overrides_and_twilio_tables() {
        let f = FileConfig::parse(
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
            let f = FileConfig::parse(&format!("[[pricing.override]]\n{bad}")).unwrap();
            let e = f.to_config("t.toml", &|_| None).unwrap_err().to_string();
            assert!(
                e.contains("pricing.override[0]") && e.contains(needle),
                "{e}"
            );
        }
        let f = FileConfig::parse("[pricing.twilio_number_monthly_usd]\n\"44:landline\" = \"1\"")
            .unwrap();
        let e = f.to_config("t.toml", &|_| None).unwrap_err().to_string();
        assert!(e.contains("44:landline"), "{e}");
    }
}
