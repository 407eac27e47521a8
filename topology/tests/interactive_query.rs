//! Interactive queries on a real worker (embedded broker, sled stores): a query answers
//! from the store of the task that owns the key, with what the last commit applied, and
//! it answers while the stream thread is busy inside a processor — it does not wait for
//! the thread that processes records.

mod common;

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use topology::{
    testing, Context, KeyLocation, ProcessError, Processor, ProcessorDef, StreamWorker,
    TopologyBuilder,
};

const INPUT: &str = "q-input";
const WAIT: Duration = Duration::from_secs(60);

/// Stores each value under its key; on the key `stall` it tells the test it is inside
/// `process` and waits until the test lets it go.
struct Keep {
    inside: Sender<()>,
    release: Arc<Mutex<Receiver<()>>>,
}

impl Processor for Keep {
    type Input = String;
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        value: String,
    ) -> Result<(), ProcessError> {
        if key == "stall" {
            let _ = self.inside.send(());
            let _ = self
                .release
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .recv_timeout(WAIT);
        }
        ctx.store::<String>("kept")?.put(key, &value)?;
        Ok(())
    }
}

fn local(answer: KeyLocation) -> Option<String> {
    match answer {
        KeyLocation::Local(v) => v.map(|b| serde_json::from_slice(&b).expect("a string")),
        KeyLocation::Remote { task } => panic!("one worker owns every task, not {task}"),
    }
}

#[test]
fn a_query_answers_from_the_owning_store_while_the_stream_thread_is_busy() {
    common::init_tracing();
    let broker = common::broker(2);
    let bootstrap = broker.bootstrap_servers();
    broker.create_topic(INPUT, 2).unwrap();
    let (inside_tx, inside) = channel();
    let (release, release_rx) = channel();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let mut b = TopologyBuilder::new();
    b.add_processor(
        ProcessorDef::new("keep", move |_| Keep {
            inside: inside_tx.clone(),
            release: release_rx.clone(),
        })
        .input_json(INPUT, |v: String| v)
        .store("kept"),
    );
    let topology = b.build().expect("valid topology");
    broker
        .create_internal_topics(&topology, common::APP, 2)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(&broker, "query-worker", dir.path());
    let worker = Arc::new(StreamWorker::start(topology, config).expect("worker starts"));

    let json = |s: &str| serde_json::to_vec(s).unwrap();
    testing::produce(
        &bootstrap,
        INPUT,
        &[("a".into(), json("1")), ("b".into(), json("2"))],
        1_700_000_000_000,
    )
    .unwrap();
    let committed = testing::wait_until(WAIT, || {
        worker.query("kept", "a").ok().and_then(local).as_deref() == Some("1")
            && worker.query("kept", "b").ok().and_then(local).as_deref() == Some("2")
    });
    assert!(committed, "both keys answered from the store");
    assert_eq!(local(worker.query("kept", "nope").unwrap()), None);

    // The stream thread stops inside `process`; a query still answers.
    testing::produce(
        &bootstrap,
        INPUT,
        &[("stall".into(), json("x"))],
        1_700_000_000_001,
    )
    .unwrap();
    inside
        .recv_timeout(WAIT)
        .expect("the processor reached `stall`");
    let (answer_tx, answer) = channel();
    let w = worker.clone();
    std::thread::spawn(move || {
        let _ = answer_tx.send(w.query("kept", "a").map(local));
    });
    let answered = answer.recv_timeout(Duration::from_secs(10));
    release.send(()).unwrap();
    let answered = answered.expect("the query answered while the stream thread was busy");
    assert_eq!(answered.expect("query"), Some("1".to_string()));
    let stored = testing::wait_until(WAIT, || {
        worker
            .query("kept", "stall")
            .ok()
            .and_then(local)
            .as_deref()
            == Some("x")
    });
    assert!(stored, "the stalled record was processed once released");
    Arc::try_unwrap(worker)
        .ok()
        .expect("the only handle")
        .shutdown()
        .unwrap();
}
