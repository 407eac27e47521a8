//! Topics: checking sources (co-partitioning) and creating the internal topics the runtime
//! owns — changelogs (`cleanup.policy=compact`) and the DLQ.
//!
//! Where the broker has an admin API the runtime creates missing internal topics; where it
//! has none (the embedded broker) it checks they exist with the right partition count and
//! fails with a clear error if not.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;

use crate::builder::Topology;
use crate::config::StreamsConfig;
use crate::TopologyError;

/// A topic the runtime owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    pub name: String,
    pub partitions: i32,
    pub config: Vec<(String, String)>,
}

/// Changelog topics (one per logged store, partitions of its sub-topology) and the DLQ.
pub fn internal_topics(
    topology: &Topology,
    application_id: &str,
    partitions_of: impl Fn(u32) -> Option<i32>,
) -> Vec<InternalTopic> {
    let mut out = Vec::new();
    let mut max_partitions = 1;
    for sub in topology.subtopologies() {
        let Some(p) = partitions_of(sub.id) else {
            continue;
        };
        max_partitions = max_partitions.max(p);
        for store in topology
            .stores_of(sub.id)
            .into_iter()
            .filter(|s| s.changelog)
        {
            out.push(InternalTopic {
                name: Topology::changelog_topic(application_id, &store.name),
                partitions: p,
                config: vec![("cleanup.policy".into(), "compact".into())],
            });
        }
    }
    out.push(InternalTopic {
        name: Topology::dlq_topic(application_id),
        partitions: max_partitions,
        config: vec![
            ("cleanup.policy".into(), "delete".into()),
            (
                "retention.ms".into(),
                (30u64 * 24 * 3600 * 1000).to_string(),
            ),
        ],
    });
    out
}

/// Partition counts of `topics` (`None` for a topic the broker does not know).
pub(crate) fn partition_counts<C: ClientContext>(
    client: &Client<C>,
    topics: &[String],
) -> Result<HashMap<String, Option<i32>>, TopologyError> {
    let mut out = HashMap::new();
    for t in topics {
        let md = client
            .fetch_metadata(Some(t), Duration::from_secs(10))
            .map_err(|e| TopologyError::kafka(format!("metadata of {t}"), e))?;
        out.insert(t.clone(), partition_count(&md, t));
    }
    Ok(out)
}

/// Partitions of `topic` in `md` (`None` when it is absent, failed or has none).
fn partition_count(md: &Metadata, topic: &str) -> Option<i32> {
    md.topics()
        .iter()
        .find(|mt| mt.name() == topic)
        .filter(|mt| mt.error().is_none() && !mt.partitions().is_empty())
        .map(|mt| mt.partitions().len() as i32)
}

/// Partition counts of `topics` from one metadata request (`None` for a topic the broker
/// does not know). A client's second request waits for its connection to the broker the
/// first one named (about 50 ms on the embedded broker), so start-up asks once for all.
pub(crate) fn partition_counts_at_once<C: ClientContext>(
    client: &Client<C>,
    topics: &[String],
) -> Result<HashMap<String, Option<i32>>, TopologyError> {
    let md = client
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| TopologyError::kafka("cluster metadata", e))?;
    Ok(topics
        .iter()
        .map(|t| (t.clone(), partition_count(&md, t)))
        .collect())
}

/// Checks every source topic exists and co-partitioned topics agree (`counts`: partition
/// counts that include the source topics); returns the partition count of each
/// sub-topology.
pub(crate) fn check_sources(
    counts: &HashMap<String, Option<i32>>,
    topology: &Topology,
) -> Result<HashMap<u32, i32>, TopologyError> {
    let mut out = HashMap::new();
    for sub in topology.subtopologies() {
        let mut seen: Vec<(String, i32)> = Vec::new();
        for t in &sub.topics {
            match counts.get(t).copied().flatten() {
                Some(n) => seen.push((t.clone(), n)),
                None => {
                    return Err(TopologyError::MissingTopic {
                        topic: t.clone(),
                        reason: "source topic does not exist (create it first, e.g. `orchestra topics create`)".into(),
                    })
                }
            }
        }
        let first = seen[0].1;
        if seen.iter().any(|(_, n)| *n != first) {
            let details = seen
                .iter()
                .map(|(t, n)| format!("{t}={n}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(TopologyError::CoPartitioning {
                subtopology: sub.id,
                details,
            });
        }
        // A processor recovering from its sink reads the task's partition of it: the
        // sink must be partitioned like the task's input.
        for (_, sink) in topology.recovered_sinks(sub.id) {
            match counts.get(&sink).copied().flatten() {
                Some(n) if n == first => {}
                Some(n) => {
                    return Err(TopologyError::CoPartitioning {
                        subtopology: sub.id,
                        details: format!(
                            "{sink}={n} (recovered sink), {}={first}",
                            seen[0].0
                        ),
                    })
                }
                None => {
                    return Err(TopologyError::MissingTopic {
                        topic: sink,
                        reason: "a processor recovers its state from this sink topic, which does not exist (create it first, e.g. `orchestra topics create`)".into(),
                    })
                }
            }
        }
        out.insert(sub.id, first);
    }
    Ok(out)
}

