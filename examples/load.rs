//! Load generator: plays the human of many matches through the HTTP API and measures how
//! long a player waits from `POST` to the event it caused, as the match's WebSocket
//! (`/matches/{id}/live`) delivers it.
//!
//! ```text
//! cargo run --release --example load -- --api http://127.0.0.1:8080 --matches 40 --concurrency 8
//! ```
//!
//! Each of `--concurrency` players takes matches one after another: it opens the match's
//! WebSocket first (the match id is the `Idempotency-Key` of its `POST /matches`, so the
//! socket exists before the match does), creates it with one human (`classic_1v3`,
//! `--rounds` rounds), then each round answers once `round.started` arrives and votes once
//! `round.voting_started` arrives, with its player token. Every request carries an
//! `Idempotency-Key`, which becomes its request id, so its event is the one whose
//! `causationId` is that id (`match.created`, `response.recorded`, `vote.recorded`). A
//! thread per socket stamps each frame on arrival; the latency is arrival − the instant
//! before the `POST` was sent (client clock only). Prints one line per action with p50,
//! p99 and max, the `POST` round trips (`202`), and the request rate; then the API's own
//! histograms from its `/metrics` (request → `match-events`, request → `robot-commands`,
//! as bucket bounds; since that process started).
//!
//! Needs the robots to answer at once (`--think-time-scale 0`, the default) and a worker
//! whose response/voting windows are longer than the load's queueing.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// How long a player waits for any one event before it gives the match up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

struct Args {
    api: String,
    matches: usize,
    concurrency: usize,
    rounds: u32,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        api: "http://127.0.0.1:8080".into(),
        matches: 20,
        concurrency: 4,
        rounds: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--api" => args.api = value()?.trim_end_matches('/').to_string(),
            "--matches" => args.matches = value()?.parse().context("--matches")?,
            "--concurrency" => args.concurrency = value()?.parse().context("--concurrency")?,
            "--rounds" => args.rounds = value()?.parse().context("--rounds")?,
            "-h" | "--help" => {
                println!("load [--api URL] [--matches N] [--concurrency C] [--rounds R]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (try --help)"),
        }
    }
    if !args.api.starts_with("http://") {
        bail!("--api must be an http:// URL, got {}", args.api);
    }
    if args.matches == 0 || args.concurrency == 0 || !(1..=10).contains(&args.rounds) {
        bail!("--matches and --concurrency must be at least 1, --rounds 1..=10");
    }
    Ok(args)
}

/// Latencies in ms per series name.
#[derive(Default)]
struct Samples(BTreeMap<&'static str, Vec<f64>>);

impl Samples {
    fn add(&mut self, name: &'static str, d: Duration) {
        self.0
            .entry(name)
            .or_default()
            .push(d.as_secs_f64() * 1000.0);
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A match's WebSocket: frames as `(arrival, event)` from a reader thread.
struct Live {
    events: mpsc::Receiver<(Instant, Value)>,
}

impl Live {
    fn open(api: &str, match_id: &str) -> Result<Self> {
        let host = api.trim_start_matches("http://").to_string();
        let stream = TcpStream::connect(&host).with_context(|| format!("connecting to {host}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(EVENT_TIMEOUT))?;
        let (mut ws, _) =
            tungstenite::client(format!("ws://{host}/matches/{match_id}/live"), stream)
                .context("WebSocket handshake")?;
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || loop {
            match ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    let at = Instant::now();
                    let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                        continue;
                    };
                    if tx.send((at, v)).is_err() {
                        return;
                    }
                }
                Ok(tungstenite::Message::Close(_)) | Err(_) => return,
                Ok(_) => {}
            }
        });
        Ok(Self { events })
    }

    /// Arrival of the first event satisfying `pred` (earlier ones are skipped).
    fn until(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<(Instant, Value)> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, v) = self
                .events
                .recv_timeout(left)
                .map_err(|_| anyhow!("no {what} within {EVENT_TIMEOUT:?}"))?;
            if pred(&v) {
                return Ok((at, v));
            }
        }
    }
}

