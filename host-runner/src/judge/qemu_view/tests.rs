use oracle::checker::{PresentKind, Step};
use oracle::{Translation, Walk};

use super::*;
use crate::test_fixtures::hello;

fn translation(virt: u64, frame: u64, writable: bool) -> Translation {
    let step = Step {
        table: 0x1000,
        index: 0,
        raw: 0,
    };
    Translation {
        virt,
        frame,
        writable,
        executable: false,
        kind: PresentKind::Ram,
        steps: [step; 4],
    }
}

/// `t`, executable (NX clear).
fn executable(t: Translation) -> Translation {
    Translation {
        executable: true,
        ..t
    }
}

const REGISTERS: &str = "RAX=0000000000000000 RBX=0000000000000001\n\
    CR0=80010011 CR2=0000000012345000 CR3=0000000000001018 CR4=00000620\n";

#[test]
fn cr3_is_read_and_compared() {
    assert_eq!(parse_cr3(REGISTERS), Some(0x1000));
    assert_eq!(check_cr3(REGISTERS, 0, 0x1000), None);
    let m = check_cr3(REGISTERS, 3, 0x2000).unwrap();
    assert_eq!(
        m,
        QemuMismatch::Cr3 {
            cr3: 0x1000,
            space: 3,
            root: 0x2000
        }
    );
    assert!(m.to_string().contains("CR3 is 0x1000"), "{m}");
    assert!(m.to_string().contains("address space, 3,"), "{m}");
    assert!(matches!(
        check_cr3("no registers", 0, 0x1000),
        Some(QemuMismatch::NoCr3 { .. })
    ));
}

const TLB: &str = "0000000012345000: 0000000000abc000 X--DA--UW\n\
    0000000012346000: 0000000000abd000 ----A--U-\n\
    ffff800000000000: 0000000000000000 X-PDA---W\n\
    0000c08000001000: 0000000000777000 X--DA---W\n\
    garbage line\n";

#[test]
fn tlb_lines_parse_with_sign_extension() {
    let t = parse_tlb(TLB);
    assert_eq!(t.len(), 4);
    assert_eq!(
        t[0],
        TlbEntry {
            virt: 0x1234_5000,
            phys: 0xabc000,
            writable: true,
            executable: false,
            user: true,
            large: false
        }
    );
    assert!(!t[1].writable && t[1].executable);
    assert!(t[2].large);
    assert_eq!(t[3].virt, 0xffff_c080_0000_1000);
}

#[test]
fn agreeing_views_pass_and_each_difference_is_named() {
    let h = hello();
    let tlb = parse_tlb(TLB);
    let mut walk = Walk {
        translations: vec![
            translation(0x1234_5000, 0xabc000, true),
            executable(translation(0x1234_6000, 0xabd000, false)),
            translation(0xffff_c080_0000_1000, 0x777000, true),
        ],
        ..Walk::default()
    };
    // The direct map (slot 256) is not managed: its huge page is ignored.
    assert_eq!(compare_tlb(&tlb, &walk.translations, &h, 10), vec![]);

    // NX differs: the walk's data page is executable in QEMU's MMU.
    let mut nx = walk.clone();
    nx.translations[1].executable = false;
    let m = compare_tlb(&tlb, &nx.translations, &h, 10);
    assert!(
        matches!(
            m[..],
            [QemuMismatch::Differs {
                virt: 0x1234_6000,
                walk_executable: false,
                qemu_executable: true,
                ..
            }]
        ),
        "{m:?}"
    );
    assert!(m[0].to_string().contains("executable true"), "{}", m[0]);

    walk.translations[1] = translation(0x1234_6000, 0xabe000, false);
    walk.translations.push(translation(0x5000, 0x9000, true));
    walk.translations.remove(2);
    let m = compare_tlb(&tlb, &walk.translations, &h, 10);
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(matches!(
        m[0],
        QemuMismatch::Differs {
            virt: 0x1234_6000,
            qemu_phys: 0xabd000,
            ..
        }
    ));
    assert!(matches!(
        m[1],
        QemuMismatch::MissingInQemu { virt: 0x5000, .. }
    ));
    assert!(matches!(
        m[2],
        QemuMismatch::OnlyInQemu {
            virt: 0xffff_c080_0000_1000,
            ..
        }
    ));
    assert_eq!(compare_tlb(&tlb, &walk.translations, &h, 1).len(), 1);
    let text = m[2].to_string();
    assert!(
        text.starts_with("invariant 7:") && text.contains("0xffffc08000001000"),
        "{text}"
    );
}

#[test]
fn huge_page_in_managed_space_is_reported() {
    let tlb = parse_tlb("0000000000200000: 0000000000400000 ---DAP-UW\n");
    // flags: X G P D A C T U W — P is the third.
    let tlb2 = parse_tlb("0000000000200000: 0000000000400000 --PDA--UW\n");
    assert!(!tlb[0].large);
    assert!(tlb2[0].large);
    let m = compare_tlb(&tlb2, &[], &hello(), 10);
    assert!(matches!(
        m[0],
        QemuMismatch::LargePage { virt: 0x200000, .. }
    ));
}

#[test]
fn a_line_spaced_otherwise_parses_the_same() {
    let fixed = parse_tlb("0000000012345000: 0000000000abc000 ---DA--UW\r\n");
    let free = parse_tlb("  12345000:   abc000    ---DA--UW\n");
    assert_eq!(fixed.len(), 1);
    assert_eq!(fixed, free);
    // A bad digit in the fixed form is not a mapping.
    assert!(parse_tlb("00000000123g5000: 0000000000abc000 ---DA--UW\n").is_empty());
}

#[test]
fn views_in_any_order_give_the_same_mismatches() {
    let h = hello();
    // QEMU maps even pages 0..2000 (page 1000 to another frame); the walk
    // has every page 1..1999 that is a multiple of 3.
    let text: String = (0..2000u64)
        .filter(|p| p % 2 == 0)
        .map(|p| {
            let frame = if p == 1000 { 0x9_9999 } else { p };
            format!(
                "{:016x}: {:016x} X---A--UW\n",
                0x4000_0000 + p * 4096,
                frame * 4096
            )
        })
        .collect();
    let tlb = parse_tlb(&text);
    assert_eq!(tlb.len(), 1000);
    let mut walk = Walk {
        translations: (1..2000u64)
            .filter(|p| p % 3 == 0)
            .map(|p| translation(0x4000_0000 + p * 4096, p * 4096, true))
            .collect(),
        ..Walk::default()
    };
    let sorted = compare_tlb(&tlb, &walk.translations, &h, usize::MAX);
    // Pages 3, 9, ... (odd multiples of 3) are missing in QEMU; page 1000
    // is not a multiple of 3, so it is only in QEMU, like every even page
    // that is not a multiple of 6.
    let missing = sorted
        .iter()
        .filter(|m| matches!(m, QemuMismatch::MissingInQemu { .. }))
        .count();
    let only = sorted
        .iter()
        .filter(|m| matches!(m, QemuMismatch::OnlyInQemu { .. }))
        .count();
    assert_eq!((missing, only), (333, 667), "{sorted:?}");
    walk.translations.reverse();
    let mut tlb_rev = tlb.clone();
    tlb_rev.reverse();
    let mut reversed = compare_tlb(&tlb_rev, &walk.translations, &h, usize::MAX);
    // Walk order is kept for the walk's mismatches.
    reversed[..333].reverse();
    assert_eq!(reversed, sorted);
}
