//! The operation catalogue against the vendors' own API descriptions (pinned copies in
//! `tests/data/ops`): every operation they describe has a class, and the catalogue names no
//! operation they do not describe. Also keeps docs/COVERAGE.md generated from the catalogue
//! (`UPDATE_COVERAGE=1 cargo test -p vendorgate --test catalogue` rewrites it).

use std::collections::{BTreeMap, BTreeSet};

use vendorgate::catalogue::{self, shape_of, Class};
use vendorgate::Vendor;

/// `(host, method, path)` of every pinned operation of a vendor.
fn pinned(vendor: Vendor) -> Vec<(String, String, String)> {
    let text = match vendor {
        Vendor::Stripe => include_str!("data/ops/stripe.txt"),
        Vendor::Twilio => include_str!("data/ops/twilio.txt"),
        Vendor::Resend => include_str!("data/ops/resend.txt"),
    };
    let default_host = match vendor {
        Vendor::Stripe => "api.stripe.com",
        Vendor::Twilio => "api.twilio.com",
        Vendor::Resend => "api.resend.com",
    };
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                [m, p] => (default_host.to_string(), m.to_string(), p.to_string()),
                [h, m, p] => (h.to_string(), m.to_string(), p.to_string()),
                _ => panic!("bad pinned line {l:?}"),
            }
        })
        .collect()
}

fn default_host(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Stripe => "api.stripe.com",
        Vendor::Twilio => "api.twilio.com",
        Vendor::Resend => "api.resend.com",
    }
}

#[test]
fn every_described_operation_has_a_class() {
    for vendor in Vendor::ALL {
        let cat = catalogue::of(vendor);
        let listed: BTreeSet<(String, String)> = cat
            .operations
            .iter()
            .filter(|op| op.variant_of.is_none())
            .map(|op| (op.method.clone(), op.shape()))
            .collect();
        let hosts: BTreeSet<&str> = cat.other_hosts.iter().map(|h| h.host.as_str()).collect();
        let mut missing = Vec::new();
        for (host, method, path) in pinned(vendor) {
            let covered = if host == default_host(vendor) || vendor == Vendor::Stripe {
                listed.contains(&(method.clone(), shape_of(&path)))
            } else {
                hosts.contains(host.as_str())
            };
            if !covered {
                missing.push(format!("{host} {method} {path}"));
            }
        }
        assert!(
            missing.is_empty(),
            "{vendor}: {} operations of the API description have no class in core/catalogue/{vendor}.ops:\n{}",
            missing.len(),
            missing.join("\n")
        );
    }
}

#[test]
fn catalogue_names_only_described_operations() {
    for vendor in Vendor::ALL {
        let cat = catalogue::of(vendor);
        let described: BTreeSet<(String, String)> = pinned(vendor)
            .into_iter()
            .map(|(_, m, p)| (m, shape_of(&p)))
            .collect();
        let hosts: BTreeSet<String> = pinned(vendor).into_iter().map(|(h, _, _)| h).collect();
        let extra: Vec<String> = cat
            .operations
            .iter()
            .filter(|op| op.variant_of.is_none())
            .filter(|op| !described.contains(&(op.method.clone(), op.shape())))
            .map(|op| op.name())
            .collect();
        assert!(
            extra.is_empty(),
            "{vendor}: the catalogue names operations the API description does not have:\n{}",
            extra.join("\n")
        );
        for h in &cat.other_hosts {
            assert!(
                hosts.contains(&h.host),
                "{vendor}: @host {} is not in the API description",
                h.host
            );
        }
    }
}

#[test]
fn a_twilio_operation_resolves_to_itself() {
    // The most specific template wins: a described path is never classed by a neighbour's
    // line (e.g. `Messages/{Sid}` taking `Messages/Feedback`).
    for vendor in Vendor::ALL {
        let cat = catalogue::of(vendor);
        for (host, method, path) in pinned(vendor) {
            if host != default_host(vendor) {
                continue;
            }
            // Fill each parameter with a value that cannot collide with a literal.
            let concrete = fill(&path);
            let found = cat
                .find(&method, &concrete)
                .unwrap_or_else(|| panic!("{vendor}: {method} {concrete} not found"));
            assert_eq!(
                found.shape(),
                shape_of(&path),
                "{vendor}: {method} {concrete} resolved to {}",
                found.name()
            );
        }
    }
}

