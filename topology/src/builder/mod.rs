//! Declaring a topology: sources, processors with their stores, sinks.
//!
//! ```
//! use topology::{Context, ProcessError, Processor, ProcessorDef, TopologyBuilder};
//!
//! struct Echo;
//! impl Processor for Echo {
//!     type Input = serde_json::Value;
//!     fn process(&mut self, ctx: &mut Context<'_>, key: &str, v: Self::Input) -> Result<(), ProcessError> {
//!         ctx.forward("out", key, &v)
//!     }
//! }
//!
//! let mut b = TopologyBuilder::new();
//! b.add_processor(
//!     ProcessorDef::new("echo", |_task| Echo)
//!         .input_json("in", |v: serde_json::Value| v)
//!         .store("seen")
//!         .sink("out", "out-topic"),
//! );
//! let topology = b.build().unwrap();
//! assert_eq!(topology.source_topics(), vec!["in".to_string()]);
//! println!("{}", topology.describe(Some("app")).to_text());
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::node::{Decoder, Node, TypedNode};
use crate::processor::Processor;
pub(crate) mod repartition;

use self::repartition::{RepartitionSpec, RepartitionTopic};
use crate::shared_decode::SharedDecoder;
use crate::task_id::TaskId;
use crate::{DecodeError, TopologyError};

/// Prefix of the internal offsets stores; user stores may not start with it.
pub(crate) const OFFSETS_STORE_PREFIX: &str = "input-offsets-";
/// Marks a `recover_from` naming no declared sink (refused by `build`).
const UNKNOWN_SINK: &str = "\0unknown sink ";

/// Builds a task's node; the second argument is the processor's input topics as the
/// running topology names them (repartition topics resolved), in declaration order.
type Factory = Arc<dyn Fn(&TaskId, &[String]) -> Box<dyn Node> + Send + Sync>;

/// A typed processor declaration: inputs (topic + decoder), stores, sinks.
pub struct ProcessorDef<P: Processor> {
    name: String,
    make: Arc<dyn Fn(&TaskId) -> P + Send + Sync>,
    decoders: Vec<(String, Decoder<P::Input>)>,
    stores: Vec<StoreSpec>,
    sinks: Vec<(String, String)>,
    recover_from: Option<String>,
}

impl<P: Processor> ProcessorDef<P> {
    /// A processor named `name`; `make` builds one instance per task.
    pub fn new(name: &str, make: impl Fn(&TaskId) -> P + Send + Sync + 'static) -> Self {
        Self {
            name: name.to_string(),
            make: Arc::new(make),
            decoders: Vec::new(),
            stores: Vec::new(),
            sinks: Vec::new(),
            recover_from: None,
        }
    }

    /// Reads `topic` (a name or a [`RepartitionTopic`]), decoding values with `decode`.
    pub fn input(
        mut self,
        topic: impl AsRef<str>,
        decode: impl Fn(&[u8]) -> Result<P::Input, DecodeError> + Send + Sync + 'static,
    ) -> Self {
        self.decoders.push((
            topic.as_ref().to_string(),
            Arc::new(move |bytes, _| decode(bytes)),
        ));
        self
    }

