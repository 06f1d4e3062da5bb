//! The data thread: the bytes a check compares, its largest read, on a
//! thread of their own while the check's own thread does the rest
//! ([`Checker::set_data_thread`]): the incremental check's changed pages
//! beside the frames, the sharing and the swap store; the full check's
//! every present page and the second half of the file images' pages (a
//! fresh state's largest read) beside the frames' claims, the frame-info
//! table, the first half of the file images and the swap store. A guest
//! waits while its check runs, so with a core to spare the compare costs
//! no time of its own.

use std::ops::Range;

use protocol::Hello;

use super::bitmap::Bitmap;
use super::data;
use super::file_images;
use super::incremental::{Inputs, Walked};
use super::memory::GuestMemory;
use super::stateful::Checker;
use super::violation::Violation;
use super::walk::Translation;
use crate::model::Expected;

/// From how many pages their compare pays for a thread of its own
/// ([`Checker::set_data_thread`]): a thread's start costs tens of
/// microseconds, a page's compare about a third of one, so this is about
/// where the two meet (not a measured best).
pub const DATA_THREAD_PAGES: usize = 128;

impl Checker {
    /// The incremental check after its walk: [`Checker::frames_again`],
    /// [`Checker::swap_again`] and the changed pages' data
    /// (`w.verified`), whose compare runs beside the other two
    /// ([`beside_data`]). The violations come in the order of a check on
    /// one thread: the frames' and the sharing's, the data's, the swap
    /// store's. Answers what [`Checker::frames_again`] does.
    pub(super) fn frames_beside_data(
        &mut self,
        input: Inputs,
        mut w: Walked,
        out: &mut Vec<Violation>,
    ) -> (Vec<u64>, Option<Bitmap>) {
        let (hello, expect, verified) = (input.hello, input.expect, w.verified);
        let min_pages = self.data_thread;
        let work = (verified, 0..0);
        let (((frames, bitmap), swap), data, _) =
            beside_data(input.mem, hello, expect, work, min_pages, || {
                let found = self.frames_again(input, &mut w, out);
                let mut swap = Vec::new();
                self.swap_again(input, w.rec, w.d, &mut swap);
                (found, swap)
            });
        out.extend(data);
        out.extend(swap);
        (frames, bitmap)
    }
}

/// Runs `rest` on this thread and compares the bytes of `pages`
/// ([`data::check_pages`]) and of the file images' pages `images`
/// ([`file_images::check_images`]), on a thread of their own when
/// `min_pages` allows it (at least that many pages of the two together),
/// the memory can be read by two threads at once
/// ([`GuestMemory::as_sync`]) and the system gives a thread; else here,
/// after `rest`. Answers what `rest` answered, the data's violations and
/// the images', the same either way.
pub(super) fn beside_data<R>(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expected,
    (pages, images): (&[Translation], Range<u64>),
    min_pages: Option<usize>,
    rest: impl FnOnce() -> R,
) -> (R, Vec<Violation>, Vec<Violation>) {
    let count = pages.len() as u64 + (images.end.saturating_sub(images.start));
    let threaded = mem
        .as_sync()
        .filter(|_| min_pages.is_some_and(|min| count >= min as u64));
    std::thread::scope(|threads| {
        let compare = |mem: &dyn GuestMemory| {
            let mut data = Vec::new();
            data::check_pages(mem, hello, expect, pages.iter(), &mut data);
            let mut image = Vec::new();
            file_images::check_images(mem, hello, expect, images.clone(), &mut image);
            (data, image)
        };
        // A thread the system refuses leaves the compare to this one.
        let worker = threaded.and_then(|mem| {
            std::thread::Builder::new()
                .name("oracle-data".into())
                .spawn_scoped(threads, move || compare(mem))
                .ok()
        });
        let r = rest();
        let (data, image) = match worker {
            Some(w) => w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => compare(mem),
        };
        (r, data, image)
    })
}
