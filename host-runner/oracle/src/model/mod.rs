//! The model (oracle): the guest VMM written again from semantics.rs alone.
//! It predicts every answer, judges the guest's, and follows the guest where
//! the specification leaves the answer open (which frames, which range,
//! which root a new address space gets). The pages of every address space
//! live in one page map, named by keys ([`keys`]): requests, touches and
//! reclaim events name plain addresses of the current space, which the
//! model keys on the way in and answers plain on the way out.

mod batch;
mod dirty;
mod expect;
mod files;
mod frames;
mod heap;
mod hex;
pub mod keys;
mod observe;
mod outcomes;
mod pages;
mod pinned;
mod plan;
mod prediction;
mod pressure;
mod reclaim;
mod requests_v2;
mod runs;
mod shared;
mod shared_frames;
mod slots;
mod spaces;
mod stats;
mod touch;
mod undo;
mod validate;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use protocol::scan::batch_elements;
use protocol::{Error, Hello, Privilege, Request, Response, MAX_BATCH};

use crate::coverage::ModelCoverage;

pub use dirty::Changes;
pub use expect::{Expectations, Expected, PageSource};
pub use files::{file_page, FileSpec, FilesError};
pub use outcomes::TouchOutcomes;
pub use pages::ModelState;
pub use prediction::{Divergence, Prediction};
pub(crate) use reclaim::evicted;
pub use stats::StatsBounds;
pub use validate::canonical;

use plan::{Effect, Plan};
use validate::Managed;

/// The bytes of one page the host wrote.
pub(crate) type PageBytes = Arc<[u8; 4096]>;

/// The model of the guest VMM.
#[derive(Clone, Debug)]
pub struct Model {
    hello: Hello,
    managed: Managed,
    /// The address spaces: the live ones, their roots, the current one.
    spaces: spaces::Spaces,
    pages: pages::PageMap,
    /// Bytes of the pages that hold non-zero data, by page number.
    data: BTreeMap<u64, PageBytes>,
    /// Frame numbers the host holds.
    host: BTreeSet<u64>,
    /// Frame numbers the guest reported for pages (`Query`), both ways.
    page_frames: BTreeMap<u64, u64>,
    frame_pages: HashMap<u64, u64>,
    /// Pages reserved by `Valloc`.
    vspace: pages::PageMap,
    /// The shared frames: the pages mapping each one.
    shared: shared_frames::Groups,
    faults_resolved: u64,
    /// Each file's content, when the runner told it (`with_files`).
    files: Vec<Option<FileSpec>>,
    /// The host's heap blocks and what the model knows of the heap's pages.
    heap: heap::Heap,
    /// Reclaim events since boot or `Reset`: scavenged, swapped, dropped.
    reclaims: [u64; 3],
    /// Fixed numbers the model learns from the first `Stats` answer:
    /// `swap_bytes_total`, `heap_table_frames`.
    learned: Option<(u64, u64)>,
    /// Events of the answer being judged (the ring's fill).
    ring_used: usize,
    /// What changed since the memory checker last took the changes.
    dirty: dirty::Dirty,
    /// What the judged answers reached (`crate::coverage`); carried across
    /// `Reset`, taken by [`Model::take_coverage`].
    coverage: ModelCoverage,
}

impl Model {
    /// The model of a guest right after boot (or `Reset`), with its layout.
    /// The files' contents are unknown: a touch of a file page is then
    /// [`Prediction::Unspecified`] (use [`Model::with_files`]).
    pub fn new(hello: &Hello) -> Self {
        Model {
            hello: hello.clone(),
            managed: Managed::new(hello),
            spaces: spaces::Spaces::new(hello.max_spaces),
            pages: Default::default(),
            data: BTreeMap::new(),
            host: BTreeSet::new(),
            page_frames: BTreeMap::new(),
            frame_pages: HashMap::new(),
            vspace: Default::default(),
            shared: Default::default(),
            faults_resolved: 0,
            files: vec![None; hello.files.len()],
            heap: heap::Heap::default(),
            reclaims: [0; 3],
            learned: None,
            ring_used: 0,
            dirty: dirty::Dirty::new(),
            coverage: ModelCoverage::default(),
        }
    }

    /// The layout the model was made with.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The model's state of the page whose key holds `addr` (None:
    /// unusable): a plain address names a kernel page or one of space 0;
    /// [`keys::tag`] names one of another space ([`Model::state_in`]).
    pub fn state(&self, addr: u64) -> Option<ModelState> {
        self.pages.get(addr >> 12)
    }

