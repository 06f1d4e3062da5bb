//! What the memory checker must find in guest memory, from the model (or
//! written by hand in tests).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::files::FileSpec;
use super::pages::{ModelState, PageMap};
use super::PageBytes;

/// The model's view of guest memory at one moment.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    pages: PageMap,
    data: BTreeMap<u64, PageBytes>,
    /// Physical addresses of the frames the host holds (`AllocFrames`).
    pub host_frames: BTreeSet<u64>,
    /// Frames the guest reported for pages through `Query`: virtual page
    /// address → physical frame address (informational).
    pub known_frames: BTreeMap<u64, u64>,
    /// Each file's spec, when known (`None`: its bytes are not checked
    /// against a seed, only against its image in guest memory).
    pub files: Vec<Option<FileSpec>>,
    /// The host's live heap blocks: address → size.
    pub heap_blocks: BTreeMap<u64, u64>,
    /// The live address spaces other than 0 and their roots (space 0's is
    /// `Hello::page_table_root`).
    spaces: BTreeMap<u16, u64>,
    /// Roots of destroyed spaces, with their numbers (see
    /// [`Expected::retired_space`]).
    retired: VecDeque<(u64, u16)>,
    /// The current space (the one whose PML4 CR3 holds).
    current: u16,
}

impl Expectations {
    pub(super) fn from_model(
        pages: PageMap,
        data: BTreeMap<u64, PageBytes>,
        files: Vec<Option<FileSpec>>,
        heap_blocks: BTreeMap<u64, u64>,
        host_frames: BTreeSet<u64>,
        known_frames: BTreeMap<u64, u64>,
    ) -> Self {
        Expectations {
            pages,
            data,
            host_frames,
            known_frames,
            files,
            heap_blocks,
            spaces: BTreeMap::new(),
            retired: VecDeque::new(),
            current: 0,
        }
    }

    /// Expects these live spaces (other than 0, with their roots) and
    /// these roots of destroyed spaces.
    pub(super) fn with_spaces(
        mut self,
        spaces: BTreeMap<u16, u64>,
        retired: VecDeque<(u64, u16)>,
    ) -> Self {
        self.spaces = spaces;
        self.retired = retired;
        self
    }

    /// These expectations, with `space` current.
    pub(super) fn current(mut self, space: u16) -> Self {
        self.current = space;
        self
    }

    /// Expects space `space` to be the current one (its PML4 in CR3).
    pub fn set_current_space(&mut self, space: u16) {
        self.current = space;
    }

    /// The space expected to be current.
    pub fn current_space(&self) -> u16 {
        self.current
    }

    /// The root of live space `space` (space 0's is `hello`'s), if it
    /// lives.
    pub fn space_root(&self, hello: &protocol::Hello, space: u16) -> Option<u64> {
        match space {
            0 => Some(hello.page_table_root),
            s => self.spaces.get(&s).copied(),
        }
    }

    /// Expects space `space` (not 0) to live with its PML4 at `root`.
    /// Its pages are set with keys ([`super::keys::tag`]).
    pub fn add_space(&mut self, space: u16, root: u64) {
        self.spaces.insert(space, root);
    }

    /// Expects space `space`, whose PML4 was at `root`, to be destroyed.
    pub fn retire_space(&mut self, space: u16, root: u64) {
        self.spaces.remove(&space);
        self.retired.push_back((root, space));
    }

    /// Expects `state` (None: unusable) for `pages` pages from `addr` (a
    /// key: [`super::keys::tag`] names a page of a space other than 0);
    /// swap slots and file pages count up from the first page's.
    pub fn set_state(&mut self, addr: u64, pages: u64, state: Option<ModelState>) {
        self.pages.set(addr >> 12, (addr >> 12) + pages, state);
    }

    /// Expects the page at `addr` to hold `bytes` (pages never set hold zeros).
    pub fn set_bytes(&mut self, addr: u64, bytes: [u8; 4096]) {
        self.data.insert(addr >> 12, Arc::new(bytes));
    }

    /// The expected state of the page holding `addr` (None: unusable).
    pub fn state(&self, addr: u64) -> Option<ModelState> {
        self.pages.get(addr >> 12)
    }

    /// The host's own bytes of the page holding `addr` (written data, or
    /// a file page that became private or anonymous); `None` means zeros
    /// for RAM and the file's bytes for a clean file page.
    pub fn bytes(&self, addr: u64) -> Option<&[u8; 4096]> {
        self.data.get(&(addr >> 12)).map(|b| &**b)
    }

    /// The bytes the page holding `addr` must hold, whatever its state
    /// (`None`: unknown, a file without a spec).
    pub fn expected_bytes(&self, addr: u64) -> Option<[u8; 4096]> {
        page_bytes(self.bytes(addr), self.state(addr), &self.files).map(Cow::into_owned)
    }

    /// Expects the files built from these specs.
    pub fn set_files(&mut self, files: &[FileSpec]) {
        self.files = files.iter().copied().map(Some).collect();
    }

