//! Request canonicalization and endpoint allowlists. A request is reduced to one canonical
//! path before matching; anything that could be read two ways is refused, so what is matched
//! is exactly what is forwarded.

use crate::error::{Error, Result};

/// Methods the gateway forwards.
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

/// Headers that ask a server to treat a request as another method.
pub const METHOD_OVERRIDE_HEADERS: [&str; 4] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
];

/// Characters a canonical path segment may hold (after percent-decoding). Vendor ids, emails
/// and API versions fit; separators, quotes, spaces and wildcards do not.
fn segment_char_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'_' | b'~' | b'@' | b':' | b'+' | b',' | b'=' | b'!'
        )
}

/// Canonicalize a method: upper-case and one of the forwarded methods.
pub fn canonical_method(method: &str) -> Result<String> {
    let m = method.to_ascii_uppercase();
    if METHODS.contains(&m.as_str()) {
        Ok(m)
    } else {
        Err(Error::BadRequest(format!(
            "method {method:?} is not forwarded; use one of {}",
            METHODS.join(", ")
        )))
    }
}

/// Reduce a raw request path (as sent, percent-encoded, without the query) to its canonical
/// form, or refuse it.
pub fn canonicalize_path(raw: &str) -> Result<String> {
    let bad = |why: &str| Err(Error::BadPath(why.to_string()));
    if !raw.starts_with('/') {
        return bad("the path must start with /");
    }
    if !raw.is_ascii() {
        return bad("the path holds non-ASCII characters");
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let c = if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(d) = hex else {
                return bad("the path holds a malformed percent-escape");
            };
            i += 3;
            match d {
                b'/' | b'\\' => return bad("the path holds an encoded / or \\"),
                b'%' => return bad("the path is percent-encoded twice"),
                0 => return bad("the path holds NUL"),
                d if !d.is_ascii() => return bad("the path holds non-ASCII characters"),
                d if !segment_char_ok(d) => {
                    return bad(
                        "the path holds an encoded character that is not allowed in a path segment",
                    )
                }
                d => d,
            }
        } else {
            i += 1;
            match b {
                b'/' => b'/',
                b'\\' => return bad("the path holds a backslash"),
                b';' => return bad("the path holds a matrix parameter (;)"),
                b if segment_char_ok(b) => b,
                _ => {
                    return bad("the path holds a character that is not allowed in a path segment")
                }
            }
        };
        out.push(c as char);
    }
    for seg in out.split('/').skip(1) {
        match seg {
            "" => return bad("the path holds an empty segment (// or a trailing /)"),
            "." | ".." => return bad("the path holds a . or .. segment"),
            _ => {}
        }
    }
    Ok(out)
}

/// One allowed endpoint: an optional method and a path pattern of literal segments, `*` (one
/// segment) and a final `**` (one or more segments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    method: Option<String>,
    segments: Vec<PatSeg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatSeg {
    Lit(String),
    One,
    Rest,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern> {
        let invalid = |why: &str| {
            Error::invalid("allowed_endpoints", format!("{text:?}: {why}; write \"METHOD /path\" or \"/path\", with * for one segment and ** at the end for the rest"))
        };
        let t = text.trim();
        let (method, path) = match t.split_once(char::is_whitespace) {
            Some((m, p)) => {
                let m = m.to_ascii_uppercase();
                if !METHODS.contains(&m.as_str()) {
                    return Err(invalid(&format!("unknown method {m}")));
                }
                (Some(m), p.trim())
            }
            None => (None, t),
        };
        if !path.starts_with('/') {
            return Err(invalid("the path must start with /"));
        }
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let seg = match *p {
                "" => return Err(invalid("empty segment")),
                "." | ".." => return Err(invalid("dot segment")),
                "*" => PatSeg::One,
                "**" if i + 1 == parts.len() => PatSeg::Rest,
                "**" => return Err(invalid("** may only be the last segment")),
                lit if lit.bytes().all(segment_char_ok) => PatSeg::Lit(lit.to_string()),
                _ => return Err(invalid("a segment holds a character that is not allowed (wildcards must be whole segments)")),
            };
            segments.push(seg);
        }
        Ok(Pattern { method, segments })
    }

    /// Match a canonical method and path.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        let mut segs = path.split('/').skip(1);
        for p in &self.segments {
            match p {
                PatSeg::Rest => return segs.next().is_some(),
                PatSeg::One => {
                    if segs.next().is_none() {
                        return false;
                    }
                }
                PatSeg::Lit(l) => {
                    if segs.next() != Some(l.as_str()) {
                        return false;
                    }
                }
            }
        }
        segs.next().is_none()
    }
}

/// A key's allowlist. Empty allows nothing.
#[derive(Debug, Clone, Default)]
pub struct Allowlist(Vec<Pattern>);

impl Allowlist {
    pub fn parse(patterns: &[String]) -> Result<Allowlist> {
        patterns
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>>>()
            .map(Allowlist)
    }

