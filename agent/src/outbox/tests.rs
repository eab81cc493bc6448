//! The outbox against a simple in-memory model, with storage faults injected
//! at every step; plus the reopen path, the instance id and the renumbering.
use std::collections::BTreeMap;
use std::sync::Arc;

use outpost_proto::agent_v1::{HostFacts, MetricSample};
use proptest::prelude::*;

use super::fault::Faults;
use super::*;

fn metric(v: f64) -> Body {
    Body::Metric(MetricSample {
        name: "m".into(),
        value: v,
        subject: String::new(),
    })
}

fn facts() -> Body {
    facts_named("h")
}

fn facts_named(hostname: &str) -> Body {
    Body::HostFacts(HostFacts {
        hostname: hostname.into(),
        ..Default::default()
    })
}

/// Options for tests: no free-space reserve (the test machine's disk must not
/// matter), quick reopen attempts.
fn options(cap: u64) -> OutboxOptions {
    let mut o = OutboxOptions::new(cap);
    o.min_free_bytes = 0;
    o.reopen_attempts = 2;
    o.first_reopen_delay = Duration::ZERO;
    o
}

fn open_faulty(path: &Path, o: &OutboxOptions, faults: &Arc<Faults>) -> Result<Outbox, OutboxError> {
    Outbox::open_using(path, o, faults.opener(path))
}

/// What the test can see of a record: (is a metric sample, payload id).
type Payload = (bool, u64);

fn payload(r: &Record) -> Payload {
    match &r.observation.body {
        Some(Body::Metric(m)) => (true, m.value as u64),
        Some(Body::HostFacts(f)) => (false, f.hostname.parse().unwrap_or(u64::MAX)),
        // The model writes only metrics and host facts.
        _ => (false, u64::MAX),
    }
}

/// The outbox as the model sees it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    records: BTreeMap<u64, Payload>,
    next: u64,
    thinned: u64,
    opened_next: u64,
    reconciled: bool,
}

impl Model {
    fn new() -> Self {
        Self {
            next: 1,
            opened_next: 1,
            ..Self::default()
        }
    }

    fn append(&mut self, cap: u64, items: &[Payload]) -> Vec<u64> {
        let overflow = (self.records.len() as u64 + items.len() as u64).saturating_sub(cap);
        let victims: Vec<u64> = self
            .records
            .iter()
            .filter(|(_, (m, _))| *m)
            .map(|(k, _)| *k)
            .take(overflow as usize)
            .collect();
        self.thinned += victims.len() as u64;
        for v in victims {
            self.records.remove(&v);
        }
        let seqs: Vec<u64> = (self.next..self.next + items.len() as u64).collect();
        for (s, p) in seqs.iter().zip(items) {
            self.records.insert(*s, *p);
        }
        self.next += items.len() as u64;
        seqs
    }

    fn ack(&mut self, seq: u64) -> u64 {
        let removed = self.records.range(..=seq).count() as u64;
        self.records.retain(|k, _| *k > seq);
        if seq >= self.next {
            self.next = seq + 1;
        }
        removed
    }

    fn reconcile(&mut self, acked: u64) -> u64 {
        if self.reconciled || acked < self.opened_next {
            self.reconciled = true;
            return self.ack(acked);
        }
        let from = self.opened_next;
        let shift = acked + 1 - from;
        let new = self.records.split_off(&from);
        let dropped = self.records.len() as u64;
        let top = new.keys().next_back().map(|s| s + shift + 1).unwrap_or(0);
        self.records = new.into_iter().map(|(s, p)| (s + shift, p)).collect();
        self.next = self.next.max(top).max(acked + 1);
        self.reconciled = true;
        dropped
    }

    fn reopened(mut self) -> Self {
        self.opened_next = self.next;
        self.reconciled = false;
        self
    }

    /// The parts that are on disk.
    fn disk(&self) -> (BTreeMap<u64, Payload>, u64, u64) {
        (self.records.clone(), self.next, self.thinned)
    }
}

fn disk_of(ob: &Outbox) -> (BTreeMap<u64, Payload>, u64, u64) {
    let held = ob.read_after(0, usize::MAX, usize::MAX).expect("read");
    for r in &held {
        assert_eq!(r.observation.seq, r.seq, "the observation carries its number");
    }
    (
        held.iter().map(|r| (r.seq, payload(r))).collect(),
        ob.next_seq().expect("next_seq"),
        ob.thinned().expect("thinned"),
    )
}

