//! Test support: the store's bitmaps, lengths and counters checked
//! against each other.

use super::*;

impl SwapStore {
    /// Test support: checks the store's bitmaps and lengths against each
    /// other (used bits exactly the slots' units, none pending, counters
    /// right); answers the slots in use.
    pub fn check<M: PhysMemory>(&self, mem: &mut M) -> Result<u64, alloc::string::String> {
        use alloc::format;
        let s = self;
        let (mut slots, mut bytes, mut covered_to, mut used_units) = (0u64, 0u64, 0u64, 0u64);
        for u in 0..s.units {
            let len = s.raw().slot_len(mem, u);
            let used = s.used().get(mem, u);
            if s.pending().get(mem, u) {
                return Err(format!("unit {u} pending between requests"));
            }
            if len > 0 {
                if u < covered_to || len > 4096 {
                    return Err(format!("slot {u} overlaps or has length {len}"));
                }
                slots += 1;
                bytes += len;
                covered_to = u + len.div_ceil(UNIT);
            }
            used_units += u64::from(used);
            if used != (u < covered_to) {
                return Err(format!(
                    "unit {u}: used bit {used}, covered {}",
                    u < covered_to
                ));
            }
        }
        if (slots, bytes, used_units) != (s.slots, s.bytes, s.used_units) {
            return Err(format!(
                "store holds {slots} slots / {bytes} bytes / {used_units} units, counters say \
                 {} / {} / {}",
                s.slots, s.bytes, s.used_units
            ));
        }
        Ok(slots)
    }
}
