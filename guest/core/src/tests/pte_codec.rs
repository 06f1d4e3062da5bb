//! The one encode/decode pair, tested exhaustively over the low 12 bits
//! (every flag and software-bit combination) with frame/index patterns and
//! every high bit, in both halves.

use super::*;

/// Bit patterns for bits 12–51 and 52–63.
fn middles() -> Vec<u64> {
    let mut v = vec![
        0,
        pte::ADDR_MASK,
        0x1000,
        0x1234_5000,
        0x000f_ffff_ffff_f000,
    ];
    v.extend((12..52).map(|b| 1u64 << b));
    v
}

/// No-execute (bit 63).
const NX: u64 = 1 << 63;

#[test]
fn decode_then_encode_is_identity_on_every_valid_entry() {
    let mut valid = 0u64;
    for user in [true, false] {
        for low in 0..0x1000u64 {
            for mid in middles() {
                for high in std::iter::once(0).chain((52..64).map(|b| 1u64 << b)) {
                    let raw = low | mid | high;
                    let p = Pte::decode(raw, user);
                    if let Pte::Corrupt(r) = p {
                        assert_eq!(r, raw);
                        continue;
                    }
                    valid += 1;
                    let back = p.encode(user);
                    let ignored = if p.is_present() { pte::CPU_BITS } else { 0 };
                    assert_eq!(back, raw & !ignored, "raw {raw:#x} user {user} -> {p:?}");
                    assert_eq!(Pte::decode(back, user), p);
                    // The format's rules on valid entries.
                    if p.is_present() {
                        assert_eq!(raw & 0b100 != 0, user, "U bit");
                        assert_eq!(raw & ((1 << 3) | (1 << 4) | (1 << 7) | (1 << 8)), 0);
                        assert!(high == 0 || high == 1 << 63, "only NX above bit 51");
                        if high == 0 {
                            // NX clear: W^X, and never a file page.
                            assert!(
                                matches!(
                                    p,
                                    Pte::PresentRam {
                                        writable: false,
                                        executable: true,
                                        ..
                                    }
                                ),
                                "raw {raw:#x} -> {p:?}"
                            );
                        }
                    } else {
                        assert_eq!(raw & 1, 0);
                    }
                }
            }
        }
    }
    assert!(valid > 1000);
}

#[test]
fn encode_then_decode_is_identity_on_every_state() {
    let frames = [frame(0), frame(1), frame(0x12345), frame((1 << 40) - 1)];
    let mut states = vec![Pte::Unusable, Pte::AllocOnWrite, Pte::PinnedAllocOnWrite];
    for f in frames {
        for writable in [false, true] {
            states.push(Pte::PresentRam {
                frame: f,
                writable,
                executable: false,
            });
            states.push(Pte::PinnedRam { frame: f, writable });
            for private in [false, true] {
                states.push(Pte::PresentMmap {
                    frame: f,
                    writable,
                    private,
                });
            }
        }
    }
    for f in frames {
        states.push(Pte::PresentRam {
            frame: f,
            writable: false,
            executable: true,
        });
    }
    for idx in [0, 1, 0xabcde, pte::MAX_INDEX] {
        states.push(Pte::OnSwap { slot: idx });
        for file in [0u8, 1, 0x7f, 0xff] {
            states.push(Pte::NotPresentMmap { file, page: idx });
        }
    }
    for user in [true, false] {
        for &s in &states {
            let raw = s.encode(user);
            assert_eq!(Pte::decode(raw, user), s, "{s:?} -> {raw:#x}");
            // Accessed and dirty set by the CPU do not change a present state.
            if s.is_present() {
                assert_eq!(Pte::decode(raw | pte::CPU_BITS, user), s);
                assert!(
                    matches!(Pte::decode(raw, !user), Pte::Corrupt(_)),
                    "U bit checked"
                );
            }
        }
    }
}

