//! The plain-Rust parts: the plugin's arguments, the PC table, and the
//! lookup of an instruction address in it.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Bytes per PC table entry: two little-endian `u64`s, `(pc, flags)`.
pub const ENTRY_BYTES: usize = 16;

/// Bytes per count in the counts file (one native-endian `u64`).
pub const COUNT_BYTES: usize = 8;

/// The plugin's arguments: `table=PATH,counts=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The PC table file.
    pub table: PathBuf,
    /// The counts file (N × 8 bytes, mapped shared read-write).
    pub counts: PathBuf,
}

/// What is wrong with the plugin's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// An argument is not `name=value`.
    NotNameValue(String),
    /// An argument's name is not one this plugin takes.
    Unknown(String),
    /// An argument is given twice.
    Duplicate(&'static str),
    /// An argument's value is empty.
    EmptyValue(&'static str),
    /// A required argument is missing. Its message is how the runner's
    /// probe (`host-runner/src/edge_counts.rs`, `loads_plugin`) knows QEMU
    /// loaded the plugin: started with no arguments, it must print
    /// `vmmfuzz-qemu-plugin: missing argument`.
    Missing(&'static str),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const USAGE: &str = "(usage: -plugin PATH,table=PATH,counts=PATH)";
        match self {
            Self::NotNameValue(a) => write!(f, "argument {a:?} is not NAME=VALUE {USAGE}"),
            Self::Unknown(n) => write!(f, "unknown argument {n:?} {USAGE}"),
            Self::Duplicate(n) => write!(f, "argument {n:?} given twice"),
            Self::EmptyValue(n) => write!(f, "argument {n:?} has an empty value"),
            Self::Missing(n) => write!(f, "missing argument {n:?} {USAGE}"),
        }
    }
}

/// Parses QEMU's plugin arguments (each `name=value`, as QEMU passes them:
/// `-plugin PATH,table=T,counts=C` gives `["table=T", "counts=C"]`). Both
/// are required, each once; anything else is an error. Values are paths
/// and need not be UTF-8.
pub fn parse_args(argv: &[&[u8]]) -> Result<Args, ArgError> {
    let mut table = None;
    let mut counts = None;
    for arg in argv {
        let lossy = || String::from_utf8_lossy(arg).into_owned();
        let Some(eq) = arg.iter().position(|&b| b == b'=') else {
            return Err(ArgError::NotNameValue(lossy()));
        };
        let (name, value) = (&arg[..eq], &arg[eq + 1..]);
        let (key, slot) = match name {
            b"table" => ("table", &mut table),
            b"counts" => ("counts", &mut counts),
            _ => {
                return Err(ArgError::Unknown(
                    String::from_utf8_lossy(name).into_owned(),
                ))
            }
        };
        if slot.is_some() {
            return Err(ArgError::Duplicate(key));
        }
        if value.is_empty() {
            return Err(ArgError::EmptyValue(key));
        }
        *slot = Some(PathBuf::from(OsStr::from_bytes(value)));
    }
    Ok(Args {
        table: table.ok_or(ArgError::Missing("table"))?,
        counts: counts.ok_or(ArgError::Missing("counts"))?,
    })
}

/// What is wrong with a PC table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableError {
    /// The table has no entry.
    Empty,
    /// The table's size is not a whole number of entries.
    PartialEntry {
        /// The table's size in bytes.
        len: usize,
    },
    /// An entry's pc is not above the one before it.
    NotAscending {
        /// The entry's index.
        index: usize,
        /// The previous entry's pc.
        prev: u64,
        /// The entry's pc.
        pc: u64,
    },
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "the table is empty (it needs at least one entry)"),
            Self::PartialEntry { len } => write!(
                f,
                "the table's size ({len} bytes) is not a multiple of {ENTRY_BYTES} (entries of two little-endian u64s: pc, flags)"
            ),
            Self::NotAscending { index, prev, pc } => write!(
                f,
                "the table is not sorted by pc strictly ascending: entry {index} has pc {pc:#x}, after {prev:#x}"
            ),
        }
    }
}

