//! The host's judgement of the guest VMM.
//!
//! - [`model`]: an independent model of the VMM, written from
//!   `protocol::semantics`; it predicts and judges every answer
//!   ([`Model::apply`]) and says what memory must hold ([`Expectations`]).
//! - [`checker`]: reads guest physical memory ([`GuestMemory`]), walks the
//!   page tables and the frame bitmap itself (from `protocol::formats`) and
//!   reports every broken invariant ([`check`]).

pub mod checker;
pub mod model;

pub use checker::{
    check, decode_walk, CheckReport, GuestMemory, ImageMemory, MemoryError, Violation, Walk,
};
pub use model::{Divergence, Expectations, Model, ModelState, Prediction};
