//! The ranges a trace header's values must lie in (and the runner's
//! options with them): a value outside is refused when the trace is read,
//! naming the line and the field, before any guest boots.
//!
//! | field | range |
//! | --- | --- |
//! | `ram_mib` | [`MIN_RAM_MIB`] to [`MAX_RAM_MIB`]; at most [`FILES_MAX_RAM_MIB`] with files, and at least the files' blob plus [`MIN_RAM_MIB`] |
//! | `files` | at most [`MAX_FILES`] |
//! | `files[i].pages` | 1 to [`MAX_FILE_PAGES`] |
//! | operations, `check_every` | at most [`MAX_OPS`] |
//! | `batches[i]` | 1 to [`protocol::MAX_BATCH`], adding up to the operations |
//! | `weights` | each at most [`MAX_WEIGHT`] |

use crate::files::FileSpec;
use crate::format::TraceHeader;
use crate::op::OpKind;
use crate::FieldError;

/// Smallest guest RAM, in MiB ([`protocol::MIN_RAM_MIB`]).
pub const MIN_RAM_MIB: u32 = protocol::MIN_RAM_MIB;
/// Largest guest RAM, in MiB: the guest's direct map covers 64 GiB of
/// physical addresses, and RAM above QEMU's 32-bit hole ends up to 4 GiB
/// higher than the RAM's size.
pub const MAX_RAM_MIB: u32 = 60 * 1024;
/// Largest guest RAM, in MiB, with files: QEMU loads the file blob at the
/// top of the RAM below 2 GiB, and the guest reads it through its boot map
/// of the first GiB (measured: files boot at 1024 MiB, panic at 1040).
pub const FILES_MAX_RAM_MIB: u32 = 1024;
/// Most files a guest boots with (`map_file` names one by a `u8`).
pub const MAX_FILES: usize = protocol::MAX_FILES;
/// Most pages of one file (256 MiB), as `fuzz --files` allows.
pub const MAX_FILE_PAGES: u64 = 1 << 16;
/// Most operations in a trace (and the largest `check_every`).
pub const MAX_OPS: usize = 1_000_000;
/// Largest weight of one operation kind (all of them add up within `u32`,
/// swarm's ×6 included).
pub const MAX_WEIGHT: u32 = 1_000_000;

const PAGE: u64 = 4096;

/// Bytes of the `-initrd` blob holding `files`: a header page (more if the
/// records need it), then each file page aligned (`protocol::formats`).
pub fn files_blob_bytes(files: &[FileSpec]) -> u64 {
    let header = (16 + 16 * files.len() as u64).div_ceil(PAGE) * PAGE;
    files.iter().fold(header, |n, f| {
        n.saturating_add(f.pages.saturating_mul(PAGE))
    })
}

/// Whether a guest of `mib` MiB can boot at all.
pub fn check_ram(mib: u32) -> Result<(), String> {
    if (MIN_RAM_MIB..=MAX_RAM_MIB).contains(&mib) {
        return Ok(());
    }
    Err(format!(
        "guest RAM of {mib} MiB is out of range: from {MIN_RAM_MIB} MiB (the smallest guest \
         the kernel's reserve holds on) to {MAX_RAM_MIB} MiB (what the guest's direct map covers)"
    ))
}

/// Whether `files` can be built at all; `Err` names the field.
pub fn check_files(files: &[FileSpec]) -> Result<(), FieldError> {
    if files.len() > MAX_FILES {
        return Err(FieldError::new(
            "files",
            format!(
                "{} files: at most {MAX_FILES} (map_file names a file by a u8)",
                files.len()
            ),
        ));
    }
    for (i, f) in files.iter().enumerate() {
        if !(1..=MAX_FILE_PAGES).contains(&f.pages) {
            return Err(FieldError::new(
                &format!("files[{i}].pages"),
                format!(
                    "{} pages: a file has from 1 to {MAX_FILE_PAGES} pages",
                    f.pages
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `files` fit a guest of `mib` MiB (both in range); `Err` names
/// the field.
pub fn check_ram_with_files(mib: u32, files: &[FileSpec]) -> Result<(), FieldError> {
    if files.is_empty() {
        return Ok(());
    }
    if mib > FILES_MAX_RAM_MIB {
        return Err(FieldError::new(
            "ram_mib",
            format!(
                "{mib} MiB with files: a guest with files has at most {FILES_MAX_RAM_MIB} MiB \
                 (it reads the file blob QEMU loads below 2 GiB through its map of the first GiB)"
            ),
        ));
    }
    let blob = files_blob_bytes(files);
    let need = blob.div_ceil(1 << 20) + u64::from(MIN_RAM_MIB);
    if u64::from(mib) < need {
        return Err(FieldError::new(
            "files",
            format!(
                "the files take {blob} bytes of guest RAM: a guest of {mib} MiB keeps less than \
                 {MIN_RAM_MIB} MiB besides them; give it at least {need} MiB"
            ),
        ));
    }
    Ok(())
}

/// Range-checks a header's values (its `batches` against the operations
/// are checked once they are read).
pub(crate) fn check_header(h: &TraceHeader) -> Result<(), FieldError> {
    if let Some(mib) = h.ram_mib {
        check_ram(mib).map_err(|e| FieldError::new("ram_mib", e))?;
    }
    check_files(&h.files)?;
    if let Some(mib) = h.ram_mib {
        check_ram_with_files(mib, &h.files)?;
    }
    if let Some(n) = h.check_every {
        if n as usize > MAX_OPS {
            return Err(FieldError::new(
                "check_every",
                format!("{n}: at most {MAX_OPS} (a trace's most operations)"),
            ));
        }
    }
    if let Some((i, n)) = h
        .batches
        .iter()
        .enumerate()
        .find(|(_, &n)| !(1..=protocol::MAX_BATCH as u32).contains(&n))
    {
        return Err(FieldError::new(
            &format!("batches[{i}]"),
            format!(
                "a batch of {n} operations: a batch has from 1 to {} (protocol::MAX_BATCH)",
                protocol::MAX_BATCH
            ),
        ));
    }
    if h.batches.len() > MAX_OPS {
        return Err(FieldError::new(
            "batches",
            format!("{} batches: at most {MAX_OPS}", h.batches.len()),
        ));
    }
    if let Some(w) = &h.weights {
        if let Some(k) = OpKind::ALL.into_iter().find(|&k| w.get(k) > MAX_WEIGHT) {
            return Err(FieldError::new(
                &format!("weights.{}", k.name()),
                format!("{}: a weight is at most {MAX_WEIGHT}", w.get(k)),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
