//! The file images a guest boots with: one blob passed as QEMU's `-initrd`
//! (QEMU's PVH loader hands it over as the first module of
//! `hvm_start_info`), in the format of `protocol::formats` ("The file
//! images"). Contents come from `(pages, seed)` alone, so a trace header
//! names its files and the host knows every byte.

pub use trace::FileSpec;

use zerocopy::little_endian::{U32, U64};
use zerocopy::{Immutable, IntoBytes, KnownLayout};

const PAGE: usize = 4096;

/// The blob's header (formats.rs, "The file images"): the host's own
/// definition (the guest keeps its own).
#[derive(IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct Header {
    magic: [u8; 8],
    version: U32,
    count: U32,
}

/// One file's record, after the header.
#[derive(IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct Record {
    /// Where the file's first page is, from the blob's start.
    offset: U64,
    pages: U64,
}

/// The blob for `files`: a header page (more if the records need it), then
/// each file page aligned, in order.
pub fn build_blob(files: &[FileSpec]) -> Vec<u8> {
    const HEADER: usize = size_of::<Header>();
    const RECORD: usize = size_of::<Record>();
    let header = (HEADER + RECORD * files.len()).div_ceil(PAGE) * PAGE;
    let data: usize = files.iter().map(|f| f.pages as usize * PAGE).sum();
    let mut blob = vec![0u8; header + data];
    let head = Header {
        magic: *b"VMMFILES",
        version: 1.into(),
        count: (files.len() as u32).into(),
    };
    blob[..HEADER].copy_from_slice(head.as_bytes());
    let mut offset = header;
    for (i, f) in files.iter().enumerate() {
        let rec = HEADER + RECORD * i;
        let record = Record {
            offset: (offset as u64).into(),
            pages: f.pages.into(),
        };
        blob[rec..rec + RECORD].copy_from_slice(record.as_bytes());
        let len = f.pages as usize * PAGE;
        protocol::pattern::fill(f.seed, 0, &mut blob[offset..offset + len]);
        offset += len;
    }
    blob
}

/// Byte `offset` of a file.
pub fn file_byte(file: &FileSpec, offset: u64) -> u8 {
    protocol::pattern::pattern_byte(file.seed, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_holds_each_file_page_aligned_with_its_pattern() {
        let files = [
            FileSpec { pages: 2, seed: 7 },
            FileSpec { pages: 1, seed: 9 },
        ];
        let b = build_blob(&files);
        assert_eq!(&b[..8], b"VMMFILES");
        assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), 2);
        let rec = |i: usize| {
            let r = &b[16 + 16 * i..32 + 16 * i];
            (
                u64::from_le_bytes(r[..8].try_into().unwrap()) as usize,
                u64::from_le_bytes(r[8..].try_into().unwrap()),
            )
        };
        assert_eq!(rec(0), (4096, 2));
        assert_eq!(rec(1), (3 * 4096, 1));
        for (i, f) in files.iter().enumerate() {
            let (off, pages) = rec(i);
            for o in (0..pages * 4096).step_by(577) {
                assert_eq!(b[off + o as usize], file_byte(f, o));
            }
        }
        assert_eq!(b.len(), 4 * 4096);
    }
}
