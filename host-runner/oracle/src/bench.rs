//! What memory checks cost: full and incremental checks over synthetic
//! images of several RAM sizes with few and many mapped pages, as a plain
//! function that
//! `cargo bench -p oracle` and `host-runner bench` both print
//! ([`check_costs`], [`table`]). Figures only, no verdicts: the caller
//! compares them with its targets.

use std::time::{Duration, Instant};

use protocol::{Privilege, Request};

use crate::checker::{Checker, Scope};
use crate::model::{Changes, Model};
use crate::synth::Image;

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// RAM sizes, in MiB.
    pub ram_mib: Vec<u64>,
    /// Mapped (present) pages of each image.
    pub mapped: Vec<u64>,
    /// Timed checks of each kind per image (the median is reported).
    pub runs: usize,
}

impl Default for Plan {
    /// 64 MiB, 512 MiB and 2 GiB; about 20 and 2000 mapped pages; 7 runs.
    fn default() -> Self {
        Plan {
            ram_mib: vec![64, 512, 2048],
            mapped: vec![20, 2000],
            runs: 7,
        }
    }
}

/// The figures of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub ram_mib: u64,
    /// Mapped pages asked for (the plan's).
    pub mapped: u64,
    /// Present pages the checker's walk found (heap pages included).
    pub present: usize,
    /// Page tables it walked.
    pub tables: usize,
    /// Median full check.
    pub full: Duration,
    /// Median incremental check after a round of changes.
    pub incremental: Duration,
    /// Pages the model changed in a round (median).
    pub changed: u64,
}

/// A guest state with `mapped` present pages: runs of up to 100 pages a
/// GiB apart, every fourth page written, a few file pages and a few pages
/// on swap.
#[derive(Debug)]
pub struct Scenario {
    pub img: Image,
    pub model: Model,
    /// Index of the next operation.
    index: u64,
    /// The mapped runs: (address, pages).
    runs: Vec<(u64, u64)>,
    /// The model's changes since the checker last took them.
    pending: Option<Changes>,
}

impl Scenario {
    /// A machine of `ram_mib` MiB with a file of `file_pages` pages, and
    /// nothing mapped.
    pub fn empty(ram_mib: u64, file_pages: u64) -> Scenario {
        let img = Image::new(ram_mib, file_pages);
        let model = Model::with_files(&img.hello, &img.file_specs()).expect("the image's files");
        Scenario {
            img,
            model,
            index: 0,
            runs: Vec::new(),
            pending: None,
        }
    }

    pub fn new(ram_mib: u64, mapped: u64) -> Scenario {
        let mut s = Scenario::empty(ram_mib, 16);
        let u = Privilege::User;
        let run = mapped.clamp(1, 100);
        for k in 0..mapped.div_ceil(run) {
            let addr = 0x1000_0000 + k * 0x4000_0000;
            let pages = run.min(mapped - k * run);
            s.runs.push((addr, pages));
            s.apply(Request::map_writable(addr, pages, u));
            for p in (0..pages).step_by(4) {
                s.apply(Request::Write {
                    addr: addr + p * 4096 + 8,
                    len: 64,
                    seed: k * 1000 + p,
                    privilege: u,
                });
            }
        }
        s.apply(Request::MapFile {
            addr: 0x8000_0000,
            pages: 4,
            file: 0,
            file_page: 2,
            privilege: u,
        });
        s.apply(Request::Read {
            addr: 0x8000_0000,
            len: 2 * 4096,
            privilege: u,
        });
        s.apply(Request::Evict {
            addr: 0x1000_0000,
            pages: 2,
            privilege: u,
        });
        s
    }

    /// Sends `req` to the model with the answer a correct guest gives, and
    /// brings the image in line (nothing when the image has no answer).
    pub fn apply(&mut self, req: Request) {
        let Some(answer) = self.img.answer(&self.model, &req) else {
            return;
        };
        self.model
            .apply(self.index, &req, &answer)
            .unwrap_or_else(|d| panic!("the model refuses its own answer: {d}"));
        self.index += 1;
        let changes = self.model.take_changes();
        self.img.realize(&self.model.view(), &changes);
        match &mut self.pending {
            Some(p) => p.merge(changes),
            None => self.pending = Some(changes),
        }
    }

