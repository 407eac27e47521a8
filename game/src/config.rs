//! Game settings that decisions depend on.
//!
//! Windows are frozen into `match.created` at creation, so later decisions (and
//! [`due_timeouts`](super::due_timeouts)) read them from the match state, not from here.
//!
//! ```
//! use game::GameConfig;
//! let cfg = GameConfig::default().with_response_window_ms(10_000).with_max_text_chars(500);
//! assert_eq!(cfg.voting_window_ms, 30_000);
//! ```

/// Settings of the match processor's decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameConfig {
    /// Response phase length (default 60 s).
    pub response_window_ms: u64,
    /// Voting phase length (default 30 s).
    pub voting_window_ms: u64,
    /// How long a round waits for robots before it starts without them (default 30 s;
    /// `None`: as long as it takes). The pool queues requests while it is at its maximum
    /// size; past this window the round starts, its robot seats time out, and the match
    /// moves on instead of waiting on a pool that cannot serve it.
    pub robots_window_ms: Option<u64>,
    /// Longest accepted human response, in characters (default 2000). Longer robot
    /// responses are truncated instead of rejected.
    pub max_text_chars: usize,
    /// Longest player display name, in characters (default 64).
    pub max_name_chars: usize,
    /// Longest player id, in characters (default 128).
    pub max_player_id_chars: usize,
    /// Fewest rounds a match may have (default 1).
    pub min_rounds: u32,
    /// Most rounds a match may have (default 20).
    pub max_rounds: u32,
    /// How long after a phase's deadline its timeouts fire (default 2 s). Whether an
    /// answer or vote is in time is decided by its own timestamp (the moment the API or
    /// the robot worker took it): one stamped at or before the deadline is accepted if it
    /// arrives within the grace, one stamped after it is rejected `round_over` however
    /// early it arrives. So a request's outcome does not depend on when a (possibly
    /// failed-over, catching-up) worker happened to run the deadline. The phase a timeout
    /// opens counts its window from the end of the grace (see
    /// [`due_timeouts_with_grace`](super::due_timeouts_with_grace)).
    pub deadline_grace_ms: u64,
    /// Shortest response or voting window a `match.create` may ask for (default 1 s).
    pub min_window_ms: u64,
    /// Longest response or voting window a `match.create` may ask for (default 10 min).
    pub max_window_ms: u64,
}

impl Default for GameConfig {
    fn default() -> Self {
        GameConfig {
            response_window_ms: 60_000,
            voting_window_ms: 30_000,
            robots_window_ms: Some(30_000),
            max_text_chars: 2000,
            max_name_chars: 64,
            max_player_id_chars: 128,
            min_rounds: 1,
            max_rounds: 20,
            deadline_grace_ms: 2_000,
            min_window_ms: 1_000,
            max_window_ms: 600_000,
        }
    }
}

impl GameConfig {
    /// Sets the response window.
    pub fn with_response_window_ms(mut self, ms: u64) -> Self {
        self.response_window_ms = ms;
        self
    }

    /// Sets the voting window.
    pub fn with_voting_window_ms(mut self, ms: u64) -> Self {
        self.voting_window_ms = ms;
        self
    }

    /// Sets how long a round waits for its robots (`None`: no limit).
    pub fn with_robots_window_ms(mut self, ms: Option<u64>) -> Self {
        self.robots_window_ms = ms;
        self
    }

    /// Sets how long after a deadline its timeouts fire.
    pub fn with_deadline_grace_ms(mut self, ms: u64) -> Self {
        self.deadline_grace_ms = ms;
        self
    }

    /// The windows of a match created with `response`/`voting` windows (`None`: this
    /// config's), or the out-of-range one as `(field, value)`.
    ///
    /// ```
    /// use game::GameConfig;
    /// let cfg = GameConfig::default();
    /// assert_eq!(cfg.match_windows(Some(30_000), None), Ok((30_000, 30_000)));
    /// assert_eq!(cfg.match_windows(None, Some(10)), Err(("votingWindowMs", 10)));
    /// ```
    pub fn match_windows(
        &self,
        response: Option<u64>,
        voting: Option<u64>,
    ) -> Result<(u64, u64), (&'static str, u64)> {
        let check = |field, v: Option<u64>, default| match v {
            None => Ok(default),
            Some(ms) if (self.min_window_ms..=self.max_window_ms).contains(&ms) => Ok(ms),
            Some(ms) => Err((field, ms)),
        };
        Ok((
            check("responseWindowMs", response, self.response_window_ms)?,
            check("votingWindowMs", voting, self.voting_window_ms)?,
        ))
    }

    /// Sets the longest accepted response.
    pub fn with_max_text_chars(mut self, chars: usize) -> Self {
        self.max_text_chars = chars;
        self
    }
}
