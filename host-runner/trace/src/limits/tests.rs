use super::*;
use crate::format::parse_str;

/// A trace of `ops` stats operations whose header has these fields.
fn trace(fields: &str, ops: usize) -> String {
    let mut t = format!("{{\"format\":\"vmmfuzz-trace\",\"version\":4{fields}}}\n");
    t.push_str(&"{\"op\":\"stats\"}\n".repeat(ops));
    t
}

/// The error reading a trace with this header: its line, field and text.
fn refused(fields: &str, ops: usize) -> (usize, String, String) {
    let err = parse_str(&trace(fields, ops)).expect_err("refused");
    let p = err.as_parse().expect("a parse error");
    (
        p.line(),
        p.field().unwrap_or("").to_string(),
        err.to_string(),
    )
}

fn accepted(fields: &str, ops: usize) {
    if let Err(e) = parse_str(&trace(fields, ops)) {
        panic!("{fields}: {e}");
    }
}

#[test]
fn ram_mib_from_the_guest_minimum_to_the_direct_map() {
    accepted(&format!(",\"ram_mib\":{MIN_RAM_MIB}"), 1);
    accepted(&format!(",\"ram_mib\":{MAX_RAM_MIB}"), 1);
    for bad in [0, 1, 3, MIN_RAM_MIB - 1, MAX_RAM_MIB + 1, u32::MAX] {
        let (line, field, text) = refused(&format!(",\"ram_mib\":{bad}"), 1);
        assert_eq!((line, field.as_str()), (1, "ram_mib"), "{text}");
        assert!(
            text.contains(&format!(
                "guest RAM of {bad} MiB is out of range: from 8 MiB"
            )),
            "{text}"
        );
    }
    assert_eq!(MIN_RAM_MIB, 8);
}

#[test]
fn file_pages_from_1_to_65536_without_overflow() {
    accepted(",\"files\":[{\"pages\":1,\"seed\":\"0x1\"}]", 1);
    accepted(",\"ram_mib\":1024,\"files\":[{\"pages\":65536}]", 1);
    for bad in ["0", "65537", "1000000000", "4611686018427387904"] {
        let (line, field, text) = refused(
            &format!(",\"files\":[{{\"pages\":1}},{{\"pages\":{bad}}}]"),
            1,
        );
        assert_eq!((line, field.as_str()), (1, "files[1].pages"), "{text}");
        assert!(text.contains("a file has from 1 to 65536 pages"), "{text}");
    }
    // The blob's size saturates rather than overflowing.
    let huge = [FileSpec {
        pages: u64::MAX,
        seed: 0,
    }];
    assert_eq!(files_blob_bytes(&huge), u64::MAX);
}

#[test]
fn at_most_255_files() {
    let files = |n: usize| {
        let one = "{\"pages\":1}";
        format!(",\"files\":[{}]", vec![one; n].join(","))
    };
    accepted(&files(MAX_FILES), 1);
    let (line, field, text) = refused(&files(MAX_FILES + 1), 1);
    assert_eq!((line, field.as_str()), (1, "files"), "{text}");
    assert!(text.contains("256 files: at most 255"), "{text}");
    let (_, field, _) = refused(&files(300), 1);
    assert_eq!(field, "files");
}

#[test]
fn files_fit_the_guest_ram() {
    // 600 pages and the header page: 2.35 MiB, rounded up to 3, plus 8.
    let files = ",\"files\":[{\"pages\":600}]";
    accepted(&format!(",\"ram_mib\":11{files}"), 1);
    let (line, field, text) = refused(&format!(",\"ram_mib\":10{files}"), 1);
    assert_eq!((line, field.as_str()), (1, "files"), "{text}");
    assert!(text.contains("give it at least 11 MiB"), "{text}");
    accepted(&format!(",\"ram_mib\":{FILES_MAX_RAM_MIB}{files}"), 1);
    let (_, field, text) = refused(&format!(",\"ram_mib\":{}{files}", FILES_MAX_RAM_MIB + 1), 1);
    assert_eq!(field, "ram_mib", "{text}");
    assert!(text.contains("at most 1024 MiB"), "{text}");
    // Without ram_mib the runner's RAM decides: checked before it boots.
    accepted(files, 1);
    assert!(check_ram_with_files(10, &crate::files_of_pages(&[600])).is_err());
    assert!(check_ram_with_files(8, &[]).is_ok());
}

#[test]
fn check_every_up_to_the_most_operations() {
    accepted(",\"check_every\":0", 1);
    accepted(&format!(",\"check_every\":{MAX_OPS}"), 1);
    let (line, field, text) = refused(&format!(",\"check_every\":{}", MAX_OPS + 1), 1);
    assert_eq!((line, field.as_str()), (1, "check_every"), "{text}");
    assert!(text.contains("at most 1000000"), "{text}");
}

#[test]
fn batches_from_1_to_max_batch() {
    let max = protocol::MAX_BATCH;
    accepted(&format!(",\"batches\":[{max},1]"), max + 1);
    let (line, field, text) = refused(&format!(",\"batches\":[1,{}]", max + 1), max + 2);
    assert_eq!((line, field.as_str()), (1, "batches[1]"), "{text}");
    assert!(text.contains("a batch has from 1 to 4096"), "{text}");
    let (_, field, _) = refused(",\"batches\":[0,1]", 1);
    assert_eq!(field, "batches[0]");
    // Sizes that do not add up to the operations: named at the header's line.
    let text = format!("# a comment first\n{}", trace(",\"batches\":[2]", 1));
    let err = parse_str(&text).unwrap_err();
    let p = err.as_parse().unwrap();
    assert_eq!((p.line(), p.field()), (2, Some("batches")), "{err}");
}

#[test]
fn weights_at_most_a_million_each() {
    accepted(
        &format!(",\"weights\":{{\"map\":{MAX_WEIGHT},\"unmap\":0}}"),
        1,
    );
    let (line, field, text) = refused(
        &format!(",\"weights\":{{\"map\":1,\"kfree\":{}}}", MAX_WEIGHT + 1),
        1,
    );
    assert_eq!((line, field.as_str()), (1, "weights.kfree"), "{text}");
    assert!(text.contains("a weight is at most 1000000"), "{text}");
}

#[test]
fn at_most_a_million_operations() {
    let mut text = trace("", MAX_OPS);
    accepted("", 0);
    assert_eq!(parse_str(&text).unwrap().len(), MAX_OPS);
    text.push_str("{\"op\":\"ping\",\"nonce\":1}\n");
    let err = parse_str(&text).unwrap_err();
    assert_eq!(err.as_parse().map(|p| p.line()), Some(MAX_OPS + 2));
    assert!(
        err.to_string().contains("a trace holds at most 1000000"),
        "{err}"
    );
}

#[test]
fn version_outside_those_read_is_refused() {
    let err = parse_str("{\"format\":\"vmmfuzz-trace\",\"version\":10}\n").unwrap_err();
    assert_eq!(err.as_parse().and_then(|p| p.field()), Some("version"));
    let err = parse_str("{\"format\":\"vmmfuzz-trace\",\"version\":0}\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("reads versions 1, 2, 3, 4, 5, 6, 7, 8 and 9"),
        "{err}"
    );
    let err = parse_str("{\"format\":\"vmmfuzz-trace\",\"version\":4294967296}\n").unwrap_err();
    assert_eq!(err.as_parse().and_then(|p| p.field()), Some("version"));
}
