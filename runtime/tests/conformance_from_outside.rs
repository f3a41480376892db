//! The conformance suite as an adapter crate runs it: through the exported
//! macro, on a broker selected at run time by URL.
#![allow(clippy::unwrap_used)]

choreo_runtime::conformance_suite!(memory_by_url, async {
    choreo_runtime::connect("memory://").await.unwrap()
});
