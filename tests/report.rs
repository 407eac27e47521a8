//! Issue 16 item 5: the HTML report. A demo (in process, embedded broker, read API on
//! loopback) plays a few matches; `GET /report` serves the page with its SVG plots and the
//! figures of the matches in the history view; `orchestra report --history-file` writes
//! the same page for the same documents; headless Chromium (Debian's package,
//! `scripts/install-chromium.sh`) renders it to a PNG screenshot. With
//! `UPDATE_SCREENSHOT=1` the screenshot is copied to `docs/report.png`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use orchestra::demo::{self, DemoOptions};
use orchestra::export::Documents;
use orchestra::report::Figures;
use orchestra::time_range::TimeRange;

const MATCHES: usize = 6;

#[test]
fn the_report_is_served_written_by_the_cli_and_renders_in_headless_chromium() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = DemoOptions {
        matches: Some(MATCHES as u64),
        http: Some("127.0.0.1:0".parse().unwrap()),
        rounds: 2,
        response_window: Duration::from_millis(1500),
        voting_window: Duration::from_millis(1500),
        partitions: 4,
        progress: false,
        on_ready: Some(ready_tx),
        shutdown: Some(stop_rx),
        ..DemoOptions::default()
    };
    let demo = rt.spawn(demo::run(opts, None));
    let (_bootstrap, api) = ready_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    let api = api.unwrap();
    let http = reqwest::blocking::Client::new();
    let mut history: Vec<serde_json::Value> = Vec::new();
    let all_in = topology::testing::wait_until(Duration::from_secs(180), || {
        history = http
            .get(format!("http://{api}/matches/history?limit=100"))
            .send()
            .and_then(|r| r.json())
            .unwrap_or_default();
        history.len() >= MATCHES
    });
    assert!(all_in, "{} matches in the history", history.len());

    // GET /report: HTML with one SVG per plot and the figures of these matches.
    let resp = http.get(format!("http://{api}/report")).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let served = resp.text().unwrap();
    let lines: String = history.iter().map(|h| format!("{h}\n")).collect();
    let docs = Documents::from_json_lines(&lines, TimeRange::default());
    assert_eq!(docs.histories.len(), MATCHES);
    let f = Figures::compute(&docs.histories, &Default::default());
    let accuracy = format!(
        "<b id=\"accuracy\">{:.1}%</b>",
        f.accuracy.rate().unwrap() * 100.0
    );
    for want in [
        format!("<span id=\"matches\">{MATCHES}</span>"),
        accuracy.clone(),
        "id=\"accuracy-over-time\"".into(),
        "id=\"accuracy-per-template\"".into(),
        "id=\"fooled-per-personality\"".into(),
        "id=\"round-durations\"".into(),
        "id=\"robots-per-model\"".into(),
        "id=\"matches-per-hour\"".into(),
        "<td>offline</td>".into(),
    ] {
        assert!(served.contains(&want), "`{want}` not in GET /report");
    }
    assert!(
        served.matches("<svg").count() >= 7,
        "a plot per figure (two for the models)"
    );
    assert!(
        !served.contains("<script") && !served.contains("src=\"http"),
        "self-contained"
    );
    // A future --since leaves nothing; a malformed one is a 400.
    let empty = http
        .get(format!("http://{api}/report?since=2999-01-01"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(empty.contains("<span id=\"matches\">0</span>"));
    let bad = http
        .get(format!("http://{api}/report?since=yesterday"))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    stop_tx.send(true).unwrap();
    rt.block_on(demo).unwrap().unwrap();

    // orchestra report --history-file: the same figures in a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.jsonl");
    std::fs::write(&file, format!("{lines}{{\"not\": \"a history\"}}\n")).unwrap();
    let html = dir.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .arg("report")
        .arg("--history-file")
        .arg(&file)
        .arg("--out")
        .arg(&html)
        .args(["--price", "offline=0.5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped 1 undecodable"));
    let written = std::fs::read_to_string(&html).unwrap();
    assert!(written.contains(&accuracy) && written.contains("1 undecodable documents"));

    // Headless Chromium renders it.
    let png = dir.path().join("report.png");
    let chromium = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,2600")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium (scripts/install-chromium.sh, run by scripts/setup.sh)");
    assert!(
        chromium.status.success(),
        "{}",
        String::from_utf8_lossy(&chromium.stderr)
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 50_000,
        "a page with plots, not a blank one: {} bytes",
        bytes.len()
    );
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.png");
        std::fs::copy(&png, dest).unwrap();
    }
}
