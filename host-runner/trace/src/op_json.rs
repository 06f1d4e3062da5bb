//! The JSON side of an operation: its fields, named, in a fixed order.

use protocol::{AreaType, Privilege};

use crate::error::FieldError;
use crate::op::{Op, OpKind};
use crate::value::{read_bool, read_name, read_u64, Fields, ObjectWriter};

const PRIVILEGES: [&str; 2] = ["kernel", "user"];
const AREA_TYPES: [&str; 2] = ["usable_ram", "unusable"];

fn privilege_name(p: Privilege) -> &'static str {
    match p {
        Privilege::Kernel => "kernel",
        Privilege::User => "user",
    }
}

fn area_name(a: AreaType) -> &'static str {
    match a {
        AreaType::UsableRam => "usable_ram",
        AreaType::Unusable => "unusable",
    }
}

impl Op {
    /// The operation's fields, `"op"` first, as a JSON object's fields in a
    /// fixed order (without the closing brace's caller-added `expect`).
    pub(crate) fn write_fields(&self, w: ObjectWriter) -> ObjectWriter {
        let w = w.str("op", self.kind().name());
        let w = match *self {
            Op::Hello | Op::Stats => w,
            Op::Ping { nonce } => w.hex("nonce", nonce),
            Op::Panic { .. } | Op::Reset { .. } => w,
            Op::Map {
                addr,
                pages,
                writable,
                contiguous,
                ..
            } => w
                .hex("addr", addr)
                .count("pages", pages)
                .bool("writable", writable)
                .bool("contiguous", contiguous),
            Op::Unmap { addr, pages, .. }
            | Op::Query { addr, pages, .. }
            | Op::Vfree { addr, pages, .. } => w.hex("addr", addr).count("pages", pages),
            Op::Convert {
                addr, pages, to, ..
            } => w
                .hex("addr", addr)
                .count("pages", pages)
                .str("to", area_name(to)),
            Op::Write {
                addr, len, seed, ..
            } => w.hex("addr", addr).count("len", len).hex("seed", seed),
            Op::Read { addr, len, .. } => w.hex("addr", addr).count("len", len),
            Op::AllocFrames {
                count, contiguous, ..
            } => w.count("count", count).bool("contiguous", contiguous),
            Op::FreeFrames { frame, count, .. } => w.hex("frame", frame).count("count", count),
            Op::Valloc { pages, .. } => w.count("pages", pages),
            Op::MapFile {
                addr,
                pages,
                file,
                file_page,
                ..
            } => w
                .hex("addr", addr)
                .count("pages", pages)
                .count("file", u64::from(file))
                .count("file_page", file_page),
            Op::Evict { addr, pages, .. } => w.hex("addr", addr).count("pages", pages),
            Op::Kmalloc { size, align, .. } => w.count("size", size).count("align", align),
            Op::Kfree { addr, .. } => w.hex("addr", addr),
            Op::HeapScavenge { .. } => w,
        };
        match self.privilege() {
            Some(p) => w.str("as", privilege_name(p)),
            None => w,
        }
    }

