//! The step table: each request, the guest's answer and the model's, the
//! failing step highlighted; the steps long before it folded away.

use maud::{html, Markup};
use trace::replay::{answer_text, StepRecord, Verdict};
use trace::Entry;

/// Steps shown before the failing one; the earlier ones are folded.
pub const SHOWN_BEFORE: usize = 12;

fn row(s: &StepRecord, failing: Option<usize>) -> Markup {
    let failed = s.verdict == Verdict::Failed || failing == Some(s.index);
    let request = trace::format::write_entry(&Entry::from(s.entry.op.clone()));
    let model = match (&s.predicted, &s.entry.expect) {
        (Some(p), _) => answer_text(Some(p)),
        (None, Some(x)) => format!("expect {}", x.to_json()),
        (None, None) => "-".into(),
    };
    html! {
        tr id=(format!("step-{}", s.index)) class=[failed.then_some("failing")] {
            td class="num" { (s.index) @if failed { " ✗" } }
            td { code { (request) } }
            td { code { (answer_text(s.answer.as_ref())) } }
            td { code { (model) } }
        }
    }
}

fn table(steps: &[StepRecord], failing: Option<usize>) -> Markup {
    html! {
        table class="steps" {
            thead { tr { th { "#" } th { "request" } th { "guest answer" } th { "model answer" } } }
            tbody { @for s in steps { (row(s, failing)) } }
        }
    }
}

/// The table: with more than [`SHOWN_BEFORE`] steps before the failing
/// (or last) one, those earlier steps in a closed `<details>`. The failing
/// step is the one whose answer failed, or `failing` (the failure's
/// operation: a memory check after it failed).
pub fn markup(steps: &[StepRecord], failing: Option<usize>) -> Markup {
    let focus = steps
        .iter()
        .position(|s| s.verdict == Verdict::Failed || failing == Some(s.index))
        .unwrap_or(steps.len().saturating_sub(1));
    let split = focus.saturating_sub(SHOWN_BEFORE);
    let (early, late) = steps.split_at(split);
    html! {
        @if steps.is_empty() {
            p { "No operation ran." }
        }
        @if !early.is_empty() {
            details class="early" {
                summary { (early.len()) " earlier step(s)" }
                (table(early, failing))
            }
        }
        @if !late.is_empty() { (table(late, failing)) }
    }
}
