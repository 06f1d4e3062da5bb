//! A guard against deeply nested `Batch` requests, checked before decoding.
//!
//! Decoding (serde) and dropping a `Request` recurse once per level of
//! `Batch` nesting, and each level costs only two bytes of frame: a 10 KiB
//! frame of nested batches would overflow the kernel stack. The protocol
//! answers a nested batch with `NestedBatch` anyway, so nothing is lost by
//! refusing frames that nest deeper than [`MAX_BATCH_DEPTH`]; they are
//! answered `BadFrame(Decode)`.
//!
//! The scan walks the postcard encoding of a `Request` without building it:
//! every variant but `Batch` is a fixed list of varints and single bytes. [`self_check`] runs at
//! boot and proves the table against postcard's own encoding of every
//! variant, so a protocol change cannot leave it silently wrong.

use alloc::vec;

use protocol::{AreaType, Privilege, Request};

/// Deepest `Batch` nesting decoded (the top-level batch is depth 1).
pub const MAX_BATCH_DEPTH: usize = 32;

/// Postcard tag of `Request::Batch`.
const BATCH: u64 = 2;

/// What [`scan`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// One whole request of this many bytes, nested at most
    /// `MAX_BATCH_DEPTH` deep.
    Fits(usize),
    /// Nested deeper than `MAX_BATCH_DEPTH`: do not decode.
    TooDeep,
    /// Not a request this scan understands (truncated, or an unknown tag);
    /// the nesting seen so far was within the limit, so decoding is safe
    /// and will report the error.
    Unparsed,
}

/// How postcard encodes one field.
#[derive(Clone, Copy)]
enum Field {
    /// Integers wider than a byte, unit enums (`Privilege`, `AreaType`).
    Varint,
    /// `u8` and `bool`: one raw byte.
    Byte,
}

/// The fields of the request variant with postcard tag `tag` (declaration
/// order in `protocol::Request`), `Batch` excepted.
fn fields(tag: u64) -> Option<&'static [Field]> {
    use Field::{Byte as B, Varint as V};
    Some(match tag {
        0 | 4 | 15 => &[],                  // Hello, Shutdown, Stats
        1 | 3 | 16 => &[V],                 // Ping, Panic, Reset
        5 => &[V, V, B, B, V],              // Map
        6 | 9 | 10 | 12 | 14 => &[V, V, V], // Unmap, Read, Query, FreeFrames, Vfree
        7 | 8 => &[V, V, V, V],             // Convert, Write
        11 => &[V, B, V],                   // AllocFrames
        13 => &[V, V],                      // Valloc
        17 => &[V, V, B, V, V],             // MapFile
        18 | 19 => &[V, V, V],              // Evict, Kmalloc
        20 => &[V, V],                      // Kfree
        21 => &[V],                         // HeapScavenge
        _ => return None,
    })
}

