//! The OpenAI-compatible chat-completions client (async-openai).
//!
//! ```no_run
//! use std::time::Duration;
//! use processors::robots::{LlmClient, RobotLlmConfig};
//!
//! # async fn demo() -> Result<(), processors::robots::LlmError> {
//! let config = RobotLlmConfig {
//!     base_url: "http://127.0.0.1:11434/v1".into(),
//!     api_key: Some("sk-local".into()),
//!     model: "llama3.2".into(),
//!     timeout: Duration::from_secs(10),
//!     ..RobotLlmConfig::default()
//! };
//! let client = LlmClient::new(&config)?;
//! let reply = client.complete("You are a pirate.", "Say hi.", 0.9).await?;
//! println!("{} ({} tokens)", reply.text, reply.tokens);
//! # Ok(()) }
//! ```
//!
//! One [`LlmClient::complete`] call is one async-openai `chat().create()`; the caller
//! ([`RobotEngine`](super::RobotEngine)) applies timeout, retries, breaker and budget
//! (see [`resilience`](super::resilience) for how async-openai's built-in retry layer
//! fits in).

use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest,
};
use async_openai::Client;

use super::prompt::estimate_tokens;
use super::resilience::{RetryClass, RetryPolicy};
use super::task::FailureKind;

/// Connection and cost settings of the model endpoint.
#[derive(Clone, PartialEq)]
pub struct RobotLlmConfig {
    /// OpenAI-compatible base URL including the version path (`https://api.openai.com/v1`).
    pub base_url: String,
    /// API key; `None` (or empty) runs every robot on the offline engine.
    pub api_key: Option<String>,
    /// Model name.
    pub model: String,
    /// Per-request timeout (bounds one attempt, including async-openai's inner retries).
    pub timeout: Duration,
    /// Retries after the first attempt (our policy).
    pub max_retries: u32,
    /// Backoff base delay.
    pub backoff_base: Duration,
    /// Backoff cap (a longer retry-after hint ends the retries).
    pub backoff_max: Duration,
    /// Completion token cap per request (`max_completion_tokens`).
    pub max_tokens: u32,
    /// Price in USD per 1,000 tokens (prompt + completion), for the cost metric.
    pub price_per_1k_tokens: f64,
}

impl std::fmt::Debug for RobotLlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotLlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("max_tokens", &self.max_tokens)
            .field("price_per_1k_tokens", &self.price_per_1k_tokens)
            .finish()
    }
}

impl Default for RobotLlmConfig {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        RobotLlmConfig {
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            model: "gpt-4o-mini".into(),
            timeout: Duration::from_secs(20),
            max_retries: retry.max_retries,
            backoff_base: retry.backoff_base,
            backoff_max: retry.backoff_max,
            max_tokens: 120,
            price_per_1k_tokens: 0.0006,
        }
    }
}

impl RobotLlmConfig {
    /// `true` when a non-empty key is configured.
    pub fn has_key(&self) -> bool {
        self.api_key
            .as_deref()
            .is_some_and(|k| !k.trim().is_empty())
    }

    /// The retry policy part.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
        }
    }
}

/// A model call failure, classified for retries, the breaker and `response.failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The attempt exceeded the per-request timeout.
    #[error("model request timed out after {0:?}")]
    Timeout(Duration),
    /// 429 (rate limit); `retry_after` is the server's hint when it gave one.
    #[error("rate limited (429): {message}")]
    RateLimited {
        /// Hint parsed from the error ("try again in 1.5s").
        retry_after: Option<Duration>,
        /// Server message.
        message: String,
    },
    /// 5xx or 408.
    #[error("server error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Server message (truncated).
        message: String,
    },
    /// 4xx other than 408/429, or a 429 for exhausted quota.
    #[error("request rejected {status}: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Server message (truncated).
        message: String,
    },
    /// Connection / protocol failure.
    #[error("transport error: {0}")]
    Transport(String),
    /// The body is not a chat completion.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The client could not be built or the request was invalid.
    #[error("invalid request or configuration: {0}")]
    Invalid(String),
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Parses "try again in 1.5s" / "in 250ms" / "after 2 seconds" hints.
pub fn retry_hint(message: &str) -> Option<Duration> {
    let lower = message.to_lowercase();
    for marker in [
        "try again in ",
        "retry after ",
        "retry in ",
        "try again after ",
    ] {
        let Some(pos) = lower.find(marker) else {
            continue;
        };
        let rest = &lower[pos + marker.len()..];
        let number: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let Ok(value) = number.parse::<f64>() else {
            continue;
        };
        if !value.is_finite() || value < 0.0 {
            continue;
        }
        let unit = rest[number.len()..].trim_start();
        let seconds = if unit.starts_with("ms") || unit.starts_with("millisecond") {
            value / 1000.0
        } else if unit.starts_with('m') && !unit.starts_with("ms") && unit.starts_with("min") {
            value * 60.0
        } else {
            value
        };
        return Some(Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    None
}

impl LlmError {
    /// Classifies an async-openai error.
    pub fn from_openai(error: OpenAIError) -> Self {
        match error {
            OpenAIError::ApiError(api) => {
                let status = api.status_code.as_u16();
                let message = truncate(&api.api_error.message, 300);
                let quota = api.api_error.r#type.as_deref() == Some("insufficient_quota")
                    || api.api_error.code.as_deref() == Some("insufficient_quota");
                match status {
                    429 if !quota => LlmError::RateLimited {
                        retry_after: retry_hint(&message),
                        message,
                    },
                    408 | 500..=599 => LlmError::Server { status, message },
                    _ => LlmError::Rejected { status, message },
                }
            }
            OpenAIError::Reqwest(e) => {
                if e.is_timeout() {
                    LlmError::Timeout(Duration::ZERO)
                } else {
                    LlmError::Transport(truncate(&e.to_string(), 300))
                }
            }
            OpenAIError::JSONDeserialize(e, _) => {
                LlmError::InvalidResponse(truncate(&e.to_string(), 300))
            }
            OpenAIError::InvalidArgument(m) => LlmError::Invalid(truncate(&m, 300)),
            other => LlmError::Transport(truncate(&other.to_string(), 300)),
        }
    }

    /// The failure kind reported upstream.
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            LlmError::Timeout(_) => FailureKind::Timeout,
            LlmError::RateLimited { .. } => FailureKind::RateLimited,
            LlmError::Server { .. } => FailureKind::Upstream,
            LlmError::Rejected { .. } | LlmError::Invalid(_) => FailureKind::Rejected,
            LlmError::Transport(_) => FailureKind::Transport,
            LlmError::InvalidResponse(_) => FailureKind::InvalidResponse,
        }
    }
}

