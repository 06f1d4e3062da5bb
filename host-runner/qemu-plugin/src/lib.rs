//! `vmmfuzz-qemu-plugin`: a QEMU 7.2 TCG plugin (plugin API version 1)
//! that counts, in a file the host maps, how often each of a given set of
//! guest instruction addresses executes.
//!
//! # Why
//!
//! The guest kernel's coverage used to be counted by the guest itself,
//! with SanitizerCoverage counters: under TCG every counter bump is a
//! guest load and store through QEMU's softmmu, which cost about 20-30 %
//! of the guest's time. This plugin counts in QEMU instead: when QEMU
//! translates a block, the plugin asks it to emit, before each table
//! instruction of the block, one inline host add of 1 to that
//! instruction's count. Nothing else runs per execution (no callback, no
//! helper call).
//!
//! Counts are kept per instruction address (the table's pcs: block
//! leaders of the guest's code), not per translation block: whichever way
//! TCG cuts its blocks (a block may hold several table pcs, or start in
//! the middle of a basic block after an exception or a page boundary), an
//! address's count is the number of times the guest executed the
//! instruction there, so hit counts are deterministic by address.
//!
//! # Arguments
//!
//! ```text
//! -plugin /path/libvmmfuzz_qemu_plugin.so,table=PATH,counts=PATH
//! ```
//!
//! Both are required, each once; any other argument is an error. (QEMU's
//! option syntax: a comma in a path must be doubled.)
//!
//! - `table`: N ≥ 1 entries of 16 bytes, each two little-endian `u64`s
//!   `(pc, flags)`, sorted by pc strictly ascending: SanitizerCoverage's PC
//!   table format. The flags (bit 0: function entry) are not used. Pcs are
//!   guest virtual addresses.
//! - `counts`: a file of exactly N × 8 bytes, created (zeroed) by the host.
//!   It is mapped shared read-write for the life of QEMU: `counts[i]`, a
//!   native-endian `u64`, is incremented each time the guest executes the
//!   instruction at `pc_i`, and another process mapping the same file sees
//!   the counts as they go. The adds are not atomic (fine with one vCPU);
//!   the file must not be truncated while QEMU runs (that would be a
//!   SIGBUS in QEMU).
//!
//! On any error (arguments, files, table) the plugin prints one line
//! `vmmfuzz-qemu-plugin: ...` on stderr and its install returns nonzero,
//! so QEMU refuses to start.
//!
//! # Notes
//!
//! An instruction that faults is still counted (the add comes before it),
//! and counted again when it is re-executed. A block QEMU re-translates
//! only to replay its memory accesses (I/O recompilation under icount) gets
//! no second add: QEMU ignores inline ops for such blocks.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fs::{File, OpenOptions};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use memmap2::{MmapOptions, MmapRaw};

mod ffi;
mod table;

use ffi::{QemuInfo, QemuPluginId, QemuPluginTb};
use table::{Args, Table};

/// The plugin API version this plugin is built against; QEMU checks it
/// before calling [`qemu_plugin_install`].
#[allow(non_upper_case_globals)]
#[unsafe(no_mangle)]
pub static qemu_plugin_version: c_int = ffi::QEMU_PLUGIN_VERSION;

/// The prefix of every message.
const PREFIX: &str = "vmmfuzz-qemu-plugin";

/// Writes a line to stderr, ignoring a failed write: `eprintln!` would
/// panic, and a panic in a function QEMU calls aborts QEMU.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// What the translation callback reads: set once by a successful install,
/// read-only afterwards, never dropped (QEMU keeps the counts' addresses
/// in translated code for as long as it runs).
#[derive(Debug)]
struct State {
    /// The table's pcs.
    table: Table,
    /// The counts file, mapped shared read-write, `table.len()` `u64`s.
    counts: MmapRaw,
}

static STATE: OnceLock<State> = OnceLock::new();

/// QEMU's entry point: parses the arguments, loads the table, maps the
/// counts and registers the translation callback. Returns 0, or -1 after
/// printing what is wrong.
///
/// # Safety
///
/// Called by QEMU's plugin loader only: `argv` points to `argc` valid
/// NUL-terminated strings (or is null when `argc` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qemu_plugin_install(
    id: QemuPluginId,
    _info: *const QemuInfo,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    let installed = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: QEMU passes `argc` valid strings in `argv` (the
        // function's contract).
        let argv = unsafe { arg_bytes(argc, argv) }?;
        install(id, &argv)
    }));
    match installed {
        Ok(Ok(())) => 0,
        Ok(Err(message)) => {
            say!("{PREFIX}: {message}");
            -1
        }
        Err(_) => {
            say!("{PREFIX}: internal error (a panic) while installing");
            -1
        }
    }
}

