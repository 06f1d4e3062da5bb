//! `Batch`: many requests in one frame, and the answer the guest cut
//! short when it met its budget (`protocol::budget`), sent again from the
//! cut.

use std::time::Duration;

use protocol::{Request, Response};

use super::Vm;
use crate::rpc::RpcError;

impl Vm {
    /// Sends requests as one `Batch` and returns one answer each. The
    /// timeout grows with the batch (1 ms a request over the default).
    pub async fn batch(&mut self, requests: Vec<Request>) -> Result<Vec<Response>, RpcError> {
        let mut answers = Vec::with_capacity(requests.len());
        let mut rest = requests;
        while !rest.is_empty() {
            let n = rest.len();
            let timeout = self.rpc.timeout() + Duration::from_millis(n as u64);
            let got = match self
                .call_timeout(Request::Batch(rest.clone()), timeout)
                .await?
            {
                Response::Batch(got) => got,
                other => {
                    return Err(RpcError::UnexpectedResponse {
                        request: format!("Batch of {n}"),
                        response: Box::new(other),
                    })
                }
            };
            match batch_cut(&rest, &got)? {
                None => {
                    answers.extend(got);
                    break;
                }
                Some(cut) => {
                    // The guest answered `cut` elements and executed no
                    // more: send the rest again.
                    answers.extend(got.into_iter().take(cut));
                    rest.drain(..cut);
                }
            }
        }
        Ok(answers)
    }
}

/// Where the guest cut a batch answer, if it did; an error when the answer
/// is neither complete nor a cut the budget rule allows
/// (`protocol::budget`, and `semantics`, **Batch**).
fn batch_cut(sent: &[Request], got: &[Response]) -> Result<Option<usize>, RpcError> {
    use protocol::budget::Used;
    let bad = |why: String| RpcError::UnexpectedResponse {
        request: format!("Batch of {} ({why})", sent.len()),
        response: Box::new(Response::Batch(got.to_vec())),
    };
    if got.len() == sent.len() && got.last() != Some(&Response::Error(protocol::Error::BatchCut)) {
        return Ok(None);
    }
    let cut = got.len().saturating_sub(1);
    if got.last() != Some(&Response::Error(protocol::Error::BatchCut))
        || cut == 0
        || cut >= sent.len()
    {
        return Err(bad(format!("{} answers", got.len())));
    }
    let used = Used::of(&got[..cut]);
    if used.fits(&sent[cut]) {
        return Err(bad(format!(
            "cut at element {cut} with {} answer bytes and {} bytes of kernel memory used, within both budgets",
            used.bytes, used.memory
        )));
    }
    Ok(Some(cut))
}

#[cfg(test)]
mod tests {
    use super::batch_cut;
    use protocol::{Error as E, Privilege, Request, Response};

    fn query(pages: u64) -> Request {
        Request::Query {
            addr: 0,
            pages,
            privilege: Privilege::User,
        }
    }

    #[test]
    fn a_complete_answer_is_not_a_cut() {
        let sent = vec![Request::Ping { nonce: 1 }];
        assert_eq!(
            batch_cut(&sent, &[Response::Pong { nonce: 1 }]).unwrap(),
            None
        );
    }

    #[test]
    fn a_cut_the_budget_requires_is_accepted() {
        let big = Response::Pages(vec![protocol::PageState::OnSwap { slot: u64::MAX }; 4096]);
        let sent = vec![query(4096); 4];
        let got = vec![big.clone(), big.clone(), Response::Error(E::BatchCut)];
        assert_eq!(batch_cut(&sent, &got).unwrap(), Some(2));
    }

    #[test]
    fn a_cut_with_room_left_is_an_error() {
        let sent = vec![Request::Ping { nonce: 1 }, Request::Ping { nonce: 2 }];
        let got = vec![Response::Pong { nonce: 1 }, Response::Error(E::BatchCut)];
        assert!(batch_cut(&sent, &got).is_err());
    }

    #[test]
    fn a_short_answer_without_a_cut_is_an_error() {
        let sent = vec![Request::Ping { nonce: 1 }, Request::Ping { nonce: 2 }];
        assert!(batch_cut(&sent, &[Response::Pong { nonce: 1 }]).is_err());
        assert!(batch_cut(&sent, &[Response::Error(E::BatchCut)]).is_err());
    }
}
