//! The model (oracle): the guest VMM written again from semantics.rs alone.
//! It predicts every answer, judges the guest's, and follows the guest where
//! the specification leaves the answer open (which frames, which range).

mod expect;
mod frames;
mod pages;
mod prediction;
mod touch;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use protocol::{
    AreaType, Error, Hello, Privilege, Request, Response, Stats, MAX_BATCH, MAX_QUERY_PAGES,
};

pub use expect::Expectations;
pub use pages::ModelState;
pub use prediction::{Divergence, Prediction};
pub use validate::canonical;

use touch::TouchPlan;
use validate::Space;

/// The bytes of one page the host wrote.
pub(crate) type PageBytes = Arc<[u8; 4096]>;

/// The model of the guest VMM.
#[derive(Clone, Debug)]
pub struct Model {
    hello: Hello,
    space: Space,
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
    faults_resolved: u64,
}

/// A request's validated outcome: the answer expected and what it changes.
#[derive(Clone, Debug)]
struct Plan {
    prediction: Prediction,
    effect: Effect,
}

/// What an answered request changes (nothing when the answer is an error).
#[derive(Clone, Debug)]
enum Effect {
    None,
    Set {
        first: u64,
        end: u64,
        state: Option<ModelState>,
    },
    ToUsable {
        first: u64,
        end: u64,
    },
    Touch(TouchPlan),
    Query {
        first: u64,
    },
    AllocFrames,
    FreeFrames {
        first: u64,
        count: u64,
    },
    Valloc {
        pages: u64,
    },
    Vfree {
        first: u64,
        end: u64,
    },
    Reset,
}

impl Plan {
    fn exact(r: Response) -> Plan {
        Plan {
            prediction: Prediction::Exact(r),
            effect: Effect::None,
        }
    }

    fn done(effect: Effect) -> Plan {
        Plan {
            prediction: Prediction::Exact(Response::Done),
            effect,
        }
    }
}

fn kernel_only(req: &Request) -> bool {
    matches!(
        req,
        Request::Panic { .. }
            | Request::AllocFrames { .. }
            | Request::FreeFrames { .. }
            | Request::Valloc { .. }
            | Request::Vfree { .. }
            | Request::Reset { .. }
    )
}

impl Model {
    /// The model of a guest right after boot (or `Reset`), with its layout.
    pub fn new(hello: &Hello) -> Self {
        Model {
            hello: hello.clone(),
            space: Space::new(hello),
            pages: Default::default(),
            data: BTreeMap::new(),
            host: BTreeSet::new(),
            page_frames: BTreeMap::new(),
            frame_pages: HashMap::new(),
            vspace: Default::default(),
            faults_resolved: 0,
        }
    }

    /// The layout the model was made with.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The model's state of the page holding `addr` (None: unusable).
    pub fn state(&self, addr: u64) -> Option<ModelState> {
        self.pages.get(addr >> 12)
    }

    /// Frames the guest must have free now.
    pub fn free_frames(&self) -> u64 {
        let used = self.pages.tables()
            + self.pages.count(ModelState::holds_frame)
            + self.host.len() as u64;
        self.hello.boot_free_frames.saturating_sub(used)
    }

    /// The counters `Stats` must answer.
    pub fn stats(&self) -> Stats {
        Stats {
            total_frames: self.hello.total_frames,
            free_frames: self.free_frames(),
            boot_free_frames: self.hello.boot_free_frames,
            page_table_frames: self.pages.tables(),
            present_pages: self.pages.count(ModelState::holds_frame),
            alloc_on_write_pages: self.pages.count(|s| s == ModelState::AllocOnWrite),
            host_frames: self.host.len() as u64,
            valloc_pages: self.vspace.count(|_| true),
            faults_resolved: self.faults_resolved,
        }
    }

