//! `describe()`: the topology graph as text and as a Mermaid diagram.

use std::fmt::Write;

use crate::builder::repartition::APPLICATION_ID_PLACEHOLDER;
use crate::builder::Topology;

/// A rendered-on-demand description of a topology.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TopologyDescription {
    pub subtopologies: Vec<SubTopologyDescription>,
    /// The repartition topics (internal, created by the runtime), as named in the
    /// sources and sinks.
    pub repartition_topics: Vec<String>,
}

/// One sub-topology.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubTopologyDescription {
    pub id: u32,
    pub sources: Vec<String>,
    pub processors: Vec<ProcessorDescription>,
}

/// One processor with its edges.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessorDescription {
    pub name: String,
    pub inputs: Vec<String>,
    /// (store, changelog topic or `None` when unlogged)
    pub stores: Vec<(String, Option<String>)>,
    /// (sink name, topic)
    pub sinks: Vec<(String, String)>,
}

impl Topology {
    /// Describes the graph; `application_id` names changelog and repartition topics (a
    /// placeholder when `None`). A topology the runtime resolved keeps its own id.
    pub fn describe(&self, application_id: Option<&str>) -> TopologyDescription {
        let app = self
            .resolved_for
            .as_deref()
            .or(application_id)
            .unwrap_or(APPLICATION_ID_PLACEHOLDER);
        let names = self.resolver(app);
        let topic = |t: &String| names.get(t).cloned().unwrap_or_else(|| t.clone());
        TopologyDescription {
            repartition_topics: self.repartition_topics(app),
            subtopologies: self
                .subtopologies
                .iter()
                .map(|s| SubTopologyDescription {
                    id: s.id,
                    sources: s.topics.iter().map(topic).collect(),
                    processors: s
                        .processors
                        .iter()
                        .map(|&i| {
                            let p = &self.processors[i];
                            ProcessorDescription {
                                name: p.name.clone(),
                                inputs: p.inputs.iter().map(topic).collect(),
                                stores: p
                                    .stores
                                    .iter()
                                    .map(|st| {
                                        (
                                            st.name.clone(),
                                            st.changelog
                                                .then(|| Topology::changelog_topic(app, &st.name)),
                                        )
                                    })
                                    .collect(),
                                sinks: p
                                    .sinks
                                    .iter()
                                    .map(|(name, t)| (name.clone(), topic(t)))
                                    .collect(),
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn node_id(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{clean}")
}

impl TopologyDescription {
    /// Plain text, one line per element, in the order of the declaration.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Topology ({} sub-topologies)",
            self.subtopologies.len()
        );
        for s in &self.subtopologies {
            let _ = writeln!(
                out,
                "  Sub-topology {} (co-partitioned sources: {})",
                s.id,
                s.sources.join(", ")
            );
            for p in &s.processors {
                let _ = writeln!(out, "    Processor: {}", p.name);
                let _ = writeln!(out, "      <- sources: {}", p.inputs.join(", "));
                for (store, changelog) in &p.stores {
                    match changelog {
                        Some(c) => {
                            let _ = writeln!(out, "      store: {store} (changelog: {c})");
                        }
                        None => {
                            let _ = writeln!(out, "      store: {store} (no changelog)");
                        }
                    }
                }
                for (name, topic) in &p.sinks {
                    let internal = if self.repartition_topics.contains(topic) {
                        " (repartition topic)"
                    } else {
                        ""
                    };
                    let _ = writeln!(out, "      -> sink {name}: {topic}{internal}");
                }
            }
        }
        out
    }

    /// A Mermaid `flowchart`: topics as parallelograms, processors as boxes, stores as
    /// cylinders, changelog topics dashed.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        let mut topics: Vec<String> = Vec::new();
        let mut topic = |out: &mut String, t: &str| {
            if !topics.iter().any(|x| x == t) {
                topics.push(t.to_string());
                let _ = writeln!(out, "  {}[/\"{t}\"/]", node_id("t", t));
            }
        };
        for s in &self.subtopologies {
            let _ = writeln!(out, "  subgraph sub{}[\"sub-topology {}\"]", s.id, s.id);
            for p in &s.processors {
                let _ = writeln!(out, "    {}[\"{}\"]", node_id("p", &p.name), p.name);
                for (store, _) in &p.stores {
                    let _ = writeln!(out, "    {}[(\"{store}\")]", node_id("s", store));
                }
            }
            let _ = writeln!(out, "  end");
        }
        for s in &self.subtopologies {
            for p in &s.processors {
                let pid = node_id("p", &p.name);
                for t in &p.inputs {
                    topic(&mut out, t);
                    let _ = writeln!(out, "  {} --> {pid}", node_id("t", t));
                }
                for (store, changelog) in &p.stores {
                    let sid = node_id("s", store);
                    let _ = writeln!(out, "  {pid} --- {sid}");
                    if let Some(c) = changelog {
                        topic(&mut out, c);
                        let _ = writeln!(out, "  {sid} -.-> {}", node_id("t", c));
                    }
                }
                for (_, t) in &p.sinks {
                    topic(&mut out, t);
                    let _ = writeln!(out, "  {pid} --> {}", node_id("t", t));
                }
            }
        }
        out
    }
}
