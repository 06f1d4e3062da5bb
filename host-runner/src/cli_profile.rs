//! `host-runner profile` at the binary's edge: what it prints and its exit
//! class.

use host_runner::exit_code::ExitClass;

/// `profile`: the campaign's summary, the profile, the files written; the
/// exit class as `fuzz`'s. The profile of the samples taken is printed
/// and written even when the campaign stopped with an error.
pub async fn run(
    options: &host_runner::RunnerOptions,
    args: &host_runner::profile::ProfileArgs,
) -> anyhow::Result<ExitClass> {
    let run = host_runner::profile::run(options, args).await?;
    if let Ok(summary) = &run.campaign {
        println!("{summary}");
    }
    print!("{}", run.text);
    let mut class = ExitClass::Passed;
    match &run.written {
        Ok(files) => {
            for f in files {
                println!("written: {}", f.display());
            }
        }
        Err(e) => {
            eprintln!("error (environment or tool error): {e}");
            class = ExitClass::Environment;
        }
    }
    let summary = run.campaign?;
    Ok(crate::campaign_exit("profile", &summary, class))
}
