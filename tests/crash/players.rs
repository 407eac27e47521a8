//! The players: matches created and played through the HTTP API.

use super::*;

/// A request the API answered `202`.
#[derive(Debug, Clone)]
#[allow(dead_code)] // match and seat are shown when a request was not applied
pub(crate) struct Accepted {
    pub(crate) id: String,
    pub(crate) match_id: String,
    pub(crate) kind: &'static str,
    /// For answers and votes: the seat and round.
    pub(crate) seat: Option<(String, u32)>,
}

pub(crate) struct Players {
    pub(crate) http: Client,
    pub(crate) urls: Arc<Mutex<Vec<String>>>,
    pub(crate) rng: Rng,
    pub(crate) accepted: Vec<Accepted>,
    pub(crate) retries: u64,
    pub(crate) sent: BTreeSet<String>,
}

impl Players {
    /// POSTs `body` to `path` with `Idempotency-Key: key` on some live worker until one
    /// answers `202` (retried on connection errors and `503`); panics on a `4xx`.
    pub(crate) fn post(&mut self, path: &str, key: &str, body: &Value) {
        self.post_as(path, key, body, None)
    }

    /// [`Players::post`] as a player: with `Authorization: Bearer <token>` when given.
    pub(crate) fn post_as(&mut self, path: &str, key: &str, body: &Value, token: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let urls = self.urls.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let url = &urls[self.rng.below(urls.len() as u64) as usize];
            let mut request = self
                .http
                .post(format!("{url}{path}"))
                .header("Idempotency-Key", key);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = request.json(body).send();
            match answer {
                Ok(r) if r.status() == StatusCode::ACCEPTED => return,
                Ok(r) if r.status().is_client_error() => {
                    panic!(
                        "{path} {key}: {} {}",
                        r.status(),
                        r.text().unwrap_or_default()
                    )
                }
                Ok(_) | Err(_) => {
                    self.retries += 1;
                    assert!(
                        Instant::now() < deadline,
                        "{path} {key}: no worker took it for 120 s"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    pub(crate) fn create(&mut self, match_id: &str, template: &str, humans: usize) {
        let humans: Vec<Value> = (0..humans)
            .map(|i| json!({"playerId": format!("{match_id}-p{i}"), "name": format!("P{i}")}))
            .collect();
        let body = json!({"template": template, "totalRounds": ROUNDS, "humans": humans});
        self.post("/matches", match_id, &body);
        self.accepted.push(Accepted {
            id: match_id.to_string(),
            match_id: match_id.to_string(),
            kind: "match.created",
            seat: None,
        });
    }

    /// Answers and votes for the humans of `state` that have not acted in its phase.
    pub(crate) fn act(&mut self, state: &MatchState) {
        let Some(cur) = state.current.as_ref() else {
            return;
        };
        let phase = match state.status {
            MatchStatus::Responding => "respond",
            MatchStatus::Voting => "vote",
            _ => return,
        };
        // As a player's page would: no answer or vote once the phase's countdown (less a
        // second for the request's way) has run out. The state read may be stale after a
        // failover; a request stamped past the deadline would be (correctly) rejected.
        let deadline = match state.status {
            MatchStatus::Responding => Some(cur.response_deadline),
            _ => cur.voting_deadline,
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let too_late = deadline.is_some_and(|d| now_ms + 1_000 > d);
        for seat in state.seats.iter().filter(|s| s.kind == SeatKind::Human) {
            let Some(player) = seat.player_id.clone() else {
                continue;
            };
            let key = format!(
                "{}-{}-r{}-{phase}",
                state.match_id,
                seat.identity.as_str(),
                cur.round
            );
            if self.sent.contains(&key) || too_late {
                continue;
            }
            self.sent.insert(key.clone());
            // One human action in twelve never comes: the phase ends at its deadline.
            if hash(&key) % 12 == 0 {
                continue;
            }
            let (path, body, kind) = if phase == "respond" {
                (
                    format!("/matches/{}/responses", state.match_id),
                    json!({"playerId": player, "round": cur.round,
                           "text": format!("answer {key}")}),
                    "response.recorded",
                )
            } else {
                let others: Vec<&str> = state
                    .seats
                    .iter()
                    .filter(|s| s.identity != seat.identity)
                    .map(|s| s.identity.as_str())
                    .collect();
                let pick = others[(hash(&key) as usize / 12) % others.len()];
                (
                    format!("/matches/{}/votes", state.match_id),
                    json!({"playerId": player, "round": cur.round, "votedFor": pick}),
                    "vote.recorded",
                )
            };
            // Every worker shares the test's token secret (procs::TEST_API_SECRET), so the
            // player's token is the one `POST /matches` answered.
            let token = orchestra::api::PlayerTokens::new(procs::TEST_API_SECRET)
                .token(&state.match_id, &player);
            self.post_as(&path, &key, &body, Some(&token));
            self.accepted.push(Accepted {
                id: key,
                match_id: state.match_id.clone(),
                kind,
                seat: Some((seat.identity.as_str().to_string(), cur.round)),
            });
        }
    }
}
