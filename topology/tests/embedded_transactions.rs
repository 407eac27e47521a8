//! The embedded broker keeps transactions as Apache Kafka does (vendor/README.md): a
//! `read_committed` reader never sees an aborted record, stops at an open transaction's
//! first record, and a new producer with the same transactional id aborts what the old one
//! left open and fences it. Real rdkafka clients against the in-process broker.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use topology::EmbeddedBroker;

const TOPIC: &str = "txn-test";
const WAIT: Duration = Duration::from_secs(20);

fn broker() -> EmbeddedBroker {
    let b = EmbeddedBroker::start().expect("embedded broker");
    b.create_topic(TOPIC, 1).unwrap();
    b
}

fn producer(broker: &EmbeddedBroker, transactional_id: Option<&str>) -> BaseProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.bootstrap_servers())
        .set("enable.idempotence", "true");
    if let Some(id) = transactional_id {
        c.set("transactional.id", id)
            .set("transaction.timeout.ms", "60000");
    }
    let p: BaseProducer = c.create().unwrap();
    if transactional_id.is_some() {
        p.init_transactions(WAIT).unwrap();
    }
    p
}

fn send(p: &BaseProducer, value: &str) {
    p.send(BaseRecord::to(TOPIC).key("k").payload(value).partition(0))
        .map_err(|(e, _)| e)
        .unwrap();
    p.flush(WAIT).unwrap();
}

fn consumer(broker: &EmbeddedBroker, isolation: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", format!("txn-test-{isolation}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "20")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    c
}

/// Reads values until `last` arrives (it is included); panics after `WAIT`.
fn read_until(c: &BaseConsumer, last: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(50)) {
            let m = m.unwrap();
            let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            let done = v == last;
            out.push(v);
            if done {
                return out;
            }
        }
    }
    panic!("{last:?} never arrived; read {out:?}");
}

/// The end a `read_committed` reader is told (the last stable offset).
fn committed_end(c: &BaseConsumer) -> i64 {
    c.fetch_watermarks(TOPIC, 0, WAIT).unwrap().1
}

#[test]
fn a_read_committed_reader_never_sees_an_aborted_transaction() {
    let broker = broker();
    let txn = producer(&broker, Some("t-abort"));
    let plain = producer(&broker, None);
    txn.begin_transaction().unwrap();
    send(&txn, "aborted-1");
    send(&plain, "plain-1");
    send(&txn, "aborted-2");
    txn.abort_transaction(WAIT).unwrap();
    txn.begin_transaction().unwrap();
    send(&txn, "committed");
    txn.commit_transaction(WAIT).unwrap();
    send(&plain, "plain-2");

    let committed = read_until(&consumer(&broker, "read_committed"), "plain-2");
    assert_eq!(committed, ["plain-1", "committed", "plain-2"]);
    // Nothing is hidden from a read_uncommitted reader, markers are not records.
    let all = read_until(&consumer(&broker, "read_uncommitted"), "plain-2");
    assert_eq!(
        all,
        ["aborted-1", "plain-1", "aborted-2", "committed", "plain-2"]
    );
}

#[test]
fn an_open_transaction_holds_read_committed_readers_at_its_first_record() {
    let broker = broker();
    let plain = producer(&broker, None);
    send(&plain, "before");
    let txn = producer(&broker, Some("t-open"));
    txn.begin_transaction().unwrap();
    send(&txn, "open");
    send(&plain, "after");

    let reader = consumer(&broker, "read_committed");
    assert_eq!(read_until(&reader, "before"), ["before"]);
    // The last stable offset is the open transaction's first record (offset 1); a
    // read_uncommitted reader is told the whole log.
    assert_eq!(committed_end(&reader), 1);
    assert_eq!(
        consumer(&broker, "read_uncommitted")
            .fetch_watermarks(TOPIC, 0, WAIT)
            .unwrap()
            .1,
        3
    );
    txn.commit_transaction(WAIT).unwrap();
    assert_eq!(read_until(&reader, "after"), ["open", "after"]);
    // `before`, `open`, `after`, and the commit marker.
    assert_eq!(committed_end(&reader), 4);
}

#[test]
fn a_new_producer_with_the_same_transactional_id_aborts_the_old_ones_transaction_and_fences_it() {
    let broker = broker();
    let zombie = producer(&broker, Some("t-fence"));
    zombie.begin_transaction().unwrap();
    send(&zombie, "zombie");

    let successor = producer(&broker, Some("t-fence"));
    successor.begin_transaction().unwrap();
    send(&successor, "successor");
    successor.commit_transaction(WAIT).unwrap();

    assert_eq!(
        read_until(&consumer(&broker, "read_committed"), "successor"),
        ["successor"]
    );
    let fenced = zombie.commit_transaction(WAIT);
    assert!(
        fenced.is_err(),
        "the old producer committed after it was fenced"
    );
}

