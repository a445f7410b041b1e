use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Behave like other Unix tools when the reader of our output goes away (`| head`).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = vouch::cli::Cli::parse();
    match vouch::cli::run(cli) {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            eprintln!("vouch: {}", vouch::cli::describe_error(&error));
            ExitCode::from(error.exit_status())
        }
    }
}
