//! The trace file: round trips, a hand-written sample, and malformed files
//! giving line and field errors.

use protocol::{AreaType, Error, FaultReason, FrameRun, PageState, Privilege, Response, Stats};
use trace::expect::{ErrorCode, PageKind, StatField};
use trace::format::{FORMAT_VERSION, READ_VERSIONS};
use trace::{parse_str, Entry, Expect, Failure, FailureKind, Op, Trace, TraceHeader};

fn every_op() -> Vec<Op> {
    use Privilege::{Kernel, User};
    vec![
        Op::Hello,
        Op::Ping { nonce: 7 },
        Op::Panic { privilege: Kernel },
        Op::Map {
            addr: 0x1234_5000,
            pages: 8448,
            writable: true,
            executable: false,
            contiguous: false,
            privilege: User,
        },
        Op::Unmap {
            addr: 0xffff_c080_0000_0000,
            pages: 1,
            privilege: Kernel,
        },
        Op::Convert {
            addr: 0x1230_0000,
            pages: 131_072,
            to: AreaType::UsableRam,
            privilege: User,
        },
        Op::Convert {
            addr: 0x1230_0000,
            pages: 1,
            to: AreaType::Unusable,
            privilege: Kernel,
        },
        Op::Write {
            addr: 0x1000_0ffd,
            len: 9,
            seed: u64::MAX,
            privilege: User,
        },
        Op::Read {
            addr: 0x7fff_ffff_f000,
            len: 0,
            privilege: User,
        },
        Op::Query {
            addr: 0,
            pages: u64::MAX,
            privilege: User,
        },
        Op::AllocFrames {
            count: 3,
            contiguous: true,
            privilege: Kernel,
        },
        Op::FreeFrames {
            frame: 0x20_0000,
            count: 3,
            privilege: User,
        },
        Op::Valloc {
            pages: 4,
            privilege: Kernel,
        },
        Op::Vfree {
            addr: 0xffff_d000_0000_0000,
            pages: 4,
            privilege: Kernel,
        },
        Op::Stats,
        Op::Reset { privilege: Kernel },
        Op::MapFile {
            addr: 0x4000,
            pages: 3,
            file: 200,
            file_page: 5,
            privilege: User,
        },
        Op::Evict {
            addr: 0x4000,
            pages: 3,
            privilege: User,
        },
        Op::Kmalloc {
            size: 100,
            align: 64,
            privilege: Kernel,
        },
        Op::Kfree {
            addr: 0xffff_c000_0000_0040,
            privilege: Kernel,
        },
        Op::HeapScavenge { privilege: Kernel },
        Op::CreateSpace { privilege: Kernel },
        Op::SwitchSpace {
            space: 3,
            privilege: User,
        },
        Op::DestroySpace {
            space: u16::MAX,
            privilege: Kernel,
        },
        Op::Share {
            addr: 0x7fff_ffff_f000,
            pages: 600,
            space: 15,
            to: 0x1000,
            privilege: Kernel,
        },
    ]
}

fn every_expect() -> Vec<Expect> {
    vec![
        Expect::Any,
        Expect::Ok,
        Expect::Kind(trace::expect::AnswerKind::Done),
        Expect::Error {
            code: ErrorCode::InvalidState,
            at: Some(0x5000),
        },
        Expect::Error {
            code: ErrorCode::NotOwned,
            at: Some(0x20_0000),
        },
        Expect::Error {
            code: ErrorCode::ZeroCount,
            at: None,
        },
        Expect::Fault {
            addr: Some(0x1000),
            write: Some(true),
            reason: Some(FaultReason::ReadOnly),
        },
        Expect::Fault {
            addr: None,
            write: None,
            reason: Some(FaultReason::OutOfMemory),
        },
        Expect::Checksum(0xdead_beef),
        Expect::Pong(7),
        Expect::Valloc(0xffff_d000_0000_0000),
        Expect::Frames(3),
        Expect::Pages(vec![
            (PageKind::PresentRam, 1),
            (PageKind::Unusable, 3),
            (PageKind::Any, 2),
        ]),
        Expect::Stats(vec![
            (StatField::FreeFrames, 100),
            (StatField::FaultsResolved, 0),
        ]),
        Expect::Evicted {
            swapped: Some(2),
            dropped: None,
        },
        Expect::Kmalloc(0xffff_c000_0100_0000),
        Expect::Scavenged(1),
        Expect::Space(15),
        Expect::Error {
            code: ErrorCode::SpaceInUse,
            at: None,
        },
    ]
}

