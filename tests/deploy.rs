//! deploy/ cannot run here (no Docker, no cluster): validate what can be validated.

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn deploy_files_parse_and_satisfy_their_invariants() {
    let out = Command::new("python3")
        .arg("deploy/validate.py")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 is installed (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "deploy/validate.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn topic_specs_cover_exactly_the_topics_the_topology_uses() {
    let specs: BTreeSet<String> = orchestra::topics::specs()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    let used: BTreeSet<String> = processors::streams::topics::ALL
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(specs, used);
    let topology = processors::streams::game_topology(&Default::default());
    for t in topology.user_topics() {
        assert!(specs.contains(&t), "topic {t} of the topology has no spec");
    }
    // The stats repartition topic is internal: named after the application id by the runtime.
    assert_eq!(
        topology.repartition_topics("robotorchestra"),
        vec!["robotorchestra-match-stats-repartition".to_string()]
    );
    assert!(specs.iter().all(|t| !t.ends_with("-repartition")));
    let specs = orchestra::topics::specs().unwrap();
    let partitions = |name: &str| specs.iter().find(|t| t.name == name).unwrap().partitions;
    assert_eq!(partitions("match-requests"), partitions("robot-responses"));
    assert_eq!(
        partitions("match-requests"),
        partitions("robot-orchestration-events")
    );
    let events = specs.iter().find(|t| t.name == "match-events").unwrap();
    assert_eq!(
        events.config["retention.ms"], "-1",
        "match-events keeps everything"
    );
}

#[test]
fn cli_help_is_there_for_every_command() {
    for cmd in [
        "demo", "run", "topics", "describe", "replay", "tail", "history", "stats",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .args([cmd, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{cmd} --help prints usage"
        );
    }
}

#[test]
fn describe_prints_the_topology_as_text_and_mermaid() {
    let text = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .arg("describe")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Processor: match") && text.contains("robotorchestra-matches-changelog"),
        "{text}"
    );
    let sink = "-> sink by-window: robotorchestra-match-stats-repartition (repartition topic)";
    let source = "<- sources: robotorchestra-match-stats-repartition";
    assert!(text.contains(sink) && text.contains(source), "{text}");
    let mermaid = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["describe", "--format", "mermaid"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&mermaid.stdout).starts_with("flowchart LR"));
}

/// Every command line `deploy/` gives to the `orchestra` binary: `(where, argv after the
/// program name, environment names set for it)`.
fn deploy_command_lines() -> Vec<(String, Vec<String>, Vec<String>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();

    // Compose: every service built from the orchestra image.
    let compose = root.join("deploy/compose/docker-compose.yml");
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&compose).unwrap()).unwrap();
    doc.apply_merge().unwrap();
    for (name, svc) in doc["services"].as_mapping().unwrap() {
        if !is_orchestra_image(&svc["image"]) {
            continue;
        }
        let mut svc = svc.clone();
        svc.apply_merge().unwrap();
        let args = strings(&svc["command"]);
        let env = svc["environment"]
            .as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        found.push((
            format!("compose service {}", name.as_str().unwrap()),
            args,
            env,
        ));
    }

    // Kubernetes: every container running the orchestra image.
    for entry in std::fs::read_dir(root.join("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let doc = serde_yaml::Value::deserialize(doc).unwrap();
            let containers = &doc["spec"]["template"]["spec"]["containers"];
            for c in containers.as_sequence().into_iter().flatten() {
                if !is_orchestra_image(&c["image"]) {
                    continue;
                }
                let entries: Vec<&serde_yaml::Value> =
                    c["env"].as_sequence().into_iter().flatten().collect();
                // A variable only other values refer to (`$(POD_IP)`, Kubernetes'
                // dependent variables) is an input of those, not read by orchestra.
                let referenced = |name: &str| {
                    entries.iter().any(|e| {
                        e["value"]
                            .as_str()
                            .is_some_and(|v| v.contains(&format!("$({name})")))
                    })
                };
                let env = entries
                    .iter()
                    .filter_map(|e| e["name"].as_str().map(String::from))
                    .filter(|n| !referenced(n))
                    .collect();
                found.push((
                    format!(
                        "{} container {}",
                        path.display(),
                        c["name"].as_str().unwrap()
                    ),
                    strings(&c["args"]),
                    env,
                ));
            }
        }
    }

    // README snippets: every line of a code block that runs `orchestra`.
    for doc in [
        "deploy/README.md",
        "deploy/kubernetes/README.md",
        "README.md",
    ] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let mut in_code = false;
        let mut pending = String::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            if !in_code {
                continue;
            }
            let line = line.trim_start().trim_start_matches("$ ");
            if pending.is_empty() && !line.starts_with("orchestra ") {
                continue;
            }
            match line.strip_suffix('\\') {
                Some(head) => pending.push_str(head),
                None => {
                    pending.push_str(line);
                    let words = shell_words::split(&pending)
                        .unwrap_or_else(|e| panic!("{doc}:{}: {e}: {pending}", i + 1));
                    let args: Vec<String> = words
                        .into_iter()
                        .skip(1)
                        .take_while(|w| !["|", "||", "&&", ";", ">", "&"].contains(&w.as_str()))
                        .take_while(|w| !w.starts_with('#'))
                        .collect();
                    found.push((format!("{doc}:{}", i + 1), args, Vec::new()));
                    pending.clear();
                }
            }
        }
    }
    found
}

