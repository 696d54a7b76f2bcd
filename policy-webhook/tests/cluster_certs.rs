//! Certificates without cert-manager, the audit Lease and `--operation`, against the fake API
//! server: the Secret is created once and shared, the CA lands in every webhook's caBundle,
//! rotation happens before expiry and the running server serves the new certificate.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::apiserver::FakeApiServer;
use common::{Setup, Webhook, http_get};
use policy_webhook::certs::{Bundle, CertRotator, CertSettings};
use policy_webhook::leader::{LeaderElector, LeaseSettings, run_when_leader};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;

const NS: &str = "regard-system";
const SECRET_PATH: &str = "/api/v1/namespaces/regard-system/secrets/regard-webhook-cert";
const DNS: &str = "regard-webhook.regard-system.svc";
const DAY: Duration = Duration::from_secs(86_400);

fn settings(dir: &std::path::Path) -> CertSettings {
    CertSettings {
        secret_namespace: NS.into(),
        secret_name: "regard-webhook-cert".into(),
        dns_names: vec![DNS.into()],
        validating_webhook: Some("regard-webhook".into()),
        mutating_webhook: Some("regard-webhook-mutating".into()),
        ca_validity: 3650 * DAY,
        cert_validity: 365 * DAY,
        lookahead: 90 * DAY,
        check_interval: Duration::from_secs(3600),
        cert_file: dir.join("tls.crt"),
        key_file: dir.join("tls.key"),
    }
}

async fn cluster() -> FakeApiServer {
    let api = FakeApiServer::start().await;
    api.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    api.seed(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "regard-webhook"},
        "webhooks": [
            {"name": "validation.regard.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
             "clientConfig": {"service": {"name": "regard-webhook", "namespace": NS, "path": "/v1/admit"}}},
            {"name": "check-ignore-label.regard.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
             "clientConfig": {"service": {"name": "regard-webhook", "namespace": NS, "path": "/v1/admitlabel"}},
             "failurePolicy": "Fail"}
        ]
    }));
    api
}

fn secret_pems(api: &FakeApiServer) -> Option<Bundle> {
    let secret = api.get("v1", "Secret", Some(NS), "regard-webhook-cert")?;
    let field = |k: &str| {
        let b64 = secret["data"][k].as_str().unwrap_or("");
        String::from_utf8(decode_base64(b64)).unwrap()
    };
    Some(Bundle {
        ca_cert: field("ca.crt"),
        ca_key: field("ca.key"),
        cert: field("tls.crt"),
        key: field("tls.key"),
    })
}