    /// The model's changes since the last call, for the checker.
    pub fn take_changes(&mut self) -> Changes {
        let now = self.model.take_changes();
        self.img.realize(&self.model.view(), &now);
        match self.pending.take() {
            Some(mut all) => {
                all.merge(now);
                all
            }
            None => now,
        }
    }

    /// About 30 operations' worth of changes, different each `round`:
    /// writes to 20 pages, an unmap and a map of 4, an eviction of 2 and
    /// their swap-in.
    pub fn churn(&mut self, round: u64) {
        let u = Privilege::User;
        let pages: Vec<u64> = self
            .runs
            .iter()
            .flat_map(|&(a, n)| (0..n).map(move |p| a + p * 4096))
            .collect();
        let n = pages.len() as u64;
        for k in 0..20 {
            let addr = pages[((round * 7919 + k * 131) % n) as usize];
            self.apply(Request::Write {
                addr: addr + 256,
                len: 16,
                seed: round * 100 + k,
                privilege: u,
            });
        }
        let (addr, len) = self.runs[(round % self.runs.len() as u64) as usize];
        let at = addr + len.saturating_sub(4) * 4096;
        let count = len.min(4);
        for req in [
            Request::Unmap {
                addr: at,
                pages: count,
                privilege: u,
            },
            Request::map_writable(at, count, u),
            Request::Evict {
                addr,
                pages: 2,
                privilege: u,
            },
            Request::Read {
                addr,
                len: 2 * 4096,
                privilege: u,
            },
        ] {
            self.apply(req);
        }
    }
}

/// The median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Measures every image of `plan`: for each RAM size and mapped-page
/// count, the median full check and the median incremental check after a
/// round of about 30 operations ([`Scenario::churn`]), over a synthetic
/// image in host memory. Panics if the synthetic image is not clean (a bug
/// of [`crate::synth`], not a finding).
pub fn check_costs(plan: &Plan) -> Vec<Row> {
    let mut rows = Vec::new();
    for &ram_mib in &plan.ram_mib {
        for &mapped in &plan.mapped {
            let mut s = Scenario::new(ram_mib, mapped);
            s.img.mem.back_every_page();
            let mut checker = Checker::new();
            let (mut full, mut incremental, mut changed) = (Vec::new(), Vec::new(), Vec::new());
            let mut report = None;
            for _ in 0..plan.runs.max(1) {
                let changes = s.take_changes();
                let t = Instant::now();
                let r = checker.full(&s.img.mem, &s.img.hello, &s.model.view(), Some(&changes));
                full.push(t.elapsed());
                assert!(r.is_clean(), "the synthetic image is not clean: {r}");
                report = Some(r);
            }
            for round in 0..plan.runs.max(1) as u64 {
                s.churn(round);
                let changes = s.take_changes();
                changed.push(changes.page_count());
                let t = Instant::now();
                let r = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
                incremental.push(t.elapsed());
                assert!(r.is_clean(), "the synthetic image is not clean: {r}");
                assert!(matches!(r.scope, Scope::Incremental { .. }), "{r}");
            }
            changed.sort_unstable();
            let walk = report.expect("one run at least").walk;
            rows.push(Row {
                ram_mib,
                mapped,
                present: walk.translations.len(),
                tables: walk.tables.len(),
                full: median(full),
                incremental: median(incremental),
                changed: changed[changed.len() / 2],
            });
        }
    }
    rows
}

/// The rows as a table, one image a line.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:>9} {:>8} {:>7} {:>11} {:>8} {:>12}\n",
        "RAM", "present", "tables", "full check", "changed", "incremental"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for r in rows {
        out.push_str(&format!(
            "{:>5} MiB {:>8} {:>7} {:>8.3} ms {:>8} {:>9.3} ms\n",
            r.ram_mib,
            r.present,
            r.tables,
            ms(r.full),
            r.changed,
            ms(r.incremental)
        ));
    }
    out
}
