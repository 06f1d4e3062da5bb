//! What a failure is, as data: the class a runner gives each failure it
//! finds. The signature (whether two failures are the same bug) is
//! computed from it, never from the message, which is for people.
//!
//! In a trace header: `"failure":{"kind":"invariant","message":"…","op":3,
//! "class":{"is":"invariant","numbers":[3],"frames":["0x7000"]}}`.

use std::fmt;

use protocol::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::serde_as;

use crate::expect::Expect;
use crate::numbers::Hex;

/// A failure's class.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "is", rename_all = "snake_case", deny_unknown_fields)]
pub enum FailureClass {
    /// An answer the model or the trace's `expect` does not allow: the
    /// operation's kind and the expected and actual answer classes
    /// ([`answer_class`]: `done`, `error invalid_state`, `fault unusable`).
    Answer {
        op: String,
        expected: String,
        actual: String,
    },
    /// A memory check found broken invariants: their numbers (sorted, each
    /// once) and the objects they name (frames, virtual pages, swap slots).
    Invariant {
        numbers: Vec<u8>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[serde_as(as = "Vec<Hex>")]
        frames: Vec<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[serde_as(as = "Vec<Hex>")]
        pages: Vec<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        slots: Vec<u64>,
    },
    /// The guest panicked here.
    Panic {
        file: String,
        line: u32,
        column: u32,
    },
    /// The guest took an unexpected CPU exception.
    Exception { vector: u8 },
    /// The guest died otherwise: `triple fault`, `closed the line`, `QEMU
    /// crashed (SIGSEGV)`, `exit status 1`.
    Died { how: String },
    /// A request got no answer: its kind.
    Hang { request: String },
    /// Not the guest's doing: what failed.
    Environment { what: String },
}

impl FailureClass {
    /// What the signature compares: the class without the objects it
    /// names (the same leak names other frames in a shorter trace).
    pub fn key(&self) -> String {
        match self {
            FailureClass::Answer {
                op,
                expected,
                actual,
            } => format!("{op}: expected {expected}, got {actual}"),
            FailureClass::Invariant { numbers, .. } => {
                let n: Vec<String> = numbers.iter().map(u8::to_string).collect();
                format!("invariant {}", n.join(","))
            }
            FailureClass::Panic { file, line, column } => {
                format!("panic at {file}:{line}:{column}")
            }
            FailureClass::Exception { vector } => format!("exception {vector}"),
            FailureClass::Died { how } => how.clone(),
            FailureClass::Hang { request } => format!("no answer to {request}"),
            FailureClass::Environment { what } => what.clone(),
        }
    }

    /// The first virtual page an invariant class names, if any.
    pub fn first_page(&self) -> Option<u64> {
        match self {
            FailureClass::Invariant { pages, .. } => pages.first().copied(),
            _ => None,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// The class of an answer, as a trace's `expect` names it: `done`,
/// `error invalid_state`, `fault unusable`, `checksum`, `stats`… (a
/// `Reclaimed` answer is its plain answer's class).
pub fn answer_class(r: &Response) -> String {
    match r {
        Response::Reclaimed { response, .. } => answer_class(response),
        r => expect_class(&Expect::exact(r)),
    }
}

/// The class of an expectation: its kind, with an error's code or a
/// fault's reason; never its addresses or counts.
pub fn expect_class(x: &Expect) -> String {
    let v: Value = serde_json::from_str(&x.to_json()).unwrap_or(Value::Null);
    match &v {
        Value::String(s) => s.clone(),
        Value::Object(m) => {
            // An error carries its code beside its address: the code names it.
            if let Some(Value::String(code)) = m.get("error") {
                return format!("error {code}");
            }
            let Some((k, inner)) = m.iter().next() else {
                return "-".into();
            };
            match inner {
                Value::String(s) if k == "error" => format!("{k} {s}"),
                Value::Object(o) => match o.get("reason").or_else(|| o.get("code")) {
                    Some(Value::String(s)) => format!("{k} {s}"),
                    _ => k.clone(),
                },
                _ => k.clone(),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Error, FaultReason};

    #[test]
    fn answer_classes_leave_out_numbers() {
        assert_eq!(answer_class(&Response::Done), "done");
        assert_eq!(
            answer_class(&Response::Error(Error::InvalidState { addr: 0x5000 })),
            "error invalid_state"
        );
        let fault = |addr| Response::Fault {
            addr,
            write: false,
            reason: FaultReason::Unusable,
        };
        assert_eq!(answer_class(&fault(0x1000)), "fault unusable");
        assert_eq!(answer_class(&fault(0x1000)), answer_class(&fault(0x9000)));
    }

    #[test]
    fn invariant_keys_name_numbers_not_objects() {
        let a = FailureClass::Invariant {
            numbers: vec![3],
            frames: vec![0x7000],
            pages: vec![],
            slots: vec![],
        };
        let b = FailureClass::Invariant {
            numbers: vec![3],
            frames: vec![0x9000, 0xa000],
            pages: vec![0x4000_0000],
            slots: vec![],
        };
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), "invariant 3");
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(
            json,
            r#"{"is":"invariant","numbers":[3],"frames":["0x9000","0xa000"],"pages":["0x40000000"]}"#
        );
        assert_eq!(serde_json::from_str::<FailureClass>(&json).unwrap(), b);
    }
}
