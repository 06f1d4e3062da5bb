//! File mappings in guest memory (formats.rs, "The frame-info table" and
//! "The file images"): each present file page's frame carries the record
//! of its file and page (invariant 5), a clean page is read-only and a
//! private one writable, no other frame has a record, and the file images
//! hold the bytes their specs give (invariant 6).

use std::sync::{Arc, Mutex};

use protocol::{Hello, PAGE_SIZE};

use super::copies::Mirror;
use super::memory::GuestMemory;
use super::violation::Violation;
use super::walk::Translation;
use crate::model::{Expected, FileSpec, ModelState};

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
    expect: &Expected,
    out: &mut Vec<Violation>,
) {
    let mut buf = [0u8; PAGE_SIZE as usize];
    for (file, info) in hello.files.iter().enumerate() {
        let Some(Some(spec)) = expect.files().get(file) else {
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
