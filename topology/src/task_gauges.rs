//! The gauges a worker derives from its tasks: per input partition lag, active tasks,
//! what processors set with `Context::set_gauge`, and keys per store. The worker's part
//! of each process gauge (see `gauge_parts`) is stated whole from the tasks' state at
//! every commit and rebalance (stores: at every sync and rebalance, an O(keys) scan).

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer, ConsumerContext};

use crate::gauge_parts::{GaugeParts, Series};
use crate::lifecycle::TaskState;
use crate::metrics as m;
use crate::task::Task;
use crate::task_id::TaskId;

/// One worker's parts of the task-derived gauges.
pub(crate) struct TaskGauges {
    tasks: GaugeParts,
    stores: GaugeParts,
}

impl TaskGauges {
    pub fn new() -> Self {
        Self {
            tasks: GaugeParts::new(),
            stores: GaugeParts::new(),
        }
    }

    /// Keys per store across `tasks` (an O(keys) scan: only at syncs and rebalances).
    pub fn report_store_sizes(&self, tasks: &BTreeMap<TaskId, Task>) {
        let mut parts = Vec::new();
        for task in tasks.values() {
            for (store, n) in task.store_sizes() {
                parts.push((Series::new(m::STORE_KEYS).label("store", store), n as f64));
            }
        }
        self.stores.publish(parts);
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
