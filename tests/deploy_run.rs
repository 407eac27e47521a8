//! `deploy/` run as documented, as far as this machine allows (no Docker, no cluster): the
//! compose services' and the Kubernetes workloads' own commands and environment, read from
//! the files, are given to real `orchestra` processes — against `orchestra broker` for the
//! workers (they complete a match) and against a Tansu broker for the topics Job (the
//! embedded broker has no CreateTopics API).
//!
//! Only what differs between a container and this machine is replaced: the bootstrap
//! address, the state directory (a temp dir per process), the HTTP port (a free loopback
//! port: the containers all listen on 8080) and the topic spec's path in the image (the
//! repository's `deploy/topics.json`, which the Dockerfile copies there).

#[path = "support/http.rs"]
mod http;
#[path = "support/procs.rs"]
mod procs;

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde::Deserialize as _;
use serde_json::json;
use serde_yaml::Value as Yaml;

use http::{get, play_human, poll, post, token_of, wait_ready, PLAY};
use procs::{Proc, START};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A process definition from a deploy file: its arguments and environment.
#[derive(Debug, Clone)]
struct Workload {
    name: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

impl Workload {
    /// The same command on this machine: see the module docs for what is replaced.
    fn localized(&self, bootstrap: &str, dir: &Path) -> (Vec<String>, Vec<(String, String)>) {
        let state = dir.join(format!("{}-state", self.name));
        let spec = format!("{ROOT}/deploy/topics.json");
        let args = self
            .args
            .iter()
            .map(|a| match a.as_str() {
                "/var/lib/orchestra" => state.display().to_string(),
                "0.0.0.0:8080" => "127.0.0.1:0".to_string(),
                "/etc/orchestra/topics.json" => spec.clone(),
                other => other.to_string(),
            })
            .collect();
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| match k.as_str() {
                "KAFKA_BOOTSTRAP_SERVERS" => (k.clone(), bootstrap.to_string()),
                _ => (k.clone(), v.clone()),
            })
            .collect();
        // The image's ENV (deploy/Dockerfile), which the workloads rely on.
        if !self.env.contains_key("ORCHESTRA_STATE_DIR") {
            env.push(("ORCHESTRA_STATE_DIR".into(), state.display().to_string()));
        }
        (args, env)
    }

    fn spawn(&self, bootstrap: &str, dir: &Path) -> Proc {
        let (args, env) = self.localized(bootstrap, dir);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Proc::spawn(&self.name, &args, &env, dir)
    }
}

fn yaml_strings(v: &Yaml) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .map(|a| match a {
            Yaml::String(s) => s.clone(),
            other => serde_yaml::to_string(other).unwrap().trim().to_string(),
        })
        .collect()
}

/// `${NAME:-default}` as compose expands it with NAME unset.
fn compose_default(v: &str) -> String {
    match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner
            .split_once(":-")
            .map(|(_, d)| d.to_string())
            .unwrap_or_default(),
        None => v.to_string(),
    }
}

/// The compose service `name` (anchors merged).
fn compose_service(name: &str) -> Workload {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/compose/docker-compose.yml"))
        .expect("compose file");
    let mut doc: Yaml = serde_yaml::from_str(&text).expect("compose YAML");
    doc.apply_merge().expect("merge keys");
    let mut svc = doc["services"][name].clone();
    assert!(!svc.is_null(), "compose has no service {name}");
    svc.apply_merge().expect("merge keys");
    let env = svc["environment"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            // A key without a value passes the shell's variable through: unset here.
            let v = v.as_str()?;
            Some((k.as_str()?.to_string(), compose_default(v)))
        })
        .collect();
    Workload {
        name: name.to_string(),
        args: yaml_strings(&svc["command"]),
        env,
    }
}

