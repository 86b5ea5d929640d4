//! The operation catalogue: every operation of each vendor's public API with one class —
//! `free`, `priced` (by which cost model), `refused` or `credential` (DESIGN.md, "Pricing
//! fails closed"). The data lives in `core/catalogue/<vendor>.ops`, one line per operation,
//! reviewed like code; an operation that is not there is refused.
//!
//! Line format (`#` starts a comment):
//!
//! ```text
//! METHOD /path/{param}/literal   CLASS [MODEL]   | why, shown to the operator
//! @host other.host.example       refused         | why every operation of that host is refused
//! ```
//!
//! Twilio's 2010 API answers in several formats chosen by the path's extension. Each `.json`
//! operation also stands for its `.xml` and bare forms: the same class when it is free or a
//! credential, refused when it is priced (the gateway reads prices from JSON answers only).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::vendors::Vendor;

/// What the gateway does with an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Moves no money now or later: forwarded, audited at $0.
    Free,
    /// Estimated from the request (or a remembered object) by the named cost model.
    Priced(String),
    /// Can move money but cannot be priced before it is sent: 400 `cannot_price`.
    Refused,
    /// Its answer holds a credential that works without the gateway: 403 `credential`.
    Credential,
}

impl Class {
    pub fn name(&self) -> &'static str {
        match self {
            Class::Free => "free",
            Class::Priced(_) => "priced",
            Class::Refused => "refused",
            Class::Credential => "credential",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// `{name}` with optional literal text around it, e.g. `{Sid}.json`.
    Param {
        prefix: String,
        suffix: String,
    },
}

impl Seg {
    fn parse(s: &str) -> Result<Seg, String> {
        match (s.find('{'), s.find('}')) {
            (None, None) => Ok(Seg::Lit(s.to_string())),
            (Some(a), Some(b)) if a < b && s[b + 1..].find(['{', '}']).is_none() => {
                Ok(Seg::Param {
                    prefix: s[..a].to_string(),
                    suffix: s[b + 1..].to_string(),
                })
            }
            _ => Err(format!("segment {s:?} is not a literal or one {{param}}")),
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Seg::Lit(l) => l == s,
            Seg::Param { prefix, suffix } => {
                s.len() > prefix.len() + suffix.len()
                    && s.starts_with(prefix.as_str())
                    && s.ends_with(suffix.as_str())
            }
        }
    }

    /// Literal segments win over parameters: `/v1/customers/search` beats `/v1/customers/{id}`.
    fn specificity(&self) -> u8 {
        match self {
            Seg::Lit(_) => 2,
            Seg::Param { prefix, suffix } if !prefix.is_empty() || !suffix.is_empty() => 1,
            Seg::Param { .. } => 0,
        }
    }
}

/// A parsed path template, matched segment by segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segs: Vec<Seg>,
}

impl Template {
    pub fn parse(template: &str) -> Result<Template, String> {
        let rest = template
            .strip_prefix('/')
            .ok_or_else(|| format!("path {template} must start with /"))?;
        Ok(Template {
            segs: rest.split('/').map(Seg::parse).collect::<Result<_, _>>()?,
        })
    }

    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let segs: Vec<&str> = rest.split('/').collect();
        self.matches_segments(&segs)
    }

    /// Match a path already split into its segments.
    fn matches_segments(&self, segs: &[&str]) -> bool {
        segs.len() == self.segs.len() && self.segs.iter().zip(segs).all(|(p, s)| p.matches(s))
    }

    /// Per-segment specificity, compared lexicographically: the more literal template wins.
    fn specificity(&self) -> Vec<u8> {
        self.segs.iter().map(Seg::specificity).collect()
    }
}

/// One operation of the catalogue.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: String,
    /// The path template as written, e.g. `/v1/charges/{charge}/capture`.
    pub template: String,
    pub class: Class,
    /// Why the operation has its class; refusals show it to the agent and the operator.
    pub reason: String,
    /// Set on a format variant made from a `.json` operation (its template).
    pub variant_of: Option<String>,
    parsed: Template,
}

impl Operation {
    /// `METHOD template`, the operation's name in refusals, the audit and COVERAGE.md.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }

    /// The template with its parameter names dropped (`/v1/charges/{}`), for comparing with
    /// API descriptions that name parameters differently.
    pub fn shape(&self) -> String {
        shape_of(&self.template)
    }

    pub fn model(&self) -> Option<&str> {
        match &self.class {
            Class::Priced(m) => Some(m),
            _ => None,
        }
    }
}