/// `POST url` with `Idempotency-Key: key` (and a bearer token); the instant before it was
/// sent and the round trip. Anything but `202` is an error.
fn post(
    http: &Client,
    url: &str,
    key: &str,
    token: Option<&str>,
    body: Value,
) -> Result<(Instant, Duration, Value)> {
    let mut req = http.post(url).header("Idempotency-Key", key).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let sent = Instant::now();
    let r = req.send().with_context(|| format!("POST {url}"))?;
    let rtt = sent.elapsed();
    let status = r.status();
    let body: Value = r.json().unwrap_or(Value::Null);
    if status.as_u16() != 202 {
        bail!("POST {url}: {status} {body}");
    }
    Ok((sent, rtt, body))
}

fn caused_by(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["causationId"] == id
}

fn is_round(kind: &'static str, round: u32) -> impl Fn(&Value) -> bool {
    move |e| e["eventType"] == kind && e["data"]["round"] == round
}

/// Plays one match as its human; adds every latency to `out`.
fn play(http: &Client, args: &Args, match_id: &str, out: &Mutex<Samples>) -> Result<()> {
    let api = &args.api;
    let live = Live::open(api, match_id)?;
    let (sent, rtt, created) = post(
        http,
        &format!("{api}/matches"),
        match_id,
        None,
        json!({"template": "classic_1v3", "totalRounds": args.rounds,
               "humans": [{"playerId": "p1", "name": "Load"}]}),
    )?;
    let (at, _) = live.until("match.created", caused_by(match_id))?;
    {
        let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
        o.add("create", at - sent);
        o.add("accepted", rtt);
    }
    let token = created["playerTokens"]["p1"]
        .as_str()
        .ok_or_else(|| anyhow!("no player token in {created}"))?
        .to_string();
    live.until("round.started 1", is_round("round.started", 1))?;
    let me = you(http, api, match_id, &token)?;
    let vote_for = ["A", "B", "C", "D"]
        .into_iter()
        .find(|s| *s != me)
        .unwrap_or("A");
    for round in 1..=args.rounds {
        if round > 1 {
            live.until("round.started", is_round("round.started", round))?;
        }
        let key = format!("{match_id}-r{round}");
        let (sent, rtt, _) = post(
            http,
            &format!("{api}/matches/{match_id}/responses"),
            &key,
            Some(&token),
            json!({"playerId": "p1", "round": round, "text": "Tea, always tea."}),
        )?;
        let (at, _) = live.until("response.recorded", caused_by(&key))?;
        {
            let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
            o.add("respond", at - sent);
            o.add("accepted", rtt);
        }
        live.until(
            "round.voting_started",
            is_round("round.voting_started", round),
        )?;
        let key = format!("{match_id}-v{round}");
        let (sent, rtt, _) = post(
            http,
            &format!("{api}/matches/{match_id}/votes"),
            &key,
            Some(&token),
            json!({"playerId": "p1", "round": round, "votedFor": vote_for}),
        )?;
        let (at, _) = live.until("vote.recorded", caused_by(&key))?;
        let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
        o.add("vote", at - sent);
        o.add("accepted", rtt);
    }
    Ok(())
}

