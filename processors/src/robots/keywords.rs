//! Keyword and topic extraction from a round prompt (for on-topic offline answers).
//!
//! ```
//! use processors::robots::offline::{prompt_keywords, topic_phrases};
//!
//! assert_eq!(prompt_keywords("What's your favorite memory?"), vec!["favorite", "memory"]);
//! assert_eq!(topic_phrases("What would you do with a million dollars?")[0], "million dollars");
//! ```

#[rustfmt::skip]
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "anything", "are",
    "as", "at", "be", "because", "been", "before", "being", "best", "but", "by", "can", "could",
    "did", "describe", "do", "does", "doing", "done", "during", "each", "else", "ever", "every",
    "explain", "few", "for", "from", "get", "give", "go", "got", "had", "has", "have", "having",
    "he", "her", "here", "him", "his", "how", "i", "if", "im", "in", "into", "is", "it", "its",
    "just", "kind", "least", "let", "like", "list", "make", "many", "me", "might", "more",
    "most", "much", "must", "my", "name", "never", "no", "not", "now", "of", "off", "on",
    "once", "one", "only", "or", "other", "our", "out", "over", "own", "please", "rather",
    "really", "say", "share", "she", "should", "so", "some", "someone", "something", "sort",
    "such", "tell", "than", "that", "the", "their", "them", "then", "there", "these", "they",
    "thing", "things", "think", "this", "those", "through", "time", "to", "too", "under",
    "until", "up", "us", "very", "was", "way", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "whose", "why", "will", "with", "would", "yes", "yet", "you",
    "your", "yours", "yourself", "youd", "youre", "youve", "youll", "ive", "id", "whats",
    "thats", "dont", "cant", "wont", "isnt", "arent", "wouldnt", "couldnt", "shouldnt",
    "theres", "lets", "want", "wish", "think", "know", "use", "used", "new", "see", "feel",
    "take", "put", "keep", "choose", "pick", "prefer", "recently", "today", "ago", "day",
];

/// Words that usually open a noun phrase; a content run right after one is preferred.
#[rustfmt::skip]
const DETERMINERS: &[&str] = &[
    "the", "a", "an", "your", "my", "our", "their", "his", "her", "any", "this", "that",
    "which", "what", "whats", "some", "favorite", "favourite", "best", "worst", "first", "last",
];

/// One word of the prompt: its normalised form and whether it carries content.
#[derive(Debug, Clone)]
struct Token {
    word: String,
    content: bool,
}

fn tokenize(prompt: &str) -> Vec<Token> {
    prompt
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’' || c == '-'))
        .filter_map(|raw| {
            let trimmed = raw.trim_matches(|c: char| c == '\'' || c == '’' || c == '-');
            if trimmed.is_empty() {
                return None;
            }
            let lower = trimmed.to_lowercase();
            let lower = lower
                .strip_suffix("'s")
                .or_else(|| lower.strip_suffix("’s"))
                .unwrap_or(&lower)
                .to_string();
            let bare: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
            let content = bare.chars().count() >= 3
                && !STOPWORDS.contains(&bare.as_str())
                && !bare.chars().all(|c| c.is_ascii_digit());
            Some(Token {
                word: lower,
                content,
            })
        })
        .collect()
}

/// Content keywords of a prompt, lower-cased, in order, deduplicated.
///
/// ```
/// use processors::robots::offline::prompt_keywords;
/// assert_eq!(prompt_keywords("What's your favorite memory?"), vec!["favorite", "memory"]);
/// ```
pub fn prompt_keywords(prompt: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tokenize(prompt).into_iter().filter(|t| t.content) {
        if !out.contains(&t.word) {
            out.push(t.word);
        }
    }
    out
}

/// Topic phrases an answer can talk about (each contains a prompt keyword), best first:
/// the most noun-phrase-like run of content words (≤ 3 words), then its head word.
/// Falls back to `"this question"` for prompts without content words.
pub fn topic_phrases(prompt: &str) -> Vec<String> {
    let tokens = tokenize(prompt);
    // (start, end) of maximal runs of content tokens.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].content {
            let start = i;
            while i < tokens.len() && tokens[i].content {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    let best = runs.iter().enumerate().max_by_key(|(order, (start, end))| {
        let after_determiner = *start > 0
            && DETERMINERS
                .iter()
                .any(|d| tokens[start - 1].word.replace(['\'', '’'], "") == *d);
        let len = (end - start).min(3);
        (usize::from(after_determiner) * 4 + len, *order)
    });
    let Some((_, &(start, end))) = best else {
        return vec!["this question".to_string()];
    };
    let start = start.max(end.saturating_sub(3));
    let words: Vec<&str> = tokens[start..end].iter().map(|t| t.word.as_str()).collect();
    let mut phrases = vec![words.join(" ")];
    if let Some(head) = words.last() {
        if words.len() > 1 {
            phrases.push((*head).to_string());
        }
    }
    phrases
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn keywords_and_topics() {
        assert_eq!(
            topic_phrases("What's your favorite memory?"),
            vec!["favorite memory", "memory"]
        );
        assert_eq!(
            topic_phrases("What would you do with a million dollars?"),
            vec!["million dollars", "dollars"]
        );
        assert_eq!(
            topic_phrases("What is the best advice you've ever received?")[0],
            "advice"
        );
        assert_eq!(
            topic_phrases("Describe your perfect Sunday morning")[0],
            "perfect sunday morning"
        );
        assert_eq!(
            topic_phrases("If you could have any superpower, what would it be?")[0],
            "superpower"
        );
        assert_eq!(topic_phrases("What is it?"), vec!["this question"]);
        assert_eq!(
            prompt_keywords("Which season do you love most, and why?"),
            vec!["season", "love"]
        );
    }
}
