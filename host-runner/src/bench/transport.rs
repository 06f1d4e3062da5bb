//! Boot, round trip and batched throughput on one transport: raw
//! requests on a [`Vm`] (no model, no check), the guest's and the link's
//! speed alone.

use std::time::Duration;

use protocol::{Privilege, Request};
use tokio::time::Instant;

use super::mix::{send, Mix};
use super::report::{Figure, Section, Tag, Unit};
use super::{BenchError, BenchPlan};
use crate::accel::expect_pong;
use crate::error::Result;
use crate::rpc::RpcError;
use crate::session::{Transport, Vm, VmConfig};

/// What the runs on one transport measured, in seconds.
#[derive(Debug, Default)]
struct Samples {
    boot: Vec<f64>,
    round_trip: Vec<f64>,
    /// Pings each sent after [`IDLE`] without a request: the guest asleep.
    idle_round_trip: Vec<f64>,
    /// Per batch size (the plan's order): one sample per batch.
    pings: Vec<Vec<f64>>,
    mix: Vec<Vec<f64>>,
}

/// `plan.runs` boots of `config` (its transport): each timed to `Ready`,
/// then single pings back to back, then a few single pings each after
/// [`IDLE`] without a request, then `plan.batched_requests` operations of
/// `mix` once untimed (so that no size pays for the guest's code's first
/// translation), then for each batch size `plan.batched_requests` pings
/// and the same operations of `mix` (after a `Reset`, so every size
/// starts from the same state and sends the same operations), in batches
/// of that size, each batch timed.
pub async fn figures(
    config: &VmConfig,
    plan: &BenchPlan,
    mix: &Mix,
) -> Result<Vec<Figure>, BenchError> {
    let sizes = &plan.batch_sizes;
    let mut s = Samples {
        pings: vec![Vec::new(); sizes.len()],
        mix: vec![Vec::new(); sizes.len()],
        ..Samples::default()
    };
    let mut nonce = 0u64;
    for run in 0..plan.runs.max(1) {
        let mut vm = Vm::boot(config).await?;
        s.boot.push(vm.boot_time().as_secs_f64());
        vm.hello().await?;
        if vm.uses_ring() != (config.transport == Transport::Ring) {
            return Err(BenchError::Setup(format!(
                "asked for the {} transport, the guest uses the {}",
                config.transport,
                if vm.uses_ring() {
                    "ring"
                } else {
                    "serial line"
                }
            )));
        }
        for _ in 0..plan.round_trips {
            nonce += 1;
            s.round_trip.push(timed_ping(&mut vm, nonce).await?);
        }
        for _ in 0..idle_pings(plan.round_trips) {
            tokio::time::sleep(IDLE).await;
            nonce += 1;
            s.idle_round_trip.push(timed_ping(&mut vm, nonce).await?);
        }
        // The mix once untimed: TCG translates the guest's code the first
        // time it runs, and the size timed first paid for it (the mix in
        // batches of 1 read 7,420 requests/s against 30,579 in batches of
        // 16, with a median batch of 0.02 against 0.27 ms).
        let ops = &mix.requests[..mix.requests.len().min(plan.batched_requests)];
        let widest = sizes.iter().copied().max().unwrap_or(1).max(1);
        for chunk in ops.chunks(widest) {
            send(&mut vm, chunk.to_vec()).await?;
        }
        for (i, &size) in sizes.iter().enumerate() {
            let size = size.max(1);
            for _ in 0..batches_of(plan.batched_requests, size) {
                let first = nonce + 1;
                nonce += size as u64;
                let pings = (first..=nonce).map(|n| Request::Ping { nonce: n });
                let t = Instant::now();
                let answers = send(&mut vm, pings.collect()).await?;
                s.pings[i].push(t.elapsed().as_secs_f64());
                for (n, a) in (first..).zip(answers) {
                    expect_pong(a, n)?;
                }
            }
            reset(&mut vm).await?;
            for chunk in ops.chunks(size) {
                if chunk.len() < size {
                    break;
                }
                let t = Instant::now();
                send(&mut vm, chunk.to_vec()).await?;
                s.mix[i].push(t.elapsed().as_secs_f64());
            }
        }
        vm.shutdown().await?;
        tracing::debug!("bench {}: run {} done", config.transport, run + 1);
    }
    Ok(s.figures(config, sizes))
}

