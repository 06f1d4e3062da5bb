//! Choosing the accelerator: KVM or TCG.
//!
//! `/dev/kvm` working does not mean KVM is fast: on the project's machines it
//! is a software-nested KVM with shadow paging, 10–100× slower than TCG for
//! this workload (port I/O and page faults), while on a machine with
//! hardware virtualization KVM wins. So `auto` measures: it boots the guest
//! under each and times the boot, single round trips and a batch, picks the
//! faster, logs the figures, and caches the verdict keyed by QEMU's version,
//! the host kernel and the CPU model.

use std::path::Path;
use std::time::Duration;

use crate::error::Result;
use crate::qemu::LaunchError;
use crate::session::VmConfig;

mod cache;
mod probe;
pub use cache::{cache_file, cache_key};
use cache::{read_cache, write_cache};
use probe::ms;
pub use probe::{
    expect_pong, ping_batch, probe, vmm_workload, Probe, PROBE_BATCH, PROBE_ROUND_TRIPS,
    PROBE_VMM_PAGES, PROBE_VMM_ROUNDS,
};

pub use crate::qemu::Accel;

/// What `--accel` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// Measure both (once per machine, then cached) and take the faster.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// The accelerator chosen, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub accel: Accel,
    pub reason: String,
    /// The chosen accelerator's probe time ([`Probe::score`]), when it
    /// was measured: request timeouts scale with it.
    pub score: Option<Duration>,
}

/// How many times its whole probe one request may take on an accelerator
/// before it is a hang: 100× (TCG's probe here takes about 60 ms, so the
/// 10 s default stands; a nested software KVM's takes 0.5–2 s, which gives
/// 50–200 s).
pub const TIMEOUT_PER_PROBE: u32 = 100;

impl Verdict {
    /// The request timeout on this accelerator: `default`, or more when
    /// its measured speed says requests are slow here
    /// ([`TIMEOUT_PER_PROBE`] times its probe).
    pub fn request_timeout(&self, default: Duration) -> Duration {
        self.score
            .map_or(default, |s| default.max(s * TIMEOUT_PER_PROBE))
    }
}

/// Whether `/dev/kvm` can be opened for reading and writing.
pub fn kvm_usable() -> std::result::Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(drop)
        .map_err(|e| format!("/dev/kvm: {e}"))
}

/// The accelerators that can run here (TCG always).
pub fn available() -> Vec<Accel> {
    match kvm_usable() {
        Ok(()) => vec![Accel::Kvm, Accel::Tcg],
        Err(_) => vec![Accel::Tcg],
    }
}

/// Turns `--accel` into an accelerator. `base` is the configuration the
/// measurement boots with (its `accel` is ignored); `qemu_version` keys the
/// cache kept in the file `cache` ([`cache_file`] by default);
/// `remeasure` ignores a cached verdict.
pub async fn resolve(
    choice: AccelChoice,
    base: &VmConfig,
    qemu_version: &str,
    cache: Option<&Path>,
    remeasure: bool,
) -> Result<Verdict> {
    match choice {
        AccelChoice::Tcg => Ok(Verdict {
            accel: Accel::Tcg,
            reason: "asked for with --accel tcg".into(),
            score: None,
        }),
        AccelChoice::Kvm => match kvm_usable() {
            Ok(()) => Ok(Verdict {
                accel: Accel::Kvm,
                reason: "asked for with --accel kvm".into(),
                score: None,
            }),
            Err(reason) => Err(LaunchError::AccelUnavailable {
                accel: "kvm".into(),
                reason: format!("{reason} (use --accel tcg or auto)"),
            }
            .into()),
        },
        AccelChoice::Auto => {
            if let Err(reason) = kvm_usable() {
                return Ok(Verdict {
                    accel: Accel::Tcg,
                    reason: format!("KVM not usable ({reason})"),
                    score: None,
                });
            }
            let key = cache_key(qemu_version);
            if !remeasure {
                if let Some(v) = cache.and_then(|f| read_cache(f, &key)) {
                    return Ok(v);
                }
            }
            let verdict = measure_both(base).await?;
            if let Some(file) = cache {
                match write_cache(file, &key, &verdict) {
                    Ok(()) => tracing::debug!("accel verdict cached in {}", file.display()),
                    Err(e) => tracing::warn!(
                        "could not cache the accel verdict in {}: {e}",
                        file.display()
                    ),
                }
            }
            Ok(verdict)
        }
    }
}

