//! The fuzzer's operation mix as a fixed list of requests, and the same
//! list run in the guest and in-process: `vmm-core` (the guest's own VMM
//! code) over its simulated machine (`vmm_core::sim`). Only the bench
//! uses `vmm-core`; the model that judges the guest never does.

use std::time::Instant;

use protocol::{Privilege, Request, Response};
use vmm_core::machine::Machine as _;
use vmm_core::sim::SimMachine;

use super::report::{Figure, Link, Section, Tag, Unit};
use super::BenchPlan;
use crate::error::Result;
use crate::fuzz::pages::pages_touched;
use crate::rpc::RpcError;
use crate::session::{Vm, VmConfig};

/// A fixed operation list and what `vmm-core` answered it in-process.
#[derive(Debug, Clone)]
pub struct Mix {
    pub requests: Vec<Request>,
    /// The in-process answers, one per request.
    pub answers: Vec<Response>,
    /// Pages the requests touched, by the in-process answers
    /// ([`pages_touched`]).
    pub pages: u64,
}

/// A simulated machine like the guest `config` boots: its RAM size and
/// files.
fn machine(config: &VmConfig) -> SimMachine {
    let files: Vec<(u64, u64)> = config.files.iter().map(|f| (f.pages, f.seed)).collect();
    SimMachine::with_files(u64::from(config.ram_mib) * 256, &files)
}

impl Mix {
    /// `ops` operations of the fuzzer's default mix (the generator of
    /// `seed`, the guest's RAM size and files), each generated knowing the
    /// answer to the one before as the fuzzer does, the answers coming
    /// from `vmm-core` in-process. `Panic`s are left out.
    pub fn record(config: &VmConfig, ops: usize, seed: u64) -> Mix {
        let mut m = machine(config);
        let mut recorder = Recorder::default();
        recorder.sequence(&mut m, generator(config, ops, seed), ops);
        recorder.mix()
    }

    /// About `ops` operations of a fuzz campaign of `seed` (swarm on, as
    /// `fuzz` runs by default) under memory pressure: of its sequences
    /// `seed`, `seed + 1`, … those whose swarm draws the pressure pattern
    /// (the allocator drained part way), in order, each with the weights
    /// and length its seed draws, the campaign's reset between two (`Reset`,
    /// again while the last gave back many pages: the campaign's fresh
    /// state), the last one cut at `ops` (or one short of it, rather than
    /// end on a `Reset`). Unlike [`Mix::record`]'s short mix from a
    /// fresh machine, this reaches the clock, the swap store and the
    /// reserve.
    pub fn record_campaign(config: &VmConfig, ops: usize, seed: u64) -> Mix {
        let base = trace::GenConfig {
            swarm: true,
            ..gen_config(config, crate::fuzz::FuzzArgs::default().ops)
        };
        let mut m = machine(config);
        let mut recorder = Recorder::default();
        let mut first = true;
        'sequences: for k in 0.. {
            let s = crate::fuzz::plan::sequence_seed(seed, k);
            let gen = base.for_sequence(s);
            if gen.drain_from.is_none() {
                continue;
            }
            if !first {
                // The campaign's fresh state: `Reset`, again while the last
                // gave back many pages (`crate::judge::another_reset`; its
                // `Stats` left out here), each with room for an operation
                // after it.
                loop {
                    if recorder.requests.len() + 1 >= ops {
                        break 'sequences;
                    }
                    let answer = recorder.push(
                        &mut m,
                        Request::Reset {
                            privilege: Privilege::Kernel,
                        },
                    );
                    if !crate::judge::another_reset(&answer) {
                        break;
                    }
                }
            }
            first = false;
            let left = ops.saturating_sub(recorder.requests.len());
            if left == 0 {
                break;
            }
            let n = gen.ops.min(left);
            recorder.sequence(&mut m, trace::Generator::new(s, gen), n);
        }
        recorder.mix()
    }

    /// The operations whose in-process answer reclaimed memory first.
    pub fn reclaimed(&self) -> usize {
        self.answers
            .iter()
            .filter(|a| matches!(a, Response::Reclaimed { .. }))
            .count()
    }
}

/// Requests run in-process as they are generated, with their answers.
#[derive(Default)]
struct Recorder {
    requests: Vec<Request>,
    answers: Vec<Response>,
}

impl Recorder {
    fn push(&mut self, m: &mut SimMachine, request: Request) -> Response {
        let answer = vmm_core::dispatch::handle(m, request.clone());
        self.requests.push(request);
        self.answers.push(answer.clone());
        answer
    }

    /// `ops` operations of `generator`, each generated knowing the answer
    /// to the one before (the first the machine's `Hello`).
    fn sequence(&mut self, m: &mut SimMachine, mut generator: trace::Generator, ops: usize) {
        let mut last = Some(Response::Hello(Box::new(m.hello())));
        let mut made = 0;
        while made < ops {
            let op = generator.next_op(last.as_ref());
            if matches!(op, trace::Op::Panic { .. }) {
                last = None;
                continue;
            }
            last = Some(self.push(m, op.to_request()));
            made += 1;
        }
    }

    fn mix(self) -> Mix {
        let pages = self
            .requests
            .iter()
            .zip(&self.answers)
            .map(|(r, a)| pages_touched(r, a))
            .fold(0, u64::saturating_add);
        Mix {
            requests: self.requests,
            answers: self.answers,
            pages,
        }
    }
}

/// Seconds to run the whole mix in-process on a new simulated machine
/// (the machine's making not counted).
fn in_process(config: &VmConfig, mix: &Mix) -> f64 {
    let mut m = machine(config);
    let requests = mix.requests.clone();
    let t = Instant::now();
    for r in requests {
        std::hint::black_box(vmm_core::dispatch::handle(&mut m, r));
    }
    t.elapsed().as_secs_f64()
}

