//! The host's judgement of the guest VMM.
