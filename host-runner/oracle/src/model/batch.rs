//! A `Batch` answer cut to fit one frame and the kernel's reserve
//! (semantics, **Batch**): the guest stops before element `i` when the
//! answers to `0..i` and element `i`'s largest answer exceed either budget
//! (encoded bytes, kernel memory), and answers `Error(BatchCut)` there. The
//! host checks the cut with the same functions of `protocol::budget`.

use protocol::budget::Used;
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
    let used = Used::of(&answers[..i]);
    if used.fits(&reqs[i]) {
        let why = format!(
            "cut at element {i}, but its largest answer fits after the {} bytes and {} bytes of kernel memory so far",
            used.bytes, used.memory
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
        // Encoded, six answers of 4 KiB and a seventh query's largest
        // answer (about 109 KB with a full ring) exceed the frame; in
        // kernel memory (96 KiB each) three and a fourth's largest exceed
        // the memory budget already; two do not.
        let batch = Request::Batch(vec![query(); 8]);
        let mut answers = vec![full.clone(); 3];
        answers.push(cut.clone());
        run(&mut m, &[(batch.clone(), Response::Batch(answers))]);
        let mut early = vec![full.clone(); 2];
        early.push(cut.clone());
        let d = diverges(&mut m, batch.clone(), Response::Batch(early));
        assert!(d.reason.contains("cut at element 2"), "{d}");
        // Pings are cut by memory alone, far below the frame's budget.
        let pings: Vec<Request> = (0..2000).map(|n| Request::Ping { nonce: n }).collect();
        let k = (0..pings.len())
            .find(|&k| {
                let done: Vec<Response> =
                    (0..k as u64).map(|n| Response::Pong { nonce: n }).collect();
                !protocol::budget::Used::of(&done).fits(&pings[k])
            })
            .expect("2000 pings pass the memory budget");
        let mut got: Vec<Response> = (0..k as u64).map(|n| Response::Pong { nonce: n }).collect();
        got.push(cut.clone());
        run(&mut m, &[(Request::Batch(pings), Response::Batch(got))]);
        // A cut that was not needed, a first element cut, a cut not last.
        let small = Request::Batch(vec![Request::Ping { nonce: 1 }, Request::Ping { nonce: 2 }]);
        let pong = Response::Pong { nonce: 1 };
        let d = diverges(
            &mut m,
            small.clone(),
            Response::Batch(vec![pong.clone(), cut.clone()]),
        );
        assert!(d.reason.contains("fits after"), "{d}");
        let d = diverges(&mut m, small.clone(), Response::Batch(vec![cut.clone()]));
        assert!(d.reason.contains("never cut"), "{d}");
        let d = diverges(&mut m, batch, Response::Batch(vec![full, cut, pong]));
        assert!(d.reason.contains("BatchCut at element 1 of 3"), "{d}");
        let _ = Request::Stats;
    }
}
