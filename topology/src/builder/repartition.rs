//! Repartition topics: records one sub-topology re-keys for another travel through a topic
//! the runtime owns, named `<application.id>-<name>-repartition` as in Kafka Streams, so
//! two application ids on one cluster never share one.
//!
//! A topology is declared without an application id: [`TopologyBuilder::repartition`]
//! hands out a [`RepartitionTopic`] whose topic is the placeholder
//! `<application.id>-<name>-repartition` (`<` and `>` are not legal in Kafka topic
//! names, so a placeholder can never be taken for a real topic). The runtime substitutes
//! the application id when it starts ([`crate::StreamWorker::start`],
//! the test driver), creates the topic like a changelog (see `admin.rs`) and
//! [`Topology::describe`] shows the resolved name.
//!
//! ```
//! use topology::{Context, ProcessError, Processor, ProcessorDef, Topology, TopologyBuilder};
//!
//! struct Pass;
//! impl Processor for Pass {
//!     type Input = serde_json::Value;
//!     fn process(&mut self, ctx: &mut Context<'_>, key: &str, v: Self::Input) -> Result<(), ProcessError> {
//!         ctx.forward("out", key, &v)
//!     }
//! }
//!
//! let mut b = TopologyBuilder::new();
//! let by_user = b.repartition("by-user");
//! b.add_processor(ProcessorDef::new("rekey", |_| Pass).input_json("clicks", |v| v).sink("out", &by_user));
//! b.add_processor(ProcessorDef::new("count", |_| Pass).input_json(&by_user, |v| v).sink("out", "counts"));
//! let t = b.build().unwrap();
//! assert_eq!(t.repartition_topics("app"), vec!["app-by-user-repartition".to_string()]);
//! assert!(t.describe(Some("app")).to_text().contains("<- sources: app-by-user-repartition"));
//! assert_eq!(by_user.topic(), Topology::repartition_topic("<application.id>", "by-user"));
//! ```
//!
//! [`TopologyBuilder::repartition`]: crate::TopologyBuilder::repartition

use std::collections::{BTreeSet, HashMap};

use super::{ProcessorSpec, SubTopology, Topology};
use crate::TopologyError;

/// Stands for the application id in the topic of a [`RepartitionTopic`] until the runtime
/// resolves it.
pub const APPLICATION_ID_PLACEHOLDER: &str = "<application.id>";

/// A repartition topic declared with [`crate::TopologyBuilder::repartition`]: pass it (or a
/// reference) wherever a topic is expected, as a processor's sink and as another
/// processor's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepartitionTopic {
    name: String,
    topic: String,
}

impl RepartitionTopic {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            topic: Topology::repartition_topic(APPLICATION_ID_PLACEHOLDER, name),
        }
    }

    /// The declared name (`match-stats`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic as the topology holds it before it runs:
    /// `<application.id>-<name>-repartition`.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl AsRef<str> for RepartitionTopic {
    fn as_ref(&self) -> &str {
        &self.topic
    }
}

/// A repartition topic of a built [`Topology`]: who writes it and who reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepartitionSpec {
    /// The declared name; the topic is [`Topology::repartition_topic`] of it.
    pub name: String,
    /// The sub-topologies whose processors write it.
    pub writers: Vec<u32>,
    /// The sub-topology that reads it (one: readers of a topic share a sub-topology).
    pub reader: u32,
}

/// Whether `name` can become part of a Kafka topic name (`[a-zA-Z0-9._-]+`).
fn legal_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks the declared repartition topics against the processors and says who writes and
/// reads each. Every declared one must be written and read (Kafka Streams refuses a
/// dangling repartition topic as well); a placeholder topic nobody declared on this
/// builder (a [`RepartitionTopic`] of another builder) is refused.
pub(crate) fn specs(
    declared: &[String],
    processors: &[ProcessorSpec],
    subtopologies: &[SubTopology],
) -> Result<Vec<RepartitionSpec>, TopologyError> {
    let mut seen = BTreeSet::new();
    for name in declared {
        if !legal_name(name) {
            return Err(TopologyError::Invalid(format!(
                "repartition topic name `{name}`: use letters, digits, `.`, `_` and `-` only"
            )));
        }
        if !seen.insert(name.as_str()) {
            return Err(TopologyError::Invalid(format!(
                "repartition topic `{name}` declared twice"
            )));
        }
    }
    let placeholders: BTreeSet<String> = declared
        .iter()
        .map(|n| Topology::repartition_topic(APPLICATION_ID_PLACEHOLDER, n))
        .collect();
    let prefix = format!("{APPLICATION_ID_PLACEHOLDER}-");
    for p in processors {
        let topics = p.inputs.iter().chain(p.sinks.iter().map(|(_, t)| t));
        if let Some(t) = topics
            .filter(|t| t.starts_with(&prefix))
            .find(|t| !placeholders.contains(*t))
        {
            return Err(TopologyError::Invalid(format!(
                "processor `{}` uses `{t}`, which is not a repartition topic of this builder (declare it with `TopologyBuilder::repartition`)",
                p.name
            )));
        }
    }
    declared
        .iter()
        .map(|name| {
            let topic = Topology::repartition_topic(APPLICATION_ID_PLACEHOLDER, name);
            let reader = subtopologies
                .iter()
                .find(|s| s.topics.contains(&topic))
                .map(|s| s.id)
                .ok_or_else(|| {
                    TopologyError::Invalid(format!(
                        "repartition topic `{name}` is not the input of any processor"
                    ))
                })?;
            let writers: Vec<u32> = subtopologies
                .iter()
                .filter(|s| {
                    s.processors
                        .iter()
                        .any(|&i| processors[i].sinks.iter().any(|(_, t)| *t == topic))
                })
                .map(|s| s.id)
                .collect();
            if writers.is_empty() {
                return Err(TopologyError::Invalid(format!(
                    "repartition topic `{name}` is not the sink of any processor"
                )));
            }
            Ok(RepartitionSpec {
                name: name.clone(),
                writers,
                reader,
            })
        })
        .collect()
}