#[derive(Clone, Debug)]
enum Op {
    AppendMetrics(usize),
    AppendFacts,
    /// Acknowledge the record at this index of what is held (if any).
    Ack(usize),
    /// A `Welcome` whose high-water mark is this far from the number the
    /// outbox had when opened (at or below 0: an ordinary acknowledgement).
    Welcome(i64),
    Reopen,
}

#[derive(Clone, Copy, Debug)]
struct Fault {
    /// Writing calls let through first.
    after: u32,
    /// Whether the storage stays broken (beyond the reopen attempts).
    persistent: bool,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..20).prop_map(Op::AppendMetrics),
        1 => Just(Op::AppendFacts),
        3 => (0usize..40).prop_map(Op::Ack),
        2 => (-3i64..30).prop_map(Op::Welcome),
        1 => Just(Op::Reopen),
    ]
}

fn step() -> impl Strategy<Value = (Op, Option<Fault>)> {
    let fault = (0u32..24, proptest::bool::weighted(0.3)).prop_map(|(after, persistent)| Fault { after, persistent });
    (op(), proptest::option::weighted(0.4, fault))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every operation may hit a storage fault. A passing fault (the storage
    /// works again when reopened) must be invisible: the operation succeeds,
    /// exactly once. A lasting one fails the outbox; after the storage is
    /// repaired and the file reopened, it holds the state from before the
    /// operation or from after it, never anything in between, and an
    /// interrupted renumbering is finished by the reopening.
    #[test]
    fn behaves_like_the_model_despite_storage_faults(
        steps in proptest::collection::vec(step(), 1..40),
        cap in 5u64..60,
        chunk in 1usize..6,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("outbox.redb");
        let faults = Faults::new();
        let mut o = options(cap);
        o.reconcile_chunk = chunk;
        let mut outbox = Some(open_faulty(&path, &o, &faults).expect("open"));
        let mut model = Model::new();
        let mut id = 0u64;
        for (op, fault) in steps {
            let ob = outbox.as_ref().expect("open outbox");
            if let Some(f) = fault {
                faults.arm(f.after, f.persistent);
            }
            let before = model.clone();
            let mut after = model.clone();
            let result: Result<(), OutboxError> = match &op {
                Op::AppendMetrics(n) => {
                    let ids: Vec<u64> = (id..id + *n as u64).collect();
                    id += *n as u64;
                    let want = after.append(cap, &ids.iter().map(|i| (true, *i)).collect::<Vec<_>>());
                    ob.append(ids.iter().map(|i| (0, metric(*i as f64))).collect())
                        .map(|seqs| assert_eq!(seqs, want, "numbers handed out"))
                }
                Op::AppendFacts => {
                    let want = after.append(cap, &[(false, id)]);
                    let r = ob.append(vec![(1, facts_named(&id.to_string()))]);
                    id += 1;
                    r.map(|seqs| assert_eq!(seqs, want, "numbers handed out"))
                }
                Op::Ack(i) => match model.records.keys().nth(*i) {
                    Some(&seq) => {
                        let want = after.ack(seq);
                        ob.ack_through(seq).map(|n| assert_eq!(n, want, "removed"))
                    }
                    None => Ok(()),
                },
                Op::Welcome(offset) => {
                    let acked = (model.opened_next as i64 - 1 + offset).max(0) as u64;
                    let want = after.reconcile(acked);
                    ob.reconcile(acked).map(|n| assert_eq!(n, want, "dropped"))
                }
                Op::Reopen => {
                    drop(outbox.take());
                    after = after.reopened();
                    let reopened = open_faulty(&path, &o, &faults).or_else(|_| {
                        faults.disarm();
                        open_faulty(&path, &o, &faults)
                    });
                    outbox = Some(reopened.expect("reopen"));
                    Ok(())
                }
            };
            faults.disarm();
            match result {
                Ok(()) => model = after,
                Err(OutboxError::Failed { .. }) => {
                    prop_assert!(fault.is_some_and(|f| f.persistent), "{op:?} failed without a lasting fault");
                    let old = outbox.take().expect("open outbox");
                    prop_assert!(old.failed_token().is_cancelled());
                    prop_assert!(matches!(old.depth(), Err(OutboxError::Failed { .. })), "failed for good");
                    drop(old);
                    let ob = open_faulty(&path, &o, &faults).expect("reopen after the storage is repaired");
                    let disk = disk_of(&ob);
                    let (is_before, is_after) = (disk == before.disk(), disk == after.disk());
                    prop_assert!(is_before || is_after, "after {:?}: neither the state before nor after: {:?}", op, disk);
                    model = if is_after {
                        let mut m = after.reopened();
                        if let Op::Welcome(offset) = op {
                            // An interrupted renumbering was finished by the
                            // open, which then treats every number from its
                            // first target on as its own. (When the state
                            // before and after look alike, the job may or may
                            // not have been recorded: either value is right.)
                            let acked = (before.opened_next as i64 - 1 + offset).max(0) as u64;
                            let allowed = [m.next, m.next.min(acked + 1)];
                            prop_assert!(allowed.contains(&ob.opened_next_seq), "{} not in {:?}", ob.opened_next_seq, allowed);
                            m.opened_next = ob.opened_next_seq;
                        }
                        m
                    } else {
                        before.reopened()
                    };
                    outbox = Some(ob);
                }
                Err(e) => prop_assert!(false, "{op:?}: unexpected error {e}"),
            }
            let ob = outbox.as_ref().expect("open outbox");
            prop_assert_eq!(disk_of(ob), model.disk());
            prop_assert_eq!(ob.depth().expect("depth"), model.records.len() as u64);
            prop_assert_eq!(ob.first_unacked().expect("first"), model.records.keys().next().copied().unwrap_or(model.next));
            prop_assert_eq!(ob.opened_next_seq, model.opened_next);
        }
    }
}

#[test]
fn a_passing_io_error_is_retried_once_on_a_reopened_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    let faults = Faults::new();
    let ob = open_faulty(&path, &options(1000), &faults).expect("open");
    let mut next = 1;
    // Fail each writing call of an append in turn: the first call, the
    // commit's fsyncs, the header write. Every append still lands exactly once.
    for after in 0..12 {
        faults.arm(after, false);
        let seqs = ob
            .append(vec![(0, metric(1.0)), (0, metric(2.0))])
            .expect("append recovers");
        assert_eq!(seqs, vec![next, next + 1], "fault after {after} calls");
        next += 2;
        assert_eq!(
            ob.depth().expect("depth"),
            next - 1,
            "no duplicates (fault after {after})"
        );
    }
    assert!(faults.fired() >= 8, "the faults fired: {}", faults.fired());
    assert!(!ob.failed_token().is_cancelled());
}

