//! Where generated crates and scaffolds get choreo's own crates from:
//! crates.io, a source checkout, or a git repository.
//!
//! `choreo-runtime` and `choreo-compiler` always come from the same place,
//! because the generated code and the runtime it calls are made for each
//! other.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where `choreo-runtime` (and, for a scaffold's build script,
/// `choreo-compiler`) come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrateSource {
    /// Published versions, at this version requirement.
    CratesIo(String),
    /// A checkout of choreo's repository: the directory that holds
    /// `runtime/` and `compiler/`.
    Checkout(PathBuf),
    /// choreo's repository at a git URL, at `rev` when given (otherwise the
    /// default branch).
    Git {
        /// The repository.
        url: String,
        /// A commit (or any revision cargo accepts as `rev`).
        rev: Option<String>,
    },
}

/// A `--deps` value that names no usable source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrateSourceError {
    /// Not `crates-io`, `path:DIR` or `git:URL`.
    #[error(
        "`{0}` is not a source of choreo's crates: expected `crates-io`, `path:DIR` or `git:URL`"
    )]
    Unknown(String),
    /// `path:` or `git:` with nothing after it.
    #[error("`{0}` names no {1}")]
    Empty(String, &'static str),
    /// The directory cannot be read.
    #[error("cannot use `{dir}` as a choreo checkout: {reason}")]
    Unreadable {
        /// The directory as given.
        dir: String,
        /// Why.
        reason: String,
    },
    /// The directory is not a checkout of choreo.
    #[error("`{0}` is not a checkout of choreo: it has no `runtime/Cargo.toml` and `compiler/Cargo.toml`")]
    NotACheckout(String),
}

impl CrateSource {
    /// The published crates at this compiler's own version.
    pub fn crates_io() -> Self {
        CrateSource::CratesIo(env!("CARGO_PKG_VERSION").to_string())
    }

    /// A checkout at `dir`, which must hold choreo's `runtime/` and
    /// `compiler/`; the path is made absolute, so that the written
    /// `Cargo.toml` does not depend on where choreoc ran.
    pub fn checkout(dir: impl AsRef<Path>) -> Result<Self, CrateSourceError> {
        let dir = dir.as_ref();
        let shown = dir.display().to_string();
        let abs = dir
            .canonicalize()
            .map_err(|e| CrateSourceError::Unreadable {
                dir: shown.clone(),
                reason: e.to_string(),
            })?;
        if !is_checkout(&abs) {
            return Err(CrateSourceError::NotACheckout(shown));
        }
        Ok(CrateSource::Checkout(abs))
    }

    /// The `Cargo.toml` value of the `choreo-runtime` dependency, with these
    /// cargo `features` of the runtime.
    pub fn runtime_toml(&self, features: &[&str]) -> String {
        let features = if features.is_empty() {
            String::new()
        } else {
            format!(", features = {features:?}")
        };
        match self {
            CrateSource::CratesIo(v) if features.is_empty() => toml_string(v),
            _ => format!("{{ {}{features} }}", self.location("runtime")),
        }
    }

    /// The `Cargo.toml` value of the `choreo-compiler` dependency of a build
    /// script: the library alone, without the `cli` feature (clap and
    /// choreoc's allocator), which no build script needs.
    pub fn compiler_toml(&self) -> String {
        format!(
            "{{ {}, default-features = false }}",
            self.location("compiler")
        )
    }

    /// `version = …`, `path = …` or `git = …` of the crate in `folder`.
    fn location(&self, folder: &str) -> String {
        match self {
            CrateSource::CratesIo(v) => format!("version = {}", toml_string(v)),
            CrateSource::Checkout(root) => {
                format!(
                    "path = {}",
                    toml_string(&root.join(folder).display().to_string())
                )
            }
            CrateSource::Git { url, rev } => match rev {
                Some(rev) => format!("git = {}, rev = {}", toml_string(url), toml_string(rev)),
                None => format!("git = {}", toml_string(url)),
            },
        }
    }
}

