//! Frame ownership: every table (a space's PML4 included) and present page
//! claims its frame (invariants 1 and 2); the owners decide invariant 3
//! ([`super::leaks`]). The owners are kept by frame number
//! between checks, so that an incremental check re-decides only the
//! frames whose claims, bit or host ownership changed.

use protocol::Hello;

use super::bitmap::{boot_holds, Bitmap};
use super::violation::{Path, Violation};
use crate::model::keys::{untag, SpaceAddr};
use crate::model::Expected;

/// Who owns a frame the walk found: a table (its level and first address)
/// or a data page (its address); addresses are keys
/// (`crate::model::keys`), a PML4 (level 4) the key of its space's address
/// 0. Named in words only when a violation needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Table {
        level: u8,
        virt: u64,
    },
    Page {
        virt: u64,
    },
    /// A present shared entry: other shared entries may name its frame too
    /// (formats.rs, "The sharing rule"; decided by [`super::sharing`]).
    Shared {
        virt: u64,
    },
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Owner::Table { level: 4, virt } => {
                write!(f, "the PML4 of space {}", untag(virt).0)
            }
            Owner::Table { level, virt } => {
                write!(f, "the level-{level} table for {}", SpaceAddr(virt))
            }
            Owner::Page { virt } => write!(f, "mapped at {}", SpaceAddr(virt)),
            Owner::Shared { virt } => write!(f, "mapped shared at {}", SpaceAddr(virt)),
        }
    }
}

impl Owner {
    /// The owner of a present page's frame: shared or not by its kind.
    pub fn of_page(virt: u64, kind: super::entry::PresentKind) -> Owner {
        match kind {
            super::entry::PresentKind::Shared => Owner::Shared { virt },
            _ => Owner::Page { virt },
        }
    }

    fn is_shared(self) -> bool {
        matches!(self, Owner::Shared { .. })
    }

    /// A non-zero number for the owner (its address's low bits say what).
    fn code(self) -> u64 {
        match self {
            Owner::Page { virt } => virt | 1,
            Owner::Table { level, virt } => virt | (1 + u64::from(level)),
            Owner::Shared { virt } => virt | 6,
        }
    }

    fn from_code(c: u64) -> Owner {
        match c & 0xfff {
            1 => Owner::Page { virt: c & !0xfff },
            6 => Owner::Shared { virt: c & !0xfff },
            l => Owner::Table {
                level: (l - 1) as u8,
                virt: c & !0xfff,
            },
        }
    }

    /// The full check's order of claims: tables in walk order, then pages.
    fn order(self) -> (u8, u64, u8) {
        match self {
            Owner::Table { level, virt } => (0, virt, 4 - level),
            Owner::Page { virt } | Owner::Shared { virt } => (1, virt, 0),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Owner::Table { level: 4, .. } => "PML4",
            Owner::Table { .. } => "page-table",
            Owner::Page { .. } => "data page",
            Owner::Shared { .. } => "shared data page",
        }
    }

    /// Whether the frame may be a boot reservation: the heap's tables and
    /// pages are set up at boot.
    fn boot_ok(self, hello: &Hello) -> bool {
        match self {
            Owner::Table { level, virt } => {
                super::heap_overlaps(hello, virt, 1u64 << (12 + 9 * u32::from(level)))
            }
            Owner::Page { virt } => super::heap_overlaps(hello, virt, 4096),
            Owner::Shared { .. } => false,
        }
    }
}

/// A claim of the frame at address `frame`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub frame: u64,
    pub owner: Owner,
}

/// What a claim is judged against.
pub struct Ctx<'a> {
    pub hello: &'a Hello,
    pub expect: &'a Expected<'a>,
    pub bitmap: &'a Bitmap,
}

/// The owner of each frame, by frame number.
#[derive(Debug, Default)]
pub struct Owners {
    pub(super) owner: Vec<u64>,
    pub(super) owned: Vec<u64>,
    /// Frame numbers given an owner since the last `reset`.
    touched: Vec<u64>,
    /// The reserved frames' words (a buffer of [`Owners::leaks`]).
    pub(super) reserved: Vec<u64>,
}

impl Owners {
    /// No frame owned, for a machine of `total` frames.
    pub fn reset(&mut self, total: u64) {
        if self.owner.len() as u64 != total {
            *self = Owners {
                owner: vec![0; total as usize],
                owned: vec![0; total.div_ceil(64) as usize],
                touched: Vec::new(),
                reserved: std::mem::take(&mut self.reserved),
            };
            return;
        }
        for n in self.touched.drain(..) {
            self.owner[n as usize] = 0;
            self.owned[(n / 64) as usize] = 0;
        }
    }