    /// Reads `topic` through `decoder`, which other processors of the topology may share:
    /// a task then decodes each record once for all of them. `map` turns the shared value
    /// (and the record's bytes) into this processor's input; a decode error reaches every
    /// processor that reads the record, as with separate decoders.
    pub fn input_shared<T: Send + Sync + 'static>(
        mut self,
        topic: impl AsRef<str>,
        decoder: &SharedDecoder<T>,
        map: impl Fn(Arc<T>, &[u8]) -> Result<P::Input, DecodeError> + Send + Sync + 'static,
    ) -> Self {
        let decoder = decoder.clone();
        self.decoders.push((
            topic.as_ref().to_string(),
            Arc::new(move |bytes, cache| map(decoder.get(cache, bytes)?, bytes)),
        ));
        self
    }

    /// Reads `topic` as JSON `T` and maps it into the processor input.
    pub fn input_json<T: DeserializeOwned + 'static>(
        self,
        topic: impl AsRef<str>,
        map: impl Fn(T) -> P::Input + Send + Sync + 'static,
    ) -> Self {
        self.input(topic, move |bytes| {
            serde_json::from_slice::<T>(bytes).map(&map).map_err(|e| {
                DecodeError::new(format!(
                    "invalid JSON for {}: {e}",
                    std::any::type_name::<T>()
                ))
            })
        })
    }

    /// Declares a change-logged key-value store owned by this processor.
    pub fn store(mut self, name: &str) -> Self {
        self.stores.push(StoreSpec {
            name: name.to_string(),
            changelog: true,
        });
        self
    }

    /// Declares a store without changelog (lost on task migration; for caches only).
    pub fn store_unlogged(mut self, name: &str) -> Self {
        self.stores.push(StoreSpec {
            name: name.to_string(),
            changelog: false,
        });
        self
    }

    /// Declares a sink: `ctx.forward(name, ..)` writes to `topic` (a name or a
    /// [`RepartitionTopic`]).
    pub fn sink(mut self, name: &str, topic: impl AsRef<str>) -> Self {
        self.sinks
            .push((name.to_string(), topic.as_ref().to_string()));
        self
    }

    /// Declares that this processor's state is a fold of what it writes to sink `sink`
    /// (an event-sourced processor: decide → events → evolve), so that it never
    /// contradicts an event it already published. The runtime then
    ///
    /// * sends a commit's outputs before its changelog records under at_least_once (a
    ///   store never holds a change whose event is not in the sink), and records in the
    ///   task's state how far the sink's partition is covered;
    /// * after restore, feeds the task's partition of the sink from that position to its
    ///   end to [`Processor::recover`]: events sent before a crash whose commit never
    ///   happened are folded instead of being decided a second time, perhaps differently.
    ///
    /// The sink must be keyed like the processor's input (same partition count), so the
    /// task's partition of the sink holds the events of its keys.
    pub fn recover_from(mut self, sink: &str) -> Self {
        self.recover_from = Some(sink.to_string());
        self
    }
}

/// A declared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    pub name: String,
    pub changelog: bool,
}

/// An erased processor declaration inside a [`Topology`].
#[derive(Clone)]
pub struct ProcessorSpec {
    pub name: String,
    pub inputs: Vec<String>,
    pub stores: Vec<StoreSpec>,
    pub sinks: Vec<(String, String)>,
    /// The sink topic this processor's state is recovered from (see
    /// [`ProcessorDef::recover_from`]).
    pub recover_from: Option<String>,
    pub(crate) factory: Factory,
}

/// A group of processors that share input topics: one task per partition.
#[derive(Debug, Clone)]
pub struct SubTopology {
    pub id: u32,
    /// Source topics, all co-partitioned.
    pub topics: Vec<String>,
    /// Indexes into [`Topology::processors`].
    pub processors: Vec<usize>,
}

/// Collects declarations and builds a validated [`Topology`].
#[derive(Default)]
pub struct TopologyBuilder {
    processors: Vec<ProcessorSpec>,
    repartitions: Vec<String>,
}

