//! Vault keys and their policies. A vault key is `vk_` + 32 random bytes (base64url), shown
//! once; the store keeps only its SHA-256.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::allowlist::Allowlist;
use crate::error::{Error, Result};
use crate::ledger::Caps;
use crate::money::{format_usd, MAX_USD_MICROS};
use crate::vendors::Vendor;

pub const VAULT_KEY_PREFIX: &str = "vk_";

/// SHA-256 of a vault key: the only form the store ever sees.
pub type KeyHash = [u8; 32];

pub fn hash_vault_key(vault_key: &str) -> KeyHash {
    Sha256::digest(vault_key.as_bytes()).into()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

pub(crate) fn new_vault_key() -> String {
    format!(
        "{VAULT_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

pub(crate) fn new_key_id() -> String {
    format!("key_{}", hex::encode(random_bytes::<12>()))
}

/// Whether a string has the shape of a vault key (checked before any lookup).
pub fn looks_like_vault_key(s: &str) -> bool {
    s.len() >= VAULT_KEY_PREFIX.len() + 43
        && s.starts_with(VAULT_KEY_PREFIX)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What a key may do. Money in micro-USD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub vendor: Vendor,
    /// Cap over the key's whole life (the run).
    pub max_usd: Option<i64>,
    /// Cap per UTC calendar day.
    pub daily_usd_cap: Option<i64>,
    pub allowed_endpoints: Vec<String>,
    /// Stripe connected accounts (`Stripe-Account` / `Stripe-Context`) the key may act as.
    #[serde(default)]
    pub stripe_accounts: Vec<String>,
    /// How long a money-moving action is remembered against a repeat (seconds; 0: off;
    /// absent: the gateway's `duplicate_window_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_window_secs: Option<i64>,
    /// Budgets the key joined at issue: a call must fit under each of their caps too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<String>,
    /// Early-warning thresholds, basis points of each cap (`alert_at: [0.5, 0.8]` → 5000, 8000).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_at: Vec<u16>,
}

impl Policy {
    /// A policy with no caps (so it moves no money) and nothing allowed: a starting point
    /// for `Policy { max_usd: …, ..Policy::new(vendor) }`.
    pub fn new(vendor: Vendor) -> Self {
        Policy {
            vendor,
            max_usd: None,
            daily_usd_cap: None,
            allowed_endpoints: vec![],
            stripe_accounts: vec![],
            duplicate_window_secs: None,
            budgets: vec![],
            alert_at: vec![],
        }
    }

    pub fn caps(&self) -> Caps {
        Caps {
            max_usd: self.max_usd,
            daily_usd_cap: self.daily_usd_cap,
        }
    }

    pub fn allowlist(&self) -> Result<Allowlist> {
        Allowlist::parse(&self.allowed_endpoints)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "vendor": self.vendor,
            "max_usd": self.max_usd.map(format_usd),
            "daily_usd_cap": self.daily_usd_cap.map(format_usd),
            "allowed_endpoints": self.allowed_endpoints,
            "stripe_accounts": self.stripe_accounts,
            // null: the gateway's duplicate_window_secs applies.
            "duplicate_window_secs": self.duplicate_window_secs,
            "budgets": self.budgets,
            "alert_at": self.alert_at.iter().map(|bp| crate::alerts::bp_json(*bp)).collect::<Vec<_>>(),
        })
    }
}

/// A request for a new key.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub vendor: Vendor,
    pub max_usd: Option<i64>,
    pub daily_usd_cap: Option<i64>,
    pub allowed_endpoints: Vec<String>,
    /// Time to live in seconds.
    pub expires_in_secs: i64,
    pub run_id: Option<String>,
    pub metadata: Value,
    pub stripe_accounts: Vec<String>,
    /// Seconds; 0 turns the duplicate-action guard off; `None`: the gateway's default.
    pub duplicate_window_secs: Option<i64>,
    /// Budgets (by name) the key joins; each must exist.
    pub budgets: Vec<String>,
    /// Early-warning thresholds, basis points of each cap.
    pub alert_at: Vec<u16>,
}

/// The longest duplicate window a key may have (a day: a guard, not a ledger).
pub const MAX_DUPLICATE_WINDOW_SECS: i64 = 86_400;

impl KeySpec {
    pub fn new(vendor: Vendor) -> Self {
        KeySpec {
            vendor,
            max_usd: None,
            daily_usd_cap: None,
            allowed_endpoints: vec![],
            expires_in_secs: 3600,
            run_id: None,
            metadata: Value::Null,
            stripe_accounts: vec![],
            duplicate_window_secs: None,
            budgets: vec![],
            alert_at: vec![],
        }
    }

