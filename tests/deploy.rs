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
    for t in topology
        .source_topics()
        .into_iter()
        .chain(topology.sink_topics())
    {
        assert!(specs.contains(&t), "topic {t} of the topology has no spec");
    }
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
    let mermaid = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["describe", "--format", "mermaid"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&mermaid.stdout).starts_with("flowchart LR"));
}
