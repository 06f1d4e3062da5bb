//! Traces, generation and minimization.