fn sample() -> Trace {
    let header = TraceHeader {
        seed: Some(0xfeed),
        ram_mib: Some(128),
        note: Some("every op, \"quoted\"".into()),
        created_by: Some("vmmfuzz test".into()),
        failure: Some(
            Failure::new(
                FailureKind::GuestPanic,
                "panicked at src/vmm.rs:1:2: boom",
                Some(3),
            )
            .with_class(trace::FailureClass::Panic {
                file: "src/vmm.rs".into(),
                line: 1,
                column: 2,
            }),
        ),
        files: vec![
            trace::FileSpec {
                pages: 16,
                seed: 0x1,
            },
            trace::FileSpec {
                pages: 1,
                seed: u64::MAX,
            },
        ],
        check_every: Some(16),
        batches: Vec::new(),
        weights: Some(trace::Weights::default().set(trace::OpKind::Reset, 0)),
        reproduced: Some("2/3".parse().unwrap()),
    };
    let mut t = Trace::from_ops(header, every_op());
    for (e, x) in t.entries.iter_mut().zip(every_expect()) {
        e.expect = Some(x);
    }
    t
}

#[test]
fn round_trip_is_exact() {
    let t = sample();
    let text = t.to_text();
    assert_eq!(parse_str(&text).unwrap(), t, "{text}");
    // Writing the parsed trace again gives the same bytes.
    assert_eq!(parse_str(&text).unwrap().to_text(), text);
    let minimal = Trace::default();
    assert_eq!(parse_str(&minimal.to_text()).unwrap(), minimal);
}

#[test]
fn written_lines_look_as_documented() {
    let t = Trace::from_ops(
        TraceHeader {
            seed: Some(42),
            ram_mib: Some(128),
            ..Default::default()
        },
        [Op::Convert {
            addr: 0x1234_5000,
            pages: 8448,
            to: AreaType::UsableRam,
            privilege: Privilege::User,
        }],
    );
    assert_eq!(
        t.to_text(),
        format!(
            "{{\"format\":\"vmmfuzz-trace\",\"version\":{FORMAT_VERSION},\"seed\":\"0x2a\",\"ram_mib\":128}}\n\
             {{\"op\":\"convert\",\"addr\":\"0x12345000\",\"pages\":8448,\"to\":\"usable_ram\",\"as\":\"user\"}}\n"
        )
    );
}

#[test]
fn hand_written_sample() {
    let text = r#"
# A hand-written scenario: comments, blank lines, decimal numbers and
// defaults are all fine.
{"format": "vmmfuzz-trace", "version": 1, "ram_mib": 64}

{"op": "map", "addr": "0x12345000", "pages": 2, "as": "user", "expect": "done"}
{"op": "write", "addr": 305418240, "len": "0x10", "as": "user"}
{"op": "query", "addr": "0x1234_5000", "pages": 3, "as": "user", "expect": {"pages": [["present_ram", 2], "unusable"]}}
{"op": "unmap", "addr": "0x12345000", "pages": 8, "as": "user", "expect": {"error": "invalid_state", "addr": "0x12347000"}}
{"op": "alloc_frames", "count": 2}
{"op": "reset"}
"#;
    let t = parse_str(text).unwrap();
    assert_eq!(t.header.ram_mib, Some(64));
    assert_eq!(t.header.seed, None);
    use Privilege::{Kernel, User};
    let ops: Vec<Op> = t.entries.iter().map(|e| e.op.clone()).collect();
    assert_eq!(
        ops,
        vec![
            Op::Map {
                addr: 0x1234_5000,
                pages: 2,
                writable: true,
                executable: false,
                contiguous: false,
                privilege: User
            },
            Op::Write {
                addr: 0x1234_5000,
                len: 16,
                seed: 0,
                privilege: User
            },
            Op::Query {
                addr: 0x1234_5000,
                pages: 3,
                privilege: User
            },
            Op::Unmap {
                addr: 0x1234_5000,
                pages: 8,
                privilege: User
            },
            Op::AllocFrames {
                count: 2,
                contiguous: false,
                privilege: Kernel
            },
            Op::Reset { privilege: Kernel },
        ]
    );
    let ex = &t.entries[3].expect;
    assert!(ex
        .as_ref()
        .unwrap()
        .matches(&Response::Error(Error::InvalidState { addr: 0x1234_7000 })));
    assert!(!ex
        .as_ref()
        .unwrap()
        .matches(&Response::Error(Error::InvalidState { addr: 0x1234_6000 })));
}

