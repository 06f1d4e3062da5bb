//! The frame allocator, touches and faults, host frames, the kernel virtual
//! allocator, and the remaining requests.

use protocol::{AreaType, Error, FaultReason, FrameRun, PageState, PhysRange};

use super::*;
use crate::frame_alloc::FrameAllocator;
use crate::frames::{frame_number, BitmapFrameAllocator};

fn leak(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

#[test]
fn frame_allocator_marks_ram_minus_reserved() {
    let ram = [
        PhysRange {
            start: 0x1000,
            end: 0x5800,
        }, // frames 1..5 (5 is partial)
        PhysRange {
            start: 0x8800,
            end: 0xa000,
        }, // frame 9 (8 is partial)
    ];
    let reserved = [PhysRange {
        start: 0x2800,
        end: 0x3001,
    }]; // frames 2, 3
    let fa = BitmapFrameAllocator::new(leak(2), leak(2), 13, &ram, &reserved);
    let free: Vec<u64> = (0..13).filter(|&n| !fa.is_used(n)).collect();
    assert_eq!(free, vec![1, 4, 9]);
    assert_eq!(fa.free_frames(), 3);
    assert_eq!(fa.boot_free_frames(), 3);
    // Bits 13..16 of the last byte are 1.
    assert_eq!(fa.bitmap()[1] & 0xe0, 0xe0);
    assert_eq!(fa.bitmap()[0], !((1 << 1) | (1 << 4)));
}

#[test]
fn frame_allocator_alloc_free_contiguous() {
    let ram = [PhysRange {
        start: 0,
        end: 64 * 4096,
    }];
    let mut fa = BitmapFrameAllocator::new(leak(8), leak(8), 64, &ram, &[]);
    let mut got = Vec::new();
    while let Some(f) = fa.alloc() {
        got.push(f);
    }
    assert_eq!(got.len(), 64);
    assert_eq!(fa.free_frames(), 0);
    assert!(fa.alloc_contiguous(1).is_none());
    // Free every other frame: 32 free, no run of 2.
    for f in got.iter().step_by(2) {
        fa.free(*f).unwrap();
    }
    assert_eq!(fa.free(got[0]), Err(crate::frame_alloc::FreeError::NotUsed));
    assert_eq!(
        fa.free(frame(64)),
        Err(crate::frame_alloc::FreeError::OutOfRange)
    );
    assert_eq!(fa.free_frames(), 32);
    assert!(fa.alloc_contiguous(2).is_none());
    fa.free(got[1]).unwrap();
    assert_eq!(fa.alloc_contiguous(3), Some(got[0]));
    assert_eq!(fa.free_frames(), 30);
    // A bitmap too small for the frames named: cut to what it holds.
    let fa = BitmapFrameAllocator::new(leak(1), leak(1), 100, &ram, &[]);
    assert_eq!(fa.total_frames(), 8);
}

/// Back to the boot point: every frame taken or freed since is as it was,
/// the free count too, and the next frame is searched from the start; a
/// frame claimed after is taken, a used one refused.
#[test]
fn a_frame_used_at_the_boot_point_is_never_known_zero_after_a_return_to_it() {
    let ram = [PhysRange {
        start: 0,
        end: 64 * 4096,
    }];
    let mut fa =
        BitmapFrameAllocator::new(leak(8), leak(8), 64, &ram, &[]).with_zero_record(leak(8));
    let owned = fa.alloc().unwrap();
    fa.set_boot_point();
    // A page holds another frame and leaves it clean; the owner lets go
    // of its frame, and a page holds that one too and leaves it clean.
    let page = fa.alloc_zeroed(|_| {}).unwrap();
    fa.free(page).unwrap();
    fa.free(owned).unwrap();
    assert_eq!(fa.alloc_zeroed(|_| {}), Some(owned));
    fa.free(owned).unwrap();
    assert!(fa.is_zero(owned) && fa.is_zero(page));
    fa.back_to_boot_point();
    assert!(fa.is_used(0), "its boot-time owner's again");
    assert!(!fa.is_zero(owned), "which may write it");
    assert!(fa.is_zero(page), "a free frame stays known");
}

#[test]
fn frame_allocator_goes_back_to_its_boot_point() {
    let ram = [PhysRange {
        start: 0,
        end: 64 * 4096,
    }];
    let reserved = [PhysRange {
        start: 0,
        end: 2 * 4096,
    }]; // frames 0, 1
    let mut fa = BitmapFrameAllocator::new(leak(8), leak(8), 64, &ram, &reserved);
    let f2 = fa.alloc().unwrap();
    fa.set_boot_point();
    let boot: Vec<u8> = fa.bitmap().to_vec();
    assert_eq!((fa.boot_free_frames(), frame_number(f2)), (61, 2));
    let taken: Vec<_> = (0..20).filter_map(|_| fa.alloc()).collect();
    fa.free(taken[3]).unwrap();
    fa.free(f2).unwrap();
    assert!(fa.alloc_contiguous(5).is_some());
    fa.back_to_boot_point();
    assert_eq!(fa.bitmap(), &boot[..]);
    assert_eq!(fa.free_frames(), 61);
    assert_eq!(
        fa.alloc().map(frame_number),
        Some(3),
        "searched from the start"
    );
    fa.back_to_boot_point();
    assert_eq!(fa.claim(frame(40)), Ok(()));
    assert_eq!(fa.free_frames(), 60);
    assert_eq!(
        fa.claim(frame(40)),
        Err(crate::frame_alloc::ClaimError::Used)
    );
    assert_eq!(
        fa.claim(frame(64)),
        Err(crate::frame_alloc::ClaimError::OutOfRange)
    );
    fa.back_to_boot_point();
    assert_eq!((fa.bitmap(), fa.free_frames()), (&boot[..], 61));
}

#[test]
fn touches_and_faults() {
    let mut m = SimMachine::new(128);
    let map = |addr, pages, writable| Request::Map {
        addr,
        pages,
        writable,
        executable: false,
        contiguous: false,
        privilege: U,
    };
    assert_eq!(req(&mut m, map(0x1000, 2, true)), Response::Done);
    assert_eq!(req(&mut m, map(0x3000, 1, false)), Response::Done);
    // Fresh pages read as zeros.
    assert_eq!(
        req(
            &mut m,
            Request::Read {
                addr: 0x1000,
                len: 8192,
                privilege: U
            }
        ),
        Response::Checksum {
            checksum: protocol::pattern::checksum(&[0u8; 8192])
        }
    );
    // A write runs into the read-only page: every byte before it is written.
    let r = req(
        &mut m,
        Request::Write {
            addr: 0x1ffd,
            len: 0x3000,
            seed: 5,
            privilege: U,
        },
    );
    assert_eq!(
        r,
        Response::Fault {
            addr: 0x3000,
            write: true,
            reason: FaultReason::ReadOnly
        }
    );
    assert_reads_pattern(&mut m, 5, 0x1ffd, 0x1003);
    // Read-only pages read fine; unusable ones fault at the first byte.
    let r = req(
        &mut m,
        Request::Read {
            addr: 0x3ff0,
            len: 0x20,
            privilege: U,
        },
    );
    assert_eq!(
        r,
        Response::Fault {
            addr: 0x4000,
            write: false,
            reason: FaultReason::Unusable
        }
    );
    let r = req(
        &mut m,
        Request::Write {
            addr: 0x5008,
            len: 1,
            seed: 0,
            privilege: U,
        },
    );
    assert_eq!(
        r,
        Response::Fault {
            addr: 0x5008,
            write: true,
            reason: FaultReason::Unusable
        }
    );
    // Allocate-on-write pages are allocated by reads too, zero-filled.
    req(
        &mut m,
        Request::Convert {
            addr: 0x10000,
            pages: 2,
            to: AreaType::UsableRam,
            privilege: U,
        },
    );
    assert_eq!(
        req(
            &mut m,
            Request::Read {
                addr: 0x10ff0,
                len: 0x20,
                privilege: U
            }
        ),
        Response::Checksum {
            checksum: protocol::pattern::checksum(&[0u8; 0x20])
        }
    );
    assert_eq!(stats(&mut m).faults_resolved, 2);
    check(&mut m);
    // The fault handler on its own.
    assert_eq!(m.vmm.handle_fault(0x3000, true), Err(FaultReason::ReadOnly));
    assert_eq!(m.vmm.handle_fault(0x3000, false), Ok(()));
    assert_eq!(
        m.vmm.handle_fault(0x0000_8000_0000_0000, false),
        Err(FaultReason::Unusable)
    );
    assert_eq!(
        m.vmm.handle_fault(0xffff_8000_0000_0000, false),
        Err(FaultReason::Unusable)
    );
    assert_eq!(
        m.vmm.handle_fault(0xffff_ffff_8000_0000, true),
        Err(FaultReason::Unusable)
    );
    // Unmap then map again: the new frames are zeroed.
    req(
        &mut m,
        Request::Write {
            addr: 0x1000,
            len: 0x1000,
            seed: 1,
            privilege: U,
        },
    );
    assert_eq!(
        req(
            &mut m,
            Request::Unmap {
                addr: 0x1000,
                pages: 3,
                privilege: U
            }
        ),
        Response::Done
    );
    assert_eq!(req(&mut m, map(0x1000, 1, true)), Response::Done);
    assert_eq!(
        req(
            &mut m,
            Request::Read {
                addr: 0x1000,
                len: 4096,
                privilege: U
            }
        ),
        Response::Checksum {
            checksum: protocol::pattern::checksum(&[0u8; 4096])
        }
    );
    reset_and_check(&mut m);
}

#[test]
fn kernel_pages_have_no_user_bit_and_contiguous_maps_are_contiguous() {
    let mut m = SimMachine::new(128);
    let k = 0xffff_c200_0000_0000u64;
    let r = req(
        &mut m,
        Request::Map {
            addr: k,
            pages: 5,
            writable: true,
            executable: false,
            contiguous: true,
            privilege: K,
        },
    );
    assert_eq!(r, Response::Done);
    let Response::Pages(p) = req(
        &mut m,
        Request::Query {
            addr: k,
            pages: 5,
            privilege: K,
        },
    ) else {
        panic!()
    };
    let frames: Vec<u64> = p
        .iter()
        .map(|s| match s {
            PageState::PresentRam {
                writable: true,
                frame,
                ..
            } => *frame,
            o => panic!("{o:?}"),
        })
        .collect();
    assert!(
        frames.windows(2).all(|w| w[1] == w[0] + 4096),
        "{frames:x?}"
    );
    let (t, i) = m
        .vmm
        .tables_for_test()
        .leaf_slot(k & crate::validate::LINEAR_MASK)
        .unwrap();
    let raw = m.vmm.tables_for_test().read_entry(t, i);
    assert_eq!(raw & 0b111, 0b011, "P, W, no U");
    check(&mut m);
    reset_and_check(&mut m);
}

#[test]
fn host_frames() {
    let mut m = SimMachine::new(128);
    let boot = stats(&mut m).free_frames;
    let Response::Frames(runs) = req(
        &mut m,
        Request::AllocFrames {
            count: 10,
            contiguous: false,
            privilege: K,
        },
    ) else {
        panic!()
    };
    assert_eq!(runs.iter().map(|r| r.count).sum::<u64>(), 10);
    let Response::Frames(c) = req(
        &mut m,
        Request::AllocFrames {
            count: 4,
            contiguous: true,
            privilege: K,
        },
    ) else {
        panic!()
    };
    assert_eq!(c.len(), 1);
    let s = stats(&mut m);
    assert_eq!((s.host_frames, s.free_frames), (14, boot - 14));
    check(&mut m);
    // Free part of a run, then the rest; freeing again is refused.
    let FrameRun { start, .. } = c[0];
    let free = |frame, count| Request::FreeFrames {
        frame,
        count,
        privilege: K,
    };
    assert_eq!(req(&mut m, free(start + 4096, 2)), Response::Done);
    assert_eq!(
        req(&mut m, free(start, 2)),
        Response::Error(Error::NotOwned {
            frame: start + 4096
        })
    );
    assert_eq!(req(&mut m, free(start, 1)), Response::Done);
    assert_eq!(req(&mut m, free(start + 3 * 4096, 1)), Response::Done);
    assert_eq!(stats(&mut m).host_frames, 10);
    check(&mut m);
    // Mapped frames are not the host's.
    req(&mut m, Request::map_writable(0x1000, 1, U));
    let Some(PageState::PresentRam { frame, .. }) = (match req(
        &mut m,
        Request::Query {
            addr: 0x1000,
            pages: 1,
            privilege: U,
        },
    ) {
        Response::Pages(p) => p.first().copied(),
        _ => None,
    }) else {
        panic!()
    };
    assert_eq!(
        req(&mut m, free(frame, 1)),
        Response::Error(Error::NotOwned { frame })
    );
    reset_and_check(&mut m);
}

#[test]
fn kernel_virtual_allocator() {
    let mut m = SimMachine::new(64);
    let base = crate::layout::VALLOC_START;
    let valloc = |pages| Request::Valloc {
        pages,
        privilege: K,
    };
    let vfree = |addr, pages| Request::Vfree {
        addr,
        pages,
        privilege: K,
    };
    assert_eq!(req(&mut m, valloc(3)), Response::Valloc { addr: base });
    assert_eq!(
        req(&mut m, valloc(2)),
        Response::Valloc {
            addr: base + 3 * 4096
        }
    );
    // Give back the middle of both runs: the hole is found again.
    assert_eq!(req(&mut m, vfree(base + 2 * 4096, 2)), Response::Done);
    assert_eq!(stats(&mut m).valloc_pages, 3);
    assert_eq!(
        req(&mut m, valloc(3)),
        Response::Valloc {
            addr: base + 5 * 4096
        }
    );
    assert_eq!(
        req(&mut m, valloc(2)),
        Response::Valloc {
            addr: base + 2 * 4096
        }
    );
    assert_eq!(
        req(&mut m, vfree(base + 6 * 4096, 3)),
        Response::Error(Error::InvalidState {
            addr: base + 8 * 4096
        })
    );
    // The whole region, once free.
    req(&mut m, Request::Reset { privilege: K });
    let all = crate::layout::VALLOC_PAGES;
    assert_eq!(req(&mut m, valloc(all)), Response::Valloc { addr: base });
    assert_eq!(
        req(&mut m, valloc(1)),
        Response::Error(Error::NoVirtualSpace)
    );
    assert_eq!(
        req(&mut m, vfree(base + (all - 1) * 4096, 2)),
        Response::Error(Error::InvalidState {
            addr: base + all * 4096
        })
    );
    assert_eq!(req(&mut m, vfree(base, all)), Response::Done);
    // Valloc maps nothing and needs no frames.
    assert_eq!(stats(&mut m).free_frames, stats(&mut m).boot_free_frames);
    reset_and_check(&mut m);
}

#[test]
fn hello_ping_stats_and_panic() {
    let mut m = SimMachine::new(64);
    let Response::Hello(h) = req(&mut m, Request::Hello) else {
        panic!()
    };
    assert_eq!(h.protocol_version, protocol::PROTOCOL_VERSION);
    assert_eq!(h.boot_free_frames, stats(&mut m).boot_free_frames);
    assert!(h.boot_reserved.contains(&m.vmm.metadata_range()));
    assert_eq!(
        req(&mut m, Request::Ping { nonce: 77 }),
        Response::Pong { nonce: 77 }
    );
    let s = stats(&mut m);
    assert_eq!(s.total_frames, 64);
    assert_eq!(s.free_frames, s.boot_free_frames);
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        req(&mut m, Request::Panic { privilege: K });
    }))
    .unwrap_err();
    assert_eq!(e.downcast_ref::<&str>(), Some(&"panic requested by host"));
}

#[test]
fn vmm_can_live_in_a_static_lock() {
    fn send_static<T: Send + 'static>() {}
    send_static::<crate::Vmm<crate::sim::SimMemory>>();
    send_static::<BitmapFrameAllocator>();
}

#[test]
fn sim_views_of_a_frame_agree() {
    let mut mem = crate::sim::SimMemory::new(4);
    mem.frame_bytes(frame(2))[8..16].copy_from_slice(&0x1234_5003u64.to_le_bytes());
    assert_eq!(pte::raw(&mem.table(frame(2))[1]), 0x1234_5003);
    pte::set_raw(&mut mem.table(frame(2))[511], 0xdead_b000);
    assert_eq!(
        mem.frame_bytes(frame(2))[4088..4096],
        0xdead_b000u64.to_le_bytes()
    );
    assert!(mem.table(frame(3)).is_empty());
}
