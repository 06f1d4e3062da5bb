//! QEMU's command line, in one place: every option the runner passes, typed.
//!
//! A guest is a microvm with no devices but one serial port (a unix socket
//! the host listens on) and `isa-debug-exit`, a QMP socket, no display, no
//! network and no reboot; optionally guest RAM backed by a file the host
//! maps ([`crate::ram`]), the memory-mapped files' blob as `-initrd`
//! ([`crate::files`]), a gdb stub on a unix socket (`replay --gdb`), and
//! a second, human monitor (HMP) on a unix socket (`profile`'s sampler).
//! Paths are quoted as QEMU's option syntax wants (commas doubled).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// An accelerator QEMU can run the guest with.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// The name QEMU's `-accel` takes.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qemu_name())
    }
}

/// Guest RAM backed by a file QEMU shares with the host
/// (`memory-backend-file`, `share=on`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RamFile {
    /// Where QEMU opens the file.
    pub path: PathBuf,
    /// Its size in bytes: all of guest RAM.
    pub size: u64,
}

/// Everything QEMU's command line depends on.
#[derive(Clone, Debug)]
pub struct QemuArgs {
    /// The guest kernel ELF (booted through its PVH note).
    pub kernel: PathBuf,
    /// Guest RAM in MiB.
    pub ram_mib: u32,
    pub accel: Accel,
    /// Unix socket the host listens on; QEMU connects to it as a client.
    pub serial_socket: PathBuf,
    /// Unix socket QEMU listens on for QMP.
    pub qmp_socket: PathBuf,
    /// Guest RAM in a file the host maps too, if so.
    pub ram_file: Option<RamFile>,
    /// The memory-mapped files' blob, passed as `-initrd`, if any.
    pub initrd: Option<PathBuf>,
    /// A gdb stub listening on this unix socket, if any.
    pub gdb_socket: Option<PathBuf>,
    /// A human monitor (HMP) listening on this unix socket, if any.
    pub monitor_socket: Option<PathBuf>,
    /// The block-counting plugin and its files, if it counts the guest's
    /// blocks ([`crate::coverage::plugin`]).
    pub plugin: Option<crate::coverage::PluginFiles>,
}

/// The vCPU: `qemu64` (QEMU's default) plus `pdpe1gb`.
const CPU_MODEL: &str = "qemu64,+pdpe1gb";

/// The id of the shared RAM backend.
const RAM_BACKEND_ID: &str = "vmmfuzz-ram";

impl QemuArgs {
    /// QEMU's arguments, in the order: machine, serial, QMP, kernel, then
    /// shared RAM, initrd, gdb stub, human monitor and block-counting
    /// plugin when asked for.
    pub fn argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        let opt = |v: &mut Vec<OsString>, name: &str, value: OsString| {
            v.extend([name.into(), value]);
        };
        opt(&mut v, "-M", "microvm".into());
        opt(&mut v, "-accel", self.accel.qemu_name().into());
        // QEMU's default CPU model with 1 GiB pages, which the guest's
        // direct map uses for each GiB of RAM (without them it falls back
        // to 2 MiB pages; a KVM host without them gets a warning from
        // QEMU and the same fallback).
        opt(&mut v, "-cpu", CPU_MODEL.into());
        opt(&mut v, "-m", format!("{}M", self.ram_mib).into());
        v.extend(["-nodefaults", "-no-user-config", "-no-reboot"].map(OsString::from));
        opt(&mut v, "-display", "none".into());
        opt(
            &mut v,
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
        );
        opt(&mut v, "-serial", "chardev:s0".into());
        opt(
            &mut v,
            "-chardev",
            with_path("socket,id=s0,path=", &self.serial_socket, ""),
        );
        opt(
            &mut v,
            "-qmp",
            with_path("unix:", &self.qmp_socket, ",server=on,wait=off"),
        );
        opt(&mut v, "-kernel", self.kernel.clone().into_os_string());
        if let Some(ram) = &self.ram_file {
            let object = format!(
                "memory-backend-file,id={RAM_BACKEND_ID},share=on,size={},mem-path=",
                ram.size
            );
            opt(&mut v, "-object", with_path(&object, &ram.path, ""));
            opt(
                &mut v,
                "-machine",
                format!("memory-backend={RAM_BACKEND_ID}").into(),
            );
        }
        if let Some(initrd) = &self.initrd {
            opt(&mut v, "-initrd", initrd.clone().into_os_string());
        }
        if let Some(socket) = &self.gdb_socket {
            opt(
                &mut v,
                "-gdb",
                with_path("unix:", socket, ",server=on,wait=off"),
            );
        }
        if let Some(socket) = &self.monitor_socket {
            opt(
                &mut v,
                "-monitor",
                with_path("unix:", socket, ",server=on,wait=off"),
            );
        }
        if let Some(p) = &self.plugin {
            let mut arg = with_path("file=", &p.plugin, ",table=");
            arg.push(with_path("", &p.table, ",counts="));
            arg.push(with_path("", &p.counts, ""));
            opt(&mut v, "-plugin", arg);
        }
        v
    }
}

