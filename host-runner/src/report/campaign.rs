//! The campaign report (`fuzz --report DIR`, the CI job's `--report DIR`,
//! `host-runner merge`): one self-contained page, `DIR/index.html` (inline
//! CSS and SVG, no script, no fetches), with the campaign's figures,
//! operations over time, failures grouped by signature linking to their
//! own reports, the answers per request kind, guest code coverage by file
//! and line, and the model's transitions. The failures' traces and reports
//! are copied under `DIR/failures/` unless they are in `DIR` already, so
//! the directory stands alone (a CI artifact, say).

use std::path::{Path, PathBuf};

use maud::{html, Markup};

use super::{campaign_tables as tables, chart, style};
use crate::coverage::report::GuestReport;
use crate::coverage::symbols::KernelSymbols;
use crate::coverage::Coverage;
use crate::fuzz::results::Document;

/// The page's file name in its directory.
pub const PAGE: &str = "index.html";
/// Where failures' files are copied, under the directory.
pub const FAILURES: &str = "failures";

pub use super::campaign_tables::FailureLinks;

/// Everything the page shows.
#[derive(Debug)]
pub struct Campaign<'a> {
    pub doc: &'a Document,
    pub reached: &'a Coverage,
    /// Guest coverage by line, or why there is none.
    pub guest: Result<GuestReport, String>,
    /// `links[i]` is `doc.failures[i]`'s.
    pub links: Vec<FailureLinks>,
}

