//! The `ctix` binary: parse the command line, run the command, report errors.

use std::process::ExitCode;

fn main() -> ExitCode {
    match ctix::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
