//! The block table of a kernel built without SanitizerCoverage: the
//! instructions QEMU's block counter (`host-runner/qemu-plugin`) counts,
//! in the PC table's format, so that everything keyed by a counter index
//! (hits, buckets, the kernel's id, sites, guidance) works the same for
//! both ways of counting.
//!
//! A block leader is an instruction that starts a basic block in the
//! static code: a function's entry (flag bit 0, as in SanitizerCoverage's
//! table), the target of a direct jump or call, the instruction after any
//! that changes the flow (a branch, call, return, interrupt or exception),
//! and a `rep` string instruction and the one after it. TCG runs a `rep`
//! one iteration per execution of the instruction, so its leader counts
//! iterations, not runs (flag bit 1, [`ITERATES`]): the corpus's guidance
//! and the report's runs leave such counts out. No block runs on past an
//! `int3` or the end of its section. The table depends only on the ELF
//! and these rules, so two guests, two campaigns and the report agree on
//! what counter `i` is, however TCG cuts its translation blocks (coverage
//! saved by a build with other rules belongs to another table).
//!
//! Only the 64-bit code counts: executable sections named `.text*`. The
//! 32-bit PVH entry (`.boot`) runs once per boot.

use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory,
    InstructionInfoOptions, Mnemonic, OpAccess,
};
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SymbolKind};

/// The table flag of a leader that is a function's entry.
pub const ENTRY: u64 = 1;
/// The table flag of a leader that counts iterations, not runs: a `rep`
/// string instruction's.
pub const ITERATES: u64 = 2;

/// The block table of `elf`: `(pc, flags)` pairs of little-endian `u64`s,
/// sorted by pc, one per leader, flags [`ENTRY`] and [`ITERATES`].
pub fn block_table(elf: &[u8]) -> Result<Vec<u8>, String> {
    decode(elf, false).map(|b| b.table)
}

/// A kernel's blocks: the table QEMU's plugin counts, and what runs each
/// time each leader does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocks {
    /// [`block_table`]'s bytes.
    pub table: Vec<u8>,
    /// `costs[i]`: leader `i`'s block.
    pub costs: Vec<BlockCost>,
}

/// What one block runs: the instructions from its leader up to the next
/// leader or through the first that changes the flow, whichever comes
/// first. All run whenever the leader does (straight-line code), so a
/// leader's count times its block's cost is what it accounts for.
///
/// Where that is not so: an exception in the middle of a block (the rest
/// did not run), a leader that faults and runs again (its block counts
/// twice), an indirect jump into the middle of a block (not counted).
/// A `rep` string instruction is a block of its own, whose leader QEMU
/// 7.2 counts once per iteration and once more per execution (after the
/// last iteration it runs the instruction again to find `rcx` zero), so
/// its cost is per iteration, with one too many per execution. The
/// kernel's code has no `fxsave`/`xsave` (soft float), whose one operand
/// stands for many stores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockCost {
    /// Its instructions.
    pub instructions: u32,
    /// The guest memory accesses its instructions make: memory operands
    /// (a read-modify-write one twice: TCG loads and then stores it, and
    /// with one vCPU a `lock`ed one or an `xchg` too, QEMU's non-parallel
    /// path) and the stack's (push, pop, call, return). Under TCG each is
    /// a lookup in QEMU's software TLB, which costs far more than an
    /// arithmetic instruction, so these bound an emulated guest more
    /// closely than its instructions do.
    pub accesses: u32,
}

/// The blocks of `elf` ([`Blocks`]).
pub fn blocks(elf: &[u8]) -> Result<Blocks, String> {
    decode(elf, true)
}

/// The code of `file`'s 64-bit sections, decoded (with each instruction's
/// memory accesses when `costs`).
fn code_of(file: &object::File, costs: bool) -> Result<Code, String> {
    let mut code = Code {
        costs,
        ..Code::default()
    };
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
    Ok(code)
}

/// The blocks of `elf`, with their costs when `costs` (else zero
/// accesses: the plugin's table needs no instruction info).
fn decode(elf: &[u8], costs: bool) -> Result<Blocks, String> {
    let file = object::File::parse(elf).map_err(|e| e.to_string())?;
    let mut code = code_of(&file, costs)?;
    code.entries = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .map(|s| s.address())
        .collect();
    Ok(code.blocks())
}

