//! Entry point: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    mi_assess::cli::run(mi_assess::cli::Cli::parse())
}