#[test]
fn a_commit_that_reached_the_disk_is_not_repeated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    let faults = Faults::new();
    let ob = open_faulty(&path, &options(1000), &faults).expect("open");
    ob.append(vec![(0, metric(0.0))]).expect("append");
    // The commit's fsync fails after its pages and header were written: the
    // commit is on disk, but reported as failed.
    faults.arm_next_sync();
    assert_eq!(ob.append(vec![(0, metric(1.0))]).expect("append"), vec![2]);
    assert_eq!(faults.fired(), 1);
    let held = ob.read_after(0, 100, usize::MAX).expect("read");
    assert_eq!(
        held.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2],
        "stored once"
    );
    assert_eq!(ob.next_seq().expect("next"), 3);
    // The same for an acknowledgement: its count is the one of the commit
    // that reached the disk, not the nothing a repeat would find.
    faults.arm_next_sync();
    assert_eq!(ob.ack_through(2).expect("ack"), 2);
    assert_eq!(faults.fired(), 2);
}

#[test]
fn a_lasting_io_error_fails_the_outbox_and_names_the_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    let faults = Faults::new();
    let ob = open_faulty(&path, &options(1000), &faults).expect("open");
    ob.append(vec![(0, facts())]).expect("append");
    let token = ob.failed_token();
    faults.arm(0, true);
    let err = ob.append(vec![(0, facts())]).expect_err("the storage stays broken");
    let text = err.to_string();
    assert!(matches!(err, OutboxError::Failed { attempts: 2, .. }), "{err:?}");
    assert!(text.contains("o.redb") && text.contains("injected fault"), "{text}");
    assert!(token.is_cancelled(), "the agent is told");
    assert!(ob.failure().is_some());
    faults.disarm();
    // Failed for good, even for reads and once the storage works again.
    assert!(matches!(ob.depth(), Err(OutboxError::Failed { .. })));
    assert!(matches!(ob.read_after(0, 1, 1), Err(OutboxError::Failed { .. })));
    drop(ob);
    let ob = Outbox::open_with(&path, &options(1000)).expect("a new process can open it");
    assert_eq!(ob.depth().expect("depth"), 1, "what was committed before is there");
}

