//! Choosing the accelerator: KVM or TCG.
//!
//! `/dev/kvm` working does not mean KVM is fast: on the project's machines it
//! is a software-nested KVM with shadow paging, 10–100× slower than TCG for
//! this workload (port I/O and page faults), while on a machine with
//! hardware virtualization KVM wins. So `auto` measures: it boots the guest
//! under each and times the boot, single round trips and a batch, picks the
//! faster, logs the figures, and caches the verdict keyed by QEMU's version,
//! the host kernel and the CPU model.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::{AreaType, Privilege, Request, Response};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::session::{Vm, VmConfig};

/// An accelerator QEMU can run the guest with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// The name QEMU's `-accel` takes.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    fn from_name(name: &str) -> Option<Accel> {
        match name {
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qemu_name())
    }
}

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
        }),
        AccelChoice::Kvm => match kvm_usable() {
            Ok(()) => Ok(Verdict {
                accel: Accel::Kvm,
                reason: "asked for with --accel kvm".into(),
            }),
            Err(reason) => Err(Error::AccelUnavailable {
                accel: "kvm".into(),
                reason: format!("{reason} (use --accel tcg or auto)"),
            }),
        },
        AccelChoice::Auto => {
            if let Err(reason) = kvm_usable() {
                return Ok(Verdict {
                    accel: Accel::Tcg,
                    reason: format!("KVM not usable ({reason})"),
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

fn ms(d: Duration) -> f64 {
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
    let t = Instant::now();
    let answers = vm
        .batch(
            (0..PROBE_BATCH)
                .map(|nonce| Request::Ping { nonce })
                .collect(),
        )
        .await?;
    let batch = t.elapsed();
    for (nonce, a) in (0..PROBE_BATCH).zip(answers) {
        expect_pong(a, nonce)?;
    }
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
    (0..PROBE_VMM_ROUNDS)
        .flat_map(|seed| {
            [
                Request::Map {
                    addr,
                    pages,
                    writable: true,
                    contiguous: false,
                    privilege,
                },
                Request::Write {
                    addr,
                    len,
                    seed,
                    privilege,
                },
                Request::Read {
                    addr,
                    len,
                    privilege,
                },
                Request::Convert {
                    addr,
                    pages,
                    to: AreaType::Unusable,
                    privilege,
                },
                Request::Convert {
                    addr,
                    pages,
                    to: AreaType::UsableRam,
                    privilege,
                },
                Request::Write {
                    addr,
                    len,
                    seed,
                    privilege,
                },
                Request::Unmap {
                    addr,
                    pages,
                    privilege,
                },
            ]
        })
        .collect()
}

/// Checks that `answer` is `Pong { nonce }`.
pub fn expect_pong(answer: Response, nonce: u64) -> Result<()> {
    match answer {
        Response::Pong { nonce: n } if n == nonce => Ok(()),
        other => Err(Error::UnexpectedResponse {
            request: format!("Ping {{ nonce: {nonce} }}"),
            response: Box::new(other),
        }),
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
            })
        }
        Err(_) => {
            return Ok(Verdict {
                accel: Accel::Tcg,
                reason: format!(
                    "kvm did not finish the probe within {:.0} ms; tcg: {tcg}",
                    ms(budget)
                ),
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
    }
}

/// What the cached verdict depends on.
pub fn cache_key(qemu_version: &str) -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    format!("{qemu_version} | linux {} | {cpu}", kernel.trim())
}

/// `$VMMFUZZ_CACHE_DIR`, else `$XDG_CACHE_HOME/vmmfuzz`, else
/// `~/.cache/vmmfuzz`; the file `accel.json` in it.
pub fn cache_file() -> Option<PathBuf> {
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = env("VMMFUZZ_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("vmmfuzz")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/vmmfuzz")))?;
    Some(dir.join("accel.json"))
}

fn read_cache(file: &Path, key: &str) -> Option<Verdict> {
    let text = std::fs::read_to_string(file).ok()?;
    let all: Value = serde_json::from_str(&text).ok()?;
    let entry = all.get(key)?;
    let accel = Accel::from_name(entry.get("accel")?.as_str()?)?;
    let why = entry.get("reason")?.as_str()?;
    Some(Verdict {
        accel,
        reason: format!("cached verdict ({}): {why}", file.display()),
    })
}

fn write_cache(file: &Path, key: &str, verdict: &Verdict) -> std::io::Result<()> {
    let mut all: Value = std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let when = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    all[key] = json!({ "accel": verdict.accel.qemu_name(), "reason": verdict.reason, "measured_at": when });
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&all)?)?;
    std::fs::rename(tmp, file)
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
    fn cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/accel.json");
        assert_eq!(read_cache(&file, "k"), None);
        let v = Verdict {
            accel: Accel::Kvm,
            reason: "because".into(),
        };
        write_cache(&file, "k", &v).unwrap();
        write_cache(
            &file,
            "other",
            &Verdict {
                accel: Accel::Tcg,
                reason: "x".into(),
            },
        )
        .unwrap();
        let back = read_cache(&file, "k").unwrap();
        assert_eq!(back.accel, Accel::Kvm);
        assert!(back.reason.contains("because") && back.reason.contains("cached"));
        assert_eq!(read_cache(&file, "other").unwrap().accel, Accel::Tcg);
        assert_eq!(read_cache(&file, "missing"), None);
    }

    #[test]
    fn cache_key_names_qemu_and_kernel() {
        let k = cache_key("QEMU emulator version 7.2.22");
        assert!(k.starts_with("QEMU emulator version 7.2.22 | linux "));
    }
}
