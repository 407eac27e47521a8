//! Per-match token budget: when a match has spent its tokens, its robots answer with
//! the offline engine.
//!
//! ```
//! use processors::robots::TokenBudget;
//!
//! let budget = TokenBudget::new(1_000);
//! let reservation = budget.try_reserve("m1", 600).expect("within budget");
//! reservation.settle(400);
//! assert_eq!(budget.used("m1"), 400);
//! assert!(budget.try_reserve("m1", 700).is_none());
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::resilience::lock;

#[derive(Debug, Default)]
struct BudgetInner {
    used: HashMap<String, u64>,
    order: VecDeque<String>,
}

/// Per-match token budget. Calls reserve an estimate up front (so concurrent calls of
/// one match cannot overshoot) and settle with the actual usage; a reservation that is
/// dropped unsettled (failed or cancelled call) is released.
#[derive(Debug, Clone)]
pub struct TokenBudget {
    per_match: u64,
    max_tracked_matches: usize,
    inner: Arc<Mutex<BudgetInner>>,
}

/// Tokens reserved for one call; settle it with the real usage.
#[derive(Debug)]
pub struct Reservation {
    budget: Option<TokenBudget>,
    match_id: String,
    reserved: u64,
}

impl TokenBudget {
    /// Budget of `per_match` tokens per match (`0` = unlimited).
    pub fn new(per_match: u64) -> Self {
        TokenBudget {
            per_match,
            max_tracked_matches: 100_000,
            inner: Arc::new(Mutex::new(BudgetInner::default())),
        }
    }

    /// Limits how many matches are remembered (oldest forgotten first).
    pub fn with_max_tracked_matches(mut self, max: usize) -> Self {
        self.max_tracked_matches = max.max(1);
        self
    }

    /// Reserves `estimate` tokens for a call in `match_id`; `None` when that would
    /// exceed the budget (the match goes to the offline engine).
    pub fn try_reserve(&self, match_id: &str, estimate: u64) -> Option<Reservation> {
        if self.per_match == 0 {
            return Some(Reservation {
                budget: None,
                match_id: match_id.to_string(),
                reserved: 0,
            });
        }
        let mut inner = lock(&self.inner);
        if !inner.used.contains_key(match_id) {
            while inner.order.len() >= self.max_tracked_matches {
                if let Some(old) = inner.order.pop_front() {
                    inner.used.remove(&old);
                } else {
                    break;
                }
            }
            inner.order.push_back(match_id.to_string());
            inner.used.insert(match_id.to_string(), 0);
        }
        let used = inner.used.get(match_id).copied().unwrap_or(0);
        if used.saturating_add(estimate) > self.per_match {
            return None;
        }
        inner.used.insert(match_id.to_string(), used + estimate);
        Some(Reservation {
            budget: Some(self.clone()),
            match_id: match_id.to_string(),
            reserved: estimate,
        })
    }

    /// Tokens used (settled + reserved) by `match_id`.
    pub fn used(&self, match_id: &str) -> u64 {
        lock(&self.inner).used.get(match_id).copied().unwrap_or(0)
    }

    /// Forgets a finished match.
    pub fn forget(&self, match_id: &str) {
        let mut inner = lock(&self.inner);
        inner.used.remove(match_id);
        inner.order.retain(|m| m != match_id);
    }

    fn adjust(&self, match_id: &str, reserved: u64, actual: u64) {
        let mut inner = lock(&self.inner);
        if let Some(used) = inner.used.get_mut(match_id) {
            *used = used.saturating_sub(reserved).saturating_add(actual);
        }
    }
}

impl Reservation {
    /// Replaces the reservation by the tokens actually spent.
    pub fn settle(mut self, actual: u64) {
        if let Some(budget) = self.budget.take() {
            budget.adjust(&self.match_id, self.reserved, actual);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(budget) = self.budget.take() {
            budget.adjust(&self.match_id, self.reserved, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn budget_reserves_settles_and_releases() {
        let budget = TokenBudget::new(1_000).with_max_tracked_matches(2);
        let r1 = budget.try_reserve("m1", 500).expect("fits");
        let r2 = budget.try_reserve("m1", 500).expect("fits");
        assert!(budget.try_reserve("m1", 1).is_none(), "fully reserved");
        r1.settle(100);
        drop(r2); // failed call: released
        assert_eq!(budget.used("m1"), 100);
        assert!(budget.try_reserve("m1", 900).is_some());
        // Other matches are independent; the oldest is forgotten beyond the cap.
        assert!(budget.try_reserve("m2", 1_000).is_some());
        assert!(budget.try_reserve("m3", 10).is_some());
        assert_eq!(budget.used("m1"), 0);
        budget.forget("m3");
        assert_eq!(budget.used("m3"), 0);
        // Unlimited budget.
        let unlimited = TokenBudget::new(0);
        assert!(unlimited.try_reserve("m", u64::MAX).is_some());
    }
}
