//! The `hardway` binary: parse, run, map errors to exit codes. The work lives in the library.

fn main() -> std::process::ExitCode {
    match hardway::cli::run() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("hardway: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
