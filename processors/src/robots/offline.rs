//! The offline personality engine: deterministic, varied, on-topic answers and votes
//! without a model.
//!
//! Randomness is seeded by robot id + match id + round (+ task kind and personality)
//! through SHA-256, so a replayed command produces the same answer. Answers are built
//! from the personality's voice fragments (opener, take, detail, closer) around a topic
//! phrase extracted from the prompt, so they stay on the prompt's topic.
//!
//! ```
//! use processors::robots::{offline, Personalities, RobotTask, TaskKind};
//!
//! let book = Personalities::builtin();
//! let task = RobotTask {
//!     command_id: "c1".into(),
//!     robot_id: "robot-3".into(),
//!     personality: "skeptical-scientist".into(),
//!     match_id: "m1".into(),
//!     round: 1,
//!     identity: "B".into(),
//!     prompt: "What's your favorite memory?".into(),
//!     kind: TaskKind::Respond,
//! };
//! let text = offline::respond(book.resolve(&task.personality), &task);
//! assert!(text.to_lowercase().contains("memory"));
//! assert_eq!(text, offline::respond(book.resolve(&task.personality), &task)); // deterministic
//! ```

pub use super::keywords::{prompt_keywords, topic_phrases};
use super::personality::Personality;
use super::sanitize::cap_chars;
use super::seed::SeededRng;
use super::task::{Answer, Candidate, RobotTask, TaskKind};

/// Maximum characters of an offline answer.
pub const MAX_OFFLINE_CHARS: usize = 400;

fn rng_for(personality: &Personality, task: &RobotTask, purpose: &str) -> SeededRng {
    let round = task.round.to_string();
    SeededRng::from_parts(&[
        &task.robot_id,
        &task.match_id,
        &round,
        purpose,
        &personality.name,
    ])
}

fn capitalize_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// How the answers already given in a round read (issue 15 item 4): the offline engine
/// blends in with them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoomStyle {
    /// Most answers are written without capitals.
    pub lowercase: bool,
    /// Mean length of the answers, in characters.
    pub mean_chars: f64,
    /// Most answers end without a full stop.
    pub no_final_period: bool,
}

impl RoomStyle {
    /// The style of `others`; `None` when nobody answered yet.
    pub fn of(others: &[&Candidate]) -> Option<RoomStyle> {
        let texts: Vec<&str> = others
            .iter()
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if texts.is_empty() {
            return None;
        }
        let n = texts.len();
        let lower = texts
            .iter()
            .filter(|t| !t.chars().any(char::is_uppercase))
            .count();
        let no_period = texts.iter().filter(|t| !t.ends_with('.')).count();
        let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
        Some(RoomStyle {
            lowercase: lower * 2 > n,
            mean_chars: chars as f64 / n as f64,
            no_final_period: no_period * 2 > n,
        })
    }
}

/// Writes a 1–3 sentence answer to the task's prompt in the personality's voice; when
/// the task carries the round's earlier answers ([`RobotTask::room`]), the answer follows
/// their casing, length (short answers → one sentence, no opener) and final punctuation.
/// Without them the answer is the same as before (the random draws are unchanged).
pub fn respond(personality: &Personality, task: &RobotTask) -> String {
    let room = RoomStyle::of(&task.room());
    let text = respond_in_voice(personality, task, room);
    match room {
        Some(r) => fit_room(&text, r),
        None => text,
    }
}

/// Trims `text` towards the room's length and punctuation.
fn fit_room(text: &str, room: RoomStyle) -> String {
    let mut text = text.trim().to_string();
    // Far longer than the others: keep whole sentences up to about twice their length.
    let budget = (room.mean_chars * 2.0).max(24.0) as usize;
    if text.chars().count() > budget {
        let mut kept = String::new();
        for sentence in text.split_inclusive(['.', '!', '?']) {
            if !kept.is_empty() && kept.chars().count() + sentence.chars().count() > budget {
                break;
            }
            kept.push_str(sentence);
        }
        text = kept.trim().to_string();
    }
    if room.no_final_period && text.ends_with('.') && !text.ends_with("..") {
        text.pop();
    }
    text
}

