//! `regard pull` and `regard push` (conftest's commands of the same names),
//! and the registry flags they share with `test --update` and `gk -i`. The
//! fetching itself is `policy-source`'s; this module turns flags into its
//! [`Options`], runs it on a small tokio runtime and prints the outcome.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use policy_core::policy::{LoadOptions, PolicySet, RegoVersion};
use policy_source::{Options, PullMode};

/// Flags for reaching registries and servers.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SourceArgs {
    /// Plain HTTP to every registry (loopback registries use plain HTTP without it)
    #[arg(long)]
    pub(crate) insecure: bool,
    /// conftest's switch: `--tls=false` is --insecure
    #[arg(short = 's', long = "tls", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub(crate) tls: Option<bool>,
    /// PEM file of CA certificates trusted beside the system roots, for registries and HTTPS sources
    #[arg(long = "ca-file", value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Refuse a bundle larger than this once unpacked [default: 104857600 (100 MiB)]
    #[arg(long = "max-bundle-bytes", value_name = "BYTES")]
    pub(crate) max_bundle_bytes: Option<u64>,
}

impl SourceArgs {
    pub(crate) fn options(&self) -> Options {
        Options {
            max_bytes: self
                .max_bundle_bytes
                .unwrap_or(policy_source::DEFAULT_MAX_BUNDLE_BYTES),
            insecure: self.insecure || self.tls == Some(false),
            ca_file: self.ca_file.clone(),
            docker_config: None,
        }
    }
}

/// Runs an async fetch to completion on a single-threaded runtime.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    Ok(runtime.block_on(future))
}

/// `regard pull`
#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// Sources: oci://REGISTRY/REPO[:TAG|@DIGEST], https://…(.tar.gz|.zip|file), git::URL//DIR?ref=REF, paths
    #[arg(required = true, value_name = "URL")]
    pub(crate) urls: Vec<String>,
    /// Directory to pull into
    #[arg(
        short = 'p',
        long = "policy",
        default_value = "policy",
        value_name = "DIR"
    )]
    pub(crate) policy: String,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

/// `regard push`
#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// Destination: [oci://]REGISTRY/REPOSITORY[:TAG] (`:latest` when no tag)
    #[arg(value_name = "REPOSITORY")]
    pub(crate) repository: String,
    /// Policy files or directories (their .rego files are pushed)
    #[arg(
        short = 'p',
        long = "policy",
        value_delimiter = ',',
        default_value = "policy"
    )]
    pub(crate) policy: Vec<String>,
    /// Data files or directories (.json, .yaml, .yml) [default: the policy paths]
    #[arg(short = 'd', long = "data", value_delimiter = ',')]
    pub(crate) data: Vec<String>,
    /// Rego syntax of the policies, checked before pushing: v0 or v1
    #[arg(long = "rego-version", default_value = "v1")]
    pub(crate) rego_version: String,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

/// Pulls each source into `dest` (conftest's `pull`; `--update` overwrites).
pub(crate) fn pull_all(urls: &[String], dest: &Path, mode: PullMode, opts: &Options) -> Result<()> {
    block_on(async {
        for url in urls {
            policy_source::pull(url, dest, mode, opts).await?;
        }
        Ok::<(), policy_source::Error>(())
    })??;
    Ok(())
}

pub(crate) fn run_pull(args: &PullArgs) -> Result<u8> {
    pull_all(
        &args.urls,
        Path::new(&args.policy),
        PullMode::RefuseExisting,
        &args.source.options(),
    )
    .context("download policies")?;
    Ok(0)
}

pub(crate) fn run_push(args: &PushArgs, out: &mut impl std::io::Write) -> Result<u8> {
    let data = if args.data.is_empty() {
        args.policy.clone()
    } else {
        args.data.clone()
    };
    let rego_version: RegoVersion = args.rego_version.parse()?;
    // conftest compiles before pushing: a broken bundle never reaches the registry.
    PolicySet::load(&LoadOptions {
        policy_paths: args.policy.iter().map(Into::into).collect(),
        data_paths: data.iter().map(Into::into).collect(),
        rego_version,
        ..LoadOptions::default()
    })
    .context("push bundle: loading policies")?;
    writeln!(out, "pushing bundle to: {}", args.repository)?;
    let pushed = block_on(policy_source::push(
        &args.repository,
        &args.policy,
        &data,
        &args.source.options(),
    ))?
    .context("push bundle")?;
    writeln!(out, "pushed bundle with digest: {}", pushed.digest)?;
    Ok(0)
}
