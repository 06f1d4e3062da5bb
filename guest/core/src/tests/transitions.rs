//! Every transition of the seed's two convert functions, one page at a time
//! and over ranges crossing the 2 MiB, 1 GiB and 512 GiB table boundaries.

use protocol::{AreaType, Error, PageState};

use super::*;

const F: PhysFrame = PhysFrame::containing_address(PhysAddr::new_truncate(0));

/// The six page states of the seed (present RAM three times: writable,
/// read-only, and executable, which is read-only too).
fn sources() -> Vec<Pte> {
    vec![
        Pte::PresentMmap {
            frame: F,
            writable: false,
            private: false,
        },
        Pte::NotPresentMmap { file: 3, page: 77 },
        Pte::PresentRam {
            frame: F,
            writable: true,
            executable: false,
        },
        Pte::PresentRam {
            frame: F,
            writable: false,
            executable: false,
        },
        Pte::PresentRam {
            frame: F,
            writable: false,
            executable: true,
        },
        Pte::AllocOnWrite,
        Pte::OnSwap { slot: 12 },
        Pte::Unusable,
        Pte::PinnedRam {
            frame: F,
            writable: true,
        },
        Pte::PinnedRam {
            frame: F,
            writable: false,
        },
        Pte::PinnedAllocOnWrite,
    ]
}

/// The three target area types of `Convert`.
const TARGETS: [AreaType; 3] = [AreaType::UsableRam, AreaType::Unusable, AreaType::PinnedRam];

/// What the seed's functions make of `s` (frames ignored).
fn expected(s: Pte, to: AreaType) -> Pte {
    match to {
        AreaType::Unusable => Pte::Unusable,
        AreaType::UsableRam => match s {
            Pte::PresentMmap { frame, .. } => Pte::PresentRam {
                frame,
                writable: true,
                executable: false,
            },
            Pte::NotPresentMmap { .. } | Pte::Unusable => Pte::AllocOnWrite,
            Pte::PinnedRam { frame, writable } => Pte::PresentRam {
                frame,
                writable,
                executable: false,
            },
            Pte::PinnedAllocOnWrite => Pte::AllocOnWrite,
            other => other,
        },
        AreaType::PinnedRam => match s {
            Pte::PresentMmap { frame, .. } => Pte::PinnedRam {
                frame,
                writable: true,
            },
            Pte::OnSwap { .. } => Pte::PinnedRam {
                frame: F,
                writable: true,
            },
            Pte::NotPresentMmap { .. } | Pte::Unusable | Pte::AllocOnWrite => {
                Pte::PinnedAllocOnWrite
            }
            // Code stays code.
            Pte::PresentRam {
                executable: true, ..
            } => s,
            Pte::PresentRam {
                frame, writable, ..
            } => Pte::PinnedRam { frame, writable },
            other => other,
        },
    }
}

fn strip(p: Pte) -> Pte {
    match p {
        Pte::PresentRam {
            writable,
            executable,
            ..
        } => Pte::PresentRam {
            frame: F,
            writable,
            executable,
        },
        Pte::PinnedRam { writable, .. } => Pte::PinnedRam { frame: F, writable },
        Pte::PresentMmap {
            writable, private, ..
        } => Pte::PresentMmap {
            frame: F,
            writable,
            private,
        },
        // Slots are the store's choice.
        Pte::OnSwap { .. } => Pte::OnSwap { slot: 0 },
        o => o,
    }
}

