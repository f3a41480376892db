//! Analyses of the model that the checks share. They report nothing
//! themselves: the checks in `checks/` turn their facts into diagnostics,
//! and the scheduler there computes each analysis once, before the checks
//! that need it.

pub(crate) mod compensations;
pub(crate) mod cycle_path;
pub(crate) mod dominance;
pub(crate) mod joins;
pub(crate) mod references;
pub(crate) mod runs;