    fn set(&mut self, n: u64, code: u64) {
        self.owner[n as usize] = code;
        let bit = 1u64 << (n % 64);
        if code == 0 {
            self.owned[(n / 64) as usize] &= !bit;
        } else {
            self.owned[(n / 64) as usize] |= bit;
            self.touched.push(n);
        }
    }

    /// Claims `c`'s frame as the full check does (in walk order);
    /// reports invariants 1 and 2.
    pub fn claim(
        &mut self,
        ctx: &Ctx,
        c: Claim,
        path: impl Fn() -> Path,
        out: &mut Vec<Violation>,
    ) {
        let (frame, what) = (c.frame, c.owner.what());
        let n = frame >> 12;
        if n >= ctx.bitmap.total {
            out.push(Violation::FrameBeyondRam {
                path: path(),
                frame,
                what,
            });
            return;
        }
        // A shared frame marked free is reported once for all its
        // mappings, by the sharing rule's check.
        if !ctx.bitmap.used(n) && !c.owner.is_shared() {
            out.push(Violation::FrameFree {
                path: path(),
                frame,
                what,
            });
        }
        let owner = self.owner_of(n);
        let other = if boot_holds(ctx.hello, frame) && !c.owner.boot_ok(ctx.hello) {
            Some("a boot reservation".to_string())
        } else if ctx.expect.host_holds(frame) {
            Some("held by the host".to_string())
        } else {
            owner.map(|o| o.to_string())
        };
        match (other, owner) {
            // Shared entries may name one frame (the sharing rule).
            (Some(_), Some(o)) if o.is_shared() && c.owner.is_shared() => {}
            (Some(_), Some(o)) if o.is_shared() || c.owner.is_shared() => {
                let (shared, private) = if o.is_shared() {
                    (o, c.owner)
                } else {
                    (c.owner, o)
                };
                let virt = match shared {
                    Owner::Shared { virt } => virt,
                    _ => 0,
                };
                out.push(Violation::SharedMixed {
                    path: path(),
                    frame,
                    shared_at: virt,
                    other: format!("{} ({})", private, private.what()),
                });
            }
            (Some(other), _) => out.push(Violation::FrameShared {
                path: path(),
                frame,
                what,
                other,
            }),
            (None, _) => self.set(n, c.owner.code()),
        }
    }

    /// Takes `owner`'s claim of frame number `n` back, if it holds it.
    pub fn unclaim(&mut self, n: u64, owner: Owner) {
        if self.owner.get(n as usize) == Some(&owner.code()) {
            self.set(n, 0);
        }
    }

    /// The owner of frame number `n`, if any.
    pub fn owner_of(&self, n: u64) -> Option<Owner> {
        let code = *self.owner.get(n as usize)?;
        (code != 0).then(|| Owner::from_code(code))
    }

    /// Re-decides the claims of frame numbers `frames` (sorted, distinct):
    /// their owner so far, the `added` claims (sorted by frame) and every
    /// shared entry naming them now (`shared`: an unchanged shared entry
    /// keeps a frame owned when the one recorded as its owner goes) in
    /// walk order, exactly as the full check would decide them; then
    /// [`Owners::leaks_of`] decides invariant 3 for them.
    pub fn redo(
        &mut self,
        ctx: &Ctx,
        frames: &[u64],
        added: &[Claim],
        shared: &super::sharing::SharedIndex,
        path_of: impl Fn(Owner) -> Path,
        out: &mut Vec<Violation>,
    ) {
        let mut at = 0;
        let mut claimants = Vec::new();
        for &n in frames {
            claimants.clear();
            while added.get(at).is_some_and(|c| c.frame >> 12 < n) {
                at += 1;
            }
            while let Some(c) = added.get(at).filter(|c| c.frame >> 12 == n) {
                claimants.push(*c);
                at += 1;
            }
            if let Some(o) = self.owner_of(n) {
                claimants.push(Claim {
                    frame: n << 12,
                    owner: o,
                });
                self.set(n, 0);
            }
            claimants.extend(shared.claims_of(n));
            claimants.sort_by_key(|c| c.owner.order());
            claimants.dedup();
            for &c in &claimants {
                self.claim(ctx, c, || path_of(c.owner), out);
            }
        }
    }
}
