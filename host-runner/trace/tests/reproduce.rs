//! Whether a reproducer reproduces, against fake executors (no QEMU): the
//! rerun rate, a flaky reproducer, an environment fault run again, and the
//! rate kept in the trace header.

use futures::executor::block_on;
use protocol::Privilege;
use trace::{
    parse_str, rerun, Failure, FailureKind, FnExecutor, Op, Outcome, Rate, Reproduction, Trace,
    TraceHeader,
};

fn leak(op: usize) -> Failure {
    Failure::new(
        FailureKind::Invariant,
        format!("invariant 3: frame 0x{:x} leaked", 0x1000 * (op + 1)),
        Some(op),
    )
}

fn one_map() -> Trace {
    Trace::from_ops(
        TraceHeader {
            failure: Some(leak(0)),
            ..TraceHeader::default()
        },
        [Op::Map {
            addr: 0x1000,
            pages: 1,
            writable: true,
            executable: false,
            contiguous: false,
            privilege: Privilege::User,
        }],
    )
}

#[test]
fn a_reproducer_that_fails_every_time_is_3_of_3() {
    let t = one_map();
    let mut runs = 0;
    let mut exec = FnExecutor(|_: &Trace| {
        runs += 1;
        Outcome::Failed(leak(runs))
    });
    let rate = block_on(rerun(&t, &leak(0), &mut exec, 3));
    assert_eq!(
        rate,
        Rate {
            reproduced: 3,
            runs: 3
        }
    );
    assert!(!rate.is_flaky());
}

#[test]
fn a_reproducer_that_fails_every_other_run_is_flaky() {
    let t = one_map();
    let mut runs = 0;
    let mut exec = FnExecutor(|_: &Trace| {
        runs += 1;
        if runs % 2 == 1 {
            Outcome::Failed(leak(0))
        } else {
            Outcome::Passed
        }
    });
    let rate = block_on(rerun(&t, &leak(0), &mut exec, 3));
    assert_eq!(rate.to_string(), "2/3");
    assert!(rate.is_flaky());
    // The rate travels in the header.
    let mut saved = t.clone();
    saved.header.reproduced = Some(rate);
    let text = saved.to_text();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("\"reproduced\":\"2/3\""),
        "{text}"
    );
    assert_eq!(parse_str(&text).unwrap().header.reproduced, Some(rate));
}

#[test]
fn an_environment_fault_is_run_again_not_counted_against_the_reproducer() {
    let t = one_map();
    let mut runs = 0;
    let mut exec = FnExecutor(|_: &Trace| {
        runs += 1;
        if runs == 2 {
            Outcome::Failed(Failure::new(
                FailureKind::Environment,
                "QEMU was killed by SIGKILL (9) from outside the runner",
                None,
            ))
        } else {
            Outcome::Failed(leak(0))
        }
    });
    let rate = block_on(rerun(&t, &leak(0), &mut exec, 3));
    assert_eq!(rate.to_string(), "3/3");
    assert_eq!(runs, 4, "the run that met the fault was made again");
}

#[test]
fn replays_judged_against_the_saved_failure() {
    let saved = Failure::new(
        FailureKind::Divergence,
        "op 3 (stats): expected 100 free frames, got 99",
        Some(3),
    );
    let judge = |o: Outcome| Reproduction::judge(&saved, &o).to_string();
    assert!(judge(Outcome::Failed(Failure::new(
        FailureKind::Divergence,
        "op 3 (stats): expected 90 free frames, got 89",
        Some(3)
    )))
    .starts_with("reproduced: "));
    let earlier = judge(Outcome::Failed(leak(2)));
    assert!(
        earlier.starts_with("reproduced earlier: invariant at op 2")
            && earlier.contains("divergence at op 3"),
        "{earlier}"
    );
    assert!(judge(Outcome::Failed(Failure::new(
        FailureKind::GuestPanic,
        "panicked at src/x.rs:1:1",
        Some(1)
    )))
    .starts_with("different failure: guest_panic at op 1"));
    assert!(judge(Outcome::Passed).starts_with("passed: the saved failure did not occur"));
}

#[test]
fn version_3_headers_still_read() {
    let v3 = "{\"format\":\"vmmfuzz-trace\",\"version\":3,\"check_every\":2,\"batches\":[1]}\n\
              {\"op\":\"stats\"}\n";
    let t = parse_str(v3).unwrap();
    assert_eq!(t.header.reproduced, None);
    assert!(t.to_text().starts_with(&format!(
        "{{\"format\":\"vmmfuzz-trace\",\"version\":{},",
        trace::format::FORMAT_VERSION
    )));
}