impl TopologyBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a repartition topic named `name`: one processor writes records re-keyed
    /// for another sub-topology to it (as a sink), another reads it (as an input). The
    /// runtime names it `<application.id>-<name>-repartition`, creates it at start with the
    /// partition count of the sub-topologies writing it, and checks an existing one has
    /// that count; see the `repartition` module.
    ///
    /// ```
    /// let mut b = topology::TopologyBuilder::new();
    /// let by_window = b.repartition("match-stats");
    /// assert_eq!(by_window.topic(), "<application.id>-match-stats-repartition");
    /// ```
    pub fn repartition(&mut self, name: &str) -> RepartitionTopic {
        self.repartitions.push(name.to_string());
        RepartitionTopic::new(name)
    }

    /// Adds a processor declaration.
    pub fn add_processor<P: Processor>(&mut self, def: ProcessorDef<P>) -> &mut Self {
        let inputs: Vec<String> = def.decoders.iter().map(|(t, _)| t.clone()).collect();
        // Decoders by position: a task keys them by the topics the running topology
        // names, which differ from the declared ones for repartition topics.
        let decoders: Vec<Decoder<P::Input>> = def.decoders.into_iter().map(|(_, d)| d).collect();
        let make = def.make;
        let factory: Factory = Arc::new(move |task: &TaskId, topics: &[String]| {
            Box::new(TypedNode {
                processor: make(task),
                decoders: topics
                    .iter()
                    .cloned()
                    .zip(decoders.iter().cloned())
                    .collect(),
            }) as Box<dyn Node>
        });
        let recover_from = def.recover_from.map(|sink| {
            def.sinks
                .iter()
                .find(|(name, _)| *name == sink)
                .map(|(_, topic)| topic.clone())
                .unwrap_or_else(|| format!("{UNKNOWN_SINK}{sink}"))
        });
        self.processors.push(ProcessorSpec {
            name: def.name,
            inputs,
            stores: def.stores,
            sinks: def.sinks,
            recover_from,
            factory,
        });
        self
    }

    /// Validates and groups processors into sub-topologies (connected by shared inputs).
    pub fn build(self) -> Result<Topology, TopologyError> {
        let mut names = BTreeSet::new();
        let mut stores = BTreeSet::new();
        for p in &self.processors {
            if !names.insert(p.name.clone()) {
                return Err(TopologyError::Invalid(format!(
                    "duplicate processor name `{}`",
                    p.name
                )));
            }
            if p.inputs.is_empty() {
                return Err(TopologyError::Invalid(format!(
                    "processor `{}` has no input topic",
                    p.name
                )));
            }
            if let Some(sink) = p
                .recover_from
                .as_deref()
                .and_then(|t| t.strip_prefix(UNKNOWN_SINK))
            {
                return Err(TopologyError::Invalid(format!(
                    "processor `{}` recovers from sink `{sink}`, which it does not declare",
                    p.name
                )));
            }
            for s in &p.stores {
                if s.name.starts_with(OFFSETS_STORE_PREFIX) {
                    return Err(TopologyError::Invalid(format!(
                        "store name `{}` uses the reserved prefix `{OFFSETS_STORE_PREFIX}`",
                        s.name
                    )));
                }
                if !stores.insert(s.name.clone()) {
                    return Err(TopologyError::Invalid(format!(
                        "store `{}` declared twice",
                        s.name
                    )));
                }
            }
        }
        // union-find over processors sharing an input topic
        let n = self.processors.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(parent: &mut [usize], i: usize) -> usize {
            let mut r = i;
            while parent[r] != r {
                r = parent[r];
            }
            parent[i] = r;
            r
        }
        let mut owner: HashMap<&str, usize> = HashMap::new();
        for (i, p) in self.processors.iter().enumerate() {
            for t in &p.inputs {
                if let Some(&j) = owner.get(t.as_str()) {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    parent[a] = b;
                } else {
                    owner.insert(t, i);
                }
            }
        }
        let mut groups: Vec<(usize, SubTopology)> = Vec::new();
        for i in 0..n {
            let root = find(&mut parent, i);
            let idx = match groups.iter().position(|(r, _)| *r == root) {
                Some(idx) => idx,
                None => {
                    let id = groups.len() as u32;
                    groups.push((
                        root,
                        SubTopology {
                            id,
                            topics: Vec::new(),
                            processors: Vec::new(),
                        },
                    ));
                    groups.len() - 1
                }
            };
            let g = &mut groups[idx].1;
            g.processors.push(i);
            for t in &self.processors[i].inputs {
                if !g.topics.contains(t) {
                    g.topics.push(t.clone());
                }
            }
        }
        let subtopologies: Vec<SubTopology> = groups.into_iter().map(|(_, g)| g).collect();
        let repartitions =
            repartition::specs(&self.repartitions, &self.processors, &subtopologies)?;
        Ok(Topology {
            processors: self.processors,
            subtopologies,
            repartitions,
            resolved_for: None,
        })
    }
}

/// A validated topology.
#[derive(Clone)]
pub struct Topology {
    pub(crate) processors: Vec<ProcessorSpec>,
    pub(crate) subtopologies: Vec<SubTopology>,
    pub(crate) repartitions: Vec<RepartitionSpec>,
    /// The application id the repartition topics are named for (`None`: as declared,
    /// with the `<application.id>` placeholder).
    pub(crate) resolved_for: Option<String>,
}

impl Topology {
    /// Processor declarations in declaration order.
    pub fn processors(&self) -> &[ProcessorSpec] {
        &self.processors
    }

    /// Sub-topologies (one task per partition of each).
    pub fn subtopologies(&self) -> &[SubTopology] {
        &self.subtopologies
    }

    /// Every source topic, in declaration order.
    pub fn source_topics(&self) -> Vec<String> {
        self.subtopologies
            .iter()
            .flat_map(|s| s.topics.clone())
            .collect()
    }

    /// The sink topics the processors of a sub-topology recover their state from (see
    /// [`ProcessorDef::recover_from`]), with the processor's index in the sub-topology.
    pub(crate) fn recovered_sinks(&self, subtopology: u32) -> Vec<(usize, String)> {
        self.subtopologies
            .iter()
            .filter(|s| s.id == subtopology)
            .flat_map(|s| s.processors.iter().enumerate())
            .filter_map(|(slot, &i)| self.processors[i].recover_from.clone().map(|t| (slot, t)))
            .collect()
    }