    /// Reads an operation of kind `kind` from `f` (the `"op"` field already
    /// taken), leaving other fields (`expect`) in `f`.
    ///
    /// `"as"` is required on the memory operations (map, unmap, convert,
    /// write, read, query), where both privileges mean something; on the
    /// kernel-only ones it defaults to `"kernel"`.
    pub(crate) fn read_fields(
        kind: OpKind,
        f: &mut Fields,
    ) -> Result<(Op, &'static [&'static str]), FieldError> {
        let addr = |f: &mut Fields| f.required("addr", "a hex address like \"0x1000\"", read_u64);
        let pages = |f: &mut Fields| f.required("pages", "a page count", read_u64);
        let len = |f: &mut Fields| f.required("len", "a length in bytes", read_u64);
        let count = |f: &mut Fields| f.required("count", "a frame count", read_u64);
        let flag = |f: &mut Fields, name: &str, default: bool| {
            f.optional(name, read_bool).map(|b| b.unwrap_or(default))
        };
        let read_priv = |v: &serde_json::Value| {
            read_name(v, &PRIVILEGES).map(|i| [Privilege::Kernel, Privilege::User][i])
        };
        let must_as = |f: &mut Fields| f.required("as", "\"user\" or \"kernel\"", read_priv);
        let kernel_as = |f: &mut Fields| {
            f.optional("as", read_priv)
                .map(|p| p.unwrap_or(Privilege::Kernel))
        };
        Ok(match kind {
            OpKind::Hello => (Op::Hello, &["op"]),
            OpKind::Stats => (Op::Stats, &["op"]),
            OpKind::Ping => {
                let nonce = f.optional("nonce", read_u64)?.unwrap_or(0);
                (Op::Ping { nonce }, &["op", "nonce"])
            }
            OpKind::Panic => (
                Op::Panic {
                    privilege: kernel_as(f)?,
                },
                &["op", "as"],
            ),
            OpKind::Reset => (
                Op::Reset {
                    privilege: kernel_as(f)?,
                },
                &["op", "as"],
            ),
            OpKind::Map => {
                let (addr, pages) = (addr(f)?, pages(f)?);
                let writable = flag(f, "writable", true)?;
                let contiguous = flag(f, "contiguous", false)?;
                let privilege = must_as(f)?;
                (
                    Op::Map {
                        addr,
                        pages,
                        writable,
                        contiguous,
                        privilege,
                    },
                    &["op", "addr", "pages", "writable", "contiguous", "as"],
                )
            }
            OpKind::Unmap => {
                let (addr, pages, privilege) = (addr(f)?, pages(f)?, must_as(f)?);
                (
                    Op::Unmap {
                        addr,
                        pages,
                        privilege,
                    },
                    &["op", "addr", "pages", "as"],
                )
            }
            OpKind::Query => {
                let (addr, pages, privilege) = (addr(f)?, pages(f)?, must_as(f)?);
                (
                    Op::Query {
                        addr,
                        pages,
                        privilege,
                    },
                    &["op", "addr", "pages", "as"],
                )
            }
            OpKind::Convert => {
                let (addr, pages) = (addr(f)?, pages(f)?);
                let to = f.required("to", "\"usable_ram\" or \"unusable\"", |v| {
                    read_name(v, &AREA_TYPES).map(|i| [AreaType::UsableRam, AreaType::Unusable][i])
                })?;
                let privilege = must_as(f)?;
                (
                    Op::Convert {
                        addr,
                        pages,
                        to,
                        privilege,
                    },
                    &["op", "addr", "pages", "to", "as"],
                )
            }
            OpKind::Write => {
                let (addr, len) = (addr(f)?, len(f)?);
                let seed = f.optional("seed", read_u64)?.unwrap_or(0);
                let privilege = must_as(f)?;
                (
                    Op::Write {
                        addr,
                        len,
                        seed,
                        privilege,
                    },
                    &["op", "addr", "len", "seed", "as"],
                )
            }
            OpKind::Read => {
                let (addr, len, privilege) = (addr(f)?, len(f)?, must_as(f)?);
                (
                    Op::Read {
                        addr,
                        len,
                        privilege,
                    },
                    &["op", "addr", "len", "as"],
                )
            }
            OpKind::AllocFrames => {
                let count = count(f)?;
                let contiguous = flag(f, "contiguous", false)?;
                let privilege = kernel_as(f)?;
                (
                    Op::AllocFrames {
                        count,
                        contiguous,
                        privilege,
                    },
                    &["op", "count", "contiguous", "as"],
                )
            }
            OpKind::FreeFrames => {
                let frame = f.required(
                    "frame",
                    "a hex physical address like \"0x200000\"",
                    read_u64,
                )?;
                let (count, privilege) = (count(f)?, kernel_as(f)?);
                (
                    Op::FreeFrames {
                        frame,
                        count,
                        privilege,
                    },
                    &["op", "frame", "count", "as"],
                )
            }
            OpKind::Valloc => {
                let (pages, privilege) = (pages(f)?, kernel_as(f)?);
                (Op::Valloc { pages, privilege }, &["op", "pages", "as"])
            }
            OpKind::MapFile => {
                let (addr, pages) = (addr(f)?, pages(f)?);
                let file = f.required("file", "a file number (0-255)", |v| {
                    read_u64(v)
                        .and_then(|n| u8::try_from(n).map_err(|_| "a file number (0-255)".into()))
                })?;
                let file_page = f.optional("file_page", read_u64)?.unwrap_or(0);
                let privilege = must_as(f)?;
                (
                    Op::MapFile {
                        addr,
                        pages,
                        file,
                        file_page,
                        privilege,
                    },
                    &["op", "addr", "pages", "file", "file_page", "as"],
                )
            }
            OpKind::Evict => {
                let (addr, pages, privilege) = (addr(f)?, pages(f)?, must_as(f)?);
                (
                    Op::Evict {
                        addr,
                        pages,
                        privilege,
                    },
                    &["op", "addr", "pages", "as"],
                )
            }
            OpKind::Kmalloc => {
                let size = f.required("size", "a size in bytes", read_u64)?;
                let align = f.optional("align", read_u64)?.unwrap_or(16);
                let privilege = kernel_as(f)?;
                (
                    Op::Kmalloc {
                        size,
                        align,
                        privilege,
                    },
                    &["op", "size", "align", "as"],
                )
            }
            OpKind::Kfree => {
                let (addr, privilege) = (addr(f)?, kernel_as(f)?);
                (Op::Kfree { addr, privilege }, &["op", "addr", "as"])
            }
            OpKind::HeapScavenge => (
                Op::HeapScavenge {
                    privilege: kernel_as(f)?,
                },
                &["op", "as"],
            ),
            OpKind::Vfree => {
                let (addr, pages, privilege) = (addr(f)?, pages(f)?, kernel_as(f)?);
                (
                    Op::Vfree {
                        addr,
                        pages,
                        privilege,
                    },
                    &["op", "addr", "pages", "as"],
                )
            }
        })
    }
}
