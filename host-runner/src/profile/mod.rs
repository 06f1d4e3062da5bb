//! `host-runner profile`: where the guest's VMM spends its time. A fuzz
//! campaign (the `fuzz` options) runs on a kernel built with frame
//! pointers; beside it a sampler stops the guest `--rate` times a second
//! through a second, human monitor, reads RIP and the chain of saved
//! frame pointers, and lets it go on. The stacks are named from the
//! kernel's DWARF in-process and folded.
//!
//! - [`hmp`]: the monitor connection; [`parse`]: its answers.
//! - [`sampler`]: the sampling task; [`symbols`]: addresses to functions.
//! - [`fold`]: shares and folded stacks; [`report`]: text and JSON.
//!
//! A stack walked by frame pointers misses a caller whose frame was not
//! set up yet (a sample in a prologue) and functions without a frame
//! (assembly stubs); every function of the frame-pointer build has one.

use std::path::{Path, PathBuf};

use crate::exit_code::{Classify, ExitClass};
use crate::fuzz::{FuzzArgs, FuzzError, Summary};
use crate::RunnerOptions;

pub mod fold;
pub mod hmp;
pub mod parse;
pub mod report;
pub mod sampler;
pub mod symbols;

use fold::Profile;
use sampler::{Sampler, Samples};
use symbols::{SymbolError, Symbolizer};

/// The folded stacks' file in `--out`.
pub const FOLDED_FILE: &str = "profile.folded";
/// The printed profile's file in `--out`.
pub const TEXT_FILE: &str = "profile.txt";

/// The `profile` command line.
#[derive(Debug, clap::Args)]
#[command(
    mut_arg("duration", |a| a.required(true)),
    mut_arg("out", |a| a
        .default_value("profile")
        .help("Where the profile (profile.folded, profile.txt) and the campaign's failing traces go")),
)]
pub struct ProfileArgs {
    /// Samples a second (each stops the guest for a few monitor commands).
    ///
    /// Sampling perturbs what it measures: QEMU holds its big lock while
    /// it answers the monitor, and the guest's port I/O and exceptions need
    /// that lock too, so they gather extra samples as the rate rises (a
    /// seed-7 campaign: page-fault entries 18.9 % of the samples at 200/s,
    /// 8.7 % at 40/s). Compare profiles taken at the same rate, and prefer
    /// a low one (40–50) for anything near faults or I/O.
    #[arg(long, default_value_t = 100, value_name = "HZ",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rate: u32,
    /// Also write the profile as one JSON document here
    /// (`"format":"vmmfuzz-profile"`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub fuzz: FuzzArgs,
}

/// What can stop the command.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// `--jobs` other than 1: the sampler follows one guest at a time.
    #[error("profile samples one guest at a time: --jobs {0} must be 1")]
    Jobs(usize),
    /// The runner's message: QEMU missing, the kernel not built, a boot
    /// that failed.
    #[error(transparent)]
    Runner(#[from] crate::Error),
    /// The kernel's symbols could not be read.
    #[error(transparent)]
    Symbols(#[from] SymbolError),
    /// The campaign's error, when it stopped before any sample.
    #[error(transparent)]
    Campaign(FuzzError),
    /// No guest ever opened the monitor socket.
    #[error(
        "no guest opened the monitor socket {} in {secs:.0} s of campaign: nothing sampled \
         (a --qemu wrapper must pass every option on, -monitor too)",
        .socket.display()
    )]
    NoMonitor { socket: PathBuf, secs: f64 },
    /// Writing a profile file failed.
    #[error("writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Classify for ProfileError {
    fn exit_class(&self) -> ExitClass {
        match self {
            ProfileError::Jobs(_) => ExitClass::Usage,
            ProfileError::Runner(e) => e.exit_class(),
            ProfileError::Campaign(e) => e.exit_class(),
            ProfileError::Symbols(_)
            | ProfileError::NoMonitor { .. }
            | ProfileError::Write { .. } => ExitClass::Environment,
        }
    }
}

/// A finished profile: written whenever samples were taken, whatever
/// became of the campaign.
#[derive(Debug)]
pub struct ProfileRun {
    /// The campaign's summary, or why it stopped (a guest that would not
    /// boot again, a full disk).
    pub campaign: Result<Summary, FuzzError>,
    pub profile: Profile,
    /// The profile as printed.
    pub text: String,
    /// The files written (folded stacks, text, JSON), or why not.
    pub written: Result<Vec<PathBuf>, ProfileError>,
}

/// Builds the frame-pointer kernel (unless `--kernel` names one), runs the
/// campaign with the sampler beside it, names and folds the samples, and
/// writes them to `--out`. Fails only when nothing could be sampled.
pub async fn run(options: &RunnerOptions, args: &ProfileArgs) -> Result<ProfileRun, ProfileError> {
    if args.fuzz.jobs != 1 {
        return Err(ProfileError::Jobs(args.fuzz.jobs));
    }
    crate::check_input(options, None)?;
    // Before a build that can take minutes.
    crate::qemu::find_qemu(options.qemu.as_deref()).map_err(crate::Error::from)?;
    let kernel = match &options.kernel {
        Some(k) => k.clone(),
        None => {
            let dir = crate::guest_image::frame_pointer_target_dir();
            tracing::info!(
                "profile: the kernel with frame pointers, in {} (built when out of date)",
                dir.display()
            );
            crate::guest_image::build_frame_pointer_guest()?
        }
    };
    let options = RunnerOptions {
        kernel: Some(kernel.clone()),
        ..options.clone()
    };
    let mut symbols = Symbolizer::load(&kernel)?;
    let mut config = crate::config(&options).await?;
    let dir = crate::session::owned_dir("vmmfuzz-prof-").map_err(crate::Error::from)?;
    let socket = dir.path().join("monitor.sock");
    config.monitor_socket = Some(socket.clone());

    let sampler = Sampler::start(socket.clone(), args.rate);
    let started = std::time::Instant::now();
    let replay = crate::fuzz::replay_command(&options);
    let campaign = crate::fuzz::run(&config, &args.fuzz, replay).await;
    let samples = sampler.finish().await;
    if samples.connections == 0 {
        return Err(match campaign {
            Err(e) => ProfileError::Campaign(e),
            Ok(_) => ProfileError::NoMonitor {
                socket,
                secs: started.elapsed().as_secs_f64(),
            },
        });
    }
    let profile = Profile::build(&samples, &mut symbols);
    let text = report::text(&profile, &samples, &kernel);
    let written = write(args, &profile, &samples, &kernel, &text);
    Ok(ProfileRun {
        campaign,
        profile,
        text,
        written,
    })
}

/// Writes the folded stacks and the text into `out`, and the JSON where
/// `--json` says; the paths written.
fn write(
    args: &ProfileArgs,
    profile: &Profile,
    samples: &Samples,
    kernel: &Path,
    text: &str,
) -> Result<Vec<PathBuf>, ProfileError> {
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| ProfileError::Write { path, source }
    };
    let out = &args.fuzz.out;
    std::fs::create_dir_all(out).map_err(failed(out))?;
    let mut files = vec![
        (out.join(FOLDED_FILE), profile.folded_text()),
        (out.join(TEXT_FILE), text.to_owned()),
    ];
    if let Some(path) = &args.json {
        let doc = report::json(profile, samples, kernel, args.rate);
        files.push((path.clone(), doc));
    }
    for (path, contents) in &files {
        std::fs::write(path, contents).map_err(failed(path))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}
