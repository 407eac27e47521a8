//! Topic specs shared by `orchestra topics create` and the docs: `deploy/topics.json`,
//! compiled into the binary so it works from any directory; `topics create --file` reads
//! another spec of the same format instead.
//!
//! ```
//! let specs = orchestra::topics::specs().unwrap();
//! assert!(specs.iter().any(|t| t.name == "match-events"));
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use serde::Deserialize;

/// The spec file, as shipped.
pub const TOPICS_JSON: &str = include_str!("../deploy/topics.json");

/// One topic of `deploy/topics.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// Replicas per partition; absent: the replication factor `topics create` is given
    /// (by default -1, the broker's `default.replication.factor`).
    #[serde(default)]
    pub replication_factor: Option<i32>,
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
}

/// Parses the shipped spec file.
pub fn specs() -> Result<Vec<TopicSpec>> {
    parse_specs(TOPICS_JSON).context("deploy/topics.json (compiled in) is not valid")
}

/// Reads a spec file of the format of `deploy/topics.json`.
pub fn specs_from_file(path: &std::path::Path) -> Result<Vec<TopicSpec>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the topic spec {}", path.display()))?;
    parse_specs(&text).with_context(|| format!("the topic spec {} is not valid", path.display()))
}

fn parse_specs(text: &str) -> Result<Vec<TopicSpec>> {
    let specs: Vec<TopicSpec> = serde_json::from_str(text)?;
    for t in &specs {
        if t.name.is_empty() || t.partitions < 1 {
            bail!(
                "topic `{}`: a name and at least one partition are required",
                t.name
            );
        }
        if let Some(r) = t.replication_factor {
            if r == 0 || r < -1 {
                bail!("topic `{}`: replicationFactor {r} (use -1 for the broker's default, or 1 and up)", t.name);
            }
        }
    }
    Ok(specs)
}

/// Creates every topic on the embedded broker with `partitions` each (replication 1).
pub fn create_embedded(broker: &topology::EmbeddedBroker, partitions: i32) -> Result<()> {
    for t in specs()? {
        broker.create_topic(&t.name, partitions)?;
    }
    Ok(())
}

/// Creates every missing topic of `specs` through the admin API; existing topics are left
/// alone. `replication_factor` applies to the specs that name none (-1: the broker's
/// default); `partitions` overrides every spec's count. Returns `(created, existing)` names.
pub fn create(
    client: &ClientConfig,
    specs: &[TopicSpec],
    replication_factor: i32,
    partitions: Option<i32>,
) -> Result<(Vec<String>, Vec<String>)> {
    let admin: AdminClient<DefaultClientContext> = client.create().context("admin client")?;
    let new: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|t| {
            let mut nt = NewTopic::new(
                &t.name,
                partitions.unwrap_or(t.partitions),
                TopicReplication::Fixed(t.replication_factor.unwrap_or(replication_factor)),
            );
            for (k, v) in &t.config {
                nt = nt.set(k, v);
            }
            nt
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures::executor::block_on(admin.create_topics(new.iter(), &opts))
        .context("CreateTopics")?;
    let (mut created, mut existing) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => existing.push(name),
            Err((name, code)) => bail!("creating topic {name}: {code:?}"),
        }
    }
    Ok((created, existing))
}

/// Fails with the first of `topics` whose log no longer starts at offset 0 (records were
/// dropped; see `topology::truncation`), naming the topic, the partition and what to do.
/// Topics the cluster does not have are skipped.
pub fn check_kept_whole(client: &ClientConfig, topics: &[String]) -> Result<()> {
    let consumer: BaseConsumer = client.create().context("client")?;
    let bootstrap = client.get("bootstrap.servers").unwrap_or("?").to_string();
    for t in topics {
        match topology::truncation::check_topic_whole(&consumer, t) {
            Ok(()) => {}
            Err(e @ topology::TopologyError::Truncated { .. }) => return Err(e.into()),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "reading the offsets of {t} on {bootstrap}: is the broker running and reachable (--bootstrap-servers)?"
                )))
            }
        }
    }
    Ok(())
}

/// `(name, partitions)` of every topic the cluster has.
pub fn list(client: &ClientConfig) -> Result<Vec<(String, usize)>> {
    let consumer: BaseConsumer = client.create().context("client")?;
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .context("metadata")?;
    let mut out: Vec<(String, usize)> = md
        .topics()
        .iter()
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect();
    out.sort();
    Ok(out)
}
