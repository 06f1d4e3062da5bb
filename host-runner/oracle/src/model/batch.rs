//! A `Batch` answer cut to fit one frame (semantics, **Batch**): the guest
//! stops before element `i` when the answers to `0..i` and element `i`'s
//! largest answer exceed the budget, and answers `Error(BatchCut)` there.
//! The host checks the cut with the same two functions of
//! `protocol::budget`.

use protocol::budget::{encoded_len, max_answer_bytes, ANSWER_BUDGET};
use protocol::{Error, Request, Response};

/// How many elements the answer carries out: all of them, or the `i`
/// before a justified `Error(BatchCut)` at `i` (its last answer).
pub(super) fn cut_at(reqs: &[Request], answers: &[Response]) -> Result<usize, (String, String)> {
    let expected = || format!("Batch of {} answers (or cut by the budget)", reqs.len());
    let cut = Response::Error(Error::BatchCut);
    let Some(i) = answers.iter().position(|a| *a == cut) else {
        if answers.len() != reqs.len() {
            return Err((expected(), format!("{} answers", answers.len())));
        }
        return Ok(answers.len());
    };
    if i + 1 != answers.len() || i >= reqs.len() {
        let why = format!("BatchCut at element {i} of {} answers", answers.len());
        return Err((expected(), why));
    }
    if i == 0 {
        return Err((expected(), "the first element is never cut".into()));
    }
    let used: usize = answers[..i].iter().map(encoded_len).sum();
    let need = max_answer_bytes(&reqs[i]);
    if used + need <= ANSWER_BUDGET {
        let why = format!(
            "cut at element {i}, but {used} bytes so far and at most {need} more fit the budget of {ANSWER_BUDGET}"
        );
        return Err((expected(), why));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use protocol::{PageState, Privilege, Request, Response};

    use super::super::tests::{diverges, hello, run};
    use super::super::Model;

    fn query() -> Request {
        Request::Query {
            addr: 0,
            pages: protocol::MAX_QUERY_PAGES,
            privilege: Privilege::User,
        }
    }

    #[test]
    fn a_cut_is_accepted_only_where_the_budget_requires_it() {
        let full = Response::Pages(vec![
            PageState::Unusable;
            protocol::MAX_QUERY_PAGES as usize
        ]);
        let cut = Response::Error(protocol::Error::BatchCut);
        let mut m = Model::new(&hello());
        // Six answers of 4 KiB and a seventh query's largest answer (about
        // 109 KB with a full ring) exceed the budget; five do not.
        let batch = Request::Batch(vec![query(); 8]);
        let mut answers = vec![full.clone(); 6];
        answers.push(cut.clone());
        run(&mut m, &[(batch.clone(), Response::Batch(answers))]);
        let mut early = vec![full.clone(); 5];
        early.push(cut.clone());
        let d = diverges(&mut m, batch.clone(), Response::Batch(early));
        assert!(d.reason.contains("cut at element 5"), "{d}");
        // A cut that was not needed, a first element cut, a cut not last.
        let small = Request::Batch(vec![Request::Ping { nonce: 1 }, Request::Ping { nonce: 2 }]);
        let pong = Response::Pong { nonce: 1 };
        let d = diverges(
            &mut m,
            small.clone(),
            Response::Batch(vec![pong.clone(), cut.clone()]),
        );
        assert!(d.reason.contains("fit the budget"), "{d}");
        let d = diverges(&mut m, small.clone(), Response::Batch(vec![cut.clone()]));
        assert!(d.reason.contains("never cut"), "{d}");
        let d = diverges(&mut m, batch, Response::Batch(vec![full, cut, pong]));
        assert!(d.reason.contains("BatchCut at element 1 of 3"), "{d}");
        let _ = Request::Stats;
    }
}