/// The table's pcs, sorted strictly ascending, at least one: the index of
/// a pc is the index of its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pcs: Vec<u64>,
}

impl Table {
    /// Parses a SanitizerCoverage PC table: entries of two little-endian
    /// `u64`s, `(pc, flags)`, sorted by pc strictly ascending. The flags
    /// (bit 0: function entry) are not used.
    pub fn parse(bytes: &[u8]) -> Result<Self, TableError> {
        if bytes.len() % ENTRY_BYTES != 0 {
            return Err(TableError::PartialEntry { len: bytes.len() });
        }
        let mut pcs = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
        for (index, entry) in bytes.chunks_exact(ENTRY_BYTES).enumerate() {
            let mut pc = [0u8; 8];
            pc.copy_from_slice(&entry[..8]);
            let pc = u64::from_le_bytes(pc);
            if let Some(&prev) = pcs.last() {
                if pc <= prev {
                    return Err(TableError::NotAscending { index, prev, pc });
                }
            }
            pcs.push(pc);
        }
        if pcs.is_empty() {
            return Err(TableError::Empty);
        }
        Ok(Self { pcs })
    }

    /// The number of entries (and counts).
    pub fn len(&self) -> usize {
        self.pcs.len()
    }

    /// The size the counts file must have, in bytes (`None` if it does not
    /// fit a `u64`).
    pub fn counts_bytes(&self) -> Option<u64> {
        u64::try_from(self.len())
            .ok()?
            .checked_mul(COUNT_BYTES as u64)
    }

    /// The lowest and highest pc.
    fn bounds(&self) -> (u64, u64) {
        match (self.pcs.first(), self.pcs.last()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            // Not reached: `parse` makes only non-empty tables.
            _ => (u64::MAX, 0),
        }
    }

    /// The index of `pc` in the table, if it is one of its pcs.
    pub fn index_of(&self, pc: u64) -> Option<usize> {
        let (lo, hi) = self.bounds();
        if pc < lo || pc > hi {
            return None;
        }
        self.pcs.binary_search(&pc).ok()
    }

