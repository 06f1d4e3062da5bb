//! What a wire campaign did: bursts and bytes sent, how the guest
//! answered them, and its failure (the burst, its bytes on disk).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use protocol::frame::FrameError;
use protocol::{Response, Stats};
use trace::Failure;

use super::burst::Burst;
use super::WirePlan;
use crate::exit_code::ExitClass;
use crate::rpc::BurstReplies;

/// Counts over the campaign.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub bursts: u64,
    pub bytes: u64,
    /// Pieces sent, by kind.
    pub pieces: BTreeMap<&'static str, u64>,
    /// The guest's replies to the bursts' frames, by kind
    /// (`BadFrame(Checksum)`, `Error(TooLarge)`, `Batch`, …).
    pub replies: BTreeMap<String, u64>,
    /// Ring slots posted (the bursts' frames and the lying headers).
    pub ring_slots: u64,
    /// The guest's answers in the ring, by kind.
    pub ring_replies: BTreeMap<String, u64>,
}

impl Tally {
    pub fn burst(&mut self, b: &Burst) {
        self.bursts += 1;
        self.bytes += b.bytes.len() as u64;
        for p in &b.pieces {
            *self.pieces.entry(p.name()).or_insert(0) += 1;
        }
    }

    pub fn add(&mut self, r: &BurstReplies) {
        for a in &r.answers {
            *self.replies.entry(reply_kind(a)).or_insert(0) += 1;
        }
        if !r.garbled.is_empty() {
            *self.replies.entry("undecodable".into()).or_insert(0) += r.garbled.len() as u64;
        }
    }
}

impl Tally {
    pub fn ring(&mut self, answers: &[Result<Response, FrameError>]) {
        self.ring_slots += answers.len() as u64;
        for a in answers {
            let kind = a.as_ref().map_or_else(|_| "undecodable".into(), reply_kind);
            *self.ring_replies.entry(kind).or_insert(0) += 1;
        }
    }
}

/// `BadFrame(Checksum)`, `Error(TooLarge)`, or the answer's variant.
fn reply_kind(r: &Response) -> String {
    let text = format!("{r:?}");
    match r {
        Response::BadFrame(_) | Response::Error(_) => {
            let cut = text.find([' ', '{']).unwrap_or(text.len());
            let mut k = text[..cut].trim_end_matches('(').to_string();
            if !k.ends_with(')') {
                k.push(')');
            }
            k
        }
        _ => text
            .split(['(', ' ', '{'])
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// The burst that made the guest fail, and how.
#[derive(Clone, Debug)]
pub struct WireFailure {
    /// `None`: outside any burst (the boot, the first check, shutdown).
    pub burst: Option<u64>,
    pub kinds: String,
    pub failure: Failure,
    /// The burst's bytes, saved.
    pub bytes: Option<PathBuf>,
    /// Why they could not be saved.
    pub save_error: Option<String>,
}

/// A wire campaign's report.
#[derive(Clone, Debug)]
pub struct WireReport {
    pub seed: u64,
    pub tally: Tally,
    pub failure: Option<WireFailure>,
    /// `Stats` after the last burst (and its reset).
    pub last_stats: Option<Stats>,
    pub elapsed: Duration,
    pub again: String,
}

impl WireReport {
    pub(super) fn new(plan: &WirePlan) -> Self {
        WireReport {
            seed: plan.seed,
            tally: Tally::default(),
            failure: None,
            last_stats: None,
            elapsed: Duration::ZERO,
            again: plan.again.clone(),
        }
    }

    /// Records the failure; saves the burst's bytes as
    /// `wire-<seed>-<burst>.bin` in `plan.out`.
    pub(super) fn fail(&mut self, burst: Option<&Burst>, failure: Failure, plan: &WirePlan) {
        let (mut bytes, mut save_error) = (None, None);
        if let Some(b) = burst {
            let path = plan
                .out
                .join(format!("wire-{:#x}-{}.bin", plan.seed, b.index));
            let saved =
                std::fs::create_dir_all(&plan.out).and_then(|()| std::fs::write(&path, &b.bytes));
            match saved {
                Ok(()) => bytes = Some(path),
                Err(e) => save_error = Some(format!("{}: {e}", path.display())),
            }
        }
        self.failure = Some(WireFailure {
            burst: burst.map(|b| b.index),
            kinds: burst.map_or_else(String::new, Burst::kinds),
            failure,
            bytes,
            save_error,
        });
    }

    pub(super) fn finish(mut self, started: Instant) -> Self {
        self.elapsed = started.elapsed();
        self
    }

    /// The process's exit class: the guest's failure, or the machine's.
    pub fn exit_class(&self) -> ExitClass {
        self.failure
            .as_ref()
            .map_or(ExitClass::Passed, |f| ExitClass::of_failure(&f.failure))
    }
}

impl fmt::Display for WireReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        writeln!(
            f,
            "wire: seed {:#x}, {} burst(s), {} bytes in {:.1} s, {} failure(s)",
            self.seed,
            t.bursts,
            t.bytes,
            self.elapsed.as_secs_f64(),
            usize::from(self.failure.is_some())
        )?;
        let list = |m: &mut dyn Iterator<Item = (String, u64)>| {
            m.map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "  pieces: {}",
            list(&mut t.pieces.iter().map(|(k, n)| (k.to_string(), *n)))
        )?;
        writeln!(
            f,
            "  the guest's replies: {}",
            list(&mut t.replies.iter().map(|(k, n)| (k.clone(), *n)))
        )?;
        if t.ring_slots > 0 {
            writeln!(
                f,
                "  in the ring: {} slot(s); the guest's answers: {}",
                t.ring_slots,
                list(&mut t.ring_replies.iter().map(|(k, n)| (k.clone(), *n)))
            )?;
        }
        if let Some(s) = &self.last_stats {
            let ring = if t.ring_slots > 0 {
                "every ring slot answered (each lying header with BadFrame), "
            } else {
                ""
            };
            writeln!(
                f,
                "  after every burst: a Ping answered behind it and through the transport, \
                 {ring}Reset judged, the memory check clean, Stats as before \
                 ({} frames free + {} heap pages, {} heap bytes live)",
                s.free_frames, s.heap_pages, s.heap_bytes_live
            )?;
        }
        if let Some(w) = &self.failure {
            match w.burst {
                Some(k) => writeln!(f, "FAILED at burst {k} ({}): {}", w.kinds, w.failure)?,
                None => writeln!(f, "FAILED outside the bursts: {}", w.failure)?,
            }
            if let Some(p) = &w.bytes {
                writeln!(f, "  the burst's bytes: {}", p.display())?;
            }
            if let Some(e) = &w.save_error {
                writeln!(f, "  the burst's bytes could not be saved: {e}")?;
            }
            writeln!(f, "  again: {}", self.again)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_counted_by_kind() {
        assert_eq!(
            reply_kind(&Response::BadFrame(FrameError::TooLong)),
            "BadFrame(TooLong)"
        );
        assert_eq!(
            reply_kind(&Response::BadFrame(FrameError::Checksum {
                expected: 1,
                computed: 2
            })),
            "BadFrame(Checksum)"
        );
        assert_eq!(
            reply_kind(&Response::Error(protocol::Error::TooLarge)),
            "Error(TooLarge)"
        );
        assert_eq!(reply_kind(&Response::Pong { nonce: 3 }), "Pong");
        assert_eq!(reply_kind(&Response::Batch(vec![])), "Batch");
    }
}
