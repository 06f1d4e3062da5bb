//! Traces, seeded generation of request sequences, and minimization: the
//! parts of the fuzzer that need no VM.
//!
//! - [`mod@format`]: the trace file (JSON Lines): [`Trace`], [`parse()`],
//!   [`write()`]; its operations ([`Op`]) and expected answers ([`Expect`]).
//!   The format is documented in `testcases/README.md`.
//! - [`files`]: the files a guest boots with ([`FileSpec`],
//!   [`files_of_pages`]).
//! - [`recorder`]: write-ahead recording ([`TraceWriter`]) and atomic saving
//!   ([`save_atomically`]) of traces.
//! - [`mod@generate`]: seeded, reproducible generation ([`Generator`],
//!   [`generate()`]); [`shard`]: `--shard i/n`.
//! - [`executor`], [`failure`]: the VM behind a trait ([`Executor`]), and
//!   what a failure and its [`Signature`] are.
//! - [`mod@minimize`]: delta debugging over operations, then arguments
//!   ([`minimize()`]).
//! - [`mod@replay`]: running a trace through a [`Target`] (batches,
//!   expectations, the check cadence), and the step table.
#![forbid(unsafe_code)]

mod de;
pub mod dir;
mod error;
pub mod executor;
pub mod expect;
pub mod failure;
pub mod failure_class;
mod fields;
pub mod files;
pub mod format;
pub mod generate;
pub mod limits;
mod line;
pub mod minimize;
pub mod mutate;
mod names;
mod numbers;
pub mod op;
pub mod recorder;
pub mod refs;
pub mod replay;
pub mod reproduce;
pub mod shard;
pub mod shrink;
mod strategy;
pub mod weights;

pub use dir::trace_files;
pub use error::{FieldError, ParseError, TraceError};
pub use executor::{Executor, FnExecutor, Outcome};
pub use expect::Expect;
pub use failure::{Failure, FailureKind, Signature};
pub use failure_class::{answer_class, expect_class, FailureClass};
pub use files::{files_of_pages, FileSpec, DEFAULT_FILE_PAGES};
pub use format::{parse, parse_str, write, Entry, Rate, Trace, TraceHeader};
pub use generate::{generate, Generator};
pub use minimize::{minimize, Budget, Minimized};
pub use mutate::{mutate, Mutation};
pub use op::{Op, OpKind};
pub use recorder::{save_atomically, TraceWriter};
pub use refs::{Answers, Ref};
pub use replay::{run, run_outcome, Cadence, Depth, ReplayReport, RunOptions, Target};
pub use reproduce::{rerun, Reproduction};
pub use shard::Shard;
pub use weights::{GenConfig, Weights};
