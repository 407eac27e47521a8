//! Issue 16 item 3: the ksqlDB queries match the data. Every column that a stream or table
//! of `deploy/ksqldb/queries.sql` declares over a topic — nested `STRUCT` fields, `ARRAY`
//! items and `MAP` values included — exists in the JSON Schema of that topic
//! (`schemas/json/`) with a matching type; every `EXTRACTJSONFIELD(data, '$.field')` names
//! a field of some event of the topic; every `->field` names a field declared in a
//! `STRUCT`; every camelCase identifier in a query is a declared column or field. Times
//! are `BIGINT` (epoch milliseconds), never `VARCHAR`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// A ksqlDB type.
#[derive(Debug, Clone, PartialEq)]
enum KType {
    Scalar(String),
    Array(Box<KType>),
    Map(Box<KType>),
    Struct(Vec<(String, KType)>),
}

/// A `CREATE STREAM|TABLE name (columns) WITH (KAFKA_TOPIC = 'topic' ...)` declaration.
#[derive(Debug)]
struct Declaration {
    name: String,
    topic: String,
    columns: Vec<(String, KType)>,
}

fn strip_comments(sql: &str) -> String {
    sql.lines()
        .map(|l| match l.find("--") {
            Some(i) if !l[..i].contains('\'') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Splits `s` on commas at nesting depth 0 of `()` and `<>` (not `->`/`=>`).
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    let mut prev = ' ';
    for c in s.chars() {
        match c {
            '(' | '<' => depth += 1,
            ')' => depth -= 1,
            '>' if prev != '-' && prev != '=' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                prev = c;
                continue;
            }
            _ => {}
        }
        cur.push(c);
        prev = c;
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn parse_type(t: &str) -> KType {
    let t = t.trim();
    let upper = t.to_uppercase();
    let inner = |prefix: &str| t[prefix.len()..t.len() - 1].trim().to_string();
    if upper.starts_with("ARRAY<") {
        KType::Array(Box::new(parse_type(&inner("ARRAY<"))))
    } else if upper.starts_with("MAP<") {
        let parts = split_top(&inner("MAP<"));
        assert_eq!(parts.len(), 2, "MAP takes two types: {t}");
        assert_eq!(
            parts[0].trim().to_uppercase(),
            "VARCHAR",
            "JSON keys are strings: {t}"
        );
        KType::Map(Box::new(parse_type(&parts[1])))
    } else if upper.starts_with("STRUCT<") {
        KType::Struct(
            split_top(&inner("STRUCT<"))
                .iter()
                .map(|f| parse_column(f))
                .collect(),
        )
    } else {
        KType::Scalar(upper)
    }
}

fn parse_column(c: &str) -> (String, KType) {
    let c = c.trim();
    let (name, ty) = c
        .split_once(char::is_whitespace)
        .unwrap_or_else(|| panic!("column without a type: {c}"));
    (name.trim_matches('`').to_string(), parse_type(ty))
}

fn declarations(sql: &str) -> Vec<Declaration> {
    let mut out = Vec::new();
    for stmt in sql.split(';') {
        let flat = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
        let upper = flat.to_uppercase();
        if !upper.starts_with("CREATE") || upper.contains(" AS SELECT ") {
            continue;
        }
        let name = flat
            .split_whitespace()
            .skip_while(|w| !matches!(w.to_uppercase().as_str(), "STREAM" | "TABLE"))
            .nth(1)
            .unwrap()
            .to_string();
        let open = flat.find('(').unwrap();
        let with = upper.find(") WITH (").unwrap();
        let topic = flat[with..]
            .split('\'')
            .nth(1)
            .expect("KAFKA_TOPIC")
            .to_string();
        let columns = split_top(&flat[open + 1..with])
            .iter()
            .filter(|c| !c.to_uppercase().contains("PRIMARY KEY")) // the record key
            .map(|c| parse_column(c))
            .collect();
        out.push(Declaration {
            name,
            topic,
            columns,
        });
    }
    out
}

/// The schema(s) a node stands for, `$ref`s resolved and `anyOf`/`oneOf` flattened.
fn variants<'a>(root: &'a Value, node: &'a Value) -> Vec<&'a Value> {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return variants(root, &root["$defs"][name]);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(all) = node.get(key).and_then(Value::as_array) {
            return all.iter().flat_map(|n| variants(root, n)).collect();
        }
    }
    vec![node]
}

fn json_types(node: &Value) -> BTreeSet<String> {
    let mut t: BTreeSet<String> = match &node["type"] {
        Value::String(s) => [s.clone()].into(),
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => BTreeSet::new(),
    };
    let consts = node
        .get("enum")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .chain(node.get("const").cloned());
    for c in consts {
        t.insert(
            match c {
                Value::String(_) => "string",
                Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Value::Number(_) => "number",
                Value::Bool(_) => "boolean",
                _ => "other",
            }
            .into(),
        );
    }
    t.remove("null");
    t
}

/// Checks that `ty` fits the schema `node` (of `root`); problems go to `errs`.
fn check(root: &Value, node: &Value, ty: &KType, path: &str, errs: &mut Vec<String>) {
    let vs = variants(root, node);
    let types: BTreeSet<String> = vs.iter().flat_map(|v| json_types(v)).collect();
    let ok = |want: &[&str]| want.iter().any(|w| types.contains(*w));
    match ty {
        KType::Scalar(s) => {
            let fits = match s.as_str() {
                "VARCHAR" | "STRING" => ok(&["string"]),
                "INT" | "INTEGER" | "BIGINT" => ok(&["integer"]),
                "DOUBLE" => ok(&["number"]),
                "BOOLEAN" => ok(&["boolean"]),
                other => {
                    errs.push(format!("{path}: type {other} not checked"));
                    true
                }
            };
            if !fits {
                errs.push(format!("{path}: declared {s}, the schema says {types:?}"));
            }
        }
        KType::Array(item) => {
            let items: Vec<&Value> = vs.iter().filter_map(|v| v.get("items")).collect();
            match items.first() {
                Some(i) => check(root, i, item, &format!("{path}[]"), errs),
                None => errs.push(format!("{path}: declared ARRAY, the schema says {types:?}")),
            }
        }
        KType::Map(value) => {
            let vals: Vec<&Value> = vs
                .iter()
                .filter_map(|v| {
                    v.get("additionalProperties")
                        .filter(|a| a.is_object())
                        .or_else(|| {
                            v.get("patternProperties")
                                .and_then(|p| p.as_object())
                                .and_then(|p| p.values().next())
                        })
                })
                .collect();
            match vals.first() {
                Some(v) => check(root, v, value, &format!("{path}{{}}"), errs),
                None => errs.push(format!(
                    "{path}: declared MAP, the schema has no map values"
                )),
            }
        }
        KType::Struct(fields) => {
            for (name, fty) in fields {
                match field(root, node, name) {
                    Some(f) => check(root, f, fty, &format!("{path}.{name}"), errs),
                    None => errs.push(format!("{path}.{name}: no such field in the schema")),
                }
            }
        }
    }
}

/// The property `name` of `node` (case-insensitive, as ksqlDB matches JSON fields).
fn field<'a>(root: &'a Value, node: &'a Value, name: &str) -> Option<&'a Value> {
    variants(root, node).into_iter().find_map(|v| {
        v.get("properties")?
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, s)| s)
    })
}

fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/json")
        .join(format!("{name}.v1.schema.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The event types of `match-events` (their schemas are `schemas/json/<type>.v1.schema.json`).
const MATCH_EVENTS: [&str; 11] = [
    "match.created",
    "player.joined",
    "round.robots_needed",
    "round.started",
    "response.recorded",
    "response.timed_out",
    "round.voting_started",
    "vote.recorded",
    "vote.timed_out",
    "round.completed",
    "match.completed",
];

/// The schemas a topic's values follow.
fn topic_schemas(topic: &str) -> Vec<Value> {
    match topic {
        "match-events" => MATCH_EVENTS.iter().map(|e| schema(e)).collect(),
        "match-state" | "match-history" | "match-stats" | "robot-pool-state" => vec![schema(topic)],
        other => panic!("no JSON Schema known for topic {other}"),
    }
}

/// Problems of `sql` (empty: all good).
fn problems(sql: &str) -> Vec<String> {
    let sql = strip_comments(sql);
    let decls = declarations(&sql);
    let mut errs = Vec::new();
    if decls.is_empty() {
        errs.push("no declarations".into());
    }
    let mut declared_names: BTreeSet<String> = BTreeSet::new();
    fn names(ty: &KType, out: &mut BTreeSet<String>) {
        match ty {
            KType::Scalar(_) => {}
            KType::Array(t) | KType::Map(t) => names(t, out),
            KType::Struct(fs) => {
                for (n, t) in fs {
                    out.insert(n.to_lowercase());
                    names(t, out);
                }
            }
        }
    }
    for d in &decls {
        let schemas = topic_schemas(&d.topic);
        for (col, ty) in &d.columns {
            declared_names.insert(col.to_lowercase());
            names(ty, &mut declared_names);
            let path = format!("{}.{col} ({})", d.name, d.topic);
            // `data` of an event: an object read as its JSON text (EXTRACTJSONFIELD).
            if d.topic == "match-events" && col == "data" {
                if *ty != KType::Scalar("VARCHAR".into()) {
                    errs.push(format!("{path}: declare data VARCHAR"));
                }
                continue;
            }
            // The column must fit every schema that has it, and one schema at least.
            let mut found = false;
            for root in &schemas {
                if let Some(node) = field(root, root, col) {
                    found = true;
                    check(root, node, ty, &path, &mut errs);
                }
            }
            if !found {
                errs.push(format!("{path}: no such field in the topic's schema"));
            }
            if col.ends_with("At") || col == "timestamp" || col.starts_with("window") {
                if let KType::Scalar(s) = ty {
                    if s != "BIGINT" && !col.ends_with("Ms") {
                        errs.push(format!(
                            "{path}: times are epoch millis, declare BIGINT, not {s}"
                        ));
                    }
                }
            }
        }
    }
    // EXTRACTJSONFIELD(data, '$.field'): a field of some match-events event's data.
    let events = topic_schemas("match-events");
    for part in sql.split("EXTRACTJSONFIELD(data, '$.").skip(1) {
        let f = part.split('\'').next().unwrap_or_default();
        let exists = events.iter().any(|root| {
            field(root, root, "data").is_some_and(|data| field(root, data, f).is_some())
        });
        if !exists {
            errs.push(format!(
                "EXTRACTJSONFIELD(data, '$.{f}'): no event of match-events has data.{f}"
            ));
        }
    }
    // s->field: a declared STRUCT field.
    for part in sql.split("->").skip(1) {
        let f: String = part
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !declared_names.contains(&f.to_lowercase()) {
            errs.push(format!("->{f}: not a declared field"));
        }
    }
    // camelCase identifiers outside strings: declared columns or fields.
    let no_strings: String = sql
        .split('\'')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ");
    for word in no_strings.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let camel = word.chars().next().is_some_and(|c| c.is_lowercase())
            && word.chars().any(|c| c.is_uppercase());
        if camel && !declared_names.contains(&word.to_lowercase()) {
            errs.push(format!("{word}: not a declared column or field"));
        }
    }
    errs
}

fn read(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/ksqldb")
            .join(name),
    )
    .unwrap()
}

