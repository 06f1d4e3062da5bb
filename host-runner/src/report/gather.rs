//! What the report draws, gathered at a failure from the model and the
//! paused guest's memory through the checker's own readers.

use oracle::model::keys::untag;
use oracle::{Expectations, GuestMemory, Model};
use protocol::Hello;
use trace::FailureClass;

use super::frames;
use super::page_map::{Cell, Region, PAGES, REGION};
use super::Snapshot;

/// Most 2 MiB regions drawn.
pub const MAX_REGIONS: usize = 4;

/// The 2 MiB regions to draw: the failing address's first, then those of
/// the pages the failure names, each once, at most [`MAX_REGIONS`].
pub fn region_bases(addr: Option<u64>, class: Option<&FailureClass>) -> Vec<u64> {
    let named = match class {
        Some(FailureClass::Invariant { pages, .. }) => pages.as_slice(),
        _ => &[],
    };
    let mut bases: Vec<u64> = Vec::new();
    for a in addr.iter().chain(named) {
        let b = a & !(REGION - 1);
        if !bases.contains(&b) && bases.len() < MAX_REGIONS {
            bases.push(b);
        }
    }
    bases
}

/// The frames (physical addresses) a failure names.
pub fn named_frames(class: Option<&FailureClass>) -> Vec<u64> {
    match class {
        Some(FailureClass::Invariant { frames, .. }) => frames.clone(),
        _ => vec![],
    }
}

/// The model's side of the picture, before the guest's memory is read.
pub fn model_side(model: &Model, addr: Option<u64>, class: Option<&FailureClass>) -> Snapshot {
    let regions = region_bases(addr, class)
        .into_iter()
        .map(|base| Region {
            base,
            model: (0..PAGES)
                .map(|i| Cell::of_model(model.state(base + i * 4096)))
                .collect(),
            guest: None,
        })
        .collect();
    Snapshot {
        address: addr,
        regions,
        ..Snapshot::default()
    }
}

/// The guest's side: each region's level-1 entries, the walk of the
/// failing address, and the frame map (a full check's walk for the
/// owners). `named`: the frames the failure names; the failing page's
/// frame is added.
pub fn guest_side(
    snap: &mut Snapshot,
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expectations,
    named: &[u64],
) {
    // Addresses are the model's keys: a user page of a space other than 0
    // is read through that space's PML4.
    let root_of = |key: u64| {
        let (space, addr) = untag(key);
        expect.space_root(hello, space).map(|root| (root, addr))
    };
    for r in &mut snap.regions {
        let Some((root, base)) = root_of(r.base) else {
            snap.notes.push(format!(
                "{}: its address space no longer lives",
                oracle::model::keys::SpaceAddr(r.base)
            ));
            continue;
        };
        match oracle::region_leaves_from(mem, root, base) {
            Ok(leaves) => r.guest = Some(leaves.iter().map(Cell::of_guest).collect()),
            Err(e) => snap.notes.push(format!(
                "the page table of {:#x} is unreadable: {e}",
                r.base
            )),
        }
    }
    let mut named = named.to_vec();
    if let Some((root, addr)) = snap.address.and_then(root_of) {
        snap.walk = oracle::walk_levels_from(mem, hello, root, addr);
        if let Some(("frame", frame, _)) = snap.walk.last().and_then(|l| l.next.clone()) {
            named.push(frame);
        }
    }
    let mut bitmap = vec![0u8; hello.total_frames.div_ceil(8) as usize];
    if let Err(e) = mem.read(hello.frame_bitmap.start, &mut bitmap) {
        snap.notes
            .push(format!("the frame bitmap is unreadable: {e}"));
        return;
    }
    let check = oracle::check(mem, hello, expect);
    snap.frames = Some(frames::build(
        hello,
        &bitmap,
        &check.walk,
        &expect.host_frames,
        &named,
    ));
}
