//! `regard pull` and `regard push` (conftest's commands of the same names),
//! `regard gk push` (Gatekeeper bundles, which gator users build with
//! `oras push`), and the registry flags they share with `test --update` and
//! `gk -i`. The fetching itself is `policy-source`'s; this module turns flags
//! into its [`Options`], checks what is pushed, runs the transfer on a small
//! tokio runtime and prints the outcome.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use policy_core::Value;
use policy_core::gatekeeper::PolicyBundle;
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
            cache: None,
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
    /// Keep an absolute --policy as it is (without it, conftest reads it
    /// under the working directory: `-p /x` pulls into `./x`)
    #[arg(
        long = "absolute-paths",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = crate::cli::go_bool
    )]
    pub(crate) absolute_paths: bool,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

/// The directory `regard pull` writes to. conftest joins `--policy` onto
/// `.`, which turns an absolute path into one under the working directory
/// (`/x/p` is `x/p`); `--absolute-paths` keeps it absolute.
fn pull_dir(policy: &str, absolute_paths: bool) -> PathBuf {
    let path = Path::new(policy);
    if absolute_paths || !path.has_root() {
        return path.to_path_buf();
    }
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
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
        &pull_dir(&args.policy, args.absolute_paths),
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
    let loaded = PolicySet::load(&LoadOptions {
        policy_paths: args.policy.iter().map(Into::into).collect(),
        data_paths: data.iter().map(Into::into).collect(),
        rego_version,
        ..LoadOptions::default()
    });
    if let Err(e) = loaded {
        let e = anyhow::Error::from(e).context("push bundle: loading policies");
        // Gatekeeper YAML read as conftest data rarely merges; say where it belongs.
        return Err(match gatekeeper_file(&data) {
            Some(file) => anyhow::anyhow!(
                "{e:#}\nhint: {file} holds Gatekeeper resources, which `regard push` reads as \
                 conftest data; publish a Gatekeeper bundle with `regard gk push {} -f PATH`",
                args.repository
            ),
            None => e,
        });
    }
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

/// The first YAML or JSON file under `paths` holding a `*.gatekeeper.sh` resource.
fn gatekeeper_file(paths: &[String]) -> Option<String> {
    let files = policy_source::gatekeeper_paths(paths).ok()?;
    files.iter().find_map(|path| {
        let name = path.to_string_lossy().into_owned();
        let docs = crate::gk_cmd::load_inputs(std::slice::from_ref(&name)).ok()?;
        docs.iter()
            .any(|(_, d)| {
                text_at(d, "apiVersion")
                    .split_once('/')
                    .is_some_and(|(group, _)| group.ends_with("gatekeeper.sh"))
            })
            .then_some(name)
    })
}

/// `regard gk push`
#[derive(Debug, Args)]
pub(crate) struct GkPushArgs {
    /// Destination: [oci://]REGISTRY/REPOSITORY[:TAG] (`:latest` when no tag)
    #[arg(value_name = "REPOSITORY")]
    pub(crate) repository: String,
    /// File or directory with templates, constraints, mutators, ValidatingAdmissionPolicies,
    /// objects or suites (repeatable); its .yaml, .yml and .json files are pushed, one layer each
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub(crate) filenames: Vec<String>,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

/// `regard gk push`: every document must be a Kubernetes object (gator refuses a file that is
/// not), templates must compile, constraints must fit their templates' schemas and mutators
/// must be valid before anything is uploaded. A constraint whose template is not among the
/// files is pushed with a warning: its template may come from another image.
pub(crate) fn run_gk_push(
    args: &GkPushArgs,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> Result<u8> {
    let paths: Vec<String> = policy_source::gatekeeper_paths(&args.filenames)
        .context("push bundle")?
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let docs = crate::gk_cmd::load_inputs(&paths).context("push bundle")?;
    check_kubernetes_objects(&docs).context("push bundle")?;
    let (_, foreign) = PolicyBundle::from_partial_documents(docs.clone()).context("push bundle")?;
    crate::mutate_cmd::load_mutators(&docs).context("push bundle")?;
    for doc in &foreign {
        let kind = text_at(&doc.value, "kind");
        writeln!(
            err,
            "warning: {}: {kind} {:?}: no ConstraintTemplate of kind {kind:?} among the files; pushed unchecked",
            doc.source,
            name_of(&doc.value)
        )?;
    }
    writeln!(out, "pushing bundle to: {}", args.repository)?;
    let pushed = block_on(policy_source::push_gatekeeper(
        &args.repository,
        &paths,
        &args.source.options(),
    ))?
    .context("push bundle")?;
    writeln!(out, "pushed bundle with digest: {}", pushed.digest)?;
    Ok(0)
}

/// gator reads every file of an image as Kubernetes objects and fails on one that is not:
/// refuse such a file before it is published.
fn check_kubernetes_objects(docs: &[(String, Value)]) -> Result<()> {
    let mut index: Option<(&str, usize)> = None;
    for (file, doc) in docs {
        let n = match index {
            Some((f, n)) if f == file => n + 1,
            _ => 1,
        };
        index = Some((file, n));
        if text_at(doc, "apiVersion").is_empty() || text_at(doc, "kind").is_empty() {
            anyhow::bail!(
                "{file}: document {n} is not a Kubernetes object (no apiVersion or kind); gator's --image refuses such files"
            );
        }
    }
    Ok(())
}

fn text_at<'a>(doc: &'a Value, key: &str) -> &'a str {
    match &doc[key] {
        Value::String(s) => s,
        _ => "",
    }
}

fn name_of(doc: &Value) -> &str {
    match &doc["metadata"]["name"] {
        Value::String(s) => s,
        _ => "",
    }
}
