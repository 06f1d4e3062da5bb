//! The classes of the failures a judged guest finds, built from the typed
//! values (violations, answers, runner errors), never from their text.

use oracle::checker::Violation;
use protocol::{Request, Response};
use trace::{answer_class, FailureClass};

use super::inspect::MemoryCheck;
use super::qemu_view::QemuMismatch;
use crate::error::Error;
use crate::qemu::{LaunchError, QemuExit};
use crate::rpc::RpcError;

/// The invariant class of a memory check: every broken invariant's
/// number, and the frames, pages and swap slots the violations name.
pub fn invariant_class(check: &MemoryCheck) -> FailureClass {
    let mut numbers = Vec::new();
    let (mut frames, mut pages, mut slots) = (Vec::new(), Vec::new(), Vec::new());
    for v in &check.report.violations {
        numbers.push(v.invariant());
        objects(v, &mut frames, &mut pages, &mut slots);
    }
    for m in &check.qemu {
        numbers.push(7);
        match *m {
            QemuMismatch::MissingInQemu { virt, frame } => {
                pages.push(virt);
                frames.push(frame);
            }
            QemuMismatch::OnlyInQemu { virt, .. }
            | QemuMismatch::Differs { virt, .. }
            | QemuMismatch::LargePage { virt, .. } => pages.push(virt),
            QemuMismatch::Cr3 { .. } | QemuMismatch::NoCr3 { .. } => {}
        }
    }
    numbers.sort_unstable();
    numbers.dedup();
    // The objects in the order the violations name them (the first page is
    // the one `replay` explains), each once.
    for v in [&mut frames, &mut pages, &mut slots] {
        let mut seen = std::collections::HashSet::new();
        v.retain(|x| seen.insert(*x));
    }
    FailureClass::Invariant {
        numbers,
        frames,
        pages,
        slots,
    }
}

/// The objects one violation names.
fn objects(v: &Violation, frames: &mut Vec<u64>, pages: &mut Vec<u64>, slots: &mut Vec<u64>) {
    use Violation as V;
    match v {
        V::FrameFree { path, frame, .. }
        | V::FrameBeyondRam { path, frame, .. }
        | V::FrameShared { path, frame, .. }
        | V::FrameInfoMismatch { path, frame, .. }
        | V::DataMismatch { path, frame, .. } => {
            frames.push(*frame);
            pages.push(path.virt);
        }
        V::Leak {
            leaked_sample,
            lost_sample,
            ..
        } => {
            frames.extend(leaked_sample);
            frames.extend(lost_sample);
        }
        V::EmptyTable { path, table }
        | V::PresentCount { path, table, .. }
        | V::NoEvictableMark { path, table, .. } => {
            frames.push(*table);
            pages.push(path.virt);
        }
        V::BadEntry { path, .. } | V::HeapEntry { path, .. } | V::StateMismatch { path, .. } => {
            pages.push(path.virt)
        }
        V::MissingTable { virt, .. } => pages.push(*virt),
        V::FrameInfo { frame, .. } | V::NotReserved { frame, .. } => frames.push(*frame),
        V::FileImage { phys, .. } => frames.push(phys & !0xfff),
        V::SwapData { path, slot, .. } => {
            pages.push(path.virt);
            slots.push(*slot);
        }
        V::SpaceLeak { sample, .. } => frames.extend(sample),
        V::SharedMixed {
            path,
            frame,
            shared_at,
            ..
        } => {
            frames.push(*frame);
            pages.push(path.virt);
            pages.push(*shared_at);
        }
        V::SharedInKernelHalf { path } => pages.push(path.virt),
        V::SharedCount { frame, entries, .. }
        | V::SharedRecordMissing { frame, entries, .. }
        | V::SharedFrameFree { frame, entries, .. } => {
            frames.push(*frame);
            pages.extend(entries);
        }
        V::SharedWritability {
            frame,
            writable,
            read_only,
        } => {
            frames.push(*frame);
            pages.extend(writable);
            pages.extend(read_only);
        }
        V::SharedRecordLeak { frame, .. } | V::SharedModel { frame, .. } => frames.push(*frame),
        V::KernelHalf { root, .. } => frames.push(*root),
        V::Unreadable { .. } | V::BadBitmap { .. } | V::SwapStore { .. } => {}
    }
}

