//! Robot personalities, loaded from configuration.
//!
//! A personality is a name, the system prompt given to the model, a few style knobs,
//! a think-time range and the voice fragments the offline engine writes with. The
//! built-in set ([`Personalities::builtin`]) covers `curious-student`,
//! `skeptical-scientist`, `creative-artist`, `laid-back-gamer` and `wistful-traveler`;
//! adding one is a configuration change (a JSON array, merged over the built-ins):
//!
//! ```
//! use processors::robots::Personalities;
//!
//! let extra = r#"[{
//!     "name": "grumpy-chef",
//!     "system_prompt": "You are a tired line cook who has opinions about everything.",
//!     "style": { "temperature": 0.8, "max_sentences": 2 },
//!     "think_time_ms": { "min": 1500, "max": 5000 },
//!     "voice": { "takes": ["{topic}? overrated, like truffle oil."] }
//! }]"#;
//! let book = Personalities::builtin().merged_with_json(extra).unwrap();
//! assert!(book.get("grumpy-chef").is_some());
//! assert!(book.get("curious-student").is_some());
//! // Unknown names resolve to a generic fallback voice instead of failing the command.
//! assert_eq!(book.resolve("no-such-robot").name, "default");
//! ```
//!
//! Voice templates may use the placeholder `{topic}`, replaced by a keyword phrase of
//! the prompt; every `takes` template must contain it so offline answers stay on topic.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::builtin::{
    builtin_list, generic_closers, generic_details, generic_openers, generic_takes,
};

/// Errors loading personalities from configuration.
#[derive(Debug, thiserror::Error)]
pub enum PersonalityError {
    /// The configuration is not valid JSON for a list of personalities.
    #[error("invalid personality configuration: {0}")]
    Json(#[from] serde_json::Error),
    /// A personality is structurally invalid.
    #[error("invalid personality {name:?}: {reason}")]
    Invalid {
        /// Name of the offending personality.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Style knobs shared by the model prompt and the offline engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StyleKnobs {
    /// Sampling temperature sent to the model (0..=2).
    pub temperature: f32,
    /// Maximum sentences per answer (1..=3).
    pub max_sentences: u8,
    /// Write everything in lower case (offline engine; also hinted to the model).
    pub lowercase: bool,
    /// Probability (0..=1) of starting with an opener fragment.
    pub opener_rate: f32,
    /// Randomness of offline votes (0 = always the most human-looking text).
    pub vote_noise: f32,
}

impl Default for StyleKnobs {
    fn default() -> Self {
        StyleKnobs {
            temperature: 0.9,
            max_sentences: 2,
            lowercase: false,
            opener_rate: 0.5,
            vote_noise: 0.6,
        }
    }
}

/// Think-time range in milliseconds (a deterministic value in `min..=max` per task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThinkTimeMs {
    /// Lower bound.
    pub min: u64,
    /// Upper bound (inclusive).
    pub max: u64,
}

impl Default for ThinkTimeMs {
    fn default() -> Self {
        ThinkTimeMs {
            min: 1_000,
            max: 4_000,
        }
    }
}

/// Fragments the offline engine combines; missing lists fall back to a generic voice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voice {
    /// Sentence starters, prefixed to the first sentence (`"honestly,"`).
    #[serde(default = "generic_openers")]
    pub openers: Vec<String>,
    /// Main sentence; must contain `{topic}`.
    #[serde(default = "generic_takes")]
    pub takes: Vec<String>,
    /// Optional second sentence adding colour (may contain `{topic}`).
    #[serde(default = "generic_details")]
    pub details: Vec<String>,
    /// Optional last sentence (a question back, an aside).
    #[serde(default = "generic_closers")]
    pub closers: Vec<String>,
}

impl Default for Voice {
    fn default() -> Self {
        Voice {
            openers: generic_openers(),
            takes: generic_takes(),
            details: generic_details(),
            closers: generic_closers(),
        }
    }
}

