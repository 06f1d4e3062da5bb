//! Sampled stacks, named, folded: each function's share of the samples
//! (inclusive: anywhere on the stack; self: the leaf), the hottest
//! leaf<-caller pairs, and the folded stacks flame graph tools read.

use std::collections::{BTreeMap, HashSet};

use super::sampler::Samples;
use super::symbols::{Symbolizer, UNKNOWN};

/// Frames of a stack that says the chain was walked (the guest's RPC
/// loop, its entry and the boot code are three).
pub const DEEP: usize = 3;

/// The folded stacks' frame for a CPU halted in `hlt`.
pub const HALTED: &str = "[halted]";
/// The folded stacks' frame for a guest paused by the campaign.
pub const PAUSED: &str = "[paused by host]";
/// The guest's spin for the host's next request (`guest/kernel/src/rpc.rs`,
/// never inlined): a sample with it on the stack is the guest waiting for
/// the host, as in `hlt`, only spinning (`protocol::ring::SPIN_TICKS`).
pub const SPIN: &str = "vmmfuzz_kernel::rpc::spin_for_request";

/// One function's samples.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FunctionCount {
    pub function: String,
    /// Samples with it anywhere on the stack (once per sample).
    pub inclusive: u64,
    /// Samples with it as the leaf.
    #[serde(rename = "self")]
    pub self_: u64,
}

/// A leaf and its caller, and their samples.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PairCount {
    pub leaf: String,
    pub caller: String,
    pub samples: u64,
}

/// The named profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Profile {
    /// All samples: stacks, halted and paused.
    pub samples: u64,
    pub halted: u64,
    pub paused: u64,
    /// Stack samples in the guest's spin for the next request ([`SPIN`]
    /// on the stack): waiting for the host, not work.
    pub spinning: u64,
    /// Stack samples with a function of the guest's crates on the stack
    /// (`vmm_core::…`, `vmmfuzz_kernel::…`).
    pub in_guest_crates: u64,
    /// Stack samples whose leaf nothing names.
    pub unknown_leaves: u64,
    /// Stack samples at least [`DEEP`] frames deep: few, and the kernel
    /// keeps no frame pointers.
    pub deep: u64,
    /// Every function seen, most inclusive samples first (then by name).
    pub functions: Vec<FunctionCount>,
    /// Every leaf<-caller pair, most samples first.
    pub pairs: Vec<PairCount>,
    /// Root-first stacks (`;`-joined) and their samples, by stack.
    #[serde(skip)]
    pub folded: BTreeMap<String, u64>,
}

impl Profile {
    /// Names and folds `samples`.
    pub fn build(samples: &Samples, symbols: &mut Symbolizer) -> Profile {
        let named = samples
            .stacks
            .iter()
            .map(|(frames, &n)| (symbols.stack(frames), n));
        Profile::of_named(named, samples.halted, samples.paused)
    }

    /// Folds stacks already named (leaf first).
    pub fn of_named(
        stacks: impl IntoIterator<Item = (Vec<String>, u64)>,
        halted: u64,
        paused: u64,
    ) -> Profile {
        let mut inclusive: BTreeMap<String, u64> = BTreeMap::new();
        let mut leaf: BTreeMap<String, u64> = BTreeMap::new();
        let mut pairs: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut folded: BTreeMap<String, u64> = BTreeMap::new();
        let mut samples = halted + paused;
        let (mut in_guest_crates, mut unknown_leaves, mut deep, mut spinning) = (0, 0, 0, 0);
        for (names, n) in stacks {
            let Some(first) = names.first() else { continue };
            samples += n;
            if names.iter().any(|f| guest_crate(f)) {
                in_guest_crates += n;
            }
            if first == UNKNOWN {
                unknown_leaves += n;
            }
            if names.iter().any(|f| f == SPIN) {
                spinning += n;
            }
            if names.len() >= DEEP {
                deep += n;
            }
            *leaf.entry(first.clone()).or_default() += n;
            let distinct: HashSet<&String> = names.iter().collect();
            for f in distinct {
                *inclusive.entry(f.clone()).or_default() += n;
            }
            if let Some(caller) = names.get(1) {
                *pairs.entry((first.clone(), caller.clone())).or_default() += n;
            }
            let root_first: Vec<&str> = names.iter().rev().map(String::as_str).collect();
            *folded.entry(root_first.join(";")).or_default() += n;
        }
        for (frame, n) in [(HALTED, halted), (PAUSED, paused)] {
            if n > 0 {
                folded.insert(frame.to_owned(), n);
            }
        }
        let mut functions: Vec<FunctionCount> = inclusive
            .into_iter()
            .map(|(function, inclusive)| FunctionCount {
                self_: leaf.get(&function).copied().unwrap_or(0),
                function,
                inclusive,
            })
            .collect();
        functions.sort_by(|a, b| b.inclusive.cmp(&a.inclusive).then(b.self_.cmp(&a.self_)));
        let mut pairs: Vec<PairCount> = pairs
            .into_iter()
            .map(|((leaf, caller), samples)| PairCount {
                leaf,
                caller,
                samples,
            })
            .collect();
        pairs.sort_by_key(|p| std::cmp::Reverse(p.samples));
        Profile {
            samples,
            halted,
            paused,
            spinning,
            in_guest_crates,
            unknown_leaves,
            deep,
            functions,
            pairs,
            folded,
        }
    }

