//! Seeded, reproducible generation of operation sequences: ChaCha8 from the
//! seed, so the same seed, configuration and answers fed back give the same
//! operations.

use protocol::{AreaType, FrameRun, Privilege, Response, PAGE_SIZE};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::format::{Trace, TraceHeader};
use crate::op::{Op, OpKind};
use crate::strategy::{self, Targets, USER_END};
pub use crate::weights::{GenConfig, Weights};

mod targeted;
mod v2;

/// How many earlier ranges, writes, frame runs and valloc runs are kept to
/// aim at.
const MEMORY: usize = 64;

/// Generates operations one by one. Feed each answer back through
/// [`Generator::next_op`] so that later operations can use it (frames from
/// `alloc_frames`, ranges from `valloc`, the layout from `hello`); without
/// answers the generator still works, aiming at guessed values.
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha8Rng,
    config: GenConfig,
    seed: u64,
    targets: Targets,
    /// Page ranges used before (`addr`, `pages`).
    ranges: Vec<(u64, u64)>,
    /// Page ranges of `map`, `convert` to usable RAM and `map_file`: where
    /// data can live, so where writes and reads mostly go.
    backed: Vec<(u64, u64)>,
    /// Byte ranges written before (`addr`, `len`).
    writes: Vec<(u64, u64)>,
    frames: Vec<FrameRun>,
    vallocs: Vec<(u64, u64)>,
    /// Live heap blocks the host got from `kmalloc` (`addr`, `size`).
    blocks: Vec<(u64, u64)>,
    /// Blocks freed before, to free again (a double free must be refused).
    freed_blocks: Vec<u64>,
    /// Free frames at the last `stats` answer.
    free_frames: Option<u64>,
    /// The range the last map, unmap, convert, map_file or evict named.
    changed: Option<(u64, u64)>,
    last: Option<Op>,
    /// Operations generated so far.
    made: usize,
}

fn remember<T>(list: &mut Vec<T>, item: T) {
    if list.len() == MEMORY {
        list.remove(0);
    }
    list.push(item);
}

impl Generator {
    pub fn new(seed: u64, config: GenConfig) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            targets: Targets::new(config.ram_mib),
            config,
            seed,
            ranges: Vec::new(),
            backed: Vec::new(),
            writes: Vec::new(),
            frames: Vec::new(),
            vallocs: Vec::new(),
            blocks: Vec::new(),
            freed_blocks: Vec::new(),
            free_frames: None,
            changed: None,
            last: None,
            made: 0,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The header of the traces this generator makes.
    pub fn header(&self) -> TraceHeader {
        TraceHeader {
            seed: Some(self.seed),
            ram_mib: Some(self.config.ram_mib),
            created_by: Some(concat!("vmmfuzz-trace ", env!("CARGO_PKG_VERSION")).to_string()),
            files: self.config.files.clone(),
            weights: Some(self.config.weights),
            note: self.config.drain_from.map(|n| {
                format!(
                    "pressure: from op {n} on, the host takes every frame the allocator has left"
                )
            }),
            ..TraceHeader::default()
        }
    }

    /// The next operation. `last_response` is the guest's answer to the
    /// operation returned by the previous call, if the caller has it.
    pub fn next_op(&mut self, last_response: Option<&Response>) -> Op {
        if let (Some(op), Some(r)) = (self.last.take(), last_response) {
            self.observe(&op, r);
        }
        let op = self.drain().unwrap_or_else(|| self.pick());
        self.made += 1;
        if let Op::Map { addr, pages, .. }
        | Op::Unmap { addr, pages, .. }
        | Op::Convert { addr, pages, .. }
        | Op::MapFile { addr, pages, .. }
        | Op::Evict { addr, pages, .. } = op
        {
            self.changed = Some((addr, pages));
        }
        self.last = Some(op.clone());
        op
    }

    /// Learns from the answer `r` to `op` (the plain answer inside a
    /// `Reclaimed`: the reclaim events say nothing the generator uses).
    fn observe(&mut self, op: &Op, r: &Response) {
        let r = match r {
            Response::Reclaimed { response, .. } => response,
            r => r,
        };
        match (op, r) {
            (_, Response::Hello(h)) => self.targets.learn(h),
            (Op::AllocFrames { .. }, Response::Frames(runs)) => {
                runs.iter().for_each(|&run| remember(&mut self.frames, run));
                let taken = runs.iter().map(|r| r.count).fold(0, u64::saturating_add);
                self.free_frames = self.free_frames.map(|f| f.saturating_sub(taken));
            }
            (Op::FreeFrames { frame, .. }, Response::Done) => {
                self.frames.retain(|r| r.start != *frame)
            }
            (Op::Valloc { pages, .. }, Response::Valloc { addr }) => {
                remember(&mut self.vallocs, (*addr, *pages))
            }
            (Op::Vfree { addr, .. }, Response::Done) => self.vallocs.retain(|v| v.0 != *addr),
            (Op::Kmalloc { size, .. }, Response::Kmalloc { addr }) => {
                remember(&mut self.blocks, (*addr, *size))
            }
            (_, Response::Stats(s)) => self.free_frames = Some(s.free_frames),
            (Op::Reset { .. }, Response::Done) => {
                self.frames.clear();
                self.vallocs.clear();
                self.blocks.clear();
            }
            _ => {}
        }
    }

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

