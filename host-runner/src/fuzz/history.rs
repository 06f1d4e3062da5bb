//! What a job's guest received since it booted: each sequence's
//! operations in the batches they were sent in, and after each the
//! campaign's reset (`reset` and `stats`, one batch, again while a reset
//! gave back many heap pages). It is written ahead
//! to the job's in-flight log as it is sent (appended, never rewritten),
//! so a killed runner leaves a trace that replays from a fresh boot; and a
//! sequence that fails after a reset is saved a second time, preceded by
//! this history: that trace replays from a fresh boot even when the reset
//! left some state behind that the sequence alone does not recreate.

use std::io;
use std::path::{Path, PathBuf};

use protocol::Request;
use trace::{Op, Trace, TraceHeader, TraceWriter};

/// Where a failure's trace from boot goes: beside the failing sequence's.
pub(super) fn since_boot_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}-since-boot.jsonl"))
}

/// What the guest received since boot (before the running sequence), and
/// the log it is written to.
#[derive(Debug)]
pub(super) struct SinceBoot {
    /// The operations (their references included) and batches so far.
    done: Trace,
    /// Sequences in `done`.
    sequences: usize,
    log: TraceWriter,
}

impl SinceBoot {
    /// A fresh guest's: the log at `path` started anew with `header`.
    pub fn start(path: &Path, header: &TraceHeader) -> io::Result<SinceBoot> {
        Ok(SinceBoot {
            done: Trace::default(),
            sequences: 0,
            log: TraceWriter::create(path, header, false)?,
        })
    }

    /// Where the last batch so far starts (the last round of a reset, after
    /// one): none before the first.
    pub fn last_batch_start(&self) -> Option<usize> {
        let last = *self.done.header.batches.last()? as usize;
        self.done.len().checked_sub(last)
    }

    /// The in-flight log (the running sequence appends to it).
    pub fn log(&mut self) -> &mut TraceWriter {
        &mut self.log
    }

    /// A sequence ran: its trace's operations (already in the log), in its
    /// batches.
    pub fn sequence(&mut self, run: &Trace) {
        self.sequences += 1;
        self.done.append(run);
        self.done
            .header
            .batches
            .extend(run.batch_ranges().iter().map(|r| r.len() as u32));
    }

    /// A batch of the campaign's reset is about to be sent (`Reset` and
    /// `Stats`, again while the `Reset` gave back many heap pages:
    /// [`crate::judge::JudgedVm::reset_logged`]): into the history and the
    /// log, as the batch it goes in; `again` for the rounds after the
    /// first.
    pub fn reset_batch(&mut self, reqs: &[Request], again: bool) -> io::Result<()> {
        let ops: Vec<Op> = reqs.iter().filter_map(Op::from_request).collect();
        if ops.len() != reqs.len() {
            return Err(io::Error::other(format!(
                "a request of the campaign's reset has no trace form: {reqs:?}"
            )));
        }
        self.log.comment(if again {
            "the campaign's reset again: the last gave back many heap pages"
        } else {
            "the campaign's reset"
        })?;
        for op in &ops {
            self.log.append(&op.clone().into())?;
        }
        self.log.flush_batch()?;
        self.done.header.batches.push(ops.len() as u32);
        self.done.entries.extend(ops.into_iter().map(Into::into));
        Ok(())
    }

    /// The whole history as a trace with `header` (and its batches).
    pub fn trace(&self, header: TraceHeader) -> Trace {
        let batches = self.done.header.batches.clone();
        Trace {
            header: TraceHeader { batches, ..header },
            entries: self.done.entries.clone(),
        }
    }

    /// `failing` (a sequence's trace) preceded by the history, its failure's
    /// index moved with it; `None` on a fresh boot (`failing` is that
    /// already).
    pub fn with(&self, failing: &Trace) -> Option<Trace> {
        if self.done.is_empty() {
            return None;
        }
        let mut header = failing.header.clone();
        if let Some(f) = header.failure.as_mut() {
            f.op_index = f.op_index.map(|i| i + self.done.len());
        }
        header.note = Some(format!(
            "what the guest received since boot: {} earlier sequence(s), each followed by \
             the campaign's reset, then the failing sequence (seed {})",
            self.sequences,
            failing
                .header
                .seed
                .map_or("?".into(), |s| format!("{s:#x}"))
        ));
        let mut t = self.trace(TraceHeader::default());
        t.header.batches.clear();
        let mut batches = self.done.header.batches.clone();
        batches.extend(failing.batch_ranges().iter().map(|r| r.len() as u32));
        t.append(failing);
        header.batches = batches;
        t.header = header;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace::{Failure, FailureKind};

    #[test]
    fn the_history_comes_first_in_its_batches_and_the_log_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("running.jsonl");
        let mut h = SinceBoot::start(&log, &TraceHeader::default()).unwrap();
        let fresh = Trace::from_ops(TraceHeader::default(), [Op::Stats]);
        assert!(h.with(&fresh).is_none(), "a fresh boot has no history");
        assert_eq!(h.last_batch_start(), None);
        // A sequence of three ops in two batches, as run_sequence logs it.
        let seq = [Op::Stats, Op::Hello, Op::Ping { nonce: 1 }];
        for op in &seq {
            h.log().append(&op.clone().into()).unwrap();
        }
        let mut run = Trace::from_ops(TraceHeader::default(), seq.clone());
        run.header.batches = vec![2, 1];
        h.sequence(&run);
        // The campaign's reset, in two rounds (the first gave back many
        // heap pages).
        let k = protocol::Privilege::Kernel;
        let reset = [Request::Reset { privilege: k }, Request::Stats];
        h.reset_batch(&reset, false).unwrap();
        assert_eq!(h.last_batch_start(), Some(3));
        h.reset_batch(&reset, true).unwrap();
        assert_eq!(h.trace(TraceHeader::default()).len(), 7);
        assert_eq!(h.last_batch_start(), Some(5), "the reset's last round");
        let mut failing = Trace::from_ops(
            TraceHeader {
                seed: Some(0x2a),
                failure: Some(Failure::new(FailureKind::Divergence, "x", Some(1))),
                ..TraceHeader::default()
            },
            [Op::Stats, Op::Ping { nonce: 9 }],
        );
        failing.header.batches = vec![2];
        let t = h.with(&failing).expect("a history");
        let ops: Vec<Op> = t.entries.iter().map(|e| e.op.clone()).collect();
        assert_eq!(ops[..3], seq[..]);
        assert!(matches!(ops[3], Op::Reset { .. }) && ops[4] == Op::Stats);
        assert!(matches!(ops[5], Op::Reset { .. }) && ops[6] == Op::Stats);
        assert_eq!(ops[7..], [Op::Stats, Op::Ping { nonce: 9 }]);
        assert_eq!(t.header.batches, vec![2, 1, 2, 2, 2]);
        assert_eq!(
            t.header.failure.expect("kept").op_index,
            Some(8),
            "still the ping"
        );
        let note = t.header.note.expect("a note");
        assert!(
            note.contains("1 earlier sequence(s)") && note.contains("0x2a"),
            "{note}"
        );
        // The log alone replays the same history from a fresh boot.
        drop(h);
        let logged = trace::parse_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
        let logged: Vec<Op> = logged.entries.iter().map(|e| e.op.clone()).collect();
        assert_eq!(logged[..], ops[..7]);
        assert_eq!(
            since_boot_path(Path::new("out/divergence-7-ab.jsonl")),
            Path::new("out/divergence-7-ab-since-boot.jsonl")
        );
    }
}