    /// Check everything a user can get wrong, naming the field.
    pub fn validate(&self, max_ttl_secs: i64) -> Result<()> {
        for (field, v) in [
            ("max_usd", self.max_usd),
            ("daily_usd_cap", self.daily_usd_cap),
        ] {
            if let Some(v) = v {
                if !(0..=MAX_USD_MICROS).contains(&v) {
                    return Err(Error::invalid(field, "must be between 0 and 1e12 USD"));
                }
            }
        }
        Allowlist::parse(&self.allowed_endpoints)?;
        if self.expires_in_secs <= 0 || self.expires_in_secs > max_ttl_secs {
            return Err(Error::invalid(
                "expires_in",
                format!("must be between 1 second and {max_ttl_secs} seconds"),
            ));
        }
        if let Some(r) = &self.run_id {
            if r.is_empty() || r.len() > 200 || r.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "run_id",
                    "must be 1 to 200 printable characters",
                ));
            }
        }
        if !(self.metadata.is_null() || self.metadata.is_object()) {
            return Err(Error::invalid("metadata", "must be a JSON object"));
        }
        if self.metadata.to_string().len() > 8192 {
            return Err(Error::invalid("metadata", "must be at most 8 KiB of JSON"));
        }
        for a in &self.stripe_accounts {
            if !a.starts_with("acct_") || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(Error::invalid(
                    "stripe_accounts",
                    format!("{a:?} is not a Stripe account id (acct_...)"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(b) = self.budgets.iter().find(|b| !seen.insert(b.as_str())) {
            return Err(Error::invalid("budgets", format!("{b:?} is named twice")));
        }
        if let Some(w) = self.duplicate_window_secs {
            if !(0..=MAX_DUPLICATE_WINDOW_SECS).contains(&w) {
                return Err(Error::invalid(
                    "duplicate_window",
                    format!("must be between 0 (off) and {MAX_DUPLICATE_WINDOW_SECS} seconds"),
                ));
            }
        }
        if !self.stripe_accounts.is_empty() && self.vendor != Vendor::Stripe {
            return Err(Error::invalid(
                "stripe_accounts",
                "only Stripe keys may name connected accounts",
            ));
        }
        Ok(())
    }

    /// Build a spec from the admin API's JSON body (DESIGN.md, `POST /v1/keys`).
    pub fn from_json(v: &Value) -> Result<KeySpec> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid("body", "must be a JSON object"))?;
        const KNOWN: [&str; 11] = [
            "vendor",
            "daily_usd_cap",
            "max_usd",
            "allowed_endpoints",
            "expires_in",
            "run_id",
            "metadata",
            "stripe_accounts",
            "duplicate_window",
            "budgets",
            "alert_at",
        ];
        if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Error::invalid(
                k,
                format!("unknown field; known fields are {}", KNOWN.join(", ")),
            ));
        }
        let vendor = match obj.get("vendor") {
            Some(Value::String(s)) => Vendor::parse(s).ok_or_else(|| {
                Error::invalid(
                    "vendor",
                    format!("{s:?} is not one of stripe, twilio, resend"),
                )
            })?,
            Some(_) => {
                return Err(Error::invalid(
                    "vendor",
                    "must be a string: stripe, twilio or resend",
                ))
            }
            None => {
                return Err(Error::invalid(
                    "vendor",
                    "is required: stripe, twilio or resend",
                ))
            }
        };
        let mut spec = KeySpec::new(vendor);
        spec.max_usd = usd_field(obj.get("max_usd"), "max_usd")?;
        spec.daily_usd_cap = usd_field(obj.get("daily_usd_cap"), "daily_usd_cap")?;
        spec.allowed_endpoints = string_list(obj.get("allowed_endpoints"), "allowed_endpoints")?;
        spec.stripe_accounts = string_list(obj.get("stripe_accounts"), "stripe_accounts")?;
        spec.budgets = string_list(obj.get("budgets"), "budgets")?;
        spec.alert_at = crate::alerts::parse_alert_at(obj.get("alert_at"))?;
        if let Some(e) = obj.get("expires_in") {
            spec.expires_in_secs = parse_ttl(e)?;
        }
        spec.run_id = match obj.get("run_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(Error::invalid("run_id", "must be a string")),
        };
        spec.metadata = obj.get("metadata").cloned().unwrap_or(Value::Null);
        spec.duplicate_window_secs = match obj.get("duplicate_window") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_duration("duplicate_window", v)?),
        };
        Ok(spec)
    }
}

