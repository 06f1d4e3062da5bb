//! The picture of the address space around a failure: one strip per 2 MiB
//! region, one cell per page coloured by its state, the guest's view above
//! the model's, differences and the failing page marked.

use maud::{html, Markup};
use oracle::checker::{Leaf, PresentKind};
use oracle::ModelState;

/// Pages in a 2 MiB region.
pub const PAGES: u64 = 512;
/// Bytes in a 2 MiB region.
pub const REGION: u64 = PAGES * 4096;
const COLS: u64 = 64;
const ROWS: u64 = PAGES / COLS;
const CELL: u64 = 11;

/// A page's state, as the picture colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellState {
    PresentRam,
    PresentFile,
    AllocOnWrite,
    FileNotPresent,
    OnSwap,
    Unusable,
    /// Bits that decode to no state (the guest's view only).
    Corrupt,
    /// Present pinned (never-swap) RAM.
    PinnedRam,
    /// Pinned RAM, allocate on write.
    PinnedAllocOnWrite,
    /// Present shared RAM (its frame may be mapped by other pages).
    Shared,
}

impl CellState {
    /// The CSS class (and the legend's key).
    pub fn class(self) -> &'static str {
        match self {
            CellState::PresentRam => "st-ram",
            CellState::PresentFile => "st-file",
            CellState::AllocOnWrite => "st-aow",
            CellState::FileNotPresent => "st-filenp",
            CellState::OnSwap => "st-swap",
            CellState::Unusable => "st-unusable",
            CellState::Corrupt => "st-corrupt",
            CellState::PinnedRam => "st-pinned",
            CellState::PinnedAllocOnWrite => "st-pinaow",
            CellState::Shared => "st-shared",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CellState::PresentRam => "present RAM",
            CellState::PresentFile => "present file",
            CellState::AllocOnWrite => "allocate-on-write",
            CellState::FileNotPresent => "file, not present",
            CellState::OnSwap => "on swap",
            CellState::Unusable => "unusable",
            CellState::Corrupt => "corrupt entry",
            CellState::PinnedRam => "pinned RAM",
            CellState::PinnedAllocOnWrite => "pinned allocate-on-write",
            CellState::Shared => "shared RAM",
        }
    }

    pub const ALL: [CellState; 10] = [
        CellState::PresentRam,
        CellState::PresentFile,
        CellState::AllocOnWrite,
        CellState::FileNotPresent,
        CellState::OnSwap,
        CellState::Unusable,
        CellState::Corrupt,
        CellState::PinnedRam,
        CellState::PinnedAllocOnWrite,
        CellState::Shared,
    ];
}

/// One side's view of a page: its state, what is compared between the
/// sides (the state and the details both know), and a tooltip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub state: CellState,
    pub key: String,
    pub tip: String,
}

impl Cell {
    /// The model's view (`None`: unusable).
    pub fn of_model(s: Option<ModelState>) -> Cell {
        let (state, key) = match s {
            None => (CellState::Unusable, String::new()),
            Some(ModelState::PresentRam {
                writable,
                executable,
            }) => (CellState::PresentRam, rwx(writable, executable)),
            Some(ModelState::AllocOnWrite) => (CellState::AllocOnWrite, String::new()),
            Some(ModelState::PinnedRam { writable }) => {
                (CellState::PinnedRam, rwx(writable, false))
            }
            Some(ModelState::PinnedAllocOnWrite) => (CellState::PinnedAllocOnWrite, String::new()),
            // Its access only: the model does not predict frames.
            Some(ModelState::Shared { writable, .. }) => (CellState::Shared, rwx(writable, false)),
            Some(ModelState::OnSwap { slot }) => (CellState::OnSwap, format!("slot {slot}")),
            Some(ModelState::PresentMmap { private, .. }) => {
                (CellState::PresentFile, private_text(private).to_string())
            }
            Some(ModelState::NotPresentMmap { file, page }) => (
                CellState::FileNotPresent,
                format!("file {file} page {page}"),
            ),
        };
        let tip = match s {
            Some(ModelState::PresentMmap { file, page, .. }) => {
                format!("{} file {file} page {page}", key)
            }
            _ => key.clone(),
        };
        Cell { state, key, tip }
    }