/// `/a/{x}/b{y}.json` → `/a/{}/b{}.json`.
pub fn shape_of(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// A rule for every operation served by another host of the vendor (Twilio Verify on
/// `verify.twilio.com`, …), which this gateway does not route.
#[derive(Debug, Clone)]
pub struct HostRule {
    pub host: String,
    pub class: Class,
    pub reason: String,
}

/// One vendor's catalogue.
#[derive(Debug)]
pub struct Catalogue {
    pub vendor: Vendor,
    pub operations: Vec<Operation>,
    pub other_hosts: Vec<HostRule>,
    /// (method's place in `METHODS`, segment count) → operation indexes, most specific first.
    index: HashMap<(usize, usize), Vec<usize>>,
}

const METHODS: [&str; 5] = ["GET", "POST", "DELETE", "PUT", "PATCH"];

impl Catalogue {
    /// Parse a catalogue file. `models`: the cost models this build has; a priced line must
    /// name one of them.
    pub fn parse(vendor: Vendor, text: &str, models: &[&str]) -> Result<Catalogue, String> {
        let mut operations = Vec::new();
        let mut other_hosts = Vec::new();
        let mut seen = HashMap::new();
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let err = |m: String| format!("{vendor} catalogue line {line_no}: {m}");
            let line = raw.split_once('#').map_or(raw, |(l, _)| l).trim();
            if line.is_empty() {
                continue;
            }
            let (head, reason) = line
                .split_once('|')
                .ok_or_else(|| err("missing `| reason`".into()))?;
            let reason = reason.trim().to_string();
            if reason.is_empty() {
                return Err(err("the reason is empty".into()));
            }
            let words: Vec<&str> = head.split_whitespace().collect();
            let class_of = |words: &[&str]| -> Result<Class, String> {
                match words {
                    ["free"] => Ok(Class::Free),
                    ["refused"] => Ok(Class::Refused),
                    ["credential"] => Ok(Class::Credential),
                    ["priced", model] if models.contains(model) => {
                        Ok(Class::Priced(model.to_string()))
                    }
                    ["priced", model] => Err(err(format!("no cost model named {model:?}"))),
                    _ => Err(err(format!("unknown class {:?}", words.join(" ")))),
                }
            };
            if words.first() == Some(&"@host") {
                let host = words
                    .get(1)
                    .ok_or_else(|| err("@host needs a host name".into()))?;
                other_hosts.push(HostRule {
                    host: host.to_string(),
                    class: class_of(&words[2..])?,
                    reason,
                });
                continue;
            }
            let [method, template, class @ ..] = words.as_slice() else {
                return Err(err("expected METHOD /path CLASS".into()));
            };
            if !METHODS.contains(method) {
                return Err(err(format!("unknown method {method}")));
            }
            let parsed = Template::parse(template).map_err(err)?;
            let class = class_of(class)?;
            let key = format!("{method} {}", shape_of(template));
            if let Some(prev) = seen.insert(key.clone(), line_no) {
                return Err(err(format!("{key} is already on line {prev}")));
            }
            operations.push(Operation {
                method: method.to_string(),
                template: template.to_string(),
                class,
                reason,
                variant_of: None,
                parsed,
            });
        }
        if vendor == Vendor::Twilio {
            let variants: Vec<Operation> = operations
                .iter()
                .filter(|op| op.template.ends_with(".json"))
                .flat_map(|op| {
                    let stem = &op.template[..op.template.len() - ".json".len()];
                    [format!("{stem}.xml"), stem.to_string()]
                        .into_iter()
                        .map(move |template| format_variant(op, template))
                })
                .collect::<Result<_, _>>()?;
            for v in variants {
                let key = format!("{} {}", v.method, v.shape());
                if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(key) {
                    slot.insert(0);
                    operations.push(v);
                }
            }
        }
        let mut index: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
        for (i, op) in operations.iter().enumerate() {
            let method = METHODS.iter().position(|m| *m == op.method).unwrap_or(0);
            index
                .entry((method, op.parsed.segs.len()))
                .or_default()
                .push(i);
        }
        for list in index.values_mut() {
            list.sort_by_cached_key(|i| std::cmp::Reverse(operations[*i].parsed.specificity()));
        }
        Ok(Catalogue {
            vendor,
            operations,
            other_hosts,
            index,
        })
    }

    /// The operation a canonical request path is, if the catalogue has it.
    pub fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let method = METHODS.iter().position(|m| *m == method)?;
        let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        self.index
            .get(&(method, segs.len()))?
            .iter()
            .map(|i| &self.operations[*i])
            .find(|op| op.parsed.matches_segments(&segs))
    }

    /// Why a request that is in no catalogue line is refused.
    pub fn unknown_reason(&self, method: &str, path: &str) -> String {
        let mut why = format!(
            "{method} {path} is not an operation in the gateway's {} catalogue (docs/COVERAGE.md), so its cost is unknown",
            self.vendor
        );
        if !self.other_hosts.is_empty() {
            // The products agents reach for most, named first.
            const FIRST: [&str; 4] = ["verify.", "lookups.", "messaging.", "numbers."];
            let mut hosts: Vec<&str> = self.other_hosts.iter().map(|h| h.host.as_str()).collect();
            hosts.sort_by_key(|h| {
                FIRST
                    .iter()
                    .position(|p| h.starts_with(p))
                    .unwrap_or(FIRST.len())
            });
            let shown = hosts.len().min(4);
            why.push_str(&format!(
                "; {} products served by other hosts ({}{}) are not routed by this gateway",
                self.vendor,
                hosts[..shown].join(", "),
                if hosts.len() > shown {
                    format!(" and {} more, see docs/COVERAGE.md", hosts.len() - shown)
                } else {
                    String::new()
                }
            ));
        }
        why.push_str("; if the operation is newer than the catalogue, the operator can declare it free or give it a fixed price in [[pricing.override]]");
        why
    }
}

