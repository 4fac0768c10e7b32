//! `l2l-host`: the command line. `main` sets up the process, parses the arguments (`cli`) and hands
//! the subcommand to its function.

mod cli;

use clap::Parser;

/// libtorch allocates and frees large CPU tensors all the time; glibc would map and unmap each one,
/// and every first touch of a fresh mapping is a page fault (measured: 13 million in a 12-MP export,
/// half its run time). Freed memory is kept in the process instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`l2l-host plugins inspect X | head`) made
/// `println!` panic with a backtrace. With the default action the process ends quietly, as every
/// Unix tool does.
#[cfg(unix)]
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: restores the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn end_quietly_on_a_closed_pipe() {}

fn main() {
    end_quietly_on_a_closed_pipe();
    keep_freed_memory();
    // before anything asks libtorch about devices
    let cuda = l2l_host::cuda::ensure_loaded();
    let cli = cli::Cli::parse();
    cli::init_logging(cli.verbose, cli.quiet);
    tracing::debug!(?cuda, "libtorch's CUDA backend");
    if let Err(err) = cli::execute(cli.command) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