fn respond_in_voice(
    personality: &Personality,
    task: &RobotTask,
    room: Option<RoomStyle>,
) -> String {
    let mut rng = rng_for(personality, task, "respond");
    let voice = &personality.voice;
    let style = &personality.style;

    let topics = topic_phrases(&task.prompt);
    // Mostly the full phrase; sometimes its head word or "the whole … thing".
    let roll = rng.unit();
    let topic = if roll < 0.25 && topics.len() > 1 {
        topics[1].clone()
    } else if roll > 0.8 && topics[0] != "this question" {
        format!("the whole {} thing", topics[0])
    } else {
        topics[0].clone()
    };

    // Sentence count, weighted towards more than one sentence.
    let sentences = match style.max_sentences {
        0 | 1 => 1,
        2 => {
            if rng.chance(0.2) {
                1
            } else {
                2
            }
        }
        _ => {
            let roll = rng.unit();
            if roll < 0.2 {
                1
            } else if roll < 0.65 {
                2
            } else {
                3
            }
        }
    };

    // A room of short answers gets one sentence.
    let sentences = match room {
        Some(r) if r.mean_chars < 70.0 => 1,
        _ => sentences,
    };

    let take = rng
        .pick(&voice.takes)
        .map(|t| t.replace("{topic}", &topic))
        .unwrap_or_else(|| format!("{topic} is a good one."));
    let mut first = take;
    // Single-sentence answers get an opener more often (keeps them varied).
    let opener_rate = if sentences == 1 {
        f64::from(style.opener_rate).max(0.85)
    } else {
        f64::from(style.opener_rate)
    };
    let short_room = room.is_some_and(|r| r.mean_chars < 40.0);
    if rng.chance(opener_rate) {
        if let Some(opener) = rng.pick(&voice.openers).filter(|_| !short_room) {
            let joined_capital = opener.ends_with(['?', '!', '.']);
            let rest = if joined_capital {
                capitalize_first(&first)
            } else {
                first
            };
            first = format!("{opener} {rest}");
        }
    }

    let mut parts = vec![first];
    let detail = |rng: &mut SeededRng| {
        rng.pick(&voice.details)
            .map(|d| d.replace("{topic}", &topic))
    };
    let closer = |rng: &mut SeededRng| {
        rng.pick(&voice.closers)
            .map(|c| c.replace("{topic}", &topic))
    };
    match sentences {
        1 => {}
        2 => {
            let extra = if rng.chance(0.55) {
                detail(&mut rng)
            } else {
                closer(&mut rng)
            };
            parts.extend(extra);
        }
        _ => {
            parts.extend(detail(&mut rng));
            parts.extend(closer(&mut rng));
        }
    }

    let lowercase = room.map_or(style.lowercase, |r| r.lowercase);
    let text = parts
        .iter()
        .map(|p| {
            if lowercase {
                p.to_lowercase()
            } else {
                capitalize_first(p)
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    cap_chars(&text, MAX_OFFLINE_CHARS)
}

const INFORMAL_MARKERS: &[&str] = &[
    "lol", "haha", "tbh", "idk", "omg", "ngl", "gonna", "wanna", "kinda", "dunno", "lmao", "btw",
    "imo", "ya", "yeah", "nah", "ugh", "hmm", "!!", "??", ":)", ":(", ":d", "xd", "...",
];

const POLISHED_MARKERS: &[&str] = &[
    "certainly",
    "delightful",
    "fascinating",
    "indeed",
    "moreover",
    "additionally",
    "overall",
    "truly",
    "in conclusion",
    "furthermore",
    "i would say",
    "as a ",
    "it is important",
    "cherish",
    "tapestry",
    "vibrant",
    "journey",
];

/// How human a candidate text looks (higher = more human), without noise.
pub fn human_likeness(text: &str) -> f64 {
    let trimmed = text.trim();
    let lower = trimmed.to_lowercase();
    let chars = trimmed.chars().count();
    let mut score = 0.0;
    if trimmed.chars().next().is_some_and(|c| c.is_lowercase()) {
        score += 0.8;
    }
    if chars < 60 {
        score += 0.5;
    } else if chars < 120 {
        score += 0.2;
    } else if chars > 220 {
        score -= 0.6;
    }
    if !trimmed.ends_with(['.', '!', '?']) {
        score += 0.3;
    }
    if trimmed.contains("  ") {
        score += 0.2;
    }
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .collect();
    for marker in INFORMAL_MARKERS {
        let hit = if marker.chars().all(char::is_alphanumeric) {
            words.contains(marker)
        } else {
            lower.contains(marker)
        };
        if hit {
            score += 0.6;
        }
    }
    for marker in POLISHED_MARKERS {
        if lower.contains(marker) {
            score -= 0.7;
        }
    }
    // Perfect punctuation on every sentence with capitals is a robot tell.
    let sentences: Vec<&str> = trimmed
        .split_inclusive(['.', '!', '?'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if sentences.len() >= 2
        && sentences
            .iter()
            .all(|s| s.chars().next().is_some_and(char::is_uppercase))
    {
        score -= 0.3;
    }
    score
}

/// Picks the candidate the robot believes is human: never itself; the most
/// human-looking text, with personality-dependent deterministic noise.
/// `None` when there is no other candidate.
pub fn vote(personality: &Personality, task: &RobotTask) -> Option<String> {
    let others: Vec<&Candidate> = task.other_candidates();
    let mut rng = rng_for(personality, task, "vote");
    let noise = f64::from(personality.style.vote_noise);
    others
        .into_iter()
        .map(|c| (human_likeness(&c.text) + rng.unit() * noise, c))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.identity.clone())
}

/// Offline answer for any task kind. `None` for a vote without other candidates.
pub fn answer(personality: &Personality, task: &RobotTask) -> Option<Answer> {
    match &task.kind {
        TaskKind::Respond | TaskKind::RespondToRoom { .. } => {
            Some(Answer::Text(respond(personality, task)))
        }
        TaskKind::Vote { .. } => vote(personality, task).map(Answer::Vote),
    }
}

/// Think time for the task, deterministic within the personality's range.
pub fn think_time_ms(personality: &Personality, task: &RobotTask) -> u64 {
    let mut rng = rng_for(personality, task, "think");
    rng.between(personality.think_time_ms.min, personality.think_time_ms.max)
}

#[cfg(test)]
mod tests {
    use super::super::personality::Personalities;
    use super::*;
    use crate::robots::PastRound;
    use std::collections::HashSet;

    fn task(personality: &str, robot: &str, match_id: &str, round: u32, prompt: &str) -> RobotTask {
        RobotTask {
            command_id: format!("cmd-{robot}-{match_id}-{round}"),
            robot_id: robot.into(),
            personality: personality.into(),
            match_id: match_id.into(),
            round,
            identity: "B".into(),
            prompt: prompt.into(),
            kind: TaskKind::Respond,
        }
    }

    #[test]
    fn thousand_answers_are_varied_and_on_topic() {
        let book = Personalities::builtin();
        let names: Vec<&str> = book.iter().map(|p| p.name.as_str()).collect();
        let prompt = "What's your favorite memory?";
        let keywords = prompt_keywords(prompt);
        let mut distinct = HashSet::new();
        for i in 0..1000usize {
            let name = names[i % names.len()];
            let t = task(
                name,
                &format!("robot-{}", i % 37),
                &format!("match-{}", i / 7),
                (i % 3) as u32 + 1,
                prompt,
            );
            let text = respond(book.resolve(name), &t);
            let lower = text.to_lowercase();
            assert!(
                keywords.iter().any(|k| lower.contains(k.as_str())),
                "off-topic answer: {text}"
            );
            assert!(!text.is_empty() && text.chars().count() <= MAX_OFFLINE_CHARS);
            let sentences = text
                .split_inclusive(['.', '!', '?'])
                .filter(|s| s.trim().chars().any(char::is_alphanumeric))
                .count();
            assert!(sentences <= 5, "too long: {text}");
            distinct.insert(text);
        }
        eprintln!(
            "offline engine: {} distinct answers out of 1000 for {prompt:?}",
            distinct.len()
        );
        assert!(distinct.len() > 900, "only {} distinct", distinct.len());
    }

    #[test]
    fn other_prompts_stay_on_topic() {
        let book = Personalities::builtin();
        for prompt in [
            "What would you do with a million dollars?",
            "Describe your perfect Sunday morning",
            "Pineapple on pizza: yes or no?",
            "If you could have any superpower, what would it be?",
        ] {
            let keywords = prompt_keywords(prompt);
            for (i, p) in book.iter().enumerate() {
                let t = task(&p.name, &format!("r{i}"), "m", 1, prompt);
                let text = respond(p, &t).to_lowercase();
                assert!(keywords.iter().any(|k| text.contains(k.as_str())), "{text}");
            }
        }
    }

    #[test]
    fn votes_never_pick_self_and_prefer_human_looking_text() {
        let book = Personalities::builtin();
        let candidates = vec![
            Candidate {
                identity: "A".into(),
                text: "Certainly! My favorite memory is a truly delightful journey through a vibrant tapestry of moments.".into(),
            },
            Candidate {
                identity: "B".into(),
                text: "my own answer".into(),
            },
            Candidate {
                identity: "C".into(),
                text: "idk prob the beach trip w my cousins lol".into(),
            },
        ];
        let mut c_votes = 0;
        for i in 0..200 {
            let mut t = task("skeptical-scientist", &format!("r{i}"), "m", 1, "memory?");
            t.kind = TaskKind::Vote {
                candidates: candidates.clone(),
            };
            let choice = vote(book.resolve(&t.personality), &t).expect("has candidates");
            assert_ne!(choice, "B");
            if choice == "C" {
                c_votes += 1;
            }
        }
        assert!(
            c_votes > 150,
            "human-looking text chosen only {c_votes}/200"
        );

        let mut alone = task("creative-artist", "r", "m", 1, "x");
        alone.kind = TaskKind::Vote {
            candidates: vec![Candidate {
                identity: "B".into(),
                text: "mine".into(),
            }],
        };
        assert_eq!(answer(book.resolve("creative-artist"), &alone), None);
    }

    #[test]
    fn deterministic_per_robot_match_round() {
        let book = Personalities::builtin();
        let p = book.resolve("curious-student");
        let a = respond(p, &task(&p.name, "r1", "m1", 1, "favorite food?"));
        let b = respond(p, &task(&p.name, "r1", "m1", 1, "favorite food?"));
        assert_eq!(a, b);
        let t = task(&p.name, "r1", "m1", 1, "x");
        let think = think_time_ms(p, &t);
        assert!((p.think_time_ms.min..=p.think_time_ms.max).contains(&think));
    }

    #[test]
    fn the_room_sets_casing_length_and_punctuation() {
        let all = Personalities::builtin();
        let mut changed = 0;
        for p in all.iter() {
            for round in 1..=20 {
                let mut t = task(
                    &p.name,
                    "robot-s0-x-1",
                    "m-room",
                    round,
                    "What's your favorite memory?",
                );
                let alone = respond(p, &t);
                t.kind = TaskKind::RespondToRoom {
                    others: vec![
                        Candidate {
                            identity: "A".into(),
                            text: "the beach lol".into(),
                        },
                        Candidate {
                            identity: "C".into(),
                            text: "my dog as a puppy".into(),
                        },
                        Candidate {
                            identity: "B".into(),
                            text: "MY OWN SEAT IS IGNORED.".into(),
                        },
                    ],
                    earlier: vec![],
                };
                let in_room = respond(p, &t);
                assert_eq!(in_room, in_room.to_lowercase(), "{in_room}");
                assert!(!in_room.ends_with('.'), "{in_room}");
                assert!(
                    in_room.chars().count() <= alone.chars().count().max(40),
                    "{in_room} / {alone}"
                );
                assert_eq!(respond(p, &t), in_room, "deterministic");
                changed += usize::from(in_room != alone);
            }
        }
        assert!(changed > 0);
        // An empty room leaves the answer as it was.
        let p = all.iter().next().unwrap();
        let mut t = task(
            &p.name,
            "robot-s0-x-1",
            "m-room",
            1,
            "What's your favorite memory?",
        );
        let alone = respond(p, &t);
        t.kind = TaskKind::RespondToRoom {
            others: vec![],
            earlier: vec![],
        };
        assert_eq!(respond(p, &t), alone);
    }

    #[test]
    fn before_anyone_answers_the_latest_earlier_round_sets_the_style() {
        let all = Personalities::builtin();
        let p = all.iter().next().unwrap();
        let mut t = task(
            &p.name,
            "robot-s0-x-1",
            "m-past",
            2,
            "What's your favorite memory?",
        );
        let quiet = |identity: &str, text: &str| Candidate {
            identity: identity.into(),
            text: text.into(),
        };
        let lower = vec![
            quiet("A", "the beach lol"),
            quiet("C", "my dog probably"),
            quiet("D", "snow days"),
        ];
        t.kind = TaskKind::RespondToRoom {
            others: lower.clone(),
            earlier: vec![],
        };
        let with_room = respond(p, &t);
        t.kind = TaskKind::RespondToRoom {
            others: vec![],
            earlier: vec![PastRound {
                round: 1,
                prompt: "Favorite food?".into(),
                answers: lower,
            }],
        };
        assert_eq!(t.room().len(), 3);
        assert_eq!(
            respond(p, &t),
            with_room,
            "the earlier round's style, as a room's"
        );
    }
}