    /// The guest's view: its level-1 entry decoded by the checker.
    pub fn of_guest(leaf: &Leaf) -> Cell {
        let (state, key, tip) = match *leaf {
            Leaf::Unusable => (CellState::Unusable, String::new(), String::new()),
            Leaf::Present {
                kind: PresentKind::Ram,
                writable,
                executable,
                frame,
            } => (
                CellState::PresentRam,
                rwx(writable, executable),
                format!("{} frame {frame:#x}", rwx(writable, executable)),
            ),
            Leaf::Present {
                kind: PresentKind::PinnedRam,
                writable,
                frame,
                ..
            } => (
                CellState::PinnedRam,
                rwx(writable, false),
                format!("{} frame {frame:#x}", rwx(writable, false)),
            ),
            Leaf::Present {
                kind: PresentKind::Shared,
                writable,
                frame,
                ..
            } => (
                CellState::Shared,
                rwx(writable, false),
                format!("{} frame {frame:#x}", rwx(writable, false)),
            ),
            Leaf::Present { kind, frame, .. } => {
                let p = private_text(kind == PresentKind::MmapPrivate);
                (
                    CellState::PresentFile,
                    p.to_string(),
                    format!("{p} frame {frame:#x}"),
                )
            }
            Leaf::AllocOnWrite => (CellState::AllocOnWrite, String::new(), String::new()),
            Leaf::PinnedAllocOnWrite => {
                (CellState::PinnedAllocOnWrite, String::new(), String::new())
            }
            Leaf::OnSwap { slot } => {
                let k = format!("slot {slot}");
                (CellState::OnSwap, k.clone(), k)
            }
            Leaf::NotPresentMmap { file, page } => {
                let k = format!("file {file} page {page}");
                (CellState::FileNotPresent, k.clone(), k)
            }
            Leaf::Corrupt(why) => (CellState::Corrupt, why.to_string(), why.to_string()),
        };
        Cell { state, key, tip }
    }

    fn title(&self, side: &str, addr: u64) -> String {
        let mut t = format!("{side} {addr:#x}: {}", self.state.name());
        if !self.tip.is_empty() {
            t.push_str(", ");
            t.push_str(&self.tip);
        }
        t
    }
}

/// A present RAM page's access: the model's or the guest's (a writable
/// executable page, which W^X forbids, shows as such).
fn rwx(writable: bool, executable: bool) -> String {
    let access = if writable { "writable" } else { "read-only" };
    if executable {
        format!("{access} executable")
    } else {
        access.to_string()
    }
}

fn private_text(private: bool) -> &'static str {
    if private {
        "private (written)"
    } else {
        "clean"
    }
}

/// One 2 MiB region: the model's cells, and the guest's when its memory
/// could be read.
#[derive(Clone, Debug)]
pub struct Region {
    /// Its first address (2 MiB aligned).
    pub base: u64,
    pub model: Vec<Cell>,
    pub guest: Option<Vec<Cell>>,
}

impl Region {
    /// The pages whose two views differ.
    pub fn differences(&self) -> Vec<u64> {
        let Some(guest) = &self.guest else {
            return vec![];
        };
        (0..PAGES)
            .filter(|&i| {
                guest[i as usize].key != self.model[i as usize].key
                    || guest[i as usize].state != self.model[i as usize].state
            })
            .map(|i| self.base + i * 4096)
            .collect()
    }
}

/// A cell's classes: its state's, `diff`, `failing`.
fn cell_class(c: &Cell, diff: bool, failing: bool) -> String {
    let mut class = c.state.class().to_string();
    if diff {
        class.push_str(" diff");
    }
    if failing {
        class.push_str(" failing");
    }
    class
}

/// One side's strip: 8 rows of 64 pages.
fn strip(side: &str, cells: &[Cell], base: u64, diffs: &[u64], failing: Option<u64>) -> Markup {
    let prefix = &side[..1];
    html! {
        svg class="strip" width=(COLS * CELL + 2) height=(ROWS * CELL + 2)
            role="img" aria-label=(format!("{side} view of {base:#x}")) {
            @for (i, c) in cells.iter().enumerate() {
                @let addr = base + i as u64 * 4096;
                rect id=(format!("{prefix}-{addr:x}"))
                    class=(cell_class(c, diffs.contains(&addr), failing == Some(addr)))
                    data-state=(c.state.name())
                    x=(1 + (i as u64 % COLS) * CELL) y=(1 + (i as u64 / COLS) * CELL)
                    width=(CELL - 1) height=(CELL - 1) {
                    title { (c.title(side, addr)) }
                }
            }
        }
    }
}

/// The regions, each as the guest's strip above the model's, and the
/// legend.
pub fn markup(regions: &[Region], failing: Option<u64>) -> Markup {
    let failing_page = failing.map(|a| a & !0xfff);
    html! {
        div class="legend" {
            @for s in CellState::ALL {
                span { span class=(format!("swatch {}", s.class())) {} (s.name()) }
            }
            span { span class="swatch diff-key" {} "guest ≠ model" }
            span { span class="swatch failing-key" {} "failing page" }
        }
        @for r in regions {
            @let diffs = r.differences();
            section class="region" id=(format!("region-{:x}", r.base)) {
                h3 {
                    (region_title(r.base))
                    " (64 pages a row, 8 rows; "
                    (diffs.len()) " page(s) differ)"
                }
                @match &r.guest {
                    Some(g) => { p class="side" { "guest" } (strip("guest", g, r.base, &diffs, failing_page)) }
                    None => { p class="side" { "guest: its memory could not be read" } }
                }
                p class="side" { "model" }
                (strip("model", &r.model, r.base, &diffs, failing_page))
            }
        }
    }
}

/// A region's heading: its first and last address, and its address space
/// when it is a user region of a space other than 0 (the base is a model
/// key, `oracle::model::keys`).
fn region_title(base: u64) -> String {
    let (space, addr) = oracle::model::keys::untag(base);
    let range = format!("{addr:#x} – {:#x}", addr + REGION - 1);
    match space {
        0 => range,
        s => format!("{range} in space {s}"),
    }
}
