//! Authenticated keys kept in memory, with their allowlists already parsed.
//!
//! Reading the key row from SQLite (a read transaction: file locks, WAL index) and parsing
//! its allowlist cost about a tenth of a pass-through call. A key's policy never changes
//! after issue; only its revocation does, so:
//! - a revocation through this gateway drops the entry before `revoke` returns (the next
//!   request reads the store and gets 401), and a generation counter stops a lookup that
//!   started before the revocation from putting the stale row back;
//! - a revocation by another process sharing the database is seen once the entry is older
//!   than [`TTL`]; money calls never wait for that, because the reservation transaction
//!   re-reads the key's revocation and expiry itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::allowlist::Allowlist;
use crate::error::Result;
use crate::keys::{KeyHash, KeyRecord};

/// How long a key row read from the store is trusted for free calls.
pub const TTL: Duration = Duration::from_millis(200);

/// More keys than this and the cache starts over (keys are per run; most go idle).
const MAX_ENTRIES: usize = 50_000;

/// A key as the pipeline uses it.
#[derive(Clone)]
pub struct CachedKey {
    pub record: Arc<KeyRecord>,
    pub allowlist: Arc<Allowlist>,
}

struct Entry {
    key: CachedKey,
    loaded: Instant,
}

#[derive(Default)]
pub struct KeyCache {
    map: RwLock<HashMap<KeyHash, Entry>>,
    generation: AtomicU64,
}

impl KeyCache {
    /// The key, if it was read from the store less than [`TTL`] ago.
    pub fn get(&self, hash: &KeyHash) -> Option<CachedKey> {
        self.get_within(hash, TTL)
    }

    /// The key, if it was read from the store less than `trust` ago (zero: never; the store
    /// says how long its rows may be trusted, see `Store::key_trust`).
    pub fn get_within(&self, hash: &KeyHash, trust: Duration) -> Option<CachedKey> {
        let map = self.map.read();
        let e = map.get(hash)?;
        (e.loaded.elapsed() < trust).then(|| e.key.clone())
    }

    /// Call before reading a key from the store; pass the value to [`KeyCache::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keep a row read from the store, unless a revocation happened since `generation`.
    pub fn insert(&self, hash: KeyHash, record: KeyRecord, generation: u64) -> Result<CachedKey> {
        let key = CachedKey {
            allowlist: Arc::new(record.policy.allowlist()?),
            record: Arc::new(record),
        };
        let mut map = self.map.write();
        if self.generation.load(Ordering::Acquire) == generation {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(
                hash,
                Entry {
                    key: key.clone(),
                    loaded: Instant::now(),
                },
            );
        }
        Ok(key)
    }

    /// Drop a key (after its revocation has committed).
    pub fn forget(&self, key_id: &str) {
        let mut map = self.map.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.retain(|_, e| e.key.record.key_id != key_id);
    }

    /// Drop every key: another instance revoked one, or the store can no longer say.
    pub fn forget_all(&self) {
        let mut map = self.map.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }
}

/// The last `(total, today)` counted for a key, for the `Vendorgate-Remaining-Usd` header
/// of calls that moved no money (a read transaction per free call cost ~15 % of it). It is
/// informational only: caps are always checked inside the reservation transaction.
#[derive(Default)]
pub struct TotalsCache {
    /// key id → (UTC day, (total, today), when read)
    map: RwLock<HashMap<String, SeenTotals>>,
}

type SeenTotals = (String, (i64, i64), Instant);

impl TotalsCache {
    /// Totals for `day` read or written less than [`TTL`] ago.
    pub fn get(&self, key_id: &str, day: &str) -> Option<(i64, i64)> {
        let map = self.map.read();
        let (d, totals, at) = map.get(key_id)?;
        (d == day && at.elapsed() < TTL).then_some(*totals)
    }

    pub fn put(&self, key_id: &str, day: &str, totals: (i64, i64)) {
        let mut map = self.map.write();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(
            key_id.to_string(),
            (day.to_string(), totals, Instant::now()),
        );
    }
}

/// Keys refused for a cap within the last [`CAPPED_FOR`]: their next money call is likely
/// refused too, so it is worth checking on a read before queueing for the write lock.
#[derive(Default)]
pub struct RecentlyCapped {
    map: RwLock<HashMap<String, Instant>>,
}

/// How long a cap refusal marks a key.
pub const CAPPED_FOR: Duration = Duration::from_secs(1);

impl RecentlyCapped {
    pub fn recent(&self, key_id: &str) -> bool {
        self.map
            .read()
            .get(key_id)
            .is_some_and(|at| at.elapsed() < CAPPED_FOR)
    }

    pub fn mark(&self, key_id: &str) {
        let mut map = self.map.write();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key_id.to_string(), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Policy;
    use crate::vendors::Vendor;

    fn record(id: &str) -> KeyRecord {
        let policy = Policy {
            allowed_endpoints: vec!["GET /v1/customers/*".into()],
            ..Policy::new(Vendor::Stripe)
        };
        KeyRecord::new(id, policy)
    }

    #[test]
    fn a_revoked_key_is_gone_at_once() {
        let cache = KeyCache::default();
        let g = cache.generation();
        cache.insert([1; 32], record("key_a"), g).unwrap();
        cache.insert([2; 32], record("key_b"), g).unwrap();
        assert!(cache.get(&[1; 32]).is_some());
        cache.forget("key_a");
        assert!(cache.get(&[1; 32]).is_none(), "revoked key still cached");
        assert!(cache.get(&[2; 32]).is_some(), "another key was dropped too");
    }

    /// A lookup that read the row before a revocation must not cache it afterwards.
    #[test]
    fn a_lookup_racing_a_revocation_does_not_restore_the_key() {
        let cache = KeyCache::default();
        let before = cache.generation();
        cache.forget("key_a");
        let key = cache.insert([1; 32], record("key_a"), before).unwrap();
        assert_eq!(key.record.key_id, "key_a", "the caller still gets its row");
        assert!(cache.get(&[1; 32]).is_none(), "stale row was cached");
    }

    #[test]
    fn a_cap_refusal_marks_only_its_key() {
        let capped = RecentlyCapped::default();
        assert!(!capped.recent("key_a"));
        capped.mark("key_a");
        assert!(capped.recent("key_a"));
        assert!(!capped.recent("key_b"));
    }

    #[test]
    fn entries_expire() {
        let cache = KeyCache::default();
        cache
            .insert([1; 32], record("key_a"), cache.generation())
            .unwrap();
        std::thread::sleep(TTL + Duration::from_millis(20));
        assert!(cache.get(&[1; 32]).is_none());
    }
}

/// Dedupe keys of events this process has stored. An event whose key is here is not sent to
/// the store again — the store would drop it anyway; this saves a runaway agent's every
/// refused call a write ("cap reached" fires once per window). Cleared when full: forgetting
/// costs one write that the store then ignores, never a second event.
#[derive(Default)]
pub struct StoredEvents {
    keys: parking_lot::Mutex<std::collections::HashSet<String>>,
}

impl StoredEvents {
    const MAX: usize = 100_000;

    pub fn contains(&self, dedupe: &str) -> bool {
        self.keys.lock().contains(dedupe)
    }

    pub fn add<'a>(&self, dedupe: impl IntoIterator<Item = &'a str>) {
        let mut keys = self.keys.lock();
        for k in dedupe {
            if keys.len() >= Self::MAX {
                keys.clear();
            }
            keys.insert(k.to_string());
        }
    }
}
