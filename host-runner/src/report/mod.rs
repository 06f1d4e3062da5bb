//! The HTML failure report (`replay --report`, and beside every failure
//! the fuzzer saves): one self-contained page (inline CSS and SVG, no
//! script, no fetches) with the verdict and replay command, the step
//! table, the address space around the failing address (guest beside
//! model), the page walk, and physical memory. Pure functions from data
//! to markup ([`maud`]); [`gather`] collects the data at a failure.
//!
//! [`campaign`]: the campaign report (`fuzz --report`, `merge`), a page
//! per campaign linking to its failures' reports.

pub mod campaign;
mod campaign_tables;
mod chart;
pub mod frames;
pub mod gather;
pub mod page_map;
pub mod steps;
mod style;
pub mod walk;

use std::path::Path;

use maud::{html, Markup, DOCTYPE};
use oracle::WalkLevel;
use trace::replay::StepRecord;
use trace::Failure;

/// What a replay saw of memory at its failure.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The address the failure is about.
    pub address: Option<u64>,
    pub regions: Vec<page_map::Region>,
    pub walk: Vec<WalkLevel>,
    pub frames: Option<frames::FrameMap>,
    /// What could not be drawn, and why.
    pub notes: Vec<String>,
}

/// Everything the page shows.
#[derive(Clone, Debug)]
pub struct FailureReport {
    /// The trace's path, as the title.
    pub trace: String,
    /// The one-line verdict.
    pub verdict: String,
    /// The command that replays it.
    pub command: String,
    pub failure: Option<Failure>,
    pub steps: Vec<StepRecord>,
    pub snapshot: Snapshot,
}

fn invariant(f: &Failure) -> Markup {
    html! {
        p { "Kind: " strong { (format!("{:?}", f.kind)) }
            @if let Some(i) = f.op_index { ", at operation " (i) }
            @if let Some(c) = &f.class { ", class " code { (c.to_string()) } }
        }
        pre class="message" { (f.message) }
    }
}

/// The whole page.
pub fn render(r: &FailureReport) -> String {
    let s = &r.snapshot;
    let body = html! {
        h1 { "vmmfuzz failure report" }
        p id="verdict" class=(if r.failure.is_some() { "verdict failed" } else { "verdict passed" }) { (r.verdict) }
        p { "Replay: " code id="command" { (r.command) } }
        @if let Some(f) = &r.failure {
            h2 { "The failure" }
            (invariant(f))
        }
        @for n in &s.notes { p class="note" { (n) } }
        @if !s.regions.is_empty() {
            h2 { "Address space around the failing address" }
            (page_map::markup(&s.regions, s.address))
        }
        @if let (Some(a), false) = (s.address, s.walk.is_empty()) {
            h2 { "Page walk" }
            (walk::markup(a, &s.walk))
        }
        @if let Some(map) = &s.frames {
            h2 { "Physical memory (" (map.kinds.len()) " frames, a row per MiB)" }
            (frames::markup(map))
        }
        h2 { "Steps (" (r.steps.len()) ")" }
        (steps::markup(&r.steps, r.failure.as_ref().and_then(|f| f.op_index)))
    };
    document(html! { "vmmfuzz: " (r.trace) }, &[style::CSS], body)
}

/// A whole page: `title`, the report's style sheets `css` in order, and
/// `body`.
fn document(title: Markup, css: &[&str], body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { @for c in css { (maud::PreEscaped(c)) } }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// Writes the report to `path` (atomically: a file beside it, renamed;
/// readable as any file the user writes, not a private temporary).
pub fn write(path: &Path, r: &FailureReport) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, render(r))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Where the report of the trace at `trace` goes: beside it, `.html`.
pub fn path_beside(trace: &Path) -> std::path::PathBuf {
    trace.with_extension("html")
}

#[cfg(test)]
mod tests;
