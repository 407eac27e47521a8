//! The open-loop driver: plays matches through the API at an offered rate and matches
//! each request to the records it caused.

use super::tail::{tail, Seen};
use super::*;

/// A request ready to be sent.
#[derive(Debug, Clone)]
enum Action {
    Create {
        match_id: String,
    },
    Respond {
        match_id: String,
        player: String,
        round: u64,
    },
    Vote {
        match_id: String,
        player: String,
        round: u64,
    },
}

/// The answer to a `POST`.
struct Answer {
    request_id: String,
    match_id: String,
    create: bool,
    /// `playerTokens` of a create's `202`.
    tokens: Option<HashMap<String, String>>,
    error: Option<String>,
    /// `POST` → its answer, ms.
    rtt: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Respond(u64),
    Vote(u64),
}

#[derive(Default)]
struct Match {
    tokens: Option<HashMap<String, String>>,
    /// playerId → identity.
    seats: HashMap<String, String>,
    identities: Vec<String>,
    phase: Option<Phase>,
    enqueued: Option<Phase>,
    progress: Option<Instant>,
}

/// A request sent.
struct Sent {
    at: Instant,
    step: usize,
    event: Option<f64>,
    command: Option<f64>,
    /// `POST` → `202`, ms.
    acked: Option<f64>,
    /// `POST` → the request read from `match-requests`, ms.
    written: Option<f64>,
}

const PLAYERS: [&str; 2] = ["p1", "p2"];

struct Driver {
    api: String,
    http: reqwest::Client,
    answers: mpsc::UnboundedSender<Answer>,
    matches: HashMap<String, Match>,
    ready: VecDeque<Action>,
    sent: HashMap<String, Sent>,
    next_id: u64,
    run: String,
    errors: Vec<usize>,
}

impl Driver {
    fn new_match(&mut self) {
        self.next_id += 1;
        let match_id = format!("{}-m{}", self.run, self.next_id);
        self.matches.insert(
            match_id.clone(),
            Match {
                progress: Some(Instant::now()),
                ..Match::default()
            },
        );
        self.ready.push_back(Action::Create { match_id });
    }

    /// Enqueues the humans' actions of `m`'s current phase, once.
    fn maybe_enqueue(&mut self, match_id: &str) {
        let Some(m) = self.matches.get_mut(match_id) else {
            return;
        };
        let (Some(phase), Some(_)) = (m.phase, &m.tokens) else {
            return;
        };
        if m.enqueued == Some(phase) {
            return;
        }
        if matches!(phase, Phase::Vote(_)) && m.seats.len() < PLAYERS.len() {
            return;
        }
        m.enqueued = Some(phase);
        for p in PLAYERS {
            let (match_id, player) = (match_id.to_string(), p.to_string());
            self.ready.push_back(match phase {
                Phase::Respond(round) => Action::Respond {
                    match_id,
                    player,
                    round,
                },
                Phase::Vote(round) => Action::Vote {
                    match_id,
                    player,
                    round,
                },
            });
        }
    }

    /// Sends `action` (on a task of its own), tagged with `step`.
    fn send(&mut self, action: Action, step: usize) {
        let (match_id, request_id, url, token, body, create) = match &action {
            Action::Create { match_id } => (
                match_id.clone(),
                match_id.clone(),
                format!("{}/matches", self.api),
                None,
                json!({"template": "duel_2v1", "totalRounds": ROUNDS,
                       "humans": [{"playerId": "p1", "name": "One"},
                                  {"playerId": "p2", "name": "Two"}]}),
                true,
            ),
            Action::Respond {
                match_id,
                player,
                round,
            } => {
                let Some(token) = self.token(match_id, player) else {
                    return;
                };
                (
                    match_id.clone(),
                    format!("{match_id}-{player}-r{round}"),
                    format!("{}/matches/{match_id}/responses", self.api),
                    Some(token),
                    json!({"playerId": player, "round": round, "text": "Tea, always tea."}),
                    false,
                )
            }
            Action::Vote {
                match_id,
                player,
                round,
            } => {
                let Some(token) = self.token(match_id, player) else {
                    return;
                };
                let m = &self.matches[match_id];
                let own = m.seats.get(player).cloned().unwrap_or_default();
                let Some(target) = m.identities.iter().find(|i| **i != own).cloned() else {
                    return;
                };
                (
                    match_id.clone(),
                    format!("{match_id}-{player}-v{round}"),
                    format!("{}/matches/{match_id}/votes", self.api),
                    Some(token),
                    json!({"playerId": player, "round": round, "votedFor": target}),
                    false,
                )
            }
        };
        let at = Instant::now();
        self.sent.insert(
            request_id.clone(),
            Sent {
                at,
                step,
                event: None,
                command: None,
                acked: None,
                written: None,
            },
        );
        let (http, answers) = (self.http.clone(), self.answers.clone());
        tokio::spawn(async move {
            let mut req = http
                .post(&url)
                .header("Idempotency-Key", &request_id)
                .json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let mut answer = Answer {
                request_id,
                match_id,
                create,
                tokens: None,
                error: None,
                rtt: 0.0,
            };
            let t0 = Instant::now();
            let result = req.send().await;
            answer.rtt = t0.elapsed().as_secs_f64() * 1000.0;
            match result {
                Ok(r) if r.status().as_u16() == 202 => {
                    if create {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        answer.tokens = v["playerTokens"].as_object().map(|o| {
                            o.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                                .collect()
                        });
                        if answer.tokens.is_none() {
                            answer.error = Some(format!("no playerTokens in {v}"));
                        }
                    }
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    answer.error = Some(format!("{url}: {status} {text}"));
                }
                Err(e) => answer.error = Some(format!("{url}: {e}")),
            }
            let _ = answers.send(answer);
        });
    }

