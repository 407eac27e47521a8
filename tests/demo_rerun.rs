//! `orchestra demo --state-dir DIR` twice with the same directory: the embedded broker
//! starts empty each time, so the second run starts every store afresh (and says so) and
//! is as correct as the first — every match in the history with all its rounds, replay
//! clean.

use std::path::Path;
use std::process::Command;

const MATCHES: usize = 6;
const ROUNDS: usize = 2;

fn demo(state: &Path, history: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args([
            "demo",
            "--exit-when-done",
            "--replay-check",
            "--http",
            "off",
        ])
        .args([
            "--matches",
            &MATCHES.to_string(),
            "--rounds",
            &ROUNDS.to_string(),
        ])
        .args(["--response-window-ms", "2000", "--voting-window-ms", "2000"])
        .arg("--state-dir")
        .arg(state)
        .arg("--history-out")
        .arg(history)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("orchestra demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("replay: clean"), "{stdout}");
    let text = std::fs::read_to_string(history).expect("history file");
    let docs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(docs.len(), MATCHES, "{text}");
    for h in &docs {
        assert_eq!(
            h["rounds"].as_array().map(Vec::len),
            Some(ROUNDS),
            "every round: {h}"
        );
        assert!(
            !h["template"].as_str().unwrap_or_default().is_empty(),
            "{h}"
        );
        assert!(h["createdAt"].as_i64().is_some_and(|t| t > 0), "{h}");
    }
    stdout
}

#[test]
fn a_second_demo_run_with_the_same_state_dir_starts_every_store_afresh_and_is_correct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // Something of the user's in the directory is left alone.
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("notes.txt"), "mine").expect("notes");

    let first = demo(&state, &dir.path().join("h1.jsonl"));
    assert!(!first.contains("removed the stores"), "{first}");
    assert!(
        state.join("worker-0").is_dir(),
        "the first run's stores stay for inspection"
    );

    // A worker's directory exists once it has opened a task: the second worker may have
    // joined too late in a short run to be given one. Whatever the first run left is
    // named and removed.
    let mut left: Vec<String> = std::fs::read_dir(&state)
        .expect("state dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("worker-"))
        .collect();
    left.sort();
    let second = demo(&state, &dir.path().join("h2.jsonl"));
    assert!(
        second.contains(&format!(
            "removed the stores of an earlier run ({})",
            left.join(", ")
        )),
        "{left:?}: {second}"
    );
    assert_eq!(
        std::fs::read_to_string(state.join("notes.txt")).expect("notes"),
        "mine"
    );
}
