//! What a PromQL expression refers to: the metric names it selects and the label names it
//! matches, groups by or prints. Enough of the grammar for dashboard expressions:
//! selectors with matchers, range brackets, function calls, aggregations with
//! `by`/`without`, vector matching with `on`/`ignoring`/`group_left`/`group_right`, and
//! Grafana's `$variables`.

use std::collections::BTreeSet;

/// The metric names and label names an expression refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    pub metrics: BTreeSet<String>,
    pub labels: BTreeSet<String>,
}

/// Aggregation operators: an identifier, not a metric, even when `by` follows.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "limitk",
    "limit_ratio",
];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Other keywords.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

/// The references of `expr`.
pub fn references(expr: &str) -> References {
    let chars: Vec<char> = expr.chars().collect();
    let mut refs = References::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '[' {
            // A range or subquery duration (`[$__rate_interval]`, `[5m:1m]`).
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '{' {
            i = matchers(&chars, i, &mut refs.labels);
        } else if c == '$' {
            // A Grafana variable outside a string or bracket.
            i += 1;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                i = identifier_end(&chars, i);
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            i = identifier_end(&chars, i + 1);
        } else if is_identifier_start(c) {
            let end = identifier_end(&chars, i);
            let word: String = chars[i..end].iter().collect();
            let next = next_non_space(&chars, end);
            if LABEL_LISTS.contains(&word.as_str()) {
                i = match next {
                    Some(open) if chars[open] == '(' => label_list(&chars, open, &mut refs.labels),
                    _ => end,
                };
                continue;
            }
            let call = next.is_some_and(|n| chars[n] == '(');
            if !call
                && !AGGREGATIONS.contains(&word.as_str())
                && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
            {
                refs.metrics.insert(word);
            }
            i = end;
        } else {
            i += 1;
        }
    }
    refs
}

/// The references of a Grafana variable query: `label_values(selector, label)` or an
/// expression.
pub fn variable_references(query: &str) -> References {
    let q = query.trim();
    let Some(inner) = q
        .strip_prefix("label_values(")
        .and_then(|rest| rest.strip_suffix(')'))
    else {
        return references(q);
    };
    match inner.rsplit_once(',') {
        Some((selector, label)) => {
            let mut refs = references(selector);
            refs.labels.insert(label.trim().to_string());
            refs
        }
        // `label_values(label)`: every series' values of `label`.
        None => References {
            labels: [inner.trim().to_string()].into(),
            ..References::default()
        },
    }
}

/// The labels a Grafana legend format prints (`{{instance}} {{kind}}`).
pub fn legend_labels(format: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    let mut rest = format;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        let name = rest[..end].trim();
        if !name.is_empty() {
            labels.insert(name.to_string());
        }
        rest = &rest[end + 2..];
    }
    labels
}

fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn identifier_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len()
        && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
    {
        i += 1;
    }
    i
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<usize> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    (i < chars.len()).then_some(i)
}

/// The index after the string starting at `i`.
fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() && chars[j] != quote {
        if chars[j] == '\\' && quote != '`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

/// Reads `{name op "value", ...}` from `open`; returns the index after `}`.
fn matchers(chars: &[char], open: usize, labels: &mut BTreeSet<String>) -> usize {
    let mut i = open + 1;
    while i < chars.len() && chars[i] != '}' {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i);
        } else if is_identifier_start(c) {
            let end = identifier_end(chars, i);
            labels.insert(chars[i..end].iter().collect());
            i = end;
        } else {
            i += 1;
        }
    }
    i + 1
}

/// Reads `(a, b, ...)` from `open`; returns the index after `)`.
fn label_list(chars: &[char], open: usize, labels: &mut BTreeSet<String>) -> usize {
    let mut i = open + 1;
    while i < chars.len() && chars[i] != ')' {
        if is_identifier_start(chars[i]) {
            let end = identifier_end(chars, i);
            labels.insert(chars[i..end].iter().collect());
            i = end;
        } else {
            i += 1;
        }
    }
    i + 1
}

#[test]
fn finds_names_and_labels_in_dashboard_expressions() {
    let r = references(
        "histogram_quantile(0.95, sum by (le) (rate(orchestra_x_seconds_bucket{instance=~\"$instance\", kind!=\"a,b\"}[$__rate_interval])))",
    );
    assert_eq!(r.metrics, ["orchestra_x_seconds_bucket".to_string()].into());
    assert_eq!(
        r.labels,
        ["instance", "kind", "le"].map(String::from).into()
    );
    let r = references(
        "sum by (instance) (a_total{instance=~\"$instance\"}) / on (instance) group_left (model) sum without (shard) (b) * 60",
    );
    assert_eq!(r.metrics, ["a_total", "b"].map(String::from).into());
    assert_eq!(
        r.labels,
        ["instance", "model", "shard"].map(String::from).into()
    );
    let r = variable_references("label_values({__name__=~\"orchestra_.+\"}, instance)");
    assert!(r.metrics.is_empty());
    assert_eq!(r.labels, ["__name__", "instance"].map(String::from).into());
    assert_eq!(
        legend_labels("{{instance}} {{ kind }} p99"),
        ["instance", "kind"].map(String::from).into()
    );
}