impl Topology {
    /// Repartition topic name: `<application.id>-<name>-repartition`.
    pub fn repartition_topic(application_id: &str, name: &str) -> String {
        format!("{application_id}-{name}-repartition")
    }

    /// The repartition topics of the topology (see [`crate::TopologyBuilder::repartition`]).
    pub fn repartitions(&self) -> &[RepartitionSpec] {
        &self.repartitions
    }

    /// The repartition topics' names under `application_id`, in declaration order.
    pub fn repartition_topics(&self, application_id: &str) -> Vec<String> {
        self.repartitions
            .iter()
            .map(|r| Self::repartition_topic(application_id, &r.name))
            .collect()
    }

    /// Every source and sink topic that is not a repartition topic: the topics the
    /// user creates, in declaration order.
    pub fn user_topics(&self) -> Vec<String> {
        let placeholders = self.repartition_topics(APPLICATION_ID_PLACEHOLDER);
        let mut out: Vec<String> = Vec::new();
        for t in self.source_topics().into_iter().chain(self.sink_topics()) {
            if !placeholders.contains(&t) && !self.is_resolved_repartition(&t) && !out.contains(&t)
            {
                out.push(t);
            }
        }
        out
    }

    fn is_resolved_repartition(&self, topic: &str) -> bool {
        self.resolved_for
            .as_deref()
            .is_some_and(|app| self.repartition_topics(app).iter().any(|t| t == topic))
    }

    /// The topology with every repartition topic named for `application_id`: what the
    /// runtime runs. Resolving again for the same id changes nothing; for another id it is
    /// refused (the names are already taken).
    pub(crate) fn resolve(&self, application_id: &str) -> Result<Topology, TopologyError> {
        match self.resolved_for.as_deref() {
            Some(app) if app == application_id => return Ok(self.clone()),
            Some(app) => {
                return Err(TopologyError::Invalid(format!(
                    "the topology's repartition topics are named for application id `{app}`, not `{application_id}`"
                )))
            }
            None => {}
        }
        let names = self.resolver(application_id);
        let rename = |t: &String| names.get(t).cloned().unwrap_or_else(|| t.clone());
        let mut out = self.clone();
        for p in &mut out.processors {
            p.inputs = p.inputs.iter().map(rename).collect();
            for (_, t) in &mut p.sinks {
                *t = rename(t);
            }
            p.recover_from = p.recover_from.as_ref().map(rename);
        }
        for s in &mut out.subtopologies {
            s.topics = s.topics.iter().map(rename).collect();
        }
        out.resolved_for = Some(application_id.to_string());
        Ok(out)
    }

