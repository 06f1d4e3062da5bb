//! The words of the sharing rule's violations (formats.rs, "The sharing
//! rule"; see `super::sharing`): what frame, which entries in which
//! spaces, what its frame-info record says.

use std::fmt;

use super::violation::Violation;
use crate::model::keys::SpaceAddr;

/// Keys as addresses with their spaces: `0x1000, 0x5000 in space 1`.
fn pages_list(keys: &[u64]) -> String {
    let v: Vec<String> = keys.iter().map(|&k| SpaceAddr(k).to_string()).collect();
    v.join(", ")
}

/// A frame-info record in words.
fn record_words(record: u64) -> String {
    match record {
        0 => "no record (0)".into(),
        r if r >> 62 == 1 => format!("{r:#x} (shared, count {})", r & ((1 << 40) - 1)),
        r if r >> 62 == 2 => format!("{r:#x} (a file page's record)"),
        r => format!("{r:#x} (corrupt)"),
    }
}

/// Writes a sharing-rule violation (after its invariant's number); other
/// violations write nothing.
pub(super) fn write(v: &Violation, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match v {
        Violation::SharedCount {
            frame,
            count,
            entries,
        } => write!(
            f,
            "shared frame {frame:#x}: its frame-info record counts {count} mappings, \
             but {} present shared entries name it: {}",
            entries.len(),
            pages_list(entries)
        ),
        Violation::SharedMixed {
            path,
            frame,
            shared_at,
            other,
        } => write!(
            f,
            "frame {frame:#x} is mapped shared at {} and is also {other}: \
             a shared frame is named by shared entries only; {path}",
            SpaceAddr(*shared_at)
        ),
        Violation::SharedWritability {
            frame,
            writable,
            read_only,
        } => write!(
            f,
            "shared frame {frame:#x} is writable at {} but read-only at {}: \
             every mapping of a shared frame has the same W bit",
            pages_list(writable),
            pages_list(read_only)
        ),
        Violation::SharedRecordLeak { frame, record } => write!(
            f,
            "frame {frame:#x}'s frame-info record is {}, but no present shared \
             entry names the frame (a shared frame or record leaked)",
            record_words(*record)
        ),
        Violation::SharedRecordMissing {
            frame,
            record,
            entries,
        } => write!(
            f,
            "frame {frame:#x} is mapped shared at {}, but its frame-info record is {}, \
             not {:#x} (shared, count {})",
            pages_list(entries),
            record_words(*record),
            1u64 << 62 | entries.len() as u64,
            entries.len()
        ),
        Violation::SharedFrameFree {
            frame,
            entries,
            record,
        } => write!(
            f,
            "shared frame {frame:#x} is free in the frame bitmap, but is still mapped at {} \
             (record {}): a mapping that went (unmap, convert, destroy, reset) freed the frame while another remained",
            pages_list(entries),
            record_words(*record)
        ),
        Violation::SharedInKernelHalf { path } => write!(
            f,
            "present shared entry in the kernel half (shared memory is user memory only); {path}"
        ),
        Violation::SharedModel { frame, why } => {
            write!(f, "shared frame {frame:#x}: {why}")
        }
        _ => Ok(()),
    }
}