/// A USD amount as JSON: a number or a decimal string.
pub fn usd_field(v: Option<&Value>, field: &str) -> Result<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => crate::money::parse_usd(field, s).map(Some),
        // Numbers are read from their JSON text, never through a float.
        Some(Value::Number(n)) => crate::money::parse_usd(field, &n.to_string()).map(Some),
        Some(_) => Err(Error::invalid(
            field,
            "must be a decimal USD amount (number or string)",
        )),
    }
}

fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::invalid(field, "must be an array of strings"))
            })
            .collect(),
        Some(_) => Err(Error::invalid(field, "must be an array of strings")),
    }
}

/// A TTL: whole seconds as a number, or a string like "90", "30s", "15m", "2h", "7d".
pub fn parse_ttl(v: &Value) -> Result<i64> {
    parse_duration("expires_in", v)
}

/// Whole seconds as a number, or a string like "90", "30s", "15m", "2h", "7d".
pub fn parse_duration(field: &str, v: &Value) -> Result<i64> {
    let err = || {
        Error::invalid(
            field,
            "must be seconds (a whole number) or a duration like \"30s\", \"15m\", \"2h\", \"7d\"",
        )
    };
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(err),
        Value::String(s) => parse_ttl_str(s).ok_or_else(err),
        _ => Err(err()),
    }
}

pub fn parse_ttl_str(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1),
        (i, 'm') => (&s[..i], 60),
        (i, 'h') => (&s[..i], 3600),
        (i, 'd') => (&s[..i], 86400),
        _ => (s, 1),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 9 {
        return None;
    }
    num.parse::<i64>().ok().map(|n| n * mult)
}

/// A stored key. Never holds the vault key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub key_id: String,
    pub policy: Policy,
    pub run_id: Option<String>,
    pub metadata: Value,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

impl KeyRecord {
    /// A key record as a store holds it, created at time 0, never expiring, not revoked, in
    /// no run: for using a store directly (tests, tools); the gateway issues keys itself.
    pub fn new(key_id: impl Into<String>, policy: Policy) -> Self {
        KeyRecord {
            key_id: key_id.into(),
            policy,
            run_id: None,
            metadata: Value::Null,
            created_at_ms: 0,
            expires_at_ms: i64::MAX,
            revoked_at_ms: None,
        }
    }
}

/// What `issue_key` returns: the only time the vault key is shown.
#[derive(Clone)]
pub struct IssuedKey {
    pub vault_key: String,
    pub record: KeyRecord,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("vault_key", &"vk_<redacted>")
            .field("record", &self.record)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_keys_are_long_random_and_hashed() {
        let a = new_vault_key();
        let b = new_vault_key();
        assert_ne!(a, b);
        assert!(a.starts_with("vk_") && a.len() >= 3 + 43, "{a}");
        assert!(looks_like_vault_key(&a));
        assert_ne!(hash_vault_key(&a), hash_vault_key(&b));
        assert!(!format!(
            "{:?}",
            IssuedKey {
                vault_key: a.clone(),
                record: KeyRecord::new("k", Policy::new(Vendor::Stripe))
            }
        )
        .contains(&a[3..]));
    }

    #[test]
    fn spec_from_json_names_bad_fields() {
        let ok = KeySpec::from_json(&json!({"vendor":"stripe","max_usd":"500","daily_usd_cap":100.5,"allowed_endpoints":["POST /v1/charges"],"expires_in":"15m","run_id":"r1"})).unwrap();
        assert_eq!(ok.max_usd, Some(500_000_000));
        assert_eq!(ok.daily_usd_cap, Some(100_500_000));
        assert_eq!(ok.expires_in_secs, 900);
        ok.validate(86400).unwrap();
        for (body, field) in [
            (json!({}), "vendor"),
            (json!({"vendor":"paypal"}), "vendor"),
            (json!({"vendor":"stripe","max_usd":-1}), "max_usd"),
            (json!({"vendor":"stripe","max_usd":"lots"}), "max_usd"),
            (
                json!({"vendor":"stripe","allowed_endpoints":"POST /v1/charges"}),
                "allowed_endpoints",
            ),
            (json!({"vendor":"stripe","expires_in":"soon"}), "expires_in"),
            (json!({"vendor":"stripe","colour":"red"}), "colour"),
            (json!([1]), "body"),
        ] {
            let e = KeySpec::from_json(&body).unwrap_err().to_string();
            assert!(e.contains(field), "{body}: {e}");
        }
        let mut s = KeySpec::new(Vendor::Stripe);
        s.allowed_endpoints = vec!["/v1/../x".into()];
        assert!(s
            .validate(86400)
            .unwrap_err()
            .to_string()
            .contains("allowed_endpoints"));
        s.allowed_endpoints = vec![];
        s.expires_in_secs = 0;
        assert!(s
            .validate(86400)
            .unwrap_err()
            .to_string()
            .contains("expires_in"));
    }
}
