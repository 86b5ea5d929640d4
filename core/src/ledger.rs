//! The ledger's words and rules, with no storage in them: the money states a reservation
//! moves through, the caps a key carries, and the one rule for whether a call fits under
//! them. Every store (SQLite today, PostgreSQL next) and the pipeline's
//! `Vendorgate-Remaining-Usd` header use these functions, so the rule exists once.

use serde::{Deserialize, Serialize};

/// The money position of one call (or one vendor object) as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MoneyState {
    /// Reserved before forwarding, no answer yet.
    Reserved,
    /// Money moved.
    Moved,
    /// Money held or authorized (reversible).
    Committed,
    /// In flight at the vendor; may still move.
    Pending,
    /// No definite answer: counted until proven otherwise.
    Unknown,
    /// Definitely nothing moved; the reservation is released.
    None,
    /// Replaced by a later, authoritative answer about the same object.
    Superseded,
}

impl MoneyState {
    pub fn as_str(self) -> &'static str {
        match self {
            MoneyState::Reserved => "reserved",
            MoneyState::Moved => "moved",
            MoneyState::Committed => "committed",
            MoneyState::Pending => "pending",
            MoneyState::Unknown => "unknown",
            MoneyState::None => "none",
            MoneyState::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "reserved" => MoneyState::Reserved,
            "moved" => MoneyState::Moved,
            "committed" => MoneyState::Committed,
            "pending" => MoneyState::Pending,
            "unknown" => MoneyState::Unknown,
            "none" => MoneyState::None,
            "superseded" => MoneyState::Superseded,
            _ => return None,
        })
    }

    /// Whether amounts in this state count against caps.
    pub fn counts(self) -> bool {
        !matches!(self, MoneyState::None | MoneyState::Superseded)
    }
}

/// An amount seen on a vendor object, kept per key so later calls on the object can be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub micros: i64,
    /// Upper-case ISO code of the object's currency.
    pub currency: String,
}

/// Which cap a refused reservation would have crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapWindow {
    Run,
    Daily,
}

impl std::fmt::Display for CapWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CapWindow::Run => "max_usd (whole run)",
            CapWindow::Daily => "daily_usd_cap (UTC day)",
        })
    }
}

/// A key's caps, µUSD. A key with neither cap may move no money at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    pub max_usd: Option<i64>,
    pub daily_usd_cap: Option<i64>,
}

impl Caps {
    /// The run cap as enforced: a key with no cap at all has a run cap of zero.
    fn run(self) -> Option<i64> {
        match (self.max_usd, self.daily_usd_cap) {
            (None, None) => Some(0),
            (m, _) => m,
        }
    }
}

/// A call that would cross a cap: which one, the cap, and what was already counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverCap {
    pub window: CapWindow,
    pub cap: i64,
    pub spent: i64,
}

/// Whether `counted` more µUSD fit under the caps, given the key's `total` over its life and
/// `today` in the current UTC day. The run cap is checked first, then the daily cap.
pub fn check_caps(caps: Caps, total: i64, today: i64, counted: i64) -> Result<(), OverCap> {
    if let Some(cap) = caps.run() {
        if total.saturating_add(counted) > cap {
            return Err(OverCap {
                window: CapWindow::Run,
                cap,
                spent: total,
            });
        }
    }
    if let Some(cap) = caps.daily_usd_cap {
        if today.saturating_add(counted) > cap {
            return Err(OverCap {
                window: CapWindow::Daily,
                cap,
                spent: today,
            });
        }
    }
    Ok(())
}

/// The first budget (in the order given: by name) that `counted` more µUSD would cross,
/// from `(name, caps, total, today)` of each budget the key joined.
pub fn check_budgets<'a>(
    budgets: impl IntoIterator<Item = (&'a str, Caps, i64, i64)>,
    counted: i64,
) -> Option<(&'a str, OverCap)> {
    budgets.into_iter().find_map(|(name, caps, total, today)| {
        check_caps(caps, total, today, counted)
            .err()
            .map(|over| (name, over))
    })
}

/// Room left under the tighter of the caps (0 for a key with no cap, never negative).
pub fn remaining(caps: Caps, total: i64, today: i64) -> i64 {
    let run = caps.run().map(|c| c - total);
    let day = caps.daily_usd_cap.map(|c| c - today);
    match (run, day) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 0,
    }
    .max(0)
}

