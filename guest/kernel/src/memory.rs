//! Physical memory at boot: RAM from the PVH memory map, the boot
//! reservations and where the frame bitmap goes.

use alloc::vec::Vec;
use vmm_core::conv::usize_of;

use protocol::{PhysRange, PAGE_SIZE};
use vmm_core::config::FileImage;

use crate::boot::{self, BootInfo, E820_RAM};

/// Below this everything is firmware's (real-mode IVT, BIOS data, start
/// info, option ROMs): reserved even where the map says RAM.
pub const LOW_RESERVED_END: u64 = 0x10_0000;

/// What boot found and decided about physical memory.
#[derive(Debug)]
pub struct PhysLayout {
    /// Bytes of RAM in the memory map (E820 type 1).
    pub ram_bytes: u64,
    /// RAM ranges shrunk to whole frames, sorted, disjoint.
    pub ram: Vec<PhysRange>,
    /// Frames the allocator manages: up to the end of the highest RAM.
    pub total_frames: u64,
    /// The kernel image (page aligned).
    pub kernel_image: PhysRange,
    /// The frame bitmap, exact bytes (it starts page aligned right after the
    /// image).
    pub bitmap: PhysRange,
    /// The allocator's copy of the bitmap at the boot point, as long, on
    /// the pages right after the bitmap's.
    pub bitmap_boot: PhysRange,
    /// The allocator's record of the frames known to hold only zeros
    /// (`vmm_core::frames`), as long, on the pages right after the boot
    /// copy's.
    pub bitmap_zero: PhysRange,
    /// What the kernel reserves inside RAM: the first MiB, the image, the
    /// bitmap's pages, its boot copy's and the zero record's.
    pub reserved: Vec<PhysRange>,
    /// Every frame marked used at boot, as ranges: `[0, total_frames * 4096)`
    /// less (RAM less reservations).
    pub boot_reserved: Vec<PhysRange>,
    /// Frames free at boot.
    pub boot_free_frames: u64,
    /// The files of the host's blob (`protocol::formats`, "The file
    /// images"), inside the blob's frames (a boot reservation).
    pub files: Vec<FileImage>,
}

/// The files of the blob at `blob` (read through the boot identity map, so
/// call before `paging::init`). Panics on a malformed blob: the host built
/// it, and a guest that silently dropped files would mislead it.
fn read_blob(blob: PhysRange) -> Vec<FileImage> {
    let len = blob.end - blob.start;
    assert!(
        blob.start % PAGE_SIZE == 0 && blob.end <= 1 << 30 && len >= 16,
        "file blob {blob:x?} is not page aligned inside the first GiB"
    );
    let p = blob.start as *const u8;
    let mut head = [0u8; 16];
    // SAFETY: 16 bytes inside the blob, which QEMU loaded into RAM below
    // 1 GiB (checked above): identity mapped at this point of boot.
    unsafe { core::ptr::copy_nonoverlapping(p, head.as_mut_ptr(), 16) };
    assert_eq!(&head[..8], b"VMMFILES", "file blob: bad magic");
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    assert_eq!(word(&head[8..12]), 1, "file blob: unknown version");
    let count = u64::from(word(&head[12..16]));
    assert!(
        usize_of(count) <= protocol::MAX_FILES && 16 + count * 16 <= len,
        "file blob: {count} files"
    );
    (0..count)
        .map(|i| {
            let mut rec = [0u8; 16];
            // SAFETY: record `i` lies inside the blob (checked above).
            unsafe {
                core::ptr::copy_nonoverlapping(p.add(16 + 16 * usize_of(i)), rec.as_mut_ptr(), 16)
            };
            let offset = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
            let pages = u64::from_le_bytes(rec[8..].try_into().expect("8 bytes"));
            let end = pages
                .checked_mul(PAGE_SIZE)
                .and_then(|b| b.checked_add(offset));
            assert!(
                offset % PAGE_SIZE == 0 && end.is_some_and(|e| e <= len),
                "file blob: file {i} at {offset:#x}, {pages} pages, outside the blob"
            );
            FileImage {
                pages,
                start: blob.start + offset,
            }
        })
        .collect()
}

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

fn align_down(x: u64, a: u64) -> u64 {
    x / a * a
}

