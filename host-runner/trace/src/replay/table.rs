//! The step table a run records and the runner prints: a row per
//! operation (its request, the guest's answer, what was expected or
//! predicted) and the outcome last.

use protocol::Response;

use crate::op::Op;

use crate::executor::Outcome;
use crate::expect::Expect;
use crate::format::{write_entry, Entry};

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answered as expected (or nothing was expected).
    Ok,
    /// The step failed (see the report's outcome).
    Failed,
}

/// One row of the step table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub index: usize,
    pub entry: Entry,
    /// The guest's answer (`None` when the guest gave none).
    pub answer: Option<Response>,
    /// The model's answer, when a judge gave one.
    pub predicted: Option<Response>,
    pub verdict: Verdict,
}

/// Everything a replay saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub steps: Vec<StepRecord>,
    /// `Failed` at the first failing step; replay stops there.
    pub outcome: Outcome,
}

/// An answer in `expect` syntax; a `Reclaimed` answer is its plain answer
/// (what `expect` matches) and the number of reclaim events.
pub fn answer_text(r: Option<&Response>) -> String {
    match r {
        None => "-".to_string(),
        Some(Response::Reclaimed { events, response }) => {
            format!(
                "{} +{} reclaimed",
                Expect::exact(response).to_json(),
                events.len()
            )
        }
        Some(r) => Expect::exact(r).to_json(),
    }
}

/// The address space current at each step of a run, as the steps' answers
/// say: space 0 at the start, the space of every `switch_space` the guest
/// answered `done`, space 0 again after a `reset` it answered `done`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurrentSpace(pub u16);

impl CurrentSpace {
    /// The space `s` ran in, and the one after it.
    pub fn step(&mut self, s: &StepRecord) -> u16 {
        let during = self.0;
        // A stale probe's or a reclaim's wrapper around `Done` is done too.
        let mut answer = s.answer.clone();
        while let Some(Response::Stale { response, .. }) = answer {
            answer = Some(*response);
        }
        let done = answer.is_some_and(|a| a.split_reclaimed().1 == Response::Done);
        match s.entry.op {
            Op::SwitchSpace { space, .. } if done => self.0 = space,
            Op::Reset { .. } if done => self.0 = 0,
            _ => {}
        }
        during
    }
}

/// One row: index, verdict mark, request (as its trace line, without
/// `expect`; a reference's address as it resolved), the guest's answer,
/// and what was expected or predicted.
pub fn format_step(s: &StepRecord) -> String {
    format_step_in(s, 0)
}

/// [`format_step`] of a step that ran in address space `space`
/// ([`CurrentSpace`]): a row in a space other than 0 says so after its
/// index (`12 [space 2] {"op":"write",…}`), since its user addresses are
/// that space's.
pub fn format_step_in(s: &StepRecord, space: u16) -> String {
    let mark = match s.verdict {
        Verdict::Ok => " ",
        Verdict::Failed => "✗",
    };
    let request = write_entry(&Entry {
        expect: None,
        ..s.entry.clone()
    });
    let mut want = Vec::new();
    if let Some(x) = &s.entry.expect {
        want.push(format!("expect {}", x.to_json()));
    }
    if let Some(p) = &s.predicted {
        want.push(format!("model {}", answer_text(Some(p))));
    }
    let want = if want.is_empty() {
        String::new()
    } else {
        format!("  ({})", want.join(", "))
    };
    let space = match space {
        0 => String::new(),
        n => format!("[space {n}] "),
    };
    format!(
        "{:>5} {mark} {space}{request}\n        → {}{want}",
        s.index,
        answer_text(s.answer.as_ref())
    )
}

/// The step table of a replay, with the outcome last.
pub fn format_table(report: &ReplayReport) -> String {
    let mut out = String::new();
    let mut current = CurrentSpace::default();
    for s in &report.steps {
        out.push_str(&format_step_in(s, current.step(s)));
        out.push('\n');
    }
    match &report.outcome {
        Outcome::Passed => out.push_str(&format!("passed: {} ops\n", report.steps.len())),
        Outcome::Failed(f) => out.push_str(&format!("FAILED: {f}\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Error, Privilege};

    fn step(index: usize, op: Op, answer: Response) -> StepRecord {
        StepRecord {
            index,
            entry: Entry::from(op),
            answer: Some(answer),
            predicted: None,
            verdict: Verdict::Ok,
        }
    }

    #[test]
    fn rows_name_the_space_they_ran_in() {
        let k = Privilege::Kernel;
        let write = Op::Write {
            addr: 0x1000,
            len: 1,
            seed: 0,
            privilege: Privilege::User,
        };
        let steps = vec![
            step(
                0,
                Op::SwitchSpace {
                    space: 2,
                    privilege: k,
                },
                Response::Done,
            ),
            step(1, write.clone(), Response::Done),
            step(
                2,
                Op::SwitchSpace {
                    space: 5,
                    privilege: k,
                },
                Response::Error(Error::NoSuchSpace),
            ),
            step(3, write.clone(), Response::Done),
            step(4, Op::Reset { privilege: k }, Response::Done),
            step(5, write, Response::Done),
        ];
        let table = format_table(&ReplayReport {
            steps,
            outcome: Outcome::Passed,
        });
        // The rows (not their answer lines), each tagged with the space it
        // ran in: the refused switch and the reset still ran in space 2.
        let tagged: Vec<bool> = table
            .lines()
            .filter(|l| l.trim_start().starts_with(char::is_numeric))
            .map(|l| l.contains("[space 2]"))
            .collect();
        assert_eq!(tagged, [false, true, true, true, true, false], "{table}");
        assert!(!table.contains("[space 5]"), "{table}");
    }
}
