//! The checker tests' synthetic guest memory: a [`synth::Image`](Image)
//! (page tables, frame bitmap and data laid out by hand in a byte vector)
//! of the model tests' layout, small.

use protocol::{Hello, PhysRange};

use super::entry::{NX, P, U, W};
pub use crate::synth::Image;

/// Frames of the image's RAM (the bitmap's last 4 bits are past it).
pub const TOTAL: u64 = 1020;
/// Frames 0..16 are boot reserved (the PML4 at 0x1000, the bitmap at 0x2000).
pub const BOOT: u64 = 16;
pub const KSPACE: u64 = 0xffff_c080_0000_0000;

/// Present usable RAM, software bits 9–11 = 0b001, data (NX).
pub const RAM: u64 = P | 1 << 9 | NX;

impl Image {
    /// 4 MiB of memory, boot frames and the bitmap's tail marked used.
    pub fn small() -> Self {
        Image::sized(TOTAL, 1024)
    }

    /// `frames` frames of memory of which `total` are RAM.
    pub fn sized(total: u64, frames: u64) -> Self {
        // The model tests' layout, on this image's RAM.
        let hello = Hello {
            ram_bytes: total * 4096,
            total_frames: total,
            boot_free_frames: total - BOOT,
            frame_bitmap: PhysRange {
                start: 0x2000,
                end: 0x2000 + frames / 8,
            },
            boot_reserved: vec![PhysRange {
                start: 0,
                end: BOOT * 4096,
            }],
            kernel_image: PhysRange {
                start: 0x8000,
                end: 0x10000,
            },
            heap_max_bytes: 0x1000,
            ..crate::model::tests::hello()
        };
        let mut image = Image::blank(hello, frames);
        for f in (0..BOOT).chain(total..frames) {
            image.set_used(f, true);
        }
        // The kernel's own slot 511 holds a huge page: never walked.
        image.write_u64(0x1000 + 511 * 8, 0x20_0000 | P | W | 1 << 7);
        image
    }

    /// Maps `virt` as present RAM on a new frame; answers the frame.
    pub fn map(&mut self, virt: u64, writable: bool) -> u64 {
        let frame = self.alloc();
        let user = if crate::model::keys::is_user(virt) {
            U
        } else {
            0
        };
        let w = if writable { W } else { 0 };
        self.set_leaf(virt, frame | RAM | w | user);
        frame
    }
}
