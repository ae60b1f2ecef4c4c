//! The sweep's one journal, shared by its threads. A record is appended
//! under a short lock of its own; what follows a record or a finished check
//! (the sink's folds and report rows, the tally, the verdicts that
//! dependants wait for) goes through each thread's backlog, applied
//! whenever that side's lock is free, so that a sweep thread never sleeps
//! while another renders its report rows.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Mutex, MutexGuard, TryLockError};

use super::run::{CheckReport, CheckVerdict, SweepSink};
use super::tally::SweepTally;
use crate::core::record::Event;
use crate::engine::Emit;
use crate::evidence::{BundleWriter, EventPreparer, Redacted};

/// Entries a thread holds back before it waits for the lock: about a
/// hundred checks' records, so a backlog's memory stays small (each entry
/// is one event or one report).
const BACKLOG_MAX: usize = 256;

/// The journal shared by every check of the sweep.
pub(super) struct SharedJournal<'a> {
    bundle: Mutex<&'a mut BundleWriter>,
    after: Mutex<After<'a>>,
    /// Serializes and redacts each event before the lock is taken: the
    /// sweep's threads would otherwise wait for each other's (measured:
    /// 21,000 futex calls in a 100,000-check sweep).
    preparer: EventPreparer,
}

/// What follows the journal: the sink, and what the sweep keeps of each
/// finished check.
struct After<'a> {
    sink: &'a mut dyn SweepSink,
    /// Ids of the checks that others depend on: only their verdicts are kept.
    depended: HashSet<String>,
    verdicts: HashMap<String, CheckVerdict>,
    tally: SweepTally,
}

/// One entry of a thread's backlog, in the order the thread saw them: a
/// check's records always come before its report.
enum Later {
    Record(u64, Redacted<Event>),
    Check(CheckReport),
}

impl<'a> SharedJournal<'a> {
    /// `depended`: the ids of the checks others depend on.
    pub fn new(
        bundle: &'a mut BundleWriter,
        sink: &'a mut dyn SweepSink,
        depended: HashSet<String>,
    ) -> Self {
        SharedJournal {
            preparer: bundle.preparer(),
            bundle: Mutex::new(bundle),
            after: Mutex::new(After {
                sink,
                depended,
                verdicts: HashMap::new(),
                tally: SweepTally::default(),
            }),
        }
    }

    /// `text` as the journal would hold it.
    pub fn redact(&self, text: &str) -> String {
        self.preparer.redact(text).into_inner()
    }

    /// Appends `event` and has the sink observe it at once (waiting for
    /// its lock): for the records written outside a sweep thread's checks.
    pub fn emit(&self, event: Event) -> io::Result<u64> {
        let (seq, event) = self.append(event)?;
        self.after().apply(Later::Record(seq, event))?;
        Ok(seq)
    }

    /// The verdicts kept so far (of the checks others depend on).
    pub fn verdicts(&self) -> HashMap<String, CheckVerdict> {
        self.after().verdicts.clone()
    }

    /// What the sweep kept of its checks, once every thread has flushed.
    pub fn into_tally(self) -> SweepTally {
        let after = self.after.into_inner();
        after.unwrap_or_else(|p| p.into_inner()).tally
    }

    fn append(&self, event: Event) -> io::Result<(u64, Redacted<Event>)> {
        let prepared = self.preparer.prepare(event)?;
        let mut bundle = self.bundle.lock().unwrap_or_else(|p| p.into_inner());
        bundle.record_prepared(prepared)
    }

