//! Input and output types of the robot workers, independent of the wire schemas.
//!
//! The Kafka loop maps a `robot-commands` record to a [`RobotTask`], calls
//! [`RobotEngine::answer`](super::RobotEngine::answer) and maps the result back to a
//! `robot-responses` record: a [`RobotAnswer`] becomes `response.recorded` / a vote, a
//! [`RobotFailure`] becomes `response.failed`.
//!
//! ```
//! use processors::robots::{Candidate, RobotTask, TaskKind};
//!
//! let task = RobotTask {
//!     command_id: "cmd-1".into(),
//!     robot_id: "robot-0-7".into(),
//!     personality: "curious-student".into(),
//!     match_id: "match-abc".into(),
//!     round: 2,
//!     identity: "C".into(),
//!     prompt: "What's your favorite memory?".into(),
//!     kind: TaskKind::Vote {
//!         candidates: vec![Candidate { identity: "A".into(), text: "the beach at night".into() }],
//!     },
//! };
//! assert!(task.is_vote());
//! ```

use serde::{Deserialize, Serialize};

/// One unit of work for a robot: answer a prompt, or vote for who is human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotTask {
    /// Id of the command; echoed in the answer / failure for correlation and dedup.
    pub command_id: String,
    /// Robot instance id (seeds the offline engine, so the same robot sounds consistent).
    pub robot_id: String,
    /// Personality name, looked up in [`Personalities`](super::Personalities).
    pub personality: String,
    /// Match the robot is playing in (the token budget is kept per match).
    pub match_id: String,
    /// Round number within the match.
    pub round: u32,
    /// The robot's anonymous identity in the match (e.g. `"B"`); never voted for by itself.
    pub identity: String,
    /// The round prompt.
    pub prompt: String,
    /// Respond or vote.
    pub kind: TaskKind,
}

impl RobotTask {
    /// `true` for a vote task.
    pub fn is_vote(&self) -> bool {
        matches!(self.kind, TaskKind::Vote { .. })
    }

    /// The answers whose style a respond task follows: those already given in the round,
    /// or, before anyone answered, the answers of the match's latest earlier round (empty
    /// for [`TaskKind::Respond`] and votes; never the robot's own seat).
    pub fn room(&self) -> Vec<&Candidate> {
        let TaskKind::RespondToRoom { others, earlier } = &self.kind else {
            return Vec::new();
        };
        let mine = |c: &&Candidate| c.identity != self.identity;
        let now: Vec<&Candidate> = others.iter().filter(mine).collect();
        if !now.is_empty() {
            return now;
        }
        earlier
            .last()
            .map(|r| r.answers.iter().filter(mine).collect())
            .unwrap_or_default()
    }

    /// The match's earlier rounds a respond task carries (oldest first).
    pub fn earlier_rounds(&self) -> &[PastRound] {
        match &self.kind {
            TaskKind::RespondToRoom { earlier, .. } => earlier,
            _ => &[],
        }
    }

    /// Candidates other than the robot itself (empty for respond tasks).
    pub fn other_candidates(&self) -> Vec<&Candidate> {
        match &self.kind {
            TaskKind::Respond | TaskKind::RespondToRoom { .. } => Vec::new(),
            TaskKind::Vote { candidates } => candidates
                .iter()
                .filter(|c| c.identity != self.identity)
                .collect(),
        }
    }
}

/// What the robot must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskKind {
    /// Write an answer to the prompt.
    Respond,
    /// Write an answer to the prompt having read the answers already given in the round
    /// (issue 15 item 4, `context.otherResponses` of seed 003): the offline engine matches
    /// their length, casing and tone, the LLM prompt quotes them as data.
    RespondToRoom {
        /// Answers recorded in the round before the command was issued (never the
        /// robot's own seat).
        others: Vec<Candidate>,
        /// The match's latest earlier rounds, oldest first (the command's
        /// `context.earlierRounds`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        earlier: Vec<PastRound>,
    },
    /// Vote for the candidate the robot believes is the human.
    Vote {
        /// All answers of the round (the robot's own included; it is filtered out).
        candidates: Vec<Candidate>,
    },
}

/// An earlier round of the match: its prompt and its answers as voters saw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastRound {
    /// Round number.
    pub round: u32,
    /// Its prompt (untrusted only in that it is quoted as data like everything else).
    pub prompt: String,
    /// Its answers, the robot's own included (identities tell them apart).
    pub answers: Vec<Candidate>,
}

/// One anonymous answer of the round, as shown to voters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Anonymous identity of the author (e.g. `"A"`).
    pub identity: String,
    /// The answer text (untrusted: may have been written by a human).
    pub text: String,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// The configured OpenAI-compatible model.
    Llm,
    /// The deterministic offline personality engine.
    Offline,
}

impl AnswerSource {
    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerSource::Llm => "llm",
            AnswerSource::Offline => "offline",
        }
    }
}

/// The content of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Answer {
    /// Answer text for a respond task (sanitised, length-capped).
    Text(String),
    /// Identity voted for (never the robot's own).
    Vote(String),
}

/// A successful robot answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotAnswer {
    /// Echo of [`RobotTask::command_id`].
    pub command_id: String,
    /// The text or the vote.
    pub text_or_vote: Answer,
    /// Model that produced it (`"offline"` for the offline engine).
    pub model: String,
    /// Wall-clock time from receipt to answer, think time included.
    pub latency_ms: u64,
    /// Tokens spent at the model (prompt + completion; 0 offline). When a model reply
    /// was unusable and the offline engine filled in, the spent tokens are still reported.
    pub tokens: u32,
    /// Where the answer came from.
    pub source: AnswerSource,
}

/// Classification of a failure (metric label `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The task itself is unusable (e.g. a vote without other candidates).
    InvalidTask,
    /// Every attempt timed out.
    Timeout,
    /// The endpoint kept answering 429.
    RateLimited,
    /// The endpoint kept answering 5xx.
    Upstream,
    /// The endpoint rejected the request (4xx other than 408/429, e.g. a bad key).
    Rejected,
    /// Connection / protocol error.
    Transport,
    /// The endpoint answered something that is not a chat completion.
    InvalidResponse,
    /// No concurrency slot became free in time.
    Overloaded,
}

impl FailureKind {
    /// Every kind.
    pub const ALL: [FailureKind; 8] = [
        FailureKind::InvalidTask,
        FailureKind::Timeout,
        FailureKind::RateLimited,
        FailureKind::Upstream,
        FailureKind::Rejected,
        FailureKind::Transport,
        FailureKind::InvalidResponse,
        FailureKind::Overloaded,
    ];

    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::InvalidTask => "invalid_task",
            FailureKind::Timeout => "timeout",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Upstream => "upstream",
            FailureKind::Rejected => "rejected",
            FailureKind::Transport => "transport",
            FailureKind::InvalidResponse => "invalid_response",
            FailureKind::Overloaded => "overloaded",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A robot could not answer; becomes `response.failed` upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("robot command {command_id} failed ({kind}): {reason}")]
pub struct RobotFailure {
    /// Echo of [`RobotTask::command_id`].
    pub command_id: String,
    /// Human-readable reason (never contains the API key).
    pub reason: String,
    /// Classification.
    pub kind: FailureKind,
}
