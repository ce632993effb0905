//! Thin entry point: parse, initialise tracing, run, print the error chain
//! once, exit with 0 (success), 1 (build or deploy failed) or 2 (bad input).

use std::process::ExitCode;

use fastdeploy::error::{Exit, chain_message};

fn main() -> ExitCode {
    let cli = match fastdeploy::cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::BadInput.into()
            } else {
                Exit::Success.into()
            };
        }
    };
    fastdeploy::execute::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let result = runtime.block_on(fastdeploy::execute::main(cli));
    fastdeploy::timings::finish();
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            let exit = fastdeploy::error::exit_for(&err);
            fastdeploy::execute::report_fatal(&chain_message(&err));
            exit.into()
        }
    }
}