    /// The answer the model expects to `req` in its current state.
    pub fn predict(&self, req: &Request) -> Prediction {
        match req {
            Request::Batch(reqs) if reqs.len() > MAX_BATCH => {
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
    pub fn apply(
        &mut self,
        index: u64,
        req: &Request,
        actual: &Response,
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
                .apply_one(req, actual)
                .map_err(|(e, r)| diverge(None, req, e, actual, r));
        };
        if reqs.len() > MAX_BATCH {
            let want = Response::Error(Error::TooLarge);
            if *actual == want {
                return Ok(());
            }
            let why = format!("{} requests is above MAX_BATCH", reqs.len());
            return Err(diverge(None, req, format!("{want:?}"), actual, why));
        }
        let Response::Batch(answers) = actual else {
            let e = format!("Batch of {} answers", reqs.len());
            return Err(diverge(None, req, e, actual, "not a batch answer".into()));
        };
        if answers.len() != reqs.len() {
            let e = format!("Batch of {} answers", reqs.len());
            let r = format!("{} answers", answers.len());
            return Err(diverge(None, req, e, actual, r));
        }
        for (i, (r, a)) in reqs.iter().zip(answers).enumerate() {
            let result = match r {
                Request::Batch(_) if *a == Response::Error(Error::NestedBatch) => Ok(()),
                Request::Batch(_) => Err(("Error(NestedBatch)".into(), "nested batch".into())),
                r => self.apply_one(r, a),
            };
            result.map_err(|(e, why)| diverge(Some(i), r, e, a, why))?;
        }
        Ok(())
    }

    /// Judges and applies one request that is not a batch.
    fn apply_one(&mut self, req: &Request, actual: &Response) -> Result<(), (String, String)> {
        let plan = self.plan(req);
        if let Some(reason) = plan.prediction.mismatch(actual) {
            return Err((plan.prediction.to_string(), reason));
        }
        let expected = plan.prediction.to_string();
        self.commit(plan.effect, actual).map_err(|r| (expected, r))
    }

    /// The validated outcome of a request that is not a batch.
    fn plan(&self, req: &Request) -> Plan {
        self.try_plan(req)
            .unwrap_or_else(|e| Plan::exact(Response::Error(e)))
    }

    fn try_plan(&self, req: &Request) -> Result<Plan, Error> {
        if kernel_only(req) && req.privilege() == Some(Privilege::User) {
            return Err(Error::PermissionDenied);
        }
        let space = &self.space;
        Ok(match *req {
            Request::Hello => Plan::exact(Response::Hello(self.hello.clone())),
            Request::Ping { nonce } => Plan::exact(Response::Pong { nonce }),
            Request::Batch(_) => Plan::exact(Response::Error(Error::NestedBatch)),
            Request::Panic { .. } | Request::Shutdown => Plan {
                prediction: Prediction::NoAnswer,
                effect: Effect::None,
            },
            Request::Map {
                addr,
                pages,
                writable,
                contiguous,
                privilege,
            } => {
                let (first, end) = space.check_pages(addr, pages, u64::MAX, privilege)?;
                if let Some((s, _, _)) = self.pages.runs_in(first, end).next() {
                    return Err(Error::InvalidState { addr: s << 12 });
                }
                let need = pages.saturating_add(self.pages.needed_tables(first, end));
                if self.free_frames() < need {
                    return Err(Error::OutOfMemory);
                }
                let state = Some(ModelState::PresentRam { writable });
                let mut plan = Plan::done(Effect::Set { first, end, state });
                if contiguous {
                    plan.prediction = Prediction::DoneOrOutOfMemory;
                }
                plan
            }
            Request::Unmap {
                addr,
                pages,
                privilege,
            } => {
                let (first, end) = space.check_pages(addr, pages, u64::MAX, privilege)?;
                if let Some(p) = self.pages.first_gap(first, end) {
                    return Err(Error::InvalidState { addr: p << 12 });
                }
                Plan::done(Effect::Set {
                    first,
                    end,
                    state: None,
                })
            }
            Request::Convert {
                addr,
                pages,
                to,
                privilege,
            } => {
                let (first, end) = space.check_pages(addr, pages, u64::MAX, privilege)?;
                if to == AreaType::Unusable {
                    return Ok(Plan::done(Effect::Set {
                        first,
                        end,
                        state: None,
                    }));
                }
                if self.free_frames() < self.pages.needed_tables(first, end) {
                    return Err(Error::OutOfMemory);
                }
                Plan::done(Effect::ToUsable { first, end })
            }
            Request::Write {
                addr,
                len,
                seed,
                privilege,
            } => match space.check_touch(addr, len, privilege)? {
                None => Plan::exact(Response::Done),
                Some(end) => self.plan_touch(addr, end, Some(seed)),
            },
            Request::Read {
                addr,
                len,
                privilege,
            } => match space.check_touch(addr, len, privilege)? {
                None => Plan::exact(Response::Checksum {
                    checksum: protocol::pattern::checksum(&[]),
                }),
                Some(end) => self.plan_touch(addr, end, None),
            },
            Request::Query {
                addr,
                pages,
                privilege,
            } => {
                let (first, end) = space.check_pages(addr, pages, MAX_QUERY_PAGES, privilege)?;
                Plan {
                    prediction: Prediction::Pages(
                        (first..end).map(|p| self.pages.get(p)).collect(),
                    ),
                    effect: Effect::Query { first },
                }
            }
            Request::AllocFrames {
                count, contiguous, ..
            } => self.plan_alloc_frames(count, contiguous)?,
            Request::FreeFrames { frame, count, .. } => self.plan_free_frames(frame, count)?,
            Request::Valloc { pages, .. } => self.plan_valloc(pages)?,
            Request::Vfree { addr, pages, .. } => self.plan_vfree(addr, pages)?,
            Request::Stats => Plan::exact(Response::Stats(self.stats())),
            Request::Reset { .. } => Plan::done(Effect::Reset),
        })
    }

    /// Carries out an effect given the (matching) answer.
    fn commit(&mut self, effect: Effect, actual: &Response) -> Result<(), String> {
        if matches!(actual, Response::Error(_)) {
            return Ok(());
        }
        match (effect, actual) {
            (Effect::Set { first, end, state }, _) => {
                self.forget(first, end);
                self.pages.set(first, end, state);
            }
            (Effect::ToUsable { first, end }, _) => self.pages.update(first, end, |_, s| match s {
                None | Some(ModelState::NotPresentMmap { .. }) => Some(ModelState::AllocOnWrite),
                Some(ModelState::PresentMmap { .. }) => {
                    Some(ModelState::PresentRam { writable: true })
                }
                usable => usable,
            }),
            (Effect::Touch(t), _) => self.commit_touch(t),
            (Effect::Query { first }, Response::Pages(states)) => {
                self.record_frames(first, states)?
            }
            (Effect::AllocFrames, Response::Frames(runs)) => self.commit_alloc_frames(runs)?,
            (Effect::FreeFrames { first, count }, _) => {
                (first..first + count).for_each(|f| {
                    self.host.remove(&f);
                });
            }
            (Effect::Valloc { pages }, Response::Valloc { addr }) => {
                self.commit_valloc(*addr, pages)?
            }
            (Effect::Vfree { first, end }, _) => self.vspace.set(first, end, None),
            (Effect::Reset, _) => *self = Model::new(&self.hello),
            _ => {}
        }
        Ok(())
    }

    /// Drops the data and frame identities of pages `first..end`.
    fn forget(&mut self, first: u64, end: u64) {
        let gone: Vec<u64> = self.data.range(first..end).map(|(&p, _)| p).collect();
        for p in gone {
            self.data.remove(&p);
        }
        let gone: Vec<(u64, u64)> = self
            .page_frames
            .range(first..end)
            .map(|(&p, &f)| (p, f))
            .collect();
        for (p, f) in gone {
            self.page_frames.remove(&p);
            self.frame_pages.remove(&f);
        }
    }

    /// What the memory checker must find, as of now.
    pub fn expectations(&self) -> Expectations {
        Expectations::from_model(
            self.pages.clone(),
            self.data.clone(),
            self.host.iter().map(|f| f << 12).collect(),
            self.page_frames
                .iter()
                .map(|(&p, &f)| (p << 12, f << 12))
                .collect(),
        )
    }

    /// Puts pages `first..end` (addresses) into `state` directly, for tests
    /// of states no request can create yet (swap, file mappings).
    #[cfg(test)]
    pub(crate) fn force_state(&mut self, addr: u64, pages: u64, state: ModelState) {
        self.pages
            .set(addr >> 12, (addr >> 12) + pages, Some(state));
    }
}
