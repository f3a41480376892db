//! The `brokers` bench with both sides on mimalloc instead of the system
//! allocator: glibc's malloc takes about a third of the client's CPU in
//! both loops, more of the runtime's, which allocates more per message.
//!
//! Run: `cargo bench -p choreo-runtime --features nats,redis --bench brokers_mimalloc`
#![allow(missing_docs)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "brokers.rs"]
mod brokers;

fn main() {
    brokers::main();
}