/// The first container of the Kubernetes object `kind`/`name`, its `configMapKeyRef`
/// variables resolved from `configmap.yaml` (optional secrets left unset).
fn kubernetes_workload(kind: &str, name: &str) -> Workload {
    let dir = format!("{ROOT}/deploy/kubernetes");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("deploy/kubernetes") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let text = std::fs::read_to_string(&path).expect("manifest");
            for d in serde_yaml::Deserializer::from_str(&text) {
                docs.push(Yaml::deserialize(d).expect("manifest YAML"));
            }
        }
    }
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "orchestra-config")
        .expect("ConfigMap orchestra-config")["data"]
        .clone();
    let obj = docs
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"));
    let container = &obj["spec"]["template"]["spec"]["containers"][0];
    let mut env = BTreeMap::new();
    for e in container["env"].as_sequence().into_iter().flatten() {
        let key = e["name"].as_str().expect("env name").to_string();
        if let Some(v) = e["value"].as_str() {
            env.insert(key, v.to_string());
        } else if let Some(k) = e["valueFrom"]["configMapKeyRef"]["key"].as_str() {
            match config[k].as_str() {
                Some(v) => {
                    env.insert(key, v.to_string());
                }
                None => assert!(
                    e["valueFrom"]["configMapKeyRef"]["optional"] == Yaml::Bool(true),
                    "{kind} {name}: {key} refers to {k}, which the ConfigMap lacks"
                ),
            }
        }
    }
    Workload {
        name: name.to_string(),
        args: yaml_strings(&container["args"]),
        env,
    }
}

/// Starts the stream workers and the robot worker, waits until all are ready, creates a
/// match with one human and three robots, plays it to the end through the owner's read API
/// and checks its history.
fn play_a_match_with(workers: &[Workload], robots: &Workload) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_broker, bootstrap) = procs::broker(dir.path(), &["--partitions", "4"]);
    let http = Client::new();
    let mut procs = Vec::new();
    let mut bases = Vec::new();
    for w in workers.iter().chain([robots]) {
        let p = w.spawn(&bootstrap, dir.path());
        let base = p.line_starting("read API: ", START);
        procs.push(p);
        bases.push(base);
    }
    for (p, base) in procs.iter().zip(&bases) {
        wait_ready(&http, base, p);
    }
    let stream_bases = &bases[..workers.len()];
    // Both stream workers get tasks once the group has rebalanced: the partitions really
    // are shared.
    for base in stream_bases {
        poll(START, || {
            let (s, health) = get(&http, &format!("{base}/health"));
            let tasks = health["workers"][0]["tasks"].as_array().map_or(0, Vec::len);
            (s == StatusCode::OK && tasks > 0).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{base} never got a task: {:?}",
                get(&http, &format!("{base}/health"))
            )
        });
    }

    let (s, body) = post(
        &http,
        &format!("{}/matches", stream_bases[0]),
        json!({"template": "classic_1v3", "totalRounds": 2, "humans": [{"playerId": "p1", "name": "Ann"}]}),
    );
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let match_id = body["matchId"].as_str().expect("matchId").to_string();
    // The worker whose task owns the match answers 200; the other one 421.
    let owner = poll(PLAY, || {
        stream_bases
            .iter()
            .position(|b| get(&http, &format!("{b}/matches/{match_id}")).0 == StatusCode::OK)
    })
    .unwrap_or_else(|| panic!("no worker serves {match_id}"));
    let token = token_of(&body, "p1");
    let state = play_human(
        &http,
        &stream_bases[owner],
        &match_id,
        &token,
        &procs[owner],
    );
    assert_eq!(state["round"], 2, "{state}");
    let robot_seats = state["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .filter(|s| s["kind"] == "robot")
        .count();
    assert_eq!(robot_seats, 3, "{state}");

    let history = poll(PLAY, || {
        let (_, list) = get(&http, &format!("{}/matches/history", stream_bases[0]));
        list.as_array()?
            .iter()
            .find(|h| h["matchId"] == match_id.as_str())
            .cloned()
    })
    .unwrap_or_else(|| panic!("{match_id} never reached match-history"));
    let rounds = history["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{history}");
    for r in rounds {
        // Every seat answered: the robot worker answered each robot seat's command.
        assert_eq!(
            r["responses"].as_array().map(Vec::len),
            Some(4),
            "round {r}"
        );
    }
    for p in &procs {
        p.terminate();
    }
    for p in &mut procs {
        let status = p
            .wait_exit(START)
            .unwrap_or_else(|| panic!("{} ignored SIGTERM:\n{}", p.name, p.tail()));
        assert!(status.success(), "{}: {status}\n{}", p.name, p.tail());
    }
}

