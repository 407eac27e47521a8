//! The prompt bank and the fallback answers, chosen deterministically.
//!
//! A match walks the bank with a per-match start and stride (stride coprime with the bank
//! size), so no prompt repeats within a match of up to 40 rounds.
//!
//! ```
//! use game::prompts::{prompt_for, PROMPTS};
//! let p1 = prompt_for("m1", 1);
//! assert_eq!(p1, prompt_for("m1", 1));
//! assert_ne!(p1.id, prompt_for("m1", 2).id);
//! assert_eq!(PROMPTS.len(), 40);
//! ```

use schemas::Identity;

use super::ids::{digest, hash_u64};

/// One prompt of the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prompt {
    /// Stable id, `p01`…`p40`.
    pub id: &'static str,
    /// Text shown to every participant.
    pub text: &'static str,
}

macro_rules! bank {
    ($($id:literal => $text:literal,)*) => {
        /// The prompt bank.
        pub const PROMPTS: [Prompt; 40] = [$(Prompt { id: $id, text: $text },)*];
    };
}

bank! {
    "p01" => "What is the most overrated breakfast food, and why?",
    "p02" => "Describe your ideal rainy Sunday in one sentence.",
    "p03" => "What small thing instantly improves your mood?",
    "p04" => "If you could rename the color blue, what would you call it?",
    "p05" => "What is a skill you wish you had learned as a child?",
    "p06" => "Which household chore is secretly the most satisfying?",
    "p07" => "What would you put in a time capsule to open in 50 years?",
    "p08" => "Describe the taste of water to someone who has never had it.",
    "p09" => "What is the best excuse for being late you have ever heard?",
    "p10" => "If animals could talk, which one would be the rudest?",
    "p11" => "What is a smell that reminds you of your childhood?",
    "p12" => "Invent a new holiday. What do people do on it?",
    "p13" => "What is the worst advice you have ever received?",
    "p14" => "What would you do with one extra hour every day?",
    "p15" => "Which fictional world would you least like to live in?",
    "p16" => "What is a song you are embarrassed to love?",
    "p17" => "Describe your morning routine as if it were an epic quest.",
    "p18" => "What is the strangest food combination you enjoy?",
    "p19" => "If you had to teach a class on anything, what would it be?",
    "p20" => "What is something everyone should try at least once?",
    "p21" => "What would your autobiography be called?",
    "p22" => "Which invention would you un-invent if you could?",
    "p23" => "What is the most useless fact you know?",
    "p24" => "Describe the perfect sandwich.",
    "p25" => "What is a word you always misspell?",
    "p26" => "If your pet could text you, what would it say?",
    "p27" => "What is the best thing about being bored?",
    "p28" => "Which season matches your personality, and why?",
    "p29" => "What would you name a boat?",
    "p30" => "What is your unpopular opinion about movies?",
    "p31" => "Describe a perfect day off in three words.",
    "p32" => "What tiny rule would you add to society?",
    "p33" => "What did you believe as a kid that turned out to be wrong?",
    "p34" => "What is the most comforting sound in the world?",
    "p35" => "If you could master one instrument overnight, which one?",
    "p36" => "What is the funniest thing that happened to you this year?",
    "p37" => "Which object in your home has the best story?",
    "p38" => "How would you spend a day without any technology?",
    "p39" => "What is a hobby you picked up and dropped quickly?",
    "p40" => "What question would you ask a robot to prove it is one?",
}

/// Strides coprime with 40.
const STRIDES: [usize; 16] = [1, 3, 7, 9, 11, 13, 17, 19, 21, 23, 27, 29, 31, 33, 37, 39];

/// The prompt of `round` (1-based) in match `match_id`.
pub fn prompt_for(match_id: &str, round: u32) -> Prompt {
    let d = digest(&[match_id.as_bytes(), b"prompts"]);
    let start = usize::from(d[0]) | (usize::from(d[1]) << 8);
    let stride = STRIDES[usize::from(d[2]) % STRIDES.len()];
    let step = round.saturating_sub(1) as usize;
    PROMPTS[(start + step * stride) % PROMPTS.len()]
}

/// Neutral answers used when a robot fails to respond.
pub const FALLBACK_RESPONSES: [&str; 8] = [
    "Honestly, I'd need a minute to think about that one.",
    "Hard to pick just one answer, but I'll go with my gut: it depends.",
    "That's a tough one. Probably something simple.",
    "I keep changing my mind on this, so I'll pass the vibe check instead.",
    "No strong opinion here, surprisingly.",
    "Ask me again tomorrow and you'll get a different answer.",
    "I'd say the obvious answer, just to keep things interesting.",
    "Something cozy. That's my answer and I'm sticking with it.",
];

/// The fallback answer for a robot seat that failed in `round`.
pub fn fallback_response(match_id: &str, round: u32, identity: Identity) -> &'static str {
    let h = hash_u64(&[
        match_id.as_bytes(),
        &round.to_le_bytes(),
        identity.as_str().as_bytes(),
        b"fallback",
    ]);
    FALLBACK_RESPONSES[(h % FALLBACK_RESPONSES.len() as u64) as usize]
}

/// A deterministic pick among `candidates` (for a robot whose vote failed).
pub fn fallback_choice(
    match_id: &str,
    round: u32,
    voter: Identity,
    candidates: &[Identity],
) -> Option<Identity> {
    if candidates.is_empty() {
        return None;
    }
    let h = hash_u64(&[
        match_id.as_bytes(),
        &round.to_le_bytes(),
        voter.as_str().as_bytes(),
        b"fallback-vote",
    ]);
    candidates
        .get((h % candidates.len() as u64) as usize)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_ids_are_unique_and_no_prompt_repeats_in_forty_rounds() {
        let ids: std::collections::BTreeSet<_> = PROMPTS.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), PROMPTS.len());
        for m in ["a", "b", "match-7", ""] {
            let used: std::collections::BTreeSet<_> =
                (1..=40).map(|r| prompt_for(m, r).id).collect();
            assert_eq!(used.len(), 40, "match {m}");
        }
    }
}
