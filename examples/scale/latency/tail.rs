//! The driver's tail of `match-events`, `robot-commands` and `match-requests`: what it
//! saw, and when.

use super::*;

/// The tail's `fetch.wait.max.ms`: `SCALE_FETCH_WAIT_MS`, else 10 (as the API's tails).
fn tail_fetch_wait_ms() -> u64 {
    env_ms("SCALE_FETCH_WAIT_MS").unwrap_or(10)
}

/// What the tail saw.
pub(super) enum Seen {
    Event {
        at: Instant,
        match_id: String,
        kind: String,
        causation: String,
        round: u64,
        /// `match.created`: playerId → seat identity, and all identities.
        seats: Vec<(Option<String>, String)>,
    },
    Command {
        at: Instant,
        correlation: String,
    },
    /// A player's request on `match-requests` (its `eventId` is the request id).
    Request {
        at: Instant,
        id: String,
    },
}

/// Tails `match-events`, `robot-commands` and `match-requests` from their current ends
/// until `stop`.
pub(super) fn tail(
    bootstrap: &str,
    tx: mpsc::UnboundedSender<Seen>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "scale-latency-tail")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", tail_fetch_wait_ms().to_string())
        .set("fetch.min.bytes", "1")
        .create()
        .context("tail consumer")?;
    let mut tpl = TopicPartitionList::new();
    for t in [
        topics::MATCH_EVENTS,
        topics::ROBOT_COMMANDS,
        topics::MATCH_REQUESTS,
    ] {
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(t, p, Offset::End)?;
        }
    }
    consumer.assign(&tpl)?;
    while !stop.load(Ordering::Relaxed) {
        let Some(m) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let at = Instant::now();
        let Ok(m) = m else { continue };
        let Some(Ok(v)) = m.payload().map(serde_json::from_slice::<Value>) else {
            continue;
        };
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let seen = if m.topic() == topics::MATCH_REQUESTS {
            Seen::Request {
                at,
                id: s("eventId"),
            }
        } else if m.topic() == topics::ROBOT_COMMANDS {
            Seen::Command {
                at,
                correlation: s("correlationId"),
            }
        } else {
            let seats = v["data"]["seats"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            (
                                s["playerId"].as_str().map(String::from),
                                s["identity"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Seen::Event {
                at,
                match_id: s("matchId"),
                kind: s("eventType"),
                causation: s("causationId"),
                round: v["data"]["round"].as_u64().unwrap_or(0),
                seats,
            }
        };
        if tx.send(seen).is_err() {
            break;
        }
    }
    Ok(())
}
