//! Each request's validated outcome (the answer expected and its effect),
//! and carrying an effect out once the guest's answer is judged.

use protocol::{AreaType, Error, Privilege, Request, Response, MAX_QUERY_PAGES};

use super::keys::untag;
use super::touch::TouchPlan;
use super::{Model, ModelState, Prediction};

/// A request's validated outcome: the answer expected and what it changes.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    pub(super) prediction: Prediction,
    pub(super) effect: Effect,
}

/// What an answered request changes (nothing when the answer is an error).
#[derive(Clone, Debug)]
pub(super) enum Effect {
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
    ToPinned {
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
    Stats,
    Kmalloc {
        size: u64,
    },
    Kfree {
        addr: u64,
    },
    CreateSpace {
        space: u16,
    },
    SwitchSpace {
        space: u16,
    },
    DestroySpace {
        space: u16,
    },
    Share(super::shared::ShareRanges),
}

impl Plan {
    pub(super) fn exact(r: Response) -> Plan {
        Plan {
            prediction: Prediction::Exact(r),
            effect: Effect::None,
        }
    }

    pub(super) fn done(effect: Effect) -> Plan {
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
            | Request::Kmalloc { .. }
            | Request::Kfree { .. }
            | Request::HeapScavenge { .. }
            | Request::CreateSpace { .. }
            | Request::SwitchSpace { .. }
            | Request::DestroySpace { .. }
            | Request::Share { .. }
    )
}

/// The plain address of key page `p` (the answer names it in the
/// current space).
fn addr_of(p: u64) -> u64 {
    untag(p << 12).1
}

impl Model {
    /// The validated outcome of a request that is not a batch.
    pub(super) fn plan(&self, req: &Request) -> Plan {
        self.try_plan(req)
            .unwrap_or_else(|e| Plan::exact(Response::Error(e)))
    }