/// How a source is printed: `crates.io (0.1.0)`, `the checkout at DIR`,
/// `git URL`.
impl fmt::Display for CrateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrateSource::CratesIo(v) => write!(f, "crates.io ({v})"),
            CrateSource::Checkout(root) => write!(f, "the checkout at {}", root.display()),
            CrateSource::Git { url, rev: None } => write!(f, "git {url}"),
            CrateSource::Git { url, rev: Some(r) } => write!(f, "git {url} at {r}"),
        }
    }
}

/// Parses a `--deps` value: `crates-io`, `path:DIR` or `git:URL[#REV]`.
impl std::str::FromStr for CrateSource {
    type Err = CrateSourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "crates-io" {
            return Ok(CrateSource::crates_io());
        }
        if let Some(dir) = s.strip_prefix("path:") {
            if dir.is_empty() {
                return Err(CrateSourceError::Empty(s.to_string(), "directory"));
            }
            return CrateSource::checkout(dir);
        }
        if let Some(rest) = s.strip_prefix("git:") {
            let (url, rev) = match rest.split_once('#') {
                Some((url, rev)) if !rev.is_empty() => (url, Some(rev.to_string())),
                Some((url, _)) => (url, None),
                None => (rest, None),
            };
            if url.is_empty() {
                return Err(CrateSourceError::Empty(s.to_string(), "repository URL"));
            }
            return Ok(CrateSource::Git {
                url: url.to_string(),
                rev,
            });
        }
        Err(CrateSourceError::Unknown(s.to_string()))
    }
}

/// Whether `dir` holds choreo's `runtime/` and `compiler/` crates.
fn is_checkout(dir: &Path) -> bool {
    ["runtime", "compiler"]
        .iter()
        .all(|c| dir.join(c).join("Cargo.toml").is_file())
}

/// A TOML basic string. Rust's debug format escapes `"`, `\` and control
/// characters the way TOML does for every character a path or URL holds;
/// the one difference, `\u{…}` for other control characters, cannot occur
/// in either after `canonicalize` or a shell.
fn toml_string(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_writes_its_dependency_lines() {
        let v = CrateSource::CratesIo("0.1.0".into());
        assert_eq!(v.runtime_toml(&[]), "\"0.1.0\"");
        assert_eq!(
            v.runtime_toml(&["nats", "redis"]),
            "{ version = \"0.1.0\", features = [\"nats\", \"redis\"] }"
        );
        assert_eq!(
            v.compiler_toml(),
            "{ version = \"0.1.0\", default-features = false }"
        );
        let p = CrateSource::Checkout(PathBuf::from("/src/cho\"reo"));
        assert_eq!(
            p.runtime_toml(&["http"]),
            "{ path = \"/src/cho\\\"reo/runtime\", features = [\"http\"] }"
        );
        assert_eq!(
            p.compiler_toml(),
            "{ path = \"/src/cho\\\"reo/compiler\", default-features = false }"
        );
        let g = CrateSource::Git {
            url: "https://example.com/choreo.git".into(),
            rev: Some("abc123".into()),
        };
        assert_eq!(
            g.runtime_toml(&[]),
            "{ git = \"https://example.com/choreo.git\", rev = \"abc123\" }"
        );
    }

    #[test]
    fn deps_values_parse_or_say_what_is_wrong() {
        assert_eq!(
            "crates-io".parse::<CrateSource>(),
            Ok(CrateSource::crates_io())
        );
        assert_eq!(
            "git:https://h/c.git#v1".parse::<CrateSource>(),
            Ok(CrateSource::Git {
                url: "https://h/c.git".into(),
                rev: Some("v1".into())
            })
        );
        assert_eq!(
            "git:https://h/c.git".parse::<CrateSource>(),
            Ok(CrateSource::Git {
                url: "https://h/c.git".into(),
                rev: None
            })
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert_eq!(
            format!("path:{}", root.display()).parse::<CrateSource>(),
            Ok(CrateSource::Checkout(root.canonicalize().unwrap()))
        );
        for (bad, says) in [
            ("cratesio", "is not a source"),
            ("path:", "names no directory"),
            ("git:", "names no repository URL"),
            ("path:/definitely/not/here", "cannot use"),
            (
                &format!("path:{}", root.join("docs").display()),
                "is not a checkout of choreo",
            ),
        ] {
            let err = bad.parse::<CrateSource>().unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