/// Parses `text` (a header is prepended when `with_header`) and answers the
/// error's line, field and text.
/// A test string that lives as long as the tables that hold `&str`s.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The error for the first version past those this build reads.
fn unsupported_next() -> String {
    let (last, rest) = READ_VERSIONS.split_last().expect("versions");
    let rest: Vec<String> = rest.iter().map(u32::to_string).collect();
    format!(
        "unsupported version {}: this build reads versions {} and {last}",
        FORMAT_VERSION + 1,
        rest.join(", ")
    )
}

fn error_of(text: &str) -> (usize, Option<String>, String) {
    let err = parse_str(text).unwrap_err();
    let p = err.as_parse().expect("a parse error");
    (p.line(), p.field().map(str::to_string), err.to_string())
}

const HEADER: &str = "{\"format\":\"vmmfuzz-trace\",\"version\":9}\n";

#[test]
fn malformed_files_name_line_and_field() {
    let cases: &[(&str, usize, Option<&str>, &str)] = &[
        // (body after a header, line, field, words in the message)
        ("{\"op\":\"map\",", 2, None, "invalid JSON"),
        ("# c\n{\"op\":\"frobnicate\"}", 3, Some("op"), "\"frobnicate\""),
        ("{\"op\":\"shutdown\"}", 2, Some("op"), "expected one of"),
        ("{\"addr\":\"0x1000\"}", 2, Some("op"), "missing"),
        ("{\"op\":\"map\",\"pages\":1,\"as\":\"user\"}", 2, Some("addr"), "missing"),
        ("{\"op\":\"map\",\"addr\":\"0x12g\",\"pages\":1,\"as\":\"user\"}", 2, Some("addr"), "expected a hex string like \"0x1000\""),
        ("{\"op\":\"map\",\"addr\":\"0x1000\",\"pages\":-1,\"as\":\"user\"}", 2, Some("pages"), "got -1"),
        ("{\"op\":\"map\",\"addr\":\"0x1000\",\"pages\":1}", 2, Some("as"), "missing (\"user\" or \"kernel\")"),
        ("{\"op\":\"map\",\"addr\":\"0x1000\",\"pages\":1,\"as\":\"root\"}", 2, Some("as"), "\"root\""),
        ("{\"op\":\"map\",\"addr\":\"0x1000\",\"pages\":1,\"as\":\"user\",\"color\":1}", 2, Some("color"), "unknown field"),
        ("{\"op\":\"map\",\"addr\":\"0x1000\",\"pages\":1,\"as\":\"user\",\"writable\":\"yes\"}", 2, Some("writable"), "true or false"),
        ("{\"op\":\"convert\",\"addr\":\"0x1000\",\"pages\":1,\"as\":\"user\",\"to\":\"ram\"}", 2, Some("to"), "usable_ram"),
        ("{\"op\":\"stats\",\"expect\":\"sunny\"}", 2, Some("expect"), "expected \"any\""),
        ("{\"op\":\"stats\",\"expect\":{\"error\":\"oops\"}}", 2, Some("expect.error"), "zero_count"),
        ("{\"op\":\"read\",\"addr\":\"0x1000\",\"len\":1,\"as\":\"user\",\"expect\":{\"fault\":{\"addr\":true}}}", 2, Some("expect.fault.addr"), "hex string"),
        ("{\"op\":\"stats\",\"expect\":{\"stats\":{\"free\":1}}}", 2, Some("expect.stats.free"), "unknown field"),
        ("{\"op\":\"query\",\"addr\":\"0x1000\",\"pages\":2,\"as\":\"user\",\"expect\":{\"pages\":[\"unusable\",\"present\"]}}", 2, Some("expect.pages[1]"), "\"present\""),
        ("[1,2]", 2, Some(""), "expected a JSON object"),
        ("{\"format\":\"vmmfuzz-trace\",\"version\":1}", 2, Some("format"), "second header"),
    ];
    for &(body, line, field, words) in cases {
        let (l, f, msg) = error_of(&format!("{HEADER}{body}\n"));
        assert_eq!((l, f.as_deref()), (line, field), "{body}: {msg}");
        assert!(msg.contains(words), "{body}: {msg}");
        assert!(msg.starts_with(&format!("line {line}: ")), "{msg}");
    }
}

