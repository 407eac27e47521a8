//! Process gauges that are sums of parts, each part stated by one owner (a worker's tasks,
//! a worker's restorer) and derived from its state every time it is stated.
//!
//! One process can run several workers (the demo does), and a worker's tasks come and go
//! with rebalances, so a gauge set directly by whoever last touched it would show one
//! worker's value, or a revoked task's. Here an owner states its *whole* contribution at
//! once ([`GaugeParts::publish`]); a series it no longer mentions loses its part, and
//! dropping the owner withdraws everything it stated. Each series is set to the sum of
//! its current parts.
//!
//! The `metrics` facade cannot remove a series, so a series whose last part was withdrawn
//! (a partition that moved to another process) reads 0 — never a value of a task this
//! process no longer runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

/// One gauge series: its name and its labels (kept sorted by label name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Series {
    name: &'static str,
    labels: Vec<(&'static str, String)>,
}

impl Series {
    /// The series of gauge `name` without labels.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            labels: Vec::new(),
        }
    }

    /// This series with label `key` set to `value`.
    pub fn label(mut self, key: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        match self.labels.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.labels[i].1 = value,
            Err(i) => self.labels.insert(i, (key, value)),
        }
        self
    }

    fn set(&self, value: f64) {
        let labels: Vec<metrics::Label> = self
            .labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, v.clone()))
            .collect();
        metrics::gauge!(self.name, labels).set(value);
    }
}

/// Every owner's parts of every series, and which series each owner holds parts of.
#[derive(Default)]
struct Registry {
    parts: HashMap<Series, HashMap<u64, f64>>,
    owned: HashMap<u64, Vec<Series>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// An owner of parts of process gauges; see the module docs.
#[derive(Debug)]
pub(crate) struct GaugeParts {
    id: u64,
}

impl GaugeParts {
    /// A new owner, holding no part yet.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// States this owner's whole contribution: its part of each series in `parts` (parts
    /// of the same series add up). Every series it held a part of and that `parts` does
    /// not mention loses that part.
    pub fn publish(&self, parts: impl IntoIterator<Item = (Series, f64)>) {
        let mut mine: HashMap<Series, f64> = HashMap::new();
        for (series, value) in parts {
            *mine.entry(series).or_default() += value;
        }
        // The lock is held while the gauges are set, so the last value set for a series
        // is the sum of its latest parts whatever the order of concurrent publishers.
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        let before = reg.owned.remove(&self.id).unwrap_or_default();
        for series in &before {
            if let Some(owners) = reg.parts.get_mut(series) {
                owners.remove(&self.id);
            }
        }
        for (series, value) in &mine {
            reg.parts
                .entry(series.clone())
                .or_default()
                .insert(self.id, *value);
        }
        for series in before.iter().chain(mine.keys()) {
            let sum = reg
                .parts
                .get(series)
                .map_or(0.0, |owners| owners.values().sum());
            series.set(sum);
            if reg.parts.get(series).is_some_and(HashMap::is_empty) {
                reg.parts.remove(series);
            }
        }
        if !mine.is_empty() {
            reg.owned.insert(self.id, mine.into_keys().collect());
        }
    }
}

impl Drop for GaugeParts {
    fn drop(&mut self) {
        self.publish([]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn a_series_is_the_sum_of_its_owners_parts_and_a_withdrawn_part_leaves_it() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let lag = |p: i32| Series::new("test_parts_lag").label("partition", p.to_string());
            let a = GaugeParts::new();
            let b = GaugeParts::new();
            a.publish([(lag(0), 5.0), (lag(1), 7.0)]);
            b.publish([(lag(1), 3.0)]);
            let text = handle.render();
            assert_eq!(value(&text, "test_parts_lag{partition=\"0\"}"), Some(5.0));
            assert_eq!(value(&text, "test_parts_lag{partition=\"1\"}"), Some(10.0));
            // `a` no longer owns partition 1 (revoked): only its partition 0 part stays.
            a.publish([(lag(0), 4.0)]);
            let text = handle.render();
            assert_eq!(value(&text, "test_parts_lag{partition=\"0\"}"), Some(4.0));
            assert_eq!(value(&text, "test_parts_lag{partition=\"1\"}"), Some(3.0));
            drop(a);
            drop(b);
            let text = handle.render();
            assert_eq!(value(&text, "test_parts_lag{partition=\"0\"}"), Some(0.0));
            assert_eq!(value(&text, "test_parts_lag{partition=\"1\"}"), Some(0.0));
        });
    }
}
