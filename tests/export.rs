//! Issue 16: the analysts' path, with real parts — `orchestra demo --export` and
//! `orchestra export` as processes (the demo's embedded broker, `orchestra broker`), real
//! files, DuckDB from PyPI (`scripts/duckdb_recipe.py`) and `jq`.
//!
//! * the demo's Parquet export answers DuckDB (`count(*)` of matches = matches played;
//!   `responses` has one row per recorded answer), and every figure of the README's DuckDB
//!   recipe equals one computed here from the history documents (JSON, independently of
//!   the export code), as do the report's figures;
//! * `orchestra export --format csv --since` against `orchestra broker` keeps the matches
//!   completed in the range, skips and counts a malformed document, and DuckDB reads the
//!   CSV;
//! * `orchestra history --since` and `tail` print JSON lines only (logs at debug go to
//!   stderr), which `jq` reads;
//! * the README's column table is the export's.

#[path = "support/procs.rs"]
mod procs;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use orchestra::export::{columns_markdown, Documents};
use orchestra::report::Figures;
use orchestra::time_range::TimeRange;
use serde_json::Value;

const MATCHES: usize = 12;

/// The demo run shared by the tests: its temp dir, the export dir, the history lines.
struct Demo {
    _dir: tempfile::TempDir,
    export: PathBuf,
    history: Vec<Value>,
    history_text: String,
}

fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("out");
        let history_file = dir.path().join("history.jsonl");
        let output = Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .args([
                "demo",
                "--matches",
                &MATCHES.to_string(),
                "--exit-when-done",
            ])
            .args(["--http", "off", "--rounds", "2"])
            .args(["--response-window-ms", "1500", "--voting-window-ms", "1500"])
            .arg("--export")
            .arg(&export)
            .args(["--format", "parquet"])
            .arg("--history-out")
            .arg(&history_file)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "demo failed: {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            stderr.contains("export: wrote") && stderr.contains("matches.parquet"),
            "progress on stderr: {stderr}"
        );
        let history_text = std::fs::read_to_string(&history_file).unwrap();
        let history: Vec<Value> = history_text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(history.len(), MATCHES);
        Demo {
            _dir: dir,
            export,
            history,
            history_text,
        }
    })
}