#[test]
fn each_transition_of_the_three_targets() {
    for to in TARGETS {
        for s in sources() {
            let mut m = SimMachine::new(128);
            let addr = 0x1234_5000;
            m.vmm.set_state_for_test(addr, s, 0x5a).unwrap();
            let before = m.vmm.page_state(addr);
            let flushes = m.vmm.mem().flushed.len();
            convert(&mut m, addr, 1, to);
            let after = m.vmm.page_state(addr);
            assert_eq!(strip(after), strip(expected(s, to)), "{s:?} -> {to:?}");
            // Frames and data are kept by conversion to usable or pinned RAM.
            if let (Some(f0), AreaType::UsableRam | AreaType::PinnedRam) = (before.frame(), to) {
                assert_eq!(after.frame(), Some(f0), "same frame");
                assert!(
                    m.vmm.mem().frame_bytes(f0).iter().all(|&b| b == 0x5a),
                    "same data"
                );
            }
            // A swapped page converted to pinned RAM has its data back.
            if let (Pte::OnSwap { .. }, AreaType::PinnedRam) = (before, to) {
                let f = after.frame().expect("present");
                assert!(m.vmm.mem().frame_bytes(f).iter().all(|&b| b == 0x5a));
            }
            // A changed present entry was flushed.
            let changed = before != after;
            let flushed = m.vmm.mem().flushed[flushes..]
                .iter()
                .any(|p| p.start_address().as_u64() == addr);
            if before.is_present() && changed {
                assert!(flushed, "{s:?} -> {to:?} not flushed");
            }
            check(&mut m);
            reset_and_check(&mut m);
        }
    }
}

#[test]
fn unusable_frees_frames_and_tables() {
    for s in sources() {
        let mut m = SimMachine::new(128);
        let boot = stats(&mut m).boot_free_frames;
        m.vmm.set_state_for_test(0x5000, s, 1).unwrap();
        convert(&mut m, 0x5000, 1, AreaType::Unusable);
        assert_eq!(stats(&mut m).free_frames, boot, "{s:?}");
        assert_eq!(stats(&mut m).page_table_frames, 0);
        check(&mut m);
    }
}

#[test]
fn transitions_across_table_boundaries() {
    let boundaries = [
        2u64 << 20,
        1 << 30,
        512 << 30,
        3 * (512u64 << 30),
        (1 << 47) - sources().len() as u64 * 4096, // the range ends at the top of user space
        0xffff_c100_0000_0000,                     // a PML4 boundary in kernel space
    ];
    for b in boundaries {
        for to in TARGETS {
            let mut m = SimMachine::new(256);
            let srcs = sources();
            let n = srcs.len() as u64 * 2;
            let start = b - (n / 2) * 4096;
            for (i, s) in srcs.iter().chain(srcs.iter()).enumerate() {
                m.vmm
                    .set_state_for_test(start + i as u64 * 4096, *s, u8::try_from(i).unwrap())
                    .unwrap();
            }
            check(&mut m);
            convert(&mut m, start, n, to);
            check(&mut m);
            for (i, s) in srcs.iter().chain(srcs.iter()).enumerate() {
                let a = start + i as u64 * 4096;
                assert_eq!(
                    strip(m.vmm.page_state(a)),
                    strip(expected(*s, to)),
                    "{a:#x}"
                );
            }
            // Converting twice changes nothing more.
            let snap = snapshot(&mut m);
            convert(&mut m, start, n, to);
            assert_eq!(snap, snapshot(&mut m));
            reset_and_check(&mut m);
        }
    }
}

#[test]
fn unmap_applies_to_every_non_unusable_state() {
    for s in sources() {
        let mut m = SimMachine::new(128);
        m.vmm.set_state_for_test(0x40_0000, s, 1).unwrap();
        let r = req(
            &mut m,
            Request::Unmap {
                addr: 0x40_0000,
                pages: 1,
                privilege: U,
            },
        );
        if s == Pte::Unusable {
            assert_eq!(r, Response::Error(Error::InvalidState { addr: 0x40_0000 }));
        } else {
            assert_eq!(r, Response::Done, "{s:?}");
            assert_eq!(
                req(
                    &mut m,
                    Request::Query {
                        addr: 0x40_0000,
                        pages: 1,
                        privilege: U
                    }
                ),
                Response::Pages(vec![PageState::Unusable])
            );
        }
        check(&mut m);
        reset_and_check(&mut m);
    }
}
