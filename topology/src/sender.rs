//! The worker's output sender (at_least_once): a thread that hands the stream thread's
//! output records to the producer.
//!
//! librdkafka's produce call copies the record, runs the partitioner, looks the topic up,
//! takes the partition queue's lock and wakes the broker thread: about a fifth of the
//! stream thread's instructions in the runtime benchmark. The stream thread instead
//! appends records to a batch and hands over whole batches, so processing and producing
//! run on two cores. Records keep their order: one queue, one sender.
//!
//! A batch is handed over when it is full, and whenever the stream thread is about to
//! wait for input (see `stream_worker::run_loop`), so an output never waits for more
//! input to arrive. [`Sender::drain`] is the commit's barrier: it returns once every
//! record handed over so far is in the producer, whose deliveries the commit then awaits. A failed
//! send is kept and fails that commit, so input offsets are never committed past an
//! output that was not produced. The exactly_once path does not use the sender: its
//! records go into the transaction from the stream thread at commit.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::output::{self, OutProducer};
use crate::record::OutRecord;
use crate::TopologyError;

/// Records per handed-over batch.
const BATCH: usize = 256;
/// Batches queued before the stream thread waits for the sender (backpressure).
const QUEUE: usize = 64;

enum Msg {
    Batch(Vec<OutRecord>),
    /// Answered once every earlier batch is in the producer.
    Barrier(SyncSender<()>),
}

/// See the module docs.
pub(crate) struct Sender {
    tx: Option<SyncSender<Msg>>,
    batch: Vec<OutRecord>,
    failed: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Sender {
    /// Starts the sender thread for `producer`.
    pub fn start(producer: Arc<OutProducer>, name: &str) -> Result<Self, TopologyError> {
        let (tx, rx) = sync_channel(QUEUE);
        let failed = Arc::new(Mutex::new(None));
        let thread = {
            let failed = failed.clone();
            std::thread::Builder::new()
                .name(format!("sender-{name}"))
                .spawn(move || run(&producer, &rx, &failed))
                .map_err(|e| TopologyError::Config(format!("spawning the output sender: {e}")))?
        };
        Ok(Self {
            tx: Some(tx),
            batch: Vec::with_capacity(BATCH),
            failed,
            thread: Some(thread),
        })
    }

    /// Appends `rec`; hands the batch over once it is full.
    pub fn push(&mut self, rec: OutRecord) -> Result<(), TopologyError> {
        self.batch.push(rec);
        if self.batch.len() >= BATCH {
            self.hand_over()?;
        }
        Ok(())
    }

    /// True while records wait in the stream thread's batch.
    pub fn has_pending(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Hands the current batch (if any) to the sender thread.
    pub fn hand_over(&mut self) -> Result<(), TopologyError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.message(Msg::Batch(batch))
    }

    /// Returns once every record pushed so far is in the producer, or the send error
    /// that stopped the sender (it stays: nothing after it was produced).
    pub fn drain(&mut self) -> Result<(), TopologyError> {
        self.hand_over()?;
        let (ack, done) = sync_channel(1);
        self.message(Msg::Barrier(ack))?;
        done.recv().map_err(|_| stopped())?;
        match self.failed.lock().map(|f| f.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(TopologyError::Delivery(e)),
            Err(_) => Err(stopped()),
        }
    }

    /// Drops the records not yet handed over (the worker failed: its uncommitted effects
    /// are dropped).
    pub fn discard_pending(&mut self) {
        self.batch.clear();
    }

    fn message(&self, msg: Msg) -> Result<(), TopologyError> {
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(msg)
            .map_err(|_| stopped())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn stopped() -> TopologyError {
    TopologyError::Delivery("the output sender thread stopped".into())
}

/// The sender thread: produces every batch in order. After a failed send it produces
/// nothing more (the failing commit stops the worker) and keeps answering barriers.
fn run(producer: &OutProducer, rx: &Receiver<Msg>, failed: &Mutex<Option<String>>) {
    let mut broken = false;
    for msg in rx {
        match msg {
            Msg::Batch(batch) if !broken => {
                for rec in &batch {
                    if let Err(e) = output::send(producer, rec) {
                        tracing::error!(error = %e, "output send failed; the next commit fails");
                        let message = match e {
                            TopologyError::Delivery(m) => m,
                            other => other.to_string(),
                        };
                        if let Ok(mut f) = failed.lock() {
                            f.get_or_insert(message);
                        }
                        broken = true;
                        break;
                    }
                }
            }
            Msg::Batch(_) => {}
            Msg::Barrier(ack) => {
                let _ = ack.send(());
            }
        }
    }
}
