//! `regard`: conftest-compatible policy checks for configuration files and
//! Gatekeeper-compatible constraint tests, on one Rego engine.
//!
//! This binary parses flags, calls `policy-core`, renders results and maps
//! outcomes to exit codes. Policy logic lives in the core.

mod bundle_run;
mod cli;
mod config;
mod doc_cmd;
mod gk_cmd;
mod gk_vap;
mod kube_run;
mod mutate_cmd;
mod output;
mod parse_cmd;
mod plugin_cmd;
mod policies_cmd;
mod reformat_cmd;
mod source_cmd;
mod test_cmd;
mod verify_cmd;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command};

// Rego evaluation allocates many small values; mimalloc cuts that cost (~25 %
// CPU on the gk benchmark corpus).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    policy_core::backtrace::disable_for_errors();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with exit 0; usage errors exit 1,
            // as conftest's do.
            let code = u8::from(err.use_stderr());
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let result = match with_global_config(cli.config_file, cli.command) {
        Err(err) => Err(err),
        Ok(Command::Test(args)) => test_cmd::run(*args),
        Ok(Command::Verify(args)) => verify_cmd::run(*args),
        Ok(Command::Parse(args)) => {
            parse_cmd::run(&args, &mut std::io::stdout().lock()).map(|()| 0)
        }
        Ok(Command::Gk(args)) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            gk_cmd::run(&args, &mut out).and_then(|code| {
                out.flush()?;
                Ok(code)
            })
        }
        Ok(Command::Reformat(args)) => {
            let mut out = std::io::stdout().lock();
            reformat_cmd::run(&args, &mut out)
        }
        Ok(Command::Doc(args)) => doc_cmd::run(&args),
        Ok(Command::Plugin(args)) => plugin_cmd::run(&args),
        Ok(Command::External(args)) => plugin_cmd::run_external(&args),
        Ok(Command::Pull(args)) => source_cmd::run_pull(&args),
        Ok(Command::Push(args)) => source_cmd::run_push(&args, &mut std::io::stdout().lock()),
        Ok(Command::Policies(args)) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            policies_cmd::run(&args, &mut out).and_then(|code| {
                out.flush()?;
                Ok(code)
            })
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // A closed pipe (`regard test … | head`) is not a failure.
            for cause in err.chain() {
                if let Some(io) = cause.downcast_ref::<std::io::Error>()
                    && io.kind() == std::io::ErrorKind::BrokenPipe
                {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("Error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Hands a `-c FILE` given before the command (conftest's persistent flag)
/// to the command, which also accepts it after its name.
fn with_global_config(config: Option<String>, command: Command) -> anyhow::Result<Command> {
    let Some(file) = config else {
        return Ok(command);
    };
    let own = match &command {
        Command::Test(args) => &args.policy.config_file,
        Command::Verify(args) => &args.policy.config_file,
        Command::Parse(_)
        | Command::Gk(_)
        | Command::Policies(_)
        | Command::Reformat(_)
        | Command::Doc(_)
        | Command::Plugin(_)
        | Command::External(_)
        | Command::Pull(_)
        | Command::Push(_) => {
            anyhow::bail!("--config-file applies to the test and verify commands only")
        }
    };
    if own.is_some() {
        anyhow::bail!("--config-file is given twice, before and after the command");
    }
    Ok(match command {
        Command::Test(mut args) => {
            args.policy.config_file = Some(file);
            Command::Test(args)
        }
        Command::Verify(mut args) => {
            args.policy.config_file = Some(file);
            Command::Verify(args)
        }
        other => other,
    })
}
