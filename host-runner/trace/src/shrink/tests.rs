//! The candidates' and the whole-trace changes' tests.

use super::*;

#[test]
fn a_space_is_renumbered_in_every_operation_that_names_it() {
    let k = Privilege::Kernel;
    let ops = vec![
        Op::CreateSpace { privilege: k },
        Op::Share {
            addr: 0,
            pages: 1,
            space: 3,
            to: 0,
            privilege: k,
        },
        Op::SwitchSpace {
            space: 2,
            privilege: k,
        },
        Op::DestroySpace {
            space: 3,
            privilege: k,
        },
    ];
    let out = renumber_space(&ops, 3, 1).expect("two operations name space 3");
    assert!(matches!(out[1], Op::Share { space: 1, .. }));
    assert!(matches!(out[2], Op::SwitchSpace { space: 2, .. }));
    assert!(matches!(out[3], Op::DestroySpace { space: 1, .. }));
    assert_eq!(out[0], ops[0]);
    // One operation alone is the per-operation candidates' job.
    assert_eq!(renumber_space(&ops, 2, 1), None);
}

#[test]
fn counts_and_addresses_only_get_smaller() {
    let alloc = Op::AllocFrames {
        count: 1 << 36,
        contiguous: false,
        privilege: Privilege::Kernel,
    };
    assert_eq!(first_counts(&alloc, 1 << 36), vec![1, MAX_ALLOC_FRAMES + 1]);
    assert_eq!(first_counts(&alloc, 4097), vec![1]);
    assert_eq!(first_counts(&alloc, 1), Vec::<u64>::new());
    assert_eq!(bisect(1, 8), Some(4));
    assert_eq!(bisect(4, 8), Some(6));
    assert_eq!(bisect(6, 7), None);
    assert_eq!(bisect(0, 1), None);
    assert_eq!(
        smaller_addrs(0x4020_3000),
        vec![0, 0x4000_0000, 0x4020_0000]
    );
    assert_eq!(
        smaller_addrs(0xffff_c080_0000_1234),
        vec![
            0xffff_8000_0000_0000,
            0xffff_c080_0000_0000,
            0xffff_c080_0000_1000
        ]
    );
    let map = Op::Map {
        addr: 0x20_1000,
        pages: 3,
        writable: true,
        executable: false,
        contiguous: true,
        privilege: Privilege::User,
    };
    let whats: Vec<String> = candidates(&map).into_iter().map(|c| c.what).collect();
    assert_eq!(
        whats,
        [
            "contiguous → false",
            "writable → false",
            "as → kernel",
            "addr → 0x0",
            "addr → 0x200000"
        ]
    );
    let switch = Op::SwitchSpace {
        space: 7,
        privilege: Privilege::Kernel,
    };
    let whats: Vec<String> = candidates(&switch).into_iter().map(|c| c.what).collect();
    assert_eq!(whats, ["space → 1", "space → 6"]);
    let destroy = Op::DestroySpace {
        space: 2,
        privilege: Privilege::Kernel,
    };
    let whats: Vec<String> = candidates(&destroy).into_iter().map(|c| c.what).collect();
    assert_eq!(whats, ["space → 1"]);
    assert!(candidates(&Op::SwitchSpace {
        space: 1,
        privilege: Privilege::Kernel
    })
    .is_empty());
}
