//! Budgets shared by many keys: creating, listing and showing them. The caps themselves are
//! checked by the store inside each reservation, with the key's own.

use serde_json::{json, Value};

use super::shared::utc_day;
use super::Gateway;
use crate::audit::format_time_ms;
use crate::error::{Error, Result};
use crate::keys::usd_field;
use crate::ledger;
use crate::money::format_usd;
use crate::store::{Budget, BudgetStatus};

impl Budget {
    /// A budget from the admin API's JSON body (`POST /v1/budgets`), created at `now_ms`.
    pub fn from_json(v: &Value, now_ms: i64) -> Result<Budget> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid("body", "must be a JSON object"))?;
        const KNOWN: [&str; 4] = ["name", "max_usd", "daily_usd_cap", "alert_at"];
        if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Error::invalid(
                k,
                format!("unknown field; known fields are {}", KNOWN.join(", ")),
            ));
        }
        let name = match obj.get("name") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(Error::invalid("name", "is required: a string")),
        };
        let budget = Budget {
            name,
            max_usd: usd_field(obj.get("max_usd"), "max_usd")?,
            daily_usd_cap: usd_field(obj.get("daily_usd_cap"), "daily_usd_cap")?,
            alert_at: crate::alerts::parse_alert_at(obj.get("alert_at"))?,
            created_at_ms: now_ms,
        };
        budget.validate()?;
        Ok(budget)
    }

    pub fn validate(&self) -> Result<()> {
        valid_name(&self.name, "name")?;
        if self.max_usd.is_none() && self.daily_usd_cap.is_none() {
            return Err(Error::invalid(
                "max_usd",
                "a budget needs max_usd, daily_usd_cap or both (a budget without a cap would stop every call of its keys)",
            ));
        }
        for (field, v) in [
            ("max_usd", self.max_usd),
            ("daily_usd_cap", self.daily_usd_cap),
        ] {
            if v.is_some_and(|v| !(0..=crate::money::MAX_USD_MICROS).contains(&v)) {
                return Err(Error::invalid(field, "must be between 0 and 1e12 USD"));
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "max_usd": self.max_usd.map(format_usd),
            "daily_usd_cap": self.daily_usd_cap.map(format_usd),
            "alert_at": self.alert_at.iter().map(|bp| crate::alerts::bp_json(*bp)).collect::<Vec<_>>(),
            "created_at": format_time_ms(self.created_at_ms),
        })
    }
}

/// 1 to 100 characters of letters, digits, `-`, `_`, `.` (it appears in paths and messages).
pub(crate) fn valid_name(name: &str, field: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{name:?} is not a budget name: use 1 to 100 letters, digits, '-', '_' or '.'"),
        ))
    }
}

impl BudgetStatus {
    pub fn remaining(&self) -> i64 {
        ledger::remaining(self.budget.caps(), self.usage.total, self.usage.today)
    }

    pub fn to_json(&self) -> Value {
        let mut v = self.budget.to_json();
        v["spent_usd"] = json!(format_usd(self.usage.spent));
        v["pending_usd"] = json!(format_usd(self.usage.pending));
        v["reserved_usd"] = json!(format_usd(self.usage.reserved));
        v["today_usd"] = json!(format_usd(self.usage.today));
        v["total_usd"] = json!(format_usd(self.usage.total));
        v["remaining_usd"] = json!(format_usd(self.remaining()));
        v["keys"] = json!(self.keys);
        v
    }
}

impl Gateway {
    /// Create a budget; a name that is taken is refused (nothing changes).
    pub async fn create_budget(&self, budget: Budget) -> Result<Budget> {
        budget.validate()?;
        let b = budget.clone();
        let created = self
            .shared
            .store
            .blocking_op("insert_budget", move |s| s.insert_budget(&b))
            .await?;
        if !created {
            return Err(Error::invalid(
                "name",
                format!("a budget named {:?} exists already; budgets are never replaced, pick another name", budget.name),
            ));
        }
        Ok(budget)
    }

    pub async fn budgets(&self) -> Result<Vec<BudgetStatus>> {
        let day = utc_day(self.now_ms());
        self.shared
            .store
            .blocking_op("budgets", move |s| {
                s.budgets()?
                    .into_iter()
                    .map(|b| {
                        s.budget_status(&b.name, &day).map(|st| {
                            st.unwrap_or(BudgetStatus {
                                budget: b,
                                usage: Default::default(),
                                keys: vec![],
                            })
                        })
                    })
                    .collect()
            })
            .await
    }

    pub async fn budget(&self, name: &str) -> Result<BudgetStatus> {
        let day = utc_day(self.now_ms());
        let n = name.to_string();
        self.shared
            .store
            .blocking_op("budget_status", move |s| s.budget_status(&n, &day))
            .await?
            .ok_or_else(|| Error::NotFound(format!("no budget named {name:?}")))
    }

    /// Every budget a new key names must exist (budgets are never deleted, so it still does
    /// when the key is stored).
    pub(super) async fn check_budgets_exist(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let known = self
            .shared
            .store
            .blocking_op("budgets", |s| s.budgets())
            .await?;
        for n in names {
            valid_name(n, "budgets")?;
            if !known.iter().any(|b| &b.name == n) {
                return Err(Error::invalid(
                    "budgets",
                    format!("no budget named {n:?}; create it first with POST /v1/budgets"),
                ));
            }
        }
        Ok(())
    }
}
