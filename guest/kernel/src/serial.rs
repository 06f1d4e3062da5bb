//! The serial line: a polled 16550 on COM1 carrying protocol frames.
//!
//! Every byte the guest sends belongs to a frame
//! (`protocol::frame::encode_into`). Two senders share the port:
//! - [`send`] for replies, with the big static buffers under a lock;
//! - [`send_emergency`] for panics and exception reports, with small buffers
//!   of its own and no lock, so it works whatever state the kernel is in. It
//!   first sends a lone 0, which ends any frame it interrupted (the host
//!   drops that frame and resynchronizes).

use core::sync::atomic::{AtomicBool, Ordering};

use protocol::frame::{self, Feed, FrameAccumulator, MAX_ENCODED_FRAME, MAX_FRAME};
use protocol::GuestMessage;
use spin::Mutex;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const DATA: u16 = COM1;
const IER: u16 = COM1 + 1;
const FCR: u16 = COM1 + 2;
const LCR: u16 = COM1 + 3;
const MCR: u16 = COM1 + 4;
const LSR: u16 = COM1 + 5;

const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// Writes `value` to I/O port `port`.
fn outb(port: u16, value: u8) {
    // SAFETY: only called with COM1's registers, which this module owns;
    // writing them has no effect on memory.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Reads I/O port `port`.
fn inb(port: u16) -> u8 {
    // SAFETY: as in `outb`; reading the UART's registers touches no memory.
    unsafe { Port::<u8>::new(port).read() }
}

/// Initializes COM1: 115200 baud 8N1, FIFOs on and cleared, interrupts off.
pub fn init() {
    outb(IER, 0x00);
    outb(LCR, 0x80); // DLAB
    outb(DATA, 0x01); // divisor 1: 115200 baud
    outb(IER, 0x00);
    outb(LCR, 0x03); // 8 bits, no parity, 1 stop bit
    outb(FCR, 0xc7); // FIFO on, clear both, 14-byte threshold
    outb(MCR, 0x0b); // DTR, RTS, OUT2
}

/// Sends one byte, waiting for room in the transmitter.
fn put(byte: u8) {
    while inb(LSR) & LSR_THR_EMPTY == 0 {
        core::hint::spin_loop();
    }
    outb(DATA, byte);
}

/// Sends raw bytes.
fn put_all(bytes: &[u8]) {
    for &b in bytes {
        put(b);
    }
}

/// Waits for one byte from the host.
pub fn get() -> u8 {
    while inb(LSR) & LSR_DATA_READY == 0 {
        core::hint::spin_loop();
    }
    inb(DATA)
}

/// The buffers of [`send`]: a body and its encoding, each one frame long.
struct TxBuffers {
    scratch: [u8; MAX_FRAME],
    out: [u8; MAX_ENCODED_FRAME],
}

static TX: Mutex<TxBuffers> = Mutex::new(TxBuffers {
    scratch: [0; MAX_FRAME],
    out: [0; MAX_ENCODED_FRAME],
});

/// Sends `message` as one frame. A message too big for a frame is replaced
/// by `Reply(BadFrame(Encode))`, so the host always gets an answer.
pub fn send(message: &GuestMessage<'_>) {
    let mut tx = TX.lock();
    let TxBuffers { scratch, out } = &mut *tx;
    match frame::encode_into(message, scratch, out) {
        Ok(bytes) => put_all(bytes),
        Err(err) => {
            let fallback = GuestMessage::Reply(protocol::Response::BadFrame(err));
            if let Ok(bytes) = frame::encode_into(&fallback, scratch, out) {
                put_all(bytes);
            }
        }
    }
}

/// Size of the emergency buffers: enough for a panic report with its
/// message truncated to `panic::MESSAGE_MAX` bytes and a long file name.
const EMERGENCY_BUF: usize = 4096;

static EMERGENCY_BUSY: AtomicBool = AtomicBool::new(false);
static mut EMERGENCY_SCRATCH: [u8; EMERGENCY_BUF] = [0; EMERGENCY_BUF];
static mut EMERGENCY_OUT: [u8; cobs_len(EMERGENCY_BUF)] = [0; cobs_len(EMERGENCY_BUF)];

const fn cobs_len(n: usize) -> usize {
    n + n / 254 + 2
}

/// Sends `message` without taking the normal sender's lock: for the panic
/// handler and exception reports, which end the guest right after. Returns
/// false (and sends nothing) when an emergency send is already under way,
/// or the message does not fit.
pub fn send_emergency(message: &GuestMessage<'_>) -> bool {
    if EMERGENCY_BUSY.swap(true, Ordering::Acquire) {
        return false;
    }
    // SAFETY: EMERGENCY_BUSY, never cleared once set, makes this the only
    // code that ever holds references to the emergency buffers (one CPU; a
    // nested panic or exception finds the flag set and returns above).
    let (scratch, out) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(EMERGENCY_SCRATCH),
            &mut *core::ptr::addr_of_mut!(EMERGENCY_OUT),
        )
    };
    put(0);
    match frame::encode_into(message, scratch, out) {
        Ok(bytes) => {
            put_all(bytes);
            true
        }
        Err(_) => false,
    }
}

/// Incoming frames, collected in a static buffer of one frame.
pub struct Receiver {
    acc: FrameAccumulator<&'static mut [u8; MAX_FRAME]>,
}

impl core::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// What [`Receiver::next`] got.
pub enum Incoming<'a> {
    /// A complete frame (still COBS-encoded, without its delimiter).
    Frame(&'a mut [u8]),
    /// A frame longer than `MAX_FRAME` was dropped.
    TooLong,
}

impl Receiver {
    /// The receiver. Call once: it takes the static input buffer.
    pub fn take() -> Receiver {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        static mut RX_BUF: [u8; MAX_FRAME] = [0; MAX_FRAME];
        assert!(
            !TAKEN.swap(true, Ordering::AcqRel),
            "serial receiver taken twice"
        );
        // SAFETY: the TAKEN flag lets this line run once, so this is the
        // only reference to RX_BUF ever made.
        let buf = unsafe { &mut *core::ptr::addr_of_mut!(RX_BUF) };
        Receiver {
            acc: FrameAccumulator::new(buf),
        }
    }

    /// Waits for the next frame from the host.
    pub fn next(&mut self) -> Incoming<'_> {
        loop {
            match self.acc.push(get()) {
                Feed::Pending => {}
                Feed::TooLong => return Incoming::TooLong,
                Feed::Frame(len) => return Incoming::Frame(self.acc.frame(len)),
            }
        }
    }
}
