//! Writing generated files into a directory without ever destroying a
//! user's edits or writing outside it.
//!
//! Every write records the SHA-256 of what was written in a manifest
//! (`.choreo-generated` in the directory). On the next run a file is
//! rewritten only when it is missing, or still exactly what was generated
//! last time; a file the user changed (or wrote themselves) is left alone
//! and reported, unless `force` is given.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The manifest's file name.
pub const MANIFEST: &str = ".choreo-generated";

/// A file to write, relative to the target directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Relative path, `/`-separated, without `..`.
    pub path: String,
    /// The contents.
    pub contents: String,
    /// Whether the user is meant to edit it (a scaffold's handler files):
    /// such a file is written once and never touched again, `force` or not.
    pub user_owned: bool,
}

impl GeneratedFile {
    /// A file the generator owns.
    pub fn generated(path: impl Into<String>, contents: impl Into<String>) -> Self {
        GeneratedFile {
            path: path.into(),
            contents: contents.into(),
            user_owned: false,
        }
    }

    /// A file written once for the user to edit.
    pub fn user(path: impl Into<String>, contents: impl Into<String>) -> Self {
        GeneratedFile {
            path: path.into(),
            contents: contents.into(),
            user_owned: true,
        }
    }
}

/// What a write did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteReport {
    /// Files written (new or regenerated).
    pub written: Vec<String>,
    /// Files already up to date.
    pub unchanged: Vec<String>,
    /// User-owned files that exist and were left as they are.
    pub kept: Vec<String>,
}

/// Why nothing was written.
#[derive(Debug)]
pub enum WriteError {
    /// Files the user edited would be overwritten.
    UserEdited(Vec<String>),
    /// A path would leave the target directory.
    Escapes(String),
    /// The file system refused.
    Io(PathBuf, std::io::Error),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::UserEdited(files) => write!(
                f,
                "refusing to overwrite {} changed since it was generated: {}; pass `--force` to overwrite",
                if files.len() == 1 { "a file" } else { "files" },
                files.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
            ),
            WriteError::Escapes(path) => write!(f, "refusing to write `{path}`: it is outside the target directory"),
            WriteError::Io(path, e) => write!(f, "cannot write `{}`: {e}", path.display()),
        }
    }
}

impl std::error::Error for WriteError {}

fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |e| WriteError::Io(path.to_path_buf(), e)
}

/// A relative path that stays inside its directory.
fn safe_relative(path: &str) -> Result<PathBuf, WriteError> {
    let p = Path::new(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(WriteError::Escapes(path.to_string()))
    }
}

fn read_manifest(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dir.join(MANIFEST))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (hash, path) = line.split_once("  ")?;
            Some((path.to_string(), hash.to_string()))
        })
        .collect()
}

/// Writes `files` under `dir` (created if missing). Nothing is written when
/// any generated file was edited by the user, unless `force`.
pub fn write(dir: &Path, files: &[GeneratedFile], force: bool) -> Result<WriteReport, WriteError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let root = dir.canonicalize().map_err(io(dir))?;
    let mut manifest = read_manifest(&root);
    let mut report = WriteReport::default();
    let mut plan: Vec<(PathBuf, &GeneratedFile)> = Vec::new();
    let mut edited = Vec::new();
    for file in files {
        let rel = safe_relative(&file.path)?;
        let target = root.join(&rel);
        // A symlink (or a parent that is one) could lead outside the
        // directory: check where the parent really is.
        if let Some(parent) = target.parent() {
            if let Ok(real) = parent.canonicalize() {
                if !real.starts_with(&root) {
                    return Err(WriteError::Escapes(file.path.clone()));
                }
            }
        }
        if target.is_symlink() {
            return Err(WriteError::Escapes(file.path.clone()));
        }
        match std::fs::read_to_string(&target) {
            Ok(existing) => {
                if existing == file.contents {
                    report.unchanged.push(file.path.clone());
                    manifest.insert(file.path.clone(), digest(&existing));
                    continue;
                }
                // A file written for the user is theirs from then on: not
                // even `force` overwrites it.
                if file.user_owned {
                    report.kept.push(file.path.clone());
                    continue;
                }
                let ours = manifest.get(&file.path) == Some(&digest(&existing));
                if !ours && !force {
                    edited.push(file.path.clone());
                    continue;
                }
                plan.push((target, file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => plan.push((target, file)),
            Err(e) => return Err(WriteError::Io(target, e)),
        }
    }
    if !edited.is_empty() {
        return Err(WriteError::UserEdited(edited));
    }
    for (target, file) in plan {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&target, &file.contents).map_err(io(&target))?;
        manifest.insert(file.path.clone(), digest(&file.contents));
        report.written.push(file.path.clone());
    }
    let text: String = manifest
        .iter()
        .map(|(path, hash)| format!("{hash}  {path}\n"))
        .collect();
    let header = "# Files choreoc generated here, with the SHA-256 of what it wrote.\n# A file whose contents no longer match is the user's and is never overwritten.\n";
    std::fs::write(root.join(MANIFEST), format!("{header}{text}")).map_err(io(&root))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("choreo-output-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn regenerates_its_own_files_and_refuses_edited_ones() {
        let dir = temp("edits");
        let files = vec![
            GeneratedFile::generated("src/lib.rs", "v1"),
            GeneratedFile::user("src/me.rs", "todo"),
        ];
        let r = write(&dir, &files, false).unwrap();
        assert_eq!(r.written, ["src/lib.rs", "src/me.rs"]);

        let v2 = vec![
            GeneratedFile::generated("src/lib.rs", "v2"),
            GeneratedFile::user("src/me.rs", "todo 2"),
        ];
        std::fs::write(dir.join("src/me.rs"), "my code").unwrap();
        let r = write(&dir, &v2, false).unwrap();
        assert_eq!(r.written, ["src/lib.rs"]);
        assert_eq!(r.kept, ["src/me.rs"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("src/me.rs")).unwrap(),
            "my code"
        );

        std::fs::write(dir.join("src/lib.rs"), "edited by hand").unwrap();
        let err = write(&dir, &v2, false).unwrap_err();
        assert!(matches!(err, WriteError::UserEdited(ref f) if f == &["src/lib.rs"]));
        assert!(err.to_string().contains("--force"));
        assert_eq!(
            std::fs::read_to_string(dir.join("src/lib.rs")).unwrap(),
            "edited by hand"
        );

        write(&dir, &v2, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("src/lib.rs")).unwrap(),
            "v2"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn paths_cannot_leave_the_directory() {
        let dir = temp("escape");
        for bad in ["../x", "/etc/x", "a/../../x", ""] {
            let err = write(&dir, &[GeneratedFile::generated(bad, "x")], false).unwrap_err();
            assert!(matches!(err, WriteError::Escapes(_)), "{bad}");
        }
        #[cfg(unix)]
        {
            let outside = temp("outside");
            std::fs::create_dir_all(&outside).unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
            let err =
                write(&dir, &[GeneratedFile::generated("link/x.rs", "x")], false).unwrap_err();
            assert!(matches!(err, WriteError::Escapes(_)));
            assert!(!outside.join("x.rs").exists());
            let _ = std::fs::remove_dir_all(&outside);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
