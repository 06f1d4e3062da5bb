//! Framing: how a message travels over the serial line.
//!
//! A frame is `COBS(postcard(message) ‖ crc32c_le(postcard(message))) ‖ 0x00`.
//! COBS removes every zero byte from the body, so the zero delimiter always
//! marks a frame's end: after any damage (a dropped, flipped or inserted
//! byte) the receiver loses at most the frame it was in and resynchronizes at
//! the next zero. The CRC-32C catches corruption that still decodes.
//! An empty frame (two zeros in a row) is not an error: senders may emit a
//! lone zero to flush a receiver's partial frame, and the shared-memory
//! transport's doorbell is one ([`crate::ring`]).

use core::fmt;

use serde::{Deserialize, Serialize};

/// The frame limit, stated once for both sides: the largest frame body
/// (postcard bytes plus the checksum, before COBS encoding) either side
/// sends or accepts. Every other size is derived from it.
pub const MAX_FRAME: usize = 128 * 1024;

/// Largest encoded frame, delimiter included: [`MAX_FRAME`] bytes of body
/// with no zero among them (COBS's worst case) and the delimiter. A
/// receiver's buffer of this many bytes holds every legal frame.
pub const MAX_ENCODED_FRAME: usize = cobs::max_encoding_length(MAX_FRAME) + 1;

const CHECKSUM_LEN: usize = 4;

static CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// What can be wrong with a received frame, or with a message to send.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameError {
    /// A frame whose body and checksum exceed [`MAX_FRAME`] bytes (more
    /// than [`MAX_ENCODED_FRAME`]` - 1` bytes arrived before a delimiter,
    /// or they decode to more than [`MAX_FRAME`]).
    TooLong,
    /// The bytes are not valid COBS.
    Cobs,
    /// The frame is shorter than its checksum.
    TooShort { len: u32 },
    /// The checksum does not match the body.
    Checksum { expected: u32, computed: u32 },
    /// The checksum matches but the body is not a message of the expected
    /// type (a peer of another protocol version, or a bug).
    Decode,
    /// The message to send does not fit in [`MAX_FRAME`].
    Encode,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong => write!(
                f,
                "frame too long: over {MAX_FRAME} bytes of body and checksum \
                 ({} encoded bytes before its delimiter)",
                MAX_ENCODED_FRAME - 1
            ),
            FrameError::Cobs => write!(f, "frame is not valid COBS"),
            FrameError::TooShort { len } => {
                write!(f, "frame of {len} bytes is shorter than its checksum")
            }
            FrameError::Checksum { expected, computed } => write!(
                f,
                "frame checksum mismatch: frame says {expected:#010x}, body gives {computed:#010x}"
            ),
            FrameError::Decode => write!(f, "frame body is not a valid message"),
            FrameError::Encode => write!(f, "message does not fit in a frame"),
        }
    }
}

impl core::error::Error for FrameError {}

/// Encodes `message` as a frame into `out`, using `scratch` for the plain
/// body; returns the frame (delimiter included). Allocates nothing, so the
/// guest can use it from its panic handler.
pub fn encode_into<'o, T: Serialize + ?Sized>(
    message: &T,
    scratch: &mut [u8],
    out: &'o mut [u8],
) -> Result<&'o [u8], FrameError> {
    let body_cap = scratch.len().min(MAX_FRAME);
    let body = postcard::to_slice(
        message,
        &mut scratch[..body_cap.saturating_sub(CHECKSUM_LEN)],
    )
    .map_err(|_| FrameError::Encode)?;
    let body_len = body.len();
    let crc = CRC32C.checksum(&scratch[..body_len]).to_le_bytes();
    scratch[body_len..body_len + CHECKSUM_LEN].copy_from_slice(&crc);
    let plain = &scratch[..body_len + CHECKSUM_LEN];
    let n = cobs::try_encode(plain, out).map_err(|_| FrameError::Encode)?;
    let end = out.get_mut(n).ok_or(FrameError::Encode)?;
    *end = 0;
    Ok(&out[..=n])
}

