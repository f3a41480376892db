//! `choreoc`, the choreo command-line tool.
fn main() {}
