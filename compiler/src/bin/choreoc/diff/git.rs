//! `--against`: a spec's committed version, read with the git command line.

use std::path::Path;
use std::process::{Command, Output};

/// Runs git in `dir`; a git that cannot be started is an error message.
fn git(dir: &Path, args: &[&str]) -> Result<Output, String> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `git`: {e}"))
}

/// git's own first line of complaint, for the end of our message.
fn complaint(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    match text.lines().find(|l| !l.trim().is_empty()) {
        Some(line) => format!(" (git: {})", line.trim()),
        None => String::new(),
    }
}

/// The text of `spec` at revision `rev` of the repository that holds it,
/// with the name to show it under (`REV:PATH`).
pub fn committed(rev: &str, spec: &Path) -> Result<(String, Vec<u8>), String> {
    // A revision starting with `-` would be read as an option by git.
    if rev.is_empty() || rev.starts_with('-') {
        return Err(format!("`{rev}` is not a git revision"));
    }
    let absolute = spec
        .canonicalize()
        .map_err(|e| format!("cannot read `{}`: {e}", spec.display()))?;
    let dir = absolute.parent().unwrap_or(Path::new("/"));
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if !top.status.success() {
        return Err(format!(
            "`{}` is not in a git repository{}",
            spec.display(),
            complaint(&top)
        ));
    }
    let root = String::from_utf8_lossy(&top.stdout).trim().to_string();
    let root = Path::new(&root)
        .canonicalize()
        .map_err(|e| format!("cannot read the git repository at `{root}`: {e}"))?;
    let relative = absolute.strip_prefix(&root).map_err(|_| {
        format!(
            "`{}` is not inside its git repository `{}`",
            spec.display(),
            root.display()
        )
    })?;
    // git names paths with `/` on every platform.
    let relative: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let relative = relative.join("/");
    let commit = format!("{rev}^{{commit}}");
    let known = git(&root, &["rev-parse", "--verify", "--quiet", &commit])?;
    if !known.status.success() {
        return Err(format!(
            "unknown git revision `{rev}` in `{}`",
            root.display()
        ));
    }
    let object = format!("{rev}:{relative}");
    let shown = git(&root, &["show", &object])?;
    if !shown.status.success() {
        return Err(format!(
            "`{relative}` does not exist at `{rev}`{}",
            complaint(&shown)
        ));
    }
    Ok((object, shown.stdout))
}
