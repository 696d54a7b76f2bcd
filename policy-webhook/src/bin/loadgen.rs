//! `regard-loadgen`: a small HTTPS load generator for `regard-webhook`, and the no-op TLS axum
//! server used as the ceiling to compare against.
//!
//! * `run`: POSTs one AdmissionReview over keep-alive HTTP/1.1 connections, either at a fixed
//!   rate (open loop: latency is measured from each request's scheduled send time, so a stall
//!   is not hidden by the client waiting) or as fast as possible (`--rate 0`). Bounded by
//!   `--duration`. Prints throughput and latency percentiles.
//! * `noop-server`: the same TLS/HTTP stack (rustls, hyper HTTP/1.1, axum) with a handler that
//!   reads the body and returns a fixed "allowed" AdmissionReview.
//!
//! Only for loopback benchmarking of servers you run yourself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
#[command(
    name = "regard-loadgen",
    about = "HTTPS load generator for regard-webhook"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Send load and report latency.
    Run(RunArgs),
    /// Serve a no-op TLS axum handler (the throughput ceiling).
    NoopServer(NoopArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Server address (loopback).
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// CA bundle that signed the server certificate.
    #[arg(long)]
    ca: PathBuf,
    /// Name the certificate is checked against.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// AdmissionReview JSON to POST.
    #[arg(long)]
    body: PathBuf,
    /// Path to POST to (`/v1/admit`, `/v1/mutate`).
    #[arg(long, default_value = "/v1/admit")]
    path: String,
    /// Count a response as an error unless its body contains this text (e.g.
    /// `"patchType":"JSONPatch"` for `/v1/mutate`, so a run that stopped mutating shows).
    #[arg(long)]
    expect: Option<String>,
    /// Requests per second; 0 = as fast as the connections allow.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Measured duration.
    #[arg(long, default_value = "20s", value_parser = policy_webhook::config::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up before it.
    #[arg(long, default_value = "3s", value_parser = policy_webhook::config::parse_duration)]
    warmup: Duration,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Client runtime threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, clap::Args)]
struct NoopArgs {
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    #[arg(long)]
    tls_cert_file: PathBuf,
    #[arg(long)]
    tls_key_file: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            rt.block_on(run(args))
        }
        Cmd::NoopServer(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(noop_server(args))
        }
    }
}

struct Worker {
    /// Send → response complete.
    latencies_us: Vec<u32>,
    /// Scheduled send time → response complete (includes any backlog at the client).
    corrected_us: Vec<u32>,
    errors: u64,
    last_done: Option<Instant>,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if !args.addr.ip().is_loopback() {
        bail!("--addr must be a loopback address");
    }
    let body =
        Bytes::from(std::fs::read(&args.body).with_context(|| args.body.display().to_string())?);
    let ca = std::fs::read(&args.ca).with_context(|| args.ca.display().to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(args.server_name.clone())?;

    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let mut tasks = Vec::new();
    for w in 0..args.connections {
        let connector = connector.clone();
        let name = name.clone();
        let body = body.clone();
        let path = args.path.clone();
        let expect = args.expect.clone();
        let (rate, conns, addr) = (args.rate, args.connections, args.addr);
        tasks.push(tokio::spawn(async move {
            let mut out = Worker {
                latencies_us: Vec::new(),
                corrected_us: Vec::new(),
                errors: 0,
                last_done: None,
            };
            let mut sender = None;
            let mut k: u64 = 0;
            loop {
                let slot = k * conns as u64 + w as u64;
                let scheduled = match slot.saturating_mul(1_000_000_000).checked_div(rate) {
                    Some(nanos) => start + Duration::from_nanos(nanos),
                    None => Instant::now(),
                };
                k += 1;
                if scheduled >= end {
                    break;
                }
                tokio::time::sleep_until(scheduled.into()).await;
                let sent = Instant::now();
                if sender.is_none() {
                    sender = connect(&connector, addr, name.clone()).await.ok();
                }
                let Some(tx) = sender.as_mut() else {
                    out.errors += u64::from(scheduled >= measure_from);
                    continue;
                };
                let req = hyper::Request::post(path.as_str())
                    .header("host", "localhost")
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()));
                let ok = match req {
                    Ok(req) => match tx.send_request(req).await {
                        Ok(resp) => {
                            let status = resp.status();
                            let body_ok = match resp.into_body().collect().await {
                                Err(_) => false,
                                Ok(body) => expect
                                    .as_ref()
                                    .is_none_or(|text| contains(&body.to_bytes(), text.as_bytes())),
                            };
                            status.is_success() && body_ok
                        }
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                if !ok {
                    sender = None;
                }
                if scheduled >= measure_from {
                    if ok {
                        out.latencies_us.push(micros(sent.elapsed()));
                        // tokio timers fire up to 1 ms late: lateness below that is the
                        // client's timer, not a backlog.
                        let lag = sent.saturating_duration_since(scheduled);
                        let lag = if lag > Duration::from_millis(1) {
                            lag
                        } else {
                            Duration::ZERO
                        };
                        out.corrected_us.push(micros(sent.elapsed() + lag));
                        out.last_done = Some(Instant::now());
                    } else {
                        out.errors += 1;
                    }
                }
            }
            out
        }));
    }
    let mut all = Vec::new();
    let mut corrected = Vec::new();
    let mut errors = 0;
    let mut last_done = measure_from;
    for t in tasks {
        let w = t.await?;
        last_done = last_done.max(w.last_done.unwrap_or(measure_from));
        all.extend(w.latencies_us);
        corrected.extend(w.corrected_us);
        errors += w.errors;
    }
    all.sort_unstable();
    corrected.sort_unstable();
    let n = all.len();
    let pct_of = |v: &[u32], p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let idx = ((p / 100.0) * v.len() as f64).ceil() as usize;
        f64::from(v[idx.clamp(1, v.len()) - 1]) / 1000.0
    };
    let pct = |p: f64| pct_of(&all, p);
    // Completions over the time they took: a server that falls behind a fixed rate finishes
    // the measured requests after the window, and its throughput is lower than the target.
    let secs = last_done
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(args.duration.as_secs_f64());
    println!(
        "requests={n} errors={errors} duration_s={secs:.1} throughput_rps={:.0} target_rps={} connections={}",
        n as f64 / secs,
        args.rate,
        args.connections
    );
    println!(
        "latency_ms p50={:.3} p90={:.3} p99={:.3} p99.9={:.3} max={:.3}",
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        pct(100.0)
    );
    if args.rate > 0 {
        println!(
            "from_schedule_ms p50={:.3} p99={:.3} max={:.3}",
            pct_of(&corrected, 50.0),
            pct_of(&corrected, 99.0),
            pct_of(&corrected, 100.0)
        );
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: ServerName<'static>,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = connector.connect(name, tcp).await?;
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(tx)
}

const NOOP_RESPONSE: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true,"status":{"code":200}}}"#;

async fn noop(body: Bytes) -> ([(&'static str, &'static str); 1], &'static str) {
    drop(body);
    ([("content-type", "application/json")], NOOP_RESPONSE)
}

async fn noop_server(args: NoopArgs) -> anyhow::Result<()> {
    let files = policy_webhook::config::TlsFiles {
        cert_file: args.tls_cert_file,
        key_file: args.tls_key_file,
        client_ca_file: None,
        client_cn: None,
        min_version: policy_webhook::config::TlsVersion::Tls13,
    };
    let material = policy_webhook::tls::load(&files)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(material.config);
    let app = Router::new()
        .route("/v1/admit", post(noop))
        .route("/v1/mutate", post(noop));
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    eprintln!("noop server on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                .await;
        });
    }
}
