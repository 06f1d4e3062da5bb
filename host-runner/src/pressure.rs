//! The memory-pressure scenario of issue 5: a 32 MiB guest maps and writes
//! more than its RAM (anonymous memory and a memory-mapped file), with a
//! kernel heap block in use, so that the guest really swaps, drops file
//! pages and scavenges; everything is read back and checked, and after
//! `Reset` every frame and swap slot is accounted for.
//!
//! Each anonymous page gets a 64-byte pattern run at its start (the rest
//! stays zero), so that pages compress and 40 MiB of them fit in RAM plus
//! the RAM / 8 swap store.

use protocol::pattern::{checksum, fill};
use protocol::{Privilege, Request, Response, Stats};

use crate::files::FileSpec;
use crate::session::{Vm, VmConfig};

/// Guest RAM of the scenario.
pub const RAM_MIB: u32 = 32;
/// Anonymous pages written (40 MiB: more than the guest's RAM).
pub const ANON_PAGES: u64 = 10_240;
const ANON: u64 = 0x1000_0000;
const FILE: u64 = 0x2000_0000;
const RUN: u64 = 64;
/// The file the guest boots with (1 MiB).
pub const FILE_SPEC: FileSpec = FileSpec {
    pages: 256,
    seed: 0x5eed_f11e,
};
const U: Privilege = Privilege::User;
const K: Privilege = Privilege::Kernel;
const CHUNK: usize = 512;

/// What the scenario saw.
#[derive(Debug, Clone)]
pub struct PressureReport {
    /// Stats after everything was read back.
    pub loaded: Stats,
    /// Stats after the final `Reset`.
    pub after_reset: Stats,
    /// Reclaim events reported in answers.
    pub events: usize,
}

/// `config` for the scenario: 32 MiB and the file.
pub fn config(base: &VmConfig) -> VmConfig {
    let mut c = base.clone();
    c.ram_mib = RAM_MIB;
    c.files = vec![FILE_SPEC];
    c
}

fn expected_anon(page: u64) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    let a = ANON + page * 4096;
    fill(page ^ 0xa5, a, &mut b[..RUN as usize]);
    b
}

fn expected_file(page: u64) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    fill(FILE_SPEC.seed, page * 4096, &mut b);
    if page % 2 == 0 {
        let a = FILE + page * 4096 + 1024;
        fill(page, a, &mut b[1024..1024 + RUN as usize]);
    }
    b
}

/// Sends `requests` in batches; every answer must satisfy `ok` (after the
/// reclaim events are taken off). Answers how many events came.
async fn run(
    vm: &mut Vm,
    requests: Vec<Request>,
    ok: impl Fn(usize, &Response) -> bool,
) -> Result<usize, String> {
    let mut events = 0;
    let mut index = 0;
    for chunk in requests.chunks(CHUNK) {
        let answers = vm.batch(chunk.to_vec()).await.map_err(|e| e.to_string())?;
        for (r, a) in chunk.iter().zip(answers) {
            let (ev, a) = a.split_reclaimed();
            events += ev.len();
            if !ok(index, &a) {
                return Err(format!("request {index} {r:?} answered {a:?}"));
            }
            index += 1;
        }
    }
    Ok(events)
}

async fn stats(vm: &mut Vm) -> Result<Stats, String> {
    match vm
        .call(Request::Stats)
        .await
        .map_err(|e| e.to_string())?
        .split_reclaimed()
        .1
    {
        Response::Stats(s) => Ok(s),
        other => Err(format!("Stats answered {other:?}")),
    }
}

