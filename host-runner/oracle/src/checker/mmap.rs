//! File mappings in guest memory (formats.rs, "The frame-info table" and
//! "The file images"): each present file page's frame carries the record
//! of its file and page (invariant 5), a clean page is read-only and a
//! private one writable, no other frame has a record, and the file images
//! hold the bytes their specs give (invariant 6).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use protocol::{Hello, PAGE_SIZE};

use super::entry::PresentKind;
use super::memory::GuestMemory;
use super::violation::Violation;
use super::walk::Walk;
use crate::model::{Expectations, FileSpec, ModelState};

/// A frame-info record's valid bit.
const VALID: u64 = 1 << 63;
/// Bits a record may hold: valid, file (40–47), page (0–39).
const RECORD: u64 = VALID | (0xff << 40) | ((1 << 40) - 1);

/// The record of page `page` of file `file`.
pub fn record(file: u8, page: u64) -> u64 {
    VALID | u64::from(file) << 40 | page
}

/// Reads the frame-info table (`None` when the layout has none or it
/// cannot be read, which is reported).
fn read_table(mem: &dyn GuestMemory, hello: &Hello, out: &mut Vec<Violation>) -> Option<Vec<u64>> {
    let r = hello.frame_info;
    if r.start == r.end {
        return None;
    }
    let len = hello.total_frames.checked_mul(8)?;
    if r.end.saturating_sub(r.start) < len {
        out.push(Violation::FrameInfo {
            frame: r.start,
            why: format!(
                "the table {:#x}..{:#x} cannot hold {} records",
                r.start, r.end, hello.total_frames
            ),
        });
        return None;
    }
    let mut bytes = vec![0u8; len as usize];
    if let Err(error) = mem.read(r.start, &mut bytes) {
        let what = format!("the frame-info table at {:#x}", r.start);
        out.push(Violation::Unreadable { what, error });
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    )
}

/// Invariant 5 for present file pages: records, writability.
pub fn check_frame_info(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expectations,
    walk: &Walk,
    out: &mut Vec<Violation>,
) {
    let mut mapped: HashMap<u64, u64> = HashMap::new();
    for t in &walk.translations {
        if t.kind == PresentKind::Ram {
            continue;
        }
        let clean = t.kind == PresentKind::MmapClean;
        if t.writable == clean {
            out.push(Violation::StateMismatch {
                path: t.path(),
                expected: format!(
                    "W={} for a {} file page",
                    u8::from(!clean),
                    if clean { "clean" } else { "private" }
                ),
                got: format!("W={}", u8::from(t.writable)),
            });
        }
        if let Some(ModelState::PresentMmap { file, page, .. }) = expect.state(t.virt) {
            mapped.insert(t.frame >> 12, record(file, page));
        } else {
            mapped.insert(t.frame >> 12, 0);
        }
    }
    let Some(table) = read_table(mem, hello, out) else {
        return;
    };
    for t in &walk.translations {
        let n = t.frame >> 12;
        let (Some(&want), Some(&got)) = (mapped.get(&n), table.get(n as usize)) else {
            continue;
        };
        if got & VALID == 0 || (want != 0 && got != want) || got & !RECORD != 0 {
            let expected = if want == 0 {
                "a file record".to_string()
            } else {
                format!(
                    "{want:#x} (file {}, page {:#x})",
                    want >> 40 & 0xff,
                    want & ((1 << 40) - 1)
                )
            };
            out.push(Violation::FrameInfoMismatch {
                path: t.path(),
                frame: t.frame,
                expected,
                got,
            });
        }
    }
    for (n, &raw) in table.iter().enumerate() {
        if raw != 0 && !mapped.contains_key(&(n as u64)) {
            let why = if raw & !RECORD != 0 || raw & VALID == 0 {
                format!("corrupt record {raw:#x}")
            } else {
                format!("record {raw:#x} but no present file page maps the frame")
            };
            out.push(Violation::FrameInfo {
                frame: (n as u64) << 12,
                why,
            });
        }
    }
}

