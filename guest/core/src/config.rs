//! What the kernel decides at boot and hands the VMM: the file images, the
//! swap store's size and the heap's maximum.

/// One file image in physical memory (the kernel found it in the blob).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileImage {
    /// Length in pages.
    pub pages: u64,
    /// Physical address of its first byte (page aligned).
    pub start: u64,
}

/// What the kernel decides at boot besides the frames: the file images, the
/// swap store's size and the heap's maximum.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The files the host supplied (their frames are boot reservations).
    pub files: &'static [FileImage],
    /// Frames of the swap store (0: no swap).
    pub swap_frames: u64,
    /// The heap's maximum size in bytes (a multiple of 4096; 0: no heap).
    pub heap_max_bytes: u64,
}

impl Config {
    /// The defaults for a machine of `total_frames` frames: no files, a
    /// swap store of RAM / 8, a heap of RAM / 4.
    pub fn for_frames(total_frames: u64) -> Config {
        Config {
            files: &[],
            swap_frames: total_frames / 8,
            heap_max_bytes: total_frames / 4 * 4096,
        }
    }
}
