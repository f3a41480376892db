// A spec file with errors: one compile error at the path, holding what
// `choreoc check` prints for the file (its own line, column and carets).
choreo_runtime::choreo!(file = "specs/unhandled.choreo");

fn main() {}