/// What a call reserved becomes when it fails before an answer: only a connection that was
/// never made proves nothing moved; anything later may have reached the vendor and stays
/// counted, at the estimate, until proven otherwise.
pub fn state_of_failure(nothing_sent: bool) -> MoneyState {
    if nothing_sent {
        MoneyState::None
    } else {
        MoneyState::Unknown
    }
}

/// The µUSD an audit row shows for a settled call: the estimate while unknown, the cost when
/// the state counts, else nothing.
pub fn counted_cost(state: MoneyState, cost: i64, estimate: i64) -> i64 {
    if state == MoneyState::Unknown {
        estimate
    } else if state.counts() {
        cost
    } else {
        0
    }
}

/// What a reservation with an `Idempotency-Key` already on record for the key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The key was used with a different request.
    Conflict,
    /// The first call with this key is still in flight.
    InFlight,
    /// The first call definitely moved nothing: check it afresh, reusing its row.
    Reuse,
    /// The first call is counted: forward again, count nothing new.
    Replay,
}

/// The rule for an idempotent retry: a reused key with another request is a conflict, a
/// retry of a counted call is the same spend, a retry after a definite "nothing moved" is
/// checked afresh. `state` is the stored state of the first call's row.
pub fn idempotent_retry(same_request: bool, state: Option<MoneyState>) -> Retry {
    if !same_request {
        return Retry::Conflict;
    }
    match state {
        Some(MoneyState::Reserved) => Retry::InFlight,
        Some(MoneyState::None) => Retry::Reuse,
        _ => Retry::Replay,
    }
}

/// A ledger row's new position after an authoritative answer about its vendor object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowPosition {
    pub spend_id: i64,
    pub state: MoneyState,
    pub amount: i64,
}