/// Standard base64 (the fake stores Secret data as the client sent it).
fn decode_base64(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn ca_bundles(api: &FakeApiServer) -> Vec<Value> {
    let vwc = api
        .get(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            None,
            "regard-webhook",
        )
        .unwrap();
    vwc["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["clientConfig"]["caBundle"].clone())
        .collect()
}

fn b64(pem: &str) -> Value {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in pem.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    json!(out)
}

#[tokio::test]
async fn a_missing_secret_is_generated_injected_and_reused_by_a_second_replica() {
    let api = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let first = CertRotator::new(api.client(), settings(dir.path()));
    let now = SystemTime::now();
    let started = Instant::now();
    first.reconcile(now).await.unwrap();
    eprintln!(
        "first reconcile (generate, create, inject, write): {:?}",
        started.elapsed()
    );
    let bundle = secret_pems(&api).expect("secret created");
    let secret = api
        .get("v1", "Secret", Some(NS), "regard-webhook-cert")
        .unwrap();
    assert_eq!(secret["type"], json!("kubernetes.io/tls"));
    assert_eq!(
        ca_bundles(&api),
        [b64(&bundle.ca_cert), b64(&bundle.ca_cert)]
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tls.crt")).unwrap(),
        bundle.cert
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tls.key")).unwrap(),
        bundle.key
    );
    // The certificate verifies for the Service name against the CA.
    assert!(matches!(
        policy_webhook::certs::assess(&bundle, &[DNS.to_owned()], now, 90 * DAY),
        policy_webhook::certs::Verdict::Valid { .. }
    ));

    let other_dir = tempfile::tempdir().unwrap();
    let second = CertRotator::new(api.client(), settings(other_dir.path()));
    let rv = secret["metadata"]["resourceVersion"].clone();
    second.reconcile(now).await.unwrap();
    let after = api
        .get("v1", "Secret", Some(NS), "regard-webhook-cert")
        .unwrap();
    assert_eq!(
        after["metadata"]["resourceVersion"], rv,
        "the second replica wrote nothing"
    );
    assert_eq!(
        std::fs::read_to_string(other_dir.path().join("tls.crt")).unwrap(),
        bundle.cert
    );
    assert_eq!(
        api.count("create", "/api/v1/namespaces/regard-system/secrets"),
        1
    );
    assert_eq!(api.count("update", SECRET_PATH), 0);
    // The absent mutating configuration is skipped, not created.
    assert!(
        api.get(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            None,
            "regard-webhook-mutating"
        )
        .is_none()
    );
}

#[tokio::test]
async fn racing_replicas_end_up_serving_the_same_certificate() {
    let api = cluster().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let rotators: Vec<_> = dirs
        .iter()
        .map(|d| CertRotator::new(api.client(), settings(d.path())))
        .collect();
    let now = SystemTime::now();
    let results = futures_util::future::join_all(rotators.iter().map(|r| r.reconcile(now))).await;
    for r in results {
        r.unwrap();
    }
    let bundle = secret_pems(&api).unwrap();
    for d in &dirs {
        assert_eq!(
            std::fs::read_to_string(d.path().join("tls.crt")).unwrap(),
            bundle.cert
        );
    }
    assert_eq!(
        ca_bundles(&api),
        [b64(&bundle.ca_cert), b64(&bundle.ca_cert)]
    );
}

#[tokio::test]
async fn rotation_before_expiry_keeps_the_ca_and_survives_conflicts() {
    let api = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let rotator = CertRotator::new(api.client(), settings(dir.path()));
    let now = SystemTime::now();
    rotator.reconcile(now).await.unwrap();
    let first = secret_pems(&api).unwrap();

    // 300 days on, the certificate is within the 90-day lookahead; a conflicting write first.
    api.fail_next("update", SECRET_PATH, 1, 409);
    let later = now + 300 * DAY;
    rotator.reconcile(later).await.unwrap();
    let second = secret_pems(&api).unwrap();
    assert_eq!(second.ca_cert, first.ca_cert);
    assert_ne!(second.cert, first.cert);
    assert_eq!(
        api.count("update", SECRET_PATH),
        2,
        "one refused, one written"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tls.crt")).unwrap(),
        second.cert
    );

    // Near the CA's end both are replaced; the API server trusts the new CA and, until it
    // expires, the old one (replicas not yet reloaded still serve certificates from it).
    rotator.reconcile(now + 3600 * DAY).await.unwrap();
    let third = secret_pems(&api).unwrap();
    assert_ne!(third.ca_cert, first.ca_cert);
    let both = format!("{}{}", third.ca_cert, first.ca_cert);
    assert_eq!(ca_bundles(&api), [b64(&both), b64(&both)]);
    // Once the old CA has expired, only the new one is left.
    rotator.reconcile(now + 3660 * DAY).await.unwrap();
    assert_eq!(secret_pems(&api).unwrap().ca_cert, third.ca_cert);
    assert_eq!(ca_bundles(&api), [b64(&third.ca_cert), b64(&third.ca_cert)]);
}

/// The leaf certificate the server at `addr` presents for the Service name, verified
/// against `ca_pem`.
async fn served_certificate(addr: SocketAddr, ca_pem: &str) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = connector
        .connect(ServerName::try_from(DNS).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, session) = tls.get_ref();
    Ok(session.peer_certificates().unwrap()[0].as_ref().to_vec())
}

fn pem_der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

// Multi-threaded: `Webhook::start` blocks while the fake API server answers the startup requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_starts_with_a_generated_certificate_and_serves_each_rotation() {
    let api = cluster().await;
    let setup = Setup::new("policies");
    let cert_dir = setup.dir.path().join("certs");
    let args: Vec<String> = [
        "--policy-dir",
        setup.policy_dir.to_str().unwrap(),
        "--kubeconfig",
        api.kubeconfig().to_str().unwrap(),
        "--namespace",
        NS,
        "--cert-secret",
        "regard-system/regard-webhook-cert",
        "--cert-dir",
        cert_dir.to_str().unwrap(),
        "--webhook-config-name",
        "regard-webhook",
        // Rotation every ~2 s: a 4 s certificate renewed 2 s before its end.
        "--cert-validity",
        "4s",
        "--cert-rotation-lookahead",
        "2s",
        "--reload-interval",
        "100ms",
        "--shutdown-delay",
        "0s",
        "--operation",
        "webhook",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let hook = Webhook::start(&args, "");
    hook.wait_ready().await;
    let first = secret_pems(&api).expect("secret created at start");
    assert_eq!(ca_bundles(&api), [b64(&first.ca_cert), b64(&first.ca_cert)]);
    assert_eq!(
        served_certificate(hook.addr, &first.ca_cert).await.unwrap(),
        pem_der(&first.cert)
    );

    // Wait for a rotation in the Secret, then for the server to serve it.
    let rotated = api
        .wait_for("a rotated certificate", Duration::from_secs(20), |api| {
            secret_pems(api).filter(|b| b.cert != first.cert)
        })
        .await;
    assert_eq!(rotated.ca_cert, first.ca_cert);
    let seen = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let served = served_certificate(hook.addr, &first.ca_cert).await.unwrap();
        let current = secret_pems(&api).unwrap().cert;
        if served != pem_der(&first.cert) && served == pem_der(&current) {
            eprintln!(
                "new certificate served {:?} after it reached the Secret",
                seen.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving the old certificate; log:\n{}",
            hook.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        hook.log_text().contains("TLS certificate reloaded"),
        "{}",
        hook.log_text()
    );
}

#[tokio::test]
async fn without_the_webhook_operation_no_admission_port_is_served() {
    let api = cluster().await;
    let setup = Setup::new("policies");
    let args: Vec<String> = [
        "--policy-dir",
        setup.policy_dir.to_str().unwrap(),
        "--kubeconfig",
        api.kubeconfig().to_str().unwrap(),
        "--cert-secret",
        "regard-system/regard-webhook-cert",
        "--cert-dir",
        setup.dir.path().join("certs").to_str().unwrap(),
        "--operation",
        "audit,status",
        "--shutdown-delay",
        "0s",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (line, health, child) = start_without_admission(&args).await;
    let _child = KillOnDrop(child);
    assert_eq!(http_get(health, "/readyz").await.unwrap().0, 200);
    assert!(
        line.contains("\"addr\":\"none (no webhook operation)\""),
        "{line}"
    );
    // No certificates without the webhook: nothing was asked of the API server for them.
    assert_eq!(api.count("*", SECRET_PATH), 0);
    assert!(secret_pems(&api).is_none());
}

/// Kills the process when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts regard-webhook and returns its startup log line and health address.
async fn start_without_admission(args: &[String]) -> (String, SocketAddr, std::process::Child) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_regard-webhook"))
        .args(args)
        .args([
            "--addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("regard-webhook listening") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).expect("started");
    let v: Value = serde_json::from_str(&line).unwrap();
    let health = v["health_addr"].as_str().unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(health, "/readyz").await.map(|r| r.0).unwrap_or(0) != 200 {
        assert!(Instant::now() < deadline, "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (line, health, child)
}

fn lease(identity: &str) -> LeaseSettings {
    LeaseSettings {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1300),
        retry_period: Duration::from_millis(200),
        ..LeaseSettings::new(NS, "regard-audit", identity)
    }
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_when_it_stops_renewing() {
    let api = cluster().await;
    let a = LeaderElector::new(api.client(), lease("replica-a"));
    let b = LeaderElector::new(api.client(), lease("replica-b"));
    let (a_leads, b_leads) = (a.subscribe(), b.subscribe());
    let a_task = tokio::spawn(a.run(std::future::pending()));
    // b starts later, so a takes the Lease first.
    let holder = |api: &FakeApiServer| {
        api.get("coordination.k8s.io/v1", "Lease", Some(NS), "regard-audit")
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
    };
    api.wait_for("replica-a to lead", Duration::from_secs(10), |api| {
        (holder(api).as_deref() == Some("replica-a") && *a_leads.borrow()).then_some(())
    })
    .await;
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let b_task = tokio::spawn(b.run(async move {
        let _ = stopped_b.await;
    }));
    // Over several renewals, only a leads.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(*a_leads.borrow() && !*b_leads.borrow());
    }
    // a dies without releasing: b takes over once the Lease is 2 s stale.
    a_task.abort();
    let stopped = Instant::now();
    api.wait_for("replica-b to take over", Duration::from_secs(10), |api| {
        (holder(api).as_deref() == Some("replica-b") && *b_leads.borrow()).then_some(())
    })
    .await;
    let took = stopped.elapsed();
    eprintln!("takeover after the holder stopped renewing (2 s lease): {took:?}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_millis(2600),
        "{took:?}"
    );
    let l = api
        .get("coordination.k8s.io/v1", "Lease", Some(NS), "regard-audit")
        .unwrap();
    assert_eq!(l["spec"]["leaseTransitions"], json!(1));
    // Stopping b releases the Lease at once.
    stop_b.send(()).unwrap();
    b_task.await.unwrap();
    assert_eq!(holder(&api), None);
    assert!(!*b_leads.borrow());
}

#[tokio::test]
async fn a_task_runs_only_while_leading() {
    let (leader, is_leader) = tokio::sync::watch::channel(false);
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let active = Arc::new(std::sync::atomic::AtomicBool::new(false));
    struct Active(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Active {
        fn drop(&mut self) {
            self.0.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let (r, a) = (runs.clone(), active.clone());
    let gate = tokio::spawn(run_when_leader(is_leader, move || {
        let (r, a) = (r.clone(), a.clone());
        async move {
            r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            a.store(true, std::sync::atomic::Ordering::SeqCst);
            let _guard = Active(a);
            std::future::pending::<()>().await;
        }
    }));
    let settle = || tokio::time::sleep(Duration::from_millis(50));
    settle().await;
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 0);
    leader.send_replace(true);
    settle().await;
    assert!(active.load(std::sync::atomic::Ordering::SeqCst));
    leader.send_replace(false);
    settle().await;
    assert!(
        !active.load(std::sync::atomic::Ordering::SeqCst),
        "cancelled on losing the lease"
    );
    leader.send_replace(true);
    settle().await;
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    drop(leader);
    tokio::time::timeout(Duration::from_secs(5), gate)
        .await
        .unwrap()
        .unwrap();
}

/// GET /v1/audit's status code.
async fn audit_status(hook: &Webhook) -> u16 {
    http_get(hook.metrics, "/v1/audit").await.unwrap().0
}

// Multi-threaded: `Webhook::start` blocks while the fake API server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_audits_and_a_replica_takes_over_on_shutdown() {
    let api = FakeApiServer::start().await;
    api.register(FakeApiServer::builtin_resource(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
    ));
    let setup = Setup::new("policies-sync");
    let kubeconfig = api.kubeconfig().to_str().unwrap().to_owned();
    let start = |name: &str| {
        setup.start(&[
            "--sync-data",
            "--kubeconfig",
            &kubeconfig,
            "--audit-interval",
            "200ms",
            "--namespace",
            "default",
            "--pod-name",
            name,
            "--audit-lease-duration",
            "3s",
        ])
    };
    let holder = |api: &FakeApiServer| {
        api.get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("default"),
            "regard-audit",
        )
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
    };
    let mut a = start("replica-a");
    a.wait_ready().await;
    api.wait_for(
        "replica-a to hold the lease",
        Duration::from_secs(10),
        |api| (holder(api).as_deref() == Some("replica-a")).then_some(()),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while audit_status(&a).await != 200 {
        assert!(
            Instant::now() < deadline,
            "no audit on the leader:\n{}",
            a.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = start("replica-b");
    b.wait_ready().await;
    // Well past several audit intervals, the follower has not audited.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(audit_status(&b).await, 503, "{}", b.log_text());
    assert_eq!(holder(&api).as_deref(), Some("replica-a"));

    // The leader shuts down and releases the Lease; the follower takes over well before the
    // 3 s lease duration would have run out.
    let stopped = Instant::now();
    a.terminate();
    api.wait_for(
        "replica-b to hold the lease",
        Duration::from_secs(10),
        |api| (holder(api).as_deref() == Some("replica-b")).then_some(()),
    )
    .await;
    while audit_status(&b).await != 200 {
        assert!(
            Instant::now() < stopped + Duration::from_secs(10),
            "{}",
            b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "audit on the next replica after SIGTERM of the holder: {:?}",
        stopped.elapsed()
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopped.elapsed()
    );
}
