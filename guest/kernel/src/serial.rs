//! The serial line: a 16550 on COM1 carrying protocol frames, polled while
//! the kernel works; its receive interrupt wakes the CPU from `hlt` when
//! the kernel waits for input ([`wait`]).
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

/// IER: interrupt when received data is available.
const IER_RX: u8 = 1 << 0;
/// FCR: FIFO on, interrupt (and QEMU's intake) at 14 bytes. QEMU offers the
/// UART as many bytes per main-loop turn as the trigger level allows, so a
/// frame arrives 14 bytes at a time while the kernel polls.
const FCR_ITL14: u8 = 0xc1;
/// FCR: FIFO on, interrupt at 1 byte, for sleeping: a doorbell is one byte,
/// and at 14 it would wait for the FIFO's timeout (4 character times).
const FCR_ITL1: u8 = 0x01;

/// Initializes COM1: 115200 baud 8N1, FIFOs on and cleared, interrupts off
/// (until [`wait`] enables the receive interrupt).
pub fn init() {
    outb(IER, 0x00);
    outb(LCR, 0x80); // DLAB
    outb(DATA, 0x01); // divisor 1: 115200 baud
    outb(IER, 0x00);
    outb(LCR, 0x03); // 8 bits, no parity, 1 stop bit
    outb(FCR, FCR_ITL14 | 0x06); // both FIFOs cleared

    outb(MCR, 0x0b); // DTR, RTS, OUT2 (OUT2 gates the IRQ line)
}

/// Whether a received byte waits in the UART.
pub fn has_input() -> bool {
    inb(LSR) & LSR_DATA_READY != 0
}

/// The UART's interrupt handler: turns its interrupts off (the byte stays
/// in the FIFO for the waiting loop; [`wait`] turns them on again).
pub fn quiet() {
    outb(IER, 0x00);
}

/// Sleeps until a byte arrives on the line, or until `ready` (looked at
/// once more with interrupts off) says there is work. `prepare` runs first
/// with interrupts off and `ready` after it, so a host that publishes work
/// and then looks at what `prepare` published either is seen by `ready` or
/// sends the byte that wakes the CPU.
pub fn wait(prepare: impl FnOnce(), ready: impl FnOnce() -> bool) {
    x86_64::instructions::interrupts::disable();
    prepare();
    core::sync::atomic::fence(Ordering::SeqCst);
    if ready() || has_input() {
        return;
    }
    outb(FCR, FCR_ITL1);
    outb(IER, IER_RX);
    // `sti; hlt` as one: the interrupt that a byte already waiting raises
    // is taken after the `hlt` has begun, and ends it.
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
    outb(IER, 0x00);
    outb(FCR, FCR_ITL14);
}

/// Sends the doorbell: one zero byte, an empty frame the framing ignores
/// (see `protocol::ring`).
pub fn doorbell() {
    let _tx = TX.lock();
    put(0);
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

/// One byte from the host, if one waits.
fn try_get() -> Option<u8> {
    has_input().then(|| inb(DATA))
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

/// Runs `f` with the sender's scratch buffer (one frame body long), for
/// encoding a frame elsewhere than the line (a ring slot).
pub fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut tx = TX.lock();
    f(&mut tx.scratch)
}

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
    acc: FrameAccumulator<&'static mut [u8; MAX_ENCODED_FRAME]>,
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
    /// A frame longer than any legal one (`MAX_ENCODED_FRAME`) was dropped.
    TooLong,
}

impl Receiver {
    /// The receiver. Call once: it takes the static input buffer.
    pub fn take() -> Receiver {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        // Encoded bytes: every legal frame fits, COBS overhead included.
        static mut RX_BUF: [u8; MAX_ENCODED_FRAME] = [0; MAX_ENCODED_FRAME];
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

    /// Takes the bytes waiting in the UART until a frame ends: the frame,
    /// or `None` when no more bytes wait (a partial frame stays for later;
    /// empty frames, the ring's doorbells among them, are skipped).
    pub fn poll(&mut self) -> Option<Incoming<'_>> {
        while let Some(byte) = try_get() {
            match self.acc.push(byte) {
                Feed::Pending | Feed::Empty => {}
                Feed::TooLong => return Some(Incoming::TooLong),
                Feed::Frame(len) => return Some(Incoming::Frame(self.acc.frame(len))),
            }
        }
        None
    }

    /// Whether part of a frame has arrived: the rest follows at once, so
    /// the kernel polls instead of sleeping.
    pub fn in_frame(&self) -> bool {
        self.acc.in_frame()
    }
}