/// One robot personality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Personality {
    /// Unique name (`curious-student`); robots reference it.
    pub name: String,
    /// System prompt for the model (the personality; game rules are appended by the engine).
    pub system_prompt: String,
    /// Style knobs.
    #[serde(default)]
    pub style: StyleKnobs,
    /// Think-time range.
    #[serde(default)]
    pub think_time_ms: ThinkTimeMs,
    /// Offline voice.
    #[serde(default)]
    pub voice: Voice,
}

impl Personality {
    /// Checks the invariants the engines rely on.
    pub fn validate(&self) -> Result<(), PersonalityError> {
        let invalid = |reason: &str| PersonalityError::Invalid {
            name: self.name.clone(),
            reason: reason.to_string(),
        };
        if self.name.trim().is_empty() {
            return Err(invalid("empty name"));
        }
        if self.system_prompt.trim().is_empty() {
            return Err(invalid("empty system_prompt"));
        }
        if !(0.0..=2.0).contains(&self.style.temperature) {
            return Err(invalid("style.temperature must be within 0..=2"));
        }
        if !(1..=3).contains(&self.style.max_sentences) {
            return Err(invalid("style.max_sentences must be within 1..=3"));
        }
        if !(0.0..=1.0).contains(&self.style.opener_rate) || self.style.vote_noise < 0.0 {
            return Err(invalid("style rates out of range"));
        }
        if self.think_time_ms.min > self.think_time_ms.max {
            return Err(invalid("think_time_ms.min > think_time_ms.max"));
        }
        if self.voice.takes.is_empty() {
            return Err(invalid("voice.takes is empty"));
        }
        if let Some(t) = self.voice.takes.iter().find(|t| !t.contains("{topic}")) {
            return Err(invalid(&format!(
                "voice.takes entry without {{topic}}: {t:?}"
            )));
        }
        Ok(())
    }

    /// The generic fallback personality (`"default"`).
    pub fn generic() -> Personality {
        Personality {
            name: "default".into(),
            system_prompt:
                "You are a friendly adult chatting casually with strangers in a party game.".into(),
            style: StyleKnobs::default(),
            think_time_ms: ThinkTimeMs::default(),
            voice: Voice::default(),
        }
    }
}

/// The configured set of personalities, by name.
#[derive(Debug, Clone)]
pub struct Personalities {
    list: Vec<Personality>,
    index: HashMap<String, usize>,
    fallback: Personality,
}

impl Personalities {
    /// Builds a set from a list (validated; later duplicates replace earlier entries).
    pub fn new(list: Vec<Personality>) -> Result<Self, PersonalityError> {
        let mut book = Personalities {
            list: Vec::with_capacity(list.len()),
            index: HashMap::new(),
            fallback: Personality::generic(),
        };
        for p in list {
            book.insert(p)?;
        }
        Ok(book)
    }

    /// The built-in personalities.
    pub fn builtin() -> Self {
        let mut book = Personalities {
            list: Vec::new(),
            index: HashMap::new(),
            fallback: Personality::generic(),
        };
        for p in builtin_list() {
            // Built-ins are covered by a unit test; a broken one is skipped, not fatal.
            if let Err(e) = book.insert(p) {
                tracing::error!(error = %e, "invalid built-in personality");
            }
        }
        book
    }

    /// Parses a JSON array of personalities (only those, no built-ins).
    pub fn from_json(json: &str) -> Result<Self, PersonalityError> {
        let list: Vec<Personality> = serde_json::from_str(json)?;
        Personalities::new(list)
    }

    /// This set plus the personalities of a JSON array (same name replaces).
    pub fn merged_with_json(mut self, json: &str) -> Result<Self, PersonalityError> {
        let list: Vec<Personality> = serde_json::from_str(json)?;
        for p in list {
            self.insert(p)?;
        }
        Ok(self)
    }

    /// Adds or replaces one personality.
    pub fn insert(&mut self, p: Personality) -> Result<(), PersonalityError> {
        p.validate()?;
        match self.index.get(&p.name) {
            Some(&i) => self.list[i] = p,
            None => {
                self.index.insert(p.name.clone(), self.list.len());
                self.list.push(p);
            }
        }
        Ok(())
    }

