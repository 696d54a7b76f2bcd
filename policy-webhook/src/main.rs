//! `regard-webhook`: parses flags, sets up logging, runs the server.

use std::process::ExitCode;

use clap::Parser;
use policy_webhook::config::{Args, LogFormat};
use tracing_subscriber::EnvFilter;

// Evaluation allocates many short-lived values per request; glibc malloc was the largest
// single cost in profiles and does not return freed memory well under concurrency.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    policy_core::backtrace::disable_for_errors();
    let args = Args::parse();
    if let Err(e) = init_logging(args.log_format, &args.log_level) {
        eprintln!("regard-webhook: {e:#}");
        return ExitCode::from(2);
    }
    let config = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let engines = policy_core::gatekeeper::Engines {
        evaluator: config.evaluator,
        k8s_native_validation: config.k8s_native_validation,
    };
    let loader = policy_webhook::gatekeeper::loader(config.bundles.clone(), engines);
    match runtime.block_on(policy_webhook::server::run(config, loader)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("--log-level {level:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
    Ok(())
}
