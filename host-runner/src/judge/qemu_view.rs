//! QEMU's own view of the guest's paging, for the checks the page walk
//! cannot make alone: CR3 from `info registers` must be the root the guest
//! reported, and the mappings of `info tlb` (QEMU's MMU walking the same
//! tables) must be the walk's translations (invariant 7).

use std::fmt;

use oracle::Translation;
use protocol::Hello;

/// One mapping `info tlb` lists: `virt: phys flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    pub virt: u64,
    pub phys: u64,
    pub writable: bool,
    /// NX clear (`X` is QEMU's flag for NX set).
    pub executable: bool,
    pub user: bool,
    /// A 2 MiB or 1 GiB page (`P` flag).
    pub large: bool,
}

/// Where QEMU's view and the walk disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QemuMismatch {
    /// CR3 does not hold the PML4 of the current address space (space 0's
    /// is the root the guest reported in `Hello`, another's the root its
    /// `CreateSpace` answered).
    Cr3 { cr3: u64, space: u16, root: u64 },
    /// `info registers` had no CR3 the runner could read.
    NoCr3 { output: String },
    /// The walk found a present page QEMU does not translate.
    MissingInQemu { virt: u64, frame: u64 },
    /// QEMU translates a managed page the walk found not present.
    OnlyInQemu { virt: u64, phys: u64 },
    /// Both translate the page, to different frames or permissions.
    Differs {
        virt: u64,
        walk_frame: u64,
        walk_writable: bool,
        walk_executable: bool,
        qemu_phys: u64,
        qemu_writable: bool,
        qemu_executable: bool,
    },
    /// A huge page in the managed space (never used there).
    LargePage { virt: u64, phys: u64 },
}

impl fmt::Display for QemuMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QemuMismatch::Cr3 { cr3, space, root } => write!(
                f,
                "invariant 7: CR3 is {cr3:#x} but the current address space, {space}, has its PML4 at {root:#x}"
            ),
            QemuMismatch::NoCr3 { output } => {
                write!(f, "invariant 7: no CR3 in `info registers`: {output:.200}")
            }
            QemuMismatch::MissingInQemu { virt, frame } => write!(
                f,
                "invariant 7: virt {virt:#x} maps frame {frame:#x} in the walk, QEMU's MMU does not translate it"
            ),
            QemuMismatch::OnlyInQemu { virt, phys } => write!(
                f,
                "invariant 7: QEMU's MMU translates virt {virt:#x} to {phys:#x}, the walk finds no present page"
            ),
            QemuMismatch::Differs {
                virt,
                walk_frame,
                walk_writable,
                walk_executable,
                qemu_phys,
                qemu_writable,
                qemu_executable,
            } => write!(
                f,
                "invariant 7: virt {virt:#x}: the walk says frame {walk_frame:#x} (writable {walk_writable}, executable {walk_executable}), QEMU's MMU says {qemu_phys:#x} (writable {qemu_writable}, executable {qemu_executable})"
            ),
            QemuMismatch::LargePage { virt, phys } => write!(
                f,
                "invariant 7: QEMU's MMU maps a huge page at virt {virt:#x} ({phys:#x}) in the managed space"
            ),
        }
    }
}

/// CR3's page-table address from `info registers` (`CR3=0000000000001000`).
pub fn parse_cr3(info_registers: &str) -> Option<u64> {
    let at = info_registers.find("CR3=")? + 4;
    let hex: String = info_registers[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&hex, 16)
        .ok()
        .map(|v| v & 0x000f_ffff_ffff_f000)
}

/// Checks CR3 against the PML4 `root` of the current address space
/// `space`.
pub fn check_cr3(info_registers: &str, space: u16, root: u64) -> Option<QemuMismatch> {
    match parse_cr3(info_registers) {
        None => Some(QemuMismatch::NoCr3 {
            output: info_registers.trim().to_string(),
        }),
        Some(cr3) if cr3 != root => Some(QemuMismatch::Cr3 { cr3, space, root }),
        Some(_) => None,
    }
}

/// Sign-extends a 48-bit virtual address.
fn canonical(v: u64) -> u64 {
    if v & (1 << 47) != 0 {
        v | 0xffff_0000_0000_0000
    } else {
        v & 0x0000_ffff_ffff_ffff
    }
}

/// The mappings of `info tlb` (lines `0000000012345000: 0000000000abc000
/// XGPDACTUW`, `-` for a clear flag); other lines are skipped.
pub fn parse_tlb(text: &str) -> Vec<TlbEntry> {
    text.lines()
        .filter_map(|line| fixed_line(line).or_else(|| free_line(line)))
        .collect()
}