    fn after(&self) -> MutexGuard<'_, After<'a>> {
        self.after.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sink's side if no other thread holds it.
    fn after_if_free(&self) -> Option<MutexGuard<'_, After<'a>>> {
        match self.after.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

impl After<'_> {
    fn apply(&mut self, later: Later) -> io::Result<()> {
        match later {
            Later::Record(seq, event) => {
                self.sink.observe(seq, &event);
                Ok(())
            }
            Later::Check(report) => {
                if self.depended.contains(report.id.as_str()) {
                    self.verdicts.insert(report.id.clone(), report.verdict);
                }
                let listed = self.tally.add(&report);
                self.sink.check_done(&report, listed)
            }
        }
    }
}

/// One sweep thread's side of the journal: its records are appended at
/// once, in order (a failed attempt's seq goes into the escalation); what
/// follows them waits in the thread's backlog until the sink's lock is
/// free, or until the backlog is full. [`ThreadJournal::flush`] once the
/// thread is done.
pub(super) struct ThreadJournal<'s, 'a> {
    shared: &'s SharedJournal<'a>,
    backlog: RefCell<Vec<Later>>,
}

impl<'s, 'a> ThreadJournal<'s, 'a> {
    pub fn new(shared: &'s SharedJournal<'a>) -> Self {
        ThreadJournal {
            shared,
            backlog: RefCell::new(Vec::new()),
        }
    }

    pub fn shared(&self) -> &'s SharedJournal<'a> {
        self.shared
    }

    /// Appends `event`; the sink observes it later.
    pub fn emit(&self, event: Event) -> io::Result<u64> {
        let (seq, event) = self.shared.append(event)?;
        self.later(Later::Record(seq, event))?;
        Ok(seq)
    }

    /// A check finished, all its records emitted.
    pub fn check_done(&self, report: CheckReport) -> io::Result<()> {
        self.later(Later::Check(report))
    }

    /// Applies the whole backlog, waiting for the lock if need be.
    pub fn flush(&self) -> io::Result<()> {
        let mut backlog = self.backlog.borrow_mut();
        if backlog.is_empty() {
            return Ok(());
        }
        apply_all(&mut self.shared.after(), &mut backlog)
    }

    fn later(&self, later: Later) -> io::Result<()> {
        let mut backlog = self.backlog.borrow_mut();
        backlog.push(later);
        let after = if backlog.len() >= BACKLOG_MAX {
            Some(self.shared.after())
        } else {
            self.shared.after_if_free()
        };
        match after {
            Some(mut after) => apply_all(&mut after, &mut backlog),
            None => Ok(()),
        }
    }
}

/// Applies `backlog` in order and empties it; stops at the first error,
/// which ends the sweep (the entries after it are dropped).
fn apply_all(after: &mut After<'_>, backlog: &mut Vec<Later>) -> io::Result<()> {
    for later in backlog.drain(..) {
        after.apply(later)?;
    }
    Ok(())
}

/// [`Emit`] for a sweep thread's checks.
pub(super) struct Emitter<'t, 's, 'a>(pub &'t ThreadJournal<'s, 'a>);

impl Emit for Emitter<'_, '_, '_> {
    fn emit(&mut self, event: Event) -> io::Result<u64> {
        self.0.emit(event)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::core::record::{BundleKind, Header, SourceRef, StepVerdict};
    use crate::engine::RunObserver;
    use crate::evidence::{Redactor, SyncPolicy};

    /// What the sink was handed, in order.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Record(u64, String),
        Check(String, bool),
    }

    #[derive(Default)]
    struct Recorder {
        seen: Vec<Seen>,
        /// `check_done` fails for this id.
        fail_on: Option<String>,
    }

    impl RunObserver for Recorder {
        fn observe(&mut self, seq: u64, event: &Redacted<Event>) {
            let step = event.step().unwrap_or_default().to_string();
            self.seen.push(Seen::Record(seq, step));
        }
    }

    impl SweepSink for Recorder {
        fn check_done(&mut self, check: &CheckReport, listed: bool) -> io::Result<()> {
            if self.fail_on.as_deref() == Some(check.id.as_str()) {
                return Err(io::Error::other("the disk is full"));
            }
            self.seen.push(Seen::Check(check.id.clone(), listed));
            Ok(())
        }
    }

    fn bundle(dir: &std::path::Path) -> BundleWriter {
        let redactor = Arc::new(Redactor::new(&[]));
        let source = SourceRef {
            name: "journal".into(),
            path: "checks".into(),
            copy: None,
            sha256: "0".repeat(64),
        };
        let header = Header::new(BundleKind::Sweep, source, Vec::new(), redactor.classes());
        BundleWriter::create(dir, header, redactor, SyncPolicy::Batched(64)).unwrap()
    }

    fn ended(id: &str) -> Event {
        Event::StepEnd {
            step: id.to_string(),
            verdict: StepVerdict::Escalated,
            attempts: 3,
            duration_ms: 1.0,
            reason: None,
            earlier: None,
        }
    }

    fn report(id: &str) -> CheckReport {
        CheckReport {
            id: id.to_string(),
            file: 0,
            kind: "http",
            tags: Vec::new(),
            verdict: CheckVerdict::Fail,
            attempts: 3,
            attempts_total: 3,
            latency: None,
            reason: None,
            baseline_p95_ms: None,
            samples: None,
        }
    }

