//! What a memory check costs, by guest RAM size and by the pages mapped.
//!
//! [`check_rows`] measures the judge's checks as the fuzzer runs them, on a
//! live guest: the full check ([`JudgedVm::check`]: the model's
//! expectations against guest RAM read through the shared mapping, and
//! QEMU's `info tlb`), and the incremental check between batches
//! ([`JudgedVm::check_at`] without `full`: what the operations since the
//! last clean check could have changed) after a write of a few pages.
//! Each full check's row comes with its two parts: the oracle's check, and
//! QEMU's view (`info tlb`, `info registers`), asked for before the
//! oracle's check and waited for after it. (Reading RAM would be a third
//! part with `pmemsave`; the bench's guests share their RAM, which takes no
//! reading.) `cargo bench -p oracle --bench checks` measures the oracle's
//! part alone, over synthetic images.

use std::time::Instant;

use protocol::{Privilege, Request, MAX_TOUCH_LEN};

use super::report::{Figure, Section, Tag, Unit};
use super::{BenchError, BenchPlan};
use crate::judge::{JudgeOptions, JudgedVm};
use crate::session::VmConfig;

/// Where the mapped pages start (user space, clear of page 0).
const MAP_AT: u64 = 0x4000_0000;

/// Pages written before each incremental check.
const CHANGED: u64 = 4;

fn failed(stage: String) -> impl FnOnce(trace::Failure) -> BenchError {
    move |failure| BenchError::Failed { stage, failure }
}

/// For each RAM size of `plan.check_ram_mib`: one guest without files,
/// `few` pages mapped and written, the full check timed `plan.runs` times,
/// then `plan.runs` times a write of [`CHANGED`] of those pages and the
/// incremental check after it; then up to `many` pages mapped and written
/// (at most a quarter of the guest's frames), both timed again.
pub async fn check_rows(config: &VmConfig, plan: &BenchPlan) -> Result<Vec<Figure>, BenchError> {
    let tag = Tag {
        section: Section::Checks,
        accel: config.accel,
        transport: None,
    };
    let [few, many] = plan.check_pages;
    let mut out = Vec::new();
    for &ram in &plan.check_ram_mib {
        // Without files: a guest with files has at most 1 GiB
        // (`trace::limits::FILES_MAX_RAM_MIB`), and the rows compare RAM
        // sizes with nothing else changed.
        let config = VmConfig {
            ram_mib: ram,
            files: Vec::new(),
            ..config.clone()
        };
        let stage = |what: &str| format!("checks at {ram} MiB: {what}");
        let mut vm = JudgedVm::start(&config, JudgeOptions::default())
            .await
            .map_err(failed(stage("start")))?;
        let many = many.min(vm.hello().total_frames / 4).max(few);
        let mut mapped = 0;
        for target in [few, many] {
            let requests = map_and_write(MAP_AT + mapped * 4096, target - mapped);
            vm.steps(requests).await.map_err(failed(stage("mapping")))?;
            mapped = target;
            let (mut ms, mut oracle, mut qemu) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..plan.runs.max(1) {
                let t = Instant::now();
                let check = vm.check_timed().await.map_err(failed(stage("check")))?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                oracle.push(check.check_time.as_secs_f64() * 1e3);
                qemu.push(check.qemu_time.as_secs_f64() * 1e3);
            }
            let full = format!("{ram} MiB RAM, {mapped} pages mapped: full check");
            out.extend(tag.median(full.clone(), Unit::Millis, &ms));
            out.extend(tag.median(format!("{full}: the oracle"), Unit::Millis, &oracle));
            out.extend(tag.median(
                format!("{full}: QEMU's view after the oracle"),
                Unit::Millis,
                &qemu,
            ));
            let mut ms = Vec::new();
            for run in 0..plan.runs.max(1) {
                let write = Request::Write {
                    addr: MAP_AT,
                    len: CHANGED.min(mapped) * 4096,
                    seed: run as u64 + 1,
                    privilege: Privilege::User,
                };
                vm.steps(vec![write])
                    .await
                    .map_err(failed(stage("writing")))?;
                let at = vm.index().checked_sub(1);
                let t = Instant::now();
                vm.check_at(at, false)
                    .await
                    .map_err(failed(stage("incremental check")))?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            out.extend(tag.median(
                format!(
                    "{ram} MiB RAM, {mapped} pages mapped: incremental check, {} written since",
                    CHANGED.min(mapped)
                ),
                Unit::Millis,
                &ms,
            ));
        }
        vm.finish().await.map_err(failed(stage("shutdown")))?;
    }
    Ok(out)
}

/// `Map` of `pages` writable user pages at `addr` and `Write`s over all of
/// them (so every frame holds data the check compares).
fn map_and_write(addr: u64, pages: u64) -> Vec<Request> {
    if pages == 0 {
        return Vec::new();
    }
    let mut requests = vec![Request::map_writable(addr, pages, Privilege::User)];
    let (mut at, end) = (addr, addr + pages * 4096);
    while at < end {
        let len = (end - at).min(MAX_TOUCH_LEN);
        requests.push(Request::Write {
            addr: at,
            len,
            seed: at,
            privilege: Privilege::User,
        });
        at += len;
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::pages::pages_named;

    #[test]
    fn the_pages_are_mapped_once_and_written_whole() {
        assert!(map_and_write(MAP_AT, 0).is_empty());
        let pages = MAX_TOUCH_LEN / 4096 + 3;
        let r = map_and_write(MAP_AT, pages);
        assert_eq!(r.len(), 3, "one map, two writes: {r:?}");
        assert_eq!(pages_named(&r[0]), pages);
        let written: u64 = r[1..].iter().map(pages_named).sum();
        assert_eq!(written, pages);
    }
}
