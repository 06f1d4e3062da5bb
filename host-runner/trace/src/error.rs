//! Errors of reading a trace: each names the line and, where it can, the
//! field.

use thiserror::Error;

/// A field that could not be read: its name (dotted for nested fields, as
/// `expect.fault.addr`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct FieldError {
    /// Empty when the error is about the line's value as a whole.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "field \"{}\": {}", self.field, self.message)
        }
    }
}

impl FieldError {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// A line of a trace file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The line is not JSON at all (`column` from the JSON reader).
    #[error("line {line}: invalid JSON at column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// A field is missing, unknown, or holds a value of the wrong kind.
    #[error("line {line}: {error}")]
    Field { line: usize, error: FieldError },
    /// The line is not UTF-8 (`column`: the first byte that is not).
    #[error("line {line}: not UTF-8 text (the byte at column {column} is not)")]
    Utf8 { line: usize, column: usize },
    /// The file holds no header line.
    #[error(
        "line {line}: the trace is empty: a trace starts with a header line like {{\"format\":\"{}\",\"version\":{}}}",
        crate::format::FORMAT_NAME,
        crate::format::FORMAT_VERSION
    )]
    Empty { line: usize },
}

impl ParseError {
    /// The 1-based line the error is about.
    pub fn line(&self) -> usize {
        match self {
            ParseError::Json { line, .. }
            | ParseError::Field { line, .. }
            | ParseError::Utf8 { line, .. }
            | ParseError::Empty { line } => *line,
        }
    }

    /// The field the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ParseError::Field { error, .. } => Some(&error.field),
            _ => None,
        }
    }
}

/// Reading a trace failed.
#[derive(Debug, Error)]
pub enum TraceError {
    #[error("reading the trace: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl TraceError {
    /// The parse error, when the failure is one.
    pub fn as_parse(&self) -> Option<&ParseError> {
        match self {
            TraceError::Parse(p) => Some(p),
            TraceError::Io(_) => None,
        }
    }
}
