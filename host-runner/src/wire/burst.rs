//! The bursts: bytes for the serial line made from a seed, each a few
//! pieces of one [`Piece`] kind or another, back to back (a piece with no
//! delimiter of its own runs into the next, as a cut frame would).
//! Burst `k` of seed `s` depends on nothing else.

use protocol::frame::{self, MAX_ENCODED_FRAME};
use protocol::{Request, MAX_BATCH};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::absurd::{self, Fill};

/// What one piece of a burst is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Piece {
    /// Random bytes (zeros among them at a random density).
    Random,
    /// A valid frame cut short: with a delimiter after the cut, or none.
    Truncated,
    /// A valid frame with bits flipped anywhere (a zero may appear and
    /// split it).
    Corrupted,
    /// A valid body with a wrong checksum.
    BadCrc,
    /// A `Batch` whose element count lies (near `u32::MAX`, `u64::MAX`,
    /// `MAX_BATCH + 1`, more than follow).
    WrongLength,
    /// More than [`MAX_ENCODED_FRAME`] bytes without a delimiter.
    Oversize,
    /// A valid frame whose request has absurd fields (0, maxima, edges).
    Absurd,
    /// A body with an unknown tag, privilege, area type, `bool` or an
    /// overlong varint.
    UnknownTag,
    /// `Batch` nested past the depth limit (or just within it).
    DeepNesting,
    /// A batch of exactly [`MAX_BATCH`] requests, or one more.
    MaxBatch,
}

impl Piece {
    pub const ALL: [Piece; 10] = [
        Piece::Random,
        Piece::Truncated,
        Piece::Corrupted,
        Piece::BadCrc,
        Piece::WrongLength,
        Piece::Oversize,
        Piece::Absurd,
        Piece::UnknownTag,
        Piece::DeepNesting,
        Piece::MaxBatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Piece::Random => "random",
            Piece::Truncated => "truncated",
            Piece::Corrupted => "corrupted",
            Piece::BadCrc => "bad-crc",
            Piece::WrongLength => "wrong-length",
            Piece::Oversize => "oversize",
            Piece::Absurd => "absurd",
            Piece::UnknownTag => "unknown-tag",
            Piece::DeepNesting => "deep-nesting",
            Piece::MaxBatch => "max-batch",
        }
    }
}

/// One burst: its bytes and the pieces they were made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Burst {
    pub index: u64,
    pub pieces: Vec<Piece>,
    pub bytes: Vec<u8>,
}

impl Burst {
    /// `random+bad-crc+…`: what the burst held.
    pub fn kinds(&self) -> String {
        let names: Vec<&str> = self.pieces.iter().map(|p| p.name()).collect();
        names.join("+")
    }
}

