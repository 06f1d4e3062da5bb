//! The coverage report: guest edges by function and line (through
//! [`KernelSymbols`]), and the model's transition table. [`GuestReport`]
//! holds the numbers (serializable, for the HTML and JSON reports to come);
//! [`render`] writes the text `host-runner coverage` prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::edges::{EdgeHits, KernelId};
pub use super::ran::Ran;
use super::symbols::{times_the_host, KernelSymbols, Origin};
use super::{Coverage, CoverageError};

/// Reached and total, per kind of unit.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub edges: usize,
    pub edges_hit: usize,
    pub functions: usize,
    pub functions_hit: usize,
    pub lines: usize,
    pub lines_hit: usize,
}

/// One function's edges.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct FunctionCoverage {
    pub origin: Origin,
    pub file: String,
    pub function: String,
    /// Its first instrumented line.
    pub line: u32,
    pub edges: usize,
    pub edges_hit: usize,
    /// How often it ran: its entry edge's hits when it has one (a function
    /// of its own), else its busiest edge's (a function inlined elsewhere).
    pub hits: u64,
    /// What its blocks ran, inlined copies included, charged to the
    /// function of each block's first instruction (zero unless
    /// [`GuestReport::ran`] is known, and for the transport's waits).
    pub ran: Ran,
}

/// One source line's edges.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct LineCoverage {
    pub origin: Origin,
    pub file: String,
    pub line: u32,
    pub edges: usize,
    /// Its busiest edge's hits.
    pub hits: u64,
    /// What its blocks ran (as [`FunctionCoverage::ran`]).
    pub ran: Ran,
}

/// Guest code coverage by function and line.
#[derive(Serialize, Clone, Debug)]
pub struct GuestReport {
    pub kernel: KernelId,
    pub by_origin: BTreeMap<Origin, Tally>,
    /// In file, then line order.
    pub functions: Vec<FunctionCoverage>,
    /// In file, then line order.
    pub lines: Vec<LineCoverage>,
    /// The instructions the guest ran and their memory accesses, when QEMU
    /// counted its blocks ([`KernelSymbols::costs`]): an exact profile, the
    /// same on a busy machine as on an idle one. Without the transport's
    /// waits, which follow the host's timing ([`times_the_host`]).
    pub ran: Option<Ran>,
    /// What the transport's waits ran (the sites [`times_the_host`] names),
    /// left out of [`GuestReport::ran`] and of every function and line.
    pub waits: Ran,
}

impl GuestReport {
    /// The report of `hits` over the kernel `symbols` describes.
    pub fn build(hits: &EdgeHits, symbols: &KernelSymbols) -> Result<GuestReport, CoverageError> {
        symbols.check(hits.kernel)?;
        let mut functions: BTreeMap<(Origin, &str, &str), FunctionCoverage> = BTreeMap::new();
        let mut lines: BTreeMap<(Origin, &str, u32), LineCoverage> = BTreeMap::new();
        let mut entries: BTreeMap<(Origin, &str, &str), u64> = BTreeMap::new();
        let costs = symbols.costs.as_deref();
        let (mut total, mut waits) = (Ran::default(), Ran::default());
        for (i, s) in symbols.sites.iter().enumerate() {
            let n = hits.hits(i);
            let mut run = costs
                .and_then(|c| c.get(i))
                .map_or(Ran::default(), |&c| Ran::of(n, c));
            if times_the_host(s) {
                waits += run;
                run = Ran::default();
            }
            total += run;
            let key = (s.origin, s.file.as_str(), s.function.as_str());
            let f = functions.entry(key).or_insert_with(|| FunctionCoverage {
                origin: s.origin,
                file: s.file.clone(),
                function: s.function.clone(),
                line: s.line,
                edges: 0,
                edges_hit: 0,
                hits: 0,
                ran: Ran::default(),
            });
            if s.line != 0 && (f.line == 0 || s.line < f.line) {
                f.line = s.line;
            }
            f.edges += 1;
            f.edges_hit += usize::from(n > 0);
            // A `rep`'s count is of iterations, not runs.
            let runs = if s.iterates { 0 } else { n };
            f.hits = f.hits.max(runs);
            f.ran += run;
            if s.entry {
                *entries.entry(key).or_default() += n;
            }
            let l = lines
                .entry((s.origin, s.file.as_str(), s.line))
                .or_insert_with(|| LineCoverage {
                    origin: s.origin,
                    file: s.file.clone(),
                    line: s.line,
                    edges: 0,
                    hits: 0,
                    ran: Ran::default(),
                });
            l.edges += 1;
            l.hits = l.hits.max(runs);
            l.ran += run;
        }
        for (key, n) in entries {
            if let Some(f) = functions.get_mut(&key) {
                f.hits = n;
            }
        }
        let mut by_origin: BTreeMap<Origin, Tally> = BTreeMap::new();
        for f in functions.values() {
            let t = by_origin.entry(f.origin).or_default();
            t.edges += f.edges;
            t.edges_hit += f.edges_hit;
            t.functions += 1;
            t.functions_hit += usize::from(f.edges_hit > 0);
        }
        for l in lines.values() {
            let t = by_origin.entry(l.origin).or_default();
            t.lines += 1;
            t.lines_hit += usize::from(l.hits > 0);
        }
        let mut functions: Vec<FunctionCoverage> = functions.into_values().collect();
        functions.sort_by(|a, b| (a.origin, &a.file, a.line).cmp(&(b.origin, &b.file, b.line)));
        Ok(GuestReport {
            kernel: hits.kernel,
            by_origin,
            functions,
            lines: lines.into_values().collect(),
            ran: costs.map(|_| total),
            waits,
        })
    }