/// The bytes of file `spec`'s image, made once per process (a check
/// compares them with guest memory; making them is the costly part).
fn image_bytes(spec: FileSpec) -> Arc<Vec<u8>> {
    static IMAGES: Mutex<Vec<(FileSpec, Arc<Vec<u8>>)>> = Mutex::new(Vec::new());
    let mut images = IMAGES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, b)) = images.iter().find(|(s, _)| *s == spec) {
        return b.clone();
    }
    let mut bytes = vec![0u8; (spec.pages * PAGE_SIZE) as usize];
    protocol::pattern::fill(spec.seed, 0, &mut bytes);
    let bytes = Arc::new(bytes);
    images.push((spec, bytes.clone()));
    bytes
}

/// Invariant 6 for the file images: every page of every file holds the
/// bytes of its spec.
pub fn check_images(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expectations,
    out: &mut Vec<Violation>,
) {
    let mut buf = [0u8; PAGE_SIZE as usize];
    for (file, info) in hello.files.iter().enumerate() {
        let Some(Some(spec)) = expect.files.get(file) else {
            continue;
        };
        // Page `p` of a file is the pattern at `p * 4096`: the image of
        // the pages the guest reports.
        let image = image_bytes(FileSpec {
            pages: info.pages,
            seed: spec.seed,
        });
        for (page, want) in (0..info.pages).zip(image.chunks_exact(PAGE_SIZE as usize)) {
            let phys = info.image.start + page * PAGE_SIZE;
            if let Err(error) = mem.read(phys, &mut buf) {
                let what = format!("page {page:#x} of file {file} at {phys:#x}");
                out.push(Violation::Unreadable { what, error });
                break;
            }
            if buf[..] == *want {
                continue;
            }
            if let Some(offset) = buf.iter().zip(want).position(|(a, b)| a != b) {
                out.push(Violation::FileImage {
                    file: file as u8,
                    page,
                    phys,
                    offset: offset as u64,
                    expected: want[offset],
                    got: buf[offset],
                });
            }
        }
    }
}

/// The bytes the present page at `virt` must hold: the model's, or for a
/// clean page of a file without a spec, its image in guest memory.
pub fn expected_page<'e>(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &'e Expectations,
    virt: u64,
) -> Option<Cow<'e, [u8; 4096]>> {
    static ZERO: [u8; 4096] = [0; 4096];
    if let Some(b) = expect.bytes(virt) {
        return Some(Cow::Borrowed(b));
    }
    let Some(ModelState::PresentMmap { file, page, .. }) = expect.state(virt) else {
        return Some(Cow::Borrowed(&ZERO));
    };
    if let Some(b) = expect.expected_bytes(virt) {
        return Some(Cow::Owned(b));
    }
    let info = hello.files.get(usize::from(file))?;
    let mut buf = [0u8; 4096];
    mem.read(info.image.start + page * PAGE_SIZE, &mut buf)
        .ok()?;
    Some(Cow::Owned(buf))
}

/// Invariant 3: the file images, the swap store and the frame-info table
/// are boot reservations (the first frame of each that is not is named).
pub fn check_reservations(hello: &Hello, out: &mut Vec<Violation>) {
    let mut parts: Vec<(String, protocol::PhysRange)> = hello
        .files
        .iter()
        .enumerate()
        .map(|(n, f)| (format!("file {n}'s image"), f.image))
        .collect();
    parts.push(("the swap store".into(), hello.swap));
    parts.push(("the frame-info table".into(), hello.frame_info));
    for (what, r) in parts {
        let mut at = r.start & !(PAGE_SIZE - 1);
        while at < r.end {
            if !hello.boot_reserved.iter().any(|b| b.contains(at)) {
                out.push(Violation::NotReserved { what, frame: at });
                break;
            }
            at += PAGE_SIZE;
        }
    }
}
