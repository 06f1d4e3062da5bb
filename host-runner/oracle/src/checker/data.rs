//! Invariant 6 for present pages: each one holds the bytes the model
//! expects (zeros where the host never wrote, a file's bytes for a clean
//! file page).

use protocol::{Hello, PAGE_SIZE};

use super::entry::PresentKind;
use super::leaf::in_heap;
use super::memory::GuestMemory;
use super::violation::Violation;
use super::walk::Translation;
use crate::model::keys::SpaceAddr;
use crate::model::{Expected, ModelState, PageSource};

/// The bytes the present page at `virt`, in `state`, must hold: the
/// model's, or for a clean page of a file without a spec, its image in
/// guest memory; made in `scratch` where they must be made, else borrowed
/// (a page checked copies no 4 KiB on the way to its compare).
pub fn expected_page<'s>(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expected<'s>,
    (virt, state): (u64, Option<ModelState>),
    scratch: &'s mut [u8; 4096],
) -> Option<&'s [u8; 4096]> {
    match expect.source(virt, state) {
        PageSource::Image { file, page } => {
            let info = hello.files.get(usize::from(file))?;
            mem.read(info.image.start + page * PAGE_SIZE, scratch)
                .ok()?;
            Some(scratch)
        }
        source => source.bytes(scratch),
    }
}

/// Checks the bytes of the present page `t` (skipped where its state is
/// not the expected one: that is reported already).
pub fn check_page(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expected,
    t: &Translation,
    (scratch, buf): (&mut [u8; 4096], &mut [u8; 4096]),
    out: &mut Vec<Violation>,
) {
    let state = expect.state(t.virt);
    let kind_agrees = match state {
        Some(ModelState::PresentRam { .. }) => t.kind == PresentKind::Ram,
        Some(ModelState::PinnedRam { .. }) => t.kind == PresentKind::PinnedRam,
        Some(ModelState::Shared { .. }) => t.kind == PresentKind::Shared,
        Some(ModelState::PresentMmap { private, .. }) => {
            t.kind
                == if private {
                    PresentKind::MmapPrivate
                } else {
                    PresentKind::MmapClean
                }
        }
        _ => false,
    };
    if !kind_agrees || in_heap(hello, t.virt) || t.frame >> 12 >= hello.total_frames {
        return;
    }
    let Some(want) = expected_page(mem, hello, expect, (t.virt, state), scratch) else {
        return;
    };
    // Compared in place first; read only to name the first difference.
    let unreadable = |error| {
        let what = format!("the frame {:#x} of page {}", t.frame, SpaceAddr(t.virt));
        Violation::Unreadable { what, error }
    };
    match mem.holds(t.frame, &want[..]) {
        Ok(true) => return,
        Ok(false) => {}
        Err(error) => return out.push(unreadable(error)),
    }
    if let Err(error) = mem.read(t.frame, buf) {
        return out.push(unreadable(error));
    }
    if let Some(offset) = buf.iter().zip(want.iter()).position(|(a, b)| a != b) {
        out.push(Violation::DataMismatch {
            path: t.path(),
            frame: t.frame,
            offset: offset as u64,
            expected: want[offset],
            got: buf[offset],
        });
    }
}

/// Checks the bytes of every page of `pages`.
pub fn check_pages<'t>(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expected,
    pages: impl Iterator<Item = &'t Translation>,
    out: &mut Vec<Violation>,
) {
    let (mut scratch, mut buf) = ([0u8; 4096], [0u8; 4096]);
    for t in pages {
        check_page(mem, hello, expect, t, (&mut scratch, &mut buf), out);
    }
}
