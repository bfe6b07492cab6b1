//! The `hardway` binary: parse, run, map errors to exit codes. The work lives in the library.

fn main() -> std::process::ExitCode {
    match hardway::cli::run() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            // One line of causes: library errors often show their source already; print each cause once.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("hardway: error: {msg}");
            // A machine asked for JSON: it gets the error as JSON too, with the same exit status.
            if std::env::args().skip(1).any(|a| a == "--json") {
                println!("{}", hardway::cli::error_json(&e, &msg));
            }
            std::process::ExitCode::from(hardway::cli::exit_code(&e))
        }
    }
}
