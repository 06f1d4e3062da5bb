//! The guest's virtual memory manager, as portable logic.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod layout;