/// `insn`'s guest memory accesses ([`BlockCost::accesses`]).
fn accesses(info: &mut InstructionInfoFactory, insn: &Instruction) -> u32 {
    info.info_options(insn, InstructionInfoOptions::NO_REGISTER_USAGE)
        .used_memory()
        .iter()
        .map(|m| match m.access() {
            OpAccess::ReadWrite | OpAccess::ReadCondWrite => 2,
            _ => 1,
        })
        .sum()
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
    /// Whether to find each instruction's memory accesses.
    costs: bool,
    /// Every instruction's address and its memory accesses
    /// ([`BlockCost::accesses`]; 0 unless `costs`).
    starts: Vec<(u64, u32)>,
    /// The instructions no block runs on past: those that change the flow,
    /// `rep` string instructions, `int3`, undecodable bytes and each
    /// section's last instruction.
    ends: Vec<u64>,
    /// The `rep` string instructions ([`ITERATES`]).
    iterating: Vec<u64>,
    /// Leaders: section starts, the instructions after a flow change,
    /// `rep` string instructions and the instructions after them (the
    /// targets of direct jumps and calls are in `targets`).
    leaders: Vec<u64>,
    /// Direct targets: leaders whatever they are.
    targets: Vec<u64>,
    /// Functions' entries ([`ENTRY`]): leaders whatever they are.
    entries: Vec<u64>,
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
        let mut info = InstructionInfoFactory::new();
        while decoder.can_decode() {
            decoder.decode_out(&mut insn);
            let n = if self.costs {
                accesses(&mut info, &insn)
            } else {
                0
            };
            self.starts.push((insn.ip(), n));
            if insn.is_invalid() {
                // Data: the next byte may start code again.
                self.ends.push(insn.ip());
                continue;
            }
            if insn.mnemonic() == Mnemonic::Int3 {
                // Padding, or a breakpoint: nothing runs on past it.
                self.ends.push(insn.ip());
            }
            if matches!(insn.mnemonic(), Mnemonic::Nop | Mnemonic::Int3) {
                self.padding.push(insn.ip());
                continue;
            }
            if insn.is_string_instruction() && (insn.has_rep_prefix() || insn.has_repne_prefix()) {
                // A block of its own: TCG runs one iteration per execution.
                self.leaders.extend([insn.ip(), insn.next_ip()]);
                self.ends.push(insn.ip());
                self.iterating.push(insn.ip());
                continue;
            }
            if insn.flow_control() != FlowControl::Next {
                self.ends.push(insn.ip());
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
        // The section's code ends here: no block runs on into the next.
        if let Some(&(last, _)) = self.starts.last() {
            self.ends.push(last);
        }
    }

    /// The blocks: the leaders, sorted (those that start an instruction:
    /// a target inside one, data or a decoding out of step, counts
    /// nothing; of the padding only what a jump or a function's entry
    /// lands on), their table with its flags, and each one's cost
    /// ([`BlockCost`]).
    fn blocks(mut self) -> Blocks {
        self.targets.extend_from_slice(&self.entries);
        for v in [
            &mut self.ends,
            &mut self.targets,
            &mut self.entries,
            &mut self.iterating,
            &mut self.padding,
        ] {
            v.sort_unstable();
        }
        self.starts.sort_unstable();
        let mut leaders = self.leaders;
        leaders.extend_from_slice(&self.targets);
        leaders.sort_unstable();
        leaders.dedup();
        let has = |v: &[u64], pc: &u64| v.binary_search(pc).is_ok();
        let starts = |pc: &u64| self.starts.binary_search_by_key(pc, |s| s.0).is_ok();
        leaders.retain(|pc| starts(pc) && (!has(&self.padding, pc) || has(&self.targets, pc)));
        let costs = leaders
            .iter()
            .enumerate()
            .map(|(i, &pc)| {
                let next = leaders.get(i + 1).copied().unwrap_or(u64::MAX);
                let from = self.starts.partition_point(|s| s.0 < pc);
                let mut cost = BlockCost::default();
                for &(ip, accesses) in self.starts[from..].iter().take_while(|s| s.0 < next) {
                    cost.instructions += 1;
                    cost.accesses += accesses;
                    if has(&self.ends, &ip) {
                        break;
                    }
                }
                cost
            })
            .collect();
        let mut table = Vec::with_capacity(leaders.len() * 16);
        for pc in &leaders {
            let flag = |v: &[u64], f: u64| if has(v, pc) { f } else { 0 };
            let flags = flag(&self.entries, ENTRY) | flag(&self.iterating, ITERATES);
            table.extend_from_slice(&pc.to_le_bytes());
            table.extend_from_slice(&flags.to_le_bytes());
        }
        Blocks { table, costs }
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
        blocks_of(code).0
    }

    /// Leaders of a code snippet at 0x1000 and their blocks' costs.
    fn blocks_of(code: &[u8]) -> (Vec<u64>, Vec<BlockCost>) {
        let mut c = Code {
            costs: true,
            ..Code::default()
        };
        c.leaders.push(0x1000);
        c.decode(code, 0x1000);
        let b = c.blocks();
        (pcs(&b.table).collect(), b.costs)
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
        let (leaders, costs) = blocks_of(&code);
        assert_eq!(leaders, [0x1000, 0x1005, 0x1009, 0x100d]);
        // The nop runs: the inc falls through it.
        let lengths: Vec<u32> = costs.iter().map(|c| c.instructions).collect();
        assert_eq!(lengths, [2, 2, 2, 1]);
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
    fn a_block_runs_up_to_the_next_leader_or_through_its_flow_change() {
        let code = [
            0x48, 0x89, 0xf8, //             1000: mov rax, rdi
            0xc3, //                         1003: ret
            0xcc, 0xcc, //                   1004: int3 (padding, never run)
            0x50, //                         1006: push rax (the call's target)
            0xe8, 0xfa, 0xff, 0xff, 0xff, // 1007: call 1006
        ];
        let (leaders, costs) = blocks_of(&code);
        // The call's return point is past the code: no leader.
        assert_eq!(leaders, [0x1000, 0x1006]);
        let lengths: Vec<u32> = costs.iter().map(|c| c.instructions).collect();
        assert_eq!(lengths, [2, 2]);
        // The return pops; the push and the call push.
        let accesses: Vec<u32> = costs.iter().map(|c| c.accesses).collect();
        assert_eq!(accesses, [1, 2]);
    }

    #[test]
    fn read_modify_write_operands_access_twice() {
        // With one vCPU, TCG runs a locked operation as a load and a store.
        let code = [
            0x48, 0x89, 0x07, //             1000: mov [rdi], rax      1
            0x48, 0x83, 0x07, 0x01, //       1003: add qword [rdi], 1  2
            0xf0, 0x48, 0x83, 0x07, 0x01, // 1007: lock add [rdi], 1   2
            0x48, 0x8d, 0x47, 0x08, //       100c: lea rax, [rdi+8]    0
            0xff, 0x37, //                   1010: push qword [rdi]    2
            0x48, 0x87, 0x07, //             1012: xchg [rdi], rax     2
            0xc3, //                         1015: ret                 1
        ];
        let (leaders, costs) = blocks_of(&code);
        assert_eq!(leaders, [0x1000]);
        assert_eq!(
            costs,
            [BlockCost {
                instructions: 7,
                accesses: 10
            }]
        );
    }

    #[test]
    fn a_rep_string_instruction_is_a_block_of_its_own() {
        let code = [
            0x48, 0x89, 0xd1, // 1000: mov rcx, rdx
            0xf3, 0x48, 0xa5, // 1003: rep movsq (a load and a store)
            0xc3, //             1006: ret
        ];
        let (leaders, costs) = blocks_of(&code);
        assert_eq!(leaders, [0x1000, 0x1003, 0x1006]);
        let cost = |instructions, accesses| BlockCost {
            instructions,
            accesses,
        };
        assert_eq!(costs, [cost(1, 0), cost(1, 2), cost(1, 1)]);
        // Its leader is flagged: it counts iterations.
        let mut c = Code::default();
        c.decode(&code, 0x1000);
        assert_eq!(c.iterating, [0x1003]);
    }

    #[test]
    fn no_block_runs_on_into_the_next_section_or_past_an_int3() {
        let mut c = Code {
            costs: true,
            ..Code::default()
        };
        for (base, code) in [
            (0x1000, &[0x48, 0xff, 0xc7][..]), // inc rdi, then the section ends
            (0x2000, &[0x50, 0xcc, 0x50, 0xc3][..]), // push rax; int3; push rax; ret
        ] {
            c.leaders.push(base);
            c.decode(code, base);
        }
        let b = c.blocks();
        let (leaders, costs): (Vec<u64>, _) = (pcs(&b.table).collect(), b.costs);
        assert_eq!(leaders, [0x1000, 0x2000]);
        let lengths: Vec<u32> = costs.iter().map(|c| c.instructions).collect();
        assert_eq!(lengths, [1, 2]);
    }

    #[test]
    fn the_built_kernels_table_is_sorted_and_marks_entries() {
        let Some(elf) = crate::guest_image::built_plain_kernel() else {
            eprintln!("skipped: no plain kernel was built (VMMFUZZ_SKIP_GUEST_BUILD)");
            return;
        };
        let bytes = std::fs::read(elf).expect("the built kernel");
        let Blocks { table, costs } = blocks(&bytes).expect("a table");
        let pcs: Vec<u64> = pcs(&table).collect();
        assert_eq!(costs.len(), pcs.len());
        assert!(
            costs.iter().all(|c| c.instructions > 0),
            "a leader of no instruction"
        );
        // The kernel's memset (guest/kernel/src/mem.rs, assembly: the same
        // bytes in every build): its entry block sets up and branches (six
        // instructions, no access), its loop stores 64 bytes a turn.
        let file = object::File::parse(&*bytes).expect("an ELF");
        let memset = file
            .symbols()
            .find(|s| s.name() == Ok("memset"))
            .expect("memset")
            .address();
        let at = |pc| costs[pcs.binary_search(&pc).expect("a leader")];
        let block = |instructions, accesses| BlockCost {
            instructions,
            accesses,
        };
        assert_eq!(at(memset), block(6, 0));
        assert_eq!(at(memset + 0x1b), block(12, 8));
        // The plugin's table is the same without the costs.
        assert_eq!(block_table(&bytes).expect("a table"), table);
        assert!(pcs.len() > 1000, "{} leaders", pcs.len());
        assert!(pcs.windows(2).all(|w| w[0] < w[1]));
        let entries = table.chunks_exact(16).filter(|e| e[8] & 1 != 0).count();
        assert!(
            entries > 100 && entries < pcs.len() / 2,
            "{entries} entries"
        );
    }
}
