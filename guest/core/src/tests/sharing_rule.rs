//! The sharing rule of `protocol::formats`, as [`super::check`] checks it
//! over the leaves of every live space: a present shared entry read by the
//! format's own words, apart from the VMM's `pte` (until the oracle's
//! walker knows the `0b101` entry), and each shared frame's frame-info
//! record against the entries that name it.

use std::collections::{BTreeMap, HashSet};

use super::SimMachine;
use crate::backend::FrameAccess;
use crate::frame_alloc::FrameAllocator as _;

/// A present shared leaf as `protocol::formats` writes it (`P=1`, bits
/// 9–11 = `0b101`, U set, NX set, no other flag, nothing in bits 52–62,
/// the lower half only), read apart from the VMM's `pte`: its frame number
/// and W bit.
pub(super) fn shared_leaf(raw: u64, user: bool) -> Option<(u64, bool)> {
    let flags_ok = raw & ((1 << 3) | (1 << 4) | (1 << 7) | (1 << 8)) == 0;
    let shape = raw & 1 != 0 && (raw >> 9) & 0b111 == 0b101 && raw & (1 << 63) != 0;
    let high_ok = raw & 0x7ff0_0000_0000_0000 == 0;
    (shape && flags_ok && high_ok && user && raw & 0b100 != 0)
        .then_some(((raw & 0x000f_ffff_ffff_f000) >> 12, raw & 0b10 != 0))
}

/// The sharing rule (`protocol::formats`): every shared frame's entries
/// (`shared`, over every live space) have one W bit, and its frame-info
/// record is `1 << 62 | n`, `n` their number; no other frame has a shared
/// record.
pub(super) fn check_shared(m: &mut SimMachine, shared: &BTreeMap<u64, (u64, HashSet<bool>)>) {
    for (f, (n, w)) in shared {
        assert_eq!(w.len(), 1, "shared frame {f} mapped with both W bits");
        assert_eq!(
            frame_record(m, *f),
            1 << 62 | n,
            "shared frame {f}'s record (mapped by {n} entries)"
        );
    }
    let total = m.vmm.frames().total_frames();
    for f in (0..total).filter(|f| !shared.contains_key(f)) {
        let r = frame_record(m, f);
        assert!(
            r & (3 << 62) != 1 << 62,
            "frame {f} has the shared record {r:#x} and no shared entry"
        );
    }
}

/// The raw frame-info record of frame number `f` (`protocol::formats`:
/// 8 bytes per frame from the table's start).
pub(crate) fn frame_record(m: &mut SimMachine, f: u64) -> u64 {
    let range = m.vmm.frame_info_range();
    if range.start == range.end {
        return 0;
    }
    let at = range.start + 8 * f;
    let bytes = m.vmm.mem().frame_bytes(crate::frames::frame_at(at / 4096));
    let o = crate::conv::usize_of(at % 4096);
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[o..o + 8]);
    u64::from_le_bytes(w)
}
