//! What the generator is asked for: how many operations, for how much guest
//! RAM, and how often each kind.

use std::collections::BTreeMap;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::ser::SerializeMap;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::files::FileSpec;
pub use crate::files::{files_of_pages, DEFAULT_FILE_PAGES};
use crate::op::OpKind;

/// Relative weight of each operation kind (index: [`OpKind`] as `usize`).
/// In a trace header: a map from operation name to weight, kinds at 0
/// left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights(pub [u32; OpKind::COUNT]);

impl Serialize for Weights {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for k in OpKind::ALL {
            if self.get(k) > 0 {
                map.serialize_entry(k.name(), &self.get(k))?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Weights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, u32>::deserialize(d)?;
        let mut w = Weights([0; OpKind::COUNT]);
        for (name, weight) in map {
            let Some(&k) = OpKind::ALL.iter().find(|k| k.name() == name) else {
                return Err(de::Error::custom(format!(
                    "unknown operation `{name}` in weights (expected one of: {})",
                    OpKind::NAMES.join(", ")
                )));
            };
            w = w.set(k, weight);
        }
        Ok(w)
    }
}

impl Weights {
    pub fn get(&self, k: OpKind) -> u32 {
        self.0[k as usize]
    }

    pub fn set(mut self, k: OpKind, w: u32) -> Self {
        self.0[k as usize] = w;
        self
    }

    /// Every kind equally likely (`panic` included).
    pub fn uniform() -> Self {
        Weights([1; OpKind::COUNT])
    }

    /// Swarm testing (Groce et al., ISSTA 2012): weights drawn from these,
    /// one set per sequence. Each kind with a weight stays on with
    /// probability 0.7 and one or two of those left become dominant (×6),
    /// so some sequences never free what they map, others do little but
    /// convert. `map` and `write` always stay on: a sequence with nothing
    /// mapped or written exercises only refusals.
    pub fn swarm(self, rng: &mut impl Rng) -> Self {
        let mut w = self;
        let mut on = Vec::new();
        for k in OpKind::ALL {
            if w.get(k) == 0 {
                continue;
            }
            if matches!(k, OpKind::Map | OpKind::Write) || rng.random_bool(0.7) {
                on.push(k);
            } else {
                w = w.set(k, 0);
            }
        }
        for _ in 0..rng.random_range(1..=2) {
            if let Some(&k) = on.choose(rng) {
                w = w.set(k, w.get(k).saturating_mul(6));
            }
        }
        w
    }
}

impl Default for Weights {
    /// Mostly memory operations; no `panic` (it would end every run).
    fn default() -> Self {
        // hello ping panic map unmap convert write read query alloc free valloc vfree stats reset
        // map_file evict kmalloc kfree heap_scavenge create_space switch_space destroy_space share
        Weights([
            1, 1, 0, 20, 12, 14, 14, 10, 6, 5, 5, 3, 3, 3, 1, 8, 4, 5, 4, 2, 2, 4, 1, 3,
        ])
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// Operations of a whole trace ([`crate::generate()`]).
    pub ops: usize,
    /// Guest RAM in MiB: sizes are drawn to press on it.
    pub ram_mib: u32,
    pub weights: Weights,
    /// The files the guest boots with, which `map_file` aims at (the trace
    /// header records them, so a replay boots with the same).
    pub files: Vec<FileSpec>,
    /// Each sequence draws its own weights and length from its seed
    /// ([`GenConfig::for_sequence`]).
    pub swarm: bool,
    /// From this operation on, the generator keeps the frame allocator
    /// near empty ([`crate::Generator`]'s pressure pattern): everything
    /// after runs with no frame to spare, where the kernel must still
    /// answer from its reserve.
    pub drain_from: Option<usize>,
}

/// The share of swarm sequences that drain the frame allocator part way
/// through.
const DRAINING: f64 = 0.2;

/// How a swarm sequence's length relates to [`GenConfig::ops`]: mostly
/// that, sometimes 5× or 25× as deep (a deep one never resets itself).
const DEPTHS: [(u32, usize); 3] = [(70, 1), (20, 5), (10, 25)];

impl GenConfig {
    /// The configuration sequence `seed` runs with: this one, or with
    /// swarm on, weights and a length drawn from the seed alone (a
    /// separate stream from the generator's, so the same seed always
    /// gives the same sequence).
    pub fn for_sequence(&self, seed: u64) -> GenConfig {
        if !self.swarm {
            return self.clone();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5a4d_5741_524d_0001);
        let mut weights = self.weights.swarm(&mut rng);
        let total: u32 = DEPTHS.iter().map(|d| d.0).sum();
        let mut roll = rng.random_range(0..total);
        let mut depth = 1;
        for (p, d) in DEPTHS {
            if roll < p {
                depth = d;
                break;
            }
            roll -= p;
        }
        if depth > 1 {
            weights = weights.set(OpKind::Reset, 0);
        }
        let ops = self.ops.saturating_mul(depth);
        // Drawn last, so the weights and length of a seed stay as they were.
        let drain_from = rng
            .random_bool(DRAINING)
            .then(|| rng.random_range(0..=ops / 2));
        GenConfig {
            ops,
            weights,
            swarm: false,
            drain_from,
            ..self.clone()
        }
    }
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            ops: 200,
            ram_mib: 128,
            weights: Weights::default(),
            files: files_of_pages(&DEFAULT_FILE_PAGES),
            swarm: false,
            drain_from: None,
        }
    }
}
