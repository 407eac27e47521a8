//! The Grafana dashboard against a real scrape. The demo runs in this process with the
//! binary's Prometheus exporter (`orchestra::metrics::install`, as `orchestra demo` and
//! `orchestra run` install it) and plays a few matches with robots (and one created through
//! the API, for the request latency histograms); then `GET /metrics`
//! over HTTP must hold every metric name and label that the dashboard's expressions,
//! legends and variables refer to. Every `orchestra_` family of the scrape must also be
//! described and declared, with its type and labels, in a crate's metrics table.

mod exposition;
mod promql;

use std::collections::BTreeSet;
use std::time::Duration;

use orchestra::demo::{self, DemoOptions};
use serde_json::Value;
use topology::metrics::{MetricDef, MetricKind};

use exposition::Scrape;
use promql::{legend_labels, references, variable_references, References};

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/dashboards/orchestra.json"
);
/// Labels Prometheus attaches to every series it scrapes (not in the exposition).
const TARGET_LABELS: &[&str] = &["instance", "job"];
const MATCHES: u64 = 3;

/// One query of the dashboard: where it is, the expression and its legend format.
struct Query {
    place: String,
    expr: String,
    legend: String,
}

/// Every target expression of every panel (rows' nested panels included).
fn panel_queries(panels: &[Value], out: &mut Vec<Query>) {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push(Query {
                    place: format!(
                        "panel `{title}` target {}",
                        target["refId"].as_str().unwrap_or("?")
                    ),
                    expr: expr.to_string(),
                    legend: target["legendFormat"].as_str().unwrap_or("").to_string(),
                });
            }
        }
        if let Some(nested) = panel["panels"].as_array() {
            panel_queries(nested, out);
        }
    }
}

/// The queries of the dashboard's query variables.
fn variable_queries(dashboard: &Value) -> Vec<Query> {
    let vars = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten();
    vars.filter(|v| v["type"] == "query")
        .filter_map(|v| {
            let q = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())?;
            Some(Query {
                place: format!("variable `{}`", v["name"].as_str().unwrap_or("?")),
                expr: q.to_string(),
                legend: String::new(),
            })
        })
        .collect()
}

/// What is wrong with `query` against `scrape`: metric names the scrape lacks, labels
/// none of the expression's metrics carry.
fn problems_of(query: &Query, refs: &References, scrape: &Scrape) -> Vec<String> {
    let names = scrape.sample_names();
    let mut problems = Vec::new();
    let mut allowed: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
    allowed.insert("__name__");
    for metric in &refs.metrics {
        match scrape.family_of_sample(metric) {
            Some(f) if names.contains(metric.as_str()) => {
                allowed.extend(f.labels.iter().map(String::as_str));
            }
            _ => problems.push(format!(
                "{}: metric `{metric}` is not in the scrape",
                query.place
            )),
        }
    }
    if refs.metrics.is_empty() {
        // A variable over every series: any label of the scrape.
        allowed.extend(
            scrape
                .families
                .values()
                .flat_map(|f| f.labels.iter().map(String::as_str)),
        );
    }
    for label in refs.labels.iter().chain(&legend_labels(&query.legend)) {
        if !allowed.contains(label.as_str()) {
            problems.push(format!(
                "{}: label `{label}` is on none of {:?} (`{}`)",
                query.place, refs.metrics, query.expr
            ));
        }
    }
    problems
}

/// What is wrong with the `orchestra_` families of the scrape against the crates' tables.
fn undeclared(scrape: &Scrape) -> Vec<String> {
    let defs: Vec<&MetricDef> = orchestra::metrics::all().collect();
    let mut problems = Vec::new();
    for (name, family) in scrape
        .families
        .iter()
        .filter(|(n, _)| n.starts_with("orchestra_"))
    {
        let Some(def) = defs.iter().find(|d| d.name == name) else {
            problems.push(format!("`{name}` is in no crate's metrics table"));
            continue;
        };
        if !family.described {
            problems.push(format!("`{name}` has no # HELP"));
        }
        let kind = match def.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram { .. } => "histogram",
        };
        if family.kind != kind {
            problems.push(format!(
                "`{name}` is exported as `{}`, declared a {kind}",
                family.kind
            ));
        }
        let labels: BTreeSet<&str> = family
            .labels
            .iter()
            .map(String::as_str)
            .filter(|l| *l != "le")
            .collect();
        let declared: BTreeSet<&str> = def.labels.iter().copied().collect();
        if labels != declared {
            problems.push(format!(
                "`{name}` has labels {labels:?}, declared {declared:?}"
            ));
        }
    }
    problems
}

#[test]
fn every_dashboard_query_refers_to_metrics_and_labels_of_a_real_scrape() {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).expect("dashboard"))
            .expect("JSON");
    let mut queries = Vec::new();
    panel_queries(
        dashboard["panels"].as_array().expect("panels"),
        &mut queries,
    );
    assert!(queries.len() > 20, "the dashboard's panels have queries");
    let variables = variable_queries(&dashboard);
    let wanted: BTreeSet<String> = queries
        .iter()
        .flat_map(|q| references(&q.expr).metrics)
        .collect();

    let handle = orchestra::metrics::try_install().expect("Prometheus recorder");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = DemoOptions {
        application_id: "metrics-dashboard".into(),
        matches: Some(MATCHES),
        rounds: 1,
        partitions: 2,
        http: Some("127.0.0.1:0".parse().expect("address")),
        response_window: Duration::from_secs(2),
        voting_window: Duration::from_secs(2),
        progress: false,
        on_ready: Some(ready_tx),
        shutdown: Some(stop_rx),
        ..DemoOptions::default()
    };
    let demo = rt.spawn(demo::run(opts, Some(handle)));
    let (_, api) = ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo started");
    let api = api.expect("the read API runs");
    let http = reqwest::blocking::Client::new();
    let get = |path: &str| {
        http.get(format!("http://{api}{path}"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.text().ok())
    };

    // One match through the API, so that the request latency histograms have samples
    // (the demo's simulator writes its requests to Kafka itself).
    let created = http
        .post(format!("http://{api}/matches"))
        .json(&serde_json::json!({"totalRounds": 1, "humans": [{"playerId": "p1", "name": "Ann"}]}))
        .send()
        .expect("POST /matches");
    assert_eq!(created.status().as_u16(), 202, "{:?}", created.text());

    let played = topology::testing::wait_until(Duration::from_secs(60), || {
        get("/matches/history?limit=100")
            .and_then(|t| serde_json::from_str::<Vec<Value>>(&t).ok())
            .is_some_and(|h| h.len() as u64 >= MATCHES)
    });
    assert!(played, "the demo played {MATCHES} matches");
    // Gauges stated at commits and store flushes appear within seconds of the matches.
    let mut text = String::new();
    topology::testing::wait_until(Duration::from_secs(20), || {
        text = get("/metrics").unwrap_or_default();
        let names = Scrape::parse(&text);
        let names = names.sample_names();
        wanted.iter().all(|m| names.contains(m.as_str()))
    });
    stop_tx.send(true).expect("stop the demo");
    rt.block_on(demo).expect("demo task").expect("demo");

    let scrape = Scrape::parse(&text);
    let mut problems: Vec<String> = queries
        .iter()
        .flat_map(|q| problems_of(q, &references(&q.expr), &scrape))
        .collect();
    problems.extend(
        variables
            .iter()
            .flat_map(|q| problems_of(q, &variable_references(&q.expr), &scrape)),
    );
    problems.extend(undeclared(&scrape));
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n\nscrape:\n{text}",
        problems.len(),
        problems.join("\n")
    );
}
