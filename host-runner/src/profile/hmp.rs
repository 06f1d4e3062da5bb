//! A client of QEMU's human monitor (HMP) on a unix socket: one command at
//! a time, its answer read up to the next `(qemu) ` prompt.
//!
//! QEMU's line editor echoes what it receives, redrawing the line with
//! terminal escapes after every character; the answer proper starts after
//! the echo's line end (`\r\n`).

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The monitor's prompt, which ends every answer.
const PROMPT: &[u8] = b"(qemu) ";

/// Most bytes one answer may take (`info registers` takes about 2 KiB).
const ANSWER_CAP: usize = 1 << 20;

/// What can go wrong talking to the monitor.
#[derive(Debug, thiserror::Error)]
pub enum HmpError {
    /// Connecting, writing or reading failed: the I/O error.
    #[error("QEMU's monitor socket: {0}")]
    Io(#[from] std::io::Error),
    /// QEMU closed the monitor connection (it exited).
    #[error("QEMU closed its monitor connection (it exited)")]
    Closed,
    /// The monitor did not answer `command` within the timeout.
    #[error("QEMU's monitor did not answer `{command}` within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    /// The monitor's answer to `command` grew past the cap without a prompt.
    #[error("QEMU's monitor answered `{command}` with more than {ANSWER_CAP} bytes")]
    TooLong { command: String },
}

/// A connection to a human monitor.
#[derive(Debug)]
pub struct Hmp {
    stream: UnixStream,
    timeout: Duration,
    buf: Vec<u8>,
}

impl Hmp {
    /// Connects to the monitor at `socket` and reads its greeting.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Hmp, HmpError> {
        let stream = UnixStream::connect(socket).await?;
        let mut hmp = Hmp {
            stream,
            timeout,
            buf: Vec::new(),
        };
        hmp.read_answer("(greeting)").await?;
        Ok(hmp)
    }

    /// Runs `command` and answers its output (the echo cut off, `\r\n`
    /// turned into `\n`, the prompt removed).
    pub async fn command(&mut self, command: &str) -> Result<String, HmpError> {
        let line = format!("{command}\n");
        self.stream
            .write_all(line.as_bytes())
            .await
            .map_err(closed)?;
        let raw = self.read_answer(command).await?;
        Ok(answer_text(&raw))
    }

    /// Reads up to and including the next prompt; what came before it.
    async fn read_answer(&mut self, command: &str) -> Result<Vec<u8>, HmpError> {
        let read = async {
            let mut chunk = [0u8; 8192];
            loop {
                if let Some(end) = prompt_end(&self.buf) {
                    let rest = self.buf.split_off(end);
                    let mut answer = std::mem::replace(&mut self.buf, rest);
                    answer.truncate(end - PROMPT.len());
                    return Ok(answer);
                }
                if self.buf.len() > ANSWER_CAP {
                    return Err(HmpError::TooLong {
                        command: command.to_owned(),
                    });
                }
                match self.stream.read(&mut chunk).await.map_err(closed)? {
                    0 => return Err(HmpError::Closed),
                    n => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        tokio::time::timeout(self.timeout, read)
            .await
            .unwrap_or_else(|_| {
                Err(HmpError::Timeout {
                    command: command.to_owned(),
                    timeout: self.timeout,
                })
            })
    }
}

/// A connection QEMU closed, as [`HmpError::Closed`]; other I/O errors as
/// they are.
fn closed(e: std::io::Error) -> HmpError {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
    match e.kind() {
        BrokenPipe | ConnectionReset => HmpError::Closed,
        _ => HmpError::Io(e),
    }
}

/// Where the first prompt in `buf` ends, if one is there.
fn prompt_end(buf: &[u8]) -> Option<usize> {
    buf.windows(PROMPT.len())
        .position(|w| w == PROMPT)
        .map(|at| at + PROMPT.len())
}

/// The output in a raw answer: after the echoed command's line end, with
/// line ends made `\n`.
fn answer_text(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let output = text.split_once("\r\n").map_or("", |(_, rest)| rest);
    output.replace("\r\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_is_cut_and_line_ends_made_plain() {
        let raw = b"s\x1b[K\x1b[Dst\x1b[K\x1b[D\x1b[Dsto\x1b[K\x1b[D\x1b[D\x1b[Dstop\x1b[K\r\n";
        assert_eq!(answer_text(raw), "");
        let raw = b"info status\x1b[K\r\nVM status: running\r\n";
        assert_eq!(answer_text(raw), "VM status: running\n");
    }

    #[test]
    fn answers_end_at_the_first_prompt() {
        assert_eq!(prompt_end(b"abc"), None);
        assert_eq!(prompt_end(b"x\r\n(qemu) y"), Some(10));
    }

    #[tokio::test]
    async fn a_monitor_answers_one_command_at_a_time_and_its_end_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"QEMU 7.2.22 monitor\r\n(qemu) ")
                .await
                .unwrap();
            let mut line = [0u8; 12];
            s.read_exact(&mut line).await.unwrap();
            assert_eq!(&line, b"info status\n");
            // The answer in two pieces, the prompt split between them.
            s.write_all(b"info status\x1b[K\r\nVM status: paused\r\n(qe")
                .await
                .unwrap();
            s.write_all(b"mu) ").await.unwrap();
        });
        let mut hmp = Hmp::connect(&path, Duration::from_secs(5)).await.unwrap();
        let answer = hmp.command("info status").await.unwrap();
        assert_eq!(answer, "VM status: paused\n");
        server.await.unwrap();
        assert!(matches!(hmp.command("cont").await, Err(HmpError::Closed)));
    }
}