/// What stops the report being written.
#[derive(Debug, thiserror::Error)]
pub enum CampaignReportError {
    #[error("writing the campaign report: {path}: {source}; check that the directory is writable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Guest coverage by line from `reached`'s edges and the kernel ELF they
/// were read from, or why there is none.
pub fn guest_report(reached: &Coverage, kernel: Option<&Path>) -> Result<GuestReport, String> {
    let hits = reached
        .edges
        .as_ref()
        .ok_or("no guest counters were read (an uninstrumented kernel, or guest RAM not shared)")?;
    let kernel =
        crate::edge_counts::kernel_of(kernel, Some(hits.kernel)).map_err(|e| e.to_string())?;
    let symbols = KernelSymbols::load(&kernel).map_err(|e| e.to_string())?;
    GuestReport::build(hits, &symbols).map_err(|e| e.to_string())
}

fn summary_line(d: &Document) -> Markup {
    let verdict = if d.failures.is_empty() {
        ("verdict passed", "passed: no failure found".to_string())
    } else {
        let signatures: std::collections::BTreeSet<&str> =
            d.failures.iter().map(|f| f.signature.as_str()).collect();
        (
            "verdict failed",
            format!(
                "FAILED: {} failure(s), {} signature(s)",
                d.failures.iter().map(|f| f.occurrences).sum::<u64>(),
                signatures.len()
            ),
        )
    };
    html! { p id="verdict" class=(verdict.0) { (verdict.1) } }
}

/// A row of the figures, a line per entry (none when empty).
fn lines(name: &str, lines: &[String]) -> Markup {
    html! {
        @if !lines.is_empty() {
            tr { th { (name) } td { @for (i, l) in lines.iter().enumerate() { @if i > 0 { br; } (l) } } }
        }
    }
}

fn figures(d: &Document) -> Markup {
    let r = &d.reached;
    html! {
        table class="steps" id="figures" {
            tbody {
                tr { th { "seed" } td { code { (d.seed) } } }
                tr { th { "shard" } td { (d.shard)
                    @if !d.merged_from.is_empty() { " (merged from " (d.merged_from.len()) " shards)" } } }
                tr { th { "jobs" } td { (d.jobs) } }
                tr { th { "time" } td { (format!("{:.1} s, {:.1} s of it fuzzing", d.seconds, d.fuzzing_seconds)) } }
                tr { th { "sequences" } td { (d.sequences) } }
                tr { th { "operations" } td { (d.ops) " in " (d.batches) " batches, "
                    (format!("{:.0} ops/s", d.ops_per_second)) } }
                tr { th { "pages touched" } td { (d.pages_touched) ", "
                    (format!("{:.0} pages/s", d.pages_touched_per_second)) } }
                tr { th { "reached" } td {
                    @if r.guest_edges_total == 0 { "guest edges not read" }
                    @else { "guest edges " (r.guest_edges) " of " (r.guest_edges_total) }
                    ", model transitions " (r.model_transitions) ", model events "
                    (r.model_events) " of " (r.model_events_total) } }
                (lines("fresh state", &d.fresh_state))
                (lines("time", &d.time_split))
                (lines("corpus", &d.corpus))
                @if let Some(s) = &d.interrupted {
                    tr { th { "interrupted" } td class="note" { "by " (s) ": the figures are up to then" } }
                }
            }
        }
        @if !d.environment_faults.is_empty() {
            p { "Environment faults, retried (not VMM bugs):" }
            ul { @for e in &d.environment_faults { li { (e) } } }
        }
        @for p in &d.in_flight { p class="note" { "in flight: " code { (p) } } }
    }
}

/// The whole page.
pub fn render(c: &Campaign) -> String {
    let d = c.doc;
    let body = html! {
        h1 { "vmmfuzz campaign report" }
        (summary_line(d))
        (figures(d))
        h2 { "Operations over time" }
        (chart::markup(&d.timeline))
        h2 { "Failures by signature" }
        (tables::failures(d, &c.links))
        h2 { "Answers per request kind" }
        (tables::answers(d))
        h2 id="guest-coverage" { "Guest code coverage" }
        @match &c.guest {
            Ok(g) => (tables::guest(g)),
            Err(why) => p class="note" id="no-guest-coverage" { "Not shown: " (why) },
        }
        h2 { "Model transitions" }
        (tables::model(&c.reached.model))
    };
    super::document(
        html! { "vmmfuzz campaign: seed " (d.seed) ", shard " (d.shard) },
        &[style::CSS, style::CAMPAIGN_CSS],
        body,
    )
}

/// `rel` as an href: its separators as `/`, bytes outside the plain set
/// percent-encoded.
fn href(rel: &Path) -> String {
    let text = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The href of the file at `path` from a page in `dir`: the path within
/// `dir`, or its copy made under `dir/failures/`. `None` when it is not
/// a file.
fn place(dir: &Path, path: &Path) -> std::io::Result<Option<String>> {
    if !path.is_file() {
        return Ok(None);
    }
    let (dir, file) = (dir.canonicalize()?, path.canonicalize()?);
    if let Ok(rel) = file.strip_prefix(&dir) {
        return Ok(Some(href(rel)));
    }
    let name = file.file_name().unwrap_or_default();
    let copies = dir.join(FAILURES);
    std::fs::create_dir_all(&copies)?;
    std::fs::copy(&file, copies.join(name))?;
    Ok(Some(href(&Path::new(FAILURES).join(name))))
}

/// Each failure's links from a page in `dir`, copying what lies outside.
fn links(dir: &Path, doc: &Document) -> std::io::Result<Vec<FailureLinks>> {
    doc.failures
        .iter()
        .map(|f| {
            let report = f
                .report
                .as_ref()
                .map_or_else(|| super::path_beside(Path::new(&f.trace)), PathBuf::from);
            // The saved trace too, for its report's replay command.
            place(dir, Path::new(&f.trace))?;
            Ok(FailureLinks {
                report: place(dir, &report)?,
                reproducer: place(dir, Path::new(f.reproducer()))?,
            })
        })
        .collect()
}

/// Writes the report of `doc` and `reached` into `dir` (created if
/// missing): `dir/index.html`, atomically, after copying the failures'
/// files it links to. Guest lines are symbolized with `kernel` (default:
/// the built guest); without it the page says why they are missing.
/// Answers the page's path.
pub fn write(
    dir: &Path,
    doc: &Document,
    reached: &Coverage,
    kernel: Option<&Path>,
) -> Result<PathBuf, CampaignReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CampaignReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let campaign = Campaign {
        doc,
        reached,
        guest: guest_report(reached, kernel),
        links: links(dir, doc).map_err(io(dir))?,
    };
    let page = dir.join(PAGE);
    let tmp = dir.join(format!("{PAGE}.tmp"));
    std::fs::write(&tmp, render(&campaign)).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &page).map_err(io(&page))?;
    Ok(page)
}

#[cfg(test)]
#[path = "campaign_tests.rs"]
pub(crate) mod tests;
