//! Frames that decode (or nearly) but say absurd things: every field of a
//! request at 0, at its maximum or at an edge; unknown enum tags; lengths
//! near `u32::MAX` and beyond; `Batch` nested far too deep; batches of
//! exactly [`MAX_BATCH`] requests and one more.
//!
//! Bodies are postcard's encoding ([`protocol::scan`] documents it): a
//! request is its variant's tag (a varint), then its fields in order, each
//! integer a varint, each `bool` and fieldless enum one byte.

use protocol::{AreaType, Privilege, Request, MAX_BATCH, MAX_TOUCH_LEN};
use rand::Rng;

/// Integers at the edges the guest checks: zero, one, page bounds, the
/// canonical holes, the protocol's limits and the integer maxima.
pub const EDGES: &[u64] = &[
    0,
    1,
    2,
    0xfff,
    0x1000,
    0x1001,
    4096 * 4096,
    0x7fff_ffff_f000,
    1 << 47,
    0xffff_8000_0000_0000,
    0xffff_ffff_ffff_f000,
    u32::MAX as u64,
    1 << 32,
    MAX_TOUCH_LEN,
    MAX_TOUCH_LEN + 1,
    u64::MAX / 4096,
    u64::MAX - 1,
    u64::MAX,
];

/// How the fields of one absurd request are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Every integer 0.
    Zero,
    /// Every integer at its type's maximum.
    Max,
    /// Each integer an edge of [`EDGES`].
    Edges,
}

fn int(rng: &mut impl Rng, fill: Fill) -> u64 {
    match fill {
        Fill::Zero => 0,
        Fill::Max => u64::MAX,
        Fill::Edges => EDGES[rng.random_range(0..EDGES.len())],
    }
}

fn privilege(rng: &mut impl Rng) -> Privilege {
    if rng.random() {
        Privilege::Kernel
    } else {
        Privilege::User
    }
}

/// How many request variants there are: tags `0..REQUEST_TAGS`.
pub const REQUEST_TAGS: u8 = 26;

/// A request of variant `tag` (0 to 25, postcard's order) with absurd
/// fields; never one that ends the guest on purpose (`Panic` by the
/// kernel, `Shutdown`): those are `Panic` by a user, which is refused.
pub fn request(rng: &mut impl Rng, tag: u8, fill: Fill) -> Request {
    let p = privilege(rng);
    let mut n = || int(rng, fill);
    let (a, b, c) = (n(), n(), n());
    let file = match fill {
        Fill::Zero => 0,
        _ => u8::MAX,
    };
    let to = match a % 3 {
        0 => AreaType::UsableRam,
        1 => AreaType::Unusable,
        _ => AreaType::PinnedRam,
    };
    // Execute from bit 2 of `c`, and with write only when bit 3 is clear,
    // so all-ones fields are not refused by W^X before range validation.
    let (w, ct) = (b & 1 == 1, c & 2 == 2);
    let x = c & 4 == 4 && (!w || c & 8 == 0);
    match tag % REQUEST_TAGS {
        0 => Request::Hello,
        1 => Request::Ping { nonce: a },
        2 => Request::Batch(Vec::new()),
        3 | 4 => Request::Panic {
            privilege: Privilege::User,
        },
        5 => Request::Map {
            addr: a,
            pages: b,
            writable: w,
            executable: x,
            contiguous: ct,
            privilege: p,
        },
        6 => Request::Unmap {
            addr: a,
            pages: b,
            privilege: p,
        },
        7 => Request::Convert {
            addr: a,
            pages: b,
            to,
            privilege: p,
        },
        8 => Request::Write {
            addr: a,
            len: b,
            seed: c,
            privilege: p,
        },
        9 => Request::Read {
            addr: a,
            len: b,
            privilege: p,
        },
        10 => Request::Query {
            addr: a,
            pages: b,
            privilege: p,
        },
        11 => Request::AllocFrames {
            count: a,
            contiguous: ct,
            privilege: p,
        },
        12 => Request::FreeFrames {
            frame: a,
            count: b,
            privilege: p,
        },
        13 => Request::Valloc {
            pages: a,
            privilege: p,
        },
        14 => Request::Vfree {
            addr: a,
            pages: b,
            privilege: p,
        },
        15 => Request::Stats,
        16 => Request::Reset { privilege: p },
        17 => Request::MapFile {
            addr: a,
            pages: b,
            file,
            file_page: c,
            privilege: p,
        },
        18 => Request::Evict {
            addr: a,
            pages: b,
            privilege: p,
        },
        19 => Request::Kmalloc {
            size: a,
            align: b,
            privilege: p,
        },
        20 => Request::Kfree {
            addr: a,
            privilege: p,
        },
        21 => Request::HeapScavenge { privilege: p },
        22 => Request::CreateSpace { privilege: p },
        // The low 16 bits: mostly no such space, sometimes a live one.
        23 => Request::SwitchSpace {
            space: a as u16,
            privilege: p,
        },
        24 => Request::DestroySpace {
            space: b as u16,
            privilege: p,
        },
        // Space from the low bits of `c`: mostly none that exists.
        _ => Request::Share {
            addr: a,
            pages: b,
            space: c as u16,
            to: c,
            privilege: p,
        },
    }
}

