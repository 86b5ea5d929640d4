//! Admit: refuse method overrides, canonicalize the method and path (what is matched is
//! exactly what is forwarded), apply the key's allowlist and Stripe accounts, and find the
//! vendor's real credential.

use super::call::{header, Call};
use crate::allowlist::{canonical_method, canonicalize_path, METHOD_OVERRIDE_HEADERS};
use crate::caches::CachedKey;
use crate::config::Credentials;
use crate::error::{Error, Result};
use crate::gateway::shared::Shared;

pub(super) fn admit<'s>(
    s: &'s Shared,
    key: &CachedKey,
    call: &mut Call<'_>,
) -> Result<&'s Credentials> {
    let req = call.req;
    if let Some(h) = METHOD_OVERRIDE_HEADERS
        .iter()
        .find(|h| req.headers.contains_key(**h))
    {
        return Err(Error::BadRequest(format!(
            "the {h} header is refused: send the real method instead"
        )));
    }
    let method = canonical_method(&req.method)?;
    let path = canonicalize_path(&req.path)?;
    call.audit.method = method.clone();
    call.audit.endpoint = path.clone();
    let has_query = req.query.as_deref().is_some_and(|q| !q.is_empty());
    if has_query && matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        return Err(Error::BadRequest(format!(
            "{method} parameters must be in the body, not the query string"
        )));
    }
    if !key.allowlist.allows(&method, &path) {
        return Err(Error::EndpointNotAllowed { method, path });
    }
    for h in ["stripe-account", "stripe-context"] {
        if let Some(acct) = header(&req.headers, h) {
            if !key.record.policy.stripe_accounts.iter().any(|a| a == acct) {
                return Err(Error::EndpointNotAllowed {
                    method,
                    path: format!("{path} as {h} {acct}"),
                });
            }
        }
    }
    call.method = method;
    call.path = path;
    let vendor = key.record.policy.vendor;
    s.config
        .upstream(vendor)
        .credentials
        .as_ref()
        .ok_or(Error::VendorNotConfigured(vendor))
}