/// The seed of burst `index` of a campaign seeded `seed`.
fn burst_seed(seed: u64, index: u64) -> u64 {
    seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Burst `index` of the campaign seeded `seed`: one to four pieces. An
/// oversize piece (130 KiB through the UART) comes in one burst in 16.
pub fn burst(seed: u64, index: u64) -> Burst {
    let mut rng = ChaCha8Rng::seed_from_u64(burst_seed(seed, index));
    let n = rng.random_range(1..=4);
    let mut pieces = Vec::with_capacity(n);
    let mut bytes = Vec::new();
    let oversize_ok = rng.random_range(0..16) == 0;
    for _ in 0..n {
        let mut p = Piece::ALL[rng.random_range(0..Piece::ALL.len())];
        if p == Piece::Oversize && !oversize_ok {
            p = Piece::Random;
        }
        bytes.extend(piece(&mut rng, p));
        pieces.push(p);
    }
    Burst {
        index,
        pieces,
        bytes,
    }
}

/// A valid frame of an absurd request (what the other pieces damage).
fn valid_frame(rng: &mut impl Rng) -> Vec<u8> {
    frame::encode(&absurd_request(rng)).expect("a request fits in a frame")
}

fn absurd_request(rng: &mut impl Rng) -> Request {
    let fill = [Fill::Zero, Fill::Max, Fill::Edges][rng.random_range(0..3)];
    let tag = rng.random_range(0..absurd::REQUEST_TAGS);
    match tag {
        // A small batch of absurd requests.
        2 => {
            let n = rng.random_range(0..16);
            Request::Batch(
                (0..n)
                    .map(|_| {
                        let tag = rng.random_range(0..absurd::REQUEST_TAGS);
                        absurd::request(rng, tag, fill)
                    })
                    .collect(),
            )
        }
        t => absurd::request(rng, t, fill),
    }
}

/// `body` with its checksum and COBS, ending with the delimiter, whatever
/// its length (`frame::encode_body` refuses an oversize one).
fn framed_with_crc(body: &[u8], crc: u32) -> Vec<u8> {
    let mut plain = body.to_vec();
    plain.extend_from_slice(&crc.to_le_bytes());
    let mut out = cobs::encode_vec(&plain);
    out.push(0);
    out
}

fn crc32c(body: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(body)
}

fn framed(body: &[u8]) -> Vec<u8> {
    framed_with_crc(body, crc32c(body))
}

/// The bytes of one piece of kind `p`.
pub fn piece(rng: &mut impl Rng, p: Piece) -> Vec<u8> {
    match p {
        Piece::Random => {
            let len = rng.random_range(1..=2048);
            let zeros = rng.random_range(0..=8u32);
            (0..len)
                .map(|_| {
                    if rng.random_range(0..64) < zeros {
                        0
                    } else {
                        rng.random()
                    }
                })
                .collect()
        }
        Piece::Truncated => {
            let mut f = valid_frame(rng);
            let cut = rng.random_range(0..f.len() - 1);
            f.truncate(cut);
            if rng.random() {
                f.push(0);
            }
            f
        }
        Piece::Corrupted => {
            let mut f = valid_frame(rng);
            let last = f.len() - 1;
            for _ in 0..rng.random_range(1..=3) {
                let at = rng.random_range(0..last);
                f[at] ^= 1 << rng.random_range(0..8);
            }
            f
        }
        Piece::BadCrc => {
            let body = postcard::to_allocvec(&absurd_request(rng)).expect("encodes");
            let right = crc32c(&body);
            let wrong = right ^ (1 << rng.random_range(0..32));
            framed_with_crc(&body, wrong)
        }
        Piece::WrongLength => framed(&absurd::lying_length(rng)),
        Piece::Oversize => {
            let len = MAX_ENCODED_FRAME + rng.random_range(1..64);
            (0..len).map(|_| rng.random_range(1..=255u8)).collect()
        }
        Piece::Absurd => valid_frame(rng),
        Piece::UnknownTag => framed(&absurd::unknown_tag(rng)),
        Piece::DeepNesting => {
            let depth = match rng.random_range(0..4) {
                0 => protocol::scan::MAX_BATCH_DEPTH,
                1 => protocol::scan::MAX_BATCH_DEPTH + 1,
                2 => rng.random_range(33..1000),
                _ => 60_000,
            };
            framed(&absurd::nested(depth))
        }
        Piece::MaxBatch => {
            let n = MAX_BATCH + usize::from(rng.random::<bool>());
            let body = postcard::to_allocvec(&absurd::batch_of(rng, n)).expect("encodes");
            framed(&body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::frame::{unframe, FrameError};

    #[test]
    fn a_burst_is_its_seed_and_index_alone() {
        for k in 0..50 {
            assert_eq!(burst(0x5eed, k), burst(0x5eed, k));
        }
        assert_ne!(burst(0x5eed, 1).bytes, burst(0x5eed, 2).bytes);
        assert_ne!(burst(1, 7).bytes, burst(2, 7).bytes);
    }

    #[test]
    fn every_piece_kind_comes_up_and_oversize_rarely() {
        let mut seen = std::collections::BTreeMap::new();
        for k in 0..400 {
            for p in burst(3, k).pieces {
                *seen.entry(p).or_insert(0) += 1;
            }
        }
        for p in Piece::ALL {
            assert!(seen.get(&p).copied().unwrap_or(0) > 0, "{p:?} never made");
        }
        assert!(seen[&Piece::Oversize] < seen[&Piece::Random], "{seen:?}");
    }

    /// The frames of `bytes` (between delimiters, empty ones skipped).
    fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes
            .split(|&b| b == 0)
            .filter(|f| !f.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn each_piece_is_what_its_name_says() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..50 {
            let mut f = frames(&piece(&mut rng, Piece::BadCrc)).remove(0);
            assert!(matches!(unframe(&mut f), Err(FrameError::Checksum { .. })));
            let mut f = frames(&piece(&mut rng, Piece::Absurd)).remove(0);
            assert!(unframe(&mut f).is_ok());
            let o = piece(&mut rng, Piece::Oversize);
            assert!(o.len() > MAX_ENCODED_FRAME && !o.contains(&0));
            let t = piece(&mut rng, Piece::Truncated);
            let mut cut = frames(&t);
            if let Some(f) = cut.first_mut() {
                assert!(unframe(f).is_err(), "a cut frame never checks out");
            }
        }
        let m = piece(&mut rng, Piece::MaxBatch);
        assert!(m.len() < MAX_ENCODED_FRAME, "{} bytes", m.len());
    }
}
