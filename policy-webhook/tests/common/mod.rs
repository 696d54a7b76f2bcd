//! Test support: a throw-away PKI (rcgen), the real `regard-webhook` binary on loopback, an HTTPS
//! client that verifies the served certificate (hyper + rustls), and a plain-HTTP GET.
#![allow(dead_code)]

pub mod apiserver;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/webhook");

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn json_str(s: &str) -> serde_json::Value {
    json(s.as_bytes())
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

/// A CA able to issue server and client certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: String,
}

/// A certificate and its key, PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = issuer.pem();
        Ca { issuer, pem }
    }

    /// A serving certificate for `localhost` and 127.0.0.1, valid until `year`.
    pub fn server(&self, year: i32) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(DnType::CommonName, "regard-webhook");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_after = rcgen::date_time_ymd(year, 1, 1);
        self.leaf(&params)
    }

    /// A client certificate (CN kube-apiserver).
    pub fn client(&self) -> Leaf {
        self.client_named("kube-apiserver")
    }

    /// A client certificate with subject CN `name`.
    pub fn client_named(&self, name: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.leaf(&params)
    }

    fn leaf(&self, params: &CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// Writes a file atomically (temp + rename), as a Secret volume update appears to readers.
pub fn write_atomic(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Files the server is started with.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
    pub policy_dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Setup {
    /// A temp dir with a CA, a serving cert and a copy of `tests/webhook/<policies>`.
    pub fn new(policies: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("regard test CA");
        let leaf = ca.server(2090);
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        std::fs::write(&cert, &leaf.cert_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        let policy_dir = dir.path().join("policies");
        std::fs::create_dir(&policy_dir).unwrap();
        let src = Path::new(FIXTURES).join(policies);
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), policy_dir.join(entry.file_name())).unwrap();
        }
        Setup {
            dir,
            ca,
            policy_dir,
            cert,
            key,
        }
    }

    /// Edits `constraints.yaml` (atomically, as a ConfigMap update would) so that
    /// `pod-must-have-app` also requires the label `tier`.
    #[allow(dead_code)] // not every test binary edits policies
    pub fn require_tier_label(&self) {
        let constraints = self.policy_dir.join("constraints.yaml");
        let original = std::fs::read_to_string(&constraints).unwrap();
        let edited = original.replace(
            "labels: [\"app\", \"owner\"]",
            "labels: [\"app\", \"owner\", \"tier\"]",
        );
        assert_ne!(original, edited);
        write_atomic(&constraints, edited.as_bytes());
    }

    /// Starts the webhook on this setup's policy directory.
    pub fn start(&self, extra: &[&str]) -> Webhook {
        let dir = self.policy_dir.display().to_string();
        self.start_with(&["--policy-dir", &dir], extra)
    }

    /// Starts the webhook with this setup's certificate, a fast reload
    /// interval and no shutdown delay (unless `extra` sets one), serving the
    /// policies `source` names (`--policy-dir DIR`, `--bundle NAME`, …).
    pub fn start_with(&self, source: &[&str], extra: &[&str]) -> Webhook {
        let mut args: Vec<String> = source.iter().map(|s| (*s).to_owned()).collect();
        args.extend([
            "--tls-cert-file".into(),
            self.cert.display().to_string(),
            "--tls-key-file".into(),
            self.key.display().to_string(),
        ]);
        if !extra.contains(&"--reload-interval") {
            args.extend(["--reload-interval".into(), "100ms".into()]);
        }
        if !extra.contains(&"--shutdown-delay") {
            args.extend(["--shutdown-delay".into(), "0s".into()]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Webhook::start(&args, &self.ca.pem)
    }
}

/// A running `regard-webhook`, killed on drop.
pub struct Webhook {
    child: Child,
    pub addr: SocketAddr,
    pub health: SocketAddr,
    pub metrics: SocketAddr,
    pub ca_pem: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    pub fn start(args: &[String], ca_pem: &str) -> Webhook {
        let mut child = Command::new(env!("CARGO_BIN_EXE_regard-webhook"))
            .args(args)
            .args(["--addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0"])
            .args(["--metrics-addr", "127.0.0.1:0", "--log-level", "info"])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start regard-webhook");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log_writer = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["message"] == "regard-webhook listening"
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(v);
                }
                log_writer.lock().unwrap().push(line);
            }
        });
        let Ok(listening) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("regard-webhook did not start: {:?}", log.lock().unwrap());
        };
        let addr = |k: &str| listening[k].as_str().unwrap().parse().unwrap();
        // A process without the webhook operation (`--operation audit,status`) has no
        // admission listener and logs `addr` as "none (...)"; port 0 marks it unbound.
        let admission = listening["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        Webhook {
            addr: admission,
            health: addr("health_addr"),
            metrics: addr("metrics_addr"),
            child,
            ca_pem: ca_pem.to_owned(),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (bounded) until /readyz answers 200.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http_get(self.health, "/readyz").await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready in time; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `body` to `/v1/admit` until the answer's status message is `message` (bounded:
    /// 30 s), e.g. after the policies changed; `what` names the wait in the failure.
    pub async fn wait_message(&self, body: &[u8], message: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.admit(body).await;
            if reply.json()["response"]["status"]["message"] == message {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: still {}; log:\n{}",
                reply.json()["response"]["status"]["message"],
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until the log has a line containing `needle`.
    pub async fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn client(&self) -> HttpsClient {
        HttpsClient::new(&self.ca_pem, None)
    }

    pub async fn admit(&self, body: &[u8]) -> Reply {
        self.client()
            .post(self.addr, "/v1/admit", body)
            .await
            .unwrap()
    }

    pub async fn metrics_text(&self) -> String {
        let (code, body) = http_get(self.metrics, "/metrics").await.unwrap();
        assert_eq!(code, 200);
        body
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for the process to exit on its own.
    pub fn terminate_wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response: status, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        json(&self.body)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// HTTPS client that trusts one CA and optionally presents a client certificate.
#[derive(Clone)]
pub struct HttpsClient {
    connector: tokio_rustls::TlsConnector,
}

impl HttpsClient {
    pub fn new(ca_pem: &str, identity: Option<&Leaf>) -> HttpsClient {
        Self::with_versions(ca_pem, identity, rustls::DEFAULT_VERSIONS)
    }

    pub fn with_versions(
        ca_pem: &str,
        identity: Option<&Leaf>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> HttpsClient {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match identity {
            Some(leaf) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
                        .map(Result::unwrap)
                        .collect(),
                    PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        HttpsClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }

    /// TLS handshake; returns the stream and the server's leaf certificate.
    pub async fn connect(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.connector.connect(name, tcp))
            .await
            .map_err(|_| std::io::Error::other("handshake timed out"))?
    }

    /// One POST on a fresh connection.
    pub async fn post(&self, addr: SocketAddr, path: &str, body: &[u8]) -> Result<Reply, String> {
        self.request(
            addr,
            "POST",
            path,
            body,
            &[("content-type", "application/json")],
        )
        .await
    }

    pub async fn request(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let stream = self.connect(addr).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let fut = async {
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes()
                .to_vec();
            Ok(Reply {
                status,
                content_type,
                body,
            })
        };
        tokio::time::timeout(Duration::from_secs(20), fut)
            .await
            .map_err(|_| "request timed out".to_owned())?
    }
}

/// Plain-HTTP GET, `Connection: close`; returns status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad response {text:?}")))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((code, body))
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| std::io::Error::other("GET timed out"))?
}

/// The value of a Prometheus sample line `name{labels} value` (exact series text before the space).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.split(' ').next())
            .and_then(|v| v.parse().ok())
    })
}
