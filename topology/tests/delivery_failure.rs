//! An output the producer refuses (larger than `message.max.bytes`) stops the worker at
//! the next commit, before the input offsets (the group's, or those recorded in the
//! task's state) move past the record that made it: the record is processed again after
//! a restart instead of its output being lost.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use topology::{
    testing, Context, ProcessError, Processor, ProcessorDef, StreamWorker, TopologyBuilder,
    WorkerState,
};

const INPUT: &str = "sizes";
const OUTPUT: &str = "echoes";

/// Forwards, per input `n`, a value of `n` bytes.
struct Echo;

impl Processor for Echo {
    type Input = usize;

    fn process(&mut self, ctx: &mut Context<'_>, key: &str, n: usize) -> Result<(), ProcessError> {
        ctx.forward_raw("out", key, Some(vec![b'x'; n]))
    }
}

#[test]
fn an_output_the_producer_refuses_fails_the_commit_and_keeps_its_input_uncommitted() {
    let broker = broker(1);
    for t in [INPUT, OUTPUT] {
        broker.create_topic(t, 1).unwrap();
    }
    let mut b = TopologyBuilder::new();
    b.add_processor(
        ProcessorDef::new("echo", |_| Echo)
            .input_json(INPUT, |n: usize| n)
            .sink("out", OUTPUT),
    );
    let topology = b.build().unwrap();
    // Ten small outputs, one of 2 MB (the producer's limit is 1 MB), ten more.
    let big_at = 10;
    let sizes: Vec<(String, Vec<u8>)> = (0..21)
        .map(|i| {
            let n = if i == big_at { 2 << 20 } else { 10 };
            (format!("k{i}"), n.to_string().into_bytes())
        })
        .collect();
    testing::produce(
        &broker.bootstrap_servers(),
        INPUT,
        &sizes,
        1_700_000_000_000,
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let w = StreamWorker::start(topology.clone(), config(&broker, "w1", dir.path())).unwrap();
    assert!(
        testing::wait_until(WAIT, || !w.is_running()),
        "the worker kept running after its output was refused"
    );
    let err = w.wait().expect_err("the refused output stops the worker");
    assert_eq!(w.stats().state(), WorkerState::Failed);
    let msg = err.to_string();
    assert!(msg.contains(OUTPUT), "the error names the topic: {msg}");
    assert!(msg.contains("MessageSizeTooLarge"), "and the cause: {msg}");
    assert!(w.stats().processed.load(Ordering::Relaxed) > big_at as u64);

    let committed = testing::committed_offsets(&broker.bootstrap_servers(), APP, INPUT, 1).unwrap();
    let at = committed.get(&0).copied().unwrap_or(0);
    assert!(
        at <= big_at as i64,
        "input committed up to {at}, past the record whose output was refused ({big_at})"
    );
    // Everything before the refused record that was committed was produced.
    let outputs =
        testing::read_topic(&broker.bootstrap_servers(), OUTPUT, at as usize, WAIT).unwrap();
    assert!(outputs.len() >= at as usize);
    assert!(outputs
        .iter()
        .all(|o| o.value.as_ref().is_some_and(|v| v.len() == 10)));

    // A restart whose producer accepts the large output: every record from the committed
    // offset on, the refused one included, is processed again and its output delivered.
    let w = StreamWorker::start(
        topology,
        config(&broker, "w2", dir.path()).kafka("message.max.bytes", "4194304"),
    )
    .unwrap();
    assert!(
        testing::wait_until(WAIT, || {
            testing::committed_offsets(&broker.bootstrap_servers(), APP, INPUT, 1)
                .is_ok_and(|c| c.get(&0) == Some(&(sizes.len() as i64)))
        }),
        "the restarted worker did not commit every input: processed {}, failure {:?}",
        w.stats().processed.load(Ordering::Relaxed),
        w.stats().failure()
    );
    w.shutdown().unwrap();
    assert_eq!(
        w.stats().processed.load(Ordering::Relaxed),
        sizes.len() as u64 - at as u64,
        "the restart processed every record after the committed offset {at} again"
    );
    let outputs =
        testing::read_topic(&broker.bootstrap_servers(), OUTPUT, sizes.len(), WAIT).unwrap();
    let echoed: Vec<(String, usize)> = outputs
        .iter()
        .map(|o| (o.key_str(), o.value.as_ref().map_or(0, Vec::len)))
        .collect();
    assert!(
        echoed.contains(&(format!("k{big_at}"), 2 << 20)),
        "the refused record's output is there after the restart: {echoed:?}"
    );
    for (k, _) in &sizes {
        assert!(
            echoed.iter().any(|(e, _)| e == k),
            "no output for {k}: {echoed:?}"
        );
    }
}
