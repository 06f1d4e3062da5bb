//! A failure's history since boot: a sequence that ran on a guest reset
//! after earlier ones is saved a second time, preceded by everything that
//! guest received since it booted (earlier sequences, each followed by the
//! campaign's `reset`). That trace replays from a fresh boot even when the
//! reset left some state behind that the sequence alone does not recreate.

use std::path::{Path, PathBuf};

use trace::{Op, Trace};

/// Where a failure's trace from boot goes: beside the failing sequence's.
pub(super) fn since_boot_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}-since-boot.jsonl"))
}

/// The failing sequence's trace `t` preceded by `history`, what the guest
/// received since boot (`None` when it is empty: `t` is that already).
pub(super) fn with_history(history: &[Op], t: &Trace) -> Option<Trace> {
    if history.is_empty() {
        return None;
    }
    let mut header = t.header.clone();
    if let Some(f) = header.failure.as_mut() {
        f.op_index = f.op_index.map(|i| i + history.len());
    }
    let resets = history
        .iter()
        .filter(|op| matches!(op, Op::Reset { .. }))
        .count();
    header.note = Some(format!(
        "what the guest received since boot: {resets} earlier sequence(s), each followed by \
         the campaign's reset, then the failing sequence (seed {})",
        t.header.seed.map_or("?".into(), |s| format!("{s:#x}"))
    ));
    let ops = history
        .iter()
        .cloned()
        .chain(t.entries.iter().map(|e| e.op.clone()));
    Some(Trace::from_ops(header, ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Privilege;
    use trace::{Failure, FailureKind, TraceHeader};

    #[test]
    fn the_history_comes_first_and_the_failure_index_moves_with_it() {
        let reset = Op::Reset {
            privilege: Privilege::Kernel,
        };
        let history = vec![
            Op::Stats,
            Op::Hello,
            reset.clone(),
            Op::Ping { nonce: 1 },
            reset,
        ];
        let failing = Trace::from_ops(
            TraceHeader {
                seed: Some(0x2a),
                failure: Some(Failure::new(FailureKind::Divergence, "x", Some(1))),
                ..TraceHeader::default()
            },
            [Op::Stats, Op::Ping { nonce: 9 }],
        );
        let t = with_history(&history, &failing).expect("a history");
        let ops: Vec<Op> = t.entries.iter().map(|e| e.op.clone()).collect();
        assert_eq!(ops[..5], history[..]);
        assert_eq!(ops[5..], [Op::Stats, Op::Ping { nonce: 9 }]);
        let f = t.header.failure.expect("kept");
        assert_eq!(f.op_index, Some(6), "still the ping");
        assert_eq!(t.header.seed, Some(0x2a));
        let note = t.header.note.expect("a note");
        assert!(
            note.contains("2 earlier sequence(s)") && note.contains("0x2a"),
            "{note}"
        );
        assert!(
            with_history(&[], &failing).is_none(),
            "a fresh boot has no history"
        );
        assert_eq!(
            since_boot_path(Path::new("out/divergence-7-ab.jsonl")),
            Path::new("out/divergence-7-ab-since-boot.jsonl")
        );
    }
}
