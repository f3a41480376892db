//! Fuzz targets for the choreo compiler: what `choreoc check`, `choreoc
//! generate` and `choreoc diagram` do with a spec, from arbitrary bytes.
//!
//! Each target takes the bytes of one file and does what the command does
//! with it through the library, then checks what the output must be. A
//! panic, in the compiler or in one of these checks, is a crash; so is a
//! stack overflow. The binary runs a target under AFL++ (`cargo afl build
//! --features afl`) or replays files through it; docs/testing.md says how.

mod seeds;
mod targets;

pub use seeds::{seed_files, SEED_DIRS};
pub use targets::{Outcome, Target, STACK_BYTES};