/// The token holder's seat (`you` of the player view).
fn you(http: &Client, api: &str, match_id: &str, token: &str) -> Result<String> {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let r = http
            .get(format!("{api}/matches/{match_id}/view"))
            .bearer_auth(token)
            .send()?;
        if r.status().is_success() {
            let v: Value = r.json()?;
            if let Some(s) = v["you"].as_str() {
                return Ok(s.to_string());
            }
        }
        if Instant::now() > deadline {
            bail!("the player view of {match_id} never named the player's seat");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `(le, cumulative count)` buckets of one histogram series, from Prometheus text.
type Buckets = Vec<(f64, f64)>;

/// The bucket bound under which a fraction `q` of the observations fall (an upper bound
/// of the quantile, at the histogram's resolution).
fn bucket_quantile(buckets: &Buckets, q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map(|(le, _)| *le)
}

/// Prints the API's own histograms (`GET /metrics` of `api`): request → `match-events`
/// and request → `robot-commands`, per action, as bucket bounds of p50 and p99. They
/// cover every request that instance took since it started, not only this run's.
fn server_side(http: &Client, api: &str) -> Result<()> {
    let text = http.get(format!("{api}/metrics")).send()?.text()?;
    let mut series: BTreeMap<(String, String), Buckets> = BTreeMap::new();
    for line in text.lines() {
        for metric in [
            "orchestra_request_to_match_event_seconds",
            "orchestra_request_to_robot_command_seconds",
        ] {
            let Some(rest) = line.strip_prefix(&format!("{metric}_bucket{{")) else {
                continue;
            };
            let (labels, value) = rest.split_once("} ").unwrap_or((rest, "0"));
            let label = |name: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
            };
            let (Some(action), Some(le)) = (label("action"), label("le")) else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            series
                .entry((metric.to_string(), action))
                .or_default()
                .push((le, value.trim().parse().unwrap_or(0.0)));
        }
    }
    for ((metric, action), mut b) in series {
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        let (Some(p50), Some(p99)) = (bucket_quantile(&b, 0.5), bucket_quantile(&b, 0.99)) else {
            continue;
        };
        println!(
            "server {metric}{{action={action}}}: p50 ≤ {} ms, p99 ≤ {} ms (n={})",
            p50 * 1000.0,
            p99 * 1000.0,
            b.last().map_or(0.0, |l| l.1)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Arc::new(parse_args()?);
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let run = format!(
        "load-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let start = Instant::now();
    let players: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (args, http, next, failed, samples, run) = (
                args.clone(),
                http.clone(),
                next.clone(),
                failed.clone(),
                samples.clone(),
                run.clone(),
            );
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= args.matches {
                    return;
                }
                let id = format!("{run}-{i}");
                if let Err(e) = play(&http, &args, &id, &samples) {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("match {id}: {e:#}");
                }
            })
        })
        .collect();
    for p in players {
        let _ = p.join();
    }
    let elapsed = start.elapsed();
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner());
    let requests = samples.0.get("accepted").map_or(0, Vec::len);
    println!(
        "matches: {} played, {} failed; concurrency {}, {} rounds; {} requests in {:.1} s ({:.1} req/s)",
        args.matches - failed.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        args.concurrency,
        args.rounds,
        requests,
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64()
    );
    let mut all = Vec::new();
    for (name, label) in [
        ("create", "POST /matches → match.created"),
        ("respond", "POST responses → response.recorded"),
        ("vote", "POST votes → vote.recorded"),
        ("accepted", "POST → 202 accepted"),
    ] {
        let Some(v) = samples.0.get(name) else {
            continue;
        };
        let mut v = v.clone();
        if name != "accepted" {
            all.extend_from_slice(&v);
        }
        v.sort_by(f64::total_cmp);
        println!(
            "{label}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v[v.len() - 1],
            v.len()
        );
    }
    if !all.is_empty() {
        all.sort_by(f64::total_cmp);
        println!(
            "POST → match event, all actions: p50 {:.1} ms, p99 {:.1} ms (n={})",
            percentile(&all, 0.5),
            percentile(&all, 0.99),
            all.len()
        );
    }
    if let Err(e) = server_side(&http, &args.api) {
        eprintln!("server-side histograms not read: {e:#}");
    }
    if failed.load(Ordering::Relaxed) > 0 {
        bail!("{} matches failed", failed.load(Ordering::Relaxed));
    }
    Ok(())
}