fn fill(template: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("X1z9");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn money_moving_operations_are_never_free() {
    // A spot check of the operations the issue tracker found going through at $0.
    let class = |v: Vendor, m: &str, p: &str| {
        catalogue::of(v)
            .find(m, p)
            .map(|o| o.class.name())
            .unwrap_or("refused (not listed)")
    };
    for (v, m, p) in [
        (Vendor::Stripe, "POST", "/v1/invoices"),
        (Vendor::Stripe, "POST", "/v1/invoiceitems"),
        (
            Vendor::Stripe,
            "POST",
            "/v1/customers/cus_1/balance_transactions",
        ),
        (Vendor::Stripe, "POST", "/v1/credit_notes"),
        (Vendor::Stripe, "POST", "/v1/billing/meter_events"),
        (Vendor::Stripe, "POST", "/v1/topups"),
        (Vendor::Stripe, "POST", "/v1/treasury/outbound_transfers"),
        (Vendor::Stripe, "POST", "/v1/invoices/in_1/pay"),
        (Vendor::Stripe, "DELETE", "/v1/subscriptions/sub_1"),
        (
            Vendor::Twilio,
            "POST",
            "/2010-04-01/Accounts/AC1/Messages.json",
        ),
        (Vendor::Twilio, "POST", "/2010-04-01/Accounts/AC1/Messages"),
        (
            Vendor::Twilio,
            "POST",
            "/2010-04-01/Accounts/AC1/Messages.xml",
        ),
        (
            Vendor::Twilio,
            "POST",
            "/2010-04-01/Accounts/AC1/Calls.json",
        ),
        (
            Vendor::Twilio,
            "POST",
            "/2010-04-01/Accounts/AC1/Conferences/CF1/Participants.json",
        ),
        (
            Vendor::Twilio,
            "POST",
            "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/Local.json",
        ),
        (Vendor::Twilio, "POST", "/v2/Services/VA1/Verifications"),
        (Vendor::Resend, "POST", "/broadcasts/b_1/send"),
        (Vendor::Resend, "POST", "/emails"),
    ] {
        assert_ne!(class(v, m, p), "free", "{v} {m} {p}");
    }
    for (v, m, p) in [
        (Vendor::Twilio, "POST", "/2010-04-01/Accounts/AC1/Keys.json"),
        (Vendor::Twilio, "POST", "/2010-04-01/Accounts.json"),
        (Vendor::Twilio, "GET", "/2010-04-01/Accounts/AC1.json"),
        (Vendor::Resend, "POST", "/api-keys"),
        (Vendor::Stripe, "POST", "/v1/ephemeral_keys"),
    ] {
        assert_eq!(class(v, m, p), "credential", "{v} {m} {p}");
    }
}

/// docs/COVERAGE.md as the catalogue generates it.
fn coverage() -> String {
    let mut out = String::from(
        "# Coverage: every vendor operation and its class\n\n\
         Generated from `core/catalogue/*.ops` by `UPDATE_COVERAGE=1 cargo test -p vendorgate --test catalogue`;\n\
         a test fails when this file and the catalogue disagree. Classes (DESIGN.md, \"Pricing fails closed\"):\n\
         `free` forwards at $0; `priced` reserves the cost model's estimate and settles from the answer;\n\
         `refused` answers 400 `vendorgate_cannot_price`; `credential` answers 403 `vendorgate_credential`.\n\
         An operation in no line is refused. Operators can declare an operation free or give it a fixed price\n\
         in `[[pricing.override]]` (README, Configuration); credentials cannot be overridden.\n\n",
    );
    out.push_str("| vendor | operations | free | priced | refused | credential |\n|---|---:|---:|---:|---:|---:|\n");
    for vendor in Vendor::ALL {
        let cat = catalogue::of(vendor);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let ops: Vec<_> = cat
            .operations
            .iter()
            .filter(|o| o.variant_of.is_none())
            .collect();
        for op in &ops {
            *counts.entry(op.class.name()).or_default() += 1;
        }
        out.push_str(&format!(
            "| {vendor} | {} | {} | {} | {} | {} |\n",
            ops.len(),
            counts.get("free").unwrap_or(&0),
            counts.get("priced").unwrap_or(&0),
            counts.get("refused").unwrap_or(&0),
            counts.get("credential").unwrap_or(&0)
        ));
    }
    out.push_str("\nTwilio: each `.json` operation also stands for its `.xml` and bare forms (same class when free or a credential; refused when priced, because prices are read from JSON answers). Twilio products on other hosts are refused as a whole (listed at the end of its section).\n");
    for vendor in Vendor::ALL {
        let cat = catalogue::of(vendor);
        out.push_str(&format!(
            "\n## {vendor}\n\n| operation | class | why |\n|---|---|---|\n"
        ));
        let mut ops: Vec<_> = cat
            .operations
            .iter()
            .filter(|o| o.variant_of.is_none())
            .collect();
        ops.sort_by(|a, b| (&a.template, &a.method).cmp(&(&b.template, &b.method)));
        for op in ops {
            let class = match &op.class {
                Class::Priced(m) => format!("priced (`{m}`)"),
                c => c.name().to_string(),
            };
            out.push_str(&format!(
                "| `{} {}` | {class} | {} |\n",
                op.method,
                op.template,
                op.reason.replace('|', "\\|")
            ));
        }
        for h in &cat.other_hosts {
            out.push_str(&format!(
                "| every operation on `{}` | {} | {} |\n",
                h.host,
                h.class.name(),
                h.reason.replace('|', "\\|")
            ));
        }
    }
    out
}

#[test]
fn coverage_doc_is_generated_from_the_catalogue() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/COVERAGE.md");
    let want = coverage();
    if std::env::var_os("UPDATE_COVERAGE").is_some() {
        std::fs::write(path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/COVERAGE.md is out of date with core/catalogue/*.ops; run UPDATE_COVERAGE=1 cargo test -p vendorgate --test catalogue"
    );
}
