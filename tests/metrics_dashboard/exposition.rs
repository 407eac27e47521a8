//! A scrape in the Prometheus text format, read into families: each family's type, whether
//! it is described, its sample names and the label names its samples carry.

use std::collections::{BTreeMap, BTreeSet};

/// One metric family of a scrape.
#[derive(Debug, Default, Clone)]
pub struct Family {
    /// `# TYPE` (`counter`, `gauge`, `histogram`, `summary`, or empty when missing).
    pub kind: String,
    /// Whether a `# HELP` line describes it.
    pub described: bool,
    /// Names of its samples (`name`, or `name_bucket`, `name_sum`, `name_count`).
    pub samples: BTreeSet<String>,
    /// Label names on its samples (`le` and `quantile` included).
    pub labels: BTreeSet<String>,
}

/// A parsed scrape: families by name.
#[derive(Debug, Default)]
pub struct Scrape {
    pub families: BTreeMap<String, Family>,
}

impl Scrape {
    /// Parses the text format.
    pub fn parse(text: &str) -> Self {
        let mut families: BTreeMap<String, Family> = BTreeMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                families.entry(name.to_string()).or_default().described = true;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let name = parts.next().unwrap_or_default();
                families.entry(name.to_string()).or_default().kind =
                    parts.next().unwrap_or_default().to_string();
            } else if !line.starts_with('#') {
                let (sample, labels) = sample(line);
                let family = family_of(&families, &sample);
                let f = families.entry(family).or_default();
                f.samples.insert(sample);
                f.labels.extend(labels);
            }
        }
        Self { families }
    }

    /// Every sample name of the scrape.
    pub fn sample_names(&self) -> BTreeSet<&str> {
        self.families
            .values()
            .flat_map(|f| f.samples.iter().map(String::as_str))
            .collect()
    }

    /// The family a sample name belongs to.
    pub fn family_of_sample(&self, sample: &str) -> Option<&Family> {
        self.families.values().find(|f| f.samples.contains(sample))
    }
}

/// The family of sample `name`: a histogram's or summary's samples have suffixes.
fn family_of(families: &BTreeMap<String, Family>, name: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if families
                .get(base)
                .is_some_and(|f| f.kind == "histogram" || f.kind == "summary")
            {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

/// A sample line's name and label names.
fn sample(line: &str) -> (String, BTreeSet<String>) {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = line[..name_end].to_string();
    let mut labels = BTreeSet::new();
    if line[name_end..].starts_with('{') {
        let mut rest = &line[name_end + 1..];
        // `key="value",` pairs; values may hold escaped quotes, commas and braces.
        while let Some(eq) = rest.find('=') {
            let key = rest[..eq].trim().trim_start_matches(',').trim();
            if key.starts_with('}') {
                break;
            }
            labels.insert(key.to_string());
            let value = &rest[eq + 1..];
            let Some(open) = value.find('"') else { break };
            let mut j = open + 1;
            let bytes = value.as_bytes();
            while j < bytes.len() && bytes[j] != b'"' {
                if bytes[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            rest = value.get(j + 1..).unwrap_or_default();
            if rest.trim_start().starts_with('}') {
                break;
            }
        }
    }
    (name, labels)
}

#[test]
fn reads_families_types_descriptions_and_labels() {
    let text = "# HELP h_seconds A histogram\n# TYPE h_seconds histogram\n\
        h_seconds_bucket{processor=\"a,b\",le=\"0.1\"} 1\nh_seconds_bucket{processor=\"x\\\"}\",le=\"+Inf\"} 2\n\
        h_seconds_sum{processor=\"x\"} 0.3\nh_seconds_count{processor=\"x\"} 2\n\
        # TYPE g gauge\ng 4\n";
    let s = Scrape::parse(text);
    let h = &s.families["h_seconds"];
    assert!(h.described);
    assert_eq!(h.kind, "histogram");
    assert_eq!(h.labels, ["le", "processor"].map(String::from).into());
    assert_eq!(h.samples.len(), 3);
    let g = &s.families["g"];
    assert!(!g.described);
    assert!(g.labels.is_empty());
}
