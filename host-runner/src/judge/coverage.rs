//! A judged guest's coverage: its counters, read from the shared RAM
//! mapping (or, for a kernel without counters under TCG, QEMU's block
//! counts from their own mapping) at memory checks and when taken, and the
//! model's coverage.
//!
//! Reading costs one copy of the counters (a few KiB) and needs no pause:
//! between requests the guest runs only its serial loop, whose own edges
//! are the only ones that can move during the read. Without shared RAM (a
//! `pmemsave` judge) or with an uninstrumented kernel there are no guest
//! edges, only the model's coverage.

use oracle::Model;
use protocol::Hello;

use crate::coverage::{BlockReader, CounterReader, Coverage};
use crate::session::Vm;

/// Where one booted guest's edge counts come from.
#[derive(Debug)]
enum Counts {
    /// Its own SanitizerCoverage counters, in its RAM.
    Guest(CounterReader),
    /// QEMU's plugin's counts of its blocks.
    Blocks(BlockReader),
}

/// The counters of one booted guest, if they can be read.
#[derive(Debug)]
pub(crate) struct CoverageProbe {
    counters: Option<Counts>,
}

impl CoverageProbe {
    /// The probe of a guest just booted with layout `hello`.
    pub(crate) fn new(hello: &Hello, vm: &Vm) -> CoverageProbe {
        let counters = match (hello.coverage, vm.shared_ram(), vm.block_counts()) {
            (Some(info), Some(ram), _) => CounterReader::new(info, ram)
                .map(Counts::Guest)
                .map_err(|e| tracing::warn!("guest coverage off: {e}"))
                .ok(),
            (None, _, Some((counts, table))) => {
                Some(Counts::Blocks(BlockReader::new(counts, table)))
            }
            _ => None,
        };
        CoverageProbe { counters }
    }

    /// Reads the counters into the pending hits (at a memory check, so
    /// that busy edges do not wrap unseen before the sequence ends).
    pub(crate) fn poll(&mut self, vm: &Vm) {
        match (self.counters.as_mut(), vm.shared_ram()) {
            (Some(Counts::Guest(c)), Some(ram)) => {
                if let Err(e) = c.poll(ram) {
                    tracing::warn!("guest coverage off: {e}");
                    self.counters = None;
                }
            }
            (Some(Counts::Blocks(b)), _) => b.poll(),
            _ => {}
        }
    }

    /// Everything reached since the last take: the guest's edges and the
    /// model's transitions and events (taken from `model`).
    pub(crate) fn take(&mut self, vm: &Vm, model: &mut Model) -> Coverage {
        let edges = match (self.counters.as_mut(), vm.shared_ram()) {
            (Some(Counts::Guest(c)), Some(ram)) => match c.take(ram) {
                Ok(hits) => Some(hits),
                Err(e) => {
                    tracing::warn!("guest coverage off: {e}");
                    self.counters = None;
                    None
                }
            },
            (Some(Counts::Blocks(b)), _) => Some(b.take()),
            _ => None,
        };
        Coverage {
            edges,
            model: model.take_coverage(),
        }
    }
}
