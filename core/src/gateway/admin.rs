//! Key administration: issue, find, revoke, list, status, the audit log, health and close.

use super::{utc_day, Gateway, KeyStatus};
use crate::audit::AuditRow;
use crate::error::{Error, Result};
use crate::keys::{
    hash_vault_key, new_key_id, new_vault_key, IssuedKey, KeyRecord, KeySpec, Policy,
    VAULT_KEY_PREFIX,
};
use crate::store::{AuditQuery, KeyFilter};

/// What [`Gateway::list_keys_page`] lists.
#[derive(Debug, Clone, Default)]
pub struct KeyPage {
    pub run_id: Option<String>,
    pub active_only: bool,
    /// An exact key id or run id.
    pub search: Option<String>,
    pub after: Option<KeyCursor>,
    pub limit: usize,
}

/// Where the next page starts: strictly after this key in the list's order
/// (`created_at_ms DESC, key_id ASC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCursor {
    pub created_at_ms: i64,
    pub key_id: String,
}

/// Longest key id a cursor may carry (ours are 28 characters).
const CURSOR_KEY_ID_MAX: usize = 128;

impl KeyCursor {
    /// Opaque to clients; not a secret (key ids are not credentials). Safe in a header and
    /// a query string as it is: digits, `-`, `.`, and the key id's `[A-Za-z0-9_-]`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at_ms, self.key_id)
    }

    pub fn decode(s: &str) -> Result<Self> {
        let bad = || Error::invalid("cursor", "is not a cursor this server gave out");
        let (created_at_ms, key_id) = s.split_once('.').ok_or_else(bad)?;
        let created_at_ms = created_at_ms.parse().map_err(|_| bad())?;
        let key_id_ok = !key_id.is_empty()
            && key_id.len() <= CURSOR_KEY_ID_MAX
            && key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !key_id_ok {
            return Err(bad());
        }
        Ok(KeyCursor {
            created_at_ms,
            key_id: key_id.to_string(),
        })
    }
}

impl Gateway {
    pub async fn issue_key(&self, spec: KeySpec) -> Result<IssuedKey> {
        spec.validate(self.shared.config.max_key_ttl.as_secs() as i64)?;
        self.check_budgets_exist(&spec.budgets).await?;
        let now = self.now_ms();
        let vault_key = new_vault_key();
        let record = KeyRecord {
            key_id: new_key_id(),
            policy: Policy {
                vendor: spec.vendor,
                max_usd: spec.max_usd,
                daily_usd_cap: spec.daily_usd_cap,
                allowed_endpoints: spec.allowed_endpoints,
                stripe_accounts: spec.stripe_accounts,
                duplicate_window_secs: spec.duplicate_window_secs,
                budgets: spec.budgets,
                alert_at: spec.alert_at,
            },
            run_id: spec.run_id,
            metadata: spec.metadata,
            created_at_ms: now,
            expires_at_ms: now + spec.expires_in_secs * 1000,
            revoked_at_ms: None,
        };
        let hash = hash_vault_key(&vault_key);
        let rec = record.clone();
        self.shared
            .store
            .blocking_op("insert_key", move |s| s.insert_key(&rec, &hash))
            .await?;
        Ok(IssuedKey { vault_key, record })
    }

    /// Find a key by its id or by the vault key itself.
    async fn find_key(&self, key: &str) -> Result<KeyRecord> {
        let key = key.trim().to_string();
        let is_vault_key = key.starts_with(VAULT_KEY_PREFIX);
        let found = if is_vault_key {
            let hash = hash_vault_key(&key);
            self.shared
                .store
                .blocking_op("key_by_hash", move |s| s.key_by_hash(&hash))
                .await?
        } else {
            let id = key.clone();
            self.shared
                .store
                .blocking_op("key_by_id", move |s| s.key_by_id(&id))
                .await?
        };
        found.ok_or_else(|| {
            // A vault key is a secret: never echo it.
            let shown = if is_vault_key {
                "vk_…".to_string()
            } else {
                key.chars().take(64).collect()
            };
            Error::NotFound(format!("no key {shown}"))
        })
    }

    /// Revoke a key (by key id or vault key). The next request with it gets 401.
    pub async fn revoke(&self, key: &str) -> Result<KeyRecord> {
        let rec = self.find_key(key).await?;
        let now = self.now_ms();
        let id = rec.key_id.clone();
        let event = crate::events::key_revoked(
            now,
            crate::events::Subject {
                key_id: &rec.key_id,
                run_id: rec.run_id.as_deref(),
                vendor: rec.policy.vendor.as_str(),
            },
        );
        self.shared
            .store
            .blocking_op("revoke", move |s| s.revoke(&id, now, Some(&event)))
            .await?;
        self.shared.keys.forget(&rec.key_id);
        tracing::info!(key_id = %rec.key_id, "key revoked");
        Ok(KeyRecord {
            revoked_at_ms: rec.revoked_at_ms.or(Some(now)),
            ..rec
        })
    }

