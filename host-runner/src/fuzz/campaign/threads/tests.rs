use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// Counts the jobs whose future was dropped, a while after the drop began
/// (so that a caller that did not wait would see fewer).
struct DropCount(Arc<AtomicUsize>, Duration);

impl Drop for DropCount {
    fn drop(&mut self) {
        std::thread::sleep(self.1);
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A job that never ends on its own, holding `guard` until it is dropped.
async fn forever(guard: Option<DropCount>) -> Result<(), FuzzError> {
    let _guard = guard;
    std::future::pending().await
}

fn failed(index: usize) -> FuzzError {
    FuzzError::Thread {
        index,
        source: std::io::Error::other("the job's own error"),
    }
}

#[tokio::test]
async fn jobs_run_side_by_side_not_one_after_the_other() {
    // Each job blocks its thread until both have started: on one thread
    // shared by the jobs, the first would wait out the deadline alone.
    let arrived = Arc::new(AtomicUsize::new(0));
    let mut jobs = JobThreads::start(2, move |i| async move {
        arrived.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(20);
        while arrived.load(Ordering::SeqCst) < 2 {
            if Instant::now() > deadline {
                return Err(failed(i));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    })
    .unwrap();
    let out = jobs.finished().await;
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| matches!(o, Some(Ok(())))), "{out:?}");
}

#[tokio::test]
async fn results_come_back_in_job_order() {
    // Each job fails with its own index, and the last ends first.
    let mut jobs = JobThreads::start(3, |i| async move {
        tokio::time::sleep(Duration::from_millis(30 * (3 - i as u64))).await;
        Err(failed(i))
    })
    .unwrap();
    let out = jobs.finished().await;
    let indexes: Vec<_> = out
        .iter()
        .map(|o| match o {
            Some(Err(FuzzError::Thread { index, .. })) => *index,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(indexes, [0, 1, 2]);
}

#[tokio::test]
async fn no_jobs_asked_for_still_runs_one() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = ran.clone();
    let mut jobs = JobThreads::start(0, move |_| async move {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    assert_eq!(jobs.finished().await.len(), 1);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn cancel_drops_every_job_where_it_is_and_waits_for_it() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    let mut jobs = JobThreads::start(2, move |i| {
        // Made with the job, before its first poll: a job cancelled before
        // it ever ran still counts. Job 0 is the slower to stop.
        let guard = DropCount(count, Duration::from_millis(if i == 0 { 300 } else { 0 }));
        forever(Some(guard))
    })
    .unwrap();
    // A wait for the jobs given up half way (a signal came while the
    // campaign waited) must not lose a job that `cancel` waits for.
    let waited = tokio::time::timeout(Duration::from_millis(20), jobs.finished()).await;
    assert!(waited.is_err(), "the jobs never end on their own");
    jobs.cancel().await;
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
}

#[tokio::test]
#[should_panic(expected = "a job's own panic")]
async fn a_job_that_panics_panics_where_the_campaign_waits() {
    let mut jobs = JobThreads::start(1, |_| async move { panic!("a job's own panic") }).unwrap();
    jobs.finished().await;
}

#[tokio::test]
async fn a_job_that_panics_stops_the_others_before_its_panic_goes_on() {
    use futures::FutureExt;
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    let mut jobs = JobThreads::start(2, move |i| {
        let guard = (i == 0).then(|| DropCount(count, Duration::from_millis(100)));
        async move {
            if i == 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                panic!("job 1's panic");
            }
            forever(guard).await
        }
    })
    .unwrap();
    let waited = std::panic::AssertUnwindSafe(jobs.finished())
        .catch_unwind()
        .await;
    let payload = waited.expect_err("the panic goes on");
    assert_eq!(message(&*payload), "job 1's panic");
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "job 0 stopped before the panic went on"
    );
}

#[tokio::test]
async fn cancel_after_a_job_panicked_stops_the_rest_and_does_not_panic() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    let mut jobs = JobThreads::start(2, move |i| {
        let guard = (i == 1).then(|| DropCount(count, Duration::from_millis(50)));
        async move {
            if i == 0 {
                panic!("job 0's panic");
            }
            forever(guard).await
        }
    })
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    jobs.cancel().await;
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[test]
fn dropping_the_threads_stops_every_job_and_waits_for_it() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    let jobs = JobThreads::start(2, move |_| {
        forever(Some(DropCount(count, Duration::from_millis(100))))
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(jobs);
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_job_that_ends_while_a_wait_is_given_up_is_kept() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    let mut jobs = JobThreads::start(2, move |i| {
        let guard = (i == 0).then(|| DropCount(count, Duration::ZERO));
        async move {
            if i == 1 {
                return Err(failed(1));
            }
            forever(guard).await
        }
    })
    .unwrap();
    // Waits given up again and again (each a signal's), until job 1 has
    // ended during one of them.
    let deadline = Instant::now() + Duration::from_secs(20);
    while jobs.jobs[1].ended.is_none() && Instant::now() < deadline {
        let waited = tokio::time::timeout(Duration::from_millis(50), jobs.finished()).await;
        assert!(waited.is_err(), "job 0 never ends on its own");
    }
    assert!(
        matches!(
            jobs.jobs[1].ended,
            Some(Ok(Some(Err(FuzzError::Thread { index: 1, .. }))))
        ),
        "job 1's end was kept when the wait was given up"
    );
    // And waiting again does not look at job 1's finished channel again.
    jobs.cancel().await;
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}
