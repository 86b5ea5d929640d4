//! Authenticate: the vault key → the key (from the cache, else the store), then the checks
//! that need only the key: revoked, expired, routed to another vendor, body too large.

use super::call::Call;
use crate::caches::CachedKey;
use crate::error::{AuthFailure, Error, Result};
use crate::gateway::shared::Shared;
use crate::keys::hash_vault_key;

pub(super) async fn authenticate(s: &Shared, call: &mut Call<'_>) -> Result<CachedKey> {
    let req = call.req;
    let vault_key = req
        .vault_key
        .as_deref()
        .ok_or(Error::Unauthorized(AuthFailure::Missing))?;
    let hash = hash_vault_key(vault_key);
    let cached = match s.keys.get_within(&hash, s.store.key_trust()) {
        Some(k) => k,
        None => {
            // Read the generation first: a revocation while the read is in flight then keeps
            // the stale row out of the cache.
            let generation = s.keys.generation();
            let record = s
                .store
                .key_by_hash(hash)
                .await?
                .ok_or(Error::Unauthorized(AuthFailure::UnknownKey))?;
            s.keys.insert(hash, record, generation)?
        }
    };
    let key = &*cached.record;
    let vendor = key.policy.vendor;
    call.audit.key_id = Some(key.key_id.clone());
    call.audit.run_id = key.run_id.clone();
    call.audit.vendor = Some(vendor.as_str().to_string());
    let routed = call.shape;
    call.shape = Some(routed.unwrap_or(vendor));
    call.key = Some((key.key_id.clone(), key.policy.caps()));
    if key.revoked_at_ms.is_some() {
        return Err(Error::Unauthorized(AuthFailure::KeyRevoked));
    }
    if key.expires_at_ms <= s.now_ms() {
        return Err(Error::Unauthorized(AuthFailure::KeyExpired));
    }
    if let Some(routed) = routed.filter(|r| *r != vendor) {
        return Err(Error::EndpointNotAllowed {
            method: req.method.clone(),
            path: format!("/{routed}{} (this key is for {vendor})", req.path),
        });
    }
    let limit = s.config.max_body_bytes;
    if req.body.len() > limit {
        return Err(Error::BodyTooLarge {
            size: req.body.len(),
            limit,
        });
    }
    Ok(cached)
}
