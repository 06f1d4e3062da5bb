//! Checks on a request frame's body made before it is decoded, and the
//! decoding itself ([`decode_request`]): what the guest runs on every frame.
//!
//! Decoding (serde) allocates every request of a frame and recurses once
//! per level of `Batch` nesting, while a request costs its frame as little
//! as one byte and a level of nesting two: a 128 KiB frame could ask the
//! kernel for 130,000 decoded requests (several MiB of heap) or nest deep
//! enough to overflow its stack. So the body is first scanned, without
//! building anything ([`scan`]):
//! - a frame naming more than [`MAX_BATCH`] requests inside its batches
//!   (the elements of every `Batch`, nested ones included, counted as they
//!   are announced) is answered `Error(TooLarge)` as a whole, undecoded;
//! - a frame nesting `Batch` deeper than [`MAX_BATCH_DEPTH`] is answered
//!   `BadFrame(Decode)` (a nested batch would be refused with
//!   `NestedBatch` anyway);
//! - a body with bytes after its one request is answered `BadFrame(Decode)`.
//!
//! The scan walks postcard's encoding of a `Request`: every variant but
//! `Batch` is a fixed list of varints and single bytes. Its tests prove the
//! table against postcard's own encoding of every variant, so a protocol
//! change cannot leave it silently wrong.

use crate::frame::{self, FrameError};
use crate::{Error, Request, Response, MAX_BATCH};

/// Deepest `Batch` nesting decoded (the top-level batch is depth 1).
pub const MAX_BATCH_DEPTH: usize = 32;

/// Postcard tag of `Request::Batch`.
const BATCH: u64 = 2;

/// What [`scan`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// One whole request of this many bytes, nested at most
    /// [`MAX_BATCH_DEPTH`] deep, with at most [`MAX_BATCH`] requests in its
    /// batches.
    Fits(usize),
    /// Nested deeper than [`MAX_BATCH_DEPTH`]: do not decode.
    TooDeep,
    /// Its batches announce more than [`MAX_BATCH`] requests in all: do
    /// not decode.
    TooMany,
    /// Not a request this scan understands (truncated, or an unknown tag);
    /// the nesting and the count seen so far were within their limits, so
    /// decoding is safe and will report the error.
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
/// order in [`Request`]), `Batch` excepted.
fn fields(tag: u64) -> Option<&'static [Field]> {
    use Field::{Byte as B, Varint as V};
    Some(match tag {
        0 | 4 | 15 => &[],                  // Hello, Shutdown, Stats
        1 | 3 | 16 => &[V],                 // Ping, Panic, Reset
        5 => &[V, V, B, B, B, V],           // Map
        6 | 9 | 10 | 12 | 14 => &[V, V, V], // Unmap, Read, Query, FreeFrames, Vfree
        7 | 8 => &[V, V, V, V],             // Convert, Write
        11 => &[V, B, V],                   // AllocFrames
        13 => &[V, V],                      // Valloc
        17 => &[V, V, B, V, V],             // MapFile
        18 | 19 => &[V, V, V],              // Evict, Kmalloc
        20 => &[V, V],                      // Kfree
        21 | 22 => &[V],                    // HeapScavenge, CreateSpace
        23 | 24 => &[V, V],                 // SwitchSpace, DestroySpace
        25 => &[V, V, V, V, V],             // Share
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

/// Scans the postcard body of one `Request` (see the module's doc).
pub fn scan(body: &[u8]) -> Scan {
    // Elements still to read in each open batch, innermost last.
    let mut open = [0u64; MAX_BATCH_DEPTH];
    let mut depth = 0;
    let mut pos = 0;
    let mut announced = 0u64;
    loop {
        let Some(tag) = varint(body, &mut pos) else {
            return Scan::Unparsed;
        };
        if tag == BATCH {
            let Some(n) = varint(body, &mut pos) else {
                return Scan::Unparsed;
            };
            announced = announced.saturating_add(n);
            if announced > MAX_BATCH as u64 {
                return Scan::TooMany;
            }
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

/// The requests a frame carrying `request` holds inside its batches, as
/// [`scan`] counts them: the elements of every `Batch`, nested ones
/// included (0 for a request that is not a batch). Above [`MAX_BATCH`],
/// the guest answers `Error(TooLarge)`.
pub fn batch_elements(request: &Request) -> usize {
    match request {
        Request::Batch(reqs) => reqs
            .iter()
            .map(batch_elements)
            .fold(reqs.len(), usize::saturating_add),
        _ => 0,
    }
}

/// Why a received frame was not decoded into a request; the guest sends
/// [`Refusal::answer`] instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not one request: answered `BadFrame`.
    Frame(FrameError),
    /// More than [`MAX_BATCH`] requests in its batches: answered
    /// `Error(TooLarge)`.
    TooLarge,
}

impl Refusal {
    /// The answer to the refused frame.
    pub fn answer(self) -> Response {
        match self {
            Refusal::Frame(e) => Response::BadFrame(e),
            Refusal::TooLarge => Response::Error(Error::TooLarge),
        }
    }
}

/// Unframes one received request frame (without its delimiter) and decodes
/// it after the checks of the module's doc.
pub fn decode_request(bytes: &mut [u8]) -> Result<Request, Refusal> {
    let body = frame::unframe(bytes).map_err(Refusal::Frame)?;
    match scan(body) {
        Scan::TooMany => return Err(Refusal::TooLarge),
        Scan::TooDeep => return Err(Refusal::Frame(FrameError::Decode)),
        Scan::Fits(_) | Scan::Unparsed => {}
    }
    match postcard::take_from_bytes::<Request>(body) {
        Ok((request, [])) => Ok(request),
        Ok(_) | Err(_) => Err(Refusal::Frame(FrameError::Decode)),
    }
}

#[cfg(test)]
mod tests;