    /// Expects a live host heap block at `addr` of `size` bytes.
    pub fn add_heap_block(&mut self, addr: u64, size: u64) {
        self.heap_blocks.insert(addr, size);
    }

    /// Every non-unusable run: (first page address, pages, first page's state).
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64, ModelState)> + '_ {
        self.pages.runs().map(|(s, e, st)| (s << 12, e - s, st))
    }

    /// A borrowed view of these expectations, as the checker reads them.
    pub fn view(&self) -> Expected<'_> {
        Expected {
            pages: &self.pages,
            data: &self.data,
            files: &self.files,
            host: Frames::Addrs(&self.host_frames),
            known: Known::Addrs(&self.known_frames),
            spaces: &self.spaces,
            retired: &self.retired,
        }
    }
}

/// Frame sets and maps in the units their owner keeps them in.
#[derive(Clone, Copy, Debug)]
enum Frames<'a> {
    /// Physical addresses (hand-written [`Expectations`]).
    Addrs(&'a BTreeSet<u64>),
    /// Frame numbers (the model).
    Numbers(&'a BTreeSet<u64>),
}

#[derive(Clone, Copy, Debug)]
enum Known<'a> {
    /// Virtual address → physical address.
    Addrs(&'a BTreeMap<u64, u64>),
    /// Page number → frame number.
    Numbers(&'a BTreeMap<u64, u64>),
}

/// What the memory checker must find, borrowed from the model
/// ([`crate::Model::view`]) or from [`Expectations`] ([`Expectations::view`]):
/// nothing is copied, so a check costs what it reads.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    pages: &'a PageMap,
    data: &'a BTreeMap<u64, PageBytes>,
    files: &'a [Option<FileSpec>],
    host: Frames<'a>,
    known: Known<'a>,
    spaces: &'a BTreeMap<u16, u64>,
    retired: &'a VecDeque<(u64, u16)>,
}

impl<'a> Expected<'a> {
    pub(super) fn of_model(
        pages: &'a PageMap,
        data: &'a BTreeMap<u64, PageBytes>,
        files: &'a [Option<FileSpec>],
        host: &'a BTreeSet<u64>,
        page_frames: &'a BTreeMap<u64, u64>,
        (spaces, retired): (&'a BTreeMap<u16, u64>, &'a VecDeque<(u64, u16)>),
    ) -> Self {
        Expected {
            pages,
            data,
            files,
            host: Frames::Numbers(host),
            known: Known::Numbers(page_frames),
            spaces,
            retired,
        }
    }

    /// The live spaces other than 0, with their roots (the physical
    /// address of each one's PML4), in order; space 0's root is
    /// `Hello::page_table_root`. The checker walks each one's user half
    /// from its root and names its pages by keys ([`super::keys`]).
    pub fn space_roots(&self) -> &'a BTreeMap<u16, u64> {
        self.spaces
    }

    /// The space a destroyed space's root at `frame` (a physical address)
    /// belonged to: the newest destroyed spaces' roots are remembered
    /// until a new space takes the frame, so that a PML4 the guest did
    /// not free is named.
    pub fn retired_space(&self, frame: u64) -> Option<u16> {
        self.retired
            .iter()
            .rev()
            .find(|&&(r, _)| r == frame)
            .map(|&(_, s)| s)
    }

    /// The remembered roots of destroyed spaces: (root, space).
    pub fn retired(&self) -> impl Iterator<Item = (u64, u16)> + 'a {
        self.retired.iter().copied()
    }

    /// The expected state of page number `vpn` (None: unusable).
    pub fn state_of(&self, vpn: u64) -> Option<ModelState> {
        self.pages.get(vpn)
    }

    /// The expected state of the page holding `addr`.
    pub fn state(&self, addr: u64) -> Option<ModelState> {
        self.pages.get(addr >> 12)
    }

    /// The host's own bytes of the page holding `addr` (see
    /// [`Expectations::bytes`]).
    pub fn bytes(&self, addr: u64) -> Option<&'a [u8; 4096]> {
        self.data.get(&(addr >> 12)).map(|b| &**b)
    }

    /// Each file's spec, when known.
    pub fn files(&self) -> &'a [Option<FileSpec>] {
        self.files
    }

    /// The bytes the page holding `addr` must hold, whatever its state
    /// (`None`: unknown, a file without a spec).
    pub fn expected_bytes(&self, addr: u64) -> Option<Cow<'a, [u8; 4096]>> {
        page_bytes(self.bytes(addr), self.state(addr), self.files)
    }

    /// Where the bytes of the page holding `addr`, in `state` (what
    /// [`Expected::state`] answers for it), come from: the checker's path,
    /// which has the state already and borrows or makes the bytes with
    /// [`PageSource::bytes`] (no 4 KiB copy per page checked).
    pub fn source(&self, addr: u64, state: Option<ModelState>) -> PageSource<'a> {
        PageSource::of(self.bytes(addr), state, self.files)
    }

    /// Every non-unusable run: (first page number, end, first page's state).
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64, ModelState)> + 'a {
        self.pages.runs()
    }

    /// Runs inside page numbers `first..end`, clipped.
    pub fn runs_in(
        &self,
        first: u64,
        end: u64,
    ) -> impl Iterator<Item = (u64, u64, ModelState)> + 'a {
        self.pages.runs_in(first, end)
    }

    /// Whole runs overlapping page numbers `first..end`, not clipped.
    pub fn runs_over(
        &self,
        first: u64,
        end: u64,
    ) -> impl Iterator<Item = (u64, u64, ModelState)> + 'a {
        self.pages.runs_over(first, end)
    }

    /// Whether the host holds the frame at physical address `frame`.
    pub fn host_holds(&self, frame: u64) -> bool {
        match self.host {
            Frames::Addrs(s) => s.contains(&frame),
            Frames::Numbers(s) => frame % 4096 == 0 && s.contains(&(frame >> 12)),
        }
    }

    /// The frame numbers the host holds, in order.
    pub fn host_frames(&self) -> impl Iterator<Item = u64> + 'a {
        let (a, n) = match self.host {
            Frames::Addrs(s) => (Some(s), None),
            Frames::Numbers(s) => (None, Some(s)),
        };
        let a = a.into_iter().flatten().map(|f| f >> 12);
        a.chain(n.into_iter().flatten().copied())
    }

    /// The frames `Query` reported for pages `start..end` (page numbers),
    /// in order: (page number, the frame's address). A walk over a table's
    /// pages reads them alongside its entries instead of looking each page
    /// up.
    pub fn known_in(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + 'a {
        let (a, n) = match self.known {
            Known::Addrs(m) => (Some(m), None),
            Known::Numbers(m) => (None, Some(m)),
        };
        let (lo, hi) = (start.min(end), end);
        let (from, to) = (lo.saturating_mul(4096), hi.saturating_mul(4096));
        let a = a
            .into_iter()
            .flat_map(move |m| m.range(from..to))
            .filter(|&(&virt, _)| virt % 4096 == 0)
            .map(|(&virt, &f)| (virt >> 12, f));
        let n = n
            .into_iter()
            .flat_map(move |m| m.range(lo..hi).map(|(&vpn, &f)| (vpn, f << 12)));
        a.chain(n)
    }
}

