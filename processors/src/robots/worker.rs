//! [`RobotEngine`]: answers a [`RobotTask`] through the model or the offline engine.
//!
//! ```
//! use processors::robots::{Answer, AnswerSource, Personalities, RobotEngine, RobotEngineConfig, RobotTask, TaskKind};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // No API key → every answer comes from the offline engine.
//! let engine = RobotEngine::new(
//!     RobotEngineConfig { think_time_scale: 0.0, ..RobotEngineConfig::default() },
//!     Personalities::builtin(),
//! ).expect("valid config");
//! let answer = engine.answer(RobotTask {
//!     command_id: "cmd-1".into(),
//!     robot_id: "robot-0-1".into(),
//!     personality: "creative-artist".into(),
//!     match_id: "match-1".into(),
//!     round: 1,
//!     identity: "B".into(),
//!     prompt: "Describe your perfect Sunday morning".into(),
//!     kind: TaskKind::Respond,
//! }).await.expect("offline answers never fail");
//! assert_eq!(answer.source, AnswerSource::Offline);
//! assert!(matches!(answer.text_or_vote, Answer::Text(_)));
//! # }
//! ```
//!
//! Routing of one task:
//!
//! 1. no key → offline;
//! 2. match token budget cannot cover the estimate → offline;
//! 3. wait for a concurrency slot (bounded by `acquire_timeout` → `overloaded` failure);
//! 4. model call with timeout / retries / breaker; breaker open (before or after the
//!    call) → offline; attempts exhausted → [`RobotFailure`];
//! 5. reply cleaned ([`sanitize`](super::sanitize)); nothing usable / unparsable vote →
//!    offline text / vote (tokens still reported);
//! 6. a successful answer is released no earlier than the personality's think time
//!    (scaled by `think_time_scale`, capped by `max_think_time`) after receipt — except a
//!    [`TaskKind::RespondToRoom`] task: the orchestration already held its command for the
//!    think time so that it could carry the answers given meanwhile (issue 15 item 4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::breaker::{BreakerConfig, CircuitBreaker, CircuitState};
use super::budget::TokenBudget;
use super::llm::{LlmClient, LlmError, LlmReply, RobotLlmConfig};
use super::offline;
use super::personality::{Personalities, Personality};
use super::prompt::{
    estimate_tokens, parse_vote_letter, respond_message, system_prompt, vote_message,
};
use super::resilience::{call_with_resilience, CallOutcome, RetryObserver};
use super::sanitize::{clean_robot_output, MAX_HUMAN_CHARS, MAX_ROBOT_CHARS};
use super::task::{
    Answer, AnswerSource, FailureKind, RobotAnswer, RobotFailure, RobotTask, TaskKind,
};
use super::telemetry::{self, EngineStats, InFlightGuard, OfflineReason, StatsSnapshot};

/// Model name reported for offline answers.
pub const OFFLINE_MODEL: &str = "offline";

/// Engine settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotEngineConfig {
    /// Model endpoint; without a key the engine is offline-only.
    pub llm: RobotLlmConfig,
    /// Model calls in flight at most (a tokio semaphore).
    pub max_concurrency: usize,
    /// Longest wait for a concurrency slot before failing with `overloaded`.
    pub acquire_timeout: Duration,
    /// Multiplier of the personalities' think times (0 disables them, e.g. in tests).
    pub think_time_scale: f64,
    /// Upper bound of one think time.
    pub max_think_time: Duration,
    /// Circuit breaker.
    pub breaker: BreakerConfig,
    /// Tokens per match (0 = unlimited); beyond it the match's robots go offline.
    pub match_token_budget: u64,
    /// Cap of each untrusted text (prompt, candidate answer) sent to the model.
    pub max_human_chars: usize,
    /// Cap of a robot's answer.
    pub max_answer_chars: usize,
}

impl Default for RobotEngineConfig {
    fn default() -> Self {
        RobotEngineConfig {
            llm: RobotLlmConfig::default(),
            max_concurrency: 32,
            acquire_timeout: Duration::from_secs(30),
            think_time_scale: 1.0,
            max_think_time: Duration::from_secs(15),
            breaker: BreakerConfig::default(),
            match_token_budget: 20_000,
            max_human_chars: MAX_HUMAN_CHARS,
            max_answer_chars: MAX_ROBOT_CHARS,
        }
    }
}

/// Invalid engine configuration.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A setting is out of range.
    #[error("invalid robot engine configuration: {0}")]
    InvalidConfig(String),
    /// The model client could not be built.
    #[error("cannot build model client: {0}")]
    Client(#[from] LlmError),
}

struct EngineInner {
    config: RobotEngineConfig,
    personalities: Personalities,
    llm: Option<LlmClient>,
    breaker: CircuitBreaker,
    budget: TokenBudget,
    slots: Semaphore,
    stats: EngineStats,
}

/// The robot worker core: cheap to clone (shared state), `answer` is `Send`, so the
/// Kafka loop can spawn one task per command.
#[derive(Clone)]
pub struct RobotEngine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for RobotEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotEngine")
            .field("online", &self.is_online())
            .field("circuit", &self.circuit_state())
            .field("stats", &self.stats())
            .finish()
    }
}

