//! The outbox against a simple in-memory model.
use std::collections::BTreeMap;

use outpost_proto::agent_v1::{HostFacts, MetricSample};
use proptest::prelude::*;

use super::*;

fn metric(v: f64) -> Body {
    Body::Metric(MetricSample {
        name: "m".into(),
        value: v,
        subject: String::new(),
    })
}

fn facts() -> Body {
    Body::HostFacts(HostFacts {
        hostname: "h".into(),
        ..Default::default()
    })
}

#[derive(Clone, Debug)]
enum Op {
    AppendMetrics(usize),
    AppendFacts,
    /// Acknowledge the record at this index of what is held (if any).
    Ack(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..20).prop_map(Op::AppendMetrics),
        1 => Just(Op::AppendFacts),
        3 => (0usize..40).prop_map(Op::Ack),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40), cap in 5u64..60) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("outbox.redb");
        let mut outbox = Some(Outbox::open(&path, cap).expect("open"));
        // seq -> is_metric
        let mut model: BTreeMap<u64, bool> = BTreeMap::new();
        let mut next = 1u64;
        for op in ops {
            let ob = outbox.as_ref().expect("open outbox");
            match op {
                Op::AppendMetrics(n) => {
                    let seqs = ob.append((0..n).map(|i| (i as i64, metric(i as f64))).collect()).expect("append");
                    prop_assert_eq!(seqs, (next..next + n as u64).collect::<Vec<_>>());
                    let overflow = (model.len() as u64 + n as u64).saturating_sub(cap);
                    let victims: Vec<u64> = model.iter().filter(|(_, m)| **m).map(|(k, _)| *k).take(overflow as usize).collect();
                    for v in victims { model.remove(&v); }
                    for s in next..next + n as u64 { model.insert(s, true); }
                    next += n as u64;
                }
                Op::AppendFacts => {
                    let seqs = ob.append(vec![(1, facts())]).expect("append");
                    prop_assert_eq!(seqs, vec![next]);
                    let overflow = (model.len() as u64 + 1).saturating_sub(cap);
                    let victims: Vec<u64> = model.iter().filter(|(_, m)| **m).map(|(k, _)| *k).take(overflow as usize).collect();
                    for v in victims { model.remove(&v); }
                    model.insert(next, false);
                    next += 1;
                }
                Op::Ack(i) => {
                    if let Some(&seq) = model.keys().nth(i) {
                        let removed = ob.ack_through(seq).expect("ack");
                        let expect = model.range(..=seq).count() as u64;
                        prop_assert_eq!(removed, expect);
                        model.retain(|k, _| *k > seq);
                    }
                }
                Op::Reopen => {
                    drop(outbox.take());
                    outbox = Some(Outbox::open(&path, cap).expect("reopen"));
                }
            }
            let ob = outbox.as_ref().expect("open outbox");
            let held: Vec<Record> = ob.read_after(0, usize::MAX, usize::MAX).expect("read");
            prop_assert_eq!(held.iter().map(|r| r.seq).collect::<Vec<_>>(), model.keys().copied().collect::<Vec<_>>());
            for r in &held {
                prop_assert_eq!(r.observation.seq, r.seq);
                prop_assert_eq!(matches!(r.observation.body, Some(Body::Metric(_))), model[&r.seq]);
            }
            prop_assert_eq!(ob.depth().expect("depth"), model.len() as u64);
            prop_assert_eq!(ob.first_unacked().expect("first"), model.keys().next().copied().unwrap_or(next));
        }
    }
}

#[test]
fn read_after_respects_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open(&dir.path().join("o.redb"), 1000).expect("open");
    ob.append((0..10).map(|i| (i, metric(i as f64))).collect())
        .expect("append");
    assert_eq!(ob.read_after(0, 3, usize::MAX).expect("read").len(), 3);
    assert_eq!(
        ob.read_after(7, 100, usize::MAX)
            .expect("read")
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        vec![8, 9, 10]
    );
    // At least one record is returned even if it alone exceeds the byte budget.
    assert_eq!(ob.read_after(0, 100, 1).expect("read").len(), 1);
}

