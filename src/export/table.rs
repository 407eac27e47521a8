//! A flat, typed table held by column: what the Parquet and CSV writers write.
//!
//! ```
//! use orchestra::export::{ColumnType, Table};
//! let mut t = Table::new("demo", &[("id", ColumnType::Text, "key"), ("n", ColumnType::Int, "a count")]);
//! t.push(vec!["a".into(), 1i64.into()]);
//! t.push(vec!["b".into(), None::<i64>.into()]);
//! assert_eq!(t.len(), 2);
//! ```

/// The type of a column (Parquet type in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 string (`BYTE_ARRAY`/`STRING`).
    Text,
    /// 64-bit signed integer (`INT64`).
    Int,
    /// 64-bit float (`DOUBLE`).
    Float,
    /// Boolean (`BOOLEAN`).
    Bool,
    /// Instant, UTC, millisecond precision (`INT64`/`TIMESTAMP(MILLIS, UTC)`); ISO-8601 in CSV.
    Timestamp,
}

impl ColumnType {
    /// The name the README's column table uses.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "string",
            ColumnType::Int => "int64",
            ColumnType::Float => "double",
            ColumnType::Bool => "boolean",
            ColumnType::Timestamp => "timestamp (ms, UTC)",
        }
    }
}

/// One cell; `None` is SQL `NULL` (an empty CSV field).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Text(Option<String>),
    /// An integer or a timestamp in epoch milliseconds.
    Int(Option<i64>),
    /// A float.
    Float(Option<f64>),
    /// A boolean.
    Bool(Option<bool>),
}

macro_rules! value_from {
    ($t:ty, $variant:ident, $conv:expr) => {
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(Some($conv(v)))
            }
        }
        impl From<Option<$t>> for Value {
            fn from(v: Option<$t>) -> Self {
                Value::$variant(v.map($conv))
            }
        }
    };
}
value_from!(String, Text, |v| v);
value_from!(&str, Text, |v: &str| v.to_string());
value_from!(i64, Int, |v| v);
value_from!(u64, Int, |v: u64| i64::try_from(v).unwrap_or(i64::MAX));
value_from!(u32, Int, i64::from);
value_from!(f64, Float, |v| v);
value_from!(bool, Bool, |v| v);

/// A column: its name, type, what it holds, and its cells.
#[derive(Debug, Clone)]
pub struct Column {
    /// Column name (snake_case).
    pub name: &'static str,
    /// Its type.
    pub kind: ColumnType,
    /// What it holds (the README's column table).
    pub doc: &'static str,
    /// Cells, one per row.
    pub values: Vec<Value>,
}

/// A named table of equally long columns.
#[derive(Debug, Clone)]
pub struct Table {
    /// File stem: `matches` is written as `matches.parquet` / `matches.csv`.
    pub name: &'static str,
    /// Columns in order.
    pub columns: Vec<Column>,
}

impl Table {
    /// An empty table with `(name, type, doc)` columns.
    pub fn new(name: &'static str, columns: &[(&'static str, ColumnType, &'static str)]) -> Self {
        Self {
            name,
            columns: columns
                .iter()
                .map(|&(name, kind, doc)| Column {
                    name,
                    kind,
                    doc,
                    values: Vec::new(),
                })
                .collect(),
        }
    }

    /// Appends a row: one value per column, in column order.
    ///
    /// # Panics
    /// If the row has the wrong number of cells or a cell of the wrong type — a bug in the
    /// table definition, not bad input.
    pub fn push(&mut self, row: Vec<Value>) {
        assert_eq!(row.len(), self.columns.len(), "row of table {}", self.name);
        for (col, v) in self.columns.iter_mut().zip(row) {
            let ok = matches!(
                (col.kind, &v),
                (ColumnType::Text, Value::Text(_))
                    | (ColumnType::Int | ColumnType::Timestamp, Value::Int(_))
                    | (ColumnType::Float, Value::Float(_))
                    | (ColumnType::Bool, Value::Bool(_))
            );
            assert!(ok, "column {}.{}: {v:?}", self.name, col.name);
            col.values.push(v);
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, |c| c.values.len())
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}
