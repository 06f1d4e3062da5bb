//! What converting untouched space costs in the guest: a `Convert` of a
//! range no page table covers yet to usable RAM, then back to unusable,
//! each one round trip, for one page table's span (2 MiB) and for 256 of
//! them (512 MiB). A convert that wrote each of the range's entries cost
//! time per page (512 MiB: 30 ms there and 144 ms back when issue 16 was
//! filed); one that writes a whole allocate-on-write PD entry per page
//! table (`protocol::formats`) costs per table, and the two rows then
//! differ by about the factor of 256 in tables, not in a round trip.

use protocol::{AreaType, Privilege, Request, Response};
use tokio::time::Instant;

use super::report::{Figure, Section, Tag, Unit};
use super::{BenchError, BenchPlan};
use crate::session::{Vm, VmConfig};

/// The first page of the converted ranges: the start of a PDPT's span in
/// the lower half, which no request of the bench touched before.
const AT: u64 = 0x40_0000_0000;

/// The ranges, in pages: one page table's span, and 256 of them.
const SIZES: [(u64, &str); 2] = [(512, "2 MiB"), (512 * 256, "512 MiB")];

/// `plan.runs` guests, each converting each of [`SIZES`] to usable RAM
/// and back, each convert timed as one round trip.
pub async fn figures(config: &VmConfig, plan: &BenchPlan) -> Result<Vec<Figure>, BenchError> {
    let mut there = vec![Vec::new(); SIZES.len()];
    let mut back = vec![Vec::new(); SIZES.len()];
    for _ in 0..plan.runs.max(1) {
        let mut vm = Vm::boot(config).await?;
        vm.hello().await?;
        // Once untimed: TCG translates the code of a path the first time
        // it runs, which is not what a convert costs in a campaign.
        for (pages, _) in SIZES {
            timed_convert(&mut vm, pages, AreaType::UsableRam).await?;
            timed_convert(&mut vm, pages, AreaType::Unusable).await?;
        }
        for (i, &(pages, _)) in SIZES.iter().enumerate() {
            there[i].push(timed_convert(&mut vm, pages, AreaType::UsableRam).await?);
            back[i].push(timed_convert(&mut vm, pages, AreaType::Unusable).await?);
        }
        vm.shutdown().await?;
    }
    let tag = Tag::of(Section::Converts, config);
    let mut out = Vec::new();
    for (i, &(_, name)) in SIZES.iter().enumerate() {
        out.extend(tag.median(
            format!("convert {name} of untouched space to usable RAM: round trip"),
            Unit::Micros,
            &there[i],
        ));
        out.extend(tag.median(
            format!("convert the same {name} back to unusable: round trip"),
            Unit::Micros,
            &back[i],
        ));
    }
    Ok(out)
}

/// One `Convert` of `pages` pages at [`AT`] to `to`, in µs; it must answer
/// `Done`.
async fn timed_convert(vm: &mut Vm, pages: u64, to: AreaType) -> Result<f64, BenchError> {
    let request = Request::Convert {
        addr: AT,
        pages,
        to,
        privilege: Privilege::Kernel,
    };
    let t = Instant::now();
    let answer = vm.call(request).await?;
    let micros = t.elapsed().as_secs_f64() * 1e6;
    match answer.split_reclaimed().1 {
        Response::Done => Ok(micros),
        other => Err(BenchError::Setup(format!(
            "converts: {pages} pages to {to:?} answered {other:?}"
        ))),
    }
}
