//! `orchestra` child processes for end-to-end tests: stdout lines arrive on a channel,
//! stderr goes to a file (its tail is shown when a wait fails); killed on drop.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a process may take to print its first line.
pub const START: Duration = Duration::from_secs(60);
/// The player-token secret (`ORCHESTRA_API_SECRET`) of every process a test spawns.
pub const TEST_API_SECRET: &str = "orchestra-test-api-secret";

/// The children's `RUST_LOG`: `CRASH_RUST_LOG` when set (e.g.
/// `info,rdkafka=warn,topology=debug` to see each task's offsets), else
/// `info,rdkafka=warn`.
fn child_rust_log() -> String {
    std::env::var("CRASH_RUST_LOG").unwrap_or_else(|_| "info,rdkafka=warn".into())
}

/// A child `orchestra` process.
pub struct Proc {
    pub name: String,
    pub child: Child,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Proc {
    /// Starts `orchestra ARGS` with `envs`; stderr goes to `DIR/NAME.stderr` (appended,
    /// so a restarted process keeps its predecessor's log).
    pub fn spawn<S: AsRef<OsStr>>(
        name: &str,
        args: &[S],
        envs: &[(&str, &str)],
        dir: &Path,
    ) -> Proc {
        Self::spawn_program(env!("CARGO_BIN_EXE_orchestra"), name, args, envs, dir)
    }

    /// Starts `PROGRAM ARGS` (see [`Proc::spawn`]).
    pub fn spawn_program<S: AsRef<OsStr>>(
        program: &str,
        name: &str,
        args: &[S],
        envs: &[(&str, &str)],
        dir: &Path,
    ) -> Proc {
        let stderr = dir.join(format!("{name}.stderr"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&stderr)
            .expect("stderr file");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", child_rust_log())
            .env_remove("RUST_BACKTRACE")
            // Every API instance of a test shares the player-token secret (issue 15), as a
            // deployment's instances do; a test may override it through `envs`.
            .env("ORCHESTRA_API_SECRET", TEST_API_SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name: name.to_string(),
            child,
            lines,
            stderr,
        }
    }

    /// The last lines of its stderr.
    pub fn tail(&self) -> String {
        let s = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The next stdout line, within `timeout`.
    pub fn next_line(&self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => l,
            Err(e) => panic!(
                "{}: no stdout line within {timeout:?} ({e}); stderr:\n{}",
                self.name,
                self.tail()
            ),
        }
    }

    /// The rest of the first stdout line starting with `prefix`, within `timeout`.
    pub fn line_starting(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.next_line(deadline.saturating_duration_since(Instant::now()));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_string();
            }
        }
    }

    /// Its whole stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Writes one command line to its stdin and waits for the answer line (`ok: …` or
    /// `error: …`, as `orchestra broker --faults-from-stdin` answers); panics unless it is
    /// `ok: COMMAND`.
    pub fn send(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{command}").expect("write command");
        stdin.flush().expect("flush command");
        let deadline = Instant::now() + START;
        let answer = loop {
            let line = self.next_line(deadline.saturating_duration_since(Instant::now()));
            if line.starts_with("ok: ") || line.starts_with("error: ") {
                break line;
            }
        };
        assert_eq!(answer, format!("ok: {command}"), "{}", self.tail());
    }

    /// Its exit status once it exits, within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// SIGTERM (a clean stop).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `orchestra broker ARGS`, and the bootstrap address from its first line.
pub fn broker(dir: &Path, args: &[&str]) -> (Proc, String) {
    let mut all = vec!["broker".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let p = Proc::spawn("broker", &all, &[], dir);
    let first = p.next_line(START);
    let bootstrap = first
        .strip_prefix("bootstrap: ")
        .unwrap_or_else(|| panic!("first line is not `bootstrap: HOST:PORT`: {first:?}"))
        .to_string();
    assert!(bootstrap.contains(':'), "{bootstrap}");
    (p, bootstrap)
}

/// `orchestra run` (worker id `test-worker`, replication factor 1, state in `DIR/state`)
/// against `bootstrap` with the read API on a free port, plus `extra` flags; and its base URL.
pub fn worker(
    dir: &Path,
    bootstrap: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> (Proc, String) {
    let state = dir.join("state");
    let state = state.to_str().expect("utf-8 path");
    let mut args = vec![
        "run",
        "--bootstrap-servers",
        bootstrap,
        "--replication-factor",
        "1",
        "--http",
        "127.0.0.1:0",
        "--state-dir",
        state,
        "--worker-id",
        "test-worker",
    ];
    args.extend_from_slice(extra);
    let p = Proc::spawn("run", &args, envs, dir);
    let base = p.line_starting("read API: ", START);
    (p, base)
}

/// A Tansu broker (`scripts/tansu-broker.sh`, installed by `scripts/install-tansu.sh`) on
/// a free loopback port, and its bootstrap address once it is ready.
pub fn tansu(dir: &Path) -> (Proc, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tansu-broker.sh");
    let p = Proc::spawn_program(script, "tansu", &[port.to_string()], &[], dir);
    // Ready once the listener is bound (the script's documented readiness line).
    p.line_starting("ready in", START);
    (p, format!("127.0.0.1:{port}"))
}
