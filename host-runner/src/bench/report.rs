//! The bench's data: a list of figures, each the median of its samples
//! with its unit, and the report around them (format, build, machine,
//! plan, notes) as `--json` writes it.

use serde::{Deserialize, Serialize};

use super::BenchPlan;
use crate::accel::Accel;
use crate::session::Transport;

/// The name of the JSON format, and its version (bumped when a field
/// changes meaning or goes away).
pub const FORMAT: &str = "vmmfuzz-bench";
pub const FORMAT_VERSION: u32 = 1;

/// The parts of the table, in the order it prints them.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[clap(rename_all = "snake_case")]
pub enum Section {
    /// QEMU's start to the guest's `Ready`.
    Boot,
    /// One request, one answer.
    RoundTrip,
    /// Pings and the VMM mix in batches of 1, 16, 256.
    Batched,
    /// A judged reset after a fuzz sequence, and a boot beside it.
    FreshState,
    /// The same operation mix in the guest and in `vmm-core` in-process.
    InGuestVsInProcess,
    /// The same again with a campaign's sequences, under memory pressure.
    UnderPressure,
    /// The guest's allocator searches over fragmented maps.
    Searches,
    /// Converts of untouched space to usable RAM and back, in the guest.
    Converts,
    /// A `Write` and a `Read` of 16 MiB of present pages, in the guest.
    Touches,
    /// Short fuzz campaigns: checked operations and pages per second.
    EndToEnd,
    /// The memory check by RAM size and mapped pages.
    Checks,
    /// Minimizing a long failing trace.
    Minimize,
}

impl Section {
    pub const ALL: [Section; 12] = [
        Section::Boot,
        Section::RoundTrip,
        Section::Batched,
        Section::FreshState,
        Section::InGuestVsInProcess,
        Section::UnderPressure,
        Section::Searches,
        Section::Converts,
        Section::Touches,
        Section::EndToEnd,
        Section::Checks,
        Section::Minimize,
    ];

    /// The heading the table prints.
    pub fn title(self) -> &'static str {
        match self {
            Section::Boot => "boot → ready",
            Section::RoundTrip => "round trip (one ping)",
            Section::Batched => "batched throughput",
            Section::FreshState => "fresh state",
            Section::InGuestVsInProcess => "in-guest vs in-process (same operation mix)",
            Section::UnderPressure => {
                "in-guest vs in-process under memory pressure (a campaign's sequences)"
            }
            Section::Searches => "allocator searches in the guest (fragmented maps)",
            Section::Converts => "converts of untouched space in the guest (whole page tables)",
            Section::Touches => "touches of present pages in the guest (the pattern, the checksum)",
            Section::EndToEnd => "end to end (fuzz campaigns, checked operations)",
            Section::Checks => {
                "checks (the judge's, on a live guest: full with info tlb, incremental)"
            }
            Section::Minimize => "minimization",
        }
    }
}

/// What a figure counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "ms")]
    Millis,
    #[serde(rename = "us")]
    Micros,
    #[serde(rename = "s")]
    Seconds,
    #[serde(rename = "requests/s")]
    RequestsPerSec,
    #[serde(rename = "ops/s")]
    OpsPerSec,
    #[serde(rename = "pages/s")]
    PagesPerSec,
    /// A quotient of two figures of the same unit (named in the figure).
    #[serde(rename = "ratio")]
    Ratio,
    #[serde(rename = "%")]
    Percent,
    #[serde(rename = "ops")]
    Ops,
    /// Whole runs of a trace (the minimizer's attempts).
    #[serde(rename = "runs")]
    Runs,
}

impl Unit {
    /// As the table prints it.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Micros => "µs",
            Unit::Seconds => "s",
            Unit::RequestsPerSec => "requests/s",
            Unit::OpsPerSec => "ops/s",
            Unit::PagesPerSec => "pages/s",
            Unit::Ratio => "×",
            Unit::Percent => "%",
            Unit::Ops => "ops",
            Unit::Runs => "runs",
        }
    }
}

/// How the figure's requests travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    Ring,
    Serial,
    /// No guest: `vmm-core` over simulated memory in this process.
    InProcess,
}

impl From<Transport> for Link {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Ring => Link::Ring,
            Transport::Serial => Link::Serial,
        }
    }
}

impl Link {
    pub fn label(self) -> &'static str {
        match self {
            Link::Ring => "ring",
            Link::Serial => "serial",
            Link::InProcess => "in-process",
        }
    }
}

/// One figure: the median of `samples` measurements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub section: Section,
    pub name: String,
    pub accel: Accel,
    /// None when no requests travel in the measured part (a check, say).
    pub transport: Option<Link>,
    pub value: f64,
    pub unit: Unit,
    /// Measurements the value is the median of.
    pub samples: usize,
}

/// Who a figure belongs to: section, accelerator and transport.
#[derive(Clone, Copy, Debug)]
pub struct Tag {
    pub section: Section,
    pub accel: Accel,
    pub transport: Option<Link>,
}

impl Tag {
    /// A figure of `section` measured on guests booted with `config`,
    /// over its transport.
    pub fn of(section: Section, config: &crate::session::VmConfig) -> Tag {
        Tag {
            section,
            accel: config.accel,
            transport: Some(config.transport.into()),
        }
    }

    /// The median of `samples` as a figure (`None` for no samples).
    pub fn median(&self, name: impl Into<String>, unit: Unit, samples: &[f64]) -> Option<Figure> {
        Some(Figure {
            section: self.section,
            name: name.into(),
            accel: self.accel,
            transport: self.transport,
            value: median(samples)?,
            unit,
            samples: samples.len(),
        })
    }

    /// One figure from one value (a ratio of two medians, say), counting
    /// `samples`.
    pub fn value(&self, name: impl Into<String>, unit: Unit, value: f64, samples: usize) -> Figure {
        Figure {
            section: self.section,
            name: name.into(),
            accel: self.accel,
            transport: self.transport,
            value,
            unit,
            samples,
        }
    }

    pub fn with(self, transport: Option<Link>) -> Tag {
        Tag { transport, ..self }
    }
}

/// The median of `samples` (the mean of the middle two for an even
/// count); `None` for none. NaNs sort last.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// What built the runner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// host-runner's crate version (no git information is built in).
    pub crate_version: String,
    /// `debug` or `release`.
    pub profile: String,
}

impl Build {
    pub fn current() -> Self {
        Build {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_string(),
        }
    }
}

/// The machine the figures were measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Cores this process may use.
    pub cores: usize,
    /// The 1, 5 and 15 minute load averages when the bench started (other
    /// work on the machine skews the figures).
    pub load_average: Option<[f64; 3]>,
}

impl Machine {
    pub fn current() -> Self {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_average: load_average(),
        }
    }
}

/// `/proc/loadavg`'s first three fields.
fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Everything `bench` measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    pub version: u32,
    pub build: Build,
    pub machine: Machine,
    pub plan: BenchPlan,
    pub figures: Vec<Figure>,
    /// Footnotes: what was left out and why, what a figure includes.
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report for `plan` on this machine.
    pub fn new(plan: BenchPlan) -> Self {
        Report {
            format: FORMAT.to_string(),
            version: FORMAT_VERSION,
            build: Build::current(),
            machine: Machine::current(),
            plan,
            figures: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The sections that have figures, in table order.
    pub fn sections(&self) -> Vec<Section> {
        Section::ALL
            .into_iter()
            .filter(|s| self.figures.iter().any(|f| f.section == *s))
            .collect()
    }
}