/// The kind of a request, as a trace names its operation (`map`,
/// `alloc_frames`), or its variant's name for requests traces do not hold.
pub fn request_kind(r: &Request) -> String {
    match trace::Op::from_request(r) {
        Some(op) => op.kind().name().to_string(),
        None => {
            let debug = format!("{r:?}");
            debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_string()
        }
    }
}

/// The class of a divergence: the request's kind, the answer the model
/// predicted (`None`: it allows several, judged by rule), the answer.
pub fn answer(request: &Request, predicted: Option<&Response>, got: &Response) -> FailureClass {
    FailureClass::Answer {
        op: request_kind(request),
        expected: predicted.map_or_else(|| "a legal answer".to_string(), answer_class),
        actual: answer_class(got),
    }
}

/// How QEMU's end reads in a class: without its numbers' noise.
fn died(exit: QemuExit, what: &str) -> FailureClass {
    let how = match exit {
        QemuExit::TripleFault => "triple fault".to_string(),
        QemuExit::Signal(s) => format!("QEMU crashed ({})", super::signal_name(s)),
        QemuExit::Running => format!("{what}, QEMU still running"),
        other => format!("{what} ({other})"),
    };
    FailureClass::Died { how }
}

/// The class of a runner error, by its variant.
pub fn of_error(err: &Error) -> FailureClass {
    match err {
        Error::Rpc(e) => of_rpc_error(e),
        Error::Launch(LaunchError::ExitedBeforeReady { exit, .. }) => {
            died(*exit, "QEMU ended before Ready")
        }
        Error::Launch(LaunchError::ReadyTimeout { .. }) => FailureClass::Hang {
            request: "Ready".into(),
        },
        other => FailureClass::Environment {
            what: environment_what(other),
        },
    }
}

/// The class of a guest's error, by its variant.
fn of_rpc_error(err: &RpcError) -> FailureClass {
    match err {
        RpcError::GuestPanic { report, .. } => FailureClass::Panic {
            file: report.file.to_string(),
            line: report.line,
            column: report.column,
        },
        RpcError::GuestException { report, .. } => FailureClass::Exception {
            vector: report.vector,
        },
        RpcError::GuestDied { exit, .. } => died(*exit, "the serial line closed"),
        RpcError::UnexpectedExit { exit, .. } => died(*exit, "QEMU ended"),
        RpcError::Timeout { request, .. } => FailureClass::Hang {
            request: request
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_string(),
        },
        RpcError::UnexpectedResponse { request, response } => FailureClass::Answer {
            op: request
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_string(),
            expected: "an answer of its kind".into(),
            actual: answer_class(response),
        },
        RpcError::GuestFrame(_) => FailureClass::Died {
            how: "an undecodable frame".into(),
        },
        RpcError::Ring(_) => FailureClass::Died {
            how: "the shared-memory ring broken".into(),
        },
        RpcError::VersionMismatch { .. } => FailureClass::Environment {
            what: "protocol version mismatch".into(),
        },
        RpcError::Encode(_) => FailureClass::Environment {
            what: "a request too large to encode".into(),
        },
    }
}

/// What failed in the environment, by the error's variant (and signal).
fn environment_what(err: &Error) -> String {
    match err {
        Error::Launch(LaunchError::ExitedBeforeReady { exit, .. }) => match exit {
            QemuExit::Signal(s) => format!("QEMU killed by {}", super::signal_name(*s)),
            other => format!("QEMU failed ({other})"),
        },
        Error::Launch(LaunchError::QemuNotFound { .. }) => "QEMU not found".into(),
        Error::Launch(LaunchError::QemuSpawn { .. }) => "QEMU did not start".into(),
        Error::Launch(LaunchError::KernelMissing { .. }) => "guest kernel missing".into(),
        Error::Launch(LaunchError::TempDir(_)) => "no private socket directory".into(),
        Error::Launch(LaunchError::SerialConnectTimeout { .. }) => {
            "QEMU did not connect its serial port".into()
        }
        Error::Qmp(crate::qmp::QmpError { command, .. }) => format!("QMP {command} failed"),
        Error::Launch(LaunchError::AccelUnavailable { .. }) => "accelerator unavailable".into(),
        Error::MemoryCheck(_) => "guest memory unreadable".into(),
        Error::Trace { .. } => "trace unreadable".into(),
        Error::Io { .. } | Error::Ram(_) => "host I/O".into(),
        _ => "host side".into(),
    }
}