fn is_orchestra_image(image: &serde_yaml::Value) -> bool {
    image
        .as_str()
        .is_some_and(|i| i.starts_with("robotorchestra/orchestra"))
}

fn strings(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .map(|a| match a {
            serde_yaml::Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other).unwrap().trim().to_string(),
        })
        .collect()
}

use serde::Deserialize as _;

/// The environment variables a command reads (its flags' `env`, the global ones and the
/// librdkafka settings).
fn env_names_of(args: &[String]) -> BTreeSet<String> {
    use clap::CommandFactory as _;
    let mut cmd = orchestra::cli::Cli::command();
    let mut names: BTreeSet<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    for word in args.iter().filter(|a| !a.starts_with('-')) {
        match cmd.find_subcommand(word) {
            Some(sub) => cmd = sub.clone(),
            None => break,
        }
        names.extend(
            cmd.get_arguments()
                .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned())),
        );
    }
    names.insert("RUST_LOG".into());
    names
}

#[test]
fn every_orchestra_command_line_in_deploy_parses_with_the_real_cli() {
    use clap::Parser as _;
    let lines = deploy_command_lines();
    for want in [
        "compose service topics",
        "compose service worker-1",
        "statefulset.yaml",
    ] {
        assert!(
            lines.iter().any(|(w, _, _)| w.contains(want)),
            "no command line found for {want}: {lines:?}"
        );
    }
    let mut failures = Vec::new();
    for (place, args, env) in &lines {
        let argv = std::iter::once("orchestra".to_string()).chain(args.iter().cloned());
        if let Err(e) = orchestra::cli::Cli::try_parse_from(argv) {
            failures.push(format!("{place}: `orchestra {}`:\n{e}", args.join(" ")));
            continue;
        }
        let known = env_names_of(args);
        for name in env {
            let kafka_setting = name.starts_with(orchestra::kafka_config::ENV_PREFIX);
            if !known.contains(name) && !kafka_setting {
                failures.push(format!(
                    "{place}: environment variable {name} is read by no flag of `orchestra {}`",
                    args.join(" ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_cli_rejects_a_flag_that_does_not_exist() {
    // The test above can fail: the same parser refuses what clap refused before the fix.
    use clap::Parser as _;
    let e =
        orchestra::cli::Cli::try_parse_from(["orchestra", "topics", "create", "--no-such-flag"])
            .unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
}

#[test]
fn readme_configuration_table_lists_every_run_flag_with_its_env_and_default() {
    use clap::CommandFactory as _;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `--")).collect();
    let cli = orchestra::cli::Cli::command();
    let run = cli.find_subcommand("run").unwrap();
    let mut missing = Vec::new();
    for arg in cli.get_arguments().chain(run.get_arguments()) {
        let Some(long) = arg.get_long() else { continue };
        if ["help", "version"].contains(&long) {
            continue;
        }
        let Some(row) = rows.iter().find(|r| r.starts_with(&format!("| `--{long}"))) else {
            missing.push(format!("--{long}: no row"));
            continue;
        };
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            if !row.contains(&format!("`{env}`")) {
                missing.push(format!("--{long}: env {env} not in `{row}`"));
            }
        }
        for default in arg.get_default_values() {
            let default = default.to_string_lossy();
            if !row.contains(&format!("`{default}`")) {
                missing.push(format!("--{long}: default {default} not in `{row}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "README configuration table:\n{}",
        missing.join("\n")
    );
}