impl Samples {
    fn figures(self, config: &VmConfig, sizes: &[usize]) -> Vec<Figure> {
        let tag = Tag::of(Section::Boot, config);
        let ms = |v: &[f64]| v.iter().map(|s| s * 1e3).collect::<Vec<_>>();
        let us = |v: &[f64]| v.iter().map(|s| s * 1e6).collect::<Vec<_>>();
        let mut out = Vec::new();
        out.extend(tag.median("boot → ready", Unit::Millis, &ms(&self.boot)));
        let tag = Tag {
            section: Section::RoundTrip,
            ..tag
        };
        out.extend(tag.median("ping", Unit::Micros, &us(&self.round_trip)));
        out.extend(tag.median(
            format!("ping after {} ms idle", IDLE.as_millis()),
            Unit::Micros,
            &us(&self.idle_round_trip),
        ));
        let tag = Tag {
            section: Section::Batched,
            ..tag
        };
        for (what, per_size) in [("pings", &self.pings), ("VMM mix", &self.mix)] {
            for (&size, samples) in sizes.iter().zip(per_size) {
                let Some(batch) = tag.median(
                    format!("{what}, batches of {size}: per batch"),
                    Unit::Millis,
                    &ms(samples),
                ) else {
                    continue;
                };
                out.push(tag.value(
                    format!("{what}, batches of {size}: throughput"),
                    Unit::RequestsPerSec,
                    throughput(size, samples),
                    batch.samples,
                ));
                out.push(batch);
            }
        }
        out
    }
}

/// How long the host leaves the guest without a request before an idle
/// ping: longer than the guest's spin for the next request
/// ([`protocol::ring::SPIN_TICKS`]: at most 1 ms with a time-stamp
/// counter of 1 GHz or more), so the guest is asleep in `hlt` and a ring
/// ping pays its wake-up, as a batch does after one of the host's full
/// memory checks (the guest sleeps through them), any gap longer than the
/// spin, or any answer in a campaign whose guests have no core to spare
/// (`judge::campaign_spin`: no spin). (On the serial line the guest
/// sleeps between any two requests: there the idle ping differs from the
/// back-to-back one only by what idling does to the host and QEMU.)
pub(super) const IDLE: Duration = Duration::from_millis(3);
const _: () = assert!(IDLE.as_nanos() > protocol::ring::SPIN_TICKS as u128);

/// One `Ping { nonce }`'s round trip, in seconds (its answer checked).
async fn timed_ping(vm: &mut Vm, nonce: u64) -> Result<f64, BenchError> {
    let t = Instant::now();
    let answer = vm.call(Request::Ping { nonce }).await?;
    let secs = t.elapsed().as_secs_f64();
    expect_pong(answer, nonce)?;
    Ok(secs)
}

/// Idle pings per run: a tenth of the back-to-back ones (each costs
/// [`IDLE`] more), at least 5.
fn idle_pings(round_trips: usize) -> usize {
    (round_trips / 10).max(5)
}

/// Requests per second over all of `batches` (seconds each) of `size`
/// requests: their total time, not the median batch's. The requests'
/// costs are skewed (most of the mix's operations take a tenth of a
/// millisecond, a few large ranges tens of milliseconds), so a median of
/// single requests hid the heavy ones and made batches look slower per
/// request than single requests.
fn throughput(size: usize, batches: &[f64]) -> f64 {
    let total: f64 = batches.iter().sum();
    (size * batches.len()) as f64 / total.max(1e-9)
}

/// Whole batches of `size` in `total` requests (at least one).
fn batches_of(total: usize, size: usize) -> usize {
    (total / size).max(1)
}

/// Back to the boot state (unjudged: the guest's answer is only checked
/// to be `Done`, reclaimed or not).
pub async fn reset(vm: &mut Vm) -> Result<(), RpcError> {
    let request = Request::Reset {
        privilege: Privilege::Kernel,
    };
    let mut answer = vm.call(request.clone()).await?;
    // The reset may reclaim on its way (heap pages scavenged).
    while let protocol::Response::Reclaimed { response, .. } = answer {
        answer = *response;
    }
    match answer {
        protocol::Response::Done => Ok(()),
        other => Err(RpcError::UnexpectedResponse {
            request: format!("{request:?}"),
            response: Box::new(other),
        }),
    }
}

/// Seconds as a [`Duration`] (for plan fields kept as seconds).
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_counts_every_batch_and_its_whole_time() {
        // Nine cheap requests and one a hundred times dearer: 10 requests
        // in 0.109 s, not the 1,000/s of the median one.
        let mut one_each = vec![0.001; 9];
        one_each.push(0.1);
        let rate = throughput(1, &one_each);
        assert!((rate - 10.0 / 0.109).abs() < 1e-6, "{rate}");
        assert!((throughput(16, &[0.5, 0.5]) - 32.0).abs() < 1e-9);
    }
}
