//! The files a guest boots with (`-initrd`), as a trace header and the
//! generator name them: each a page count and the seed of its bytes.

use serde::{Deserialize, Serialize};
use serde_with::serde_as;

use crate::numbers::{Count, Hex};

/// A file image the host builds: `pages` pages whose byte at file offset
/// `o` is `protocol::pattern::pattern_byte(seed, o)`. In a header:
/// `"files":[{"pages":16,"seed":"0x1"}]`.
#[serde_as]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    #[serde_as(as = "Count")]
    pub pages: u64,
    #[serde(default)]
    #[serde_as(as = "Hex")]
    pub seed: u64,
}

/// Page counts of the files a campaign boots with unless told otherwise:
/// one small file, and one that crosses a 2 MiB table (512 pages).
pub const DEFAULT_FILE_PAGES: [u64; 2] = [24, 600];

/// The files of these page counts: file `i`'s contents come from seed
/// `0xf11e_0000 + i`, so a page count list names the files completely.
pub fn files_of_pages(pages: &[u64]) -> Vec<FileSpec> {
    pages
        .iter()
        .zip(0xf11e_0000u64..)
        .map(|(&pages, seed)| FileSpec { pages, seed })
        .collect()
}