#[test]
fn a_transaction_open_longer_than_its_timeout_is_aborted() {
    let broker = broker();
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("transactional.id", "t-timeout")
        .set("transaction.timeout.ms", "1000")
        .create()
        .unwrap();
    p.init_transactions(WAIT).unwrap();
    p.begin_transaction().unwrap();
    send(&p, "abandoned");
    let plain = producer(&broker, None);
    send(&plain, "after");

    // The reader is held at the abandoned transaction until the broker aborts it.
    let reader = consumer(&broker, "read_committed");
    assert_eq!(read_until(&reader, "after"), ["after"]);
    assert!(p.commit_transaction(WAIT).is_err());
}

/// Offsets sent in a transaction carry the consumer's group generation (KIP-447): once the
/// group has moved on, a transaction with the old generation cannot commit.
#[test]
fn a_transaction_with_offsets_of_an_old_group_generation_cannot_commit() {
    let broker = broker();
    broker.create_topic("txn-input", 2).unwrap();
    let member = |name: &str| -> BaseConsumer {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("group.id", "txn-generation")
            .set("client.id", name)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "100")
            .create()
            .unwrap();
        c.subscribe(&["txn-input"]).unwrap();
        c
    };
    let assigned = |members: &[&BaseConsumer], each: usize| {
        let deadline = Instant::now() + WAIT;
        loop {
            for m in members {
                let _ = m.poll(Duration::from_millis(20));
            }
            if members
                .iter()
                .all(|m| m.assignment().unwrap().count() == each)
            {
                return;
            }
            assert!(Instant::now() < deadline, "the group never settled");
        }
    };
    let first = member("first");
    assigned(&[&first], 2);
    let old = first.group_metadata().unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("txn-input", 0, Offset::Offset(0))
        .unwrap();

    let p = producer(&broker, Some("t-generation"));
    p.begin_transaction().unwrap();
    send(&p, "in-generation");
    p.send_offsets_to_transaction(&offsets, &old, WAIT).unwrap();
    p.commit_transaction(WAIT).unwrap();

    // A second member joins: a new generation.
    let second = member("second");
    assigned(&[&first, &second], 1);

    p.begin_transaction().unwrap();
    send(&p, "stale-generation");
    let stale = p
        .send_offsets_to_transaction(&offsets, &old, WAIT)
        .and_then(|()| p.commit_transaction(WAIT));
    assert!(
        stale.is_err(),
        "a transaction of an old generation committed"
    );
    // The error is abortable, not fatal: the same producer commits with the current
    // generation, and the stale transaction's record is never read.
    p.abort_transaction(WAIT).unwrap();
    p.begin_transaction().unwrap();
    send(&p, "current-generation");
    let current = first.group_metadata().unwrap();
    p.send_offsets_to_transaction(&offsets, &current, WAIT)
        .unwrap();
    p.commit_transaction(WAIT).unwrap();
    assert_eq!(
        read_until(&consumer(&broker, "read_committed"), "current-generation"),
        ["in-generation", "current-generation"]
    );
}

#[test]
fn group_offsets_sent_in_a_transaction_are_stored_when_it_commits_and_never_when_it_aborts() {
    let broker = broker();
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", "txn-offsets")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let group = reader.group_metadata().unwrap();
    let committed = || -> Offset {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(TOPIC, 0);
        let c = reader.committed_offsets(tpl, WAIT).unwrap();
        c.find_partition(TOPIC, 0).unwrap().offset()
    };
    let at = |offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Offset(offset))
            .unwrap();
        tpl
    };
    let p = producer(&broker, Some("t-offsets"));
    assert_eq!(committed(), Offset::Invalid);

    p.begin_transaction().unwrap();
    send(&p, "one");
    p.send_offsets_to_transaction(&at(5), &group, WAIT).unwrap();
    assert_eq!(committed(), Offset::Invalid, "stored before the commit");
    p.commit_transaction(WAIT).unwrap();
    assert_eq!(committed(), Offset::Offset(5));

    p.begin_transaction().unwrap();
    send(&p, "two");
    p.send_offsets_to_transaction(&at(9), &group, WAIT).unwrap();
    p.abort_transaction(WAIT).unwrap();
    assert_eq!(committed(), Offset::Offset(5));
}
