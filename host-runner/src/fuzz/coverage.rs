//! What the campaign exercised: for each operation kind, how the guest
//! answered (succeeded, or which refusal or fault). A campaign that sends
//! ten thousand `map_file`s the guest all refuses with `InvalidState` has
//! not tested `map_file`; this table says so at the end of the run.

use std::collections::BTreeMap;
use std::fmt;

use protocol::Response;
use trace::{Op, OpKind};

/// The class of an answer: its variant, the error's or fault reason's
/// name for refusals and faults, the plain answer's inside `Reclaimed`
/// (marked, since the guest reclaimed to serve it).
pub fn answer_class(r: &Response) -> String {
    fn variant(debug: String) -> String {
        let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
        debug[..end].to_string()
    }
    match r {
        Response::Error(e) => variant(format!("{e:?}")),
        Response::Fault { reason, .. } => format!("Fault {reason:?}"),
        Response::Reclaimed { response, .. } => format!("{} +reclaim", answer_class(response)),
        r => variant(format!("{r:?}")),
    }
}

/// Answers seen, per operation kind and answer class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    counts: BTreeMap<OpKind, BTreeMap<String, u64>>,
}

impl Coverage {
    /// Counts the answers to a batch (`answers[i]` answers `ops[i]`; a
    /// batch cut short counts what was answered).
    pub fn record(&mut self, ops: &[Op], answers: &[Response]) {
        for (op, r) in ops.iter().zip(answers) {
            *self
                .counts
                .entry(op.kind())
                .or_default()
                .entry(answer_class(r))
                .or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: &Coverage) {
        for (kind, classes) in &other.counts {
            let mine = self.counts.entry(*kind).or_default();
            for (class, n) in classes {
                *mine.entry(class.clone()).or_default() += n;
            }
        }
    }

    /// How many answers of `class` `kind` got.
    pub fn count(&self, kind: OpKind, class: &str) -> u64 {
        self.counts
            .get(&kind)
            .and_then(|c| c.get(class))
            .copied()
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

impl fmt::Display for Coverage {
    /// One line per operation kind: the answers, most frequent first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "answers per operation:")?;
        for (kind, classes) in &self.counts {
            let total: u64 = classes.values().sum();
            let mut by_count: Vec<(&String, &u64)> = classes.iter().collect();
            by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let list: Vec<String> = by_count
                .iter()
                .map(|(class, n)| format!("{class} {n}"))
                .collect();
            writeln!(f, "  {:<13} {total:>7}: {}", kind.name(), list.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Error, FaultReason, Privilege, Reclaim};

    #[test]
    fn answers_are_classed_by_variant_reason_and_reclaim() {
        assert_eq!(answer_class(&Response::Done), "Done");
        assert_eq!(answer_class(&Response::Kmalloc { addr: 5 }), "Kmalloc");
        assert_eq!(
            answer_class(&Response::Error(Error::InvalidState { addr: 0x1000 })),
            "InvalidState"
        );
        assert_eq!(
            answer_class(&Response::Error(Error::ZeroCount)),
            "ZeroCount"
        );
        assert_eq!(
            answer_class(&Response::Fault {
                addr: 1,
                write: true,
                reason: FaultReason::ReadOnly
            }),
            "Fault ReadOnly"
        );
        let reclaimed = Response::Reclaimed {
            events: vec![Reclaim::Dropped { addr: 0 }],
            response: Box::new(Response::Pages(vec![])),
        };
        assert_eq!(answer_class(&reclaimed), "Pages +reclaim");
    }

    #[test]
    fn counts_per_kind_merge_and_print_most_frequent_first() {
        let free = Op::Kfree {
            addr: 0,
            privilege: Privilege::Kernel,
        };
        let mut a = Coverage::default();
        a.record(
            &[free.clone(), free.clone(), Op::Stats],
            &[
                Response::Error(Error::InvalidState { addr: 0 }),
                Response::Done,
                // The third op's answer is missing: a cut batch.
            ],
        );
        let mut b = Coverage::default();
        b.record(
            std::slice::from_ref(&free),
            &[Response::Error(Error::InvalidState { addr: 8 })],
        );
        a.merge(&b);
        assert_eq!(a.count(OpKind::Kfree, "InvalidState"), 2);
        assert_eq!(a.count(OpKind::Kfree, "Done"), 1);
        assert_eq!(a.count(OpKind::Stats, "Stats"), 0);
        let text = a.to_string();
        assert!(
            text.contains("kfree               3: InvalidState 2, Done 1"),
            "{text}"
        );
    }
}