    pub async fn key_status(&self, key: &str) -> Result<KeyStatus> {
        let record = self.find_key(key).await?;
        let now = self.now_ms();
        let day = utc_day(now);
        let id = record.key_id.clone();
        let usage = self
            .shared
            .store
            .blocking_op("usage", move |s| s.usage(&id, &day))
            .await?;
        Ok(KeyStatus {
            record,
            usage,
            now_ms: now,
        })
    }

    pub async fn list_keys(
        &self,
        run_id: Option<String>,
        active_only: bool,
        limit: usize,
    ) -> Result<Vec<KeyStatus>> {
        let now = self.now_ms();
        let filter = KeyFilter {
            run_id,
            active_at_ms: active_only.then_some(now),
            after: None,
            limit,
        };
        let day = utc_day(now);
        self.shared
            .store
            .blocking_op("list_keys", move |s| {
                let keys = s.list_keys(&filter)?;
                keys.into_iter()
                    .map(|record| {
                        let usage = s.usage(&record.key_id, &day)?;
                        Ok(KeyStatus {
                            record,
                            usage,
                            now_ms: now,
                        })
                    })
                    .collect()
            })
            .await
    }

    /// One page of the key list, newest first, with usage read for that page only (the
    /// dashboard at 100k keys). `search` is an exact key id or run id. The cursor is a
    /// keyset cursor: the store reads the `limit + 1` keys after it from an index, so a page
    /// costs the same at any depth, and keys issued meanwhile (newer, so before the cursor)
    /// neither repeat nor push keys off the next page.
    pub async fn list_keys_page(
        &self,
        page: KeyPage,
    ) -> Result<(Vec<KeyStatus>, Option<KeyCursor>)> {
        let now = self.now_ms();
        let day = utc_day(now);
        let limit = page.limit.clamp(1, 500);
        self.shared
            .store
            .blocking_op("list_keys", move |s| {
                let active_at_ms = page.active_only.then_some(now);
                let after = page.after.map(|c| (c.created_at_ms, c.key_id));
                // The order of the list: newest first, ties by key id.
                let order = |r: &KeyRecord| (std::cmp::Reverse(r.created_at_ms), r.key_id.clone());
                let mut rows: Vec<KeyRecord> =
                    if let Some(q) = page.search.filter(|q| !q.is_empty()) {
                        // The key with that id, if it passes the filters, beside the first
                        // `limit + 1` keys of the run with that id: together they hold the
                        // first `limit + 1` keys of the union.
                        let mut found: Vec<KeyRecord> = s
                            .key_by_id(&q)?
                            .into_iter()
                            .filter(|r| {
                                after.as_ref().is_none_or(|(ms, id)| {
                                    order(r) > (std::cmp::Reverse(*ms), id.clone())
                                }) && page
                                    .run_id
                                    .as_ref()
                                    .is_none_or(|id| r.run_id.as_ref() == Some(id))
                                    && (!page.active_only
                                        || (r.revoked_at_ms.is_none() && r.expires_at_ms > now))
                            })
                            .collect();
                        // A run filter other than the searched run leaves no run match.
                        if page.run_id.as_ref().is_none_or(|id| *id == q) {
                            found.extend(s.list_keys(&KeyFilter {
                                run_id: Some(q),
                                active_at_ms,
                                after,
                                limit: limit + 1,
                            })?);
                        }
                        found.sort_by_key(order);
                        found.dedup_by(|a, b| a.key_id == b.key_id);
                        found
                    } else {
                        s.list_keys(&KeyFilter {
                            run_id: page.run_id,
                            active_at_ms,
                            after,
                            limit: limit + 1,
                        })?
                    };
                let more = rows.len() > limit;
                rows.truncate(limit);
                let next = match (more, rows.last()) {
                    (true, Some(last)) => Some(KeyCursor {
                        created_at_ms: last.created_at_ms,
                        key_id: last.key_id.clone(),
                    }),
                    _ => None,
                };
                let statuses = rows
                    .into_iter()
                    .map(|record| {
                        let usage = s.usage(&record.key_id, &day)?;
                        Ok(KeyStatus {
                            record,
                            usage,
                            now_ms: now,
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, crate::error::StoreError>>()?;
                Ok((statuses, next))
            })
            .await
    }

    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditRow>> {
        self.shared
            .store
            .blocking_op("audit", move |s| s.audit(&query))
            .await
    }

    /// Store everything still queued (audit rows answered before their commit) and tidy
    /// the store; for a clean stop. The gateway keeps working afterwards.
    pub async fn close(&self) -> Result<()> {
        self.shared.store.blocking_op("close", |s| s.close()).await
    }

    pub async fn health(&self) -> Result<()> {
        self.shared.store.blocking_op("ping", |s| s.ping()).await
    }
}