    /// Looks a personality up by name.
    pub fn get(&self, name: &str) -> Option<&Personality> {
        self.index.get(name).and_then(|&i| self.list.get(i))
    }

    /// Looks a personality up, falling back to the generic `"default"` voice.
    pub fn resolve(&self, name: &str) -> &Personality {
        self.get(name).unwrap_or(&self.fallback)
    }

    /// All personalities, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Personality> {
        self.list.iter()
    }

    /// Each personality's think-time range scaled by `scale` (capped at `max_ms`), for
    /// the orchestration pool's `PoolConfig::think_time_ms`: the pool holds a robot's
    /// answer command that long so it carries the answers given meanwhile (issue 15 item
    /// 4). Empty when `scale <= 0` (commands at round start, answers at once: tests and
    /// the fast demo).
    pub fn think_times_ms(
        &self,
        scale: f64,
        max_ms: u64,
    ) -> std::collections::BTreeMap<String, (i64, i64)> {
        if !scale.is_finite() || scale <= 0.0 {
            return Default::default();
        }
        let scaled = |ms: u64| (ms as f64 * scale).min(max_ms as f64).round() as i64;
        self.list
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    (scaled(p.think_time_ms.min), scaled(p.think_time_ms.max)),
                )
            })
            .collect()
    }

    /// Number of personalities.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// `true` when empty.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl Default for Personalities {
    fn default() -> Self {
        Personalities::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_times_for_the_pool_are_scaled_and_capped() {
        let all = Personalities::builtin();
        assert!(all.think_times_ms(0.0, 15_000).is_empty());
        let half = all.think_times_ms(0.5, 15_000);
        assert_eq!(half.len(), all.len());
        for p in all.iter() {
            let (lo, hi) = half[&p.name];
            assert_eq!(lo, (p.think_time_ms.min as f64 * 0.5).round() as i64);
            assert!(lo <= hi && hi <= 15_000);
        }
        let capped = all.think_times_ms(1_000.0, 2_000);
        assert!(capped.values().all(|&(lo, hi)| lo <= 2_000 && hi == 2_000));
    }

    #[test]
    fn builtins_are_valid_and_complete() {
        let book = Personalities::builtin();
        for name in [
            "curious-student",
            "skeptical-scientist",
            "creative-artist",
            "laid-back-gamer",
            "wistful-traveler",
        ] {
            let p = book.get(name).expect("built-in personality present");
            assert!(p.validate().is_ok(), "{name}");
        }
        assert_eq!(book.len(), 5);
        assert!(builtin_list().iter().all(|p| p.validate().is_ok()));
    }

    #[test]
    fn config_adds_and_overrides() {
        let json = r#"[
            {"name": "curious-student", "system_prompt": "You are a bored student."},
            {"name": "night-owl", "system_prompt": "You are awake at 3am.",
             "think_time_ms": {"min": 0, "max": 10}}
        ]"#;
        let book = Personalities::builtin()
            .merged_with_json(json)
            .expect("valid config");
        assert_eq!(book.len(), 6);
        assert_eq!(
            book.get("curious-student")
                .map(|p| p.system_prompt.as_str()),
            Some("You are a bored student.")
        );
        let owl = book.get("night-owl").expect("added");
        assert_eq!(owl.voice, Voice::default());
        assert_eq!(owl.think_time_ms, ThinkTimeMs { min: 0, max: 10 });
    }

    #[test]
    fn invalid_config_is_rejected() {
        assert!(matches!(
            Personalities::from_json("not json"),
            Err(PersonalityError::Json(_))
        ));
        let no_topic = r#"[{"name": "x", "system_prompt": "p", "voice": {"takes": ["hello"]}}]"#;
        assert!(matches!(
            Personalities::from_json(no_topic),
            Err(PersonalityError::Invalid { .. })
        ));
        let bad_think =
            r#"[{"name": "x", "system_prompt": "p", "think_time_ms": {"min": 5, "max": 1}}]"#;
        assert!(Personalities::from_json(bad_think).is_err());
        let unknown_field = r#"[{"name": "x", "system_prompt": "p", "colour": "red"}]"#;
        assert!(Personalities::from_json(unknown_field).is_err());
    }
}