    fn token(&self, match_id: &str, player: &str) -> Option<String> {
        self.matches
            .get(match_id)?
            .tokens
            .as_ref()?
            .get(player)
            .cloned()
    }

    fn on_seen(&mut self, seen: Seen) {
        match seen {
            Seen::Request { at, id } => {
                if let Some(s) = self.sent.get_mut(&id) {
                    s.written.get_or_insert((at - s.at).as_secs_f64() * 1000.0);
                }
            }
            Seen::Command { at, correlation } => {
                if let Some(s) = self.sent.get_mut(&correlation) {
                    if s.command.is_none() {
                        s.command = Some((at - s.at).as_secs_f64() * 1000.0);
                    }
                }
            }
            Seen::Event {
                at,
                match_id,
                kind,
                causation,
                round,
                seats,
            } => {
                if let Some(s) = self.sent.get_mut(&causation) {
                    if s.event.is_none() {
                        s.event = Some((at - s.at).as_secs_f64() * 1000.0);
                    }
                }
                let Some(m) = self.matches.get_mut(&match_id) else {
                    return;
                };
                m.progress = Some(at);
                match kind.as_str() {
                    "match.created" => {
                        m.identities = seats.iter().map(|(_, i)| i.clone()).collect();
                        m.seats = seats
                            .into_iter()
                            .filter_map(|(p, i)| Some((p?, i)))
                            .collect();
                    }
                    "round.started" => m.phase = Some(Phase::Respond(round)),
                    "round.voting_started" => m.phase = Some(Phase::Vote(round)),
                    "match.completed" => {
                        self.matches.remove(&match_id);
                        self.new_match();
                        return;
                    }
                    _ => return,
                }
                self.maybe_enqueue(&match_id);
            }
        }
    }

    fn on_answer(&mut self, a: Answer, step: usize) {
        if let Some(s) = self.sent.get_mut(&a.request_id) {
            if a.error.is_none() {
                s.acked = Some(a.rtt);
            }
        }
        if let Some(e) = a.error {
            if self.errors.len() <= step {
                self.errors.resize(step + 1, 0);
            }
            self.errors[step] += 1;
            if self.errors.iter().sum::<usize>() <= 5 {
                eprintln!("scale latency: request {} failed: {e}", a.request_id);
            }
            // The match cannot go on: replace it.
            if self.matches.remove(&a.match_id).is_some() {
                self.new_match();
            }
            return;
        }
        if a.create {
            if let Some(m) = self.matches.get_mut(&a.match_id) {
                m.tokens = a.tokens;
            }
            self.maybe_enqueue(&a.match_id);
        }
    }

    /// Replaces matches without progress for [`STALLED`].
    fn replace_stalled(&mut self) {
        let stalled: Vec<String> = self
            .matches
            .iter()
            .filter(|(_, m)| m.progress.is_some_and(|p| p.elapsed() > STALLED))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stalled {
            self.matches.remove(&id);
            self.ready.retain(|a| match a {
                Action::Create { match_id }
                | Action::Respond { match_id, .. }
                | Action::Vote { match_id, .. } => *match_id != id,
            });
            self.new_match();
        }
    }

