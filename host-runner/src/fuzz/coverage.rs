//! What the campaign exercised: for each operation kind, how the guest
//! answered (succeeded, or which refusal or fault). A campaign that sends
//! ten thousand `map_file`s the guest all refuses with `invalid_state` has
//! not tested `map_file`; this table says so at the end of the run.

use std::collections::BTreeMap;
use std::fmt;

use protocol::Response;
use trace::expect::{AnswerKind, ErrorCode, FaultName};
use trace::{Op, OpKind};

/// The class of an answer, named as traces name it (`testcases/README.md`,
/// "Expected answers"): its kind, the error's or fault reason's name for
/// refusals and faults, the plain answer's inside `Reclaimed` (marked,
/// since the guest reclaimed to serve it).
pub fn answer_class(r: &Response) -> String {
    match r {
        Response::Error(e) => ErrorCode::of(e).0.name().to_string(),
        Response::Fault { reason, .. } => format!("fault {}", FaultName::of(*reason).name()),
        Response::Reclaimed { response, .. } => format!("{} +reclaim", answer_class(response)),
        Response::Stale { response, .. } => format!("{} +stale", answer_class(response)),
        r => AnswerKind::of(r).name().to_string(),
    }
}

/// Answers seen, per operation kind and answer class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    counts: BTreeMap<OpKind, BTreeMap<String, u64>>,
    /// Pages the answered operations touched ([`super::pages::pages_touched`]).
    pages: u64,
}

impl Coverage {
    /// Counts the answers to a batch (`answers[i]` answers `ops[i]`; a
    /// batch cut short counts what was answered).
    pub fn record(&mut self, ops: &[Op], answers: &[Response]) {
        for (op, r) in ops.iter().zip(answers) {
            let pages = super::pages::pages_touched(&op.to_request(), r);
            self.pages = self.pages.saturating_add(pages);
            *self
                .counts
                .entry(op.kind())
                .or_default()
                .entry(answer_class(r))
                .or_default() += 1;
        }
    }

    /// The counts by operation name and answer class.
    pub fn table(&self) -> BTreeMap<&'static str, BTreeMap<String, u64>> {
        self.counts
            .iter()
            .map(|(k, classes)| (k.name(), classes.clone()))
            .collect()
    }

    pub fn merge(&mut self, other: &Coverage) {
        self.pages = self.pages.saturating_add(other.pages);
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

    /// Pages the answered operations touched.
    pub fn pages(&self) -> u64 {
        self.pages
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
        assert_eq!(answer_class(&Response::Done), "done");
        assert_eq!(answer_class(&Response::Kmalloc { addr: 5 }), "kmalloc");
        assert_eq!(
            answer_class(&Response::Error(Error::InvalidState { addr: 0x1000 })),
            "invalid_state"
        );
        assert_eq!(
            answer_class(&Response::Error(Error::ZeroCount)),
            "zero_count"
        );
        assert_eq!(
            answer_class(&Response::Fault {
                addr: 1,
                write: true,
                reason: FaultReason::ReadOnly
            }),
            "fault read_only"
        );
        let reclaimed = Response::Reclaimed {
            events: vec![Reclaim::Dropped { addr: 0 }],
            response: Box::new(Response::Pages(vec![])),
        };
        assert_eq!(answer_class(&reclaimed), "pages +reclaim");
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
        assert_eq!(a.count(OpKind::Kfree, "invalid_state"), 2);
        assert_eq!(a.count(OpKind::Kfree, "done"), 1);
        assert_eq!(a.count(OpKind::Stats, "stats"), 0);
        let text = a.to_string();
        assert!(
            text.contains("kfree               3: invalid_state 2, done 1"),
            "{text}"
        );
    }
}
