//! Traces, seeded generation of request sequences, and minimization: the
//! parts of the fuzzer that need no VM.
//!
//! - [`format`]: the trace file (JSON Lines): [`Trace`], [`parse`], [`write`];
//!   its operations ([`Op`]) and expected answers ([`Expect`]).
//! - [`recorder`]: write-ahead recording and atomic saving of traces.
//! - [`generate`]: seeded, reproducible generation ([`Generator`]), sharding.
//! - [`executor`], [`failure`]: the VM behind a trait, and what a failure is.
//! - [`minimize`]: delta debugging over operations, then arguments.
//! - [`replay`]: walking a trace against a session, checking expectations,
//!   and the step table.
#![forbid(unsafe_code)]

mod answer;
mod error;
pub mod executor;
pub mod expect;
pub mod failure;
pub mod format;
pub mod generate;
pub mod minimize;
pub mod op;
mod op_json;
pub mod recorder;
pub mod replay;
pub mod shard;
pub mod shrink;
mod strategy;
mod value;
pub mod weights;

pub use error::{FieldError, ParseError, TraceError};
pub use executor::{Executor, Outcome};
pub use expect::Expect;
pub use failure::{Failure, FailureKind, Signature};
pub use format::{parse, parse_str, write, Entry, Trace, TraceHeader};
pub use generate::{generate, Generator};
pub use minimize::{minimize, Budget, Minimized};
pub use op::{Op, OpKind};
pub use recorder::{save_atomically, TraceWriter};
pub use replay::{replay, Judge, ReplayReport, Session};
pub use shard::Shard;
pub use weights::{GenConfig, Weights};
