//! The profile as text (what `profile` prints and keeps in
//! `profile.txt`) and as JSON (`--json`).

use std::fmt::Write as _;
use std::path::Path;

use super::fold::Profile;
use super::sampler::Samples;

/// Functions listed by inclusive share.
pub const TOP_INCLUSIVE: usize = 30;
/// Functions listed by self share.
pub const TOP_SELF: usize = 15;
/// Leaf<-caller pairs listed.
pub const TOP_PAIRS: usize = 15;

/// `part` of `whole` as a percentage (0 when `whole` is).
fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// How the sampling went: samples, rate, guests, monitor errors.
pub fn sampling_lines(samples: &Samples) -> String {
    let secs = samples.sampling_time.as_secs_f64();
    let rate = if secs > 0.0 {
        samples.total() as f64 / secs
    } else {
        0.0
    };
    let mut s = format!(
        "profile: {} samples in {secs:.1} s ({rate:.0}/s) from {} guest(s), one after the other\n",
        samples.total(),
        samples.connections
    );
    if samples.unreadable > 0 {
        let _ = writeln!(
            s,
            "unreadable answers (not counted): {}",
            samples.unreadable
        );
    }
    for e in &samples.errors {
        let _ = writeln!(s, "monitor error (connected again): {e}");
    }
    s
}

/// The profile's text: shares of all samples.
pub fn text(profile: &Profile, samples: &Samples, kernel: &Path) -> String {
    let all = profile.samples;
    let busy = all - profile.halted - profile.paused;
    let mut s = sampling_lines(samples);
    let _ = writeln!(s, "kernel: {}", kernel.display());
    let _ = writeln!(
        s,
        "halted: {:.1}% (in hlt: the guest waits for the host); paused by the host: {:.1}%; \
         running: {:.1}%, of which spinning for the host's next request: {:.1}% (waiting too)",
        pct(profile.halted, all),
        pct(profile.paused, all),
        pct(busy, all),
        pct(profile.spinning, all)
    );
    if busy > 0 {
        let _ = writeln!(
            s,
            "running samples in the guest's crates (vmm_core, vmmfuzz_kernel): {:.1}%; \
             leaf unknown: {:.1}%",
            pct(profile.in_guest_crates, busy),
            pct(profile.unknown_leaves, busy)
        );
        if profile.deep * 2 < busy {
            let _ = writeln!(
                s,
                "warning: {:.0}% of the stacks are under {} frames deep: does this kernel keep \
                 frame pointers? (profile builds one unless --kernel names another)",
                pct(busy - profile.deep, busy),
                super::fold::DEEP
            );
        }
    }
    let _ = writeln!(s, "\ntop functions by inclusive share (% of all samples)");
    let _ = writeln!(s, "  incl    self  function");
    for f in profile.functions.iter().take(TOP_INCLUSIVE) {
        let (i, x) = (pct(f.inclusive, all), pct(f.self_, all));
        let _ = writeln!(s, "{i:5.1}%  {x:5.1}%  {}", f.function);
    }
    let _ = writeln!(s, "\ntop functions by self share");
    let _ = writeln!(s, "  self    incl  function");
    for f in profile.by_self().into_iter().take(TOP_SELF) {
        let (i, x) = (pct(f.inclusive, all), pct(f.self_, all));
        let _ = writeln!(s, "{x:5.1}%  {i:5.1}%  {}", f.function);
    }
    let _ = writeln!(s, "\nhottest leaf <- caller");
    for p in profile.pairs.iter().take(TOP_PAIRS) {
        let share = pct(p.samples, all);
        let _ = writeln!(s, "{share:5.1}%  {}  <-  {}", p.leaf, p.caller);
    }
    s
}

/// The profile as one JSON document (`"format":"vmmfuzz-profile"`): the
/// counts, every function and every pair (counts of samples).
pub fn json(profile: &Profile, samples: &Samples, kernel: &Path, rate: u32) -> String {
    let doc = serde_json::json!({
        "format": "vmmfuzz-profile",
        "version": 1,
        "kernel": kernel.display().to_string(),
        "rate_hz": rate,
        "sampling_secs": samples.sampling_time.as_secs_f64(),
        "guests": samples.connections,
        "guests_ended": samples.guests_ended,
        "monitor_errors": samples.errors,
        "unreadable": samples.unreadable,
        "profile": profile,
    });
    format!("{doc:#}\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::profile::fold::SPIN;

    fn example() -> (Profile, Samples) {
        let name = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let profile = Profile::of_named(
            [
                (name(&["vmm_core::walk", "vmm_core::dispatch", "kmain"]), 3),
                (name(&["memset", "vmm_core::walk", "vmm_core::dispatch"]), 1),
                (
                    name(&[
                        "vmmfuzz_kernel::ring::Ring::pending",
                        SPIN,
                        "vmmfuzz_kernel::rpc::serve",
                    ]),
                    2,
                ),
            ],
            4,
            0,
        );
        let samples = Samples {
            halted: 4,
            stacks: [(vec![1], 396)].into(),
            connections: 2,
            guests_ended: 1,
            sampling_time: Duration::from_secs(2),
            ..Samples::default()
        };
        (profile, samples)
    }

    #[test]
    fn the_text_gives_shares_of_all_samples() {
        let (profile, samples) = example();
        let text = text(&profile, &samples, Path::new("/k"));
        assert!(text.contains("(200/s) from 2 guest(s)"), "{text}");
        assert!(text.contains("halted: 40.0%"), "{text}");
        assert!(
            text.contains("running: 60.0%, of which spinning for the host's next request: 20.0%"),
            "{text}"
        );
        assert!(text.contains("guest's crates (vmm_core, vmmfuzz_kernel): 100.0%"));
        assert!(text.contains(" 40.0%   30.0%  vmm_core::walk\n"), "{text}");
        assert!(text.contains(" 30.0%  vmm_core::walk  <-  vmm_core::dispatch\n"));
        assert!(text.contains(" 10.0%   10.0%  memset\n"), "{text}");
        assert!(!text.contains("warning"), "{text}");
    }

    #[test]
    fn shallow_stacks_are_said() {
        let name = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let profile = Profile::of_named(
            [(name(&["memset"]), 3), (name(&["a", "b", "kmain"]), 1)],
            0,
            0,
        );
        let text = text(&profile, &Samples::default(), Path::new("/k"));
        assert!(
            text.contains("warning: 75% of the stacks are under 3 frames deep"),
            "{text}"
        );
    }

    #[test]
    fn the_json_holds_the_counts() {
        let (profile, samples) = example();
        let doc: serde_json::Value =
            serde_json::from_str(&json(&profile, &samples, Path::new("/k"), 100)).unwrap();
        assert_eq!(doc["format"], "vmmfuzz-profile");
        assert_eq!(doc["profile"]["samples"], 10);
        assert_eq!(doc["profile"]["halted"], 4);
        assert_eq!(doc["profile"]["spinning"], 2);
        assert_eq!(doc["profile"]["functions"][0]["function"], "vmm_core::walk");
        assert_eq!(doc["profile"]["functions"][0]["inclusive"], 4);
        assert_eq!(doc["profile"]["functions"][0]["self"], 3);
    }
}
