//! Dead-letter records and the error-handling policy.

use crate::record::{InRecord, OutRecord};

/// What to do when a record cannot be decoded or a processor fails on it, as Kafka
/// Streams' deserialization and processing exception handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorHandling {
    /// Write the record to `<application.id>-dlq` with error headers and continue.
    #[default]
    Continue,
    /// Stop the worker with an error; offsets of the failed transaction are not committed.
    Fail,
}

/// Builds the DLQ copy of `rec`: original key and value, headers `error`,
/// `error.kind`, `processor`, `source.topic`, `source.partition`, `source.offset`.
pub(crate) fn dlq_record(
    dlq_topic: &str,
    rec: &InRecord<'_>,
    kind: &str,
    processor: &str,
    error: &str,
) -> OutRecord {
    OutRecord {
        topic: dlq_topic.into(),
        partition: None,
        key: rec.key.map(<[u8]>::to_vec).unwrap_or_default(),
        value: rec.value.map(<[u8]>::to_vec),
        timestamp: rec.timestamp,
        headers: vec![
            ("error".into(), error.to_string()),
            ("error.kind".into(), kind.to_string()),
            ("processor".into(), processor.to_string()),
            ("source.topic".into(), rec.topic.to_string()),
            ("source.partition".into(), rec.partition.to_string()),
            ("source.offset".into(), rec.offset.to_string()),
        ],
    }
}
