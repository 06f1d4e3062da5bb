//! Invariant 6 for the file images (formats.rs, "The file images"): every
//! page of every file with a spec holds the bytes the spec gives. A full
//! check compares them all, megabytes at the default files: the largest
//! part of a fresh state's check, so its pages can be split between the
//! check's own thread and its data thread ([`Checker::full`]).
//!
//! [`Checker::full`]: super::Checker::full

use std::ops::Range;
use std::sync::{Arc, Mutex};

use protocol::{Hello, PAGE_SIZE};

use super::memory::GuestMemory;
use super::violation::Violation;
use crate::model::{Expected, FileSpec};

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

/// The pages of all files' images, one after another in `hello`'s order:
/// what [`check_images`] numbers its range in.
pub fn image_pages(hello: &Hello) -> u64 {
    hello.files.iter().map(|f| f.pages).sum()
}

/// Invariant 6 for pages `pages` of the file images, numbered one file
/// after another ([`image_pages`]); a file without a spec is skipped but
/// numbered. Two adjacent ranges report, one after the other, what the
/// two together do, but for an image that cannot be read: an unreadable
/// page ends its file's part of a range, so a file split between two
/// ranges is reported unreadable in each part that reaches the pages it
/// cannot read (in a well-formed guest every image is a boot reservation
/// in RAM, which `mmap::check_reservations` checks).
pub fn check_images(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expected,
    pages: Range<u64>,
    out: &mut Vec<Violation>,
) {
    // The incremental check's range is empty: no files to look through.
    if pages.is_empty() {
        return;
    }
    let mut buf = [0u8; PAGE_SIZE as usize];
    let mut first = 0u64;
    for (file, info) in hello.files.iter().enumerate() {
        // This file's pages in the numbering; of them, `lo..hi` in range.
        let own = first..first + info.pages;
        first = own.end;
        let lo = pages.start.max(own.start) - own.start;
        let hi = pages.end.min(own.end).saturating_sub(own.start);
        let Some(Some(spec)) = expect.files().get(file) else {
            continue;
        };
        if lo >= hi {
            continue;
        }
        // Page `p` of a file is the pattern at `p * 4096`: the image of
        // the pages the guest reports.
        let image = image_bytes(FileSpec {
            pages: info.pages,
            seed: spec.seed,
        });
        for page in lo..hi {
            let want = &image[(page * PAGE_SIZE) as usize..][..PAGE_SIZE as usize];
            let phys = info.image.start + page * PAGE_SIZE;
            let unreadable = |error| {
                let what = format!("page {page:#x} of file {file} at {phys:#x}");
                Violation::Unreadable { what, error }
            };
            // Compared in place; read only to name the first difference.
            match mem.holds(phys, want) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    out.push(unreadable(error));
                    break;
                }
            }
            if let Err(error) = mem.read(phys, &mut buf) {
                out.push(unreadable(error));
                break;
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