/// Runs the scenario on a booted guest of [`config`].
pub async fn scenario(vm: &mut Vm) -> Result<PressureReport, String> {
    let hello = vm.hello().await.map_err(|e| e.to_string())?;
    if hello.files.len() != 1 || hello.files[0].pages != FILE_SPEC.pages {
        return Err(format!("the guest reports files {:?}", hello.files));
    }
    if hello.swap.end <= hello.swap.start || hello.ram_bytes > u64::from(RAM_MIB) << 20 {
        return Err(format!("layout {hello:?}"));
    }
    let done = |_: usize, a: &Response| *a == Response::Done;
    let mut events = run(
        vm,
        vec![
            Request::Convert {
                addr: ANON,
                pages: ANON_PAGES,
                to: protocol::AreaType::UsableRam,
                privilege: U,
            },
            Request::MapFile {
                addr: FILE,
                pages: FILE_SPEC.pages,
                file: 0,
                file_page: 0,
                privilege: U,
            },
        ],
        done,
    )
    .await?;
    let block = match vm
        .call(Request::Kmalloc {
            size: 64 << 10,
            align: 4096,
            privilege: K,
        })
        .await
    {
        Ok(r) => match r.split_reclaimed().1 {
            Response::Kmalloc { addr } => addr,
            other => return Err(format!("Kmalloc answered {other:?}")),
        },
        Err(e) => return Err(e.to_string()),
    };
    let mut writes = vec![Request::Write {
        addr: block,
        len: 64 << 10,
        seed: 3,
        privilege: K,
    }];
    writes.extend((0..ANON_PAGES).map(|p| Request::Write {
        addr: ANON + p * 4096,
        len: RUN,
        seed: p ^ 0xa5,
        privilege: U,
    }));
    // Even file pages written (private), odd ones only read (clean).
    writes.extend((0..FILE_SPEC.pages).map(|p| {
        if p % 2 == 0 {
            Request::Write {
                addr: FILE + p * 4096 + 1024,
                len: RUN,
                seed: p,
                privilege: U,
            }
        } else {
            Request::Read {
                addr: FILE + p * 4096,
                len: 4096,
                privilege: U,
            }
        }
    }));
    events += run(vm, writes, |_, a| {
        matches!(a, Response::Done | Response::Checksum { .. })
    })
    .await?;

    // Everything back, checked byte for byte through the checksums.
    let mut reads: Vec<(Request, u32)> = (0..ANON_PAGES)
        .map(|p| {
            let r = Request::Read {
                addr: ANON + p * 4096,
                len: 4096,
                privilege: U,
            };
            (r, checksum(&expected_anon(p)))
        })
        .collect();
    reads.extend((0..FILE_SPEC.pages).map(|p| {
        let r = Request::Read {
            addr: FILE + p * 4096,
            len: 4096,
            privilege: U,
        };
        (r, checksum(&expected_file(p)))
    }));
    let mut block_data = vec![0u8; 64 << 10];
    fill(3, block, &mut block_data);
    reads.push((
        Request::Read {
            addr: block,
            len: 64 << 10,
            privilege: K,
        },
        checksum(&block_data),
    ));
    let sums: Vec<u32> = reads.iter().map(|r| r.1).collect();
    events += run(vm, reads.into_iter().map(|r| r.0).collect(), |i, a| {
        *a == Response::Checksum { checksum: sums[i] }
    })
    .await?;
    let loaded = stats(vm).await?;
    events += run(
        vm,
        vec![Request::Kfree {
            addr: block,
            privilege: K,
        }],
        done,
    )
    .await?;
    events += run(vm, vec![Request::Reset { privilege: K }], done).await?;
    let after_reset = stats(vm).await?;
    Ok(PressureReport {
        loaded,
        after_reset,
        events,
    })
}

/// Why a report does not show real pressure handled, if it does not.
pub fn judge(r: &PressureReport) -> Result<(), String> {
    let l = &r.loaded;
    if l.pages_evicted == 0 || r.events == 0 {
        return Err(format!("no page was evicted: {l:?}"));
    }
    let a = &r.after_reset;
    if a.swap_slots_used != 0 || a.swap_bytes_used != 0 {
        return Err(format!("swap slots left after Reset: {a:?}"));
    }
    if a.free_frames + a.heap_pages != a.boot_free_frames
        || a.page_table_frames + a.present_pages + a.host_frames != 0
    {
        return Err(format!("frames not accounted for after Reset: {a:?}"));
    }
    Ok(())
}

/// The scenario as a row of the CI job (`host-runner`'s default run): boots
/// its own 32 MiB guest from `base`.
pub async fn ci_row(base: &VmConfig) -> crate::ci_row::CiRow {
    let started = std::time::Instant::now();
    let mut config = config(base);
    config.request_timeout = config
        .request_timeout
        .max(std::time::Duration::from_secs(60));
    use crate::exit_code::{Classify, ExitClass};
    let runner = |e: crate::Error| (e.to_string(), e.exit_class());
    let vmm = |e: String| (e, ExitClass::VmmFailed);
    let outcome = async {
        let mut vm = Vm::boot(&config).await.map_err(runner)?;
        let report = scenario(&mut vm).await.map_err(vmm)?;
        judge(&report).map_err(vmm)?;
        vm.shutdown().await.map_err(|e| runner(e.into()))?;
        Ok::<_, (String, ExitClass)>(())
    }
    .await;
    let (failure, class) = match outcome {
        Ok(()) => (None, ExitClass::Passed),
        Err((f, class)) => (Some(f), class),
    };
    crate::ci_row::CiRow {
        name: "pressure (32 MiB)".into(),
        ops: (2 * ANON_PAGES + 2 * FILE_SPEC.pages) as usize,
        failure,
        class,
        time: started.elapsed(),
    }
}