/// Reads one varint at `*pos`.
fn varint(body: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *body.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Scans the postcard body of one `Request`.
pub fn scan(body: &[u8]) -> Scan {
    // Elements still to read in each open batch, innermost last.
    let mut open = [0u64; MAX_BATCH_DEPTH];
    let mut depth = 0;
    let mut pos = 0;
    loop {
        let Some(tag) = varint(body, &mut pos) else {
            return Scan::Unparsed;
        };
        if tag == BATCH {
            let Some(n) = varint(body, &mut pos) else {
                return Scan::Unparsed;
            };
            if depth == MAX_BATCH_DEPTH {
                return Scan::TooDeep;
            }
            open[depth] = n;
            depth += 1;
        } else {
            let Some(fields) = fields(tag) else {
                return Scan::Unparsed;
            };
            for field in fields {
                let read = match field {
                    Field::Varint => varint(body, &mut pos).is_some(),
                    Field::Byte => {
                        pos += 1;
                        pos <= body.len()
                    }
                };
                if !read {
                    return Scan::Unparsed;
                }
            }
        }
        // Find the next request to read: the next element of the innermost
        // batch that has one left, closing the batches that are complete.
        loop {
            if depth == 0 {
                return Scan::Fits(pos);
            }
            if open[depth - 1] > 0 {
                open[depth - 1] -= 1;
                break;
            }
            depth -= 1;
        }
    }
}

/// Checks [`scan`] against postcard's encoding of every request variant;
/// panics (at boot) if they disagree.
pub fn self_check() {
    let k = Privilege::Kernel;
    let big = u64::MAX;
    let samples = [
        Request::Hello,
        Request::Ping { nonce: big },
        Request::Batch(vec![Request::Stats, Request::Batch(vec![])]),
        Request::Panic { privilege: k },
        Request::Shutdown,
        Request::Map {
            addr: big,
            pages: big,
            writable: true,
            contiguous: true,
            privilege: k,
        },
        Request::Unmap {
            addr: big,
            pages: big,
            privilege: k,
        },
        Request::Convert {
            addr: big,
            pages: big,
            to: AreaType::Unusable,
            privilege: k,
        },
        Request::Write {
            addr: big,
            len: big,
            seed: big,
            privilege: k,
        },
        Request::Read {
            addr: big,
            len: big,
            privilege: k,
        },
        Request::Query {
            addr: big,
            pages: big,
            privilege: k,
        },
        Request::AllocFrames {
            count: big,
            contiguous: true,
            privilege: k,
        },
        Request::FreeFrames {
            frame: big,
            count: big,
            privilege: k,
        },
        Request::Valloc {
            pages: big,
            privilege: Privilege::User,
        },
        Request::Vfree {
            addr: big,
            pages: big,
            privilege: k,
        },
        Request::Stats,
        Request::Reset { privilege: k },
        Request::MapFile {
            addr: big,
            pages: big,
            file: u8::MAX,
            file_page: big,
            privilege: k,
        },
        Request::Evict {
            addr: big,
            pages: big,
            privilege: k,
        },
        Request::Kmalloc {
            size: big,
            align: big,
            privilege: k,
        },
        Request::Kfree {
            addr: big,
            privilege: k,
        },
        Request::HeapScavenge { privilege: k },
    ];
    for (i, sample) in samples.iter().enumerate() {
        // Exhaustive on purpose: a new variant must be added above.
        let index = match sample {
            Request::Hello => 0,
            Request::Ping { .. } => 1,
            Request::Batch(_) => 2,
            Request::Panic { .. } => 3,
            Request::Shutdown => 4,
            Request::Map { .. } => 5,
            Request::Unmap { .. } => 6,
            Request::Convert { .. } => 7,
            Request::Write { .. } => 8,
            Request::Read { .. } => 9,
            Request::Query { .. } => 10,
            Request::AllocFrames { .. } => 11,
            Request::FreeFrames { .. } => 12,
            Request::Valloc { .. } => 13,
            Request::Vfree { .. } => 14,
            Request::Stats => 15,
            Request::Reset { .. } => 16,
            Request::MapFile { .. } => 17,
            Request::Evict { .. } => 18,
            Request::Kmalloc { .. } => 19,
            Request::Kfree { .. } => 20,
            Request::HeapScavenge { .. } => 21,
        };
        assert_eq!(index, i, "request samples out of order");
        let mut buf = [0u8; 128];
        let bytes = postcard::to_slice(sample, &mut buf).expect("sample request encodes");
        assert_eq!(
            scan(bytes),
            Scan::Fits(bytes.len()),
            "batch-depth scan disagrees with postcard on {sample:?}"
        );
    }
    // Batch(vec![Batch(vec![... Hello])]) nested `n` deep.
    let nested = |n: usize, buf: &mut [u8]| {
        for pair in buf[..2 * n].chunks_exact_mut(2) {
            pair.copy_from_slice(&[BATCH as u8, 1]);
        }
        buf[2 * n] = 0;
        2 * n + 1
    };
    let mut buf = [0u8; 2 * MAX_BATCH_DEPTH + 3];
    let len = nested(MAX_BATCH_DEPTH, &mut buf);
    assert_eq!(scan(&buf[..len]), Scan::Fits(len), "batch-depth limit");
    let len = nested(MAX_BATCH_DEPTH + 1, &mut buf);
    assert_eq!(scan(&buf[..len]), Scan::TooDeep, "batch-depth limit");
}
