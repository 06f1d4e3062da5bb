//! The few items of QEMU's plugin API this plugin uses, declared by hand.
//!
//! They mirror QEMU 7.2's `include/qemu/qemu-plugin.h`, plugin API version
//! 1 (`QEMU_PLUGIN_VERSION`). The functions are defined in the QEMU binary
//! (which exports them dynamically); the plugin's references to them are
//! resolved when QEMU loads the plugin.

use std::ffi::{c_uint, c_void};
use std::marker::{PhantomData, PhantomPinned};

/// The plugin API version this plugin is written against
/// (`QEMU_PLUGIN_VERSION` of QEMU 7.2).
pub const QEMU_PLUGIN_VERSION: i32 = 1;

/// `qemu_plugin_id_t`: the plugin's opaque id.
pub type QemuPluginId = u64;

/// Declares an opaque C struct that is only ever handled by pointer.
macro_rules! opaque {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Debug)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    };
}

opaque!(
    /// `qemu_info_t`: what QEMU tells a plugin at install (not read here).
    QemuInfo
);
opaque!(
    /// `struct qemu_plugin_tb`: a block being translated.
    QemuPluginTb
);
opaque!(
    /// `struct qemu_plugin_insn`: an instruction of a block being translated.
    QemuPluginInsn
);

/// `enum qemu_plugin_op` (a C enum: passed as an `unsigned int`).
pub type QemuPluginOp = c_uint;

/// `QEMU_PLUGIN_INLINE_ADD_U64`: add an immediate to a `uint64_t` in memory.
pub const QEMU_PLUGIN_INLINE_ADD_U64: QemuPluginOp = 0;

/// `qemu_plugin_vcpu_tb_trans_cb_t`.
pub type TbTransCb = extern "C" fn(id: QemuPluginId, tb: *mut QemuPluginTb);

unsafe extern "C" {
    /// Calls `cb` every time a block is translated.
    pub fn qemu_plugin_register_vcpu_tb_trans_cb(id: QemuPluginId, cb: TbTransCb);

    /// The number of instructions in `tb`.
    pub fn qemu_plugin_tb_n_insns(tb: *const QemuPluginTb) -> usize;

    /// The guest virtual address of `tb`'s first instruction.
    pub fn qemu_plugin_tb_vaddr(tb: *const QemuPluginTb) -> u64;

    /// `tb`'s instruction number `idx` (null when `idx` is out of range),
    /// valid for the duration of the translation callback.
    pub fn qemu_plugin_tb_get_insn(tb: *const QemuPluginTb, idx: usize) -> *mut QemuPluginInsn;

    /// The guest virtual address of `insn`.
    pub fn qemu_plugin_insn_vaddr(insn: *const QemuPluginInsn) -> u64;

    /// Makes every execution of `insn` apply `op` with `imm` at `ptr`
    /// (for `QEMU_PLUGIN_INLINE_ADD_U64`: `*(uint64_t *)ptr += imm`, not
    /// atomically).
    pub fn qemu_plugin_register_vcpu_insn_exec_inline(
        insn: *mut QemuPluginInsn,
        op: QemuPluginOp,
        ptr: *mut c_void,
        imm: u64,
    );
}