    /// Two threads' checks, each a record then a report: every record is
    /// seen before its check's report, each thread's in its own order.
    #[test]
    fn each_threads_records_and_reports_reach_the_sink_in_its_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut bundle = bundle(dir.path());
        let mut sink = Recorder::default();
        let depended = HashSet::from(["a-7".to_string()]);
        let journal = SharedJournal::new(&mut bundle, &mut sink, depended);
        std::thread::scope(|scope| {
            for thread in ["a", "b"] {
                let journal = &journal;
                scope.spawn(move || {
                    let mine = ThreadJournal::new(journal);
                    for i in 0..600 {
                        let id = format!("{thread}-{i}");
                        mine.emit(ended(&id)).unwrap();
                        mine.check_done(report(&id)).unwrap();
                    }
                    mine.flush().unwrap();
                });
            }
        });
        let verdicts = journal.verdicts();
        assert_eq!(journal.into_tally().total(), 1200);
        assert_eq!(
            verdicts,
            HashMap::from([("a-7".to_string(), CheckVerdict::Fail)])
        );

        assert_eq!(sink.seen.len(), 2400);
        let mut seqs = HashSet::new();
        for thread in ["a", "b"] {
            let mine: Vec<&Seen> = sink
                .seen
                .iter()
                .filter(|seen| match seen {
                    Seen::Record(_, id) | Seen::Check(id, _) => id.starts_with(thread),
                })
                .collect();
            for (i, pair) in mine.chunks(2).enumerate() {
                let id = format!("{thread}-{i}");
                let Seen::Record(seq, step) = pair[0] else {
                    panic!("{id}: {pair:?}")
                };
                assert_eq!(step, &id);
                assert!(seqs.insert(*seq), "seq {seq} twice");
                // The first LISTED_MAX failures are listed.
                assert!(matches!(pair[1], Seen::Check(c, _) if *c == id), "{pair:?}");
            }
        }
    }

    /// While another thread holds the sink, a thread goes on and keeps what
    /// follows its records; once its backlog is full it waits, and then
    /// hands over the whole backlog in order.
    #[test]
    fn a_thread_holds_back_while_the_sink_is_busy_and_waits_once_its_backlog_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut bundle = bundle(dir.path());
        let mut sink = Recorder::default();
        let journal = SharedJournal::new(&mut bundle, &mut sink, HashSet::new());
        let held_back = AtomicBool::new(false);
        let finished = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let mut busy = journal.after();
            let worker = scope.spawn(|| {
                let mine = ThreadJournal::new(&journal);
                for i in 0..BACKLOG_MAX - 1 {
                    mine.check_done(report(&format!("c-{i}"))).unwrap();
                }
                // One short of full: nothing waited so far.
                assert_eq!(mine.backlog.borrow().len(), BACKLOG_MAX - 1);
                held_back.store(true, Ordering::SeqCst);
                mine.check_done(report("last")).unwrap();
                finished.store(true, Ordering::SeqCst);
                mine.flush().unwrap();
            });
            let until = std::time::Instant::now() + Duration::from_secs(20);
            while !held_back.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(
                held_back.load(Ordering::SeqCst),
                "the thread waited for the sink"
            );
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                !finished.load(Ordering::SeqCst),
                "a full backlog did not wait"
            );
            assert!(busy.sink.check_done(&report("main"), false).is_ok());
            drop(busy);
            worker.join().unwrap();
        });
        drop(journal);
        let ids: Vec<&str> = sink
            .seen
            .iter()
            .map(|seen| match seen {
                Seen::Check(id, _) => id.as_str(),
                Seen::Record(..) => "a record",
            })
            .collect();
        let mut expected = vec!["main".to_string()];
        expected.extend((0..BACKLOG_MAX - 1).map(|i| format!("c-{i}")));
        expected.push("last".into());
        assert_eq!(ids, expected);
    }

    /// A sink that fails ends the thread that handed it the failing entry.
    #[test]
    fn a_sink_error_is_returned_to_the_thread_that_met_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut bundle = bundle(dir.path());
        let mut sink = Recorder {
            fail_on: Some("c-1".into()),
            ..Recorder::default()
        };
        let journal = SharedJournal::new(&mut bundle, &mut sink, HashSet::new());
        let mine = ThreadJournal::new(&journal);
        mine.check_done(report("c-0")).unwrap();
        let error = mine.check_done(report("c-1")).unwrap_err();
        assert_eq!(error.to_string(), "the disk is full");
        mine.check_done(report("c-2")).unwrap();
        drop(mine);
        drop(journal);
        let ids: Vec<&Seen> = sink.seen.iter().collect();
        assert_eq!(
            ids,
            [
                &Seen::Check("c-0".into(), true),
                &Seen::Check("c-2".into(), true)
            ]
        );
    }
}