impl RetryClass for LlmError {
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            LlmError::Timeout(_)
                | LlmError::RateLimited { .. }
                | LlmError::Server { .. }
                | LlmError::Transport(_)
                | LlmError::InvalidResponse(_)
        )
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn counts_for_breaker(&self) -> bool {
        match self {
            // A request-specific rejection (400/413/422) says nothing about the endpoint;
            // auth / not-found / quota problems do.
            LlmError::Rejected { status, .. } => matches!(status, 401 | 402 | 403 | 404 | 429),
            LlmError::Invalid(_) => false,
            _ => true,
        }
    }

    fn timed_out(after: Duration) -> Self {
        LlmError::Timeout(after)
    }

    fn is_timeout(&self) -> bool {
        matches!(self, LlmError::Timeout(_))
    }
}

/// A model reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmReply {
    /// Raw text of the first choice (empty when the model returned none / refused).
    pub text: String,
    /// Tokens spent (from `usage`, estimated when absent).
    pub tokens: u32,
    /// Model reported by the server (empty if none).
    pub model: String,
}

/// Chat-completions client for one endpoint/model.
#[derive(Debug, Clone)]
pub struct LlmClient {
    client: Client<OpenAIConfig>,
    model: String,
    max_tokens: u32,
}

impl LlmClient {
    /// Builds the client (no network I/O).
    pub fn new(config: &RobotLlmConfig) -> Result<Self, LlmError> {
        let key = config
            .api_key
            .as_deref()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| LlmError::Invalid("no API key configured".into()))?;
        let base = config.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(LlmError::Invalid(format!(
                "base_url must be an http(s) URL, got {base:?}"
            )));
        }
        if config.model.trim().is_empty() {
            return Err(LlmError::Invalid("empty model name".into()));
        }
        let openai = OpenAIConfig::new().with_api_base(base).with_api_key(key);
        Ok(LlmClient {
            client: Client::with_config(openai),
            model: config.model.clone(),
            max_tokens: config.max_tokens,
        })
    }

    /// Configured model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// One chat completion: `system` as the system message, `user` as the user message.
    pub async fn complete(
        &self,
        system: &str,
        user: &str,
        temperature: f32,
    ) -> Result<LlmReply, LlmError> {
        let messages = vec![
            ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                content: system.into(),
                name: None,
            }),
            ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
                content: user.into(),
                name: None,
            }),
        ];
        let request = CreateChatCompletionRequest {
            messages,
            model: self.model.clone(),
            temperature: Some(temperature.clamp(0.0, 2.0)),
            max_completion_tokens: Some(self.max_tokens),
            n: Some(1),
            ..Default::default()
        };
        let response = self
            .client
            .chat()
            .create(request)
            .await
            .map_err(LlmError::from_openai)?;
        let text = response
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .unwrap_or_default();
        let tokens = match response.usage {
            Some(usage) if usage.total_tokens > 0 => usage.total_tokens,
            _ => u32::try_from(estimate_tokens(&[system, user, &text])).unwrap_or(u32::MAX),
        };
        Ok(LlmReply {
            text,
            tokens,
            model: response.model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_hints() {
        assert_eq!(
            retry_hint("Rate limit reached. Please try again in 1.5s."),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_hint("Please try again in 250ms"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_hint("retry after 2 seconds"),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_hint("try again in 1 min"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_hint("slow down"), None);
    }

    #[test]
    fn config_debug_redacts_key() {
        let c = RobotLlmConfig {
            api_key: Some("sk-secret".into()),
            ..RobotLlmConfig::default()
        };
        assert!(!format!("{c:?}").contains("sk-secret"));
        assert!(c.has_key());
        assert!(!RobotLlmConfig::default().has_key());
    }

    #[test]
    fn client_validates_config() {
        let mut c = RobotLlmConfig::default();
        assert!(matches!(LlmClient::new(&c), Err(LlmError::Invalid(_))));
        c.api_key = Some("k".into());
        c.base_url = "ftp://x".into();
        assert!(LlmClient::new(&c).is_err());
    }
}
