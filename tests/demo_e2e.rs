//! End-to-end: the demo on the embedded broker, as a user runs it.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use orchestra::demo::{self, DemoOptions};

/// `orchestra demo --matches 20 --exit-when-done --replay-check --history-out FILE`:
/// exits 0, FILE has 20 lines, every match has all its rounds, replay finds 0 mismatches.
#[test]
fn demo_plays_20_matches_to_history_and_replay_finds_no_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("history.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args([
            "demo",
            "--matches",
            "20",
            "--exit-when-done",
            "--replay-check",
            "--http",
            "off",
            "--rounds",
            "3",
        ])
        .args(["--response-window-ms", "2000", "--voting-window-ms", "2000"])
        .arg("--history-out")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    if let Err(problem) = replay_is_clean(&stdout, 20) {
        panic!("replay summary: {problem}\n{stdout}");
    }
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20, "{text}");
    let mut templates = BTreeSet::new();
    for line in lines {
        let h: serde_json::Value = serde_json::from_str(line).unwrap();
        let rounds = h["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 3, "every round is in the history: {h}");
        assert!(
            h["completedAt"].is_i64() || h["completedAt"].is_u64(),
            "{h}"
        );
        templates.insert(h["template"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(
        templates.len(),
        6,
        "matches across all templates: {templates:?}"
    );
}

/// Checks the replay report `orchestra demo --replay-check` prints (see
/// `orchestra::replay::ReplayReport`'s `Display`): every one of `matches` matches folded,
/// at least that many keys compared on `match-state` and `match-history` with 0
/// mismatches each, 0 sequence gaps, no MISMATCH / GAP / UNDECODABLE line, and the
/// verdict `replay: clean`.
fn replay_is_clean(stdout: &str, matches: usize) -> Result<(), String> {
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let line = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .ok_or_else(|| format!("no `{prefix}` line"))
    };
    let number = |text: &str, what: &str| -> Result<usize, String> {
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("`{text}`: no number of {what}"))
    };
    // "replay: N events of M matches read from match-events"
    let read = line("replay: ")?;
    let (_, of) = read
        .split_once(" events of ")
        .ok_or_else(|| format!("`replay: {read}`"))?;
    let folded = number(of, "matches")?;
    if folded < matches {
        return Err(format!("{folded} matches replayed, expected {matches}"));
    }
    // "<topic>: K keys compared, N mismatches"
    for topic in ["match-state", "match-history"] {
        let text = line(&format!("{topic}: "))?;
        let (keys, rest) = text
            .split_once(" keys compared, ")
            .ok_or_else(|| format!("`{topic}: {text}`"))?;
        let keys = number(keys, "keys")?;
        let mismatches = rest
            .strip_suffix(" mismatches")
            .ok_or_else(|| format!("`{topic}: {text}`"))
            .and_then(|n| number(n, "mismatches"))?;
        if keys < matches || mismatches != 0 {
            return Err(format!(
                "{topic}: {keys} keys compared (expected at least {matches}), {mismatches} mismatches"
            ));
        }
    }
    // "match-events: D duplicates skipped, G sequence gaps"
    let events = line("match-events: ")?;
    let gaps = events
        .split_once(" duplicates skipped, ")
        .and_then(|(_, g)| g.strip_suffix(" sequence gaps"))
        .ok_or_else(|| format!("`match-events: {events}`"))
        .and_then(|g| number(g, "gaps"))?;
    if gaps != 0 {
        return Err(format!("{gaps} sequence gaps"));
    }
    if let Some(bad) = lines.iter().find(|l| {
        ["MISMATCH ", "GAP ", "UNDECODABLE "]
            .iter()
            .any(|p| l.starts_with(p))
    }) {
        return Err(format!("`{bad}`"));
    }
    if !lines.contains(&"replay: clean") {
        return Err("no `replay: clean` verdict".into());
    }
    Ok(())
}

/// The check above fails on the summaries a broken replay prints (the old check's
/// `"0 mismatch"` matched "10 mismatches").
#[test]
fn the_replay_check_rejects_mismatches_gaps_and_a_partial_replay() {
    let clean = "matches: 20\n\
        replay: 812 events of 20 matches read from match-events\n\
        match-state: 20 keys compared, 0 mismatches\n\
        match-history: 20 keys compared, 0 mismatches\n\
        match-events: 3 duplicates skipped, 0 sequence gaps\n\
        replay: clean";
    assert_eq!(replay_is_clean(clean, 20), Ok(()));
    for (broken, expect) in [
        (
            clean.replace(
                "20 keys compared, 0 mismatches",
                "20 keys compared, 10 mismatches",
            ),
            "10 mismatches",
        ),
        (
            clean.replace("of 20 matches", "of 19 matches"),
            "19 matches replayed",
        ),
        (
            clean.replace("match-state: 20 keys", "match-state: 12 keys"),
            "12 keys compared",
        ),
        (
            clean.replace("0 sequence gaps", "2 sequence gaps"),
            "2 sequence gaps",
        ),
        (
            clean.replace(
                "replay: clean",
                "MISMATCH match-state m-1: differs (x)\nreplay: MISMATCHES FOUND",
            ),
            "MISMATCH",
        ),
        (clean.replace("replay: clean", ""), "verdict"),
        (
            clean
                .lines()
                .filter(|l| !l.starts_with("match-history"))
                .collect::<Vec<_>>()
                .join("\n"),
            "no `match-history: ` line",
        ),
    ] {
        let err = replay_is_clean(&broken, 20).expect_err(&broken);
        assert!(err.contains(expect), "{err} (expected `{expect}`)");
    }
}

/// While the demo runs, kcat (an outside client) reads `match-history` from the printed
/// bootstrap address and `GET /matches/history` returns the same matches.
#[test]
fn an_outside_client_and_the_read_api_see_the_same_history_while_the_demo_runs() {
    let kcat = which("kcat")
        .expect("kcat is required: run scripts/setup.sh (the README's test command does)");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = DemoOptions {
        matches: Some(8),
        http: Some("127.0.0.1:0".parse().unwrap()),
        response_window: Duration::from_secs(2),
        voting_window: Duration::from_secs(2),
        partitions: 4,
        progress: false,
        on_ready: Some(ready_tx),
        shutdown: Some(stop_rx),
        ..DemoOptions::default()
    };
    let demo = rt.spawn(demo::run(opts, None));
    let (bootstrap, api) = ready_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    let api = api.unwrap();
    let http = reqwest::blocking::Client::new();
    let mut from_api = BTreeSet::new();
    let ok = topology::testing::wait_until(Duration::from_secs(120), || {
        let Ok(resp) = http
            .get(format!("http://{api}/matches/history?limit=100"))
            .send()
        else {
            return false;
        };
        let Ok(docs) = resp.json::<Vec<serde_json::Value>>() else {
            return false;
        };
        from_api = docs
            .iter()
            .filter_map(|d| d["matchId"].as_str().map(str::to_string))
            .collect();
        from_api.len() >= 8
    });
    assert!(ok, "the API saw {} matches", from_api.len());
    let out = Command::new(kcat)
        .args([
            "-b",
            &bootstrap,
            "-C",
            "-t",
            "match-history",
            "-e",
            "-q",
            "-f",
            "%k\n",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_kcat: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    stop_tx.send(true).unwrap();
    let summary = rt.block_on(demo).unwrap().unwrap();
    assert_eq!(
        from_kcat, from_api,
        "kcat and GET /matches/history see the same matches"
    );
    assert!(summary.matches >= 8);
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(bin))
            .find(|p| p.is_file())
    })
}

