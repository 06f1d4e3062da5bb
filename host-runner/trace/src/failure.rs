//! What went wrong in a run, and the signature that says whether two
//! failures are the same bug.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_with::{serde_as, skip_serializing_none};

use crate::failure_class::FailureClass;
use crate::numbers::Count;

/// The kinds of failure the runner detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The guest panicked (message and location in the failure's message).
    GuestPanic,
    /// Triple fault, unexpected reset or exit, unexpected CPU exception.
    GuestDied,
    /// A request got no answer within its timeout.
    Hang,
    /// An answer differs from the model's prediction or the trace's
    /// `expect`.
    Divergence,
    /// The memory checker found a broken invariant.
    Invariant,
    /// Not the guest's doing: QEMU killed from outside, QEMU or a host
    /// socket failing, the disk full. Never a VMM bug: runners retry or
    /// report it and never save it as a failing trace.
    Environment,
}

impl FailureKind {
    pub const ALL: [FailureKind; 6] = [
        FailureKind::GuestPanic,
        FailureKind::GuestDied,
        FailureKind::Hang,
        FailureKind::Divergence,
        FailureKind::Invariant,
        FailureKind::Environment,
    ];

    /// The name used in file names and trace headers.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::GuestPanic => "guest_panic",
            FailureKind::GuestDied => "guest_died",
            FailureKind::Hang => "hang",
            FailureKind::Divergence => "divergence",
            FailureKind::Invariant => "invariant",
            FailureKind::Environment => "environment",
        }
    }

    pub fn from_name(name: &str) -> Option<FailureKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure of one run; in a trace header,
/// `"failure":{"kind":"guest_panic","message":"…","op":3}`.
#[skip_serializing_none]
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub kind: FailureKind,
    /// What happened: the panic message and location, the divergence
    /// (request, answer, prediction), the invariant broken…
    #[serde(default)]
    pub message: String,
    /// The operation (index into the trace's ops) at which it showed.
    #[serde(rename = "op")]
    #[serde_as(as = "Option<Count>")]
    pub op_index: Option<usize>,
    /// What the failure is, as data (`None` in traces written before
    /// version 4, and for failures no runner classified): the signature
    /// is computed from it.
    pub class: Option<Box<FailureClass>>,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>, op_index: Option<usize>) -> Self {
        Failure {
            kind,
            message: message.into(),
            op_index,
            class: None,
        }
    }

    /// The failure with its class.
    pub fn with_class(mut self, class: FailureClass) -> Self {
        self.class = Some(Box::new(class));
        self
    }

    /// Whether this is the environment's fault, not the guest's
    /// ([`FailureKind::Environment`]).
    pub fn is_environment(&self) -> bool {
        self.kind == FailureKind::Environment
    }

    /// The failure's signature: the same signature is the same bug. It is
    /// computed from the failure's class ([`FailureClass::key`]); a failure
    /// without one (read from a trace older than version 4) falls back to
    /// its message with the numbers taken out ([`message_class`]).
    pub fn signature(&self) -> Signature {
        Signature {
            kind: self.kind,
            class: match self.class.as_deref() {
                Some(c) => c.key(),
                None => message_class(&self.message),
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op_index {
            Some(i) => write!(f, "{} at op {i}: {}", self.kind, self.message),
            None => write!(f, "{}: {}", self.kind, self.message),
        }
    }
}

/// Kind plus class: what must stay the same while a trace is
/// shrunk, so that a different bug found on the way is not taken for the
/// one being minimized.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    pub kind: FailureKind,
    pub class: String,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.class)
    }
}

/// The message with its numbers taken out: hex numbers (`0x…`) become `0x#`
/// and decimal numbers standing alone become `#` (digits inside words, as
/// in `x86_64`, stay).
pub fn message_class(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c.is_ascii_digit() && !after_word {
            let hex = c == '0' && matches!(chars.get(i + 1), Some('x' | 'X'));
            if hex {
                i += 2;
                while i < chars.len() && (chars[i].is_ascii_hexdigit() || chars[i] == '_') {
                    i += 1;
                }
                out.push_str("0x#");
            } else {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '_') {
                    i += 1;
                }
                out.push('#');
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    collapse_lists(&out)
}

/// Replaces the contents of every `[…]` list (nesting included) by `…`: a
/// list's length and items (the reclaim events of an answer, the pages of
/// a query) vary with the trace, so keeping them would make every shrink
/// step a "different" failure.
fn collapse_lists(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut depth = 0usize;
    for c in message.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    out.push_str("[…");
                }
                depth += 1;
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(']');
                }
            }
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_ignore_the_contents_of_lists() {
        let a = "op 3: expected legal reclaim events, got Reclaimed { events: [Swapped { addr: 0x1000, slot: 0 }, Scavenged { addr: 0x2000 }], response: Done }: 525 events, more than the ring's 512";
        let b = "op 9: expected legal reclaim events, got Reclaimed { events: [Swapped { addr: 0x5000, slot: 3 }], response: Done }: 524 events, more than the ring's 512";
        assert_eq!(message_class(a), message_class(b));
        assert!(message_class(a).ends_with("# events, more than the ring's #"));
        let c = "op 9: expected legal reclaim events, got Reclaimed { events: [Dropped { addr: 0x5000 }], response: Done }: Dropped on a page that is not clean present mmap";
        assert_ne!(message_class(a), message_class(c));
    }

    #[test]
    fn classes_ignore_numbers_but_not_words() {
        assert_eq!(
            message_class("op 12: map \"0x12345000\" 8448 pages: expected done, got out_of_memory"),
            "op #: map \"0x#\" # pages: expected done, got out_of_memory"
        );
        assert_eq!(
            message_class("panicked at src/x86_64.rs:120:5: oops"),
            "panicked at src/x86_64.rs:#:#: oops"
        );
        let a = Failure::new(FailureKind::Divergence, "page 0x1000 leaked", Some(3));
        let b = Failure::new(FailureKind::Divergence, "page 0x7000 leaked", Some(9));
        let c = Failure::new(FailureKind::Invariant, "page 0x1000 leaked", Some(3));
        assert_eq!(a.signature(), b.signature());
        assert_ne!(a.signature(), c.signature());
    }

    #[test]
    fn a_class_decides_the_signature_and_old_failures_keep_theirs() {
        let class = |frames| FailureClass::Invariant {
            numbers: vec![3],
            frames,
            pages: vec![],
            slots: vec![],
        };
        let a = Failure::new(FailureKind::Invariant, "frame 0x7000 leaked", Some(3))
            .with_class(class(vec![0x7000]));
        let b = Failure::new(FailureKind::Invariant, "a reworded message", Some(1))
            .with_class(class(vec![0x9000]));
        assert_eq!(a.signature(), b.signature());
        assert_eq!(a.signature().to_string(), "invariant: invariant 3");
        // As a version-3 trace holds it: no class, the message decides.
        let old: Failure =
            serde_json::from_str(r#"{"kind":"invariant","message":"frame 0x7000 leaked","op":3}"#)
                .unwrap();
        assert_eq!(old.class, None);
        assert_eq!(old.signature().class, "frame 0x# leaked");
        let json = serde_json::to_string(&a).unwrap();
        assert!(
            json.ends_with(r#","class":{"is":"invariant","numbers":[3],"frames":["0x7000"]}}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Failure>(&json).unwrap(), a);
    }
}