#[test]
fn read_after_respects_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open_with(&dir.path().join("o.redb"), &options(1000)).expect("open");
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
    let ob = Outbox::open_with(&dir.path().join("o.redb"), &options(3)).expect("open");
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
fn below_the_reserve_metrics_are_refused_and_counted_but_facts_are_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    let mut o = options(1000);
    o.min_free_bytes = u64::MAX;
    {
        let ob = Outbox::open_with(&path, &o).expect("open");
        assert_eq!(
            ob.append(vec![(0, metric(1.0)), (0, metric(2.0))]).expect("append"),
            Vec::<u64>::new()
        );
        assert_eq!(ob.refused().expect("refused"), 2);
        assert_eq!(
            ob.append(vec![(0, metric(3.0)), (0, facts())]).expect("append"),
            vec![1],
            "the facts get the next number; the sample none"
        );
        assert_eq!(ob.refused().expect("refused"), 3);
    }
    // Counted on disk with the facts' transaction.
    let ob = Outbox::open_with(&path, &options(1000)).expect("reopen");
    assert_eq!(ob.refused().expect("refused"), 3);
    assert_eq!(
        ob.append(vec![(0, metric(4.0))]).expect("append"),
        vec![2],
        "room again"
    );
}

#[test]
fn sequence_numbers_survive_reopen_after_everything_is_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    {
        let ob = Outbox::open_with(&path, &options(100)).expect("open");
        ob.append(vec![(0, metric(1.0)), (0, metric(2.0))]).expect("append");
        ob.ack_through(2).expect("ack");
    }
    let ob = Outbox::open_with(&path, &options(100)).expect("reopen");
    assert_eq!(ob.first_unacked().expect("first"), 3);
    assert_eq!(ob.append(vec![(0, metric(3.0))]).expect("append"), vec![3]);
}

#[test]
fn a_forgotten_outbox_renumbers_new_records_instead_of_dropping_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    // A previous life: 5 records, then a restart.
    {
        let ob = Outbox::open_with(&path, &options(100)).expect("open");
        ob.append((0..5).map(|i| (i, metric(i as f64))).collect())
            .expect("append");
    }
    let mut o = options(100);
    o.reconcile_chunk = 1;
    let ob = Outbox::open_with(&path, &o).expect("reopen");
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
fn an_interrupted_renumbering_is_finished_by_the_next_open_and_not_before_sending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    {
        let ob = Outbox::open_with(&path, &options(1000)).expect("open");
        ob.append((0..3).map(|i| (i, metric(i as f64))).collect())
            .expect("old records 1..=3");
    }
    let faults = Faults::new();
    let mut o = options(1000);
    o.reconcile_chunk = 2;
    let ob = open_faulty(&path, &o, &faults).expect("reopen");
    ob.append((10..17).map(|i| (i, metric(i as f64))).collect())
        .expect("new records 4..=10");
    // The storage breaks for good after a few of the renumbering's transactions.
    let calls = faults.calls();
    ob.append(vec![(0, facts())]).expect("record 11");
    let per_txn = (faults.calls() - calls) as u32;
    faults.arm(3 * per_txn, true);
    assert!(matches!(ob.reconcile(5), Err(OutboxError::Failed { .. })));
    faults.disarm();
    drop(ob);
    // Partway: some records moved, some not, an old copy or more still there.
    let job = {
        let db = redb::Database::open(&path).expect("inspect");
        let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
        reconcile::Job::load(&txn.open_table(META).expect("meta")).expect("job")
    };
    let job = job.expect("the renumbering was interrupted part way");
    assert_eq!((job.from, job.shift, job.acked), (4, 2, 5));
    let ob = Outbox::open_with(&path, &options(1000)).expect("the open finishes the job");
    let held = ob.read_after(0, 100, usize::MAX).expect("read");
    assert_eq!(
        held.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (6..=13).collect::<Vec<_>>(),
        "old copies 1..=3 dropped, 4..=11 moved to 6..=13"
    );
    let values: Vec<_> = held.iter().map(payload).collect();
    let mut expected: Vec<Payload> = (10..17).map(|v| (true, v)).collect();
    expected.push((false, u64::MAX));
    assert_eq!(values, expected, "each record once, in order");
    assert_eq!(ob.next_seq().expect("next"), 14);
    // The moved records are this file's own: if the collector has committed
    // past them (from a clone), they are renumbered again, not dropped.
    assert_eq!(ob.reconcile(7).expect("reconcile"), 0);
    assert_eq!(ob.first_unacked().expect("first"), 8);
}

