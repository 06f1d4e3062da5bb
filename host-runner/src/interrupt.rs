//! The signals that end a run early (SIGINT, SIGTERM, SIGHUP), and who
//! answers them.
//!
//! By default the binary's edge answers: the run is dropped (every `Vm`
//! with it, which kills its QEMU) and the process exits with the signal's
//! code. A part that has something to say before it goes (a fuzz campaign:
//! its summary and the traces in flight) holds a [`Claim`] while it runs
//! and listens itself ([`Listener`]); the edge then waits for it to return
//! (a second signal, or [`CLAIM_GRACE`], ends the wait).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

/// A signal that interrupts a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    Hangup,
    Interrupt,
    Terminate,
}

impl Signal {
    /// The process's exit code: 128 + the signal's number, as a shell reports
    /// a process the signal killed.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Hangup => 129,
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Hangup => "SIGHUP",
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// How long the binary's edge waits, after a signal, for a part holding a
/// [`Claim`] to write what it has to say and return.
pub const CLAIM_GRACE: Duration = Duration::from_secs(20);

/// Listens for the interrupting signals from its creation on (every
/// listener gets every signal).
#[derive(Debug)]
pub struct Listener {
    streams: Option<[(tokio::signal::unix::Signal, Signal); 3]>,
}

impl Listener {
    /// Registers now (inside a Tokio runtime); a listener whose
    /// registration failed never fires.
    pub fn new() -> Listener {
        let one = |kind: SignalKind, s: Signal| signal(kind).map(|stream| (stream, s));
        let streams = match (
            one(SignalKind::interrupt(), Signal::Interrupt),
            one(SignalKind::terminate(), Signal::Terminate),
            one(SignalKind::hangup(), Signal::Hangup),
        ) {
            (Ok(i), Ok(t), Ok(h)) => Some([i, t, h]),
            (i, t, h) => {
                let e = [i.err(), t.err(), h.err()].into_iter().flatten().next();
                tracing::warn!("cannot listen for signals: {e:?}");
                None
            }
        };
        Listener { streams }
    }

    /// The next interrupting signal.
    pub async fn recv(&mut self) -> Signal {
        let Some([(i, si), (t, st), (h, sh)]) = self.streams.as_mut() else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = i.recv() => *si,
            _ = t.recv() => *st,
            _ = h.recv() => *sh,
        }
    }
}

impl Default for Listener {
    fn default() -> Self {
        Listener::new()
    }
}

static CLAIMS: AtomicUsize = AtomicUsize::new(0);

/// Held while a part answers the signals itself.
#[derive(Debug)]
pub struct Claim(());

/// Says that the caller answers the signals until the claim is dropped.
/// Create the caller's [`Listener`] first, so no signal falls between.
pub fn claim() -> Claim {
    CLAIMS.fetch_add(1, Ordering::SeqCst);
    Claim(())
}

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether some part answers the signals now.
pub fn claimed() -> bool {
    CLAIMS.load(Ordering::SeqCst) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        assert_eq!(
            Signal::Hangup.exit_code(),
            128 + rustix::process::Signal::HUP.as_raw() as u8
        );
        assert_eq!(
            Signal::Interrupt.exit_code(),
            128 + rustix::process::Signal::INT.as_raw() as u8
        );
        assert_eq!(
            Signal::Terminate.exit_code(),
            128 + rustix::process::Signal::TERM.as_raw() as u8
        );
    }

    #[test]
    fn a_claim_lasts_until_dropped() {
        let before = CLAIMS.load(Ordering::SeqCst);
        let c = claim();
        assert!(claimed());
        assert_eq!(CLAIMS.load(Ordering::SeqCst), before + 1);
        drop(c);
        assert_eq!(CLAIMS.load(Ordering::SeqCst), before);
    }
}
