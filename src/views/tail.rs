//! `orchestra tail`: records of a topic as they come (or the latest value per key of a
//! compacted topic), and [`read_to_end`], the reading loop shared with `replay`.

use std::collections::BTreeSet;
use std::io::{IsTerminal as _, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Message};
use rdkafka::{ClientConfig, Offset};

use super::format::{format_ts, inline_json, truncate, write_table};
use super::latest::{is_compacted, read_latest};
use super::reader::{assign, assign_consumer, high_watermarks, partitions_of};
use super::READ_TO_END_TIMEOUT;

/// A record as `tail` prints it (and as [`read_to_end`] and [`follow`] hand it out).
#[derive(Debug, Clone)]
pub struct Row {
    /// The key as text (lossy UTF-8).
    pub key: Option<String>,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record timestamp (epoch ms; -1 when absent).
    pub timestamp: i64,
    /// The value (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers in record order, values as lossy UTF-8 (a dead-letter record's `error`,
    /// `error.kind`, `source.topic`, … are here).
    pub headers: Vec<(String, String)>,
}

impl Row {
    fn from_message(m: &BorrowedMessage<'_>) -> Self {
        Row {
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis().unwrap_or(-1),
            value: m.payload().map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|hd| {
                            let value = hd.value.map(String::from_utf8_lossy).unwrap_or_default();
                            (hd.key.to_string(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The value of header `name` (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json_line(&self) -> String {
        let key = serde_json::to_string(&self.key).unwrap_or_else(|_| "null".into());
        let value = match &self.value {
            None => "null".to_string(),
            Some(v) => inline_json(v),
        };
        // Headers only when there are any: most topics carry none, and a line per record
        // stays the shape analysts' `jq` filters expect.
        let headers = if self.headers.is_empty() {
            String::new()
        } else {
            let map: serde_json::Map<String, serde_json::Value> = self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            format!(r#","headers":{}"#, serde_json::Value::Object(map))
        };
        format!(
            r#"{{"key":{key},"partition":{},"offset":{},"timestamp":{}{headers},"value":{value}}}"#,
            self.partition, self.offset, self.timestamp
        )
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.key.clone().unwrap_or_else(|| "(none)".into()),
            self.partition.to_string(),
            self.offset.to_string(),
            format_ts(self.timestamp),
            match &self.value {
                None => "(tombstone)".into(),
                Some(v) => truncate(&inline_json(v), 120),
            },
        ]
    }
}

const ROW_HEADER: [&str; 5] = ["KEY", "PARTITION", "OFFSET", "TIMESTAMP", "VALUE"];

/// `orchestra tail TOPIC`.
///
/// * Compacted topics (`match-state`, `robot-pool-state`, `match-history`, `match-stats`,
///   changelogs): reads to the end and prints the latest value per key, sorted by key
///   (`from_beginning` is implied).
/// * Other topics: prints records as they come. With `from_beginning` it reads from the
///   start; it stops at the end when `limit` is set or stdout is not a terminal, and
///   otherwise keeps following until Ctrl-C. Without `from_beginning` it starts at the end
///   and follows until Ctrl-C (or until `limit` records were printed).
///
/// `limit` caps the number of records printed.
pub fn tail(
    client: &ClientConfig,
    topic: &str,
    from_beginning: bool,
    table: bool,
    limit: Option<usize>,
    out: &mut impl Write,
) -> Result<()> {
    if is_compacted(topic) {
        let latest = read_latest(client, topic, READ_TO_END_TIMEOUT)?;
        let rows: Vec<Row> = latest
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|(k, e)| Row {
                key: Some(k),
                partition: e.partition,
                offset: e.offset,
                timestamp: e.timestamp,
                value: Some(e.value),
                headers: Vec::new(),
            })
            .collect();
        return print_rows(&rows, table, out);
    }
    let follow = if from_beginning {
        limit.is_none() && std::io::stdout().is_terminal()
    } else {
        true
    };
    let start = if from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    if follow {
        if table {
            writeln!(
                out,
                "{:<24}  {:>9}  {:>8}  {:<24}  VALUE",
                ROW_HEADER[0], ROW_HEADER[1], ROW_HEADER[2], ROW_HEADER[3]
            )?;
        }
        let mut printed = 0usize;
        stream_records(client, topic, start, false, None, |row| {
            if table {
                let c = row.cells();
                writeln!(
                    out,
                    "{:<24}  {:>9}  {:>8}  {:<24}  {}",
                    c[0], c[1], c[2], c[3], c[4]
                )?;
            } else {
                writeln!(out, "{}", row.json_line())?;
            }
            out.flush()?;
            printed += 1;
            Ok(limit.is_none_or(|l| printed < l))
        })
    } else {
        let mut rows = Vec::new();
        let cap = limit.unwrap_or(usize::MAX);
        if cap > 0 {
            stream_records(
                client,
                topic,
                start,
                true,
                Some(Instant::now() + READ_TO_END_TIMEOUT),
                |row| {
                    rows.push(row);
                    Ok(rows.len() < cap)
                },
            )?;
        }
        print_rows(&rows, table, out)
    }
}

fn print_rows(rows: &[Row], table: bool, out: &mut impl Write) -> Result<()> {
    if table {
        let cells: Vec<Vec<String>> = rows.iter().map(Row::cells).collect();
        write_table(out, &ROW_HEADER, &cells)?;
    } else {
        for r in rows {
            writeln!(out, "{}", r.json_line())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Reads every partition of `topic` from the beginning to its end (the ends as of when
/// reading reached them), in offset order per partition, calling `f` per record. Fails
/// after `timeout`.
pub fn read_to_end(
    client: &ClientConfig,
    topic: &str,
    timeout: Duration,
    mut f: impl FnMut(Row),
) -> Result<()> {
    stream_records(
        client,
        topic,
        Offset::Beginning,
        true,
        Some(Instant::now() + timeout),
        |row| {
            f(row);
            Ok(true)
        },
    )
}

/// Reads every partition of `topic` from the beginning and keeps reading new records,
/// calling `f` per record (in offset order per partition) until it returns `false`.
pub fn follow(
    client: &ClientConfig,
    topic: &str,
    f: impl FnMut(Row) -> Result<bool>,
) -> Result<()> {
    stream_records(client, topic, Offset::Beginning, false, None, f)
}

/// Reads `topic` from `start`, calling `f` per record until it returns `false`, or (when
/// `stop_at_end`) every partition reached its end; fails when `deadline` passes first.
fn stream_records(
    client: &ClientConfig,
    topic: &str,
    start: Offset,
    stop_at_end: bool,
    deadline: Option<Instant>,
    mut f: impl FnMut(Row) -> Result<bool>,
) -> Result<()> {
    let consumer = assign_consumer(client, "tail")?;
    let partitions = partitions_of(&consumer, topic)?;
    let highs = high_watermarks(&consumer, topic, &partitions)?;
    assign(&consumer, topic, &partitions, start)?;
    let mut done: BTreeSet<i32> = if start == Offset::Beginning {
        highs
            .iter()
            .filter(|(_, h)| **h <= 0)
            .map(|(p, _)| *p)
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut last_error: Option<String> = None;
    loop {
        if stop_at_end && partitions.iter().all(|p| done.contains(p)) {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            bail!(
                "reading `{topic}`: not at the end in time ({} of {} partitions done{})",
                done.len(),
                partitions.len(),
                last_error
                    .as_deref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            );
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            // The end is the consumer's partition EOF (the fetch's high watermark), not
            // the start's ListOffsets answer, which some brokers give short.
            Some(Ok(m)) if !f(Row::from_message(&m))? => return Ok(()),
            Some(Ok(_)) => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                done.insert(p);
            }
            Some(Err(e)) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(%topic, error = %msg, "read error (retrying)");
                    last_error = Some(msg);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_inline_as_json_or_string() {
        assert_eq!(inline_json(br#"{"b":1,"a":2}"#), r#"{"b":1,"a":2}"#);
        assert_eq!(inline_json(b"{\n \"a\": 1\n}"), r#"{"a":1}"#);
        assert_eq!(inline_json(b"not json"), r#""not json""#);
        let row = Row {
            key: Some("m\"1".into()),
            partition: 2,
            offset: 7,
            timestamp: 5,
            value: None,
            headers: Vec::new(),
        };
        let v: serde_json::Value = serde_json::from_str(&row.json_line()).unwrap();
        assert_eq!(v["key"], "m\"1");
        assert_eq!(v["partition"], 2);
        assert!(v["value"].is_null());
        assert!(v.get("headers").is_none(), "no headers, no field: {v}");
        let dead = Row {
            headers: vec![("error".into(), "round \"2\" over".into())],
            ..row
        };
        let v: serde_json::Value = serde_json::from_str(&dead.json_line()).unwrap();
        assert_eq!(v["headers"]["error"], "round \"2\" over");
        assert_eq!(dead.header("error"), Some("round \"2\" over"));
    }
}