    /// The model's state of the page holding `addr` in space `space`.
    pub fn state_in(&self, space: u16, addr: u64) -> Option<ModelState> {
        self.state(keys::tag(space, addr))
    }

    /// The answer the model expects to `req` in its current state.
    pub fn predict(&self, req: &Request) -> Prediction {
        match req {
            Request::Batch(_) if batch_elements(req) > MAX_BATCH => {
                Prediction::Exact(Response::Error(Error::TooLarge))
            }
            Request::Batch(reqs) => {
                let mut m = self.clone();
                Prediction::Batch(reqs.iter().map(|r| m.predict_and_assume(r)).collect())
            }
            _ => self.plan(req).prediction,
        }
    }

    /// Predicts `req` and advances as if the guest gave the most likely
    /// answer (for batch predictions only).
    fn predict_and_assume(&mut self, req: &Request) -> Prediction {
        if let Request::Batch(_) = req {
            return Prediction::Exact(Response::Error(Error::NestedBatch));
        }
        let plan = self.plan(req);
        let assumed = match &plan.prediction {
            Prediction::Exact(r) => Some(r.clone()),
            Prediction::DoneOrOutOfMemory => Some(Response::Done),
            Prediction::Touch(t) => t.assumed(),
            Prediction::Valloc { pages, .. } => self
                .valloc_fit(*pages)
                .map(|p| Response::Valloc { addr: p << 12 }),
            _ => None,
        };
        if let Some(r) = assumed {
            // A prediction is consistent with itself: commit cannot refuse it.
            let _ = self.commit(plan.effect, &r);
        }
        plan.prediction
    }

    /// Judges the guest's answer `actual` to request number `index` and
    /// advances the model. On a divergence the model is left as it was
    /// (except for the batch elements before the diverging one).
    ///
    /// Every request judged right (in a batch: up to the diverging one)
    /// counts in the model's coverage ([`Model::coverage`]).
    pub fn apply(
        &mut self,
        index: u64,
        req: &Request,
        actual: &Response,
    ) -> Result<(), Divergence> {
        // Out of `self` while judging: the clones judging makes stay small.
        let mut coverage = std::mem::take(&mut self.coverage);
        let result = self.apply_covered(index, req, actual, &mut coverage);
        self.coverage = coverage;
        result
    }

    /// What the judged answers reached since the model was made (or the
    /// coverage last taken).
    pub fn coverage(&self) -> &ModelCoverage {
        &self.coverage
    }

    /// Takes the coverage, leaving it empty.
    pub fn take_coverage(&mut self) -> ModelCoverage {
        std::mem::take(&mut self.coverage)
    }

    /// Adds `other` to the coverage (a new model taking over an old one's).
    pub fn add_coverage(&mut self, other: &ModelCoverage) {
        self.coverage.merge(other);
    }

    /// Judges and applies one request or batch (see [`Model::apply`]),
    /// counting what each request judged right reached in `coverage`.
    fn apply_covered(
        &mut self,
        index: u64,
        req: &Request,
        actual: &Response,
        coverage: &mut ModelCoverage,
    ) -> Result<(), Divergence> {
        let diverge =
            |element, request: &Request, expected: String, got: &Response, reason| Divergence {
                index,
                element,
                request: Box::new(request.clone()),
                expected,
                got: Box::new(got.clone()),
                reason,
            };
        let Request::Batch(reqs) = req else {
            return self
                .apply_observed(req, actual, coverage)
                .map_err(|(e, r)| diverge(None, req, e, actual, r));
        };
        if batch_elements(req) > MAX_BATCH {
            let want = Response::Error(Error::TooLarge);
            if *actual == want {
                return Ok(());
            }
            let why = format!(
                "{} requests (nested batches' included) is above MAX_BATCH",
                batch_elements(req)
            );
            return Err(diverge(None, req, format!("{want:?}"), actual, why));
        }
        let Response::Batch(answers) = actual else {
            let e = format!("Batch of {} answers", reqs.len());
            return Err(diverge(None, req, e, actual, "not a batch answer".into()));
        };
        let cut =
            batch::cut_at(reqs, answers).map_err(|(e, r)| diverge(None, req, e, actual, r))?;
        for (i, (r, a)) in reqs.iter().zip(&answers[..cut]).enumerate() {
            let result = match r {
                Request::Batch(_) if *a == Response::Error(Error::NestedBatch) => Ok(()),
                Request::Batch(_) => Err(("Error(NestedBatch)".into(), "nested batch".into())),
                r => self.apply_observed(r, a, coverage),
            };
            result.map_err(|(e, why)| diverge(Some(i), r, e, a, why))?;
        }
        Ok(())
    }