fn format_variant(op: &Operation, template: String) -> Result<Operation, String> {
    let (class, reason) = match &op.class {
        Class::Priced(_) => (
            Class::Refused,
            format!(
                "the gateway reads Twilio's price from JSON answers only; call {} instead",
                op.template
            ),
        ),
        c => (c.clone(), op.reason.clone()),
    };
    Ok(Operation {
        method: op.method.clone(),
        parsed: Template::parse(&template)?,
        template,
        class,
        reason,
        variant_of: Some(op.template.clone()),
    })
}

/// The catalogue files compiled into this build.
pub fn source(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Stripe => include_str!("../catalogue/stripe.ops"),
        Vendor::Twilio => include_str!("../catalogue/twilio.ops"),
        Vendor::Resend => include_str!("../catalogue/resend.ops"),
    }
}

/// The built-in catalogue of a vendor. The files are part of the build and a test parses
/// them, so a parse failure here is a build defect, never a user's input.
pub fn of(vendor: Vendor) -> &'static Catalogue {
    static CATALOGUES: OnceLock<[Catalogue; 3]> = OnceLock::new();
    let all = CATALOGUES.get_or_init(|| {
        Vendor::ALL.map(|v| {
            Catalogue::parse(v, source(v), v.model().models())
                .unwrap_or_else(|e| panic!("built-in catalogue is invalid: {e}"))
        })
    });
    &all[Vendor::ALL.iter().position(|v| *v == vendor).unwrap_or(0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODELS: &[&str] = &["charge"];

    #[test]
    fn literal_beats_param_and_unknown_is_none() {
        let c = Catalogue::parse(
            Vendor::Stripe,
            "GET /v1/customers/{customer} free | a read\nGET /v1/customers/search free | a search\nPOST /v1/charges priced charge | the amount",
            MODELS,
        )
        .unwrap();
        assert_eq!(
            c.find("GET", "/v1/customers/search").unwrap().template,
            "/v1/customers/search"
        );
        assert_eq!(
            c.find("GET", "/v1/customers/cus_1").unwrap().template,
            "/v1/customers/{customer}"
        );
        assert!(c.find("POST", "/v1/customers/cus_1").is_none());
        assert!(c.find("GET", "/v1/customers").is_none());
        assert_eq!(
            c.find("POST", "/v1/charges").unwrap().class,
            Class::Priced("charge".into())
        );
    }

    #[test]
    fn twilio_format_variants() {
        let c = Catalogue::parse(
            Vendor::Twilio,
            "POST /2010-04-01/Accounts/{AccountSid}/Messages.json priced charge | segments\nGET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json free | a read",
            MODELS,
        )
        .unwrap();
        let class = |m: &str, p: &str| c.find(m, p).map(|o| o.class.clone());
        let msgs = "/2010-04-01/Accounts/AC1/Messages";
        assert_eq!(
            class("POST", &format!("{msgs}.json")),
            Some(Class::Priced("charge".into()))
        );
        assert_eq!(class("POST", &format!("{msgs}.xml")), Some(Class::Refused));
        assert_eq!(class("POST", msgs), Some(Class::Refused));
        assert_eq!(class("POST", &format!("{msgs}.csv")), None);
        assert_eq!(class("GET", &format!("{msgs}/SM1.xml")), Some(Class::Free));
        assert_eq!(class("GET", &format!("{msgs}/SM1")), Some(Class::Free));
        // `{Sid}` alone must not swallow the `.json` form's own template.
        assert_eq!(
            c.find("GET", &format!("{msgs}/SM1.json"))
                .unwrap()
                .variant_of,
            None
        );
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, needle) in [
            ("GET /v1/x free", "reason"),
            ("GET /v1/x cheap | r", "unknown class"),
            ("GET /v1/x priced nope | r", "no cost model"),
            (
                "GET /v1/x free | r\nGET /v1/x free | r",
                "already on line 1",
            ),
            ("FETCH /v1/x free | r", "unknown method"),
            ("GET /v1/{a}{b} free | r", "one {param}"),
        ] {
            let e = Catalogue::parse(Vendor::Stripe, text, MODELS).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn built_in_catalogues_parse() {
        for v in Vendor::ALL {
            assert!(!of(v).operations.is_empty());
        }
    }
}
