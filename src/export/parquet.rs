//! Writes a [`Table`] as a Parquet file (snappy-compressed, one row group per 64 Ki rows),
//! typed: `Text` → `STRING`, `Int` → `INT64`, `Float` → `DOUBLE`, `Bool` → `BOOLEAN`,
//! `Timestamp` → `TIMESTAMP(MILLIS, UTC)`; every column nullable.
//!
//! ```
//! use orchestra::export::{write_parquet, ColumnType, Table};
//! let mut t = Table::new("t", &[("id", ColumnType::Text, "")]);
//! t.push(vec!["a".into()]);
//! let dir = tempfile::tempdir().unwrap();
//! write_parquet(&t, &dir.path().join("t.parquet")).unwrap();
//! ```

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::table::{Column, ColumnType, Table, Value};
use super::ExportError;

const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The Arrow schema of `table`.
fn schema(table: &Table) -> Schema {
    Schema::new(
        table
            .columns
            .iter()
            .map(|c| Field::new(c.name, data_type(c.kind), true))
            .collect::<Vec<_>>(),
    )
}

fn data_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::Text => DataType::Utf8,
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    }
}

fn array(c: &Column) -> ArrayRef {
    match c.kind {
        ColumnType::Text => Arc::new(
            c.values
                .iter()
                .map(|v| match v {
                    Value::Text(s) => s.as_deref(),
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
        ColumnType::Int => Arc::new(ints(c).collect::<Int64Array>()),
        ColumnType::Timestamp => Arc::new(
            ints(c)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        ColumnType::Float => Arc::new(
            c.values
                .iter()
                .map(|v| match v {
                    Value::Float(f) => *f,
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        ColumnType::Bool => Arc::new(
            c.values
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => *b,
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
    }
}

fn ints(c: &Column) -> impl Iterator<Item = Option<i64>> + '_ {
    c.values.iter().map(|v| match v {
        Value::Int(i) => *i,
        _ => None,
    })
}

/// Writes `table` to `path` (replacing it).
pub fn write_parquet(table: &Table, path: &Path) -> Result<(), ExportError> {
    let parquet_err = |source| ExportError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let schema = Arc::new(schema(table));
    let columns: Vec<ArrayRef> = table.columns.iter().map(array).collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| parquet_err(e.into()))?;
    let file = std::fs::File::create(path).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(parquet_err)?;
    writer.write(&batch).map_err(parquet_err)?;
    writer.close().map_err(parquet_err)?;
    Ok(())
}
