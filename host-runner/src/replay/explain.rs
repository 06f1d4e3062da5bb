//! What `replay` prints at a failure besides the step table: the decoded
//! page walk of the failing address and its neighbours, and the model's
//! view of the same pages.

use std::fmt::Write;

use oracle::model::keys::{tag, untag, SpaceAddr};
use oracle::{GuestMemory, Model};
use protocol::{Hello, Response, PAGE_SIZE};
use trace::replay::StepRecord;
use trace::Failure;

/// The address a failure is about: the first page its invariant class
/// names, else the fault address of a touch that faulted, else the
/// request's address. A failure without a class (from a trace older than
/// version 4) falls back to the first `virt 0x…` of its message.
pub fn failing_address(failure: &Failure, step: Option<&StepRecord>) -> Option<u64> {
    match failure.class.as_deref() {
        Some(c) => {
            if let Some(page) = c.first_page() {
                return Some(page);
            }
        }
        None if failure.kind == trace::FailureKind::Invariant => {
            if let Some(virt) = first_virt(&failure.message) {
                return Some(virt);
            }
        }
        None => {}
    }
    if let Some(Response::Fault { addr, .. }) = step.and_then(|s| s.answer.as_ref()) {
        return Some(*addr);
    }
    let from_request = step.and_then(|s| trace::shrink::addr_of(&s.entry.op));
    match failure.class.as_deref() {
        Some(_) => from_request,
        None => from_request.or_else(|| first_virt(&failure.message)),
    }
}

/// The model's key of the page a failure is about ([`failing_address`]):
/// a class names pages by key already, while a fault's or a request's
/// address is one of the space current at the failure.
pub fn failing_key(failure: &Failure, step: Option<&StepRecord>, model: &Model) -> Option<u64> {
    let from_class = failure.class.as_deref().and_then(|c| c.first_page());
    from_class.or_else(|| failing_address(failure, step).map(|a| model.key(a)))
}

/// The first `virt 0x…` (or `virt {addr}` as the checker prints it) in a
/// message.
pub fn first_virt(message: &str) -> Option<u64> {
    let at = message.find("virt 0x")? + "virt 0x".len();
    let hex: String = message[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&hex, 16).ok()
}

/// The page of `addr` (a model key) and its two neighbours in the same
/// address space (fewer at the ends of the address space).
pub fn neighbourhood(addr: u64) -> Vec<u64> {
    let (space, addr) = untag(addr);
    let page = addr & !(PAGE_SIZE - 1);
    let pages: Vec<u64> = [
        page.checked_sub(PAGE_SIZE),
        Some(page),
        page.checked_add(PAGE_SIZE),
    ]
    .into_iter()
    .flatten()
    .collect();
    pages.into_iter().map(|p| tag(space, p)).collect()
}

/// The decoded walks of `pages` (model keys: a user page of a space other
/// than 0 is walked from that space's PML4, when the model knows it lives),
/// guest memory as it is now.
pub fn walks(mem: &dyn GuestMemory, hello: &Hello, model: &Model, pages: &[u64]) -> String {
    pages
        .iter()
        .map(|&key| {
            let (space, addr) = untag(key);
            match model.space_root(space) {
                Some(root) => oracle::decode_walk_from(mem, hello, root, addr),
                None => format!("{}: its address space no longer lives\n", SpaceAddr(key)),
            }
        })
        .collect::<Vec<_>>()
        .join("")
}

/// The model's state of `pages`, and its counters.
pub fn model_view(model: &Model, pages: &[u64]) -> String {
    let mut out = String::from("model (after the last operation it accepted):\n");
    for &p in pages {
        let state = match model.state(p) {
            None => "Unusable".to_string(),
            Some(s) => format!("{s:?}"),
        };
        let _ = writeln!(out, "  page {}: {state}", SpaceAddr(p));
    }
    let _ = writeln!(out, "  {:?}", model.stats());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace::{Entry, FailureKind, Op};

    fn step(op: Op, answer: Response) -> StepRecord {
        StepRecord {
            index: 3,
            entry: Entry::from(op),
            answer: Some(answer),
            predicted: None,
            verdict: trace::replay::Verdict::Failed,
        }
    }

    #[test]
    fn the_address_a_failure_is_about() {
        let read = Op::Read {
            addr: 0x5000_0ff8,
            len: 16,
            privilege: protocol::Privilege::User,
        };
        let div = Failure::new(FailureKind::Divergence, "operation 3: …", Some(3));
        let fault = Response::Fault {
            addr: 0x5000_1000,
            write: false,
            reason: protocol::FaultReason::Unusable,
        };
        let s = step(read.clone(), fault);
        assert_eq!(failing_address(&div, Some(&s)), Some(0x5000_1000));
        let s = step(read, Response::Checksum { checksum: 1 });
        assert_eq!(failing_address(&div, Some(&s)), Some(0x5000_0ff8));
        let inv = Failure::new(
            FailureKind::Invariant,
            "memory check after operation 3: 1 violation(s)\ninvariant 5: state of virt 0x7000 PML4[0]@0x1000=0x2027",
            Some(3),
        );
        assert_eq!(failing_address(&inv, Some(&s)), Some(0x7000));
        assert_eq!(failing_address(&div, None), None);
        // With a class, the structure decides, not the text.
        let classified = Failure::new(FailureKind::Invariant, "virt 0x7000 in the text", Some(3))
            .with_class(trace::FailureClass::Invariant {
                numbers: vec![5],
                frames: vec![0x9000],
                pages: vec![0x4000_2000],
                slots: vec![],
            });
        assert_eq!(failing_address(&classified, Some(&s)), Some(0x4000_2000));
    }

    #[test]
    fn neighbours_stop_at_the_ends() {
        assert_eq!(neighbourhood(0x5123), vec![0x4000, 0x5000, 0x6000]);
        assert_eq!(neighbourhood(0x10), vec![0, 0x1000]);
        assert_eq!(
            neighbourhood(u64::MAX),
            vec![u64::MAX - 0x1fff, u64::MAX - 0xfff]
        );
    }
}
