//! The campaign report's tables: failures grouped by signature, answers
//! per request kind, guest code coverage by file and line, the model's
//! transitions and events.

use std::collections::BTreeMap;

use maud::{html, Markup};
use oracle::coverage::Event;
use oracle::ModelCoverage;

use crate::coverage::report::GuestReport;
use crate::coverage::symbols::Origin;
use crate::fuzz::results::{Document, FailureEntry};

/// One signature's failures: how often, and the shortest reproducer's
/// entry with its links.
struct Group<'a> {
    occurrences: u64,
    shortest: (&'a FailureEntry, &'a FailureLinks),
}

fn link(href: Option<&String>, text: &str) -> Markup {
    html! {
        @match href {
            Some(h) => a href=(h) { (text) },
            None => span class="note" { "(" (text) " not found)" },
        }
    }
}

/// How the reproducer was made: minimized from how many operations, in
/// how long, how often it reproduced; or why it was not.
fn minimization(f: &FailureEntry) -> String {
    match (&f.minimized, &f.not_minimized) {
        (Some(m), _) => {
            let rate = m
                .reproduced
                .map_or(String::new(), |[r, n]| format!(", reproduced {r}/{n}"));
            let flaky = if m.flaky { ", FLAKY" } else { "" };
            format!(
                "(minimized from {} in {:.1} s{rate}{flaky})",
                f.ops, m.seconds
            )
        }
        (None, Some(why)) => format!("(not minimized: {why})"),
        (None, None) => "(not minimized)".into(),
    }
}

/// Where one failure's files are, relative to the page (`None`: not found).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailureLinks {
    /// Its HTML failure report.
    pub report: Option<String>,
    /// Its shortest reproducer (the minimized trace, else the saved one).
    pub reproducer: Option<String>,
}

/// Failures grouped by signature (`links[i]` is `doc.failures[i]`'s).
pub fn failures(doc: &Document, links: &[FailureLinks]) -> Markup {
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for (f, l) in doc.failures.iter().zip(links) {
        let g = groups.entry(&f.signature).or_insert(Group {
            occurrences: 0,
            shortest: (f, l),
        });
        g.occurrences += f.occurrences;
        if f.reproducer_ops() < g.shortest.0.reproducer_ops() {
            g.shortest = (f, l);
        }
    }
    html! {
        @if groups.is_empty() {
            p id="no-failures" { "No failure found." }
        } @else {
            table class="steps" id="failures" {
                thead { tr { th { "signature" } th { "found" } th { "first message" } th { "shortest reproducer" } th { "report" } } }
                tbody {
                    @for (i, (sig, g)) in groups.iter().enumerate() {
                        @let (f, l) = g.shortest;
                        tr id=(format!("failure-{i}")) class="failing" {
                            td { code { (sig) } }
                            td class="num" { (g.occurrences) "×" }
                            td { (f.message.lines().next().unwrap_or("")) }
                            td {
                                (link(l.reproducer.as_ref(), &format!("{} ops", f.reproducer_ops())))
                                " " (minimization(f))
                                br;
                                code class="replay" { (doc.replay) " " (f.reproducer()) }
                            }
                            td { (link(l.report.as_ref(), "HTML report")) }
                        }
                    }
                }
            }
        }
    }
}

fn most_first(classes: &BTreeMap<String, u64>) -> Vec<(&String, &u64)> {
    let mut by: Vec<(&String, &u64)> = classes.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    by
}

/// Per request kind, its answers, most frequent first.
pub fn answers(doc: &Document) -> Markup {
    html! {
        table class="steps" id="answers" {
            thead { tr { th { "request" } th { "answers" } th { "by class" } } }
            tbody {
                @for (kind, classes) in &doc.answers {
                    tr {
                        td { code { (kind) } }
                        td class="num" { (classes.values().sum::<u64>()) }
                        td { @for (c, n) in most_first(classes) { span class="class" { code { (c) } " " (n) } " " } }
                    }
                }
            }
        }
    }
}

fn hits(n: u64) -> String {
    if n == 0 {
        "-".into()
    } else {
        n.to_string()
    }
}

/// Guest code coverage: totals per origin, then each file of guest/core
/// and guest/kernel folded, with its functions and every instrumented
/// line's hits.
pub fn guest(g: &GuestReport) -> Markup {
    let ours = |o: Origin| o != Origin::Other;
    let mut files: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for l in g.lines.iter().filter(|l| ours(l.origin)) {
        let f = files.entry(&l.file).or_default();
        f.0 += usize::from(l.hits > 0);
        f.1 += 1;
    }
    html! {
        table class="steps" id="coverage-totals" {
            thead { tr { th { "code" } th { "edges hit" } th { "functions hit" } th { "lines hit" } } }
            tbody {
                @for (o, t) in &g.by_origin {
                    tr { td { (o.name()) } td class="num" { (t.edges_hit) "/" (t.edges) }
                         td class="num" { (t.functions_hit) "/" (t.functions) }
                         td class="num" { (t.lines_hit) "/" (t.lines) } }
                }
            }
        }
        @for (file, (hit, all)) in &files {
            details class="cov-file" data-file=(file) {
                summary { code { (file) } " — lines " (hit) "/" (all) }
                table class="steps" {
                    thead { tr { th { "function" } th { "line" } th { "edges hit" } th { "runs" } } }
                    tbody {
                        @for f in g.functions.iter().filter(|f| f.file == *file) {
                            tr class=[(f.hits == 0).then_some("cold")] {
                                td { code { (f.function) } } td class="num" { (f.line) }
                                td class="num" { (f.edges_hit) "/" (f.edges) } td class="num" { (hits(f.hits)) }
                            }
                        }
                    }
                }
                table class="steps lines" {
                    thead { tr { th { "line" } th { "runs of its busiest edge" } } }
                    tbody {
                        @for l in g.lines.iter().filter(|l| l.file == *file) {
                            tr class=[(l.hits == 0).then_some("cold")] { td class="num" { (l.line) } td class="num" { (hits(l.hits)) } }
                        }
                    }
                }
            }
        }
    }
}

/// The model's transitions reached, and every event with its count.
pub fn model(m: &ModelCoverage) -> Markup {
    html! {
        p { (m.transitions_reached()) " transitions reached (request, caller, page state before, answer); "
            (m.events_reached()) " of " (Event::ALL.len()) " events." }
        table class="steps" id="transitions" {
            thead { tr { th { "request" } th { "caller" } th { "page state before" } th { "answer" } th { "count" } } }
            tbody {
                @for (t, n) in m.transitions() {
                    tr { td { code { (t.request.name()) } } td { (t.caller.name()) } td { (t.from_name()) }
                         td { code { (t.answer_name()) } } td class="num" { (n) } }
                }
            }
        }
        table class="steps" id="events" {
            thead { tr { th { "event" } th { "count" } } }
            tbody {
                @for e in Event::ALL {
                    tr class=[(m.event_count(e) == 0).then_some("cold")] { td { (e.name()) } td class="num" { (m.event_count(e)) } }
                }
            }
        }
    }
}
