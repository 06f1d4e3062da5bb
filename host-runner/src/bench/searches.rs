//! The guest's allocator searches over a fragmented map: a `Valloc` that
//! finds no room after looking through the whole `Valloc` region's bitmap
//! (2^18 pages), handed out but for one free page in every 64. Such maps
//! arise in long fuzz sequences; a search that stepped over handed-out
//! pages one at a time cost tens of milliseconds here (`vmm_core::bits`).

use protocol::{Error, Privilege, Request, Response};
use tokio::time::Instant;

use super::report::{Figure, Section, Tag, Unit};
use super::{BenchError, BenchPlan};
use crate::session::{Vm, VmConfig};

/// Free pages are one in this many.
const GAP_EVERY: u64 = 64;
/// Failing searches timed per run.
const SEARCHES: usize = 8;

/// `plan.runs` guests, each with its `Valloc` region fragmented, then
/// [`SEARCHES`] `Valloc`s of two pages that find no room, each timed.
pub async fn figures(config: &VmConfig, plan: &BenchPlan) -> Result<Vec<Figure>, BenchError> {
    let mut samples = Vec::new();
    for _ in 0..plan.runs.max(1) {
        let mut vm = Vm::boot(config).await?;
        let hello = vm.hello().await?;
        fragment(&mut vm, hello.valloc.start, hello.valloc.end).await?;
        for _ in 0..SEARCHES {
            let t = Instant::now();
            let answer = vm.call(valloc(2)).await?;
            samples.push(t.elapsed().as_secs_f64() * 1e6);
            if answer != Response::Error(Error::NoVirtualSpace) {
                return Err(setup(format!("a 2-page Valloc found room: {answer:?}")));
            }
        }
        vm.shutdown().await?;
    }
    let tag = Tag::of(Section::Searches, config);
    Ok(tag
        .median(
            format!("Valloc of 2 pages, no room (one free page in {GAP_EVERY}): round trip"),
            Unit::Micros,
            &samples,
        )
        .into_iter()
        .collect())
}

fn valloc(pages: u64) -> Request {
    Request::Valloc {
        pages,
        privilege: Privilege::Kernel,
    }
}

fn setup(message: String) -> BenchError {
    BenchError::Setup(format!("searches: {message}"))
}

/// Hands out the whole region `start..end`, then gives back one page in
/// every [`GAP_EVERY`].
async fn fragment(vm: &mut Vm, start: u64, end: u64) -> Result<(), BenchError> {
    let pages = (end - start) / 4096;
    match vm.call(valloc(pages)).await? {
        Response::Valloc { addr } if addr == start => {}
        other => return Err(setup(format!("the whole region: {other:?}"))),
    }
    let frees: Vec<Request> = gaps(start, pages)
        .map(|addr| Request::Vfree {
            addr,
            pages: 1,
            privilege: Privilege::Kernel,
        })
        .collect();
    for chunk in frees.chunks(256) {
        let answers = vm.batch(chunk.to_vec()).await?;
        if let Some(bad) = answers.iter().find(|a| **a != Response::Done) {
            return Err(setup(format!("Vfree: {bad:?}")));
        }
    }
    Ok(())
}

/// The pages given back: the first of every [`GAP_EVERY`].
fn gaps(start: u64, pages: u64) -> impl Iterator<Item = u64> {
    (0..pages)
        .step_by(GAP_EVERY as usize)
        .map(move |p| start + p * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gaps_leave_no_run_of_two_free_pages() {
        let start = 0xffff_c000_0000_0000;
        let g: Vec<u64> = gaps(start, 256).collect();
        assert_eq!(g, [0, 64, 128, 192].map(|p| start + p * 4096));
        assert!(g.windows(2).all(|w| w[1] - w[0] > 2 * 4096));
    }
}