    /// Whether a block whose instructions lie from `first` to `last`
    /// (the addresses of its first and last instruction) may hold one of
    /// the table's pcs. A block's instructions follow each other in
    /// address order, so only a block that wraps around the address space
    /// (`last < first`) is not a plain interval; it is always looked at.
    pub fn may_hold(&self, first: u64, last: u64) -> bool {
        let (lo, hi) = self.bounds();
        last < first || (first <= hi && last >= lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn entries(pcs: &[(u64, u64)]) -> Vec<u8> {
        pcs.iter()
            .flat_map(|&(pc, flags)| pc.to_le_bytes().into_iter().chain(flags.to_le_bytes()))
            .collect()
    }

    #[test]
    fn both_arguments_in_either_order_give_their_paths() {
        let want = Args {
            table: "/t/pcs.bin".into(),
            counts: "/c/counts.bin".into(),
        };
        let a: &[&[u8]] = &[b"table=/t/pcs.bin", b"counts=/c/counts.bin"];
        assert_eq!(parse_args(a), Ok(want.clone()));
        let b: &[&[u8]] = &[b"counts=/c/counts.bin", b"table=/t/pcs.bin"];
        assert_eq!(parse_args(b), Ok(want));
    }

    #[test]
    fn a_value_keeps_everything_after_the_first_equals_sign_and_may_be_non_utf8() {
        let a: &[&[u8]] = &[b"table=/t/a=b", b"counts=/c/\xff"];
        let args = parse_args(a).expect("valid");
        assert_eq!(args.table, Path::new("/t/a=b"));
        assert_eq!(args.counts.as_os_str().as_bytes(), b"/c/\xff");
    }

    #[test]
    fn missing_unknown_duplicate_empty_and_bare_arguments_are_errors() {
        let cases: &[(&[&[u8]], ArgError)] = &[
            (&[], ArgError::Missing("table")),
            (&[b"table=/t"], ArgError::Missing("counts")),
            (&[b"counts=/c"], ArgError::Missing("table")),
            (
                &[b"table=/t", b"counts=/c", b"verbose=on"],
                ArgError::Unknown("verbose".into()),
            ),
            (
                &[b"table=/t", b"table=/u", b"counts=/c"],
                ArgError::Duplicate("table"),
            ),
            (&[b"table=", b"counts=/c"], ArgError::EmptyValue("table")),
            (
                &[b"table", b"counts=/c"],
                ArgError::NotNameValue("table".into()),
            ),
            (
                &[b"Table=/t", b"counts=/c"],
                ArgError::Unknown("Table".into()),
            ),
        ];
        for (argv, want) in cases {
            assert_eq!(parse_args(argv).as_ref(), Err(want), "{argv:?}");
        }
        assert!(ArgError::Missing("counts").to_string().contains("counts"));
        // What the runner's probe looks for.
        assert!(ArgError::Missing("table")
            .to_string()
            .starts_with("missing argument"));
    }

    #[test]
    fn a_table_parses_to_its_pcs_ignoring_the_flags() {
        let t = Table::parse(&entries(&[
            (0x1000, 1),
            (0x1004, 0),
            (0xffff_ffff_8010_0000, 7),
        ]))
        .expect("valid");
        assert_eq!(t.pcs, [0x1000, 0x1004, 0xffff_ffff_8010_0000]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.counts_bytes(), Some(24));
    }

    #[test]
    fn an_empty_partial_unsorted_or_duplicate_table_is_rejected() {
        assert_eq!(Table::parse(&[]), Err(TableError::Empty));
        let mut odd = entries(&[(0x1000, 0)]);
        odd.push(0);
        assert_eq!(
            Table::parse(&odd),
            Err(TableError::PartialEntry { len: 17 })
        );
        assert_eq!(
            Table::parse(&[0; 8]),
            Err(TableError::PartialEntry { len: 8 })
        );
        assert_eq!(
            Table::parse(&entries(&[(0x10, 0), (0x30, 0), (0x20, 0)])),
            Err(TableError::NotAscending {
                index: 2,
                prev: 0x30,
                pc: 0x20
            })
        );
        assert_eq!(
            Table::parse(&entries(&[(0x10, 0), (0x10, 1)])),
            Err(TableError::NotAscending {
                index: 1,
                prev: 0x10,
                pc: 0x10
            })
        );
        let msg = TableError::PartialEntry { len: 17 }.to_string();
        assert!(msg.contains("17") && msg.contains("16"), "{msg}");
    }

    #[test]
    fn index_of_finds_exactly_the_tables_pcs() {
        let pcs = [3u64, 10, 11, 500, 0xffff_ffff_8000_0000, u64::MAX];
        let t = Table::parse(&entries(&pcs.map(|pc| (pc, 0)))).expect("valid");
        for (i, &pc) in pcs.iter().enumerate() {
            assert_eq!(t.index_of(pc), Some(i), "{pc:#x}");
        }
        for pc in [
            0,
            2,
            4,
            9,
            12,
            499,
            501,
            0xffff_ffff_7fff_ffff,
            u64::MAX - 1,
        ] {
            assert_eq!(t.index_of(pc), None, "{pc:#x}");
        }
        let one = Table::parse(&entries(&[(0x40, 0)])).expect("valid");
        assert_eq!(one.index_of(0x40), Some(0));
        assert_eq!(one.index_of(0x3f), None);
        assert_eq!(one.index_of(0x41), None);
    }

    #[test]
    fn only_blocks_overlapping_the_tables_range_may_hold_a_pc() {
        let t = Table::parse(&entries(&[(100, 0), (200, 0)])).expect("valid");
        // Below, above, and touching either end.
        assert!(!t.may_hold(10, 99));
        assert!(!t.may_hold(201, 300));
        assert!(t.may_hold(90, 100));
        assert!(t.may_hold(200, 210));
        // Inside, and around.
        assert!(t.may_hold(150, 160));
        assert!(t.may_hold(0, u64::MAX));
        // A block wrapping around the address space is always looked at.
        assert!(t.may_hold(u64::MAX - 4, 3));
    }
}
