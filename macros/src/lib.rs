//! The `choreo!` procedural macro: a thin entry point over `choreo-compiler`.
