//! The gauges a worker derives from its tasks: per input partition lag, active tasks,
//! what processors set with `Context::set_gauge`, and keys per store. The worker's part
//! of each process gauge (see `gauge_parts`) is stated whole from the tasks' state at
//! every commit and rebalance. Keys per store are counted at every sync and rebalance —
//! an O(keys) scan for sled, so it runs on a thread of its own through the stores'
//! readers, never on the stream thread (a million keys take about a second).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, ConsumerContext};

use crate::gauge_parts::{GaugeParts, Series};
use crate::lifecycle::TaskState;
use crate::metrics as m;
use crate::task::Task;
use crate::task_id::TaskId;

/// One worker's parts of the task-derived gauges.
pub(crate) struct TaskGauges {
    tasks: GaugeParts,
    stores: Arc<GaugeParts>,
    /// A count of the stores' keys is running on its own thread.
    counting: Arc<AtomicBool>,
}

impl TaskGauges {
    pub fn new() -> Self {
        Self {
            tasks: GaugeParts::new(),
            stores: Arc::new(GaugeParts::new()),
            counting: Arc::default(),
        }
    }

    /// Keys per store across `tasks` (only at syncs and rebalances): counted on a thread
    /// of its own through the stores' readers (one count at a time; a count asked for
    /// while one runs is skipped, the next sync asks again), or here where a store has no
    /// reader (in memory, where counting is cheap).
    pub fn report_store_sizes(&self, tasks: &BTreeMap<TaskId, Task>) {
        let mut readers = Vec::new();
        for task in tasks.values() {
            for (store, reader) in task.stores.readers() {
                let Some(reader) = reader else {
                    let parts = tasks
                        .values()
                        .flat_map(|t| t.store_sizes())
                        .map(|(store, n)| {
                            (Series::new(m::STORE_KEYS).label("store", store), n as f64)
                        });
                    self.stores.publish(parts.collect::<Vec<_>>());
                    return;
                };
                readers.push((store.to_string(), reader));
            }
        }
        if self.counting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (stores, counting) = (self.stores.clone(), self.counting.clone());
        let spawned = std::thread::Builder::new()
            .name("store-sizes".into())
            .spawn(move || {
                let parts: Vec<_> = readers
                    .iter()
                    .map(|(store, r)| {
                        let n = r.len().unwrap_or(0);
                        (
                            Series::new(m::STORE_KEYS).label("store", store.as_str()),
                            n as f64,
                        )
                    })
                    .collect();
                stores.publish(parts);
                counting.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start counting store keys");
            self.counting.store(false, Ordering::Release);
        }
    }

    /// States the lag of each input partition, the number of running tasks, and the
    /// processors' gauges. A suspended or closed task contributes nothing.
    pub fn publish<C: ConsumerContext>(
        &self,
        tasks: &BTreeMap<TaskId, Task>,
        consumer: &BaseConsumer<C>,
    ) {
        let mut parts = Vec::new();
        let mut running = 0;
        for (id, task) in tasks {
            if task.state != TaskState::Running {
                continue;
            }
            running += 1;
            for (topic, next) in &task.next_offsets {
                if let Some(high) = crate::watermarks::cached_high(consumer, topic, id.partition) {
                    let series = Series::new(m::CONSUMER_LAG)
                        .label("topic", topic.as_str())
                        .label("partition", id.partition.to_string());
                    parts.push((series, (high - next).max(0) as f64));
                }
            }
            for (name, value) in task.gauges() {
                parts.push((Series::new(name), value));
            }
        }
        parts.push((Series::new(m::ACTIVE_TASKS), f64::from(running)));
        self.tasks.publish(parts);
    }
}
