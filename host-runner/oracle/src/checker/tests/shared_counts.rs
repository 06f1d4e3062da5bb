//! Shared counts checked incrementally: an unmap in the current space that
//! leaves its frame's count as it was is reported with the entries of the
//! other spaces that the count constrains, and a record left behind by the
//! last unmap is a leak; a file page's frame also mapped shared is
//! reported with both; frames shared otherwise than the model shares them
//! are reported though memory agrees with itself. The incremental check
//! says what the full one says.

use protocol::Request;

use super::assert_broken_among;
use super::shared::{both, frame_of, record_at, recorded, shared, switch, unmap, ADDR};
use crate::model::keys::tag;

#[test]
fn a_count_left_stale_by_an_unmap_in_the_current_space_names_the_other_spaces() {
    let mut s = shared();
    let mut checker = recorded(&mut s);
    let (f, _) = frame_of(&s, 0x1000);
    s.apply(unmap(0x9000, 1));
    // The guest forgot to count the mapping down.
    s.img.write_u64(record_at(&s, f), 1 << 62 | 4);
    let r = both(&mut s, &mut checker);
    super::assert_broken(
        &r,
        &[5],
        &format!(
            "shared frame {f:#x}: its frame-info record counts 4 mappings, but 3 present shared \
             entries name it: 0x1000, 0x5000 in space 1, 0x5000 in space 2"
        ),
    );
}

#[test]
fn a_record_left_by_the_last_unmap_is_a_leak() {
    let mut s = shared();
    let mut checker = recorded(&mut s);
    let (f, _) = frame_of(&s, 0x8000);
    s.apply(unmap(0x8000, 1));
    s.apply(switch(1));
    assert!(super::shared::incremental(&mut s, &mut checker).is_clean());
    s.apply(unmap(0x8000, 1));
    // The frame freed, its record kept.
    s.img.write_u64(record_at(&s, f), 1 << 62 | 1);
    let r = both(&mut s, &mut checker);
    super::assert_broken(
        &r,
        &[3],
        &format!(
            "frame {f:#x}'s frame-info record is 0x4000000000000001 (shared, count 1), but no \
             present shared entry names the frame (a shared frame or record leaked)"
        ),
    );
}

#[test]
fn frames_shared_otherwise_than_the_model_shares_them_are_reported() {
    let mut s = shared();
    let mut checker = recorded(&mut s);
    // Space 1's 0x6000 (sharing 0x2000's frame) made to map 0x1000's,
    // both records kept consistent with memory: only the model knows.
    let (f, _) = frame_of(&s, 0x1000);
    let (g, at) = frame_of(&s, tag(1, 0x6000));
    let e = s.img.read_u64(at);
    s.img.write_u64(at, (e & !ADDR) | f);
    s.img.write_u64(record_at(&s, f), 1 << 62 | 5);
    s.img.write_u64(record_at(&s, g), 1 << 62 | 1);
    let r = both(&mut s, &mut checker);
    assert_broken_among(
        &r,
        5,
        &format!("shared frame {f:#x}: 0x1000, 0x6000 in space 1 all map it, but the model shares them as 2 different frames"),
    );
    assert_broken_among(
        &r,
        5,
        &format!(
            "the model expects these pages to map one shared frame, but they map several: \
             0x2000 → {g:#x}, 0x6000 in space 1 → {f:#x}"
        ),
    );
}

#[test]
fn a_file_pages_frame_also_mapped_shared_is_reported_with_both() {
    let mut s = shared();
    s.apply(Request::MapFile {
        addr: 0x10_0000,
        pages: 1,
        file: 0,
        file_page: 1,
        privilege: super::shared::U,
    });
    s.apply(Request::Read {
        addr: 0x10_0000,
        len: 8,
        privilege: super::shared::U,
    });
    let mut checker = recorded(&mut s);
    let (file, _) = frame_of(&s, 0x10_0000);
    let (g, at) = frame_of(&s, tag(1, 0x6000));
    let e = s.img.read_u64(at);
    s.img.write_u64(at, (e & !ADDR) | file);
    s.img.set_used(g >> 12, false);
    let r = both(&mut s, &mut checker);
    assert_broken_among(
        &r,
        2,
        &format!(
            "frame {file:#x} is mapped shared at 0x6000 in space 1 and is also mapped at \
             0x100000 (data page)"
        ),
    );
    assert_broken_among(
        &r,
        5,
        &format!("frame {file:#x} is mapped shared at 0x6000 in space 1, but its frame-info record is 0x8000000000000001 (a file page's record)"),
    );
}

#[test]
fn a_record_with_both_high_bits_is_corrupt() {
    let mut s = shared();
    let mut checker = recorded(&mut s);
    let (own, _) = frame_of(&s, 0x3000);
    s.img.write_u64(record_at(&s, own), 3 << 62 | 1);
    let r = both(&mut s, &mut checker);
    super::assert_broken(
        &r,
        &[5],
        &format!("frame-info table at frame {own:#x}: corrupt record 0xc000000000000001"),
    );
}
