use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = lograft::cli::Cli::parse();
    match lograft::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("lograft: {err:#}");
            ExitCode::FAILURE
        }
    }
}
