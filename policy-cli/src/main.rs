//! `regard`: conftest-compatible policy checks and Gatekeeper-compatible constraint tests.

mod gk_cmd;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Rego evaluation allocates many small values; mimalloc cuts that cost.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "regard",
    version,
    about = "Policy checks for configuration files and Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Gatekeeper ConstraintTemplates and Constraints (gator-compatible: test, verify, expand).
    Gk(gk_cmd::GkArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match &cli.command {
        Command::Gk(args) => gk_cmd::run(args, &mut out),
    };
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(code), Ok(())) => ExitCode::from(code),
        (Err(e), _) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        (_, Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        (Err(e), _) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
        (Ok(_), Err(e)) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
