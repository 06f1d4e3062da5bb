//! File mappings in guest memory (formats.rs, "The frame-info table" and
//! "The file images"): each present file page's frame carries the record
//! of its file and page (invariant 5), a clean page is read-only and a
//! private one writable, no other frame has a record; the file images are
//! boot reservations (their bytes: `super::file_images`).

use protocol::{Hello, PAGE_SIZE};

use super::copies::Mirror;
use super::memory::GuestMemory;
use super::violation::Violation;
use super::walk::Translation;
use crate::model::{Expected, ModelState};

/// A frame-info record's valid bit.
const VALID: u64 = 1 << 63;
/// Bits a record may hold: valid, file (40–47), page (0–39).
const RECORD: u64 = VALID | (0xff << 40) | ((1 << 40) - 1);

/// The record of page `page` of file `file`.
pub fn record(file: u8, page: u64) -> u64 {
    VALID | u64::from(file) << 40 | page
}

/// Reads the frame-info table into `info` (reused); `None` when the
/// layout has none or it cannot be read (which is reported).
pub fn read_info(
    mem: &dyn GuestMemory,
    hello: &Hello,
    mut info: Mirror,
    out: &mut Vec<Violation>,
) -> Option<Mirror> {
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
    if let Err(error) = info.sync(mem, r.start, len, |_, _, _| {}) {
        let what = format!("the frame-info table at {:#x}", r.start);
        out.push(Violation::Unreadable { what, error });
        return None;
    }
    Some(info)
}

/// The record the model expects on the frame of the file page `t` (0 when
/// the model expects no file page there).
fn wanted(expect: &Expected, t: &Translation) -> u64 {
    match expect.state(t.virt) {
        Some(ModelState::PresentMmap { file, page, .. }) => record(file, page),
        _ => 0,
    }
}

/// Invariant 5 for frame number `n`, whose record is `got`: `maps` are the
/// pages mapping it, in walk order. A frame no file page maps holds no
/// record; one that file pages map holds the last one's.
pub fn check_frame(
    expect: &Expected,
    n: u64,
    got: u64,
    maps: &[&Translation],
    out: &mut Vec<Violation>,
) {
    let Some(last) = maps.iter().rev().find(|t| t.kind.is_file()) else {
        // A shared record is the sharing rule's (`super::sharing`).
        if got != 0 && !super::sharing::is_shared_record(got) {
            let why = if got & !RECORD != 0 || got & VALID == 0 {
                format!("corrupt record {got:#x}")
            } else {
                format!("record {got:#x} but no present file page maps the frame")
            };
            out.push(Violation::FrameInfo {
                frame: n << 12,
                why,
            });
        }
        return;
    };
    let want = wanted(expect, last);
    for t in maps {
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
}

/// Invariant 5 for every frame: the frames file pages map, then a scan
/// for records on any other frame.
pub fn check_all(
    expect: &Expected,
    info: &Mirror,
    translations: &[Translation],
    out: &mut Vec<Violation>,
) {
    let mut mmap: Vec<u64> = translations
        .iter()
        .filter(|t| t.kind.is_file())
        .map(|t| t.frame >> 12)
        .collect();
    mmap.sort_unstable();
    mmap.dedup();
    if !mmap.is_empty() {
        let mut maps: Vec<(u64, usize)> = translations
            .iter()
            .enumerate()
            .filter(|(_, t)| mmap.binary_search(&(t.frame >> 12)).is_ok())
            .map(|(i, t)| (t.frame >> 12, i))
            .collect();
        maps.sort_unstable();
        for group in maps.chunk_by(|a, b| a.0 == b.0) {
            let n = group[0].0;
            if n >= (info.bytes.len() / 8) as u64 {
                continue;
            }
            let got = info.word(n as usize);
            let ts: Vec<&Translation> = group.iter().map(|&(_, i)| &translations[i]).collect();
            check_frame(expect, n, got, &ts, out);
        }
    }
    for &n in info.nonzero() {
        if mmap.binary_search(&(n as u64)).is_err() {
            check_frame(expect, n as u64, info.word(n), &[], out);
        }
    }
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
        // Page by page, a reservation's pages at a time.
        let mut at = r.start & !(PAGE_SIZE - 1);
        while at < r.end {
            let Some(b) = hello.boot_reserved.iter().find(|b| b.contains(at)) else {
                out.push(Violation::NotReserved { what, frame: at });
                break;
            };
            at += (b.end - at).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        }
    }
}