#[test]
fn malformed_headers() {
    let cases: &[(&str, usize, Option<&str>, &str)] = &[
        ("", 1, None, "empty"),
        ("# only a comment\n", 1, None, "empty"),
        ("{\"op\":\"stats\"}", 1, Some("format"), "header line"),
        (
            "{\"format\":\"other\",\"version\":1}",
            1,
            Some("format"),
            "\"vmmfuzz-trace\"",
        ),
        (
            leak(format!("{{\"format\":\"vmmfuzz-trace\",\"version\":{}}}", FORMAT_VERSION + 1)),
            1,
            Some("version"),
            leak(unsupported_next()),
        ),
        (
            "{\"format\":\"vmmfuzz-trace\"}",
            1,
            Some("version"),
            "missing",
        ),
        (
            "\n\n{\"format\":\"vmmfuzz-trace\",\"version\":1,\"ram_mib\":\"lots\"}",
            3,
            Some("ram_mib"),
            "hex string",
        ),
        (
            "{\"format\":\"vmmfuzz-trace\",\"version\":1,\"files\":[\"a.img\"]}",
            1,
            Some("files[0]"),
            "expected a JSON object, got \"a.img\"",
        ),
        (
            "{\"format\":\"vmmfuzz-trace\",\"version\":1,\"files\":[{\"pages\":1},{\"seed\":\"0x1\"}]}",
            1,
            Some("files[1].pages"),
            "missing (a page count)",
        ),
        (
            "{\"format\":\"vmmfuzz-trace\",\"version\":1,\"failure\":{\"kind\":\"meh\"}}",
            1,
            Some("failure.kind"),
            "divergence",
        ),
        (
            "{\"format\":\"vmmfuzz-trace\",\"version\":1,\"sead\":1}",
            1,
            Some("sead"),
            "unknown field",
        ),
    ];
    for &(text, line, field, words) in cases {
        let (l, f, msg) = error_of(text);
        assert_eq!((l, f.as_deref()), (line, field), "{text}: {msg}");
        assert!(msg.contains(words), "{text}: {msg}");
    }
}

#[test]
fn expectations_match_answers() {
    let pages = Response::Pages(vec![
        PageState::PresentRam {
            writable: true,
            executable: false,
            frame: 0x5000,
        },
        PageState::Unusable,
        PageState::Unusable,
        PageState::Unusable,
        PageState::OnSwap { slot: 3 },
        PageState::AllocOnWrite,
    ]);
    let answers = [
        Response::Done,
        Response::Error(Error::InvalidState { addr: 0x5000 }),
        Response::Fault {
            addr: 0x1000,
            write: true,
            reason: FaultReason::ReadOnly,
        },
        Response::Checksum {
            checksum: 0xdead_beef,
        },
        Response::Frames(vec![
            FrameRun {
                start: 0x1000,
                count: 2,
            },
            FrameRun {
                start: 0x9000,
                count: 1,
            },
        ]),
        Response::Stats(Stats {
            free_frames: 100,
            ..Default::default()
        }),
        pages.clone(),
    ];
    for a in &answers {
        // Every answer satisfies its own exact expectation, and that
        // expectation survives writing and reading.
        let x = Expect::exact(a);
        assert!(x.matches(a), "{a:?}");
        let line = format!("{HEADER}{{\"op\":\"stats\",\"expect\":{}}}\n", x.to_json());
        assert_eq!(parse_str(&line).unwrap().entries[0].expect, Some(x));
        assert!(Expect::Any.matches(a));
    }
    let expects = every_expect();
    let hits: Vec<bool> = expects.iter().map(|x| x.matches(&pages)).collect();
    assert_eq!(
        hits.iter().filter(|&&h| h).count(),
        3,
        "any, ok, pages: {hits:?}"
    );
    assert!(Expect::Frames(3).matches(&answers[4]));
    assert!(!Expect::Ok.matches(&answers[1]));
    assert!(!Expect::Pages(vec![(PageKind::PresentRam, 1)]).matches(&pages));
    assert_eq!(Entry::from(Op::Stats).expect, None);
}

