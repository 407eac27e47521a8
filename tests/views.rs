//! The read views on the embedded broker: `match-history` read into a local on-disk store
//! whose page cache is far smaller than the data, paged newest first, tombstones applied,
//! a restart resuming from the stored offsets (nothing re-read), and a store left by
//! another cluster wiped and rebuilt.

mod support;

use std::time::Duration;

use orchestra::views::{LatestView, ViewConfig};
use processors::game::history::evolve_history;
use processors::streams::topics;
use rdkafka::ClientConfig;
use schemas::{HistoryStatus, MatchHistory};
use topology::{testing, EmbeddedBroker};

const WAIT: Duration = Duration::from_secs(60);
const MATCHES: usize = 3_000;
/// The views' page cache in this test: a small fraction of the data.
const CACHE_BYTES: u64 = 64 << 10;

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

fn broker() -> EmbeddedBroker {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    orchestra::topics::create_embedded(&broker, 2).expect("topics");
    broker
}

/// Match `i`: created at `i`, completed at `10 * i` (so newest first = highest `i`).
fn doc(i: usize) -> (String, Vec<u8>) {
    let id = format!("m-{i:05}");
    let mut h: MatchHistory = evolve_history(None, &support::duel_created(&id, i as i64));
    h.status = HistoryStatus::Completed;
    h.completed_at = Some(10 * i as i64);
    h.duration_ms = Some(9 * i as u64);
    (id, serde_json::to_vec(&h).expect("encode"))
}

fn ids(view: &LatestView, offset: usize, limit: usize) -> Vec<String> {
    view.page(offset, limit)
        .expect("page")
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn history_view_is_paged_from_disk_and_resumes_after_a_restart() {
    let broker = broker();
    let bootstrap = broker.bootstrap_servers();
    let records: Vec<(String, Vec<u8>)> = (0..MATCHES).map(doc).collect();
    testing::produce(&bootstrap, topics::MATCH_HISTORY, &records, 1_000).expect("produce");
    let state = tempfile::tempdir().expect("tempdir");
    let config = ViewConfig {
        dir: Some(state.path().join("views").join(topics::MATCH_HISTORY)),
        cache_bytes: CACHE_BYTES,
    };

    let view = LatestView::open(&client(&bootstrap), topics::MATCH_HISTORY, &config).expect("view");
    assert!(view.wait_caught_up(WAIT), "never caught up: {view:?}");
    assert!(view.wait_for(MATCHES, WAIT), "{view:?}");
    assert_eq!((view.len(), view.indexed()), (MATCHES, MATCHES));
    assert_eq!(view.behind(), 0);

    // Newest first, any page, without a sort in memory.
    assert_eq!(ids(&view, 0, 3), ["m-02999", "m-02998", "m-02997"]);
    assert_eq!(ids(&view, 1500, 2), ["m-01499", "m-01498"]);
    assert_eq!(ids(&view, MATCHES - 2, 20), ["m-00001", "m-00000"]);
    assert!(ids(&view, MATCHES, 20).is_empty());
    let first = view.page(0, 1).expect("page");
    assert_eq!(
        first[0].1.value,
        records[MATCHES - 1].1,
        "the document as written"
    );
    assert_eq!(view.get("m-00042").expect("by id").value, records[42].1);

    // Bounded: the data is many times the cache the store may keep in memory, and the
    // view holds no table of its own (entries are read from disk as asked).
    let data: usize = records.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(data as u64 > 8 * CACHE_BYTES, "{data} bytes of history");
    assert_eq!(view.store().cache_bytes(), CACHE_BYTES);
    assert!(view.store().size_on_disk().expect("size") > 4 * CACHE_BYTES);

    // A tombstone removes a match from the pages and the count.
    testing::produce_raw(
        &bootstrap,
        topics::MATCH_HISTORY,
        &[(Some(b"m-02999".to_vec()), None)],
    )
    .expect("tombstone");
    assert!(view.wait_until(WAIT, |v| v.get("m-02999").is_none()));
    assert_eq!(view.indexed(), MATCHES - 1);
    assert_eq!(ids(&view, 0, 1), ["m-02998"]);
    drop(view);

    // A restart resumes from the stored offsets: nothing is read again.
    let view =
        LatestView::open(&client(&bootstrap), topics::MATCH_HISTORY, &config).expect("reopen");
    assert_eq!(view.len(), MATCHES - 1, "served from the store at once");
    assert_eq!(ids(&view, 0, 1), ["m-02998"]);
    assert!(view.wait_caught_up(WAIT), "{view:?}");
    assert_eq!(
        view.records_applied(),
        0,
        "resumed at the end, re-read nothing"
    );
    let (id, value) = doc(MATCHES);
    testing::produce(&bootstrap, topics::MATCH_HISTORY, &[(id, value)], 2_000).expect("one more");
    assert!(view.wait_for(MATCHES, WAIT), "{view:?}");
    assert_eq!(view.records_applied(), 1, "only the new record");
    assert_eq!(ids(&view, 0, 1), ["m-03000"]);
    drop(view);

    // The same directory against another cluster: the store is wiped and rebuilt.
    let other = self::broker();
    let other_bootstrap = other.bootstrap_servers();
    testing::produce(&other_bootstrap, topics::MATCH_HISTORY, &[doc(7)], 3_000).expect("produce");
    let view = LatestView::open(&client(&other_bootstrap), topics::MATCH_HISTORY, &config)
        .expect("open on another cluster");
    assert!(view.wait_caught_up(WAIT), "{view:?}");
    assert!(view.wait_for(1, WAIT), "{view:?}");
    assert_eq!(view.len(), 1, "only the other cluster's match: {view:?}");
    assert_eq!(ids(&view, 0, 10), ["m-00007"]);
}

/// Writes `docs` to `match-history` in one committed transaction (on a broker that writes
/// commit markers, the partitions end in offsets no record carries).
fn produce_in_a_transaction(bootstrap: &str, docs: &[(String, Vec<u8>)], id: &str) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = client(bootstrap)
        .set("transactional.id", id)
        .create()
        .expect("transactional producer");
    producer.init_transactions(WAIT).expect("init");
    producer.begin_transaction().expect("begin");
    for (k, v) in docs {
        producer
            .send(BaseRecord::to(topics::MATCH_HISTORY).key(k).payload(v))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.commit_transaction(WAIT).expect("commit");
}

#[test]
fn a_view_waited_to_the_end_holds_every_record_written_before_the_wait() {
    let broker = broker();
    let bootstrap = broker.bootstrap_servers();
    let first: Vec<_> = (0..200).map(doc).collect();
    produce_in_a_transaction(&bootstrap, &first, "views-end-1");
    let view = LatestView::start(&client(&bootstrap), topics::MATCH_HISTORY).expect("view");
    assert!(
        view.wait_read_to_end(&client(&bootstrap), WAIT)
            .expect("end offsets"),
        "never read past the commit markers: {view:?}"
    );
    assert_eq!(view.len(), 200);
    assert!(view.wait_caught_up(WAIT), "{view:?}");

    // Once caught up, more arrives: having reached the end once is not enough, the wait
    // reads to the end as it is now.
    let second: Vec<_> = (200..450).map(doc).collect();
    produce_in_a_transaction(&bootstrap, &second, "views-end-2");
    assert!(view.caught_up(), "reached the end once already");
    assert!(
        view.wait_read_to_end(&client(&bootstrap), WAIT)
            .expect("end offsets"),
        "{view:?}"
    );
    assert_eq!(view.len(), 450, "every record written before the wait");
}
