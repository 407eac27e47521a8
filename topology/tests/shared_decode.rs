//! Two processors reading one topic through a `SharedDecoder`: each record is decoded
//! once, both processors see it, and a record that does not decode reaches the DLQ from
//! each of them as it would with separate decoders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use topology::{
    Context, DecodeError, ProcessError, Processor, ProcessorDef, SharedDecoder, TopologyBuilder,
    TopologyTestDriver,
};

#[derive(serde::Deserialize)]
struct Reading {
    value: i64,
}

/// Forwards `value × factor`.
struct Scale(i64);

impl Processor for Scale {
    type Input = Arc<Reading>;
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        r: Self::Input,
    ) -> Result<(), ProcessError> {
        ctx.forward("out", key, &(r.value * self.0))
    }
}

fn driver(decodes: Arc<AtomicU64>) -> TopologyTestDriver {
    let readings = SharedDecoder::new(move |b: &[u8]| {
        decodes.fetch_add(1, Ordering::Relaxed);
        serde_json::from_slice::<Reading>(b)
            .map_err(|e| DecodeError::new(format!("bad reading: {e}")))
    });
    let mut b = TopologyBuilder::new();
    for (name, factor) in [("double", 2), ("triple", 3)] {
        b.add_processor(
            ProcessorDef::new(name, move |_| Scale(factor))
                .input_shared("readings", &readings, |r, _| Ok(r))
                .sink("out", format!("{name}-out")),
        );
    }
    TopologyTestDriver::new(b.build().unwrap(), "shared").unwrap()
}

fn values(d: &mut TopologyTestDriver, topic: &str) -> Vec<String> {
    d.read_output(topic)
        .iter()
        .map(|r| r.value_str().unwrap_or_default())
        .collect()
}

#[test]
fn processors_sharing_a_decoder_each_get_every_record_decoded_once() {
    let decodes = Arc::new(AtomicU64::new(0));
    let mut d = driver(decodes.clone());
    for (i, v) in [1, 5, -4].into_iter().enumerate() {
        d.pipe(
            "readings",
            "k",
            format!(r#"{{"value":{v}}}"#).as_bytes(),
            i as i64,
        )
        .unwrap();
    }
    assert_eq!(values(&mut d, "double-out"), ["2", "10", "-8"]);
    assert_eq!(values(&mut d, "triple-out"), ["3", "15", "-12"]);
    assert_eq!(decodes.load(Ordering::Relaxed), 3, "one decode per record");
}

#[test]
fn a_record_that_does_not_decode_goes_to_the_dlq_once_per_processor() {
    let decodes = Arc::new(AtomicU64::new(0));
    let mut d = driver(decodes.clone());
    d.pipe("readings", "k", b"{not json", 0).unwrap();
    d.pipe("readings", "k", br#"{"value":7}"#, 1).unwrap();
    let dlq = d.read_output(&d.dlq_topic());
    let processors: Vec<&str> = dlq
        .iter()
        .map(|r| r.header("processor").unwrap_or_default())
        .collect();
    assert_eq!(processors, ["double", "triple"], "{dlq:?}");
    assert!(dlq.iter().all(|r| r
        .header("error")
        .unwrap_or_default()
        .contains("bad reading")));
    assert_eq!(
        decodes.load(Ordering::Relaxed),
        2,
        "the bad record was decoded once"
    );
    assert_eq!(values(&mut d, "double-out"), ["14"], "processing continued");
    assert_eq!(values(&mut d, "triple-out"), ["21"]);
}
