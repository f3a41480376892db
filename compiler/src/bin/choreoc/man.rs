//! `choreoc man`.

use crate::{input, status};
use clap::CommandFactory;
use std::path::PathBuf;

/// Print choreoc's manual page (roff), or write one page per command
///
/// Without --out, the page of choreoc itself goes to standard output:
///   choreoc man | man -l -
/// With --out DIR, DIR gets choreoc.1 and choreoc-COMMAND.1 for every
/// command, ready for a `man1` directory on MANPATH.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Write every page into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> u8 {
    let cmd = crate::Cli::command();
    let Some(dir) = args.out else {
        let mut page = Vec::new();
        if let Err(e) = clap_mangen::Man::new(cmd).render(&mut page) {
            input::fail(&format!("cannot render the manual page: {e}"));
            return status::FAILURE;
        }
        return crate::write_stdout(&page);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        input::fail(&format!("cannot create `{}`: {e}", dir.display()));
        return status::FAILURE;
    }
    match clap_mangen::generate_to(cmd, &dir) {
        Ok(()) => {
            say!("wrote the manual pages to {}", dir.display());
            status::OK
        }
        Err(e) => {
            input::fail(&format!(
                "cannot write the manual pages to `{}`: {e}",
                dir.display()
            ));
            status::FAILURE
        }
    }
}
