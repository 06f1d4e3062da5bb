//! The host's judgement of the guest VMM.
//!
//! - [`model`]: an independent model of the VMM, written from
//!   `protocol::semantics` alone (it shares no code with `guest/core`). The
//!   runner calls [`Model::with_files`] with the guest's `Hello` and the
//!   [`FileSpec`]s it built the file blob from ([`Model::new`]: no file
//!   contents known, a touch of a file page is then unspecified), then for every
//!   request [`Model::apply`]`(index, &request, &answer)`: the model predicts
//!   the answer, judges the guest's, and advances. A wrong answer is a
//!   [`Divergence`] whose `Display` is one line: operation index, request,
//!   expected, got, reason. [`Model::predict`] shows what is expected
//!   without advancing. Protocol v2: an answer's reclaim events are
//!   checked legal one by one and applied first, then the plain answer is
//!   judged; what depends on the kernel heap's unpredicted frames (free
//!   frames, where a touch runs out, `Stats`' guest-own counters, `Kmalloc`
//!   placement) is judged within bounds ([`StatsBounds`], [`TouchOutcomes`]).
//!   Shared memory (protocol v6): the pages mapping one shared frame are a
//!   group in the model (`ModelState::Shared`), with one data image and a
//!   mapping count that `Query` must answer.
//! - [`checker`]: [`check`]`(&memory, &hello, &model.expectations())` reads
//!   guest physical memory through [`GuestMemory`], walks the page tables
//!   (space 0's from `Hello::page_table_root`, every other live space's
//!   user half from the root the model learned) and the frame bitmap
//!   itself (decoders written from `protocol::formats`) and reports every
//!   broken invariant ([`Violation`], numbered 1–6 as in issue 4; shared
//!   frames under formats.rs' sharing rule: named only by present shared
//!   entries, all of one W bit, as many as the frame-info record counts), with
//!   the [`Walk`]'s translations for the QEMU comparisons (invariants 7
//!   and 8; [`Walk::of_space`] gives the current space's view). Pages and
//!   tables of a space other than 0 are named by keys
//!   ([`model::keys`]: the space in bits 48–63 of the address). [`address_path`] reads the entries on the way
//!   to one address (the one single-address walk: [`decode_walk`] renders
//!   it, and the runner's smoke test reads its first step).
//! - [`coverage`]: model coverage, (request × page state × answer)
//!   transitions and invariant-relevant events, which the model counts as it
//!   judges ([`Model::coverage`]).

#![forbid(unsafe_code)]

pub mod bench;
pub mod checker;
pub mod coverage;
pub mod model;
pub mod synth;

pub use checker::{
    address_path, check, decode_walk, decode_walk_from, nonzero_words, read_space_tables,
    region_leaves, region_leaves_from, walk_levels, walk_levels_from, CheckReport, Checker,
    GuestMemory, ImageMemory, MemoryError, Scope, Translation, Violation, Walk, WalkLevel,
    DATA_THREAD_PAGES,
};
pub use coverage::{ModelCoverage, ModelNovelty};
pub use model::{
    file_page, Changes, Divergence, Expectations, Expected, FileSpec, FilesError, Model,
    ModelState, Prediction, StatsBounds, TouchOutcomes,
};
