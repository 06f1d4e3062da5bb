//! From counter indexes to source: the kernel ELF's PC table gives each
//! counter's code address, its DWARF the function and line there.

use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol};

use super::blocks::{BlockCost, ENTRY, ITERATES};
use super::edges::{Guidance, KernelId};
use super::CoverageError;

/// Whose code an edge is.
#[derive(serde::Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// `guest/core`: the VMM.
    Core,
    /// `guest/kernel`: the hardware glue.
    Kernel,
    /// Anything else compiled into the kernel: dependencies, `core` and
    /// `alloc` code inlined there, code without line information.
    Other,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Core => "guest/core",
            Origin::Kernel => "guest/kernel",
            Origin::Other => "other",
        }
    }
}

/// Where one counter's edge is in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// Address of the instrumented block.
    pub pc: u64,
    /// The block starts a function (the PC table's flag).
    pub entry: bool,
    /// Its count is of iterations, not runs: a `rep` string instruction's
    /// leader in QEMU's block table ([`super::blocks::ITERATES`]).
    pub iterates: bool,
    /// The function the line belongs to (an inlined one where inlined),
    /// demangled without hash; `?` when the DWARF has none.
    pub function: String,
    /// The source file, from `guest/` on for the guest's own files and from
    /// `protocol/` on for the protocol crate's (so the same in every
    /// checkout); as the DWARF says for others; `?` if none.
    pub file: String,
    /// The line (0 when unknown).
    pub line: u32,
    pub origin: Origin,
}

/// Every counter's site, for one kernel build.
#[derive(Debug)]
pub struct KernelSymbols {
    pub kernel: KernelId,
    /// `sites[i]` is counter `i`'s.
    pub sites: Vec<Site>,
    /// For a kernel whose blocks QEMU counts (no counters of its own), what
    /// each count stands for ([`BlockCost`]): QEMU's counts are exact, so
    /// hits times costs are the instructions the guest ran and the memory
    /// accesses they made. `None` for SanitizerCoverage's edges, which are
    /// not blocks and whose 8-bit counters wrap.
    pub costs: Option<Vec<BlockCost>>,
}

/// The PC table section (`protocol::formats`, "Coverage counters").
const PC_TABLE: &str = "__sancov_pcs";

fn elf_error(path: &Path, why: impl ToString) -> CoverageError {
    CoverageError::Elf {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// `path` from `guest/core/` or `guest/kernel/` on, and whose it is; the
/// workspace's other crates the kernel builds in (`protocol/`) from the
/// workspace on too, so the same in every checkout.
fn classify(path: &str) -> (String, Origin) {
    for (dir, origin) in [
        ("guest/core/", Origin::Core),
        ("guest/kernel/", Origin::Kernel),
    ] {
        if let Some(at) = path.rfind(dir) {
            return (path[at..].to_string(), origin);
        }
    }
    match path.rfind("/protocol/src/") {
        Some(at) => (path[at + 1..].to_string(), Origin::Other),
        None => (path.to_string(), Origin::Other),
    }
}

/// The counters' PC table of the kernel ELF `data`: SanitizerCoverage's
/// section, or for a kernel built without it (the section empty) the
/// block table QEMU's plugin counts ([`super::blocks`]).
pub fn pc_table(data: &[u8]) -> Result<Vec<u8>, String> {
    counted(data).map(|(table, _)| table)
}

/// [`pc_table`], and for a kernel whose blocks QEMU counts what each
/// block runs ([`KernelSymbols::costs`]).
fn counted(data: &[u8]) -> Result<(Vec<u8>, Option<Vec<BlockCost>>), String> {
    let file = object::File::parse(data).map_err(|e| e.to_string())?;
    let table = sancov_pcs(&file)?;
    if table.is_empty() {
        let blocks = super::blocks::blocks(data)?;
        return Ok((blocks.table, Some(blocks.costs)));
    }
    if table.len() % 16 != 0 {
        return Err(format!("{PC_TABLE} of {} bytes", table.len()));
    }
    Ok((table.to_vec(), None))
}

/// Whether the kernel ELF `data` has SanitizerCoverage's counters (a
/// non-empty PC table section).
pub fn has_sancov(data: &[u8]) -> bool {
    object::File::parse(data)
        .ok()
        .and_then(|f| sancov_pcs(&f).ok().map(|t| !t.is_empty()))
        .unwrap_or(false)
}

/// The PC table section's bytes (empty when there is none).
fn sancov_pcs<'a>(file: &object::File<'a>) -> Result<&'a [u8], String> {
    match file.section_by_name(PC_TABLE) {
        Some(section) => section.data().map_err(|e| e.to_string()),
        None => Ok(&[]),
    }
}

