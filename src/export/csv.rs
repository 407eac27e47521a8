//! Writes a [`Table`] as CSV: a header row, RFC 4180 quoting (fields with commas, quotes or
//! line breaks are quoted), `NULL` as an empty field, timestamps as ISO-8601 UTC
//! (`2026-12-03T00:47:05.123Z`, which DuckDB and pandas parse as timestamps), booleans as
//! `true`/`false`.
//!
//! ```
//! use orchestra::export::{write_csv, ColumnType, Table};
//! let mut t = Table::new("t", &[("id", ColumnType::Text, ""), ("n", ColumnType::Int, "")]);
//! t.push(vec!["a, \"b\"".into(), None::<i64>.into()]);
//! let mut out = Vec::new();
//! write_csv(&t, &mut out).unwrap();
//! assert_eq!(String::from_utf8(out).unwrap(), "id,n\n\"a, \"\"b\"\"\",\n");
//! ```

use std::io::Write;

use super::table::{ColumnType, Table, Value};
use crate::views::format_ts;

/// Writes `table` to `out`.
pub fn write_csv(table: &Table, out: impl Write) -> Result<(), csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    w.write_record(table.columns.iter().map(|c| c.name))?;
    let mut record: Vec<String> = Vec::with_capacity(table.columns.len());
    for row in 0..table.len() {
        record.clear();
        for c in &table.columns {
            record.push(match (&c.values[row], c.kind) {
                (Value::Int(Some(ms)), ColumnType::Timestamp) => format_ts(*ms),
                (Value::Int(Some(i)), _) => i.to_string(),
                (Value::Float(Some(f)), _) => f.to_string(),
                (Value::Bool(Some(b)), _) => b.to_string(),
                (Value::Text(Some(s)), _) => s.clone(),
                _ => String::new(),
            });
        }
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}
