//! `orchestra export`: `match-history` and `match-stats` as flat, typed tables for analysts
//! — `matches`, `seats`, `rounds`, `responses`, `votes`, `robot_voices` and `stats` — in
//! Parquet or CSV, one file per table (`DIR/matches.parquet`, ...).
//!
//! * [`table`] — a typed table held by column ([`Table`], [`ColumnType`]).
//! * [`tables`] — the seven tables built from the documents ([`Tables`]; the README's
//!   column table is [`columns_markdown`]).
//! * [`parquet`] / [`csv`] — the two writers.
//! * [`documents`] — reading and decoding the documents, skipping (and counting) bad ones.
//!
//! ```no_run
//! use orchestra::export::{export, ExportFormat, ExportOptions};
//! let mut client = rdkafka::ClientConfig::new();
//! client.set("bootstrap.servers", "127.0.0.1:9092");
//! let summary = export(&client, &ExportOptions {
//!     out: "out".into(),
//!     format: ExportFormat::Parquet,
//!     ..ExportOptions::default()
//! }).unwrap();
//! println!("{summary}"); // matches.parquet: 30 rows ...
//! ```

pub mod csv;
pub mod documents;
pub mod parquet;
pub mod table;
pub mod tables;

use std::path::{Path, PathBuf};

use rdkafka::ClientConfig;
use thiserror::Error;

pub use self::csv::write_csv;
pub use self::documents::{read_documents, Documents};
pub use self::parquet::write_parquet;
pub use self::table::{Column, ColumnType, Table, Value};
pub use self::tables::{columns_markdown, Tables, KEYS};
use crate::time_range::TimeRange;

/// File format of an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Apache Parquet (typed, compressed).
    #[default]
    Parquet,
    /// CSV with a header row.
    Csv,
}

impl ExportFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "parquet",
            ExportFormat::Csv => "csv",
        }
    }
}

/// What went wrong in an export.
#[derive(Debug, Error)]
pub enum ExportError {
    /// Reading the topics failed.
    #[error("reading {topic}")]
    Read {
        /// The topic.
        topic: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file could not be created or written.
    #[error("writing {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet writer failed.
    #[error("writing {path}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ::parquet::errors::ParquetError,
    },
    /// The CSV writer failed.
    #[error("writing {path}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ::csv::Error,
    },
}

/// Options of [`export`].
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Directory the tables are written to (created if missing).
    pub out: PathBuf,
    /// Parquet or CSV.
    pub format: ExportFormat,
    /// Matches whose completion time lies in this range; `stats` windows that overlap it.
    pub range: TimeRange,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenTable {
    /// Table name.
    pub name: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Rows written.
    pub rows: usize,
}

/// What an export did.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    /// Files written, in table order.
    pub tables: Vec<WrittenTable>,
    /// Documents that could not be decoded (skipped).
    pub skipped: usize,
    /// Decoded matches outside `--since`/`--until` or not finished (left out).
    pub filtered_out: usize,
}

impl ExportSummary {
    /// Rows of the table `name` (0 when it was not written).
    pub fn rows(&self, name: &str) -> usize {
        self.tables
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.rows)
    }
}

impl std::fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for t in &self.tables {
            writeln!(f, "{}: {} rows", t.path.display(), t.rows)?;
        }
        if self.skipped > 0 {
            writeln!(f, "skipped {} undecodable documents", self.skipped)?;
        }
        if self.filtered_out > 0 {
            writeln!(
                f,
                "left out {} matches (unfinished or outside --since/--until)",
                self.filtered_out
            )?;
        }
        Ok(())
    }
}

/// Reads `match-history` and `match-stats` through `client` and writes the tables.
pub fn export(client: &ClientConfig, opts: &ExportOptions) -> Result<ExportSummary, ExportError> {
    let docs = read_documents(client, opts.range, opts.progress)?;
    let mut summary = write_documents(&docs, opts)?;
    summary.skipped = docs.skipped;
    summary.filtered_out = docs.filtered_out;
    Ok(summary)
}

/// Builds the tables of `docs` and writes them (the part of [`export`] after reading).
pub fn write_documents(
    docs: &Documents,
    opts: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    if opts.progress {
        eprintln!(
            "export: flattening {} matches and {} stats windows",
            docs.histories.len(),
            docs.stats.len()
        );
    }
    let tables = Tables::build(&docs.histories, &docs.stats);
    let written = write_tables(&tables, &opts.out, opts.format, opts.progress)?;
    Ok(ExportSummary {
        tables: written,
        skipped: docs.skipped,
        filtered_out: docs.filtered_out,
    })
}

/// Writes every table to `dir` as `NAME.parquet` or `NAME.csv`.
pub fn write_tables(
    tables: &Tables,
    dir: &Path,
    format: ExportFormat,
    progress: bool,
) -> Result<Vec<WrittenTable>, ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for t in tables.all() {
        let path = dir.join(format!("{}.{}", t.name, format.extension()));
        match format {
            ExportFormat::Parquet => write_parquet(t, &path)?,
            ExportFormat::Csv => {
                let file = std::fs::File::create(&path).map_err(|source| ExportError::Io {
                    path: path.clone(),
                    source,
                })?;
                write_csv(t, std::io::BufWriter::new(file)).map_err(|source| ExportError::Csv {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        if progress {
            eprintln!("export: wrote {} ({} rows)", path.display(), t.len());
        }
        written.push(WrittenTable {
            name: t.name,
            path,
            rows: t.len(),
        });
    }
    Ok(written)
}
