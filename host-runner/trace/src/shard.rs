//! `--shard i/n`: a deterministic split of seeds between runners.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (`--shard 2/4`, 1-based): seed `k` belongs to
/// shard `k % count + 1`, so shards split any run of seeds evenly and
/// never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Every seed in one shard.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    pub fn contains(&self, seed: u64) -> bool {
        seed % self.count + 1 == self.index
    }

    /// This shard's seeds from `first` on, in order.
    pub fn seeds(self, first: u64) -> impl Iterator<Item = u64> {
        (first..=u64::MAX).filter(move |&s| self.contains(s))
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected a shard as i/n with 1 <= i <= n, like 2/4, got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index = i.trim().parse::<u64>().map_err(|_| bad())?;
        let count = n.trim().parse::<u64>().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
