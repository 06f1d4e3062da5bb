//! Writing a synthetic image by hand: its bytes, its frame bitmap and its
//! page tables, with the present count of each PD entry kept (bits 52–61,
//! `protocol::formats` "Upper-level entries"). The benchmarks' machines
//! and the checker's test images are all [`Image`]s, of other layouts.

use super::{whole_aow_frame, Image, ADDR, AOW, P, U, W};
use crate::model::keys::is_user;

/// The present-count bits of a PD entry.
const PRESENT_COUNT: u64 = 0x3ff << 52;

impl Image {
    pub fn read_u64(&self, phys: u64) -> u64 {
        let p = phys as usize;
        u64::from_le_bytes(self.mem.bytes[p..p + 8].try_into().expect("8 bytes"))
    }

    pub fn write_u64(&mut self, phys: u64, v: u64) {
        self.write(phys, &v.to_le_bytes());
    }

    pub fn write(&mut self, phys: u64, bytes: &[u8]) {
        let p = phys as usize;
        self.mem.bytes[p..p + bytes.len()].copy_from_slice(bytes);
    }

    /// Whether frame number `f` is marked used.
    pub fn used(&self, f: u64) -> bool {
        let b = self.mem.bytes[(self.hello.frame_bitmap.start + f / 8) as usize];
        b >> (f % 8) & 1 == 1
    }

    /// Marks frame number `f` used or free.
    pub fn set_used(&mut self, f: u64, used: bool) {
        let at = (self.hello.frame_bitmap.start + f / 8) as usize;
        let bit = 1u8 << (f % 8);
        let byte = &mut self.mem.bytes[at];
        if used {
            *byte |= bit;
        } else {
            *byte &= !bit;
        }
    }

    /// The physical address of `virt`'s entry at `level` (4 = PML4 … 1 =
    /// PT), making the tables above it; `virt` is a key
    /// (`crate::model::keys`) of a live space.
    pub fn entry_addr(&mut self, virt: u64, level: u32) -> u64 {
        let mut table = self.root_of(virt).expect("the page's space lives");
        for l in (level + 1..=4).rev() {
            table = self.table_at(table + index(virt, l) * 8, virt);
        }
        table + index(virt, level) * 8
    }

    /// Sets `virt`'s level-1 entry, making the tables above it, and counts
    /// the present entries of its page table in the PD entry above it.
    pub fn set_leaf(&mut self, virt: u64, raw: u64) {
        let pde = self.entry_addr(virt, 2);
        let table = self.table_at(pde, virt);
        self.write_u64(table + index(virt, 1) * 8, raw);
        self.recount(pde);
    }

    /// Sets the present count of the PD entry at `pde` to the present
    /// entries of its page table.
    pub fn recount(&mut self, pde: u64) {
        let e = self.read_u64(pde);
        let table = e & ADDR;
        let present = (0..512)
            .filter(|k| self.read_u64(table + k * 8) & P != 0)
            .count() as u64;
        self.write_u64(pde, (e & !PRESENT_COUNT) | present << 52);
    }

    /// The table the upper-level entry at `at` names, made (zeroed, present,
    /// writable, user below the canonical hole) where the entry is zero,
    /// and filled with 512 allocate-on-write entries where it is a whole
    /// allocate-on-write PD entry (as the guest makes a page table of one:
    /// its frame, present count 0).
    pub fn table_at(&mut self, at: u64, virt: u64) -> u64 {
        let mut e = self.read_u64(at);
        if let Some(t) = whole_aow_frame(e) {
            for k in 0..512 {
                self.write_u64(t + k * 8, AOW);
            }
            let user = if is_user(virt) { U } else { 0 };
            e = t | P | W | user;
            self.write_u64(at, e);
        }
        if e == 0 {
            let t = self.alloc();
            self.write(t, &[0; 4096]);
            let user = if is_user(virt) { U } else { 0 };
            e = t | P | W | user;
            self.write_u64(at, e);
            self.share_kernel_entry(at, virt);
        }
        e & ADDR
    }
}

/// `virt`'s index in its table at `level`.
fn index(virt: u64, level: u32) -> u64 {
    (virt >> (12 + 9 * (level - 1))) & 511
}
