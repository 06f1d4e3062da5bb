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

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic};
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SymbolKind};

/// The block table of `elf`: `(pc, flags)` pairs of little-endian `u64`s,
/// sorted by pc, one per leader, flag bit 0 on functions' entries.
pub fn block_table(elf: &[u8]) -> Result<Vec<u8>, String> {
    let file = object::File::parse(elf).map_err(|e| e.to_string())?;
    let mut code = Code::default();
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        if !name.starts_with(".text") || !executable(section.flags()) {
            continue;
        }
        let bytes = section.data().map_err(|e| format!("{name}: {e}"))?;
        code.leaders.push(section.address());
        code.decode(bytes, section.address());
    }
    if code.starts.is_empty() {
        return Err("no 64-bit code (no executable .text section)".into());
    }
    let mut entries: Vec<u64> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .map(|s| s.address())
        .collect();
    entries.sort_unstable();
    code.targets.extend_from_slice(&entries);
    let leaders = code.leaders();
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

/// What decoding the code found.
#[derive(Default)]
struct Code {
    /// Every instruction's address.
    starts: Vec<u64>,
    /// Leaders: section starts, the instructions after a flow change and
    /// the targets of direct jumps and calls.
    leaders: Vec<u64>,
    /// Direct targets and functions' entries: leaders whatever they are.
    targets: Vec<u64>,
    /// Padding (`nop`, `int3`): after a jump or return, the bytes up to
    /// the next aligned function or loop, which never run unless a jump
    /// lands on them.
    padding: Vec<u64>,
}

impl Code {
    /// Decodes `code` (at `base`).
    fn decode(&mut self, code: &[u8], base: u64) {
        let mut decoder = Decoder::with_ip(64, code, base, DecoderOptions::NONE);
        let mut insn = Instruction::default();
        while decoder.can_decode() {
            decoder.decode_out(&mut insn);
            self.starts.push(insn.ip());
            if insn.is_invalid() {
                // Data: the next byte may start code again.
                continue;
            }
            if matches!(insn.mnemonic(), Mnemonic::Nop | Mnemonic::Int3) {
                self.padding.push(insn.ip());
                continue;
            }
            match insn.flow_control() {
                FlowControl::Next => {}
                FlowControl::UnconditionalBranch
                | FlowControl::ConditionalBranch
                | FlowControl::Call => {
                    self.leaders.push(insn.next_ip());
                    if insn.is_jmp_short_or_near()
                        || insn.is_jcc_short_or_near()
                        || insn.is_call_near()
                        || insn.is_loop()
                        || insn.is_loopcc()
                        || insn.is_jcx_short()
                    {
                        self.targets.push(insn.near_branch_target());
                    }
                }
                _ => self.leaders.push(insn.next_ip()),
            }
        }
    }

    /// The leaders, sorted: those that start an instruction (a target
    /// inside one, data or a decoding out of step, counts nothing), and of
    /// the padding only what a jump lands on.
    fn leaders(mut self) -> Vec<u64> {
        self.starts.sort_unstable();
        self.targets.sort_unstable();
        self.padding.sort_unstable();
        let mut leaders = self.leaders;
        leaders.extend_from_slice(&self.targets);
        leaders.sort_unstable();
        leaders.dedup();
        let has = |v: &[u64], pc: &u64| v.binary_search(pc).is_ok();
        leaders.retain(|pc| {
            has(&self.starts, pc) && (!has(&self.padding, pc) || has(&self.targets, pc))
        });
        leaders
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pcs of a block table, in its order.
    fn pcs(table: &[u8]) -> impl Iterator<Item = u64> + '_ {
        table
            .chunks_exact(16)
            .map(|e| u64::from_le_bytes(e[..8].try_into().expect("8 bytes")))
    }

    /// Leaders of a code snippet at 0x1000, without an ELF.
    fn leaders_of(code: &[u8]) -> Vec<u64> {
        let mut c = Code::default();
        c.leaders.push(0x1000);
        c.decode(code, 0x1000);
        c.leaders()
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
            0x50, //             100d: push rax
        ];
        assert_eq!(leaders_of(&code), [0x1000, 0x1005, 0x1009, 0x100d]);
    }

    #[test]
    fn calls_lead_their_target_and_return_point_and_indirect_jumps_the_next() {
        let code = [
            0xe8, 0x03, 0x00, 0x00, 0x00, // 1000: call 1008
            0xff, 0xe0, //                   1005: jmp rax
            0x50, //                         1007: push rax
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
    fn padding_leads_nothing_unless_a_jump_lands_on_it() {
        let code = [
            0xc3, //                         1000: ret
            0xcc, 0xcc, //                   1001: int3 (padding)
            0x90, //                         1003: nop (padding)
            0x75, 0xfd, //                   1004: jne 1003
            0xcc, //                         1006: int3
            0x90, //                         1007: nop
        ];
        assert_eq!(leaders_of(&code), [0x1000, 0x1003]);
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