impl RetryObserver for EngineStats {
    fn on_retry(&self, retry: u32, delay: Duration) {
        tracing::debug!(retry, ?delay, "retrying model request");
        EngineStats::bump(&self.retries, 1);
        metrics::counter!(crate::metrics::ROBOT_RETRIES).increment(1);
    }

    fn on_timeout(&self) {
        EngineStats::bump(&self.timeouts, 1);
    }

    fn on_attempt(&self) {
        EngineStats::bump(&self.llm_requests, 1);
    }
}

/// What the model path produced, before timing / metrics.
enum Produced {
    Answer {
        answer: Answer,
        source: AnswerSource,
        model: String,
        tokens: u32,
    },
    Failure(FailureKind, String),
}

impl RobotEngine {
    /// Builds an engine. The model is used only when `config.llm` has a key.
    pub fn new(
        config: RobotEngineConfig,
        personalities: Personalities,
    ) -> Result<Self, EngineError> {
        if config.max_concurrency == 0 {
            return Err(EngineError::InvalidConfig(
                "max_concurrency must be > 0".into(),
            ));
        }
        if config.llm.timeout.is_zero() || config.acquire_timeout.is_zero() {
            return Err(EngineError::InvalidConfig("timeouts must be > 0".into()));
        }
        if !config.think_time_scale.is_finite() || config.think_time_scale < 0.0 {
            return Err(EngineError::InvalidConfig(
                "think_time_scale must be >= 0".into(),
            ));
        }
        if config.max_answer_chars < 20 || config.max_human_chars < 20 {
            return Err(EngineError::InvalidConfig(
                "character caps must be >= 20".into(),
            ));
        }
        let llm = if config.llm.has_key() {
            Some(LlmClient::new(&config.llm)?)
        } else {
            tracing::info!("no model API key configured: robots use the offline engine");
            None
        };
        telemetry::register(&config.llm.model);
        let inner = EngineInner {
            breaker: CircuitBreaker::new(config.breaker),
            budget: TokenBudget::new(config.match_token_budget),
            slots: Semaphore::new(config.max_concurrency.min(Semaphore::MAX_PERMITS)),
            stats: EngineStats::default(),
            llm,
            personalities,
            config,
        };
        Ok(RobotEngine {
            inner: Arc::new(inner),
        })
    }

    /// `true` when a model is configured (answers may still go offline).
    pub fn is_online(&self) -> bool {
        self.inner.llm.is_some()
    }

    /// Circuit-breaker state.
    pub fn circuit_state(&self) -> CircuitState {
        self.inner.breaker.state()
    }

    /// Counters since start.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Tokens charged to a match so far.
    pub fn match_tokens_used(&self, match_id: &str) -> u64 {
        self.inner.budget.used(match_id)
    }

    /// Forgets a finished match's token budget.
    pub fn forget_match(&self, match_id: &str) {
        self.inner.budget.forget(match_id);
    }

    /// The configured personalities.
    pub fn personalities(&self) -> &Personalities {
        &self.inner.personalities
    }

    /// Answers one task. Never hangs: every wait is bounded (slot wait, per-request
    /// timeout × attempts, backoff caps, think-time cap).
    pub async fn answer(&self, task: RobotTask) -> Result<RobotAnswer, RobotFailure> {
        let started = Instant::now();
        let _in_flight = InFlightGuard::enter();
        let inner = &self.inner;
        let personality = match inner.personalities.get(&task.personality) {
            Some(p) => p,
            None => {
                tracing::warn!(personality = %task.personality, "unknown personality, using the default voice");
                telemetry::record_error("unknown_personality");
                inner.personalities.resolve(&task.personality)
            }
        };

        if task.is_vote() && task.other_candidates().is_empty() {
            return Err(self.fail(
                &task,
                FailureKind::InvalidTask,
                "vote without candidates other than the robot itself".into(),
            ));
        }

        let produced = self.produce(&task, personality).await;
        let (answer, source, model, tokens) = match produced {
            Produced::Answer {
                answer,
                source,
                model,
                tokens,
            } => (answer, source, model, tokens),
            Produced::Failure(kind, reason) => return Err(self.fail(&task, kind, reason)),
        };

        let think = self.think_time(personality, &task);
        tokio::time::sleep_until((started + think).into()).await;

        let elapsed = started.elapsed();
        metrics::histogram!(
            crate::metrics::ROBOT_RESPONSE,
            "source" => source.as_str(),
            "personality" => personality.name.clone()
        )
        .record(elapsed.as_secs_f64());
        Ok(RobotAnswer {
            command_id: task.command_id,
            text_or_vote: answer,
            model,
            latency_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            tokens,
            source,
        })
    }

    fn think_time(&self, personality: &Personality, task: &RobotTask) -> Duration {
        let scale = self.inner.config.think_time_scale;
        if scale <= 0.0 || matches!(task.kind, TaskKind::RespondToRoom { .. }) {
            return Duration::ZERO;
        }
        let ms = offline::think_time_ms(personality, task) as f64 * scale;
        Duration::from_secs_f64((ms / 1000.0).min(86_400.0)).min(self.inner.config.max_think_time)
    }