#[test]
fn host_facts_are_never_thinned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open(&dir.path().join("o.redb"), 3).expect("open");
    ob.append(vec![(0, facts()), (0, facts()), (0, facts())])
        .expect("append");
    ob.append(vec![(0, metric(1.0))]).expect("append over capacity");
    let held = ob.read_after(0, 100, usize::MAX).expect("read");
    assert_eq!(held.len(), 4, "facts are kept even past capacity");
    ob.append(vec![(0, metric(2.0))]).expect("append");
    let held = ob.read_after(0, 100, usize::MAX).expect("read");
    assert_eq!(
        held.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 5],
        "the older metric made room"
    );
    assert_eq!(ob.thinned().expect("thinned"), 1);
}

#[test]
fn sequence_numbers_survive_reopen_after_everything_is_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    {
        let ob = Outbox::open(&path, 100).expect("open");
        ob.append(vec![(0, metric(1.0)), (0, metric(2.0))]).expect("append");
        ob.ack_through(2).expect("ack");
    }
    let ob = Outbox::open(&path, 100).expect("reopen");
    assert_eq!(ob.first_unacked().expect("first"), 3);
    assert_eq!(ob.append(vec![(0, metric(3.0))]).expect("append"), vec![3]);
}

#[test]
fn a_forgotten_outbox_renumbers_new_records_instead_of_dropping_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    // A previous life: 5 records, then a restart.
    {
        let ob = Outbox::open(&path, 100).expect("open");
        ob.append((0..5).map(|i| (i, metric(i as f64))).collect())
            .expect("append");
    }
    let ob = Outbox::open(&path, 100).expect("reopen");
    ob.append(vec![(0, facts()), (0, metric(42.0))])
        .expect("new records 6, 7");
    // The collector committed up to 100 from an outbox this one is an old copy of.
    assert_eq!(ob.reconcile(100).expect("reconcile"), 5, "old copies dropped");
    let held = ob.read_after(0, 100, usize::MAX).expect("read");
    assert_eq!(held.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![101, 102]);
    assert_eq!(
        held.iter().map(|r| r.observation.seq).collect::<Vec<_>>(),
        vec![101, 102]
    );
    assert!(matches!(held[0].observation.body, Some(Body::HostFacts(_))));
    assert_eq!(ob.append(vec![(0, metric(1.0))]).expect("append"), vec![103]);
    // Later Welcomes of the same process are ordinary acknowledgements.
    assert_eq!(ob.reconcile(101).expect("ack"), 1);
    assert_eq!(ob.first_unacked().expect("first"), 102);
}

#[test]
fn an_ordinary_welcome_is_an_acknowledgement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open(&dir.path().join("o.redb"), 100).expect("open");
    ob.append((0..5).map(|i| (i, metric(i as f64))).collect())
        .expect("append");
    assert_eq!(ob.reconcile(0).expect("nothing committed yet"), 0);
    assert_eq!(ob.reconcile(3).expect("ack"), 3);
    assert_eq!(ob.first_unacked().expect("first"), 4);
}

#[test]
fn a_corrupt_record_is_skipped_and_acknowledged_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open(&dir.path().join("o.redb"), 100).expect("open");
    ob.append((0..3).map(|i| (i, metric(i as f64))).collect())
        .expect("append");
    let txn = ob.db.begin_write().expect("txn");
    txn.open_table(RECORDS)
        .expect("table")
        .insert(2, &[1u8, 0xff, 0xff, 0xff][..])
        .expect("damage");
    txn.commit().expect("commit");
    let held = ob.read_after(0, 100, usize::MAX).expect("read past the damage");
    assert_eq!(held.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(ob.ack_through(3).expect("ack"), 3);
    assert_eq!(ob.depth().expect("depth"), 0);
}
