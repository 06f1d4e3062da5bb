//! The probe `auto` times each accelerator with.

use std::fmt;
use std::time::Duration;

use protocol::{AreaType, Privilege, Request, Response};
use tokio::time::Instant;

use super::Accel;
use crate::error::Result;
use crate::rpc::RpcError;
use crate::session::{Vm, VmConfig};

/// What one probe measured.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub boot: Duration,
    /// Sum of [`PROBE_ROUND_TRIPS`] single pings.
    pub round_trips: Duration,
    /// One batch of [`PROBE_BATCH`] pings.
    pub batch: Duration,
    /// One batch of VMM work that takes page faults ([`vmm_workload`]).
    pub vmm: Duration,
}

/// Single pings in a probe.
pub const PROBE_ROUND_TRIPS: u64 = 20;
/// Pings in a probe's batch.
pub const PROBE_BATCH: u64 = 200;

impl Probe {
    /// The figure compared: the whole probe's time.
    pub fn score(&self) -> Duration {
        self.boot + self.round_trips + self.batch + self.vmm
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "boot {:.1} ms + {PROBE_ROUND_TRIPS} round trips {:.1} ms + {PROBE_BATCH}-ping batch {:.1} ms \
             + VMM batch {:.1} ms = {:.1} ms",
            ms(self.boot),
            ms(self.round_trips),
            ms(self.batch),
            ms(self.vmm),
            ms(self.score())
        )
    }
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Boots the guest under `accel` and times a short ping burst.
pub async fn probe(base: &VmConfig, accel: Accel) -> Result<Probe> {
    let mut config = base.clone();
    config.accel = accel;
    let mut vm = Vm::boot(&config).await?;
    let boot = vm.boot_time();
    let t = Instant::now();
    for nonce in 0..PROBE_ROUND_TRIPS {
        expect_pong(vm.call(Request::Ping { nonce }).await?, nonce)?;
    }
    let round_trips = t.elapsed();
    let batch = ping_batch(&mut vm, PROBE_BATCH).await?;
    let t = Instant::now();
    let answers = vm.batch(vmm_workload()).await?;
    let vmm = t.elapsed();
    // The probe times the work; judging the answers is the checker's job.
    if let Some(odd) = answers.iter().find(|a| matches!(a, Response::Error(_))) {
        tracing::debug!("accel probe: the VMM workload got {odd:?}");
    }
    vm.shutdown().await?;
    Ok(Probe {
        boot,
        round_trips,
        batch,
        vmm,
    })
}

/// Rounds of [`vmm_workload`].
pub const PROBE_VMM_ROUNDS: u64 = 4;
/// Pages each round maps, writes, reads and faults in.
pub const PROBE_VMM_PAGES: u64 = 16;

/// What fuzzing mostly asks of the guest: map, write, read, convert to
/// allocate-on-write and write again (one page fault a page), unmap.
pub fn vmm_workload() -> Vec<Request> {
    let addr = 0x4000_0000;
    let pages = PROBE_VMM_PAGES;
    let len = pages * protocol::PAGE_SIZE;
    let privilege = Privilege::User;
    let convert = |to| Request::Convert {
        addr,
        pages,
        to,
        privilege,
    };
    (0..PROBE_VMM_ROUNDS)
        .flat_map(|seed| {
            let write = Request::Write {
                addr,
                len,
                seed,
                privilege,
            };
            [
                Request::map_writable(addr, pages, privilege),
                write.clone(),
                Request::Read {
                    addr,
                    len,
                    privilege,
                },
                convert(AreaType::Unusable),
                convert(AreaType::UsableRam),
                write,
                Request::Unmap {
                    addr,
                    pages,
                    privilege,
                },
            ]
        })
        .collect()
}

/// Sends `n` pings as one batch and checks every pong; answers the
/// batch's round trip.
pub async fn ping_batch(vm: &mut Vm, n: u64) -> Result<Duration> {
    let t = Instant::now();
    let answers = vm
        .batch((0..n).map(|nonce| Request::Ping { nonce }).collect())
        .await?;
    let round_trip = t.elapsed();
    for (nonce, a) in (0..n).zip(answers) {
        expect_pong(a, nonce)?;
    }
    Ok(round_trip)
}

/// Checks that `answer` is `Pong { nonce }`.
pub fn expect_pong(answer: Response, nonce: u64) -> Result<(), RpcError> {
    match answer {
        Response::Pong { nonce: n } if n == nonce => Ok(()),
        other => Err(RpcError::UnexpectedResponse {
            request: format!("Ping {{ nonce: {nonce} }}"),
            response: Box::new(other),
        }),
    }
}
