//! Host tests of the core over the simulated machine.
