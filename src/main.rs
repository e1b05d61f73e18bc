//! Entry point: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc rather than the system allocator: a run makes tens of millions of small, short-lived
/// allocations (records, evidence, controls) beside long-lived indexes, and glibc's allocator
/// kept about twice the live heap resident and spent a third of the CPU in malloc and free
/// (`cargo bench --bench scale -- --estate 10000` shows both).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match mi_assess::cli::Cli::try_parse() {
        Ok(cli) => mi_assess::cli::run(cli),
        // --help and --version are not errors; everything else is a usage error (sysexits 64).
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = e.print();
            ExitCode::from(mi_assess::cli::EXIT_USAGE)
        }
    }
}
