//! The `pipeline` bench with both sides on mimalloc instead of the system
//! allocator.
//!
//! Run: `cargo bench -p choreo-runtime --bench pipeline_mimalloc`
#![allow(missing_docs)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "pipeline.rs"]
mod pipeline;

fn main() {
    pipeline::main();
}
