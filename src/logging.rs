//! Log output of the binary: text or JSON lines on stderr, colours only on a terminal,
//! Kafka secrets blanked out (see [`crate::kafka_config::redact`]), and a switch that
//! sends the log to a file instead (the demo keeps its console for the
//! progress bar and writes the workers' log into its state directory).
//!
//! ```no_run
//! use orchestra::logging::{self, LogFormat};
//! let log = logging::init(LogFormat::Json, "info", false);
//! log.to_file(std::path::Path::new("/tmp/orchestra.log")).unwrap();
//! tracing::info!("this line goes to the file");
//! ```

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Where log lines go: stderr until [`LogTarget::to_file`] is called.
#[derive(Clone, Default, Debug)]
pub struct LogTarget {
    file: Arc<Mutex<Option<File>>>,
}

impl LogTarget {
    /// Appends every later log line to `path` (created if missing); errors still reach
    /// stderr too, so that a failure is seen where the command was typed.
    pub fn to_file(&self, path: &Path) -> std::io::Result<()> {
        let f = File::options().create(true).append(true).open(path)?;
        *self.lock() = Some(f);
        Ok(())
    }

    /// Whether lines go to a file.
    pub fn is_file(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Option<File>> {
        // A panic while writing a log line leaves the file usable.
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One log line's destination.
pub struct LineWriter<'a> {
    target: &'a LogTarget,
    also_stderr: bool,
}

impl Write for LineWriter<'_> {
    /// Writes one formatted log line (the subscriber writes each event at once), with
    /// remembered Kafka secrets blanked out.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(line);
        let buf = crate::kafka_config::redact(&text);
        let buf = buf.as_bytes();
        let mut file = self.target.lock();
        match file.as_mut() {
            Some(f) => {
                f.write_all(buf)?;
                if self.also_stderr {
                    std::io::stderr().write_all(buf)?;
                }
            }
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(f) = self.target.lock().as_mut() {
            f.flush()?;
        }
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for LogTarget {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            target: self,
            also_stderr: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            target: self,
            also_stderr: *meta.level() == Level::ERROR,
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` if set, else `default_filter`. Text is
/// coloured only when `colour` is set and stderr is a terminal (never in JSON). Returns the
/// switch to a log file.
pub fn init(format: LogFormat, default_filter: &str, colour: bool) -> LogTarget {
    let target = LogTarget::default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(target.clone());
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(colour && std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    // A subscriber installed earlier (a test harness) keeps the lines; not an error.
    let _ = installed;
    target
}

/// The default filter for `-v` given `verbose` times: info, then debug, then trace (the
/// Kafka client's own log stays at warn until -vvv).
pub fn default_filter(verbose: u8) -> &'static str {
    match verbose {
        0 | 1 => "info,rdkafka=warn",
        2 => "debug,rdkafka=warn",
        _ => "trace",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_to_the_file_once_switched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let target = LogTarget::default();
        assert!(!target.is_file());
        target.to_file(&path).unwrap();
        let mut w = target.make_writer();
        w.write_all(b"hello\n").unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\n");
    }
}