    fn fail(&self, task: &RobotTask, kind: FailureKind, reason: String) -> RobotFailure {
        tracing::warn!(command_id = %task.command_id, %kind, %reason, "robot command failed");
        EngineStats::bump(&self.inner.stats.failures, 1);
        telemetry::record_error(kind.as_str());
        RobotFailure {
            command_id: task.command_id.clone(),
            reason,
            kind,
        }
    }

    fn offline(
        &self,
        personality: &Personality,
        task: &RobotTask,
        reason: OfflineReason,
        tokens: u32,
    ) -> Produced {
        self.inner.stats.offline(reason);
        match offline::answer(personality, task) {
            Some(answer) => Produced::Answer {
                answer,
                source: AnswerSource::Offline,
                model: OFFLINE_MODEL.to_string(),
                tokens,
            },
            None => Produced::Failure(
                FailureKind::InvalidTask,
                "vote without candidates other than the robot itself".into(),
            ),
        }
    }

    async fn produce(&self, task: &RobotTask, personality: &Personality) -> Produced {
        let inner = &self.inner;
        let Some(llm) = inner.llm.as_ref() else {
            return self.offline(personality, task, OfflineReason::NoKey, 0);
        };
        if inner.breaker.is_rejecting() {
            return self.offline(personality, task, OfflineReason::CircuitOpen, 0);
        }

        let system = system_prompt(personality);
        let (user, vote_order) = match &task.kind {
            TaskKind::Respond | TaskKind::RespondToRoom { .. } => (
                respond_message(task, inner.config.max_human_chars),
                Vec::new(),
            ),
            TaskKind::Vote { .. } => {
                let (message, order) = vote_message(task, inner.config.max_human_chars);
                (
                    message,
                    order.into_iter().map(|c| c.identity.clone()).collect(),
                )
            }
        };

        let estimate = estimate_tokens(&[&system, &user]) + u64::from(inner.config.llm.max_tokens);
        let Some(reservation) = inner.budget.try_reserve(&task.match_id, estimate) else {
            tracing::info!(match_id = %task.match_id, "match token budget exhausted, answering offline");
            return self.offline(personality, task, OfflineReason::Budget, 0);
        };

        let _slot =
            match tokio::time::timeout(inner.config.acquire_timeout, inner.slots.acquire()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_closed)) => {
                    return Produced::Failure(
                        FailureKind::Overloaded,
                        "robot engine is shutting down".into(),
                    )
                }
                Err(_) => {
                    return Produced::Failure(
                        FailureKind::Overloaded,
                        format!(
                            "no model slot free within {:?}",
                            inner.config.acquire_timeout
                        ),
                    )
                }
            };

        let policy = inner.config.llm.retry_policy();
        let temperature = personality.style.temperature;
        let (system_ref, user_ref) = (&system, &user);
        let outcome: CallOutcome<LlmReply, LlmError> = call_with_resilience(
            &policy,
            inner.config.llm.timeout,
            &inner.breaker,
            &task.command_id,
            &inner.stats,
            move |_attempt| llm.complete(system_ref, user_ref, temperature),
        )
        .await;

        let reply = match outcome {
            CallOutcome::Success(reply) => reply,
            CallOutcome::CircuitOpen(_) => {
                return self.offline(personality, task, OfflineReason::CircuitOpen, 0);
            }
            CallOutcome::Failed(error) => {
                if inner.breaker.state() == CircuitState::Open {
                    return self.offline(personality, task, OfflineReason::CircuitOpen, 0);
                }
                return Produced::Failure(error.failure_kind(), error.to_string());
            }
        };

        reservation.settle(u64::from(reply.tokens));
        EngineStats::bump(&inner.stats.tokens, u64::from(reply.tokens));
        telemetry::record_tokens(
            llm.model(),
            reply.tokens,
            inner.config.llm.price_per_1k_tokens,
        );
        let model = if reply.model.trim().is_empty() {
            llm.model().to_string()
        } else {
            reply.model.clone()
        };

        let answer = match &task.kind {
            TaskKind::Respond | TaskKind::RespondToRoom { .. } => {
                match clean_robot_output(&reply.text, inner.config.max_answer_chars) {
                    Some(text) => Answer::Text(text),
                    None => {
                        telemetry::record_error("unusable_reply");
                        return self.offline(
                            personality,
                            task,
                            OfflineReason::UnusableReply,
                            reply.tokens,
                        );
                    }
                }
            }
            TaskKind::Vote { .. } => {
                match parse_vote_letter(&reply.text, vote_order.len())
                    .and_then(|i| vote_order.get(i))
                {
                    Some(identity) => Answer::Vote(identity.clone()),
                    None => {
                        telemetry::record_error("unparsable_vote");
                        return self.offline(
                            personality,
                            task,
                            OfflineReason::UnparsableVote,
                            reply.tokens,
                        );
                    }
                }
            }
        };
        EngineStats::bump(&inner.stats.llm_answers, 1);
        Produced::Answer {
            answer,
            source: AnswerSource::Llm,
            model,
            tokens: reply.tokens,
        }
    }
}
