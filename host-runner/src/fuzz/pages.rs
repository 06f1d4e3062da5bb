//! The work an operation names: the pages of its range. Operations per
//! second alone would let a cheaper mix (single pages, no large ranges)
//! pass for a faster fuzzer; pages per second says how much memory the
//! operations covered.

use protocol::{Request, Response};

/// Pages the request's range names: `pages` for the page-range requests
/// (`Map`, `Unmap`, `Convert`, `Query`, `MapFile`, `Evict`, `Vfree`), the
/// pages the bytes `addr..addr + len` overlap for `Write` and `Read`
/// (none for a zero length; up to the end of the address space when the
/// range overflows); none for requests without a range (frames, heap
/// blocks, `Valloc`'s count, `Stats`, `Reset`, pings). A `Batch` names
/// what its elements name.
pub fn pages_named(request: &Request) -> u64 {
    match request {
        Request::Map { pages, .. }
        | Request::Unmap { pages, .. }
        | Request::Convert { pages, .. }
        | Request::Query { pages, .. }
        | Request::MapFile { pages, .. }
        | Request::Evict { pages, .. }
        | Request::Vfree { pages, .. } => *pages,
        Request::Write { addr, len, .. } | Request::Read { addr, len, .. } => {
            bytes_pages(*addr, *len)
        }
        Request::Batch(inner) => inner.iter().map(pages_named).fold(0, u64::saturating_add),
        _ => 0,
    }
}

/// Pages the request touched, judging by its answer: none when it was
/// refused (`Error`: invalid input, out of memory; nothing was done), else
/// the pages its range names. A request's range can name far more pages
/// than exist (the generator draws invalid sizes too); only a refusal
/// stops such a range, so refused requests count nothing.
pub fn pages_touched(request: &Request, answer: &Response) -> u64 {
    let mut answer = answer;
    while let Response::Reclaimed { response, .. } | Response::Stale { response, .. } = answer {
        answer = response;
    }
    match answer {
        Response::Error(_) => 0,
        _ => pages_named(request),
    }
}

/// Pages the bytes `addr..addr + len` overlap.
fn bytes_pages(addr: u64, len: u64) -> u64 {
    if len == 0 {
        return 0;
    }
    let last = addr.saturating_add(len - 1);
    (last >> 12) - (addr >> 12) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{AreaType, Privilege::Kernel as K};

    #[test]
    fn ranges_count_their_pages_and_others_none() {
        let map = Request::map_writable(0x1000, 512, K);
        assert_eq!(pages_named(&map), 512);
        let convert = Request::Convert {
            addr: 0,
            pages: 1 << 17,
            to: AreaType::UsableRam,
            privilege: K,
        };
        assert_eq!(pages_named(&convert), 1 << 17);
        assert_eq!(pages_named(&Request::Stats), 0);
        assert_eq!(pages_named(&Request::Ping { nonce: 1 }), 0);
        let alloc = Request::AllocFrames {
            count: 9,
            contiguous: false,
            privilege: K,
        };
        assert_eq!(pages_named(&alloc), 0);
        assert_eq!(
            pages_named(&Request::Batch(vec![map.clone(), map, Request::Stats])),
            1024
        );
    }

    #[test]
    fn touches_count_the_pages_their_bytes_overlap() {
        let write = |addr, len| Request::Write {
            addr,
            len,
            seed: 0,
            privilege: K,
        };
        assert_eq!(pages_named(&write(0x1000, 0)), 0);
        assert_eq!(pages_named(&write(0x1000, 1)), 1);
        assert_eq!(pages_named(&write(0x1000, 4096)), 1);
        assert_eq!(pages_named(&write(0x1fff, 2)), 2);
        assert_eq!(pages_named(&write(0x1800, 8192)), 3);
        let read = Request::Read {
            addr: u64::MAX - 10,
            len: 100,
            privilege: K,
        };
        assert_eq!(
            pages_named(&read),
            1,
            "an overflowing range stops at the end"
        );
    }

    #[test]
    fn refused_requests_touch_nothing() {
        let unmap = Request::Unmap {
            addr: 0,
            pages: 1 << 40,
            privilege: K,
        };
        let refused = Response::Error(protocol::Error::TooLarge);
        assert_eq!(pages_touched(&unmap, &refused), 0);
        assert_eq!(pages_touched(&unmap, &Response::Done), 1 << 40);
        let reclaimed = Response::Reclaimed {
            events: vec![],
            response: Box::new(refused),
        };
        assert_eq!(pages_touched(&unmap, &reclaimed), 0);
    }
}
