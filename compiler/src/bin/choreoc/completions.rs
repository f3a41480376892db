//! `choreoc completions`.

use clap::CommandFactory;
use clap_complete::Shell;

/// Print a shell completion script for choreoc
///
/// Install it where your shell looks, for example:
///   bash        choreoc completions bash > ~/.local/share/bash-completion/completions/choreoc
///   zsh         choreoc completions zsh > ~/.zfunc/_choreoc   (with ~/.zfunc in fpath)
///   fish        choreoc completions fish > ~/.config/fish/completions/choreoc.fish
///   PowerShell  choreoc completions powershell >> $PROFILE
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

pub fn run(args: Args) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut crate::Cli::command(),
        "choreoc",
        &mut script,
    );
    crate::write_stdout(&script)
}