#[test]
fn encodings_match_the_format_table() {
    let f = frame(0x42);
    assert_eq!(Pte::Unusable.encode(true), 0);
    assert_eq!(
        Pte::PresentRam {
            frame: f,
            writable: true,
            executable: false,
        }
        .encode(true),
        NX | 0x42000 | 0x200 | 0b111
    );
    assert_eq!(
        Pte::PresentRam {
            frame: f,
            writable: false,
            executable: false,
        }
        .encode(false),
        NX | 0x42000 | 0x200 | 0b001
    );
    assert_eq!(
        Pte::PresentRam {
            frame: f,
            writable: false,
            executable: true,
        }
        .encode(true),
        0x42000 | 0x200 | 0b101
    );
    assert_eq!(
        Pte::PresentMmap {
            frame: f,
            writable: false,
            private: false
        }
        .encode(true),
        NX | 0x42000 | 0x400 | 0b101
    );
    assert_eq!(
        Pte::PresentMmap {
            frame: f,
            writable: true,
            private: true
        }
        .encode(true),
        NX | 0x42000 | 0x600 | 0b111
    );
    assert_eq!(Pte::AllocOnWrite.encode(true), 0b0010);
    assert_eq!(Pte::PinnedAllocOnWrite.encode(false), 0b1000);
    assert_eq!(
        Pte::PinnedRam {
            frame: f,
            writable: true
        }
        .encode(true),
        NX | 0x42000 | 0x800 | 0b111
    );
    assert_eq!(Pte::OnSwap { slot: 7 }.encode(false), 0x7000 | 0b0100);
    assert_eq!(
        Pte::NotPresentMmap {
            file: 0xab,
            page: 9
        }
        .encode(true),
        0x9000 | 0xab0 | 0b0110
    );
    // Stray bits in a not-present entry are corrupt.
    assert!(matches!(
        Pte::decode(0b0010 | 0x1000, true),
        Pte::Corrupt(_)
    ));
    assert!(matches!(Pte::decode(0b0100 | 0x10, true), Pte::Corrupt(_)));
    assert!(matches!(Pte::decode(0b1010, true), Pte::Corrupt(_)));
    assert!(matches!(
        Pte::decode(0b1000 | 0x1000, true),
        Pte::Corrupt(_)
    ));
    assert!(
        matches!(Pte::decode(1 | 0b100, true), Pte::Corrupt(_)),
        "present, no software bits"
    );
    assert!(
        matches!(Pte::decode(0x42000 | 0x200 | 0b111, true), Pte::Corrupt(_)),
        "writable and executable (W^X)"
    );
    assert!(
        matches!(Pte::decode(0x42000 | 0x400 | 0b101, true), Pte::Corrupt(_)),
        "an executable file page"
    );
}

#[test]
fn table_entries_match_the_format() {
    assert_eq!(pte::table_entry(frame(5), true), 0x5000 | 0b111);
    assert_eq!(pte::table_entry(frame(5), false), 0x5000 | 0b011);
}

/// The clock's branch-free tests say what `present_kind` says, on every
/// combination of the bits they read (P, W, the software bits) with each
/// other low bit and a spread of high bits set or not.
#[test]
fn the_victim_tests_agree_with_present_kind() {
    use crate::pte::{is_clean_file, is_evictable, present_kind, PresentKind};
    let highs = [
        0,
        0x1234_5000,
        pte::ADDR_MASK,
        1 << 63,
        0x7ff0_0000_0000_0000,
    ];
    for low in 0u64..0x1000 {
        for high in highs {
            let raw = high | low;
            let kind = present_kind(raw);
            assert_eq!(
                is_clean_file(raw),
                kind == Some(PresentKind::Mmap { private: false }),
                "{raw:#x}"
            );
            assert_eq!(
                is_evictable(raw),
                matches!(
                    kind,
                    Some(PresentKind::Mmap { .. } | PresentKind::Ram { writable: true })
                ),
                "{raw:#x}"
            );
            // Pinned RAM is never a victim.
            if matches!(Pte::decode(raw, raw & 0b100 != 0), Pte::PinnedRam { .. }) {
                assert!(!is_evictable(raw) && !is_clean_file(raw), "{raw:#x}");
            }
        }
    }
}

/// The present shared entry (`protocol::formats`: `P=1`, bits 9–11 =
/// `0b101`): W as its writability, NX and U set, the lower half only;
/// never executable, never a victim of the clock.
#[test]
fn shared_entries_decode_in_the_user_half_only() {
    use crate::pte::{is_clean_file, is_evictable, present_kind};
    for f in [frame(0), frame(0x42), frame((1 << 40) - 1)] {
        for writable in [false, true] {
            let s = Pte::Shared { frame: f, writable };
            let raw = s.encode(true);
            let w = if writable { 0b10 } else { 0 };
            let want = NX | (f.start_address().as_u64()) | 0xa00 | 0b101 | w;
            assert_eq!(raw, want, "{s:?}");
            assert_eq!(Pte::decode(raw, true), s);
            assert_eq!(Pte::decode(raw | pte::CPU_BITS, true), s, "A and D");
            assert!(s.is_present() && s.is_shared() && !s.is_pinned());
            assert_eq!(s.frame(), Some(f));
            assert_eq!(
                s.to_protocol(),
                protocol::PageState::Shared {
                    writable,
                    mappings: 0,
                    frame: f.start_address().as_u64(),
                }
            );
            // Corrupt: in the upper half (U or not), executable, U clear.
            for bad in [(raw, false), (raw & !0b100, false), (raw & !NX, true)] {
                assert!(
                    matches!(Pte::decode(bad.0, bad.1), Pte::Corrupt(_)),
                    "{:#x} user {}",
                    bad.0,
                    bad.1
                );
            }
            assert!(matches!(Pte::decode(raw & !0b100, true), Pte::Corrupt(_)));
            assert!(!is_evictable(raw) && !is_clean_file(raw));
            assert_eq!(present_kind(raw), None);
        }
    }
}
