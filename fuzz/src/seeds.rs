//! The seed corpus: every spec the repository holds.

use std::path::{Path, PathBuf};

/// The directories, relative to the repository's root, whose `.choreo`
/// files (at any depth) seed the fuzzers: the spec corpus, the cross-crate
/// tests' specs and the examples.
pub const SEED_DIRS: [&str; 3] = ["tests/cases", "tests/specs", "examples"];

/// Every `.choreo` file under [`SEED_DIRS`] of the repository at `root`,
/// sorted; hidden directories and `target` are skipped.
///
/// # Errors
///
/// The first directory that cannot be read.
pub fn seed_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in SEED_DIRS {
        collect(&root.join(dir), &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let skipped = name.to_string_lossy().starts_with('.') || name == "target";
        if entry.file_type()?.is_dir() {
            if !skipped {
                collect(&path, files)?;
            }
        } else if path.extension().is_some_and(|e| e == "choreo") {
            files.push(path);
        }
    }
    Ok(())
}
