//! Repartition topics on the embedded broker (real rdkafka clients): two application ids
//! running the same two-stage topology get one repartition topic each, named
//! `<application.id>-<name>-repartition`, and both count correctly; an existing
//! repartition topic with the wrong partition count stops a worker at start.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use topology::{
    testing, Context, EmbeddedBroker, ProcessError, Processor, ProcessorDef, StreamWorker,
    StreamsConfig, Topology, TopologyBuilder, TopologyError,
};

const WORDS: &str = "words";
const PARTITIONS: i32 = 4;
const WAIT: Duration = Duration::from_secs(60);

/// Re-keys each line (key: line id, value: a word) by its word.
struct ByWord;

impl Processor for ByWord {
    type Input = String;
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        _line: &str,
        word: String,
    ) -> Result<(), ProcessError> {
        ctx.forward("by-word", &word, &word)
    }
}

/// Counts records per key (the word), emitting the running count.
struct Count;

impl Processor for Count {
    type Input = String;
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        word: &str,
        _: String,
    ) -> Result<(), ProcessError> {
        let mut counts = ctx.store::<u64>("counts")?;
        let n = counts.get(word)?.unwrap_or(0) + 1;
        counts.put(word, &n)?;
        ctx.forward("counts", word, &n)
    }
}

/// `words` → re-key by word → repartition `by-word` → count → `counts_topic`.
fn word_count(counts_topic: &str) -> Topology {
    let mut b = TopologyBuilder::new();
    let by_word = b.repartition("by-word");
    b.add_processor(
        ProcessorDef::new("by-word", |_| ByWord)
            .input_json(WORDS, |w: String| w)
            .sink("by-word", &by_word),
    );
    b.add_processor(
        ProcessorDef::new("count", |_| Count)
            .input_json(&by_word, |w: String| w)
            .store("counts")
            .sink("counts", counts_topic),
    );
    b.build().expect("valid topology")
}

fn config(broker: &EmbeddedBroker, app: &str, dir: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new(app, &broker.bootstrap_servers())
        .worker_id(&format!("{app}-worker"))
        .state_dir(dir.join(app))
        .commit_interval(Duration::from_millis(100))
        .session_timeout(Duration::from_secs(6))
}

/// The last count of each word in `topic`, once `total` counts were emitted.
fn final_counts(broker: &EmbeddedBroker, topic: &str, total: usize) -> BTreeMap<String, u64> {
    let mut last = BTreeMap::new();
    let complete = testing::wait_until(WAIT, || {
        let records = testing::read_topic(
            &broker.bootstrap_servers(),
            topic,
            0,
            Duration::from_secs(5),
        )
        .expect("read counts");
        last = records
            .iter()
            .map(|r| (r.key_str(), r.value_str().parse::<u64>().expect("a count")))
            .collect();
        records.len() >= total
    });
    assert!(complete, "{topic}: {last:?}");
    last
}

#[test]
fn two_application_ids_get_their_own_repartition_topics_and_both_count_right() {
    common::init_tracing();
    let broker = EmbeddedBroker::start().expect("embedded broker");
    let bootstrap = broker.bootstrap_servers();
    broker.create_topic(WORDS, PARTITIONS).unwrap();
    let apps = [("app-a", "counts-a"), ("app-b", "counts-b")];
    for (app, counts) in apps {
        broker.create_topic(counts, PARTITIONS).unwrap();
        // The embedded broker has no admin API: its internal topics are made up front, as
        // `orchestra broker` does; their names come from the application id.
        broker
            .create_internal_topics(&word_count(counts), app, PARTITIONS)
            .unwrap();
    }

    let words = ["red", "green", "blue", "cyan", "magenta", "yellow", "black"];
    let lines: Vec<(String, Vec<u8>)> = (0..210)
        .map(|i| {
            let word = words[(i * i + 3 * i) % words.len()];
            (format!("line-{i}"), serde_json::to_vec(word).unwrap())
        })
        .collect();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (_, w) in &lines {
        *expected
            .entry(serde_json::from_slice(w).unwrap())
            .or_default() += 1;
    }
    testing::produce(&bootstrap, WORDS, &lines, 1_700_000_000_000).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<_> = apps
        .iter()
        .map(|(app, counts)| {
            StreamWorker::start(word_count(counts), config(&broker, app, dir.path()))
                .expect("worker starts")
        })
        .collect();

    for (app, counts) in apps {
        assert_eq!(
            final_counts(&broker, counts, lines.len()),
            expected,
            "{app} counts every word once"
        );
        // Each application's repartition topic carries its own copy of every line, once:
        // a shared topic would hold both copies and double the counts.
        let topic = Topology::repartition_topic(app, "by-word");
        assert_eq!(topic, format!("{app}-by-word-repartition"));
        let ends = testing::end_offsets(&bootstrap, &topic).unwrap();
        assert_eq!(ends.len(), PARTITIONS as usize, "{topic}: {ends:?}");
        assert_eq!(
            ends.values().sum::<i64>(),
            lines.len() as i64,
            "{topic}: {ends:?}"
        );
    }
    for w in workers {
        w.shutdown().unwrap();
    }
}

#[test]
fn an_existing_repartition_topic_with_another_partition_count_stops_the_worker() {
    common::init_tracing();
    let broker = EmbeddedBroker::start().expect("embedded broker");
    broker.create_topic(WORDS, PARTITIONS).unwrap();
    broker.create_topic("counts", PARTITIONS).unwrap();
    let topology = word_count("counts");
    // The repartition topic made by hand (or left over from sources with another count)
    // with 2 partitions; the other internal topics as the runtime wants them.
    let skewed = Topology::repartition_topic("skewed", "by-word");
    for t in topology::internal_topics(&topology, "skewed", |_| Some(PARTITIONS)) {
        let partitions = if t.name == skewed { 2 } else { t.partitions };
        broker.create_topic(&t.name, partitions).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let err = StreamWorker::start(topology, config(&broker, "skewed", dir.path()))
        .err()
        .expect("refused");
    assert!(
        matches!(&err, TopologyError::MissingTopic { topic, .. } if *topic == skewed),
        "{err}"
    );
    assert!(
        err.to_string().contains("has 2 partitions, expected 4"),
        "{err}"
    );
}
