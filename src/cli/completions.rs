//! `vouch completions SHELL`: the shell's completion script for every command and flag.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{write_output, Cli};
use crate::error::Result;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "vouch", &mut script);
    write_output(None, &script)?;
    Ok(0)
}
