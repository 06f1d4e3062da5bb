//! `bench`: boot time, round-trip latency and batched throughput, as
//! medians over several runs, for each accelerator.

use std::fmt::Write as _;
use std::time::Duration;

use protocol::Request;
use tokio::time::Instant;

use crate::accel::{expect_pong, vmm_workload, Accel, PROBE_VMM_PAGES, PROBE_VMM_ROUNDS};
use crate::error::Result;
use crate::session::{Vm, VmConfig};

mod ops;
pub use ops::op_costs;

/// How much to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchPlan {
    /// Boots (each one timed, spawn to `Ready`).
    pub boots: usize,
    /// Single-ping round trips, spread over the boots.
    pub round_trips: usize,
    /// Batches, spread over the boots.
    pub batches: usize,
    /// Pings per batch.
    pub batch_size: usize,
    /// Batches of VMM work ([`crate::accel::vmm_workload`]), spread over
    /// the boots.
    pub vmm_batches: usize,
}

impl Default for BenchPlan {
    fn default() -> Self {
        BenchPlan {
            boots: 5,
            round_trips: 200,
            batches: 20,
            batch_size: 500,
            vmm_batches: 5,
        }
    }
}

/// Medians for one accelerator.
#[derive(Clone, Copy, Debug)]
pub struct BenchResult {
    pub accel: Accel,
    pub boot: Duration,
    pub round_trip: Duration,
    pub batch: Duration,
    pub batch_size: usize,
    /// Median time of one VMM batch (zero when none was run).
    pub vmm_batch: Duration,
    /// Median round trip of a `Reset` after a VMM batch (the guest's fresh
    /// state; zero when no VMM batch was run).
    pub reset: Duration,
}

impl BenchResult {
    /// Pings per second in a batch.
    pub fn throughput(&self) -> f64 {
        self.batch_size as f64 / self.batch.as_secs_f64().max(1e-9)
    }
}

/// The median of `samples` (the mean of the middle two for an even count);
/// zero for none.
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    match samples.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2,
    }
}

/// `total` spread over `parts`: the share of part `i`.
fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

/// Measures one accelerator.
pub async fn bench(base: &VmConfig, accel: Accel, plan: BenchPlan) -> Result<BenchResult> {
    let mut config = base.clone();
    config.accel = accel;
    let boots = plan.boots.max(1);
    let (mut boot, mut rtt, mut batch, mut vmm) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut reset = Vec::new();
    let mut nonce = 0u64;
    for i in 0..boots {
        let mut vm = Vm::boot(&config).await?;
        boot.push(vm.boot_time());
        vm.hello().await?;
        for _ in 0..share(plan.round_trips, boots, i) {
            nonce += 1;
            let t = Instant::now();
            let answer = vm.call(Request::Ping { nonce }).await?;
            rtt.push(t.elapsed());
            expect_pong(answer, nonce)?;
        }
        for _ in 0..share(plan.batches, boots, i) {
            let first = nonce;
            let requests = (0..plan.batch_size as u64)
                .map(|k| Request::Ping { nonce: first + k })
                .collect();
            nonce += plan.batch_size as u64;
            let t = Instant::now();
            let answers = vm.batch(requests).await?;
            batch.push(t.elapsed());
            for (k, a) in answers.into_iter().enumerate() {
                expect_pong(a, first + k as u64)?;
            }
        }
        for _ in 0..share(plan.vmm_batches, boots, i) {
            let t = Instant::now();
            vm.batch(vmm_workload()).await?;
            vmm.push(t.elapsed());
            let t = Instant::now();
            vm.call(Request::Reset {
                privilege: protocol::Privilege::Kernel,
            })
            .await?;
            reset.push(t.elapsed());
        }
        vm.shutdown().await?;
        tracing::debug!("{accel}: run {} of {boots} done", i + 1);
    }
    Ok(BenchResult {
        accel,
        boot: median(&mut boot),
        round_trip: median(&mut rtt),
        batch: median(&mut batch),
        batch_size: plan.batch_size,
        vmm_batch: median(&mut vmm),
        reset: median(&mut reset),
    })
}

/// The results as a table.
pub fn table(plan: BenchPlan, results: &[BenchResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "medians over {} boots, {} round trips, {} batches of {} pings, {} VMM batches \
         ({} × map, write, read, unmap, fault in {} pages)",
        plan.boots,
        plan.round_trips,
        plan.batches,
        plan.batch_size,
        plan.vmm_batches,
        PROBE_VMM_ROUNDS,
        PROBE_VMM_PAGES
    );
    let _ = writeln!(
        s,
        "{:<6} {:>14} {:>16} {:>14} {:>16} {:>14} {:>10}",
        "accel",
        "boot→ready ms",
        "round trip µs",
        "batch ms",
        "pings/s batched",
        "VMM batch ms",
        "reset µs"
    );
    for r in results {
        let vmm = if plan.vmm_batches == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}", r.vmm_batch.as_secs_f64() * 1e3)
        };
        let _ = writeln!(
            s,
            "{:<6} {:>14.1} {:>16.1} {:>14.2} {:>16.0} {:>14} {:>10.0}",
            r.accel.to_string(),
            r.boot.as_secs_f64() * 1e3,
            r.round_trip.as_secs_f64() * 1e6,
            r.batch.as_secs_f64() * 1e3,
            r.throughput(),
            vmm,
            r.reset.as_secs_f64() * 1e6
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut ms(&[])), Duration::ZERO);
        assert_eq!(median(&mut ms(&[5])), Duration::from_millis(5));
        assert_eq!(median(&mut ms(&[9, 1, 5])), Duration::from_millis(5));
        assert_eq!(median(&mut ms(&[4, 1, 2, 100])), Duration::from_millis(3));
    }

    #[test]
    fn shares_add_up() {
        for (total, parts) in [(200, 5), (20, 5), (7, 3), (2, 5), (0, 4)] {
            let sum: usize = (0..parts).map(|i| share(total, parts, i)).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn table_has_a_row_per_accel() {
        let r = BenchResult {
            accel: Accel::Tcg,
            boot: Duration::from_millis(30),
            round_trip: Duration::from_micros(200),
            batch: Duration::from_millis(50),
            batch_size: 500,
            vmm_batch: Duration::from_millis(12),
            reset: Duration::from_micros(700),
        };
        let t = table(
            BenchPlan::default(),
            &[
                r,
                BenchResult {
                    accel: Accel::Kvm,
                    ..r
                },
            ],
        );
        assert_eq!(t.lines().count(), 4);
        assert!(t.contains("10000"), "{t}");
    }
}
