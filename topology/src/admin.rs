//! Topics: checking sources (co-partitioning) and creating the internal topics the runtime
//! owns — changelogs (`cleanup.policy=compact`), repartition topics (`delete`) and the DLQ.
//!
//! A repartition topic gets the partition count Kafka Streams gives it: that of the
//! sub-topology reading it when that one also reads user topics (they are co-partitioned),
//! else the largest count among the sub-topologies writing it.
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

use crate::builder::repartition::APPLICATION_ID_PLACEHOLDER;
use crate::builder::Topology;
use crate::config::StreamsConfig;
use crate::TopologyError;

/// A topic the runtime owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    pub name: String,
    pub partitions: i32,
    pub config: Vec<(String, String)>,
    pub kind: InternalTopicKind,
}

/// What an internal topic is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalTopicKind {
    /// A store's changelog: partition `p` holds task `p`'s store.
    Changelog,
    /// Records between sub-topologies (see [`crate::TopologyBuilder::repartition`]).
    Repartition,
    /// The dead-letter topic (any partition count does).
    DeadLetter,
}

impl InternalTopicKind {
    /// Whether an existing topic with another partition count is an error: a changelog's
    /// or repartition topic's partitions are the tasks', so another count would put keys
    /// where no task (or the wrong one) looks for them.
    pub fn partitions_must_match(self) -> bool {
        !matches!(self, Self::DeadLetter)
    }
}

/// Kafka Streams' repartition topic settings, but for retention: it keeps everything
/// (`retention.ms=-1`) and deletes what its tasks committed past; this runtime does not
/// purge yet, so records expire after a day instead.
fn repartition_config() -> Vec<(String, String)> {
    vec![
        ("cleanup.policy".into(), "delete".into()),
        ("retention.ms".into(), (24u64 * 3600 * 1000).to_string()),
        ("segment.bytes".into(), (50u64 * 1024 * 1024).to_string()),
        ("message.timestamp.type".into(), "CreateTime".into()),
    ]
}