    fn try_plan(&self, req: &Request) -> Result<Plan, Error> {
        if kernel_only(req) && req.privilege() == Some(Privilege::User) {
            return Err(Error::PermissionDenied);
        }
        let space = &self.managed;
        Ok(match *req {
            Request::Hello => Plan::exact(Response::Hello(Box::new(self.hello.clone()))),
            Request::Ping { nonce } => Plan::exact(Response::Pong { nonce }),
            Request::Batch(_) => Plan::exact(Response::Error(Error::NestedBatch)),
            Request::MapFile {
                addr,
                pages,
                file,
                file_page,
                privilege,
            } => self.plan_map_file(
                self.keys(space.check_pages(addr, pages, u64::MAX, privilege)?),
                file,
                file_page,
            )?,
            Request::Evict {
                addr,
                pages,
                privilege,
            } => self.plan_evict(self.keys(space.check_pages(addr, pages, u64::MAX, privilege)?)),
            Request::Kmalloc { size, align, .. } => self.plan_kmalloc(size, align)?,
            Request::Kfree { addr, .. } => self.plan_kfree(addr)?,
            Request::HeapScavenge { .. } => self.plan_scavenge(),
            Request::Panic { .. } | Request::Shutdown => Plan {
                prediction: Prediction::NoAnswer,
                effect: Effect::None,
            },
            Request::Map {
                addr,
                pages,
                writable,
                executable,
                contiguous,
                privilege,
            } => {
                if writable && executable {
                    return Err(Error::WriteAndExecute);
                }
                let (first, end) =
                    self.keys(space.check_pages(addr, pages, u64::MAX, privilege)?);
                if let Some((s, _, _)) = self.pages.runs_in(first, end).next() {
                    return Err(Error::InvalidState { addr: addr_of(s) });
                }
                let need = pages.saturating_add(self.pages.needed_tables(first, end));
                let mut outcome = self.outcome(need, first, end);
                outcome.oom |= contiguous;
                let state = Some(ModelState::PresentRam {
                    writable,
                    executable,
                });
                Plan {
                    prediction: outcome.predict(Response::Done),
                    effect: Effect::Set { first, end, state },
                }
            }
            Request::Unmap {
                addr,
                pages,
                privilege,
            } => {
                let (first, end) =
                    self.keys(space.check_pages(addr, pages, u64::MAX, privilege)?);
                if let Some(p) = self.pages.first_gap(first, end) {
                    return Err(Error::InvalidState { addr: addr_of(p) });
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
                let (first, end) =
                    self.keys(space.check_pages(addr, pages, u64::MAX, privilege)?);
                if to == AreaType::Unusable {
                    return Ok(Plan::done(Effect::Set {
                        first,
                        end,
                        state: None,
                    }));
                }
                for (s, _, st) in self.pages.runs_in(first, end) {
                    if let ModelState::PresentMmap {
                        file,
                        private: false,
                        ..
                    } = st
                    {
                        if let Err(what) = self.file_seed(file) {
                            let what = format!("{what}, for the page at {}", Model::show(s));
                            return Ok(Plan {
                                prediction: Prediction::Unspecified(what),
                                effect: Effect::None,
                            });
                        }
                    }
                }
                let mut need = self.pages.needed_tables(first, end);
                let effect = if to == AreaType::PinnedRam {
                    // A frame for each swapped page: its data comes back now.
                    need += self.pages_on_swap(first, end);
                    Effect::ToPinned { first, end }
                } else {
                    Effect::ToUsable { first, end }
                };
                Plan {
                    prediction: self.outcome(need, first, end).predict(Response::Done),
                    effect,
                }
            }
            Request::Write {
                addr,
                len,
                seed,
                privilege,
            } => match self.heap_touch(addr, len, privilege) {
                Some(end) => self.plan_touch(addr, end, Some(seed), true),
                None => match space.check_touch(addr, len, privilege)? {
                    None => Plan::exact(Response::Done),
                    Some(end) => self.plan_touch(addr, end, Some(seed), false),
                },
            },
            Request::Read {
                addr,
                len,
                privilege,
            } => match self.heap_touch(addr, len, privilege) {
                Some(end) => self.plan_touch(addr, end, None, true),
                None => match space.check_touch(addr, len, privilege)? {
                    None => Plan::exact(Response::Checksum {
                        checksum: protocol::pattern::checksum(&[]),
                    }),
                    Some(end) => self.plan_touch(addr, end, None, false),
                },
            },
            Request::Query {
                addr,
                pages,
                privilege,
            } => {
                let (first, end) =
                    self.keys(space.check_pages(addr, pages, MAX_QUERY_PAGES, privilege)?);
                Plan {
                    prediction: Prediction::Pages(
                        (first..end)
                            .map(|p| (self.pages.get(p), self.mappings_of(p)))
                            .collect(),
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
            Request::Stats => Plan {
                prediction: Prediction::Stats(self.stats_bounds()),
                effect: Effect::Stats,
            },
            Request::Reset { .. } => Plan::done(Effect::Reset),
            Request::CreateSpace { .. } => self.plan_create_space()?,
            Request::SwitchSpace { space, .. } => self.plan_switch_space(space)?,
            Request::DestroySpace { space, .. } => self.plan_destroy_space(space)?,
            Request::Share {
                addr,
                pages,
                space,
                to,
                ..
            } => self.plan_share(addr, pages, space, to)?,
        })
    }

    /// Carries out an effect given the (matching) answer.
    pub(super) fn commit(&mut self, effect: Effect, actual: &Response) -> Result<(), String> {
        if matches!(actual, Response::Error(_)) {
            return Ok(());
        }
        match (effect, actual) {
            (Effect::Set { first, end, state }, _) => {
                self.dirty.pages(first, end);
                self.forget(first, end);
                self.pages.set(first, end, state);
            }
            (Effect::ToUsable { first, end }, _) => {
                self.dirty.pages(first, end);
                self.materialize_clean(first, end);
                self.pages.update(first, end, |_, s| match s {
                    None | Some(ModelState::NotPresentMmap { .. }) => {
                        Some(ModelState::AllocOnWrite)
                    }
                    Some(ModelState::PresentMmap { .. }) => Some(ModelState::DATA),
                    Some(ModelState::PinnedRam { writable }) => Some(ModelState::PresentRam {
                        writable,
                        executable: false,
                    }),
                    Some(ModelState::PinnedAllocOnWrite) => Some(ModelState::AllocOnWrite),
                    usable => usable,
                })
            }
            (Effect::ToPinned { first, end }, _) => self.commit_to_pinned(first, end),
            (Effect::Touch(t), a) => self.commit_touch(t, a),
            (Effect::Stats, Response::Stats(got)) => self.commit_stats(got),
            (Effect::Kmalloc { size }, Response::Kmalloc { addr }) => {
                self.commit_kmalloc(*addr, size)?
            }
            (Effect::Kfree { addr }, _) => self.commit_kfree(addr),
            (Effect::Query { first }, Response::Pages(states)) => {
                self.record_frames(first, states)?
            }
            (Effect::AllocFrames, Response::Frames(runs)) => self.commit_alloc_frames(runs)?,
            (Effect::FreeFrames { first, count }, _) => {
                (first..first + count).for_each(|f| {
                    self.host.remove(&f);
                    self.dirty.host_frame(f);
                });
            }
            (Effect::Valloc { pages }, Response::Valloc { addr }) => {
                self.commit_valloc(*addr, pages)?
            }
            (Effect::Vfree { first, end }, _) => self.vspace.set(first, end, None),
            (Effect::Reset, _) => self.reset(),
            (Effect::CreateSpace { space }, Response::Space { root, .. }) => {
                self.commit_create_space(space, *root)?
            }
            (Effect::SwitchSpace { space }, _) => self.spaces.current = space,
            (Effect::DestroySpace { space }, _) => self.commit_destroy_space(space),
            (Effect::Share(r), _) => self.commit_share(r),
            _ => {}
        }
        Ok(())
    }

    /// Drops the data and frame identities of pages `first..end`, which
    /// become unusable (their shared frames lose a mapping each).
    pub(super) fn forget(&mut self, first: u64, end: u64) {
        self.unshare(first, end);
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
            // A shared frame stays recorded for a page that still maps it.
            if self.frame_pages.get(&f) == Some(&p) {
                self.frame_pages.remove(&f);
            }
        }
    }
}
