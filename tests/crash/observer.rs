//! The observer: what a client reading `match-state` sees.

use super::*;

#[derive(Default)]
pub(crate) struct Observed {
    pub(crate) states: HashMap<String, MatchState>,
    /// (match, seen before, seen after) whenever `eventsApplied` went down.
    pub(crate) went_down: Vec<(String, u64, u64)>,
}

pub(crate) fn observe(
    client: ClientConfig,
    seen: Arc<Mutex<Observed>>,
    tx: mpsc::SyncSender<()>,
    stop: Arc<AtomicBool>,
) {
    let result = orchestra::views::follow(&client, topics::MATCH_STATE, |row| {
        if let Some(value) = row.value {
            if let Ok(state) = serde_json::from_slice::<MatchState>(&value) {
                let mut o = seen.lock().unwrap_or_else(|e| e.into_inner());
                let before = o.states.get(&state.match_id).map(|s| s.events_applied);
                if let Some(b) = before.filter(|b| *b > state.events_applied) {
                    o.went_down
                        .push((state.match_id.clone(), b, state.events_applied));
                }
                if before.is_none_or(|b| b <= state.events_applied) {
                    o.states.insert(state.match_id.clone(), state);
                }
                // A wake-up, not a queue: one pending is enough.
                let _ = tx.try_send(());
            }
        }
        Ok(!stop.load(Ordering::Relaxed))
    });
    if let Err(e) = result {
        eprintln!("observer stopped: {e:#}");
    }
}
