//! Robot workers, Kafka-free core: given a [`RobotTask`] (decoded from a
//! `robot-commands` record), produce a [`RobotAnswer`] or a [`RobotFailure`].
//!
//! * [`task`] – input/output types, independent of the wire schemas.
//! * [`personality`] – personalities from configuration (built-ins + JSON).
//! * [`offline`] – deterministic offline personality engine (answers and votes).
//! * [`sanitize`] – untrusted text into the model, revealing text out of it.
//! * [`prompt`] – system / user messages and vote parsing.
//! * [`llm`] – async-openai chat-completions client and error classification.
//! * [`keywords`] – keyword / topic extraction from prompts.
//! * [`resilience`] – per-request timeout, retries with backoff + jitter.
//! * [`breaker`] – circuit breaker; [`budget`] – per-match token budget.
//! * [`worker`] – [`RobotEngine`], combining the above with bounded concurrency and think time.
//! * [`telemetry`] – recording metrics (names in [`crate::metrics`]) and in-process stats.
//! * [`seed`] – SHA-256-seeded deterministic randomness.
//!
//! The Kafka loop (elsewhere) looks like:
//!
//! ```no_run
//! use processors::robots::{Personalities, RobotEngine, RobotEngineConfig, RobotLlmConfig, RobotTask};
//!
//! # async fn consume(next: impl Fn() -> Option<RobotTask>) {
//! let config = RobotEngineConfig {
//!     llm: RobotLlmConfig { api_key: std::env::var("OPENAI_API_KEY").ok(), ..Default::default() },
//!     ..Default::default()
//! };
//! let engine = RobotEngine::new(config, Personalities::builtin()).expect("config");
//! while let Some(task) = next() {
//!     let engine = engine.clone();
//!     tokio::spawn(async move {
//!         match engine.answer(task).await {
//!             Ok(answer) => { /* produce robot-responses: response / vote */ let _ = answer; }
//!             Err(failure) => { /* produce response.failed */ let _ = failure; }
//!         }
//!     });
//! }
//! # }
//! ```

pub mod breaker;
pub mod budget;
mod builtin;
pub mod keywords;
pub mod llm;
pub mod offline;
pub mod personality;
pub mod prompt;
pub mod resilience;
pub mod sanitize;
pub mod seed;
pub mod task;
pub mod telemetry;
pub mod worker;

#[cfg(test)]
mod stub_server;
#[cfg(test)]
mod stub_tests;

pub use breaker::{Admission, BreakerConfig, CircuitBreaker, CircuitState};
pub use budget::{Reservation, TokenBudget};
pub use llm::{LlmClient, LlmError, LlmReply, RobotLlmConfig};
pub use personality::{
    Personalities, Personality, PersonalityError, StyleKnobs, ThinkTimeMs, Voice,
};
pub use resilience::{call_with_resilience, CallOutcome, RetryClass, RetryObserver, RetryPolicy};
pub use seed::SeededRng;
pub use task::{
    Answer, AnswerSource, Candidate, FailureKind, PastRound, RobotAnswer, RobotFailure, RobotTask,
    TaskKind,
};
pub use telemetry::{EngineStats, OfflineReason, StatsSnapshot};
pub use worker::{EngineError, RobotEngine, RobotEngineConfig, OFFLINE_MODEL};