async fn measure_both(base: &VmConfig) -> Result<Verdict> {
    tracing::info!("accel: measuring KVM and TCG (once for this machine, then cached)");
    let tcg = probe(base, Accel::Tcg).await?;
    // KVM need not finish once it has clearly lost.
    let budget = kvm_budget(tcg);
    let kvm = match tokio::time::timeout(budget, probe(base, Accel::Kvm)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            return Ok(Verdict {
                accel: Accel::Tcg,
                reason: format!("KVM failed to run the guest ({e}); tcg: {tcg}"),
                score: Some(tcg.score()),
            })
        }
        Err(_) => {
            return Ok(Verdict {
                accel: Accel::Tcg,
                reason: format!(
                    "kvm did not finish the probe within {:.0} ms; tcg: {tcg}",
                    ms(budget)
                ),
                score: Some(tcg.score()),
            })
        }
    };
    Ok(decide(kvm, tcg))
}

/// How long KVM's probe may take: ten times TCG's, at least two seconds.
pub fn kvm_budget(tcg: Probe) -> Duration {
    (tcg.score() * 10).max(Duration::from_secs(2))
}

/// Picks the faster of two probes.
pub fn decide(kvm: Probe, tcg: Probe) -> Verdict {
    let (accel, fast, slow) = if kvm.score() < tcg.score() {
        (Accel::Kvm, kvm.score(), tcg.score())
    } else {
        (Accel::Tcg, tcg.score(), kvm.score())
    };
    let ratio = slow.as_secs_f64() / fast.as_secs_f64().max(1e-9);
    Verdict {
        accel,
        reason: format!("measured {ratio:.1}× faster — kvm: {kvm}; tcg: {tcg}"),
        score: Some(fast),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_ms(boot: u64, rt: u64, batch: u64) -> Probe {
        Probe {
            boot: Duration::from_millis(boot),
            round_trips: Duration::from_millis(rt),
            batch: Duration::from_millis(batch),
            vmm: Duration::from_millis(batch / 2),
        }
    }

    #[test]
    fn decide_takes_the_faster() {
        // Nested software KVM: slower boot, much slower I/O.
        let v = decide(probe_ms(55, 45, 400), probe_ms(30, 4, 15));
        assert_eq!(v.accel, Accel::Tcg);
        assert!(v.reason.contains("kvm: boot 55.0 ms"), "{}", v.reason);
        // Hardware KVM.
        let v = decide(probe_ms(40, 1, 3), probe_ms(30, 4, 15));
        assert_eq!(v.accel, Accel::Kvm);
    }

    #[test]
    fn timeouts_scale_with_a_slow_accelerator() {
        let default = Duration::from_secs(10);
        // TCG here: the default stands.
        let fast = decide(probe_ms(800, 2000, 4000), probe_ms(30, 4, 15));
        assert_eq!(fast.request_timeout(default), default);
        // An accelerator measured slow (a loaded nested KVM, the only one
        // left): 100× its 1.5 s probe.
        let slow = Verdict {
            accel: Accel::Kvm,
            reason: "only one".into(),
            score: Some(Duration::from_millis(1500)),
        };
        assert_eq!(slow.request_timeout(default), Duration::from_secs(150));
        let unmeasured = Verdict {
            score: None,
            ..slow
        };
        assert_eq!(unmeasured.request_timeout(default), default);
    }
}