impl KernelSymbols {
    /// Reads the PC table ([`pc_table`]) and maps every PC to its site.
    pub fn load(elf: &Path) -> Result<KernelSymbols, CoverageError> {
        let data = std::fs::read(elf).map_err(|source| CoverageError::Io {
            what: format!("reading {}", elf.display()),
            source,
        })?;
        let (table, costs) = counted(&data).map_err(|why| elf_error(elf, why))?;
        let loader = addr2line::Loader::new(elf).map_err(|e| elf_error(elf, e))?;
        let labels = code_labels(&data);
        let sites = table
            .chunks_exact(16)
            .map(|pair| {
                let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
                site(&loader, &labels, word(&pair[..8]), word(&pair[8..]))
            })
            .collect();
        Ok(KernelSymbols {
            kernel: KernelId::of_pc_table(&table),
            sites,
            costs,
        })
    }

    /// Which edges count when a campaign asks whether a sequence reached
    /// something new: all but those whose hit counts follow when the
    /// host's requests arrive rather than what they ask ([`times_the_host`])
    /// and those that count a `rep`'s iterations ([`Site::iterates`]):
    /// their buckets would follow how many bytes a copy moved, and the
    /// block before them is reached whenever they are.
    pub fn guidance(&self) -> Guidance {
        Guidance {
            kernel: self.kernel,
            ignored: self
                .sites
                .iter()
                .map(|s| s.iterates || times_the_host(s))
                .collect(),
        }
    }

    /// Fails unless `kernel` is this build.
    pub fn check(&self, kernel: KernelId) -> Result<(), CoverageError> {
        if kernel == self.kernel {
            Ok(())
        } else {
            Err(CoverageError::OtherKernel {
                ours: self.kernel.to_string(),
                theirs: kernel.to_string(),
            })
        }
    }
}

/// The guest's files whose edges run as often as the host's timing makes
/// them: the transport's waits (the ring's spin before `hlt`, the UART's
/// polls and interrupts, the doorbell). Measured: two campaigns of the
/// same operations differed in 14 edges' counts, all in these, and the
/// corpus kept different sequences on them.
const HOST_TIMED_FILES: [&str; 4] = [
    "guest/kernel/src/rpc.rs",
    "guest/kernel/src/ring.rs",
    "guest/kernel/src/serial.rs",
    "guest/kernel/src/irq.rs",
];

/// The same files' modules: a site of their functions whose line the
/// DWARF gives to inlined code of another crate (a port read, an atomic
/// load, at line 0) is theirs too. Measured with QEMU's counts, which
/// count such instructions: `rpc::serve`'s polls at `port.rs:0` and
/// `atomic.rs:0` differed between two guests of the same requests.
const HOST_TIMED_MODULES: [&str; 4] = [
    "vmmfuzz_kernel::rpc::",
    "vmmfuzz_kernel::ring::",
    "vmmfuzz_kernel::serial::",
    "vmmfuzz_kernel::irq::",
];

/// The functions outside those files whose entry runs once per interrupt
/// as well as per exception.
const HOST_TIMED_FUNCTIONS: [&str; 2] = [
    "vmmfuzz_kernel::interrupts::exception_entry",
    // Inlined into it, and run for interrupts only.
    "vmmfuzz_kernel::interrupts::interrupt",
];

/// The interrupt entry's assembly (`interrupts.rs`'s `global_asm!`,
/// without DWARF: its sites are named by symbol), which QEMU's block
/// counts count and SanitizerCoverage did not: the common path runs once
/// per interrupt as well as per exception, the stubs of vectors 32 and up
/// (the PIC's interrupts) once per interrupt.
fn interrupt_entry(function: &str) -> bool {
    function == "isr_common"
        || function
            .strip_prefix("isr_stub_")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|vector| vector >= 32)
}

/// Whether an edge's count follows the host's timing (see
/// [`HOST_TIMED_FILES`]).
pub fn times_the_host(site: &Site) -> bool {
    HOST_TIMED_FILES.contains(&site.file.as_str())
        || HOST_TIMED_FUNCTIONS.contains(&site.function.as_str())
        || interrupt_entry(&site.function)
        || HOST_TIMED_MODULES
            .iter()
            .any(|m| site.function.starts_with(m))
}

/// The site of `pc`: the innermost frame (of the inlined ones) that is the
/// guest's own code, else the innermost frame. An iterator's `next`
/// inlined into the VMM counts as the VMM line that called it.
/// The ELF's symbols in code, sorted by address, sized or not: names for
/// code without DWARF (the interrupt entry's assembly labels, which
/// addr2line's symbol lookup, by size, does not find).
fn code_labels(data: &[u8]) -> Vec<(u64, String)> {
    let Ok(file) = object::File::parse(data) else {
        return Vec::new();
    };
    let code = |s: &object::Symbol| {
        s.section_index()
            .and_then(|i| file.section_by_index(i).ok())
            .is_some_and(|sec| sec.kind() == object::SectionKind::Text)
    };
    let mut labels: Vec<(u64, String)> = file
        .symbols()
        .filter(|s| code(s) && s.kind() != object::SymbolKind::Section)
        .filter_map(|s| Some((s.address(), s.name().ok()?.to_string())))
        .filter(|(_, name)| !name.is_empty())
        .collect();
    labels.sort();
    labels
}