/// Runs `orchestra demo` for two one-round matches with `extra` flags and no `RUST_LOG`;
/// returns (stdout, stderr).
fn short_demo(state: &std::path::Path, extra: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args([
            "demo",
            "--matches",
            "2",
            "--exit-when-done",
            "--rounds",
            "1",
        ])
        .args(["--http", "127.0.0.1:0"])
        .args(["--response-window-ms", "1000", "--voting-window-ms", "1000"])
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "demo failed: {stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn the_demo_console_shows_addresses_and_summary_and_the_worker_log_goes_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (stdout, stderr) = short_demo(&state, &[]);
    let log_path = state.join("orchestra.log");
    for want in [
        "embedded broker: ".to_string(),
        "read API: http://127.0.0.1:".to_string(),
        format!("log: {}", log_path.display()),
        "matches: 2".to_string(),
    ] {
        assert!(
            stdout.contains(&want),
            "`{want}` not on the console:\n{stdout}"
        );
    }
    assert!(
        !stderr.contains("INFO"),
        "the console is not a wall of INFO lines:\n{stderr}"
    );
    let log = std::fs::read_to_string(&log_path).expect("the log file");
    assert!(
        log.contains("INFO") && log.contains("assignment done"),
        "the workers' log is in the file:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "no colour codes in the file");

    // -v: the log is on the console instead.
    let (_, stderr) = short_demo(&dir.path().join("state-v"), &["-v"]);
    assert!(stderr.contains("assignment done"), "{stderr}");
}