/// Encodes `message` as a frame (delimiter included).
pub fn encode<T: Serialize + ?Sized>(message: &T) -> Result<alloc::vec::Vec<u8>, FrameError> {
    let body = postcard::to_allocvec(message).map_err(|_| FrameError::Encode)?;
    encode_body(&body)
}

/// Frames a message body made by hand (postcard bytes, or anything a test
/// sends): appends its checksum, COBS encodes, ends with the delimiter.
/// Refuses a body whose checksummed length exceeds [`MAX_FRAME`].
pub fn encode_body(body: &[u8]) -> Result<alloc::vec::Vec<u8>, FrameError> {
    if body.len() + CHECKSUM_LEN > MAX_FRAME {
        return Err(FrameError::Encode);
    }
    let mut plain = alloc::vec::Vec::with_capacity(body.len() + CHECKSUM_LEN);
    plain.extend_from_slice(body);
    plain.extend_from_slice(&CRC32C.checksum(body).to_le_bytes());
    let mut out = cobs::encode_vec(&plain);
    out.push(0);
    Ok(out)
}

/// Checks one received frame (without its delimiter) in place: undoes COBS,
/// verifies the checksum, and returns the message body.
pub fn unframe(frame: &mut [u8]) -> Result<&[u8], FrameError> {
    if frame.len() > cobs::max_encoding_length(MAX_FRAME) {
        return Err(FrameError::TooLong);
    }
    let len = cobs::decode_in_place(frame).map_err(|_| FrameError::Cobs)?;
    // Zero bytes in the body shorten its encoding: a body over the limit
    // can arrive in few enough encoded bytes.
    if len > MAX_FRAME {
        return Err(FrameError::TooLong);
    }
    if len < CHECKSUM_LEN {
        return Err(FrameError::TooShort { len: len as u32 });
    }
    let (body, crc) = frame[..len].split_at(len - CHECKSUM_LEN);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = CRC32C.checksum(body);
    if expected != computed {
        return Err(FrameError::Checksum { expected, computed });
    }
    Ok(body)
}

/// Decodes one received frame (without its delimiter) in place into a
/// message of type `T`.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<T, FrameError> {
    let body = unframe(frame)?;
    postcard::from_bytes(body).map_err(|_| FrameError::Decode)
}

/// What one more byte did to a [`FrameAccumulator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// The frame is not complete yet.
    Pending,
    /// A zero byte ended an empty frame: nothing to decode (a flush, or a
    /// doorbell).
    Empty,
    /// A complete frame of this many bytes waits in the buffer
    /// ([`FrameAccumulator::frame`]).
    Frame(usize),
    /// A frame ended that was longer than the buffer; it was dropped.
    TooLong,
}

/// Collects bytes from a stream into frames, in a buffer of fixed size.
#[derive(Debug)]
pub struct FrameAccumulator<B> {
    buf: B,
    len: usize,
    overflowed: bool,
}

impl<B: AsMut<[u8]>> FrameAccumulator<B> {
    /// An accumulator that stores frames in `buf` (at most its length).
    pub const fn new(buf: B) -> Self {
        FrameAccumulator {
            buf,
            len: 0,
            overflowed: false,
        }
    }

    /// Takes one byte of the stream.
    pub fn push(&mut self, byte: u8) -> Feed {
        if byte == 0 {
            let feed = if self.overflowed {
                Feed::TooLong
            } else if self.len == 0 {
                Feed::Empty
            } else {
                Feed::Frame(self.len)
            };
            self.len = 0;
            self.overflowed = false;
            return feed;
        }
        if self.overflowed {
            return Feed::Pending;
        }
        match self.buf.as_mut().get_mut(self.len) {
            Some(slot) => {
                *slot = byte;
                self.len += 1;
            }
            None => self.overflowed = true,
        }
        Feed::Pending
    }

    /// The frame a [`Feed::Frame`] announced (valid until the next push).
    pub fn frame(&mut self, len: usize) -> &mut [u8] {
        let buf = self.buf.as_mut();
        let len = len.min(buf.len());
        &mut buf[..len]
    }

    /// Whether part of a frame has arrived (its end has not).
    pub fn in_frame(&self) -> bool {
        self.len > 0 || self.overflowed
    }

    /// Drops any partial frame.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }
}

#[cfg(test)]
mod tests;
