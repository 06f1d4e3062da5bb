//! What touching memory costs in the guest, byte by byte: a `Write` and a
//! `Read` of 16 MiB of present pages, each one round trip. No page faults
//! and no allocation in them (the pages were written once before): the
//! pattern's stores and the checksum's loads, which under TCG are most of
//! a campaign's writes and reads of written memory. The `Read`'s answer
//! must be the checksum of the pattern the host computes.

use protocol::pattern::{checksum, fill};
use protocol::{AreaType, Privilege, Request, Response};
use tokio::time::Instant;

use super::report::{Figure, Section, Tag, Unit};
use super::{BenchError, BenchPlan};
use crate::session::{Vm, VmConfig};

/// The first byte of the touched range: the start of a PDPT's span in the
/// lower half, away from what the bench's other sections touch.
const AT: u64 = 0x48_0000_0000;

/// The range's length: 16 MiB.
const LEN: u64 = 16 << 20;

/// The seed of the written pattern.
const SEED: u64 = 0x7e57;

/// `plan.runs` guests, each writing [`LEN`] bytes once untimed (the pages
/// become present; TCG translates the paths), then a timed `Write` and a
/// timed `Read` of them.
pub async fn figures(config: &VmConfig, plan: &BenchPlan) -> Result<Vec<Figure>, BenchError> {
    let mut expected = vec![0u8; usize::try_from(LEN).expect("16 MiB fits")];
    fill(SEED, AT, &mut expected);
    let want = checksum(&expected);
    drop(expected);
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    for _ in 0..plan.runs.max(1) {
        let mut vm = Vm::boot(config).await?;
        vm.hello().await?;
        let convert = Request::Convert {
            addr: AT,
            pages: LEN / protocol::PAGE_SIZE,
            to: AreaType::UsableRam,
            privilege: Privilege::User,
        };
        answered(&mut vm, convert, &Response::Done, "convert").await?;
        for timed_run in [false, true] {
            let w = answered(&mut vm, write(), &Response::Done, "write").await?;
            let r = answered(
                &mut vm,
                read(),
                &Response::Checksum { checksum: want },
                "read",
            )
            .await?;
            if timed_run {
                writes.push(w);
                reads.push(r);
            }
        }
        vm.shutdown().await?;
    }
    let tag = Tag::of(Section::Touches, config);
    let mut out = Vec::new();
    out.extend(tag.median(
        "write 16 MiB of present pages: round trip",
        Unit::Millis,
        &writes,
    ));
    out.extend(tag.median(
        "read 16 MiB of present pages (the checksum): round trip",
        Unit::Millis,
        &reads,
    ));
    Ok(out)
}

fn write() -> Request {
    Request::Write {
        addr: AT,
        len: LEN,
        seed: SEED,
        privilege: Privilege::User,
    }
}

fn read() -> Request {
    Request::Read {
        addr: AT,
        len: LEN,
        privilege: Privilege::User,
    }
}

/// `request`'s round trip in ms; its answer (reclaim events left out)
/// must be `want`.
async fn answered(
    vm: &mut Vm,
    request: Request,
    want: &Response,
    what: &str,
) -> Result<f64, BenchError> {
    let t = Instant::now();
    let answer = vm.call(request).await?;
    let millis = t.elapsed().as_secs_f64() * 1e3;
    match answer.split_reclaimed().1 {
        got if &got == want => Ok(millis),
        got => Err(BenchError::Setup(format!(
            "touches: the {what} of 16 MiB answered {got:?}, not {want:?}"
        ))),
    }
}
