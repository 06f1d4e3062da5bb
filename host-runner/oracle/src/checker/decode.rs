//! A page walk rendered as text, for the replay command to print at a
//! divergence.

use std::fmt::Write;

use protocol::Hello;

use super::entry::{decode_leaf, Flags, ADDR, P, PS};
use super::memory::GuestMemory;

const NAMES: [&str; 4] = ["PML4", "PDPT", "PD", "PT"];

/// The allocator's bit for the frame at `frame`, as text.
fn allocator_bit(mem: &dyn GuestMemory, hello: &Hello, frame: u64) -> String {
    let n = frame >> 12;
    if n >= hello.total_frames {
        return "beyond the bitmap".into();
    }
    let mut b = [0u8];
    match mem.read(hello.frame_bitmap.start + n / 8, &mut b) {
        Ok(()) if b[0] >> (n % 8) & 1 == 1 => "used".into(),
        Ok(()) => "FREE".into(),
        Err(e) => format!("unreadable ({e})"),
    }
}

/// Every level of the walk of `virt` from `hello.page_table_root`: the
/// entry's raw value, flags and software bits, the next table or frame and
/// its allocator bit, and the decoded level-1 state.
pub fn decode_walk(mem: &dyn GuestMemory, hello: &Hello, virt: u64) -> String {
    let mut out = format!("walk of {virt:#x} from root {:#x}\n", hello.page_table_root);
    let mut table = hello.page_table_root;
    for (level, name) in NAMES.iter().enumerate() {
        let index = (virt >> (39 - 9 * level)) & 511;
        let mut b = [0u8; 8];
        if let Err(e) = mem.read(table + index * 8, &mut b) {
            let _ = writeln!(out, "  {name}[{index}] @ {table:#x}: unreadable ({e})");
            return out;
        }
        let raw = u64::from_le_bytes(b);
        let _ = write!(
            out,
            "  {name}[{index}] @ {table:#x} = {raw:#018x} {}",
            Flags(raw)
        );
        if level == 3 {
            let leaf = decode_leaf(raw, virt < 0x0000_8000_0000_0000);
            let _ = write!(out, " -> {leaf:?}");
        }
        if raw & P == 0 {
            let _ = writeln!(out, "{}", if level == 3 { "" } else { " (not present)" });
            return out;
        }
        let next = raw & ADDR;
        let what = if level == 3 || raw & PS != 0 {
            "frame"
        } else {
            "table"
        };
        let _ = writeln!(
            out,
            " -> {what} {next:#x} ({})",
            allocator_bit(mem, hello, next)
        );
        if what == "frame" {
            return out;
        }
        table = next;
    }
    out
}
