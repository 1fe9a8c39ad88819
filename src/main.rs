use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3 alike; the test below checks
/// it against the linked library's default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long (ms) mimalloc keeps freed memory before it gives it back to the OS. Its default,
/// 1000 ms, kept ~70 MiB more resident during ingest on the standard workload, where tantivy
/// frees its per-commit buffers every second; 100 ms gives them back at a few % of CPU.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Memory settings for a small machine, before anything else runs.
///
/// - No transparent huge pages: mimalloc asks for them (`MADV_HUGEPAGE`), and a 2 MiB page a
///   thread touched once stays resident as a whole: ~100 MiB of the ingest RSS on the standard
///   workload, and no CPU saved. The same as mimalloc's `MIMALLOC_ALLOW_THP=0`, which only
///   works from the environment.
/// - An operator's `MIMALLOC_PURGE_DELAY` still wins over [`PURGE_DELAY_MS`].
fn tune_memory() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers and only sets a flag on this
    // process. It fails only on kernels older than 3.15, where there is nothing to do.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called first in main, before any other thread exists (mimalloc's options
        // are not synchronised).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

fn main() -> ExitCode {
    tune_memory();
    let cli = lograft::cli::Cli::parse();
    match lograft::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("lograft: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option index is mimalloc's purge delay: its documented default is 1000 ms, and
    /// setting it is read back.
    #[test]
    fn the_purge_delay_option_is_mimallocs() {
        // SAFETY: this test is the only code in its process that touches mimalloc's options.
        unsafe {
            if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
                assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            }
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
            assert_eq!(
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                PURGE_DELAY_MS
            );
        }
    }
}