#[test]
fn the_compose_services_commands_and_environment_play_a_match() {
    let workers = [compose_service("worker-1"), compose_service("worker-2")];
    for w in &workers {
        assert_eq!(w.args.first().map(String::as_str), Some("run"), "{w:?}");
    }
    play_a_match_with(&workers, &compose_service("robots"));
}

#[test]
fn the_kubernetes_statefulset_and_robots_deployment_play_a_match() {
    let worker = kubernetes_workload("StatefulSet", "orchestra-worker");
    // Two replicas of the StatefulSet: the same pod spec, each with its own volume.
    let replicas = [
        Workload {
            name: "orchestra-worker-0".into(),
            ..worker.clone()
        },
        Workload {
            name: "orchestra-worker-1".into(),
            ..worker
        },
    ];
    play_a_match_with(
        &replicas,
        &kubernetes_workload("Deployment", "orchestra-robots"),
    );
}

/// Whether Tansu is installed (scripts/install-tansu.sh, run by scripts/setup.sh).
fn tansu_installed() -> bool {
    let installed = std::process::Command::new("sh")
        .args(["-c", "command -v tansu || test -x /usr/local/bin/tansu"])
        .output()
        .is_ok_and(|o| o.status.success());
    // CI runs scripts/setup.sh first: there a missing Tansu is a failure, not a skip.
    assert!(
        installed || std::env::var_os("CI").is_none(),
        "tansu is not installed: run scripts/install-tansu.sh"
    );
    installed
}

#[test]
fn the_topics_job_and_service_create_every_topic_of_the_spec_on_a_kafka_broker() {
    if !tansu_installed() {
        eprintln!("skipped: tansu is not installed (scripts/install-tansu.sh)");
        return;
    }
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/deploy/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("COPY deploy/topics.json /etc/orchestra/topics.json"),
        "the image must carry the spec where the Job and the service read it"
    );
    let spec = orchestra::topics::specs().unwrap();
    for job in [
        compose_service("topics"),
        kubernetes_workload("Job", "orchestra-topics"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_tansu, bootstrap) = procs::tansu(dir.path());
        let mut p = job.spawn(&bootstrap, dir.path());
        let status = p
            .wait_exit(START)
            .unwrap_or_else(|| panic!("{} did not finish:\n{}", job.name, p.tail()));
        assert!(status.success(), "{}: {status}\n{}", job.name, p.tail());

        let list = Proc::spawn(
            "list",
            &["topics", "list", "--bootstrap-servers", &bootstrap],
            &[],
            dir.path(),
        );
        let mut listed = BTreeMap::new();
        loop {
            let line = list.next_line(START);
            if line.is_empty() {
                break;
            }
            let (name, partitions) = line.split_once('\t').expect("NAME\\tPARTITIONS");
            listed.insert(name.to_string(), partitions.parse::<i32>().unwrap());
            if spec.iter().all(|t| listed.contains_key(&t.name)) {
                break;
            }
        }
        for t in &spec {
            assert_eq!(
                listed.get(&t.name),
                Some(&t.partitions),
                "{}: topic {} ({listed:?})",
                job.name,
                t.name
            );
        }
        // Idempotent: a second run (a Job retried, compose up again) succeeds too.
        let mut again = job.spawn(&bootstrap, dir.path());
        let status = again.wait_exit(START).expect("second run finishes");
        assert!(status.success(), "{}: {status}\n{}", job.name, again.tail());
    }
}