    /// Every sink topic.
    pub fn sink_topics(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.processors {
            for (_, t) in &p.sinks {
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
        }
        out
    }

    /// The sub-topology reading `topic`.
    pub fn subtopology_of(&self, topic: &str) -> Option<u32> {
        self.subtopologies
            .iter()
            .find(|s| s.topics.iter().any(|t| t == topic))
            .map(|s| s.id)
    }

    /// The sub-topology reading each source topic, as a map (for per-record lookups;
    /// [`Self::subtopology_of`] scans).
    pub(crate) fn topic_index(&self) -> rustc_hash::FxHashMap<String, u32> {
        self.subtopologies
            .iter()
            .flat_map(|s| s.topics.iter().map(|t| (t.clone(), s.id)))
            .collect()
    }

    /// Stores of a sub-topology: the declared ones plus the internal input-offsets store.
    pub fn stores_of(&self, subtopology: u32) -> Vec<StoreSpec> {
        let mut out: Vec<StoreSpec> = self
            .subtopologies
            .iter()
            .filter(|s| s.id == subtopology)
            .flat_map(|s| {
                s.processors
                    .iter()
                    .flat_map(|&i| self.processors[i].stores.clone())
            })
            .collect();
        out.push(StoreSpec {
            name: Self::offsets_store(subtopology),
            changelog: true,
        });
        out
    }

    /// The internal store holding a task's next input offset per source topic. It is
    /// written in the same commit (transaction, sled batch) as the other stores, and its
    /// changelog records are sent only once the other stores' records of that commit are
    /// acknowledged, so a restored task never finds input positions beyond its state —
    /// even on brokers that drop transactional offset commits, as the embedded one does.
    pub fn offsets_store(subtopology: u32) -> String {
        format!("{OFFSETS_STORE_PREFIX}{subtopology}")
    }

    /// Changelog topic name of a store: `<application.id>-<store>-changelog`.
    pub fn changelog_topic(application_id: &str, store: &str) -> String {
        format!("{application_id}-{store}-changelog")
    }

    /// Dead-letter topic name: `<application.id>-dlq`.
    pub fn dlq_topic(application_id: &str) -> String {
        format!("{application_id}-dlq")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, ProcessError, Processor};

    struct Noop;
    impl Processor for Noop {
        type Input = serde_json::Value;
        fn process(
            &mut self,
            _: &mut Context<'_>,
            _: &str,
            _: Self::Input,
        ) -> Result<(), ProcessError> {
            Ok(())
        }
    }

    fn def(name: &str) -> ProcessorDef<Noop> {
        ProcessorDef::new(name, |_| Noop)
    }

    fn invalid(b: TopologyBuilder) -> String {
        match b.build() {
            Err(TopologyError::Invalid(why)) => why,
            Err(other) => panic!("not an Invalid error: {other}"),
            Ok(_) => panic!("built an invalid topology"),
        }
    }

    #[test]
    fn duplicate_processor_names_are_refused() {
        let mut b = TopologyBuilder::new();
        b.add_processor(def("p").input_json("a", |v| v));
        b.add_processor(def("p").input_json("b", |v| v));
        assert!(invalid(b).contains("duplicate processor name `p`"));
    }

    #[test]
    fn a_processor_without_input_is_refused() {
        let mut b = TopologyBuilder::new();
        b.add_processor(def("lonely"));
        assert!(invalid(b).contains("`lonely` has no input topic"));
    }

    #[test]
    fn a_store_declared_twice_or_with_the_reserved_prefix_is_refused() {
        let mut b = TopologyBuilder::new();
        b.add_processor(def("p").input_json("a", |v| v).store("s"));
        b.add_processor(def("q").input_json("b", |v| v).store("s"));
        assert!(invalid(b).contains("store `s` declared twice"));
        let mut b = TopologyBuilder::new();
        b.add_processor(
            def("p")
                .input_json("a", |v| v)
                .store(&Topology::offsets_store(0)),
        );
        assert!(invalid(b).contains("reserved prefix"));
    }

    #[test]
    fn recovering_from_an_undeclared_sink_is_refused() {
        let mut b = TopologyBuilder::new();
        b.add_processor(def("p").input_json("a", |v| v).recover_from("out"));
        assert!(invalid(b).contains("recovers from sink `out`"));
    }

    #[test]
    fn processors_sharing_an_input_form_one_sub_topology() {
        let mut b = TopologyBuilder::new();
        b.add_processor(def("p").input_json("a", |v| v).input_json("b", |v| v));
        b.add_processor(def("q").input_json("b", |v| v));
        b.add_processor(def("r").input_json("c", |v| v));
        let t = b.build().unwrap();
        assert_eq!(t.subtopologies().len(), 2);
        assert_eq!(t.subtopologies()[0].processors.len(), 2);
        assert_eq!(t.topic_index()["b"], 0);
        assert_eq!(t.topic_index()["c"], 1);
    }
}