    fn step_result(&self, step: usize, offered: f64, measured: Duration) -> StepResult {
        let mut events = Vec::new();
        let mut commands = Vec::new();
        let mut acks = Vec::new();
        let mut written = Vec::new();
        let mut hops = Vec::new();
        let mut sent = 0;
        for s in self.sent.values().filter(|s| s.step == step) {
            sent += 1;
            events.push(s.event.unwrap_or(f64::INFINITY));
            if let Some(c) = s.command {
                commands.push(c);
            }
            acks.push(s.acked.unwrap_or(f64::INFINITY));
            written.push(s.written.unwrap_or(f64::INFINITY));
            if let (Some(w), Some(e)) = (s.written, s.event) {
                hops.push(e - w);
            }
        }
        acks.sort_by(f64::total_cmp);
        written.sort_by(f64::total_cmp);
        hops.sort_by(f64::total_cmp);
        events.sort_by(f64::total_cmp);
        commands.sort_by(f64::total_cmp);
        StepResult {
            offered,
            achieved: sent as f64 / measured.as_secs_f64(),
            sent,
            missing: events.iter().filter(|e| e.is_infinite()).count(),
            errors: self.errors.get(step).copied().unwrap_or(0),
            event_p50: percentile(&events, 0.50),
            event_p99: percentile(&events, 0.99),
            command_p50: percentile(&commands, 0.50),
            command_p99: percentile(&commands, 0.99),
            commands: commands.len(),
            ack_p50: percentile(&acks, 0.50),
            ack_p99: percentile(&acks, 0.99),
            written_p50: percentile(&written, 0.50),
            written_p99: percentile(&written, 0.99),
            hop_p50: percentile(&hops, 0.50),
            hop_p99: percentile(&hops, 0.99),
        }
    }
}

/// Nearest-rank percentile of sorted values (∞ when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::INFINITY;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Plays the ramp against the API at `addr`.
pub(super) async fn drive(
    bootstrap: &str,
    addr: SocketAddr,
    guarantee: ProcessingGuarantee,
    rates: &[f64],
    (stop_early, rps_per_match): (bool, f64),
    started: Instant,
) -> Result<Vec<StepResult>> {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let tail_thread = {
        let (b, stop) = (bootstrap.to_string(), stop.clone());
        std::thread::spawn(move || tail(&b, seen_tx, stop))
    };
    // Give the tail its assignment before any request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answers, mut answer_rx) = mpsc::unbounded_channel();
    let mut d = Driver {
        api: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?,
        answers,
        matches: HashMap::new(),
        ready: VecDeque::new(),
        sent: HashMap::new(),
        next_id: 0,
        run: format!("lat{}", std::process::id()),
        errors: Vec::new(),
    };
    eprintln!(
        "scale latency ({guarantee:?}): worker up at {addr} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut results = Vec::new();
    for (step, &rate) in rates.iter().enumerate() {
        let want = ((rate / rps_per_match) as usize).clamp(MIN_MATCHES, MAX_MATCHES);
        while d.matches.len() < want {
            d.new_match();
        }
        // Warm-up (step tag usize::MAX: not measured), then the measured part.
        for (tag, length) in [(usize::MAX, WARM), (step, STEP)] {
            let begin = tokio::time::Instant::now();
            let mut released = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last_check = Instant::now();
            while begin.elapsed() < length {
                tokio::select! {
                    Some(s) = seen_rx.recv() => d.on_seen(s),
                    Some(a) = answer_rx.recv() => d.on_answer(a, step),
                    _ = tick.tick() => {
                        let due = (begin.elapsed().as_secs_f64() * rate) as u64;
                        // Tokens older than BURST are lost.
                        let floor = due.saturating_sub((BURST.as_secs_f64() * rate) as u64);
                        released = released.max(floor);
                        while released < due {
                            let Some(a) = d.ready.pop_front() else { break };
                            d.send(a, tag);
                            released += 1;
                        }
                        if last_check.elapsed() > Duration::from_secs(1) {
                            last_check = Instant::now();
                            d.replace_stalled();
                        }
                    }
                }
            }
        }
        // Drain: late events still count for this step.
        let end = tokio::time::Instant::now() + DRAIN;
        loop {
            tokio::select! {
                Some(s) = seen_rx.recv() => d.on_seen(s),
                Some(a) = answer_rx.recv() => d.on_answer(a, step),
                _ = tokio::time::sleep_until(end) => break,
            }
        }
        let r = d.step_result(step, rate, STEP);
        eprintln!(
            "scale latency ({guarantee:?}): offered {rate} req/s, achieved {:.0} req/s ({} requests, {} errors, {} without event, {} matches); accepted → match-event p50 {} / p99 {} ms; accepted → robot-command p50 {} / p99 {} ms (n={}); POST → 202 p50 {} / p99 {} ms; POST → on match-requests p50 {} / p99 {} ms; match-requests → match-events p50 {} / p99 {} ms",
            r.achieved,
            r.sent,
            r.errors,
            r.missing,
            want,
            ms(r.event_p50),
            ms(r.event_p99),
            ms(r.command_p50),
            ms(r.command_p99),
            r.commands,
            ms(r.ack_p50),
            ms(r.ack_p99),
            ms(r.written_p50),
            ms(r.written_p99),
            ms(r.hop_p50),
            ms(r.hop_p99)
        );
        let ok = r.sustained();
        results.push(r);
        if stop_early && !ok && rate >= HEADLINE {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(seen_rx);
    match tail_thread.join() {
        Ok(r) => r?,
        Err(_) => bail!("the tail thread panicked"),
    }
    Ok(results)
}