    /// Placeholder topic → its name under `application_id`.
    pub(crate) fn resolver(&self, application_id: &str) -> HashMap<String, String> {
        self.repartitions
            .iter()
            .map(|r| {
                (
                    Self::repartition_topic(APPLICATION_ID_PLACEHOLDER, &r.name),
                    Self::repartition_topic(application_id, &r.name),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, ProcessError, Processor, ProcessorDef, TopologyBuilder};

    struct Pass;

    impl Processor for Pass {
        type Input = ();
        fn process(&mut self, _: &mut Context<'_>, _: &str, _: ()) -> Result<(), ProcessError> {
            Ok(())
        }
    }

    fn two_stages() -> Topology {
        let mut b = TopologyBuilder::new();
        let by_window = b.repartition("by-window");
        b.add_processor(
            ProcessorDef::new("rekey", |_| Pass)
                .input("events", |_| Ok(()))
                .sink("out", &by_window),
        );
        b.add_processor(
            ProcessorDef::new("aggregate", |_| Pass)
                .input(&by_window, |_| Ok(()))
                .store("windows")
                .sink("out", "aggregates"),
        );
        b.build().unwrap()
    }

    #[test]
    fn repartition_topics_are_named_for_the_application_id() {
        let t = two_stages();
        assert_eq!(
            t.repartitions(),
            &[RepartitionSpec {
                name: "by-window".into(),
                writers: vec![0],
                reader: 1,
            }]
        );
        assert_eq!(
            t.repartition_topics("app-a"),
            vec!["app-a-by-window-repartition".to_string()]
        );
        let resolved = t.resolve("app-a").unwrap();
        assert_eq!(
            resolved.source_topics(),
            vec!["events".to_string(), "app-a-by-window-repartition".into()]
        );
        assert_eq!(
            resolved.sink_topics(),
            vec![
                "app-a-by-window-repartition".to_string(),
                "aggregates".into()
            ]
        );
        assert_eq!(
            resolved.subtopology_of("app-a-by-window-repartition"),
            Some(1)
        );
        // Idempotent for the same id, refused for another.
        assert_eq!(
            resolved.resolve("app-a").unwrap().source_topics(),
            resolved.source_topics()
        );
        assert!(resolved.resolve("app-b").is_err());
        // Another application id gets its own topic.
        assert_eq!(
            t.resolve("app-b").unwrap().source_topics()[1],
            "app-b-by-window-repartition"
        );
    }

    #[test]
    fn user_topics_leave_out_repartition_topics() {
        let t = two_stages();
        let user = vec!["events".to_string(), "aggregates".into()];
        assert_eq!(t.user_topics(), user);
        assert_eq!(t.resolve("app").unwrap().user_topics(), user);
    }

    #[test]
    fn describe_shows_the_resolved_name_or_the_placeholder() {
        let t = two_stages();
        let text = t.describe(Some("app")).to_text();
        assert!(
            text.contains("-> sink out: app-by-window-repartition (repartition topic)"),
            "{text}"
        );
        assert!(
            text.contains("<- sources: app-by-window-repartition"),
            "{text}"
        );
        let text = t.describe(None).to_text();
        assert!(
            text.contains("<application.id>-by-window-repartition"),
            "{text}"
        );
        let mermaid = t.describe(Some("app")).to_mermaid();
        assert!(mermaid.contains("app-by-window-repartition"), "{mermaid}");
        assert!(!mermaid.contains("<application.id>"), "{mermaid}");
    }

    #[test]
    fn a_repartition_topic_must_be_written_and_read() {
        let mut b = TopologyBuilder::new();
        let unread = b.repartition("unread");
        b.add_processor(
            ProcessorDef::new("rekey", |_| Pass)
                .input("events", |_| Ok(()))
                .sink("out", &unread),
        );
        let err = b.build().err().expect("refused").to_string();
        assert!(
            err.contains("`unread` is not the input of any processor"),
            "{err}"
        );

        let mut b = TopologyBuilder::new();
        let unwritten = b.repartition("unwritten");
        b.add_processor(ProcessorDef::new("read", |_| Pass).input(&unwritten, |_| Ok(())));
        let err = b.build().err().expect("refused").to_string();
        assert!(
            err.contains("`unwritten` is not the sink of any processor"),
            "{err}"
        );
    }

    #[test]
    fn repartition_names_are_checked() {
        for (name, want) in [("by window", "use letters"), ("", "use letters")] {
            let mut b = TopologyBuilder::new();
            let r = b.repartition(name);
            b.add_processor(
                ProcessorDef::new("rekey", |_| Pass)
                    .input("events", |_| Ok(()))
                    .sink("out", &r),
            );
            b.add_processor(ProcessorDef::new("read", |_| Pass).input(&r, |_| Ok(())));
            let err = b.build().err().expect("refused").to_string();
            assert!(err.contains(want), "{name:?}: {err}");
        }
        let mut b = TopologyBuilder::new();
        b.repartition("twice");
        b.repartition("twice");
        let err = b.build().err().expect("refused").to_string();
        assert!(err.contains("declared twice"), "{err}");
    }

    #[test]
    fn a_repartition_topic_of_another_builder_is_refused() {
        let foreign = TopologyBuilder::new().repartition("elsewhere");
        let mut b = TopologyBuilder::new();
        b.add_processor(
            ProcessorDef::new("rekey", |_| Pass)
                .input("events", |_| Ok(()))
                .sink("out", &foreign),
        );
        let err = b.build().err().expect("refused").to_string();
        assert!(
            err.contains("not a repartition topic of this builder"),
            "{err}"
        );
    }
}