#[test]
fn error_messages_read_as_documented() {
    let msg = |body: &str| {
        parse_str(&format!("{HEADER}{body}\n"))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        msg("{\"op\":\"map\",\"addr\":\"0x12g\",\"pages\":1,\"as\":\"user\"}"),
        "line 2: field \"addr\": expected a hex string like \"0x1000\" or a number, got \"0x12g\""
    );
    assert_eq!(
        msg("{\"op\":\"map\",\"addr\":\"0x1000\",\"pages\":1}"),
        "line 2: field \"as\": missing (\"user\" or \"kernel\")"
    );
    assert_eq!(
        msg("{\"op\":\"read\",\"addr\":\"0x1000\",\"len\":1,\"as\":\"user\",\"expect\":{\"fault\":{\"reason\":\"ro\"}}}"),
        "line 2: field \"expect.fault.reason\": expected one of \"unusable\", \"read_only\" or \"out_of_memory\", got \"ro\""
    );
    assert_eq!(
        msg("{\"op\":\"map\",\"addr\":\"0x1000\","),
        "line 2: invalid JSON at column 28: EOF while parsing a value"
    );
    assert_eq!(
        parse_str(&format!(
            "{{\"format\":\"vmmfuzz-trace\",\"version\":{}}}",
            FORMAT_VERSION + 1
        ))
        .unwrap_err()
        .to_string(),
        format!("line 1: field \"version\": {}", unsupported_next())
    );
    assert_eq!(
        parse_str("# nothing\n").unwrap_err().to_string(),
        format!("line 1: the trace is empty: a trace starts with a header line like {{\"format\":\"vmmfuzz-trace\",\"version\":{FORMAT_VERSION}}}")
    );
}

#[test]
fn ops_convert_to_requests_and_back() {
    for op in every_op() {
        let r = op.to_request();
        assert_eq!(Op::from_request(&r), Some(op.clone()));
        assert_eq!(op.privilege(), r.privilege());
    }
    assert_eq!(Op::from_request(&protocol::Request::Shutdown), None);
    assert_eq!(Op::from_request(&protocol::Request::Batch(vec![])), None);
    let kinds: std::collections::BTreeSet<_> = every_op().iter().map(Op::kind).collect();
    assert_eq!(kinds.len(), trace::OpKind::ALL.len());
}

#[test]
fn older_traces_still_read_and_new_ones_are_the_current_version() {
    for v in trace::format::READ_VERSIONS {
        let t = parse_str(&format!(
            "{{\"format\":\"vmmfuzz-trace\",\"version\":{v}}}\n{{\"op\":\"stats\"}}\n"
        ))
        .unwrap_or_else(|e| panic!("version {v}: {e}"));
        assert_eq!(t.len(), 1);
        assert!(t.to_text().starts_with(&format!(
            "{{\"format\":\"vmmfuzz-trace\",\"version\":{FORMAT_VERSION}}}"
        )));
    }
}

#[test]
fn a_byte_order_mark_is_skipped_and_bytes_that_are_not_utf8_are_refused() {
    let text = format!("{HEADER}{{\"op\":\"stats\"}}\r\n");
    let plain = parse_str(&text).unwrap();
    assert_eq!(plain.entries.len(), 1);
    assert_eq!(parse_str(&format!("\u{feff}{text}")).unwrap(), plain);
    // Only before the header: anywhere else it is not JSON.
    let err = parse_str(&format!("{HEADER}\u{feff}{{\"op\":\"stats\"}}\n")).unwrap_err();
    assert_eq!(err.as_parse().map(|p| p.line()), Some(2), "{err}");

    let mut bytes = format!("{HEADER}# ok\n{{\"op\":\"stats\",\"expect\":\"").into_bytes();
    bytes.extend_from_slice(b"\xff\"}\n{\"op\":\"stats\"}\n");
    let err = trace::parse(&bytes[..]).unwrap_err();
    let p = err.as_parse().expect("a parse error, not an I/O error");
    assert_eq!(p.line(), 3);
    assert_eq!(
        err.to_string(),
        "line 3: not UTF-8 text (the byte at column 25 is not)"
    );
}
