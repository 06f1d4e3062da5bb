//! The sampler: a task beside the campaign that, `rate` times a second,
//! stops the guest through its human monitor, reads RIP and the chain of
//! saved frame pointers, and lets it go on. It never blocks the campaign:
//! the guest is stopped only for the few monitor commands of one sample.
//!
//! Each guest the campaign boots opens the monitor at the same path; when
//! one ends (QEMU exits) the sampler connects to the next.
//!
//! A guest found paused (the judge pauses it between requests to read its
//! RAM, at a failure) is counted as such and left alone. A pause that
//! begins after the sampler's `info status` and before its `cont` is ended
//! by that `cont` early; the judge reads RAM only between requests, while
//! the guest waits for the next one (spinning, then in `hlt`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::hmp::{Hmp, HmpError};
use super::parse;

/// Most frames read above the leaf.
pub const MAX_DEPTH: usize = 48;

/// How long one monitor command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Between attempts to connect while no guest listens.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// The lowest address of the guest's kernel half: frame pointers below it
/// are not the kernel's stack, the walk ends there.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

/// One sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sample {
    /// The CPU waited in `hlt` (the guest waits for the host).
    Halted,
    /// The guest was paused by someone else (the campaign reading its
    /// memory): no registers read.
    Paused,
    /// RIP, then the return addresses of the frame-pointer chain, leaf
    /// first.
    Stack(Vec<u64>),
}

/// Everything sampled.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// Each distinct stack (leaf first) and how often it was seen.
    pub stacks: HashMap<Vec<u64>, u64>,
    pub halted: u64,
    pub paused: u64,
    /// Monitor connections made (one per guest sampled).
    pub connections: u64,
    /// Guests whose monitor closed before the profile ended (QEMU
    /// exited: the campaign booted a fresh guest, or the guest died).
    pub guests_ended: u64,
    /// Connections that failed otherwise, and why (the sampler connected
    /// again).
    pub errors: Vec<String>,
    /// Answers that could not be read (kept out of the samples).
    pub unreadable: u64,
    /// From the first connection to the end.
    pub sampling_time: Duration,
}

impl Samples {
    /// Samples taken (stacks, halted and paused).
    pub fn total(&self) -> u64 {
        self.stacks.values().sum::<u64>() + self.halted + self.paused
    }

    fn add(&mut self, sample: Sample) {
        match sample {
            Sample::Halted => self.halted += 1,
            Sample::Paused => self.paused += 1,
            Sample::Stack(frames) => *self.stacks.entry(frames).or_default() += 1,
        }
    }
}

/// The running sampler.
#[derive(Debug)]
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<Samples>,
}

impl Sampler {
    /// Starts sampling the monitor at `socket` `rate` times a second.
    pub fn start(socket: PathBuf, rate: u32) -> Sampler {
        let (stop, stopped) = watch::channel(false);
        let period = Duration::from_secs(1) / rate.max(1);
        let task = tokio::spawn(run(socket, period, stopped));
        Sampler { stop, task }
    }

    /// Stops sampling; what was sampled.
    pub async fn finish(self) -> Samples {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

async fn run(socket: PathBuf, period: Duration, mut stopped: watch::Receiver<bool>) -> Samples {
    let mut samples = Samples::default();
    let mut started: Option<Instant> = None;
    let mut owe_cont = false;
    while !stopping(&stopped) {
        let mut hmp = match Hmp::connect(&socket, COMMAND_TIMEOUT).await {
            Ok(hmp) => hmp,
            Err(_) => {
                let _ = tokio::time::timeout(RECONNECT_PAUSE, stopped.changed()).await;
                continue;
            }
        };
        samples.connections += 1;
        // The last connection failed between `stop` and `cont`: the guest
        // may still be stopped by this sampler.
        if std::mem::take(&mut owe_cont) {
            let _ = hmp.command("cont").await;
        }
        started.get_or_insert_with(Instant::now);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lost = loop {
            tokio::select! {
                _ = stopped.changed() => break None,
                _ = tick.tick() => {}
            }
            match sample(&mut hmp).await {
                Ok(Some(s)) => samples.add(s),
                Ok(None) => samples.unreadable += 1,
                Err(e) => break Some(e),
            }
        };
        match lost {
            // The guest ended; the campaign's next guest opens the socket
            // again.
            Some(HmpError::Closed) => samples.guests_ended += 1,
            Some(e) => {
                tracing::warn!("profile: {e}; connecting again");
                samples.errors.push(e.to_string());
                owe_cont = true;
            }
            None => {}
        }
    }
    samples.sampling_time = started.map_or(Duration::ZERO, |t| t.elapsed());
    samples
}

/// Whether to stop: told so, or the [`Sampler`] is gone.
fn stopping(stopped: &watch::Receiver<bool>) -> bool {
    *stopped.borrow() || stopped.has_changed().is_err()
}

/// One sample: the guest stopped, its registers and frame chain read,
/// resumed (resumed even when a read in between failed). `None` when an
/// answer could not be read.
async fn sample(hmp: &mut Hmp) -> Result<Option<Sample>, HmpError> {
    if parse::paused(&hmp.command("info status").await?) {
        return Ok(Some(Sample::Paused));
    }
    hmp.command("stop").await?;
    let read = read_stack(hmp).await;
    let resumed = hmp.command("cont").await;
    let sample = read?;
    resumed?;
    Ok(sample)
}

async fn read_stack(hmp: &mut Hmp) -> Result<Option<Sample>, HmpError> {
    let answer = hmp.command("info registers").await?;
    let Some(regs) = parse::registers(&answer) else {
        tracing::debug!("profile: unreadable `info registers`: {answer:?}");
        return Ok(None);
    };
    if regs.halted {
        return Ok(Some(Sample::Halted));
    }
    let mut frames = vec![regs.rip];
    let mut rbp = regs.rbp;
    while frames.len() <= MAX_DEPTH && walkable(rbp) {
        let answer = hmp.command(&format!("x /2gx {rbp:#x}")).await?;
        let Some((next, ret)) = parse::two_words(&answer) else {
            break;
        };
        if ret == 0 {
            break;
        }
        frames.push(ret);
        // The caller's frame lies above this one: anything else is not a
        // frame pointer (a function without one, or the chain's end).
        if next <= rbp {
            break;
        }
        rbp = next;
    }
    Ok(Some(Sample::Stack(frames)))
}

/// Whether `rbp` can be a frame of the kernel's stack.
fn walkable(rbp: u64) -> bool {
    rbp >= KERNEL_HALF && rbp % 8 == 0
}

#[cfg(test)]
mod tests;