#[test]
fn an_acknowledgement_finishes_a_pending_renumbering_before_deleting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open_with(&dir.path().join("o.redb"), &options(100)).expect("open");
    ob.append((0..4).map(|i| (i, metric(i as f64))).collect())
        .expect("records 1..=4");
    // A job as `start_job` leaves it for a Welcome of 10, nothing moved yet
    // (as after a failure that did not end the process).
    ob.store
        .write(|txn| {
            let mut meta = txn.open_table(META)?;
            meta.insert(NEXT_SEQ, 15)?;
            let job = reconcile::Job {
                from: 1,
                shift: 10,
                cursor: 5,
                acked: 10,
            };
            job.save(&mut meta)?;
            Ok(Outcome::Commit(()))
        })
        .expect("record a job");
    // Acknowledging 10 must not delete records 1..=4: they are new data.
    assert_eq!(ob.ack_through(10).expect("ack"), 0);
    let held = ob.read_after(0, 100, usize::MAX).expect("read");
    assert_eq!(held.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![11, 12, 13, 14]);
    assert!(!ob.job_pending().expect("pending"));
}

#[test]
fn an_ordinary_welcome_is_an_acknowledgement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open_with(&dir.path().join("o.redb"), &options(100)).expect("open");
    ob.append((0..5).map(|i| (i, metric(i as f64))).collect())
        .expect("append");
    assert_eq!(ob.reconcile(0).expect("nothing committed yet"), 0);
    assert_eq!(ob.reconcile(3).expect("ack"), 3);
    assert_eq!(ob.first_unacked().expect("first"), 4);
}

#[test]
fn a_corrupt_record_is_skipped_and_acknowledged_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    let ob = Outbox::open_with(&path, &options(100)).expect("open");
    ob.append((0..3).map(|i| (i, metric(i as f64))).collect())
        .expect("append");
    damage(&ob, 2);
    let held = ob.read_after(0, 100, usize::MAX).expect("read past the damage");
    assert_eq!(held.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(ob.ack_through(3).expect("ack"), 3);
    assert_eq!(ob.depth().expect("depth"), 0);
}

#[test]
fn a_corrupt_record_does_not_stop_a_renumbering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    let ob = Outbox::open_with(&path, &options(100)).expect("open");
    ob.append((0..3).map(|i| (i, metric(i as f64))).collect())
        .expect("records 1..=3, all new to this process");
    damage(&ob, 2);
    assert_eq!(ob.reconcile(10).expect("reconcile"), 1, "the damaged record is dropped");
    let held = ob.read_after(0, 100, usize::MAX).expect("read");
    assert_eq!(held.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![11, 13]);
}

/// Overwrites record `seq` with bytes that do not decode.
fn damage(ob: &Outbox, seq: u64) {
    ob.store
        .write(|txn| {
            txn.open_table(RECORDS)?.insert(seq, &[1u8, 0xff, 0xff, 0xff][..])?;
            Ok(Outcome::Commit(()))
        })
        .expect("damage");
}

#[test]
fn the_instance_id_survives_reopening_but_not_copying() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("o.redb");
    let id = Outbox::open_with(&path, &options(100)).expect("open").instance_id();
    assert_eq!(uuid::Uuid::parse_str(&id).map(|u| u.get_version_num()), Ok(4));
    assert_eq!(
        Outbox::open_with(&path, &options(100)).expect("reopen").instance_id(),
        id
    );
    // Renamed in place: the same file.
    let moved = dir.path().join("moved.redb");
    std::fs::rename(&path, &moved).expect("rename");
    assert_eq!(
        Outbox::open_with(&moved, &options(100)).expect("open").instance_id(),
        id
    );
    // A copy (as `cp -a` of the data directory makes) is another instance;
    // the original keeps its id.
    let copy = dir.path().join("copy.redb");
    std::fs::copy(&moved, &copy).expect("copy");
    let copied_id = Outbox::open_with(&copy, &options(100)).expect("open").instance_id();
    if cfg!(unix) {
        assert_ne!(copied_id, id);
        assert_eq!(
            Outbox::open_with(&copy, &options(100)).expect("reopen").instance_id(),
            copied_id,
            "the copy keeps its new id"
        );
    }
    assert_eq!(
        Outbox::open_with(&moved, &options(100)).expect("open").instance_id(),
        id
    );
}
