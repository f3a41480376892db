//! Where `choreoc generate` and `choreoc new` get choreo's crates from.
//!
//! A choreoc built from a source checkout (`cargo install --path compiler`,
//! `cargo run -p choreo-compiler`) depends on that checkout, whose crates
//! match it exactly and which works before anything is published; any
//! other choreoc depends on crates.io at its own version. `--deps` chooses
//! otherwise.

use choreo_compiler::codegen::{self, CrateSource};
use std::path::Path;

/// The `--deps` option of `generate` and `new`.
#[derive(Debug, clap::Args)]
pub struct DepsArg {
    /// Where choreo's crates come from: `crates-io` (the published
    /// version), `path:DIR` (a checkout of choreo's repository) or
    /// `git:URL[#REV]` [default: the checkout choreoc was built from, if it
    /// is still there; otherwise crates-io]
    #[arg(long, value_name = "SOURCE", value_parser = parse_source)]
    deps: Option<CrateSource>,
}

fn parse_source(s: &str) -> Result<CrateSource, String> {
    s.parse()
        .map_err(|e: codegen::CrateSourceError| e.to_string())
}

/// The checkout this choreoc was compiled from, if it still holds choreo's
/// crates. Cargo sets `CARGO_MANIFEST_DIR` to the `compiler/` directory it
/// builds; a build from crates.io has no `runtime/` beside it, which
/// [`CrateSource::checkout`] refuses.
fn built_from() -> Option<CrateSource> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    CrateSource::checkout(root).ok()
}

impl DepsArg {
    /// The chosen source, printed on standard error with why it was chosen.
    pub fn resolve(&self) -> CrateSource {
        let (source, why) = match &self.deps {
            Some(source) => (source.clone(), "--deps"),
            None => match built_from() {
                Some(checkout) => (
                    checkout,
                    "the checkout choreoc was built from; --deps chooses another",
                ),
                None => (
                    CrateSource::crates_io(),
                    "choreoc was not built from a checkout; --deps chooses another",
                ),
            },
        };
        say!("choreo's crates come from {source} ({why})");
        source
    }
}