/// `prefix ‖ path ‖ suffix`, with the path's commas doubled as QEMU's option
/// syntax wants.
pub(crate) fn with_path(prefix: &str, path: &Path, suffix: &str) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut bytes = prefix.as_bytes().to_vec();
    for &b in path.as_os_str().as_bytes() {
        bytes.push(b);
        if b == b',' {
            bytes.push(b',');
        }
    }
    bytes.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare() -> QemuArgs {
        QemuArgs {
            kernel: "/k/vmmfuzz-kernel".into(),
            ram_mib: 128,
            accel: Accel::Tcg,
            serial_socket: "/tmp/d,x/serial.sock".into(),
            qmp_socket: "/tmp/d/qmp.sock".into(),
            ram_file: None,
            initrd: None,
            gdb_socket: None,
            monitor_socket: None,
            plugin: None,
        }
    }

    fn line(args: &QemuArgs) -> String {
        let argv: Vec<String> = args
            .argv()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        argv.join(" ")
    }

    /// The line every guest booted with before the builder: the serial
    /// transport's and the ring's alike (the transport is chosen after the
    /// handshake, not on QEMU's command line).
    const BARE: &str = "-M microvm -accel tcg -cpu qemu64,+pdpe1gb -m 128M -nodefaults -no-user-config -no-reboot \
         -display none -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
         -serial chardev:s0 -chardev socket,id=s0,path=/tmp/d,,x/serial.sock \
         -qmp unix:/tmp/d/qmp.sock,server=on,wait=off -kernel /k/vmmfuzz-kernel";

    /// `bare()` with its RAM in the file `/proc/42/fd/7`, of `size` bytes.
    fn with_ram_file(size: u64) -> QemuArgs {
        QemuArgs {
            ram_file: Some(RamFile {
                path: "/proc/42/fd/7".into(),
                size,
            }),
            ..bare()
        }
    }

    #[test]
    fn a_bare_microvm() {
        let line = line(&bare());
        assert_eq!(line, BARE);
        assert!(!line.contains("-net") && !line.contains("tcp"));
    }

    #[test]
    fn kvm() {
        let mut a = bare();
        a.accel = Accel::Kvm;
        assert_eq!(line(&a), BARE.replace("-accel tcg", "-accel kvm"));
    }

    #[test]
    fn shared_ram_as_ram_rs_built_it() {
        let a = with_ram_file(128 << 20);
        assert_eq!(
            line(&a),
            format!(
                "{BARE} -object memory-backend-file,id=vmmfuzz-ram,share=on,size=134217728,\
                 mem-path=/proc/42/fd/7 -machine memory-backend=vmmfuzz-ram"
            )
        );
    }

    #[test]
    fn files_and_gdb_as_session_and_replay_built_them() {
        let mut a = with_ram_file(1 << 20);
        a.initrd = Some("/tmp/d/files.img".into());
        a.gdb_socket = Some("/tmp/g/gdb.sock".into());
        assert_eq!(
            line(&a),
            format!(
                "{BARE} -object memory-backend-file,id=vmmfuzz-ram,share=on,size=1048576,\
                 mem-path=/proc/42/fd/7 -machine memory-backend=vmmfuzz-ram \
                 -initrd /tmp/d/files.img -gdb unix:/tmp/g/gdb.sock,server=on,wait=off"
            )
        );
    }

    #[test]
    fn a_human_monitor_as_profile_asks() {
        let mut a = bare();
        a.monitor_socket = Some("/tmp/p,q/monitor.sock".into());
        assert_eq!(
            line(&a),
            format!("{BARE} -monitor unix:/tmp/p,,q/monitor.sock,server=on,wait=off")
        );
    }

    #[test]
    fn the_block_counter_with_its_files_commas_doubled() {
        let mut a = bare();
        a.plugin = Some(crate::coverage::PluginFiles {
            plugin: "/t/qemu-plugin/release/libvmmfuzz_qemu_plugin.so".into(),
            table: "/tmp/d,x/blocks.table".into(),
            counts: "/tmp/d,x/blocks.counts".into(),
        });
        assert_eq!(
            line(&a),
            format!(
                "{BARE} -plugin file=/t/qemu-plugin/release/libvmmfuzz_qemu_plugin.so,\
                 table=/tmp/d,,x/blocks.table,counts=/tmp/d,,x/blocks.counts"
            )
        );
    }

    #[test]
    fn files_without_shared_ram() {
        let mut a = bare();
        a.initrd = Some("/tmp/d/files.img".into());
        assert_eq!(line(&a), format!("{BARE} -initrd /tmp/d/files.img"));
    }

    #[test]
    fn commas_in_paths_are_doubled() {
        let mut a = bare();
        a.gdb_socket = Some("/tmp/a,b/gdb.sock".into());
        assert!(line(&a).ends_with("-gdb unix:/tmp/a,,b/gdb.sock,server=on,wait=off"));
    }
}
