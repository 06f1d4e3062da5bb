//! Random sequences of shared memory over three spaces (shares across
//! spaces and within one, writes through any mapping, unmaps, converts,
//! destroys, resets, queries), answered as a correct guest would and stored in a
//! synthetic image: the model accepts every answer, and the incremental
//! check after each request is clean, as the full one is.

use proptest::prelude::*;
use protocol::{AreaType, Privilege, Request};

use super::shared::{full, recorded, share, switch, unmap, K, U};
use crate::bench::Scenario;

fn page() -> impl Strategy<Value = u64> {
    (1u64..7).prop_map(|p| p << 12)
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        4 => (page(), 1u64..4, any::<bool>()).prop_map(|(addr, pages, writable)| Request::Map {
            addr,
            pages,
            writable,
            executable: false,
            contiguous: false,
            privilege: U,
        }),
        2 => (page(), any::<u8>()).prop_map(|(addr, seed)| Request::Write {
            addr: addr + 8,
            len: 64,
            seed: u64::from(seed),
            privilege: U,
        }),
        6 => (page(), 1u64..3, 0u16..3, page()).prop_map(|(a, n, s, t)| share(a, n, s, t)),
        1 => (page(), 1u64..3).prop_map(|(a, n)| unmap(a, n)),
        1 => (page(), 1u64..3).prop_map(|(addr, pages)| Request::Convert {
            addr,
            pages,
            to: AreaType::Unusable,
            privilege: U,
        }),
        1 => (page(), 1u64..3).prop_map(|(addr, pages)| Request::Convert {
            addr,
            pages,
            to: AreaType::PinnedRam,
            privilege: U,
        }),
        2 => (0u16..3).prop_map(switch),
        1 => (1u16..3).prop_map(|space| Request::DestroySpace {
            space,
            privilege: K,
        }),
        1 => Just(Request::CreateSpace { privilege: K }),
        1 => Just(Request::Reset { privilege: K }),
        1 => (page(), 1u64..4).prop_map(|(addr, pages)| Request::Query {
            addr,
            pages,
            privilege: Privilege::User,
        }),
        1 => (page(), 1u64..4).prop_map(|(addr, pages)| Request::Evict {
            addr,
            pages,
            privilege: U,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_sharing_stays_clean(reqs in prop::collection::vec(request(), 1..40)) {
        let mut s = Scenario::empty(16, 4);
        s.apply(Request::CreateSpace { privilege: K });
        s.apply(Request::CreateSpace { privilege: K });
        let mut checker = recorded(&mut s);
        for req in reqs {
            s.apply(req.clone());
            // Incremental but after a Reset (which changes everything).
            let changes = s.take_changes();
            let r = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
            prop_assert!(r.is_clean(), "after {:?}: {}\nfull: {}", req, r, full(&s));
        }
        let r = full(&s);
        prop_assert!(r.is_clean(), "{}", r);
    }
}