/// `python3 -c CODE ARGS...`'s stdout; fails with its stderr.
fn python(code: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3 (scripts/setup.sh installs it and duckdb)");
    assert!(
        out.status.success(),
        "python3 failed (is duckdb installed? scripts/setup.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `select count(*) from FILE` through DuckDB.
fn duckdb_count(file: &Path) -> u64 {
    let sql = format!(
        "select count(*) from '{}'",
        file.display().to_string().replace('\'', "''")
    );
    let out = python(
        "import sys, duckdb; print(duckdb.sql(sys.argv[1]).fetchall()[0][0])",
        &[&sql],
    );
    out.trim().parse().unwrap()
}

/// The README's recipe through `scripts/duckdb_recipe.py DIR --json`.
fn recipe(dir: &Path) -> BTreeMap<String, Vec<Value>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/duckdb_recipe.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb_recipe.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Figures computed from the history documents as JSON, independently of the export and
/// report code.
#[derive(Debug, Default)]
struct Expected {
    /// template → (human votes, naming a human)
    per_template: BTreeMap<String, (u64, u64)>,
    /// personality → (human votes seen, taken for human)
    per_personality: BTreeMap<String, (u64, u64)>,
    round_durations: Vec<u64>,
    /// model → (answers, tokens, latency sum)
    per_model: BTreeMap<String, (u64, u64, u64)>,
    responses: u64,
    votes: u64,
    voices: u64,
    seats: u64,
    rounds: u64,
}

fn expected(histories: &[Value]) -> Expected {
    let mut e = Expected::default();
    for h in histories {
        let kind: BTreeMap<&str, &str> = h["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["identity"].as_str().unwrap(), s["kind"].as_str().unwrap()))
            .collect();
        e.seats += kind.len() as u64;
        let template = h["template"].as_str().unwrap().to_string();
        for r in h["rounds"].as_array().unwrap() {
            e.rounds += 1;
            if let Some(d) = r["durationMs"].as_u64() {
                e.round_durations.push(d);
            }
            let votes = r["votes"].as_array().unwrap();
            e.votes += votes.len() as u64;
            let human_targets: Vec<&str> = votes
                .iter()
                .filter(|v| kind[v["voter"].as_str().unwrap()] == "human")
                .map(|v| v["votedFor"].as_str().unwrap())
                .collect();
            let t = e.per_template.entry(template.clone()).or_default();
            t.0 += human_targets.len() as u64;
            t.1 += human_targets.iter().filter(|x| kind[*x] == "human").count() as u64;
            for robot in r["robots"].as_array().unwrap() {
                e.voices += 1;
                let seat = robot["identity"].as_str().unwrap();
                let p = e
                    .per_personality
                    .entry(robot["personality"].as_str().unwrap().to_string())
                    .or_default();
                p.0 += human_targets.len() as u64;
                p.1 += human_targets.iter().filter(|x| **x == seat).count() as u64;
            }
            for x in r["responses"].as_array().unwrap() {
                e.responses += 1;
                if x["source"] == "robot" {
                    let model = x["model"]
                        .as_str()
                        .unwrap_or_else(|| panic!("a robot answer carries its model: {x}"));
                    let m = e.per_model.entry(model.to_string()).or_default();
                    m.0 += 1;
                    m.1 += x["tokens"].as_u64().unwrap();
                    m.2 += x["latencyMs"].as_u64().unwrap();
                }
            }
        }
    }
    // The recipe's accuracy is over human votes: a template whose humans never voted
    // (all silent, or their votes came after the deadline) has no row.
    e.per_template.retain(|_, (votes, _)| *votes > 0);
    e
}

fn as_u64(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_f64().map(|f| f as u64))
        .unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn the_demo_export_answers_duckdb_and_the_readme_recipe_matches_the_history_documents() {
    let d = demo();
    let e = expected(&d.history);
    let file = |t: &str| d.export.join(format!("{t}.parquet"));
    assert_eq!(duckdb_count(&file("matches")), MATCHES as u64);
    assert_eq!(
        duckdb_count(&file("responses")),
        e.responses,
        "one row per recorded answer"
    );
    assert_eq!(duckdb_count(&file("votes")), e.votes);
    assert_eq!(duckdb_count(&file("seats")), e.seats);
    assert_eq!(duckdb_count(&file("rounds")), e.rounds);
    assert_eq!(duckdb_count(&file("robot_voices")), e.voices);
    assert!(duckdb_count(&file("stats")) >= 1, "match-stats windows");
    assert!(e.per_model.contains_key("offline"), "{:?}", e.per_model);

    let r = recipe(&d.export);
    // Per template.
    let got: BTreeMap<String, (u64, u64)> = r["accuracy_per_template"]
        .iter()
        .map(|row| {
            (
                row["template"].as_str().unwrap().to_string(),
                (as_u64(&row["human_votes"]), as_u64(&row["correct"])),
            )
        })
        .collect();
    assert_eq!(got, e.per_template);
    for row in &r["accuracy_per_template"] {
        let (n, c) = (as_u64(&row["human_votes"]), as_u64(&row["correct"]));
        let acc = row["accuracy"].as_f64().unwrap();
        assert!((acc - c as f64 / n as f64).abs() < 1e-4, "{row}");
    }
    // Per day: every human vote is in one day.
    let per_day: u64 = r["accuracy_per_day"]
        .iter()
        .map(|row| as_u64(&row["human_votes"]))
        .sum();
    assert_eq!(per_day, e.per_template.values().map(|t| t.0).sum::<u64>());
    // Per personality.
    let got: BTreeMap<String, (u64, u64)> = r["fooled_per_personality"]
        .iter()
        .map(|row| {
            (
                row["personality"].as_str().unwrap().to_string(),
                (
                    as_u64(&row["human_votes_seen"]),
                    as_u64(&row["taken_for_human"]),
                ),
            )
        })
        .collect();
    assert_eq!(got, e.per_personality);
    // Round durations.
    let rd = &r["round_duration"][0];
    assert_eq!(as_u64(&rd["rounds"]), e.round_durations.len() as u64);
    let mean = e.round_durations.iter().sum::<u64>() as f64 / e.round_durations.len() as f64;
    assert!(
        (rd["mean_round_ms"].as_f64().unwrap() - mean).abs() < 0.06,
        "{rd} vs {mean}"
    );
    // Tokens, latency and cost per model.
    let got: BTreeMap<String, (u64, u64)> = r["tokens_and_cost_per_model"]
        .iter()
        .map(|row| {
            (
                row["model"].as_str().unwrap().to_string(),
                (as_u64(&row["answers"]), as_u64(&row["tokens"])),
            )
        })
        .collect();
    let want: BTreeMap<String, (u64, u64)> = e
        .per_model
        .iter()
        .map(|(k, v)| (k.clone(), (v.0, v.1)))
        .collect();
    assert_eq!(got, want);

    // The report's figures are the same ones.
    let docs = Documents::from_json_lines(&d.history_text, TimeRange::default());
    let f = Figures::compute(&docs.histories, &Default::default());
    let report_templates: BTreeMap<String, (u64, u64)> = f
        .accuracy_per_template
        .iter()
        .map(|(k, r)| (k.clone(), (r.total, r.hits)))
        .collect();
    assert_eq!(report_templates, e.per_template);
    let report_personalities: BTreeMap<String, (u64, u64)> = f
        .fooled_per_personality
        .iter()
        .map(|(k, r)| (k.clone(), (r.total, r.hits)))
        .collect();
    assert_eq!(report_personalities, e.per_personality);
    assert_eq!(f.round_durations_ms.len(), e.round_durations.len());
    assert_eq!(f.per_model["offline"].answers, e.per_model["offline"].0);
}

/// Produces `values` to `topic` keyed by `key` and waits for every delivery.
fn produce(bootstrap: &str, topic: &str, values: &[(String, Vec<u8>)]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (k, v) in values {
        producer
            .send(BaseRecord::to(topic).key(k).payload(v))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn run(args: &[&str], envs: &[(&str, &str)]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "orchestra {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn export_from_a_broker_process_filters_by_time_skips_bad_documents_and_writes_csv_duckdb_reads() {
    let d = demo();
    // Matches whose last round ends on the same deadline complete in the same
    // millisecond: spread the completion times (keeping their order) so that a time
    // filter always has two sides to split.
    let first = d
        .history
        .iter()
        .filter_map(|h| h["completedAt"].as_i64())
        .min()
        .unwrap();
    let mut order: Vec<usize> = (0..d.history.len()).collect();
    order.sort_by_key(|&i| d.history[i]["completedAt"].as_i64().unwrap());
    let mut history: Vec<Value> = d.history.clone();
    for (rank, &i) in order.iter().enumerate() {
        history[i]["completedAt"] = serde_json::json!(first + rank as i64 * 1000);
    }
    let dir = tempfile::tempdir().unwrap();
    let (_broker, bootstrap) = procs::broker(dir.path(), &["--partitions", "2"]);
    let mut values: Vec<(String, Vec<u8>)> = history
        .iter()
        .map(|h| {
            (
                h["matchId"].as_str().unwrap().to_string(),
                serde_json::to_vec(h).unwrap(),
            )
        })
        .collect();
    values.push(("broken".into(), b"{\"matchId\": 5, ".to_vec()));
    produce(&bootstrap, "match-history", &values);

    // --since: the later half of the matches by completion time.
    let mut completed: Vec<i64> = history
        .iter()
        .map(|h| h["completedAt"].as_i64().unwrap())
        .collect();
    completed.sort_unstable();
    let since = completed[completed.len() / 2];
    let kept: Vec<Value> = history
        .iter()
        .filter(|h| h["completedAt"].as_i64().unwrap() >= since)
        .cloned()
        .collect();
    assert!(!kept.is_empty() && kept.len() < MATCHES);
    let out = dir.path().join("csv");
    let since_arg = since.to_string();
    let (stdout, stderr) = run(
        &[
            "export",
            "--bootstrap-servers",
            &bootstrap,
            "--format",
            "csv",
            "--since",
            &since_arg,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        stdout.contains("skipped 1 undecodable documents"),
        "{stdout}"
    );
    assert!(stderr.contains("export: reading match-history"), "{stderr}");
    let e = expected(&kept);
    assert_eq!(duckdb_count(&out.join("matches.csv")), kept.len() as u64);
    assert_eq!(duckdb_count(&out.join("responses.csv")), e.responses);
    // The recipe runs on CSV too, with the same figures.
    let r = recipe(&out);
    let got: BTreeMap<String, (u64, u64)> = r["accuracy_per_template"]
        .iter()
        .map(|row| {
            (
                row["template"].as_str().unwrap().to_string(),
                (as_u64(&row["human_votes"]), as_u64(&row["correct"])),
            )
        })
        .collect();
    assert_eq!(got, e.per_template);
    // Text with commas, quotes and line breaks survives CSV.
    let texts = python(
        "import sys, duckdb; print(duckdb.sql(\"select count(*) from read_csv('%s', header=true) where text like '%%,%%'\" % sys.argv[1].replace(\"'\", \"''\")).fetchall()[0][0])",
        &[out.join("responses.csv").to_str().unwrap()],
    );
    let with_commas = kept
        .iter()
        .flat_map(|h| h["rounds"].as_array().unwrap().iter())
        .flat_map(|r| r["responses"].as_array().unwrap().iter())
        .filter(|x| x["text"].as_str().unwrap().contains(','))
        .count();
    assert_eq!(texts.trim(), with_commas.to_string());

    // history --since: JSON lines only on stdout, even with debug logs on stderr.
    let (stdout, stderr) = run(
        &[
            "history",
            "--bootstrap-servers",
            &bootstrap,
            "--since",
            &since_arg,
            "--limit",
            "1000",
        ],
        &[("RUST_LOG", "debug")],
    );
    assert!(!stderr.is_empty(), "debug logs go to stderr");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), kept.len());
    let ids = jq(&stdout, "-r", ".matchId");
    let mut want: Vec<String> = kept
        .iter()
        .map(|h| h["matchId"].as_str().unwrap().to_string())
        .collect();
    let mut got: Vec<String> = ids.lines().map(str::to_string).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let (until_out, _) = run(
        &[
            "history",
            "--bootstrap-servers",
            &bootstrap,
            "--until",
            &since_arg,
            "--limit",
            "1000",
        ],
        &[],
    );
    assert_eq!(until_out.lines().count(), MATCHES - kept.len());

    // tail: JSON lines only.
    let limit = (MATCHES + 1).to_string();
    let (stdout, _) = run(
        &[
            "tail",
            "match-history",
            "--from-beginning",
            "--limit",
            &limit,
            "--bootstrap-servers",
            &bootstrap,
        ],
        &[("RUST_LOG", "debug")],
    );
    assert_eq!(stdout.lines().count(), MATCHES + 1);
    let keys = jq(&stdout, "-r", ".key");
    assert!(keys.lines().any(|k| k == "broken"), "{keys}");
}

/// `jq FLAG FILTER` over `input`.
fn jq(input: &str, flag: &str, filter: &str) -> String {
    let mut child = Command::new("jq")
        .args([flag, filter])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jq (scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "jq failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_readme_column_table_is_the_exports() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        "<!-- export-columns:start -->\n",
        "<!-- export-columns:end -->",
    );
    let a = readme.find(start).expect("export-columns markers") + start.len();
    let b = readme[a..].find(end).expect("end marker") + a;
    let want = columns_markdown();
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{want}{}", &readme[..a], &readme[b..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        &readme[a..b],
        want,
        "README's column table differs from the export (UPDATE_README=1 rewrites it)"
    );
}