/// A varint (postcard's, LEB128) of `v`.
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A body whose encoding names something that does not exist: a request
/// tag past the last, a privilege or area type of 2 to 255, a `bool` of 2
/// to 255, an overlong varint (11 bytes).
pub fn unknown_tag(rng: &mut impl Rng) -> Vec<u8> {
    let mut body = Vec::new();
    match rng.random_range(0..4) {
        0 => varint(rng.random_range(22..=u32::MAX as u64), &mut body),
        1 => {
            // Reset { privilege: 2.. }
            body.push(16);
            body.push(rng.random_range(2..=255));
        }
        2 => {
            // Map { addr 0x1000, pages 1, writable: 2.., … }
            body.extend([5, 0x80, 0x20, 1, rng.random_range(2..=255), 0, 0]);
        }
        _ => {
            // Ping with an 11-byte varint nonce.
            body.push(1);
            body.extend([0xff; 10]);
            body.push(0x01);
        }
    }
    body
}

/// A `Batch` whose element count is a lie: near `u32::MAX`, `u64::MAX`,
/// one more than [`MAX_BATCH`], or more than the elements that follow.
pub fn lying_length(rng: &mut impl Rng) -> Vec<u8> {
    let count = match rng.random_range(0..5) {
        0 => u32::MAX as u64 - rng.random_range(0..4),
        1 => u32::MAX as u64 + 1,
        2 => u64::MAX,
        3 => MAX_BATCH as u64 + 1,
        _ => rng.random_range(2..64),
    };
    let mut body = vec![2];
    varint(count, &mut body);
    // Fewer elements than announced: `Stats`, one byte each.
    body.extend(std::iter::repeat_n(15u8, rng.random_range(0..8)));
    body
}

/// `Batch` nested `depth` deep around one `Stats`: every level a one-element
/// batch.
pub fn nested(depth: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(depth * 2 + 1);
    for _ in 0..depth {
        body.extend([2, 1]);
    }
    body.push(15);
    body
}

/// A batch of `n` cheap absurd requests (every one refused or answered
/// without work: the frame is about its size, not its requests).
pub fn batch_of(rng: &mut impl Rng, n: usize) -> Request {
    let cheap = [1u8, 9, 10, 15, 3, 13];
    Request::Batch(
        (0..n)
            .map(|_| {
                let tag = cheap[rng.random_range(0..cheap.len())];
                let fill = [Fill::Zero, Fill::Max, Fill::Edges][rng.random_range(0..3)];
                request(rng, tag, fill)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn varints_are_postcards() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut mine = Vec::new();
            varint(v, &mut mine);
            assert_eq!(mine, postcard::to_allocvec(&v).unwrap(), "{v}");
        }
    }

    #[test]
    fn every_tag_makes_its_variant_and_none_ends_the_guest() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for tag in 0..REQUEST_TAGS {
            for fill in [Fill::Zero, Fill::Max, Fill::Edges] {
                let r = request(&mut rng, tag, fill);
                assert!(!matches!(r, Request::Shutdown), "{tag}");
                if let Request::Panic { privilege } = r {
                    assert_eq!(privilege, Privilege::User);
                }
                let body = postcard::to_allocvec(&r).unwrap();
                let expect = if tag == 4 { 3 } else { tag };
                assert_eq!(body[0], expect, "{r:?}");
            }
        }
    }

    #[test]
    fn nesting_and_batches_scan_as_intended() {
        use protocol::scan::{scan, Scan, MAX_BATCH_DEPTH};
        assert_eq!(scan(&nested(MAX_BATCH_DEPTH + 1)), Scan::TooDeep);
        assert!(matches!(scan(&nested(MAX_BATCH_DEPTH - 1)), Scan::Fits(_)));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let full = postcard::to_allocvec(&batch_of(&mut rng, MAX_BATCH)).unwrap();
        assert!(matches!(scan(&full), Scan::Fits(_)));
        let over = postcard::to_allocvec(&batch_of(&mut rng, MAX_BATCH + 1)).unwrap();
        assert!(!matches!(scan(&over), Scan::Fits(_)));
    }
}
