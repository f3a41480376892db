// A spec file that does not exist: an error at the path, naming the path it
// was resolved to. (An absolute path, so that the expected output does not
// depend on where the target directory is; relative paths resolve against
// CARGO_MANIFEST_DIR, as the pass tests show.)
choreo_runtime::choreo!(file = "/nonexistent/specs/shop.choreo");

fn main() {}