/// Seconds to run the whole mix on a freshly booted guest in batches of
/// `batch`, and how many answers equal the in-process ones.
async fn in_guest(config: &VmConfig, mix: &Mix, batch: usize) -> Result<(f64, usize)> {
    let mut vm = Vm::boot(config).await?;
    vm.hello().await?;
    let mut secs = 0.0;
    let mut answers = Vec::with_capacity(mix.requests.len());
    for chunk in mix.requests.chunks(batch.max(1)) {
        let t = Instant::now();
        answers.extend(send(&mut vm, chunk.to_vec()).await?);
        secs += t.elapsed().as_secs_f64();
    }
    vm.shutdown().await?;
    let same = answers
        .iter()
        .zip(&mix.answers)
        .filter(|(a, b)| a == b)
        .count();
    Ok((secs, same))
}

/// The mix's rates in the guest and in-process, side by side, with their
/// ratio, how many answers agreed (`plan.runs` runs of each) and how many
/// operations reclaimed, as figures of `section`.
pub async fn figures(
    config: &VmConfig,
    plan: &BenchPlan,
    mix: &Mix,
    section: Section,
) -> Result<Vec<Figure>> {
    let n = mix.requests.len().max(1) as f64;
    let (mut guest, mut host, mut same) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.runs.max(1) {
        let (secs, agreed) = in_guest(config, mix, plan.mix_batch).await?;
        guest.push(secs);
        same.push(100.0 * agreed as f64 / n);
        host.push(in_process(config, mix));
    }
    let rate = |v: &[f64], of: f64| v.iter().map(|s| of / s.max(1e-9)).collect::<Vec<_>>();
    let tag = Tag::of(section, config);
    let host_tag = tag.with(Some(Link::InProcess));
    let batch = plan.mix_batch;
    let mut out = Vec::new();
    let g = tag.median(
        format!("in guest (batches of {batch}): operations"),
        Unit::OpsPerSec,
        &rate(&guest, n),
    );
    let h = host_tag.median(
        "in process (vmm-core sim): operations",
        Unit::OpsPerSec,
        &rate(&host, n),
    );
    out.extend(g.clone());
    out.extend(h.clone());
    out.extend(tag.median(
        format!("in guest (batches of {batch}): pages touched"),
        Unit::PagesPerSec,
        &rate(&guest, mix.pages as f64),
    ));
    out.extend(host_tag.median(
        "in process (vmm-core sim): pages touched",
        Unit::PagesPerSec,
        &rate(&host, mix.pages as f64),
    ));
    if let (Some(g), Some(h)) = (g, h) {
        out.push(tag.value(
            "in guest / in process (operations/s)",
            Unit::Ratio,
            g.value / h.value.max(1e-9),
            g.samples.min(h.samples),
        ));
    }
    out.extend(tag.median("answers equal in both", Unit::Percent, &same));
    out.push(host_tag.value(
        "operations that reclaimed memory first",
        Unit::Ops,
        mix.reclaimed() as f64,
        1,
    ));
    Ok(out)
}

/// One request alone (as a single frame), more as a `Batch`.
pub async fn send(
    vm: &mut Vm,
    mut requests: Vec<Request>,
) -> Result<Vec<protocol::Response>, RpcError> {
    if requests.len() == 1 {
        let one = requests.pop().expect("one");
        return Ok(vec![vm.call(one).await?]);
    }
    vm.batch(requests).await
}

/// The generator of `seed` for `ops` operations of the fuzzer's default mix
/// on `config`'s guest (its RAM size and files).
pub(super) fn generator(config: &VmConfig, ops: usize, seed: u64) -> trace::Generator {
    trace::Generator::new(seed, gen_config(config, ops))
}

/// The generator's default configuration for `ops` operations on
/// `config`'s guest.
fn gen_config(config: &VmConfig, ops: usize) -> trace::GenConfig {
    trace::GenConfig {
        ops,
        ram_mib: config.ram_mib,
        files: config.files.clone(),
        ..trace::GenConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accel::Accel;

    #[test]
    fn the_recorded_mix_is_the_generators_and_in_process_replays_it() {
        let mut config = VmConfig::new("qemu".into(), "kernel".into(), Accel::Tcg);
        config.ram_mib = 16;
        config.files = trace::files_of_pages(&[4]);
        let a = Mix::record(&config, 200, 7);
        let b = Mix::record(&config, 200, 7);
        assert_eq!(a.requests.len(), 200);
        assert_eq!(a.requests, b.requests, "the same seed, the same mix");
        assert_eq!(a.answers.len(), 200);
        assert!(a.pages > 0, "the default mix names pages");
        assert_ne!(a.requests, Mix::record(&config, 200, 8).requests);
        assert!(in_process(&config, &a) > 0.0);
    }

    #[test]
    fn a_campaigns_mix_runs_its_sequences_with_resets_and_reaches_pressure() {
        let mut config = VmConfig::new("qemu".into(), "kernel".into(), Accel::Tcg);
        config.ram_mib = 16;
        config.files = trace::files_of_pages(&[24, 600]);
        let a = Mix::record_campaign(&config, 3000, 0xbe7c_0001);
        assert_eq!(a.requests.len(), 3000);
        assert_eq!(
            a.requests,
            Mix::record_campaign(&config, 3000, 0xbe7c_0001).requests
        );
        let resets = a
            .requests
            .iter()
            .filter(|r| matches!(r, Request::Reset { .. }))
            .count();
        assert!(resets >= 2, "sequences are separated by resets: {resets}");
        assert!(a.reclaimed() > 0, "16 MiB under a campaign's mix reclaims");
    }
}
