//! The panic handler: report over serial, exit with `EXIT_PANIC`.
//!
//! Nothing here allocates: the message is formatted into a static buffer
//! (truncated when too long) and sent through the serial port's emergency
//! path. A panic inside the panic path exits at once.

use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use alloc::borrow::Cow;
use protocol::{GuestMessage, PanicReport};

use crate::{exit, serial};

/// Longest panic message sent, in bytes (longer ones are cut).
pub const MESSAGE_MAX: usize = 1024;

/// Longest file name sent, in bytes.
const FILE_MAX: usize = 512;

static PANICKING: AtomicBool = AtomicBool::new(false);

/// A `fmt::Write` into a fixed buffer that drops what does not fit (at a
/// character boundary).
struct Truncating<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl Truncating<'_> {
    fn as_str(&self) -> &str {
        // Only whole characters of `&str`s were copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("<bad utf-8>")
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut n = s.len().min(max);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::AcqRel) {
        exit::exit(protocol::EXIT_PANIC);
    }
    static mut MESSAGE: [u8; MESSAGE_MAX] = [0; MESSAGE_MAX];
    // SAFETY: PANICKING lets only the first panic get here, so this is the
    // only reference to MESSAGE ever made.
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(MESSAGE) };
    let mut w = Truncating { buf, len: 0 };
    let _ = write!(w, "{}", info.message());
    let (file, line, column) = match info.location() {
        Some(l) => (l.file(), l.line(), l.column()),
        None => ("<unknown>", 0, 0),
    };
    let report = GuestMessage::Panic(PanicReport {
        message: Cow::Borrowed(w.as_str()),
        file: Cow::Borrowed(truncate(file, FILE_MAX)),
        line,
        column,
    });
    serial::send_emergency(&report);
    exit::exit(protocol::EXIT_PANIC)
}
