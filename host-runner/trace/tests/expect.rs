//! The `expect` forms of version-2 answers (`evicted`, `kmalloc`,
//! `scavenged`) and how a `Reclaimed` answer is matched: written and read
//! back, matched, and refused with line and field when malformed.

use protocol::{Error, Reclaim, Response};
use trace::expect::AnswerKind;
use trace::{parse_str, Expect};

const HEADER: &str = "{\"format\":\"vmmfuzz-trace\",\"version\":2}\n";

/// The expectation of a one-line trace whose line expects `json`.
fn read(json: &str) -> Result<Expect, trace::TraceError> {
    let t = parse_str(&format!("{HEADER}{{\"op\":\"stats\",\"expect\":{json}}}\n"))?;
    Ok(t.entries[0].expect.clone().expect("an expect"))
}

fn reclaimed(response: Response) -> Response {
    Response::Reclaimed {
        events: vec![
            Reclaim::Swapped {
                addr: 0x40_0000,
                slot: 0,
            },
            Reclaim::Dropped { addr: 0x40_1000 },
        ],
        response: Box::new(response),
    }
}

#[test]
fn v2_forms_are_written_and_read_back() {
    let cases = [
        (
            Expect::Evicted {
                swapped: Some(2),
                dropped: Some(0),
            },
            r#"{"evicted":{"swapped":2,"dropped":0}}"#,
        ),
        (
            Expect::Evicted {
                swapped: None,
                dropped: Some(1),
            },
            r#"{"evicted":{"dropped":1}}"#,
        ),
        (
            Expect::Kmalloc(0xffff_c000_0100_0000),
            r#"{"kmalloc":"0xffffc00001000000"}"#,
        ),
        (Expect::Scavenged(3), r#"{"scavenged":3}"#),
        (Expect::Kind(AnswerKind::Reclaimed), r#""reclaimed""#),
    ];
    for (x, text) in cases {
        assert_eq!(x.to_json(), text);
        assert_eq!(read(text).unwrap(), x, "{text}");
    }
    // Numbers in any spelling, as everywhere.
    assert_eq!(
        read(r#"{"kmalloc":18446673704982151168}"#).unwrap(),
        Expect::Kmalloc(0xffff_c000_0100_0000)
    );
    assert_eq!(
        read(r#"{"evicted":{}}"#).unwrap(),
        Expect::Evicted {
            swapped: None,
            dropped: None
        }
    );
}

#[test]
fn v2_answers_read_as_their_exact_form() {
    let answers = [
        Response::Evicted {
            swapped: 4,
            dropped: 1,
        },
        Response::Kmalloc {
            addr: 0xffff_c000_0100_0010,
        },
        Response::Scavenged { pages: 2 },
    ];
    for a in &answers {
        let x = Expect::exact(a);
        assert!(x.matches(a), "{a:?}");
        assert_eq!(read(&x.to_json()).unwrap(), x);
    }
    assert_eq!(
        Expect::exact(&answers[0]).to_json(),
        r#"{"evicted":{"swapped":4,"dropped":1}}"#
    );
    let evicted = |s, d| Expect::Evicted {
        swapped: s,
        dropped: d,
    };
    assert!(evicted(Some(4), None).matches(&answers[0]));
    assert!(!evicted(Some(3), Some(1)).matches(&answers[0]));
    assert!(!evicted(None, Some(0)).matches(&answers[0]));
    assert!(!Expect::Kmalloc(0xffff_c000_0100_0000).matches(&answers[1]));
    assert!(!Expect::Scavenged(3).matches(&answers[2]));
    assert!(!Expect::Scavenged(2).matches(&answers[0]));
}

#[test]
fn reclaimed_answers_are_matched_by_their_plain_answer() {
    let evict = reclaimed(Response::Evicted {
        swapped: 1,
        dropped: 1,
    });
    // The events are left out: the exact form is the plain answer's.
    assert_eq!(
        Expect::exact(&evict),
        Expect::Evicted {
            swapped: Some(1),
            dropped: Some(1)
        }
    );
    assert!(Expect::exact(&evict).matches(&evict));
    assert!(Expect::Kind(AnswerKind::Evicted).matches(&evict));
    assert!(Expect::Ok.matches(&evict));
    assert!(Expect::Any.matches(&evict));
    assert!(Expect::Kind(AnswerKind::Reclaimed).matches(&evict));
    // "reclaimed" wants the events: a plain answer does not have them.
    assert!(!Expect::Kind(AnswerKind::Reclaimed).matches(&Response::Done));
    assert!(Expect::Kind(AnswerKind::Done).matches(&reclaimed(Response::Done)));
    // An error after reclaiming is still an error.
    let oom = reclaimed(Response::Error(Error::OutOfMemory));
    assert!(!Expect::Ok.matches(&oom));
    assert!(!Expect::Kind(AnswerKind::Done).matches(&oom));
    assert!(read(r#"{"error":"out_of_memory"}"#).unwrap().matches(&oom));
}

#[test]
fn malformed_v2_forms_name_line_and_field() {
    let cases = [
        (
            r#"{"evicted":3}"#,
            "expect.evicted",
            "expected a JSON object",
        ),
        (
            r#"{"evicted":{"swapped":"two"}}"#,
            "expect.evicted.swapped",
            "hex string",
        ),
        (
            r#"{"evicted":{"kept":1}}"#,
            "expect.evicted.kept",
            "unknown field (expected one of: swapped, dropped)",
        ),
        (r#"{"kmalloc":true}"#, "expect.kmalloc", "hex string"),
        (
            r#"{"kmalloc":"0xffffc000","addr":"0x1"}"#,
            "expect.addr",
            "unknown field",
        ),
        (r#"{"scavenged":-1}"#, "expect.scavenged", "got -1"),
    ];
    for (json, field, words) in cases {
        let err = read(json).unwrap_err();
        let p = err.as_parse().expect("a parse error");
        assert_eq!((p.line(), p.field()), (2, Some(field)), "{json}: {err}");
        assert!(err.to_string().contains(words), "{json}: {err}");
    }
}
