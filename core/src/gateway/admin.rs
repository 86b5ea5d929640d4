//! Key administration: issue, find, revoke, list, status, the audit log, health and close.

use super::{utc_day, Gateway, KeyStatus};
use crate::audit::AuditRow;
use crate::error::{Error, Result};
use crate::keys::{
    hash_vault_key, new_key_id, new_vault_key, IssuedKey, KeyRecord, KeySpec, Policy,
    VAULT_KEY_PREFIX,
};
use crate::store::{AuditQuery, KeyFilter};

impl Gateway {
    pub async fn issue_key(&self, spec: KeySpec) -> Result<IssuedKey> {
        spec.validate(self.shared.config.max_key_ttl.as_secs() as i64)?;
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
            .blocking(move |s| s.insert_key(&rec, &hash))
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
                .blocking(move |s| s.key_by_hash(&hash))
                .await?
        } else {
            let id = key.clone();
            self.shared
                .store
                .blocking(move |s| s.key_by_id(&id))
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
        self.shared
            .store
            .blocking(move |s| s.revoke(&id, now))
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
            .blocking(move |s| s.usage(&id, &day))
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
            limit,
        };
        let day = utc_day(now);
        self.shared
            .store
            .blocking(move |s| {
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

    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditRow>> {
        self.shared.store.blocking(move |s| s.audit(&query)).await
    }

    /// Store everything still queued (audit rows answered before their commit) and tidy
    /// the store; for a clean stop. The gateway keeps working afterwards.
    pub async fn close(&self) -> Result<()> {
        self.shared.store.blocking(|s| s.close()).await
    }

    pub async fn health(&self) -> Result<()> {
        self.shared.store.blocking(|s| s.ping()).await
    }
}
