//! Drawing the next operation when no targeted pattern takes its turn:
//! a kind by the configured weights, then its fields, aimed at what the
//! generator remembers or drawn from the address space.

use protocol::{AreaType, Privilege, PAGE_SIZE};
use rand::seq::IndexedRandom;
use rand::Rng;

use super::{remember, Generator};
use crate::op::{Op, OpKind};
use crate::strategy;

impl Generator {
    fn kind(&mut self) -> OpKind {
        let w = self.config.weights;
        let total: u32 = OpKind::ALL.iter().map(|&k| w.get(k)).sum();
        if total == 0 {
            return OpKind::Stats;
        }
        let mut roll = self.rng.random_range(0..total);
        for k in OpKind::ALL {
            if roll < w.get(k) {
                return k;
            }
            roll -= w.get(k);
        }
        OpKind::Stats
    }

    pub(super) fn pick(&mut self) -> Op {
        match self.kind() {
            OpKind::Hello => Op::Hello,
            OpKind::Ping => Op::Ping {
                nonce: self.rng.random(),
            },
            OpKind::Panic => Op::Panic {
                privilege: self.kernel_only(),
            },
            OpKind::Stats => Op::Stats,
            OpKind::Reset => {
                let privilege = self.kernel_only();
                if privilege == Privilege::Kernel {
                    self.spaces.reset();
                }
                Op::Reset { privilege }
            }
            OpKind::CreateSpace => self.create_space(),
            OpKind::SwitchSpace => self.switch_space(),
            OpKind::DestroySpace => self.destroy_space(),
            OpKind::Share => self.share(),
            OpKind::Map => {
                let (addr, pages, privilege) = self.range();
                let writable = self.rng.random_bool(0.8);
                // Half the read-only maps are code; a few writable ones ask
                // for execute too, which W^X refuses.
                let executable = self.rng.random_bool(if writable { 0.03 } else { 0.5 });
                let contiguous = self.rng.random_bool(0.2);
                self.backs(addr, pages);
                Op::Map {
                    addr,
                    pages,
                    writable,
                    executable,
                    contiguous,
                    privilege,
                }
            }
            OpKind::Unmap => {
                let (addr, pages, privilege) = self.range_aimed(0.5);
                Op::Unmap {
                    addr,
                    pages,
                    privilege,
                }
            }
            OpKind::Convert => {
                let (addr, pages, privilege) = self.range_aimed(0.35);
                // Usable RAM, pinned (never-swap) RAM about 3 in 10 of
                // those, or unusable.
                let to = if self.rng.random_bool(0.55) {
                    self.backs(addr, pages);
                    if self.pins(addr, pages) {
                        AreaType::PinnedRam
                    } else {
                        AreaType::UsableRam
                    }
                } else {
                    AreaType::Unusable
                };
                Op::Convert {
                    addr,
                    pages,
                    to,
                    privilege,
                }
            }
            OpKind::Query => {
                let (addr, pages, privilege) = self.range();
                let pages = if self.rng.random_bool(0.8) {
                    pages.clamp(1, 64)
                } else {
                    pages
                };
                Op::Query {
                    addr,
                    pages,
                    privilege,
                }
            }
            OpKind::Write => {
                let edge = self.rng.random_bool(0.12).then(|| self.edge_bytes());
                let (addr, len) = edge.flatten().unwrap_or_else(|| self.bytes());
                remember(&mut self.writes, (addr, len));
                self.wrote_in(addr, len);
                let privilege = self.privilege_for(addr);
                Op::Write {
                    addr,
                    len,
                    seed: self.rng.random(),
                    privilege,
                }
            }
            OpKind::Read => {
                let (addr, len) = match self.writes.choose(&mut self.rng).copied() {
                    Some(w) if self.rng.random_bool(0.6) => w,
                    Some((a, l)) if self.rng.random_bool(0.5) => (a.wrapping_add(l / 2), l),
                    _ => match self.rng.random_bool(0.2).then(|| self.edge_bytes()) {
                        Some(Some(e)) => e,
                        _ => self.bytes(),
                    },
                };
                Op::Read {
                    addr,
                    len,
                    privilege: self.privilege_for(addr),
                }
            }
            OpKind::AllocFrames => {
                let aimed = self.rng.random_bool(0.25).then(|| self.aimed_count());
                let count = strategy::pages(&mut self.rng, &self.targets);
                let count = if let Some(Some(c)) = aimed {
                    c
                } else if self.rng.random_bool(0.6) {
                    count.clamp(1, 8)
                } else {
                    count
                };
                Op::AllocFrames {
                    count,
                    contiguous: self.rng.random_bool(0.3),
                    privilege: self.kernel_only(),
                }
            }
            OpKind::FreeFrames => {
                let (frame, count) = match self.frames.choose(&mut self.rng).copied() {
                    Some(run) if self.rng.random_bool(0.8) => {
                        let skip = self.rng.random_range(0..run.count.max(1));
                        let whole = self.rng.random_bool(0.6);
                        // The run is what the guest answered: wrapping
                        // arithmetic, so that a buggy answer cannot crash
                        // the generator.
                        let count = if whole {
                            run.count
                        } else {
                            self.rng
                                .random_range(1..=(run.count - skip).saturating_add(1))
                        };
                        let offset = if whole {
                            0
                        } else {
                            skip.wrapping_mul(PAGE_SIZE)
                        };
                        (run.start.wrapping_add(offset), count)
                    }
                    _ => {
                        let frame =
                            self.rng.random_range(0..self.targets.ram_pages * 2) * PAGE_SIZE;
                        (
                            strategy::misalign(&mut self.rng, frame, 0.1),
                            strategy::pages(&mut self.rng, &self.targets),
                        )
                    }
                };
                Op::FreeFrames {
                    frame,
                    count,
                    privilege: self.kernel_only(),
                }
            }
            OpKind::Valloc => {
                let pages = strategy::pages(&mut self.rng, &self.targets);
                Op::Valloc {
                    pages,
                    privilege: self.kernel_only(),
                }
            }
            OpKind::MapFile => self.map_file(),
            OpKind::Evict => self.evict(),
            OpKind::Kmalloc => self.kmalloc(),
            OpKind::Kfree => self.kfree(),
            OpKind::HeapScavenge => Op::HeapScavenge {
                privilege: self.kernel_only(),
            },
            OpKind::Vfree => {
                let (addr, pages) = match self.vallocs.choose(&mut self.rng).copied() {
                    Some((a, p)) if self.rng.random_bool(0.8) => {
                        match self.rng.random_range(0..3) {
                            0 => (a, p),
                            1 => (a, self.rng.random_range(1..=p.max(1))),
                            _ => (a.wrapping_add(PAGE_SIZE), p),
                        }
                    }
                    _ => {
                        let (addr, pages, _) = self.range();
                        (addr, pages)
                    }
                };
                Op::Vfree {
                    addr,
                    pages,
                    privilege: self.kernel_only(),
                }
            }
        }
    }

    /// Whether a convert to RAM of `pages` pages at `addr` pins them (about
    /// 3 in 10): drawn from the sequence's seed, the operation's index and
    /// the range, not from the generator's stream, so that adding the
    /// pinned target left every other draw of a seed's sequence as it was
    /// (saved seeds, and the campaigns the tests run, go as they went).
    fn pins(&self, addr: u64, pages: u64) -> bool {
        let made = self.made as u64;
        let mut x = self.seed ^ made.rotate_left(32) ^ addr ^ pages.rotate_left(17);
        // splitmix64's finalizer: every input bit reaches every output bit.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        x % 10 < 3
    }
}
