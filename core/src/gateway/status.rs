//! What the admin API shows of a key: its record, what it has counted and what is left.

use serde_json::{json, Value};

use crate::audit::format_time_ms;
use crate::keys::{IssuedKey, KeyRecord};
use crate::ledger;
use crate::money::format_usd;
use crate::store::Usage;

/// A key with what it has counted.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub record: KeyRecord,
    pub usage: Usage,
    pub now_ms: i64,
}

impl KeyStatus {
    pub fn remaining(&self) -> i64 {
        ledger::remaining(
            self.record.policy.caps(),
            self.usage.total,
            self.usage.today,
        )
    }

    pub fn revoked(&self) -> bool {
        self.record.revoked_at_ms.is_some()
    }

    pub fn expired(&self) -> bool {
        self.record.expires_at_ms <= self.now_ms
    }

    pub fn to_json(&self) -> Value {
        let r = &self.record;
        json!({
            "key_id": r.key_id,
            "vendor": r.policy.vendor,
            "run_id": r.run_id,
            "metadata": r.metadata,
            "policy": r.policy.to_json(),
            "created_at": format_time_ms(r.created_at_ms),
            "expires_at": format_time_ms(r.expires_at_ms),
            "revoked": self.revoked(),
            "revoked_at": r.revoked_at_ms.map(format_time_ms),
            "expired": self.expired(),
            "active": !self.revoked() && !self.expired(),
            "spent_usd": format_usd(self.usage.spent),
            "pending_usd": format_usd(self.usage.pending),
            "reserved_usd": format_usd(self.usage.reserved),
            "today_usd": format_usd(self.usage.today),
            "total_usd": format_usd(self.usage.total),
            "remaining_usd": format_usd(self.remaining()),
        })
    }
}

impl IssuedKey {
    /// The answer to "issue a key": the key's status plus the vault key, shown this once.
    pub fn to_json(&self, now_ms: i64) -> Value {
        let mut v = KeyStatus {
            record: self.record.clone(),
            usage: Usage::default(),
            now_ms,
        }
        .to_json();
        v["vault_key"] = json!(self.vault_key);
        v
    }
}
