//! Seeded, reproducible generation of operation sequences: ChaCha8 from the
//! seed, so the same seed, configuration and answers fed back give the same
//! operations.

use std::collections::VecDeque;

use protocol::{FrameRun, Privilege, Response, PAGE_SIZE};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::format::{Trace, TraceHeader};
use crate::op::Op;
use crate::strategy::{self, Targets, USER_END};
pub use crate::weights::{GenConfig, Weights};

mod pick;
mod share;
mod spaces;
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
    /// User byte ranges written before, with the space that was current
    /// (`space`, `addr`, `len`): where present RAM to share most likely is.
    user_writes: Vec<(u16, u64, u64)>,
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
    /// The address spaces the generator believes exist.
    spaces: spaces::Spaces,
    /// Operations that must come next, in order (a touch after a switch,
    /// the touches across spaces after a share).
    follow: VecDeque<Op>,
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
            user_writes: Vec::new(),
            frames: Vec::new(),
            vallocs: Vec::new(),
            blocks: Vec::new(),
            freed_blocks: Vec::new(),
            free_frames: None,
            changed: None,
            last: None,
            made: 0,
            spaces: spaces::Spaces::default(),
            follow: VecDeque::new(),
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
        let op = self
            .drain()
            .or_else(|| self.follow.pop_front())
            .unwrap_or_else(|| self.pick());
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
            (_, Response::Hello(h)) => {
                self.targets.learn(h);
                self.spaces.learn(h.max_spaces);
            }
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
}

/// A whole trace of `config.ops` operations from `seed`, generated without
/// answers.
pub fn generate(seed: u64, config: &GenConfig) -> Trace {
    let mut g = Generator::new(seed, config.clone());
    let ops: Vec<Op> = (0..config.ops).map(|_| g.next_op(None)).collect();
    Trace::from_ops(g.header(), ops)
}