    /// The first function whose name contains `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionCoverage> {
        self.functions.iter().find(|f| f.function.contains(name))
    }
}

/// What [`render`] shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Every instrumented line with its hits (else files and functions).
    pub lines: bool,
    /// Code outside `guest/core` and `guest/kernel` too.
    pub other: bool,
}

/// `part` of `all` in percent (0 of nothing).
pub(super) fn percent(part: impl Into<u64>, all: impl Into<u64>) -> f64 {
    let (part, all) = (part.into(), all.into());
    if all == 0 {
        0.0
    } else {
        100.0 * part as f64 / all as f64
    }
}

fn count(n: u64) -> String {
    if n == 0 {
        "-".into()
    } else {
        n.to_string()
    }
}

/// The text report: guest totals, functions (and lines) by file, then the
/// model's transitions and events.
pub fn render(guest: Option<&GuestReport>, coverage: &Coverage, opts: RenderOptions) -> String {
    let mut out = String::new();
    match guest {
        None => out.push_str(
            "guest edges: no counters read (an uninstrumented kernel, or guest RAM not shared)\n",
        ),
        Some(g) => render_guest(&mut out, g, opts),
    }
    out.push('\n');
    let _ = write!(out, "{}", coverage.model);
    out
}

fn render_guest(out: &mut String, g: &GuestReport, opts: RenderOptions) {
    let all = g.by_origin.values().fold(Tally::default(), |a, t| Tally {
        edges: a.edges + t.edges,
        edges_hit: a.edges_hit + t.edges_hit,
        ..a
    });
    let _ = writeln!(
        out,
        "guest edges: {} of {} reached ({:.1} %); kernel: {}",
        all.edges_hit,
        all.edges,
        percent(all.edges_hit as u64, all.edges as u64),
        g.kernel
    );
    for (origin, t) in &g.by_origin {
        let _ = writeln!(
            out,
            "  {:<13} edges {:>5}/{:<5} ({:>5.1} %)  functions {:>4}/{:<4}  lines {:>5}/{:<5}",
            origin.name(),
            t.edges_hit,
            t.edges,
            percent(t.edges_hit as u64, t.edges as u64),
            t.functions_hit,
            t.functions,
            t.lines_hit,
            t.lines
        );
    }
    super::ran::render(out, g);
    let shown = |o: Origin| opts.other || o != Origin::Other;
    let _ = writeln!(
        out,
        "\nfunctions by file (edges hit/all, runs; `-` never reached):"
    );
    let mut file = "";
    for f in g.functions.iter().filter(|f| shown(f.origin)) {
        if f.file != file {
            file = &f.file;
            let _ = writeln!(out, "  {file}");
        }
        let _ = writeln!(
            out,
            "    {:>5}  {:<64} {:>4}/{:<4} {:>10}",
            f.line,
            f.function,
            f.edges_hit,
            f.edges,
            count(f.hits)
        );
    }
    if opts.lines {
        let _ = writeln!(out, "\nlines by file (line: runs of its busiest edge):");
        let mut file = "";
        for l in g.lines.iter().filter(|l| shown(l.origin)) {
            if l.file != file {
                file = &l.file;
                let _ = writeln!(out, "  {file}");
            }
            let _ = writeln!(out, "    {:>5}: {}", l.line, count(l.hits));
        }
    }
}

/// The text report of `reached`, its guest edges symbolized with the kernel
/// ELF `kernel` (which must be the build they were read from).
pub fn text_report(
    kernel: &std::path::Path,
    reached: &Coverage,
    opts: RenderOptions,
) -> Result<String, CoverageError> {
    let guest = match &reached.edges {
        Some(hits) => Some(GuestReport::build(hits, &KernelSymbols::load(kernel)?)?),
        None => None,
    };
    Ok(render(guest.as_ref(), reached, opts))
}