/// Sorts and merges overlapping or touching ranges; drops empty ones.
pub fn normalize(mut v: Vec<PhysRange>) -> Vec<PhysRange> {
    v.retain(|r| r.start < r.end);
    v.sort_by_key(|r| r.start);
    let mut out: Vec<PhysRange> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// `a` less `b` (both normalized), normalized.
pub fn subtract(a: &[PhysRange], b: &[PhysRange]) -> Vec<PhysRange> {
    let mut out = Vec::new();
    for r in a {
        let mut start = r.start;
        for cut in b {
            if cut.end <= start || cut.start >= r.end {
                continue;
            }
            if cut.start > start {
                out.push(PhysRange {
                    start,
                    end: cut.start,
                });
            }
            start = start.max(cut.end);
        }
        if start < r.end {
            out.push(PhysRange { start, end: r.end });
        }
    }
    out
}

impl PhysLayout {
    /// Works the layout out from the memory map.
    pub fn new(info: &BootInfo) -> PhysLayout {
        let raw: Vec<PhysRange> = info
            .memmap()
            .iter()
            .filter(|e| e.kind == E820_RAM && e.size > 0)
            .map(|e| PhysRange {
                start: e.addr,
                end: e.addr.saturating_add(e.size),
            })
            .collect();
        let raw = normalize(raw);
        let ram_bytes = raw.iter().map(|r| r.end - r.start).sum();
        let ram = normalize(
            raw.iter()
                .map(|r| PhysRange {
                    start: align_up(r.start, PAGE_SIZE),
                    end: align_down(r.end, PAGE_SIZE),
                })
                .collect(),
        );
        let top = raw.last().map_or(0, |r| r.end);
        assert!(top > 0, "no RAM in the memory map");
        let total_frames = top.div_ceil(PAGE_SIZE);

        let (kstart, kend) = boot::kernel_image();
        let kernel_image = PhysRange {
            start: kstart,
            end: kend,
        };
        // The bitmap on the pages after the image; the allocator's copy of
        // it at the boot point (what a `Reset` returns to) on the pages
        // after it; its record of which frames are known to be zero after
        // the copy. All three are a bit per frame long.
        let bitmap_bytes = total_frames.div_ceil(8);
        let on_pages_after = |end: u64| {
            let start = align_up(end, PAGE_SIZE);
            PhysRange {
                start,
                end: start + bitmap_bytes,
            }
        };
        let bitmap = on_pages_after(kend);
        let bitmap_boot = on_pages_after(bitmap.end);
        let bitmap_zero = on_pages_after(bitmap_boot.end);
        let bitmap_pages = PhysRange {
            start: bitmap.start,
            end: align_up(bitmap_zero.end, PAGE_SIZE),
        };
        assert!(
            ram.iter()
                .any(|r| r.start <= kstart && bitmap_pages.end <= r.end),
            "the kernel image and the frame bitmap {bitmap_pages:x?} are not in one RAM range"
        );
        let files = info.module.map(read_blob).unwrap_or_default();
        let blob = info
            .module
            .map_or(PhysRange { start: 0, end: 0 }, |b| PhysRange {
                start: align_down(b.start, PAGE_SIZE),
                end: align_up(b.end, PAGE_SIZE),
            });
        let reserved = normalize(alloc::vec![
            PhysRange {
                start: 0,
                end: LOW_RESERVED_END,
            },
            kernel_image,
            bitmap_pages,
            blob,
        ]);
        let free = subtract(&ram, &reserved);
        let all = [PhysRange {
            start: 0,
            end: total_frames * PAGE_SIZE,
        }];
        let boot_reserved = subtract(&all, &free);
        let boot_free_frames = free.iter().map(|r| (r.end - r.start) / PAGE_SIZE).sum();
        PhysLayout {
            ram_bytes,
            ram,
            total_frames,
            kernel_image,
            bitmap,
            bitmap_boot,
            bitmap_zero,
            reserved,
            boot_reserved,
            boot_free_frames,
            files,
        }
    }

    /// Bytes of the bitmap.
    pub fn bitmap_len(&self) -> usize {
        usize_of(self.bitmap.end - self.bitmap.start)
    }
}