    /// The functions by self samples, most first (only those with any).
    pub fn by_self(&self) -> Vec<&FunctionCount> {
        let mut v: Vec<&FunctionCount> = self.functions.iter().filter(|f| f.self_ > 0).collect();
        v.sort_by(|a, b| b.self_.cmp(&a.self_).then(b.inclusive.cmp(&a.inclusive)));
        v
    }

    /// The folded stacks file: `root;…;leaf count` per line.
    pub fn folded_text(&self) -> String {
        self.folded
            .iter()
            .map(|(stack, n)| format!("{stack} {n}\n"))
            .collect()
    }
}

/// Whether `function` is the guest's own code (its VMM or its kernel).
pub fn guest_crate(function: &str) -> bool {
    ["vmm_core::", "vmmfuzz_kernel::"]
        .iter()
        .any(|c| function.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn profile() -> Profile {
        Profile::of_named(
            [
                // Leaf first; walk_table recursing into itself.
                (stack(&["walk", "walk", "dispatch", "kmain"]), 6),
                (stack(&["set_leaf", "walk", "dispatch", "kmain"]), 3),
                (stack(&["dispatch", "kmain"]), 1),
            ],
            8,
            2,
        )
    }

    #[test]
    fn inclusive_counts_a_function_once_per_sample_and_self_its_leaves() {
        let p = profile();
        assert_eq!((p.samples, p.halted, p.paused), (20, 8, 2));
        let f = |name: &str| p.functions.iter().find(|f| f.function == name).unwrap();
        assert_eq!((f("walk").inclusive, f("walk").self_), (9, 6));
        assert_eq!((f("kmain").inclusive, f("kmain").self_), (10, 0));
        assert_eq!((f("dispatch").inclusive, f("dispatch").self_), (10, 1));
        assert_eq!(p.functions[0].function, "dispatch", "ties: more self first");
        let by_self: Vec<&str> = p.by_self().iter().map(|f| f.function.as_str()).collect();
        assert_eq!(by_self, ["walk", "set_leaf", "dispatch"]);
    }

    #[test]
    fn pairs_are_leaf_and_caller() {
        let p = profile();
        assert_eq!(
            p.pairs[0],
            PairCount {
                leaf: "walk".into(),
                caller: "walk".into(),
                samples: 6
            }
        );
        assert_eq!(p.pairs.len(), 3);
        assert_eq!(p.pairs.iter().map(|p| p.samples).sum::<u64>(), 10);
    }

    #[test]
    fn folded_stacks_are_root_first_with_halted_and_paused_frames() {
        let text = profile().folded_text();
        assert_eq!(
            text,
            "[halted] 8\n[paused by host] 2\nkmain;dispatch 1\n\
             kmain;dispatch;walk;set_leaf 3\nkmain;dispatch;walk;walk 6\n"
        );
        let total: u64 = text
            .lines()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, 20);
    }

    #[test]
    fn samples_in_the_guests_crates_and_unknown_leaves_are_counted() {
        let p = Profile::of_named(
            [
                (stack(&["memset", "vmm_core::walk::walk_table", "kmain"]), 4),
                (stack(&["<vmmfuzz_kernel::machine::Kernel as X>::touch"]), 2),
                (stack(&[UNKNOWN, "kmain"]), 3),
            ],
            1,
            0,
        );
        assert_eq!((p.samples, p.in_guest_crates, p.unknown_leaves), (10, 6, 3));
        assert_eq!(p.deep, 4);
        assert!(!guest_crate("kmain") && guest_crate("vmm_core::dispatch"));
    }

    #[test]
    fn nothing_sampled_is_an_empty_profile() {
        let p = Profile::of_named([], 0, 0);
        assert_eq!(p, Profile::default());
        assert_eq!(p.folded_text(), "");
    }
}