/// Creates missing internal topics through the admin API (when enabled) and verifies
/// that each exists with the expected partition count.
///
/// `existing`: partition counts read at start-up, including the internal topics' (as
/// [`partition_counts_at_once`] returns them for the whole cluster).
pub(crate) fn ensure_internal<C: ClientContext>(
    client: &Client<C>,
    config: &StreamsConfig,
    topics: &[InternalTopic],
    existing: &HashMap<String, Option<i32>>,
) -> Result<(), TopologyError> {
    let missing: Vec<&InternalTopic> = topics
        .iter()
        .filter(|t| existing.get(&t.name).copied().flatten().is_none())
        .collect();
    if !missing.is_empty() && config.create_internal_topics {
        let admin: AdminClient<_> = config
            .client_config()
            .create()
            .map_err(|e| TopologyError::kafka("creating admin client", e))?;
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|t| {
                let mut nt = NewTopic::new(
                    &t.name,
                    t.partitions,
                    TopicReplication::Fixed(config.replication_factor),
                );
                for (k, v) in &t.config {
                    nt = nt.set(k, v);
                }
                nt
            })
            .collect();
        let opts = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(10)));
        match futures::executor::block_on(admin.create_topics(new.iter(), &opts)) {
            Ok(results) => {
                for r in results {
                    match r {
                        Ok(name) => tracing::info!(topic = %name, "created internal topic"),
                        Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                            tracing::debug!(topic = %name, "internal topic exists")
                        }
                        Err((name, code)) => {
                            tracing::warn!(topic = %name, ?code, "could not create internal topic")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "broker has no usable admin API; checking internal topics exist")
            }
        }
    }
    let created;
    let after = if missing.is_empty() {
        existing
    } else {
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        created = partition_counts(client, &names)?;
        &created
    };
    for t in topics {
        match after.get(&t.name).copied().flatten() {
            None => {
                return Err(TopologyError::MissingTopic {
                    topic: t.name.clone(),
                    reason: "internal topic is missing and could not be created".into(),
                })
            }
            Some(n) if n != t.partitions && t.name.ends_with("-changelog") => {
                return Err(TopologyError::MissingTopic {
                    topic: t.name.clone(),
                    reason: format!("has {n} partitions, expected {}", t.partitions),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProcessError, Processor, ProcessorDef, TopologyBuilder};

    struct Fold;

    impl Processor for Fold {
        type Input = ();
        fn process(
            &mut self,
            _: &mut crate::Context<'_>,
            _: &str,
            _: (),
        ) -> Result<(), ProcessError> {
            Ok(())
        }
    }

    fn event_sourced() -> Topology {
        let mut b = TopologyBuilder::new();
        b.add_processor(
            ProcessorDef::new("fold", |_| Fold)
                .input("commands", |_| Ok(()))
                .store("state")
                .sink("events", "events")
                .recover_from("events"),
        );
        b.build().unwrap()
    }

    fn counts(pairs: &[(&str, Option<i32>)]) -> HashMap<String, Option<i32>> {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn a_recovered_sink_must_be_partitioned_like_its_input() {
        let t = event_sourced();
        let ok = counts(&[("commands", Some(4)), ("events", Some(4))]);
        assert_eq!(check_sources(&ok, &t).unwrap().get(&0), Some(&4));
        let skewed = counts(&[("commands", Some(4)), ("events", Some(8))]);
        let err = check_sources(&skewed, &t).unwrap_err().to_string();
        assert!(err.contains("events=8 (recovered sink)"), "{err}");
        let missing = counts(&[("commands", Some(4)), ("events", None)]);
        assert!(matches!(
            check_sources(&missing, &t),
            Err(TopologyError::MissingTopic { topic, .. }) if topic == "events"
        ));
    }

    #[test]
    fn recover_from_must_name_a_declared_sink() {
        let mut b = TopologyBuilder::new();
        b.add_processor(
            ProcessorDef::new("fold", |_| Fold)
                .input("commands", |_| Ok(()))
                .sink("events", "events")
                .recover_from("evnets"),
        );
        let err = b.build().err().expect("refused").to_string();
        assert!(err.contains("recovers from sink `evnets`"), "{err}");
    }
}
