//! The `projector` binary. See [`projector::cli`].

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc: sled, the pipeline and wasmtime allocate per event, and glibc
/// malloc cost the engine-only pipeline 9% to 27% of its rate
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Colour only on a terminal, and never with NO_COLOR set
    // (https://no-color.org): a log written to a file or a pipe is plain.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("PROJECTOR_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .init();
    let cli = projector::cli::Cli::parse();
    match projector::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", projector::cli::describe_error(&err));
            ExitCode::from(projector::cli::exit_status(&err))
        }
    }
}