/// The name of the nearest label at or below `pc`.
fn label_at(labels: &[(u64, String)], pc: u64) -> Option<String> {
    let i = labels.partition_point(|(a, _)| *a <= pc);
    i.checked_sub(1).map(|i| rustc_demangle(&labels[i].1))
}

fn site(loader: &addr2line::Loader, labels: &[(u64, String)], pc: u64, flags: u64) -> Site {
    let mut chosen: Option<(Option<String>, String, u32, Origin)> = None;
    if let Ok(mut frames) = loader.find_frames(pc) {
        while let Ok(Some(frame)) = frames.next() {
            let function = frame
                .function
                .as_ref()
                .and_then(|f| f.demangle().ok().map(|n| n.into_owned()));
            let (file, line) = frame
                .location
                .map_or((None, None), |l| (l.file.map(str::to_owned), l.line));
            let (file, origin) = file.map_or(("?".into(), Origin::Other), |f| classify(&f));
            let candidate = (function, file, line.unwrap_or(0), origin);
            if origin != Origin::Other {
                chosen = Some(candidate);
                break;
            }
            chosen.get_or_insert(candidate);
        }
    }
    let (function, file, line, origin) = chosen.unwrap_or((None, "?".into(), 0, Origin::Other));
    let function = function
        .or_else(|| loader.find_symbol(pc).map(rustc_demangle))
        .or_else(|| label_at(labels, pc))
        .unwrap_or_else(|| "?".into());
    Site {
        pc,
        entry: flags & ENTRY != 0,
        iterates: flags & ITERATES != 0,
        function,
        file,
        line,
        origin,
    }
}

/// A symbol's demangled form (as itself when it is not a Rust symbol).
fn rustc_demangle(s: &str) -> String {
    addr2line::demangle_auto(s.into(), Some(addr2line::gimli::DW_LANG_Rust)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, function: &str) -> Site {
        Site {
            pc: 0,
            entry: false,
            iterates: false,
            function: function.into(),
            file: file.into(),
            line: 1,
            origin: Origin::Kernel,
        }
    }

    #[test]
    fn the_transports_waits_time_the_host_and_the_vmm_does_not() {
        assert!(times_the_host(&at(
            "guest/kernel/src/rpc.rs",
            "vmmfuzz_kernel::rpc::spin_for_request"
        )));
        assert!(times_the_host(&at("guest/kernel/src/serial.rs", "x")));
        assert!(times_the_host(&at(
            "guest/kernel/src/interrupts.rs",
            "vmmfuzz_kernel::interrupts::exception_entry"
        )));
        assert!(!times_the_host(&at(
            "guest/kernel/src/touch.rs",
            "vmmfuzz_kernel::touch::page_fault"
        )));
        assert!(!times_the_host(&at(
            "guest/core/src/vmm/fault.rs",
            "vmm_core::vmm::fault::x"
        )));
        assert!(
            !times_the_host(&at("guest/core/src/rpc.rs", "x")),
            "only the kernel's"
        );
    }

    #[test]
    fn the_interrupt_entrys_assembly_times_the_host_but_exceptions_stubs_do_not() {
        for (function, timed) in [
            ("vmmfuzz_kernel::rpc::serve", true),
            ("vmmfuzz_kernel::rpcx::serve", false),
            ("isr_common", true),
            ("isr_stub_32", true),
            ("isr_stub_36", true),
            ("isr_stub_14", false),
            ("isr_stub_x", false),
        ] {
            assert_eq!(times_the_host(&at("?", function)), timed, "{function}");
        }
        // On the kernel QEMU counts: every leader of the common path.
        let Some(plain) = crate::guest_image::built_plain_kernel() else {
            eprintln!("skipped: no plain kernel was built (VMMFUZZ_SKIP_GUEST_BUILD)");
            return;
        };
        let symbols = KernelSymbols::load(plain).unwrap();
        let guidance = symbols.guidance();
        let common: Vec<usize> = (0..symbols.sites.len())
            .filter(|&i| symbols.sites[i].function == "isr_common")
            .collect();
        assert!(common.len() > 1, "{common:?}");
        assert!(common.iter().all(|&i| guidance.ignored[i]));
    }

    #[test]
    fn guest_paths_are_cut_to_the_workspace() {
        assert_eq!(
            classify("/work/x/guest/core/src/vmm.rs"),
            ("guest/core/src/vmm.rs".into(), Origin::Core)
        );
        assert_eq!(
            classify("/a/guest/kernel/src/touch.rs"),
            ("guest/kernel/src/touch.rs".into(), Origin::Kernel)
        );
        assert_eq!(
            classify("/work/x/protocol/src/pattern.rs"),
            ("protocol/src/pattern.rs".into(), Origin::Other)
        );
        let dep = "/root/.cargo/registry/src/x/postcard-1.0/src/de.rs";
        assert_eq!(classify(dep), (dep.into(), Origin::Other));
    }
}