    /// [`Model::apply_one`], counting what the request reached when it was
    /// judged right.
    fn apply_observed(
        &mut self,
        req: &Request,
        actual: &Response,
        coverage: &mut ModelCoverage,
    ) -> Result<(), (String, String)> {
        let mut seen = self.observe(req, actual);
        let slots = self.kernel_slots(req);
        self.apply_one(req, actual)?;
        self.observe_after(req, actual, slots, &mut seen);
        coverage.add(&seen);
        Ok(())
    }

    /// Judges and applies one request that is not a batch: its reclaim
    /// events first (semantics, "Reclaim events", rule 2), then the plain
    /// answer against the plan made after them. Atomic: on a divergence the
    /// model is unchanged.
    fn apply_one(&mut self, req: &Request, actual: &Response) -> Result<(), (String, String)> {
        let (events, inner) = actual.clone().split_reclaimed();
        let own_judged = matches!(req, Request::Evict { .. } | Request::HeapScavenge { .. });
        if events.is_empty() && !matches!(actual, Response::Reclaimed { .. }) && !own_judged {
            return self.judge_plain(req, actual);
        }
        if let Response::Reclaimed { .. } = inner {
            return Err(("one Reclaimed".into(), "Reclaimed inside Reclaimed".into()));
        }
        if matches!(
            req,
            Request::Reset {
                privilege: Privilege::Kernel
            }
        ) {
            return self.apply_reset(req, &events, &inner);
        }
        // Judged on the model itself, not on a copy: the events' changes are
        // put back when the answer diverges (judge_own and judge_plain change
        // nothing then). A copy of the whole model per answer with events
        // was two fifths of the model's time in a default campaign.
        let own = self.own_events(req);
        self.ring_used = events.len();
        let judged = self
            .apply_events(&events, &own)
            .map_err(|why| ("legal reclaim events".to_string(), why))
            .and_then(|applied| {
                let judged = self
                    .judge_own(req, &events, &own, &inner)
                    .and_then(|()| self.judge_plain(req, &inner));
                match judged {
                    Ok(()) => self.keep_events(applied),
                    Err(_) => self.undo_events(applied),
                }
                judged
            });
        self.ring_used = 0;
        judged
    }

    /// Judges and applies a plain answer (events already applied).
    /// Atomic: on a divergence the model is unchanged (the plan is read
    /// only, and a commit that refuses the answer changes nothing).
    fn judge_plain(&mut self, req: &Request, actual: &Response) -> Result<(), (String, String)> {
        let plan = self.plan(req);
        if let Some(reason) = plan.prediction.mismatch(actual) {
            return Err((plan.prediction.to_string(), reason));
        }
        // The expected answer is written out only for a divergence: on the
        // common path its text was a tenth of judging a touch.
        let Plan { prediction, effect } = plan;
        self.commit(effect, actual)
            .map_err(|r| (prediction.to_string(), r))
    }

    /// What the memory checker must find, as of now.
    pub fn expectations(&self) -> Expectations {
        Expectations::from_model(
            self.pages.clone(),
            self.data.clone(),
            self.files.clone(),
            self.heap.blocks.clone(),
            self.host.iter().map(|f| f << 12).collect(),
            self.page_frames
                .iter()
                .map(|(&p, &f)| (p << 12, f << 12))
                .collect(),
        )
        .with_spaces(self.spaces.roots.clone(), self.spaces.retired.clone())
        .current(self.spaces.current)
    }

    /// What the memory checker must find, as of now, borrowed (nothing is
    /// copied: see [`Expected`]).
    pub fn view(&self) -> Expected<'_> {
        Expected::of_model(
            &self.pages,
            &self.data,
            &self.files,
            &self.host,
            &self.page_frames,
            (&self.spaces.roots, &self.spaces.retired),
        )
    }

    /// Every change since the last call (or since the model was made): the
    /// pages whose state, frame or bytes changed and the host frames taken
    /// or given back, for the checker's incremental check. Takes them:
    /// the next call answers what changed after this one.
    pub fn take_changes(&mut self) -> Changes {
        self.dirty.take()
    }

    /// Puts pages `first..end` (addresses) into `state` directly, for tests
    /// of states no request can create yet (swap, file mappings).
    #[cfg(test)]
    pub(crate) fn force_state(&mut self, addr: u64, pages: u64, state: ModelState) {
        self.pages
            .set(addr >> 12, (addr >> 12) + pages, Some(state));
        self.dirty.pages(addr >> 12, (addr >> 12) + pages);
    }
}