/// Changelog topics (one per logged store, partitions of its sub-topology), repartition
/// topics (partitions of the sub-topology reading them) and the DLQ. `partitions_of`
/// gives a sub-topology's partition count; topics of a sub-topology it has none for are
/// left out.
///
/// ```
/// # use topology::{Context, ProcessError, Processor, ProcessorDef, TopologyBuilder};
/// # struct Pass;
/// # impl Processor for Pass {
/// #     type Input = ();
/// #     fn process(&mut self, _: &mut Context<'_>, _: &str, _: ()) -> Result<(), ProcessError> { Ok(()) }
/// # }
/// let mut b = TopologyBuilder::new();
/// let by_user = b.repartition("by-user");
/// b.add_processor(ProcessorDef::new("rekey", |_| Pass).input("clicks", |_| Ok(())).sink("out", &by_user));
/// b.add_processor(ProcessorDef::new("count", |_| Pass).input(&by_user, |_| Ok(())).store("counts"));
/// let topics = topology::internal_topics(&b.build().unwrap(), "app", |_| Some(4));
/// let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
/// assert!(names.contains(&"app-by-user-repartition"));
/// assert!(names.contains(&"app-counts-changelog"));
/// ```
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
                kind: InternalTopicKind::Changelog,
            });
        }
    }
    for r in topology.repartitions() {
        let Some(p) = partitions_of(r.reader) else {
            continue;
        };
        out.push(InternalTopic {
            name: Topology::repartition_topic(application_id, &r.name),
            partitions: p,
            config: repartition_config(),
            kind: InternalTopicKind::Repartition,
        });
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
        kind: InternalTopicKind::DeadLetter,
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

/// Checks every user source topic exists and co-partitioned topics agree (`counts`:
/// partition counts that include the source topics); returns the partition count of each
/// sub-topology. `topology` is resolved (see [`Topology::resolve`]): its repartition
/// topics may not exist yet, their counts follow from their writers (module docs).
pub(crate) fn check_sources(
    counts: &HashMap<String, Option<i32>>,
    topology: &Topology,
) -> Result<HashMap<u32, i32>, TopologyError> {
    let app = topology
        .resolved_for
        .as_deref()
        .unwrap_or(APPLICATION_ID_PLACEHOLDER);
    let repartition = topology.repartition_topics(app);
    let mut out = HashMap::new();
    for sub in topology.subtopologies() {
        let mut seen: Vec<(String, i32)> = Vec::new();
        for t in sub.topics.iter().filter(|t| !repartition.contains(t)) {
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
        let Some(&(_, first)) = seen.first() else {
            continue; // reads repartition topics only: counted below
        };
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
        out.insert(sub.id, first);
    }
    // The sub-topologies reading repartition topics only, from their writers' counts; a
    // chain of repartitions resolves one link per round.
    loop {
        let mut progress = false;
        for sub in topology.subtopologies() {
            if out.contains_key(&sub.id) {
                continue;
            }
            let writers: Vec<Option<i32>> = topology
                .repartitions()
                .iter()
                .filter(|r| r.reader == sub.id)
                .flat_map(|r| r.writers.iter().map(|w| out.get(w).copied()))
                .collect();
            if let Some(n) = writers.iter().copied().collect::<Option<Vec<i32>>>() {
                out.insert(sub.id, n.into_iter().max().unwrap_or(1));
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    if let Some(sub) = topology
        .subtopologies()
        .iter()
        .find(|s| !out.contains_key(&s.id))
    {
        return Err(TopologyError::Invalid(format!(
            "sub-topology {} reads only repartition topics written by itself or by others in a cycle: their partition count cannot be derived",
            sub.id
        )));
    }
    for sub in topology.subtopologies() {
        let first = out[&sub.id];
        // A processor recovering from its sink reads the task's partition of it: the
        // sink must be partitioned like the task's input.
        for (_, sink) in topology.recovered_sinks(sub.id) {
            // A repartition topic may not exist yet: it will have its reader's count.
            let planned = repartition
                .iter()
                .position(|t| *t == sink)
                .and_then(|i| out.get(&topology.repartitions()[i].reader).copied());
            match planned.or_else(|| counts.get(&sink).copied().flatten()) {
                Some(n) if n == first => {}
                Some(n) => {
                    return Err(TopologyError::CoPartitioning {
                        subtopology: sub.id,
                        details: format!(
                            "{sink}={n} (recovered sink), {}={first}",
                            sub.topics[0]
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
            Some(n) if n != t.partitions && t.kind.partitions_must_match() => {
                let why = match t.kind {
                    InternalTopicKind::Repartition => {
                        "the partition count of the sub-topologies writing it; did their source topics change? Stop every worker of the application, let the topic drain or accept losing its records, delete it and restart: the runtime recreates it"
                    }
                    _ => "that of the sub-topology owning the store",
                };
                return Err(TopologyError::MissingTopic {
                    topic: t.name.clone(),
                    reason: format!("has {n} partitions, expected {} ({why})", t.partitions),
                });
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

    /// `events` → rekey → repartition `by-window` → aggregate (with a store).
    fn two_stages() -> Topology {
        let mut b = TopologyBuilder::new();
        let by_window = b.repartition("by-window");
        b.add_processor(
            ProcessorDef::new("rekey", |_| Fold)
                .input("events", |_| Ok(()))
                .sink("out", &by_window),
        );
        b.add_processor(
            ProcessorDef::new("aggregate", |_| Fold)
                .input(&by_window, |_| Ok(()))
                .store("windows")
                .sink("out", "aggregates"),
        );
        b.build().unwrap()
    }

    #[test]
    fn a_repartition_topic_is_created_with_its_writers_partition_count() {
        let t = two_stages().resolve("app").unwrap();
        // The repartition topic does not exist yet: its reader takes the writer's count.
        let counts = counts(&[("events", Some(6)), ("app-by-window-repartition", None)]);
        let subs = check_sources(&counts, &t).unwrap();
        assert_eq!((subs[&0], subs[&1]), (6, 6));
        let internal = internal_topics(&t, "app", |s| subs.get(&s).copied());
        let rep = internal
            .iter()
            .find(|i| i.name == "app-by-window-repartition")
            .expect("repartition topic");
        assert_eq!(rep.partitions, 6);
        assert_eq!(rep.kind, InternalTopicKind::Repartition);
        assert!(rep
            .config
            .contains(&("cleanup.policy".into(), "delete".into())));
        let changelog = internal
            .iter()
            .find(|i| i.name == "app-windows-changelog")
            .expect("changelog of the aggregate's store");
        assert_eq!(changelog.partitions, 6);
        // The same from the topology as declared (`orchestra broker`, the embedded tests).
        assert_eq!(
            internal_topics(&two_stages(), "app", |s| subs.get(&s).copied()),
            internal
        );
    }

    #[test]
    fn a_repartition_topic_takes_the_largest_count_of_its_writers() {
        let mut b = TopologyBuilder::new();
        let merged = b.repartition("merged");
        for (name, input) in [("left", "small"), ("right", "large")] {
            b.add_processor(
                ProcessorDef::new(name, |_| Fold)
                    .input(input, |_| Ok(()))
                    .sink("out", &merged),
            );
        }
        b.add_processor(ProcessorDef::new("read", |_| Fold).input(&merged, |_| Ok(())));
        let t = b.build().unwrap().resolve("app").unwrap();
        let subs = check_sources(&counts(&[("small", Some(2)), ("large", Some(8))]), &t).unwrap();
        assert_eq!(subs[&t.repartitions()[0].reader], 8);
    }

    #[test]
    fn a_repartition_topic_read_with_user_topics_is_co_partitioned_with_them() {
        let mut b = TopologyBuilder::new();
        let rekeyed = b.repartition("rekeyed");
        b.add_processor(
            ProcessorDef::new("rekey", |_| Fold)
                .input("orders", |_| Ok(()))
                .sink("out", &rekeyed),
        );
        b.add_processor(
            ProcessorDef::new("join", |_| Fold)
                .input(&rekeyed, |_| Ok(()))
                .input("customers", |_| Ok(())),
        );
        let t = b.build().unwrap().resolve("app").unwrap();
        let subs =
            check_sources(&counts(&[("orders", Some(12)), ("customers", Some(3))]), &t).unwrap();
        assert_eq!(subs[&t.repartitions()[0].reader], 3);
    }

    #[test]
    fn a_repartition_topic_in_a_cycle_is_refused() {
        let mut b = TopologyBuilder::new();
        let lp = b.repartition("loop");
        b.add_processor(
            ProcessorDef::new("spin", |_| Fold)
                .input(&lp, |_| Ok(()))
                .sink("out", &lp),
        );
        let t = b.build().unwrap().resolve("app").unwrap();
        let err = check_sources(&counts(&[]), &t).unwrap_err().to_string();
        assert!(err.contains("cannot be derived"), "{err}");
    }

    #[test]
    fn an_existing_repartition_topic_must_have_the_planned_partition_count() {
        let t = two_stages();
        let internal = internal_topics(&t, "app", |_| Some(4));
        let mut existing: HashMap<String, Option<i32>> = internal
            .iter()
            .map(|i| (i.name.clone(), Some(i.partitions)))
            .collect();
        // Nothing is missing, so no broker is asked: a client that never connects will do.
        use rdkafka::consumer::Consumer as _;
        let client: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .create()
            .unwrap();
        let config = StreamsConfig::new("app", "127.0.0.1:1");
        ensure_internal(client.client(), &config, &internal, &existing).unwrap();
        existing.insert("app-by-window-repartition".into(), Some(8));
        let err = ensure_internal(client.client(), &config, &internal, &existing)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("app-by-window-repartition")
                && err.contains("has 8 partitions, expected 4"),
            "{err}"
        );
        // The DLQ may have any count.
        existing.insert("app-by-window-repartition".into(), Some(4));
        existing.insert("app-dlq".into(), Some(1));
        ensure_internal(client.client(), &config, &internal, &existing).unwrap();
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
