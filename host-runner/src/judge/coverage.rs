//! A judged guest's coverage: its counters, read from the shared RAM
//! mapping at memory checks and when taken, and the model's coverage.
//!
//! Reading costs one copy of the counters (a few KiB) and needs no pause:
//! between requests the guest runs only its serial loop, whose own edges
//! are the only ones that can move during the read. Without shared RAM (a
//! `pmemsave` judge) or with an uninstrumented kernel there are no guest
//! edges, only the model's coverage.

use oracle::Model;
use protocol::Hello;

use crate::coverage::{CounterReader, Coverage};
use crate::session::Vm;

/// The counters of one booted guest, if they can be read.
#[derive(Debug)]
pub(crate) struct CoverageProbe {
    counters: Option<CounterReader>,
}

impl CoverageProbe {
    /// The probe of a guest just booted with layout `hello`.
    pub(crate) fn new(hello: &Hello, vm: &Vm) -> CoverageProbe {
        let counters = match (hello.coverage, vm.shared_ram()) {
            (Some(info), Some(ram)) => CounterReader::new(info, ram)
                .map_err(|e| tracing::warn!("guest coverage off: {e}"))
                .ok(),
            _ => None,
        };
        CoverageProbe { counters }
    }

    /// Reads the counters into the pending hits (at a memory check, so
    /// that busy edges do not wrap unseen before the sequence ends).
    pub(crate) fn poll(&mut self, vm: &Vm) {
        if let (Some(c), Some(ram)) = (self.counters.as_mut(), vm.shared_ram()) {
            if let Err(e) = c.poll(ram) {
                tracing::warn!("guest coverage off: {e}");
                self.counters = None;
            }
        }
    }

    /// Everything reached since the last take: the guest's edges and the
    /// model's transitions and events (taken from `model`).
    pub(crate) fn take(&mut self, vm: &Vm, model: &mut Model) -> Coverage {
        let edges = match (self.counters.as_mut(), vm.shared_ram()) {
            (Some(c), Some(ram)) => match c.take(ram) {
                Ok(hits) => Some(hits),
                Err(e) => {
                    tracing::warn!("guest coverage off: {e}");
                    self.counters = None;
                    None
                }
            },
            _ => None,
        };
        Coverage {
            edges,
            model: model.take_coverage(),
        }
    }
}