    pub fn allows(&self, method: &str, path: &str) -> bool {
        // HEAD reads what GET reads.
        self.0
            .iter()
            .any(|p| p.matches(method, path) || (method == "HEAD" && p.matches("GET", path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(patterns: &[&str], method: &str, raw: &str) -> bool {
        let list =
            Allowlist::parse(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        match (canonical_method(method), canonicalize_path(raw)) {
            (Ok(m), Ok(p)) => list.allows(&m, &p),
            _ => false,
        }
    }

    #[test]
    fn default_deny_and_method_aware() {
        assert!(!allow(&[], "GET", "/v1/charges"));
        assert!(allow(&["POST /v1/charges"], "POST", "/v1/charges"));
        assert!(allow(&["POST /v1/charges"], "post", "/v1/charges"));
        assert!(!allow(&["POST /v1/charges"], "GET", "/v1/charges"));
        assert!(allow(&["/v1/charges"], "GET", "/v1/charges"));
        assert!(allow(&["GET /v1/charges"], "HEAD", "/v1/charges"));
    }

    #[test]
    fn wildcards() {
        let p = [
            "POST /2010-04-01/Accounts/*/Messages.json",
            "GET /v1/payment_intents/**",
        ];
        assert!(allow(
            &p,
            "POST",
            "/2010-04-01/Accounts/AC123/Messages.json"
        ));
        assert!(!allow(&p, "POST", "/2010-04-01/Accounts/AC123/Calls.json"));
        assert!(!allow(
            &p,
            "POST",
            "/2010-04-01/Accounts/AC1/x/Messages.json"
        ));
        assert!(allow(&p, "GET", "/v1/payment_intents/pi_1"));
        assert!(allow(&p, "GET", "/v1/payment_intents/pi_1/x"));
        assert!(!allow(&p, "GET", "/v1/payment_intents"));
    }

    /// Requests an attacker may send to reach /v1/refunds or /v1/payouts with a key that may
    /// only POST /v1/charges or GET /v1/customers/*.
    #[test]
    fn bypass_corpus_is_refused() {
        let patterns = [
            "POST /v1/charges",
            "GET /v1/customers/*",
            "GET /v1/balance/**",
        ];
        let tricks = [
            ("POST", "/v1/charges/../refunds"),
            ("POST", "/v1/charges/%2e%2e/refunds"),
            ("POST", "/v1/charges/%2E%2E/refunds"),
            ("POST", "/v1/charges/.%2e/refunds"),
            ("POST", "/v1/charges/%252e%252e/refunds"),
            ("POST", "/v1/./charges"),
            ("POST", "/v1/%2e/charges"),
            ("POST", "//v1/charges"),
            ("POST", "/v1//charges"),
            ("POST", "/v1/charges/"),
            ("POST", "/v1/charges%2F..%2Frefunds"),
            ("POST", "/v1/charges%2f..%2frefunds"),
            ("POST", "/v1/charges%5C..%5Crefunds"),
            ("POST", "/v1/charges\\..\\refunds"),
            ("POST", "/v1/charges%00"),
            ("POST", "/v1/charges%00/../refunds"),
            ("POST", "/v1/charges;/../refunds"),
            ("POST", "/v1/charges;jsessionid=1"),
            ("POST", "/v1/ch%61rges"), // decodes to the allowed path: accepted below, not a bypass
            ("POST", "/V1/charges"),
            ("POST", "/v1/Charges"),
            ("POST", "/v1/charges%20"),
            ("POST", "/v1/charges%09"),
            ("POST", "/v1/chargeѕ"),                     // Cyrillic dze
            ("POST", "/v1/charges%C0%AE%C0%AE/refunds"), // overlong UTF-8 dot
            ("POST", "/v1/charges%c0%af..%c0%afrefunds"),
            ("POST", "/v1/charges%"),
            ("POST", "/v1/charges%zz"),
            ("POST", "http://evil/v1/charges"),
            ("POST", "v1/charges"),
            ("GET", "/v1/customers/cus_1/../../refunds"),
            ("GET", "/v1/customers"),
            ("GET", "/v1/customers/cus_1/sources"),
            ("GET", "/v1/customers/*"),
            ("GET", "/v1/customers/%2A"),
            ("GET", "/v1/balance"),
            ("DELETE", "/v1/charges"),
            ("PUT", "/v1/charges"),
            ("TRACE", "/v1/charges"),
            ("POST", "/v1/refunds"),
            ("POST", "/v1/charges#x"),
            ("POST", "/v1/charges?x"),
            ("POST", "/v1/charges/%2e"),
            ("POST", "/v1/charges/..."),
            ("POST", "/v1/charges\u{0}"),
        ];
        let mut bypasses = vec![];
        for (m, p) in tricks {
            let reached = allow(&patterns, m, p);
            let canonical = canonicalize_path(p).ok();
            // The only acceptable "allowed" outcome is a path whose canonical form *is* an
            // allowed endpoint (e.g. an encoded plain letter).
            if reached && canonical.as_deref() != Some("/v1/charges") {
                bypasses.push((m, p));
            }
        }
        assert!(bypasses.is_empty(), "bypasses: {bypasses:?}");
        assert_eq!(canonicalize_path("/v1/ch%61rges").unwrap(), "/v1/charges");
        assert!(
            !allow(&patterns, "POST", "/v1/charges/..."),
            "'...' is a literal segment, not the allowed one"
        );
    }

    #[test]
    fn malformed_patterns_name_the_field() {
        for bad in [
            "v1/charges",
            "FETCH /v1",
            "/v1//x",
            "/v1/**/x",
            "/v1/ch*",
            "/v1/../x",
            "",
        ] {
            let e = Pattern::parse(bad).unwrap_err().to_string();
            assert!(e.contains("allowed_endpoints"), "{bad}: {e}");
        }
    }
}