#[test]
fn every_column_the_ksqldb_queries_name_exists_in_the_json_schema_of_its_topic() {
    let ddl = read("queries.sql");
    let errs = problems(&ddl);
    assert!(errs.is_empty(), "queries.sql:\n{}", errs.join("\n"));
    // The transient queries name only what the DDL declares.
    let both = format!("{ddl}\n{}", read("queries_push.sql"));
    let errs = problems(&both);
    assert!(errs.is_empty(), "queries_push.sql:\n{}", errs.join("\n"));
    // Every topic analysts read has a source.
    let topics: BTreeSet<String> = declarations(&strip_comments(&ddl))
        .into_iter()
        .map(|d| d.topic)
        .collect();
    for t in [
        "match-events",
        "match-state",
        "match-history",
        "match-stats",
    ] {
        assert!(topics.contains(t), "no stream or table over {t}");
    }
}

#[test]
fn ddl_and_transient_queries_live_in_separate_files() {
    let ddl = strip_comments(&read("queries.sql"));
    for stmt in ddl.split(';') {
        let s = stmt.trim_start().to_uppercase();
        assert!(
            !s.starts_with("SELECT"),
            "a transient query in queries.sql: {stmt}"
        );
    }
    let push = strip_comments(&read("queries_push.sql"));
    assert!(
        !push.to_uppercase().contains("CREATE "),
        "DDL in queries_push.sql"
    );
}

/// The checker finds what the old file got wrong.
#[test]
fn the_checker_rejects_missing_fields_wrong_types_and_varchar_times() {
    let bad = "CREATE SOURCE TABLE h (k VARCHAR PRIMARY KEY, humans ARRAY<VARCHAR>, completedAt VARCHAR, \
               rounds ARRAY<STRUCT<votes ARRAY<STRUCT<voter INT>>>>) \
               WITH (KAFKA_TOPIC = 'match-history', VALUE_FORMAT = 'JSON');\n\
               CREATE SOURCE TABLE s (k VARCHAR PRIMARY KEY, phase VARCHAR, currentRound INT) \
               WITH (KAFKA_TOPIC = 'match-state', VALUE_FORMAT = 'JSON');\n\
               CREATE TABLE x AS SELECT EXTRACTJSONFIELD(data, '$.nope') AS n FROM h EMIT CHANGES;";
    let errs = problems(bad).join("\n");
    for want in [
        "h.humans (match-history): no such field",
        "h.completedAt (match-history): declared VARCHAR",
        "h.rounds (match-history)[].votes[].voter: declared INT",
        "s.phase (match-state): no such field",
        "s.currentRound (match-state): no such field",
        "data.nope",
    ] {
        assert!(errs.contains(want), "`{want}` not reported:\n{errs}");
    }
}
