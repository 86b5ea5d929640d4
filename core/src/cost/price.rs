//! The price phase: which class the operation has (operator override, then the catalogue),
//! and for a priced one what its cost model estimates. Everything that is not known to be
//! free or priced is refused here, before any money can move.

use super::action;
use super::model::{Estimate, RequestView};
use super::prices::Pricing;
use crate::catalogue::{self, Class};
use crate::error::Error;
use crate::money::format_usd;
use crate::vendors::Vendor;

/// What the price phase decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub estimate: Estimate,
    /// Set when an operator override decided the price; shown in the audit row.
    pub note: Option<String>,
    /// The fingerprint of the action, for a call that may move money (the duplicate guard).
    pub action: Option<[u8; 32]>,
}

/// Price a request as the pipeline does (override, catalogue class, then the model), with a
/// refusal of any kind as `CannotPrice`: for callers that want only the estimate.
pub fn estimate(pricing: &Pricing, vendor: Vendor, req: &RequestView<'_>) -> Estimate {
    match price(pricing, vendor, req) {
        Ok(p) => p.estimate,
        Err(e) => Estimate::CannotPrice(e.to_string()),
    }
}

/// Class and estimate of a request that is already authenticated, canonicalized and allowed.
pub fn price(pricing: &Pricing, vendor: Vendor, req: &RequestView<'_>) -> Result<Priced, Error> {
    let cat = catalogue::of(vendor);
    let op = cat.find(req.method, req.path);
    // A credential is refused whatever the allowlist or an override says: no configuration
    // may hand an agent a key that works without the gateway.
    if let Some(op) = op.filter(|op| op.class == Class::Credential) {
        return Err(Error::Credential {
            operation: op.name(),
            why: op.reason.clone(),
        });
    }
    if let Some(o) = pricing
        .overrides
        .iter()
        .find(|o| o.vendor == vendor && o.method == req.method && o.matches(req.path))
    {
        let (estimate, note) = match o.micros {
            None => (
                Estimate::Free,
                format!(
                    "declared free by operator override {} {}",
                    o.method, o.template
                ),
            ),
            Some(micros) => (
                Estimate::Priced {
                    micros,
                    object_id: None,
                },
                format!(
                    "priced at ${} by operator override {} {}",
                    format_usd(micros),
                    o.method,
                    o.template
                ),
            ),
        };
        let action = (estimate != Estimate::Free).then(|| action::fingerprint(vendor, None, req));
        return Ok(Priced {
            estimate,
            note: Some(note),
            action,
        });
    }
    let Some(op) = op else {
        return Err(Error::CannotPrice(cat.unknown_reason(req.method, req.path)));
    };
    let estimate = match &op.class {
        Class::Free => Estimate::Free,
        Class::Priced(model) => match vendor.model().estimate_with(pricing, model, req) {
            Estimate::CannotPrice(why) => {
                return Err(Error::CannotPrice(format!("{}: {why}", op.name())))
            }
            e => e,
        },
        Class::Refused => {
            return Err(Error::CannotPrice(format!(
                "{}: {}; leave it out of the key's allowed_endpoints, or the operator can give it a fixed price in [[pricing.override]]",
                op.name(),
                op.reason
            )))
        }
        // Returned above already; kept exhaustive so a new class must be placed here.
        Class::Credential => {
            return Err(Error::Credential {
                operation: op.name(),
                why: op.reason.clone(),
            })
        }
    };
    let action = match (&op.class, &estimate) {
        (_, Estimate::Free) => None,
        (Class::Priced(model), _) => Some(action::fingerprint(vendor, Some(model), req)),
        _ => None,
    };
    Ok(Priced {
        estimate,
        note: None,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::PriceOverride;

    fn req<'a>(method: &'a str, path: &'a str, body: &'a str) -> RequestView<'a> {
        RequestView::form_test(method, path, body)
    }

    #[test]
    fn unknown_refused_credential_403_override_applies() {
        let mut p = Pricing::default();
        let unknown = price(&p, Vendor::Stripe, &req("POST", "/v1/widgets", "")).unwrap_err();
        assert_eq!(unknown.reason(), "cannot_price");
        assert!(
            unknown.to_string().contains("not an operation"),
            "{unknown}"
        );
        let refused = price(&p, Vendor::Stripe, &req("POST", "/v1/subscriptions", "")).unwrap_err();
        assert_eq!(refused.reason(), "cannot_price");
        assert!(refused.to_string().contains("POST /v1/subscriptions"));
        let cred = price(&p, Vendor::Resend, &req("POST", "/api-keys", "{}")).unwrap_err();
        assert_eq!((cred.reason(), cred.http_status()), ("credential", 403));

        p.overrides = vec![
            PriceOverride::new(Vendor::Stripe, "POST /v1/widgets/{id}/buy", Some(2_500_000))
                .unwrap(),
            PriceOverride::new(Vendor::Stripe, "post /v1/widgets", None).unwrap(),
            PriceOverride::new(Vendor::Resend, "POST /api-keys", None).unwrap(),
        ];
        let fixed = price(&p, Vendor::Stripe, &req("POST", "/v1/widgets/w_1/buy", "")).unwrap();
        assert_eq!(
            fixed.estimate,
            Estimate::Priced {
                micros: 2_500_000,
                object_id: None
            }
        );
        assert!(fixed.note.unwrap().contains("$2.50"));
        let free = price(&p, Vendor::Stripe, &req("POST", "/v1/widgets", "")).unwrap();
        assert_eq!(free.estimate, Estimate::Free);
        // An override never frees a credential.
        let cred = price(&p, Vendor::Resend, &req("POST", "/api-keys", "{}")).unwrap_err();
        assert_eq!(cred.reason(), "credential");
        assert!(PriceOverride::new(Vendor::Stripe, "/v1/x", None).is_err());
        assert!(PriceOverride::new(Vendor::Stripe, "POST /v1/x", Some(-1)).is_err());
    }
}