/// Make the rows of one vendor object add up to what the vendor now says about it (`state`,
/// `cost`). `others` are the object's settled, counted rows other than `own`, newest first,
/// where they stand now. Rows keep their UTC day: an increase lands on `own` (this call's
/// row, reserved against today's window) or, for a pass-through read, on the newest row; a
/// decrease is taken from the newest rows first. Returns `own` and every other row that
/// changes (an object called thousands of times keeps its untouched rows unwritten).
pub fn object_position(
    others: &[RowPosition],
    own: Option<i64>,
    state: MoneyState,
    cost: i64,
) -> Vec<RowPosition> {
    let target = if state.counts() { cost } else { 0 };
    let counted_elsewhere: i64 = others.iter().map(|r| r.amount).sum();
    let mut increase = (target - counted_elsewhere).max(0);
    let mut out = Vec::with_capacity(others.len() + 1);
    if let Some(own) = own {
        out.push(RowPosition {
            spend_id: own,
            state,
            amount: increase,
        });
        increase = 0;
    } else if others.is_empty() {
        return out;
    }
    let mut excess = (counted_elsewhere - target).max(0);
    for (i, now) in others.iter().enumerate() {
        let cut = excess.min(now.amount);
        excess -= cut;
        let mut new_amount = now.amount - cut;
        if i == 0 {
            new_amount += increase;
        }
        let new_state = if new_amount > 0 || (i == 0 && own.is_none() && state.counts()) {
            state
        } else if state.counts() {
            MoneyState::Superseded
        } else {
            MoneyState::None
        };
        let next = RowPosition {
            spend_id: now.spend_id,
            state: new_state,
            amount: new_amount,
        };
        if next != *now {
            out.push(next);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_without_caps_moves_nothing() {
        let none = Caps::default();
        assert_eq!(check_caps(none, 0, 0, 0), Ok(()));
        assert_eq!(
            check_caps(none, 0, 0, 1).unwrap_err().window,
            CapWindow::Run
        );
        assert_eq!(remaining(none, 0, 0), 0);
    }

    #[test]
    fn run_cap_first_then_daily() {
        let caps = Caps {
            max_usd: Some(100),
            daily_usd_cap: Some(50),
        };
        assert_eq!(check_caps(caps, 40, 40, 10), Ok(()));
        let day = check_caps(caps, 40, 40, 11).unwrap_err();
        assert_eq!((day.window, day.cap, day.spent), (CapWindow::Daily, 50, 40));
        let run = check_caps(caps, 95, 0, 10).unwrap_err();
        assert_eq!((run.window, run.cap, run.spent), (CapWindow::Run, 100, 95));
        assert_eq!(remaining(caps, 40, 40), 10);
        assert_eq!(remaining(caps, 120, 0), 0);
    }

    #[test]
    fn a_daily_cap_alone_leaves_the_run_unbounded() {
        let caps = Caps {
            max_usd: None,
            daily_usd_cap: Some(50),
        };
        assert_eq!(check_caps(caps, 1_000_000, 0, 50), Ok(()));
        assert_eq!(remaining(caps, 1_000_000, 20), 30);
    }

    #[test]
    fn only_a_connection_never_made_releases() {
        assert_eq!(state_of_failure(true), MoneyState::None);
        assert_eq!(state_of_failure(false), MoneyState::Unknown);
        assert_eq!(counted_cost(MoneyState::Unknown, 0, 7), 7);
        assert_eq!(counted_cost(MoneyState::Moved, 5, 7), 5);
        assert_eq!(counted_cost(MoneyState::None, 5, 7), 0);
    }

    #[test]
    fn an_authoritative_answer_moves_the_object_rows() {
        // A refund of 30 on a charge of 100 counted on row 1: the object is now worth 70.
        let row = |spend_id, amount| RowPosition {
            spend_id,
            state: MoneyState::Moved,
            amount,
        };
        let rows = object_position(&[row(1, 100)], None, MoneyState::Moved, 70);
        assert_eq!(
            rows,
            vec![RowPosition {
                spend_id: 1,
                state: MoneyState::Moved,
                amount: 70
            }]
        );
        // This call's own row gets only what the earlier rows do not already cover.
        // Row 1 keeps what it had, so it is not rewritten.
        let rows = object_position(&[row(1, 40)], Some(2), MoneyState::Moved, 100);
        assert_eq!(rows, vec![row(2, 60)]);
        // The same answer again: this call adds nothing and row 2 stays as it is.
        let rows = object_position(&[row(2, 60), row(1, 40)], Some(3), MoneyState::Moved, 100);
        assert_eq!(rows, vec![row(3, 0)]);
        // A newest row left at zero by an earlier call is superseded by this one.
        let rows = object_position(
            &[row(3, 0), row(2, 60), row(1, 40)],
            Some(4),
            MoneyState::Moved,
            100,
        );
        assert_eq!(
            rows,
            vec![
                row(4, 0),
                RowPosition {
                    spend_id: 3,
                    state: MoneyState::Superseded,
                    amount: 0
                }
            ]
        );
        // Nothing moved after all: every row is released.
        let rows = object_position(&[row(3, 10), row(1, 5)], None, MoneyState::None, 0);
        assert_eq!(rows.len(), 2);
        assert!(rows
            .iter()
            .all(|r| r.state == MoneyState::None && r.amount == 0));
        assert!(object_position(&[], None, MoneyState::Moved, 5).is_empty());
    }

    #[test]
    fn the_first_budget_that_would_be_crossed_refuses() {
        let run = |max| Caps {
            max_usd: Some(max),
            daily_usd_cap: None,
        };
        let day = Caps {
            max_usd: None,
            daily_usd_cap: Some(50),
        };
        let budgets = [
            ("a", run(1_000), 900, 0),
            ("b", day, 0, 45),
            ("c", run(10), 10, 0),
        ];
        assert_eq!(check_budgets(budgets, 0), None);
        let (name, over) = check_budgets(budgets, 6).unwrap();
        assert_eq!(
            (name, over.window, over.cap, over.spent),
            ("b", CapWindow::Daily, 50, 45)
        );
        assert_eq!(check_budgets(budgets, 200).unwrap().0, "a");
        assert_eq!(check_budgets([], 1_000_000), None);
    }

    #[test]
    fn idempotent_retries() {
        assert_eq!(
            idempotent_retry(false, Some(MoneyState::Moved)),
            Retry::Conflict
        );
        assert_eq!(
            idempotent_retry(true, Some(MoneyState::Reserved)),
            Retry::InFlight
        );
        assert_eq!(idempotent_retry(true, Some(MoneyState::None)), Retry::Reuse);
        assert_eq!(
            idempotent_retry(true, Some(MoneyState::Unknown)),
            Retry::Replay
        );
    }
}