/// Where a page's expected bytes come from, without making them: the
/// host's own bytes, a file's page from its seed, the file's image in
/// guest memory (a file without a spec: only the checker can read it), or
/// zeros.
#[derive(Clone, Copy, Debug)]
pub enum PageSource<'a> {
    Own(&'a [u8; 4096]),
    File { seed: u64, page: u64 },
    Image { file: u8, page: u64 },
    Zero,
}

/// A page of zeros, borrowed where a page has no bytes of its own.
static ZERO: [u8; 4096] = [0; 4096];

impl<'a> PageSource<'a> {
    /// The source of the bytes a page in `state` must hold: the host's
    /// `own` bytes when it has them, else its file's page, else zeros.
    fn of(
        own: Option<&'a [u8; 4096]>,
        state: Option<ModelState>,
        files: &[Option<FileSpec>],
    ) -> PageSource<'a> {
        if let Some(b) = own {
            return PageSource::Own(b);
        }
        match state {
            Some(
                ModelState::PresentMmap { file, page, .. }
                | ModelState::NotPresentMmap { file, page },
            ) => match files.get(usize::from(file)).copied().flatten() {
                Some(spec) => PageSource::File {
                    seed: spec.seed,
                    page,
                },
                None => PageSource::Image { file, page },
            },
            _ => PageSource::Zero,
        }
    }

    /// The bytes, made in `scratch` when they must be made (a file's
    /// page): no 4 KiB page is copied or moved on the way. `None` for a
    /// file's image, which only guest memory holds.
    pub fn bytes<'s>(self, scratch: &'s mut [u8; 4096]) -> Option<&'s [u8; 4096]>
    where
        'a: 's,
    {
        match self {
            PageSource::Own(b) => Some(b),
            PageSource::Zero => Some(&ZERO),
            PageSource::File { seed, page } => {
                super::files::fill_file_page(seed, page, scratch);
                Some(scratch)
            }
            PageSource::Image { .. } => None,
        }
    }

    fn into_cow(self) -> Option<Cow<'a, [u8; 4096]>> {
        match self {
            PageSource::Own(b) => Some(Cow::Borrowed(b)),
            PageSource::Zero => Some(Cow::Borrowed(&ZERO)),
            PageSource::File { seed, page } => {
                Some(Cow::Owned(super::files::file_page(seed, page)))
            }
            PageSource::Image { .. } => None,
        }
    }
}

/// The bytes a page in `state` must hold (see [`PageSource::of`];
/// `None`: a file without a spec).
fn page_bytes<'a>(
    own: Option<&'a [u8; 4096]>,
    state: Option<ModelState>,
    files: &[Option<FileSpec>],
) -> Option<Cow<'a, [u8; 4096]>> {
    PageSource::of(own, state, files).into_cow()
}
