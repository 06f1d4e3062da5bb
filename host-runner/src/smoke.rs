//! `smoke`: boot, handshake, a ping batch, a look at guest memory through
//! QMP, and a clean shutdown.

use std::fmt;
use std::time::Duration;

use oracle::ImageMemory;
use protocol::{Request, PROTOCOL_VERSION};

use crate::accel::{expect_pong, ping_batch, Accel};
use crate::error::{Error, Result};
use crate::qmp::QmpError;
use crate::session::{Vm, VmConfig};

/// Pings in the smoke batch.
pub const SMOKE_PINGS: u64 = 100;

/// What `smoke` found.
#[derive(Clone, Debug)]
pub struct SmokeReport {
    pub accel: Accel,
    pub protocol_version: u32,
    pub ram_mib: u32,
    pub boot: Duration,
    pub pings: u64,
    pub ping_time: Duration,
    pub entry: DirectMapEntry,
}

impl fmt::Display for SmokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "smoke: ok — {}, guest protocol {}, {} MiB, boot {} ms, {} pings in {:.1} ms, \
             direct-map PML4[{}] present (pdpt at {:#x})",
            self.accel,
            self.protocol_version,
            self.ram_mib,
            self.boot.as_millis(),
            self.pings,
            self.ping_time.as_secs_f64() * 1e3,
            self.entry.slot,
            self.entry.pdpt
        )
    }
}

/// The PML4 entry that maps the direct map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectMapEntry {
    pub slot: usize,
    pub raw: u64,
    pub pdpt: u64,
}

/// Reads, in a dump of guest RAM from physical 0 (`ram.base` 0), the PML4
/// entry at `root` for the slot of `direct_map_offset` (the first step of
/// the oracle's walk of that address), and checks it is present and points
/// inside RAM.
pub fn check_direct_map_entry(
    ram: &ImageMemory,
    root: u64,
    direct_map_offset: u64,
) -> std::result::Result<DirectMapEntry, String> {
    debug_assert_eq!(ram.base, 0, "a dump of RAM from physical 0");
    let ram_len = ram.base + ram.bytes.len() as u64;
    if root % 4096 != 0 || root.saturating_add(4096) > ram_len {
        return Err(format!(
            "page-table root {root:#x} is not a page inside the {ram_len:#x} bytes of RAM"
        ));
    }
    let pml4 = oracle::address_path(ram, root, direct_map_offset)
        .next()
        .expect("a walk starts with the root's entry");
    let slot = pml4.index as usize;
    let at = root + slot as u64 * 8;
    let raw = pml4
        .raw
        .clone()
        .map_err(|e| format!("PML4[{slot}] at {at:#x} is unreadable: {e}"))?;
    let Some(pdpt) = pml4.leads_to() else {
        return Err(format!(
            "PML4[{slot}] at {at:#x} is not present (raw {raw:#018x}) though the guest reports its direct map at {direct_map_offset:#x}"
        ));
    };
    if pdpt.saturating_add(4096) > ram_len {
        return Err(format!(
            "PML4[{slot}] = {raw:#018x} points at {pdpt:#x}, outside the {ram_len:#x} bytes of RAM"
        ));
    }
    Ok(DirectMapEntry { slot, raw, pdpt })
}

/// Runs the smoke test on a fresh guest.
pub async fn run(config: &VmConfig) -> Result<SmokeReport> {
    let mut vm = Vm::boot(config).await?;
    let boot = vm.boot_time();
    let hello = vm.hello().await?;
    tracing::debug!("hello: {hello:?}");

    let ping_time = ping_batch(&mut vm, SMOKE_PINGS).await?;

    vm.stop().await?;
    let ram = ImageMemory {
        base: 0,
        bytes: vm.dump_ram().await?,
    };
    let entry = check_direct_map_entry(&ram, hello.page_table_root, hello.direct_map_offset)
        .map_err(Error::MemoryCheck)?;
    drop(ram);
    vm.cont().await?;
    let status = vm.query_status().await?;
    if !status.running {
        return Err(QmpError {
            command: "cont",
            message: format!("guest not running after cont: {:?}", status.status),
        }
        .into());
    }
    // The guest still answers after the pause.
    expect_pong(vm.call(Request::Ping { nonce: 7 }).await?, 7)?;
    vm.shutdown().await?;
    Ok(SmokeReport {
        accel: config.accel,
        protocol_version: PROTOCOL_VERSION,
        ram_mib: config.ram_mib,
        boot,
        pings: SMOKE_PINGS,
        ping_time,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram_with(root: u64, slot: usize, entry: u64) -> ImageMemory {
        let mut ram = zeros(1 << 20);
        let at = root as usize + slot * 8;
        ram.bytes[at..at + 8].copy_from_slice(&entry.to_le_bytes());
        ram
    }

    fn zeros(len: usize) -> ImageMemory {
        ImageMemory {
            base: 0,
            bytes: vec![0; len],
        }
    }

    const OFFSET: u64 = 0xffff_8000_0000_0000;

    #[test]
    fn present_entry_is_found() {
        let ram = ram_with(0x1000, 256, 0x3000 | 0x3 | (1 << 63));
        let e = check_direct_map_entry(&ram, 0x1000, OFFSET).unwrap();
        assert_eq!(e.slot, 256);
        assert_eq!(e.pdpt, 0x3000);
    }

    #[test]
    fn absent_entry_fails() {
        let ram = ram_with(0x1000, 256, 0x3000);
        let err = check_direct_map_entry(&ram, 0x1000, OFFSET).unwrap_err();
        assert!(err.contains("not present"), "{err}");
    }

    #[test]
    fn pdpt_outside_ram_fails() {
        let ram = ram_with(0x1000, 256, 0x4000_0000 | 1);
        let err = check_direct_map_entry(&ram, 0x1000, OFFSET).unwrap_err();
        assert!(err.contains("outside"), "{err}");
    }

    #[test]
    fn bad_root_fails() {
        let ram = zeros(0x2000);
        assert!(check_direct_map_entry(&ram, 0x1001, OFFSET).is_err());
        assert!(check_direct_map_entry(&ram, 0x2000, OFFSET).is_err());
    }

    #[test]
    fn summary_line() {
        let r = SmokeReport {
            accel: Accel::Tcg,
            protocol_version: 1,
            ram_mib: 128,
            boot: Duration::from_millis(31),
            pings: 100,
            ping_time: Duration::from_micros(12_300),
            entry: DirectMapEntry {
                slot: 256,
                raw: 0x3003,
                pdpt: 0x3000,
            },
        };
        assert_eq!(
            r.to_string(),
            "smoke: ok — tcg, guest protocol 1, 128 MiB, boot 31 ms, 100 pings in 12.3 ms, \
             direct-map PML4[256] present (pdpt at 0x3000)"
        );
    }
}