/// The arguments as byte strings.
///
/// # Safety
///
/// `argv` points to `argc` valid NUL-terminated strings that outlive the
/// result, or `argc` is 0.
unsafe fn arg_bytes<'a>(argc: c_int, argv: *const *const c_char) -> Result<Vec<&'a [u8]>, String> {
    let argc = usize::try_from(argc).map_err(|_| format!("QEMU passed argc {argc}"))?;
    if argc == 0 {
        return Ok(Vec::new());
    }
    if argv.is_null() {
        return Err(format!("QEMU passed {argc} arguments but no argv"));
    }
    let mut out = Vec::with_capacity(argc);
    for i in 0..argc {
        // SAFETY: `argv` holds `argc` pointers (the caller's contract) and
        // `i < argc`.
        let arg = unsafe { *argv.add(i) };
        if arg.is_null() {
            return Err(format!("QEMU passed a null argument {i}"));
        }
        // SAFETY: a non-null argument is a valid NUL-terminated string
        // that outlives the result (the caller's contract).
        out.push(unsafe { CStr::from_ptr(arg) }.to_bytes());
    }
    Ok(out)
}

/// Everything [`qemu_plugin_install`] does but talking C.
fn install(id: QemuPluginId, argv: &[&[u8]]) -> Result<(), String> {
    let Args { table, counts } = table::parse_args(argv).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&table)
        .map_err(|e| format!("cannot read the table {}: {e}", table.display()))?;
    let pcs = Table::parse(&bytes).map_err(|e| format!("{}: {e}", table.display()))?;

    let want = pcs.counts_bytes().ok_or("the table is too large")?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&counts)
        .map_err(|e| {
            format!(
                "cannot open the counts {} read-write: {e}",
                counts.display()
            )
        })?;
    let have =
        file_len(&file).map_err(|e| format!("cannot stat the counts {}: {e}", counts.display()))?;
    if have != want {
        return Err(format!(
            "the counts {} has {have} bytes, but the table {} has {} entries: it needs {want} (8 per entry)",
            counts.display(),
            table.display(),
            pcs.len()
        ));
    }
    let len = usize::try_from(want).map_err(|_| "the table is too large".to_string())?;
    // `map_raw` maps the file shared (MAP_SHARED) and writable.
    let map = MmapOptions::new()
        .len(len)
        .map_raw(&file)
        .map_err(|e| format!("cannot map the counts {}: {e}", counts.display()))?;

    STATE
        .set(State {
            table: pcs,
            counts: map,
        })
        .map_err(|_| "installed twice in one QEMU".to_string())?;
    // SAFETY: QEMU's registration function, called with the id QEMU gave
    // this install and a callback of the right type that lives as long as
    // the plugin.
    unsafe { ffi::qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans) };
    Ok(())
}

/// The size of `file` in bytes.
fn file_len(file: &File) -> std::io::Result<u64> {
    Ok(file.metadata()?.len())
}

/// The translation callback: asks QEMU for one inline add of 1 to the
/// count of each table instruction in `tb`.
extern "C" fn on_tb_trans(_id: QemuPluginId, tb: *mut QemuPluginTb) {
    let done = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: QEMU calls this callback with a valid block handle, for
        // the duration of the call.
        unsafe { instrument(tb) }
    }));
    if done.is_err() {
        say!("{PREFIX}: internal error (a panic) in the translation callback: a block is not counted");
    }
}

/// Registers the adds of [`on_tb_trans`].
///
/// # Safety
///
/// `tb` is the block handle QEMU passed to the translation callback that
/// is running.
unsafe fn instrument(tb: *mut QemuPluginTb) {
    let Some(state) = STATE.get() else {
        return;
    };
    // SAFETY: `tb` is valid during the callback (the caller's contract).
    let n = unsafe { ffi::qemu_plugin_tb_n_insns(tb) };
    if n == 0 {
        return;
    }
    // SAFETY: as above; `n - 1 < n`, and a null handle is checked.
    let last = unsafe { ffi::qemu_plugin_tb_get_insn(tb, n - 1) };
    if !last.is_null() {
        // SAFETY: `tb` is valid (above) and `last` is one of its
        // instructions, valid during the callback.
        let (first, last) = unsafe {
            (
                ffi::qemu_plugin_tb_vaddr(tb),
                ffi::qemu_plugin_insn_vaddr(last),
            )
        };
        if !state.table.may_hold(first, last) {
            return;
        }
    }
    let counts = state.counts.as_mut_ptr().cast::<u64>();
    for i in 0..n {
        // SAFETY: `tb` is valid during the callback and `i < n`.
        let insn = unsafe { ffi::qemu_plugin_tb_get_insn(tb, i) };
        if insn.is_null() {
            continue;
        }
        // SAFETY: `insn` is a non-null instruction handle of `tb`, valid
        // during the callback.
        let pc = unsafe { ffi::qemu_plugin_insn_vaddr(insn) };
        let Some(index) = state.table.index_of(pc) else {
            continue;
        };
        // SAFETY: `index < table.len()`, and the mapping holds
        // `table.len()` u64s (its length was checked at install; a page-
        // aligned mapping is aligned for u64), so the pointer stays inside
        // it. The mapping is never unmapped (`STATE` is never dropped), so
        // QEMU may add to it for as long as it runs; Rust never makes a
        // reference to the counts.
        let count = unsafe { counts.add(index) };
        // SAFETY: `insn` is valid (above); the op and its pointer are
        // what QEMU's inline add needs.
        unsafe {
            ffi::qemu_plugin_register_vcpu_insn_exec_inline(
                insn,
                ffi::QEMU_PLUGIN_INLINE_ADD_U64,
                count.cast::<c_void>(),
                1,
            );
        }
    }
}