/// A line as QEMU prints it: two 16-digit hex numbers and nine flags at
/// fixed places (a full check parses one per mapped page, thousands).
fn fixed_line(line: &str) -> Option<TlbEntry> {
    let b = line.as_bytes();
    if b.len() != 44 || &b[16..18] != b": " || b[34] != b' ' {
        return None;
    }
    entry(hex16(&b[..16])?, hex16(&b[18..34])?, &b[35..44])
}

/// Any other spacing of the same fields.
fn free_line(line: &str) -> Option<TlbEntry> {
    let (virt, rest) = line.trim().split_once(": ")?;
    let mut parts = rest.split_whitespace();
    let phys = parts.next()?;
    let flags = parts.next()?.as_bytes();
    entry(
        u64::from_str_radix(virt, 16).ok()?,
        u64::from_str_radix(phys, 16).ok()?,
        flags,
    )
}

/// An entry from its numbers and its nine flags.
fn entry(virt: u64, phys: u64, flags: &[u8]) -> Option<TlbEntry> {
    if flags.len() != 9 {
        return None;
    }
    Some(TlbEntry {
        virt: canonical(virt),
        phys,
        executable: flags[0] != b'X',
        large: flags[2] == b'P',
        user: flags[7] == b'U',
        writable: flags[8] == b'W',
    })
}

/// Sixteen hex digits.
fn hex16(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |v, &d| {
        let n = char::from(d).to_digit(16)?;
        Some(v << 4 | u64::from(n))
    })
}

/// Whether `virt` lies in a PML4 slot the VMM manages.
fn managed(hello: &Hello, virt: u64) -> bool {
    let slot = ((virt >> 39) & 511) as u16;
    let in_kernel_space = hello.kernel_space.contains(virt);
    (slot < 256 || in_kernel_space) && !hello.reserved_pml4_slots.contains(&slot)
}

/// Compares QEMU's mappings of the managed space with the walk's
/// `translations` of the current address space (the kernel half and that
/// space's user half, plain addresses: [`oracle::checker::Walk::of_space`])
/// (at most `limit` mismatches are listed): huge pages first,
/// then the walk's pages QEMU lacks or maps otherwise (in walk order), then
/// the pages only QEMU maps (by address). The two lists are joined in
/// address order: each comes sorted from its walk (sorted here if not).
pub fn compare_tlb(
    tlb: &[TlbEntry],
    translations: &[Translation],
    hello: &Hello,
    limit: usize,
) -> Vec<QemuMismatch> {
    let mut out = Vec::new();
    let mut qemu: Vec<&TlbEntry> = Vec::with_capacity(tlb.len());
    for e in tlb.iter().filter(|e| managed(hello, e.virt)) {
        if e.large {
            out.push(QemuMismatch::LargePage {
                virt: e.virt,
                phys: e.phys,
            });
        } else {
            qemu.push(e);
        }
    }
    if !qemu.is_sorted_by_key(|e| e.virt) {
        qemu.sort_by_key(|e| e.virt);
    }
    // The walk's pages by address, each with its place in the walk: the
    // mismatches are listed in walk order.
    let mut walked: Vec<_> = translations.iter().enumerate().collect();
    let sorted = walked.is_sorted_by_key(|(_, t)| t.virt);
    if !sorted {
        walked.sort_by_key(|(_, t)| t.virt);
    }
    let mut found = Vec::new();
    let mut only = Vec::new();
    let mut q = qemu.into_iter().peekable();
    for (at, t) in walked {
        while let Some(e) = q.next_if(|e| e.virt < t.virt) {
            only.push(QemuMismatch::OnlyInQemu {
                virt: e.virt,
                phys: e.phys,
            });
        }
        match q.next_if(|e| e.virt == t.virt) {
            None => found.push((
                at,
                QemuMismatch::MissingInQemu {
                    virt: t.virt,
                    frame: t.frame,
                },
            )),
            Some(e)
                if (e.phys, e.writable, e.executable) != (t.frame, t.writable, t.executable) =>
            {
                found.push((
                    at,
                    QemuMismatch::Differs {
                        virt: t.virt,
                        walk_frame: t.frame,
                        walk_writable: t.writable,
                        walk_executable: t.executable,
                        qemu_phys: e.phys,
                        qemu_writable: e.writable,
                        qemu_executable: e.executable,
                    },
                ))
            }
            Some(_) => {}
        }
    }
    if !sorted {
        found.sort_by_key(|&(at, _)| at);
    }
    out.extend(found.into_iter().map(|(_, m)| m));
    only.extend(q.map(|e| QemuMismatch::OnlyInQemu {
        virt: e.virt,
        phys: e.phys,
    }));
    out.append(&mut only);
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests;