    /// User or kernel for a range starting at `addr`: either in user space,
    /// mostly kernel elsewhere (a user request there must be refused).
    fn privilege_for(&mut self, addr: u64) -> Privilege {
        let p_user = if addr < USER_END { 0.5 } else { 0.1 };
        if self.rng.random_bool(p_user) {
            Privilege::User
        } else {
            Privilege::Kernel
        }
    }

    fn kernel_only(&mut self) -> Privilege {
        if self.rng.random_bool(0.1) {
            Privilege::User
        } else {
            Privilege::Kernel
        }
    }

    /// A page range: (`addr`, `pages`, privilege), remembered for reuse.
    fn range(&mut self) -> (u64, u64, Privilege) {
        let pages = strategy::pages(&mut self.rng, &self.targets);
        let addr = strategy::range_addr(&mut self.rng, pages, &self.ranges, &self.targets);
        remember(&mut self.ranges, (addr, pages));
        (addr, pages, self.privilege_for(addr))
    }

    /// Remembers a range data may live in, unless it is too big to be
    /// backed (over a quarter of RAM: such maps mostly run out of memory).
    fn backs(&mut self, addr: u64, pages: u64) {
        if pages > 0 && pages <= self.targets.ram_pages / 4 {
            remember(&mut self.backed, (addr, pages));
        }
    }

    /// A byte range for a write or read: inside a range used before, where
    /// the data can live, or any range.
    fn bytes(&mut self) -> (u64, u64) {
        if !self.blocks.is_empty() && self.rng.random_bool(0.15) {
            return self.block_bytes();
        }
        let pool = if !self.backed.is_empty() && self.rng.random_bool(0.7) {
            &self.backed
        } else {
            &self.ranges
        };
        match pool.choose(&mut self.rng).copied() {
            Some((addr, pages)) if self.rng.random_bool(0.7) => {
                let span = pages.clamp(1, 1 << 16) * PAGE_SIZE;
                let start = addr.wrapping_add(self.rng.random_range(0..span));
                let start = if self.rng.random_bool(0.5) {
                    start & !(PAGE_SIZE - 1)
                } else {
                    start
                };
                (start, strategy::len(&mut self.rng, &self.targets, span))
            }
            _ => {
                let pages = strategy::pages(&mut self.rng, &self.targets);
                let addr = strategy::range_addr(&mut self.rng, pages, &self.ranges, &self.targets);
                (
                    strategy::misalign(&mut self.rng, addr, 0.3),
                    strategy::len(&mut self.rng, &self.targets, 0),
                )
            }
        }
    }

    fn pick(&mut self) -> Op {
        match self.kind() {
            OpKind::Hello => Op::Hello,
            OpKind::Ping => Op::Ping {
                nonce: self.rng.random(),
            },
            OpKind::Panic => Op::Panic {
                privilege: self.kernel_only(),
            },
            OpKind::Stats => Op::Stats,
            OpKind::Reset => Op::Reset {
                privilege: self.kernel_only(),
            },
            OpKind::Map => {
                let (addr, pages, privilege) = self.range();
                let writable = self.rng.random_bool(0.8);
                let contiguous = self.rng.random_bool(0.2);
                self.backs(addr, pages);
                Op::Map {
                    addr,
                    pages,
                    writable,
                    contiguous,
                    privilege,
                }
            }
            OpKind::Unmap => {
                let aimed = self.rng.random_bool(0.5).then(|| self.aimed_range());
                let (addr, pages, privilege) = aimed.flatten().unwrap_or_else(|| self.range());
                Op::Unmap {
                    addr,
                    pages,
                    privilege,
                }
            }
            OpKind::Convert => {
                let aimed = self.rng.random_bool(0.35).then(|| self.aimed_range());
                let (addr, pages, privilege) = aimed.flatten().unwrap_or_else(|| self.range());
                let to = if self.rng.random_bool(0.55) {
                    self.backs(addr, pages);
                    AreaType::UsableRam
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
}

/// A whole trace of `config.ops` operations from `seed`, generated without
/// answers.
pub fn generate(seed: u64, config: &GenConfig) -> Trace {
    let mut g = Generator::new(seed, config.clone());
    let ops: Vec<Op> = (0..config.ops).map(|_| g.next_op(None)).collect();
    Trace::from_ops(g.header(), ops)
}
