use std::process::ExitCode;

use clap::Parser;

/// Fixes glibc's allocation thresholds. Left dynamic, they hand the network's freed read
/// buffers (up to 400 KiB each) back to the kernel, and every new one is faulted in and
/// zeroed again: a quarter of the system time of a registry blob's transfer. Memory that
/// is freed now stays for reuse, as long as it is less than the trim threshold.
fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

fn main() -> ExitCode {
    // Behave like other Unix tools when the reader of our output goes away (`| head`).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_buffers();
    let cli = vouch::cli::Cli::parse();
    match vouch::cli::run(cli) {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            eprintln!("vouch: {}", vouch::cli::describe_error(&error));
            ExitCode::from(error.exit_status())
        }
    }
}
