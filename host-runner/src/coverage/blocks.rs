//! The block table of a kernel built without SanitizerCoverage: the
//! instructions QEMU's block counter (`host-runner/qemu-plugin`) counts,
//! in the PC table's format, so that everything keyed by a counter index
//! (hits, buckets, the kernel's id, sites, guidance) works the same for
//! both ways of counting.
//!
//! A block leader is an instruction that starts a basic block in the
//! static code: a function's entry (flag bit 0, as in SanitizerCoverage's
//! table), the target of a direct jump or call, and the instruction after
//! any that changes the flow (a branch, call, return, interrupt or
//! exception). The table depends only on the ELF, so two guests, two
//! campaigns and the report agree on what counter `i` is, however TCG
//! cuts its translation blocks.
//!
//! Only the 64-bit code counts: executable sections named `.text*`. The
//! 32-bit PVH entry (`.boot`) runs once per boot.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction};
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SymbolKind};

/// The block table of `elf`: `(pc, flags)` pairs of little-endian `u64`s,
/// sorted by pc, one per leader, flag bit 0 on functions' entries.
pub fn block_table(elf: &[u8]) -> Result<Vec<u8>, String> {
    let file = object::File::parse(elf).map_err(|e| e.to_string())?;
    let mut starts: Vec<u64> = Vec::new();
    let mut leaders: Vec<u64> = Vec::new();
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        if !name.starts_with(".text") || !executable(section.flags()) {
            continue;
        }
        let code = section.data().map_err(|e| format!("{name}: {e}"))?;
        let base = section.address();
        spans.push((base, base + code.len() as u64));
        leaders.push(base);
        decode(code, base, &mut starts, &mut leaders);
    }
    if starts.is_empty() {
        return Err("no 64-bit code (no executable .text section)".into());
    }
    let entries: Vec<u64> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .map(|s| s.address())
        .collect();
    leaders.extend_from_slice(&entries);
    starts.sort_unstable();
    leaders.sort_unstable();
    leaders.dedup();
    // A leader must be an instruction QEMU executes: a target inside an
    // instruction (data or a decoding out of step) counts nothing.
    leaders.retain(|pc| starts.binary_search(pc).is_ok());
    let mut entries = entries;
    entries.sort_unstable();
    let mut table = Vec::with_capacity(leaders.len() * 16);
    for pc in leaders {
        let entry = u64::from(entries.binary_search(&pc).is_ok());
        table.extend_from_slice(&pc.to_le_bytes());
        table.extend_from_slice(&entry.to_le_bytes());
    }
    Ok(table)
}

fn executable(flags: SectionFlags) -> bool {
    match flags {
        SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0,
        _ => false,
    }
}

/// Decodes `code` (at `base`), pushing every instruction's address to
/// `starts` and every leader it makes to `leaders`.
fn decode(code: &[u8], base: u64, starts: &mut Vec<u64>, leaders: &mut Vec<u64>) {
    let mut decoder = Decoder::with_ip(64, code, base, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        starts.push(insn.ip());
        if insn.is_invalid() {
            // Padding or data: the next byte may start code again.
            continue;
        }
        match insn.flow_control() {
            FlowControl::Next => {}
            FlowControl::UnconditionalBranch
            | FlowControl::ConditionalBranch
            | FlowControl::Call => {
                leaders.push(insn.next_ip());
                if insn.is_jmp_short_or_near()
                    || insn.is_jcc_short_or_near()
                    || insn.is_call_near()
                    || insn.is_loop()
                    || insn.is_loopcc()
                    || insn.is_jcx_short()
                {
                    leaders.push(insn.near_branch_target());
                }
            }
            _ => leaders.push(insn.next_ip()),
        }
    }
}

/// The pcs of a block table (or PC table), in its order.
pub fn pcs(table: &[u8]) -> impl Iterator<Item = u64> + '_ {
    table
        .chunks_exact(16)
        .map(|e| u64::from_le_bytes(e[..8].try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leaders of a code snippet at 0x1000, without an ELF.
    fn leaders_of(code: &[u8]) -> Vec<u64> {
        let (mut starts, mut leaders) = (Vec::new(), vec![0x1000]);
        decode(code, 0x1000, &mut starts, &mut leaders);
        leaders.sort_unstable();
        leaders.dedup();
        leaders.retain(|pc| starts.binary_search(pc).is_ok());
        leaders
    }

    #[test]
    fn branches_targets_and_fall_throughs_lead_blocks() {
        let code = [
            0x48, 0x85, 0xff, // 1000: test rdi, rdi
            0x74, 0x04, //       1003: je 1009
            0x48, 0xff, 0xc7, // 1005: inc rdi
            0x90, //             1008: nop
            0x48, 0x89, 0xf8, // 1009: mov rax, rdi
            0xc3, //             100c: ret
            0x90, //             100d: nop
        ];
        assert_eq!(leaders_of(&code), [0x1000, 0x1005, 0x1009, 0x100d]);
    }

    #[test]
    fn calls_lead_their_target_and_return_point_and_indirect_jumps_the_next() {
        let code = [
            0xe8, 0x03, 0x00, 0x00, 0x00, // 1000: call 1008
            0xff, 0xe0, //                   1005: jmp rax
            0x90, //                         1007: nop
            0xc3, //                         1008: ret
        ];
        assert_eq!(leaders_of(&code), [0x1000, 0x1005, 0x1007, 0x1008]);
    }

    #[test]
    fn a_target_inside_an_instruction_leads_nothing() {
        let code = [
            0xeb, 0x01, //                   1000: jmp 1003 (inside the mov)
            0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8,    // 1002: movabs rax, ...
            0xc3, //                         100c: ret
        ];
        assert_eq!(leaders_of(&code), [0x1000, 0x1002]);
    }

    #[test]
    fn the_built_kernels_table_is_sorted_and_marks_entries() {
        let Some(elf) = crate::guest_image::built_plain_kernel() else {
            eprintln!("skipped: no plain kernel was built (VMMFUZZ_SKIP_GUEST_BUILD)");
            return;
        };
        let bytes = std::fs::read(elf).expect("the built kernel");
        let table = block_table(&bytes).expect("a table");
        let pcs: Vec<u64> = pcs(&table).collect();
        assert!(pcs.len() > 1000, "{} leaders", pcs.len());
        assert!(pcs.windows(2).all(|w| w[0] < w[1]));
        let entries = table.chunks_exact(16).filter(|e| e[8] & 1 != 0).count();
        assert!(
            entries > 100 && entries < pcs.len() / 2,
            "{entries} entries"
        );
    }
}
