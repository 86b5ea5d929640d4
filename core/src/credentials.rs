//! Where each official SDK puts its key, and how the real credential replaces it.

use base64::Engine;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

use crate::config::Credentials;
use crate::keys::VAULT_KEY_PREFIX;

/// Find the vault key in a request: `Authorization: Bearer vk_…` (Stripe, Resend), Basic with
/// the vault key as username (Stripe, curl `-u vk_…:`) or as password (Twilio, with any `AC…`
/// SID as username).
pub fn vault_key_from(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return rest.starts_with(VAULT_KEY_PREFIX).then(|| rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pass) = text.split_once(':').unwrap_or((&text, ""));
        if user.starts_with(VAULT_KEY_PREFIX) {
            return Some(user.to_string());
        }
        if pass.starts_with(VAULT_KEY_PREFIX) {
            return Some(pass.to_string());
        }
    }
    None
}

/// The `Authorization` value carrying the real credential. Marked sensitive so it is never
/// printed by `Debug` of the header map.
pub fn authorization_for(creds: &Credentials) -> HeaderValue {
    let text = match creds {
        Credentials::Bearer(secret) => format!("Bearer {}", secret.expose()),
        Credentials::Twilio {
            account_sid,
            auth_token,
        } => {
            let raw = format!("{account_sid}:{}", auth_token.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        }
    };
    let mut v =
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    v.set_sensitive(true);
    v
}

/// Rewrite `/2010-04-01/Accounts/{agent SID}/…` to the real account SID.
pub fn rewrite_twilio_path(path: &str, creds: &Credentials) -> String {
    let Credentials::Twilio { account_sid, .. } = creds else {
        return path.to_string();
    };
    let mut parts: Vec<&str> = path.split('/').collect();
    // ["", "2010-04-01", "Accounts", sid, ...]
    if parts.len() > 3 && parts[2] == "Accounts" && parts[3].starts_with("AC") {
        parts[3] = account_sid;
    }
    parts.join("/")
}

/// Replace every occurrence of the real secret in a vendor answer. Some vendor resources echo
/// credentials (Twilio's Account resource carries `auth_token`); the agent must never see one.
pub fn redact_secret(body: bytes::Bytes, creds: &Credentials) -> bytes::Bytes {
    let secret = match creds {
        Credentials::Bearer(s) => s.expose(),
        Credentials::Twilio { auth_token, .. } => auth_token.expose(),
    }
    .as_bytes();
    if secret.len() < 8 || !body.windows(secret.len()).any(|w| w == secret) {
        return body;
    }
    const MASK: &[u8] = b"[redacted by vendorgate]";
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(secret) {
            out.extend_from_slice(MASK);
            i += secret.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    bytes::Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        m
    }

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[test]
    fn finds_vault_key_where_sdks_put_it() {
        assert_eq!(
            vault_key_from(&h("Bearer vk_abc")).as_deref(),
            Some("vk_abc")
        );
        assert_eq!(
            vault_key_from(&h(&basic("vk_abc", ""))).as_deref(),
            Some("vk_abc")
        );
        assert_eq!(
            vault_key_from(&h(&basic("AC0000", "vk_abc"))).as_deref(),
            Some("vk_abc")
        );
        assert_eq!(vault_key_from(&h("Bearer sk_test_real")), None);
        assert_eq!(vault_key_from(&HeaderMap::new()), None);
    }

    #[test]
    fn secrets_in_answers_are_redacted() {
        let c = Credentials::Twilio {
            account_sid: "ACreal".into(),
            auth_token: Secret::new("tok_0123456789"),
        };
        let out = redact_secret(
            bytes::Bytes::from_static(br#"{"auth_token":"tok_0123456789","sid":"ACreal"}"#),
            &c,
        );
        assert_eq!(
            &out[..],
            br#"{"auth_token":"[redacted by vendorgate]","sid":"ACreal"}"#
        );
        let clean = bytes::Bytes::from_static(b"{}");
        assert_eq!(redact_secret(clean.clone(), &c), clean);
    }

    #[test]
    fn twilio_sid_is_rewritten() {
        let c = Credentials::Twilio {
            account_sid: "ACreal".into(),
            auth_token: Secret::new("t"),
        };
        assert_eq!(
            rewrite_twilio_path("/2010-04-01/Accounts/ACfake/Messages.json", &c),
            "/2010-04-01/Accounts/ACreal/Messages.json"
        );
        assert_eq!(
            rewrite_twilio_path("/2010-04-01/Accounts.json", &c),
            "/2010-04-01/Accounts.json"
        );
    }
}
