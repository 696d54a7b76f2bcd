//! End-to-end tests of the serving layer: the real `regard-webhook` binary on 127.0.0.1 with a
//! test PKI, spoken to over verified HTTPS. Bad input, TLS faults, slow clients, mTLS, certificate
//! rotation, health, metrics and shutdown.

mod common;

use std::time::Duration;

use common::{Ca, HttpsClient, Setup, fixture, http_get, sample, write_atomic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF or error (bounded); returns the bytes read.
async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("connection was not closed by the server");
    buf
}

#[tokio::test]
async fn bad_bodies_get_400_and_the_server_stays_healthy() {
    let setup = Setup::new("policies");
    let hook = setup.start(&["--max-body-bytes", "65536"]);
    let cases: &[(&str, &str)] = &[
        (
            "bad/not-json.txt",
            "body is not an AdmissionReview: expected ident at line 1 column 2\n",
        ),
        (
            "bad/truncated.json",
            "body is not an AdmissionReview: EOF while parsing",
        ),
        (
            "bad/array.json",
            "body is not an AdmissionReview: invalid type: sequence",
        ),
        (
            "bad/null.json",
            "body is not an AdmissionReview: invalid type: null",
        ),
        (
            "bad/wrong-kind.json",
            "kind is \"Pod\"; expected \"AdmissionReview\"\n",
        ),
        (
            "bad/wrong-api-version.json",
            "apiVersion is \"admission.k8s.io/v2\"; expected \"admission.k8s.io/v1\" or \"admission.k8s.io/v1beta1\"\n",
        ),
        ("bad/no-request.json", "AdmissionReview has no request\n"),
        (
            "bad/no-uid.json",
            "body is not an AdmissionReview: missing field `uid`",
        ),
        ("bad/empty-uid.json", "request.uid is missing\n"),
        (
            "bad/bad-operation.json",
            "body is not an AdmissionReview: unknown variant `EXPLODE`",
        ),
        (
            "bad/object-not-an-object.json",
            "body is not an AdmissionReview: invalid type: string",
        ),
    ];
    for (file, expected) in cases {
        let reply = hook.admit(&fixture(file)).await;
        assert_eq!(reply.status, 400, "{file}: {}", reply.text());
        assert!(
            reply.text().starts_with(expected),
            "{file}: got {:?}, want prefix {expected:?}",
            reply.text()
        );
        assert_eq!(reply.content_type, "text/plain; charset=utf-8");
    }

    let client = hook.client();
    // Empty body.
    let reply = client.post(hook.addr, "/v1/admit", b"").await.unwrap();
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (400, "empty body; expected an AdmissionReview\n")
    );
    // Oversized body, declared by Content-Length.
    let mut stream = client.connect(hook.addr).await.unwrap();
    let head = "POST /v1/admit HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 65537\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(&[b' '; 65537]).await;
    let raw = String::from_utf8(read_until_closed(&mut stream).await).unwrap();
    assert!(raw.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{raw}");
    assert!(
        raw.ends_with("\r\n\r\nrequest body larger than 65536 bytes\n"),
        "{raw}"
    );
    // Oversized body sent chunked (no Content-Length): caught while reading.
    let stream = client.connect(hook.addr).await.unwrap();
    let (mut tx, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let chunks = chunked(vec![vec![b'['; 40_000], vec![b'['; 40_000]]);
    let req = hyper::Request::post("/v1/admit")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(chunks)
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 400);
    // Deeply nested JSON: a parse error (serde_json's depth limit), not a stack overflow.
    let mut review = common::json(&fixture("reviews/pod-create-allow.json"));
    review["request"]["object"]["spec"]["deep"] = "DEEP".into();
    let nested = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let deep = review.to_string().replace("\"DEEP\"", &nested);
    let reply = client
        .post(hook.addr, "/v1/admit", deep.as_bytes())
        .await
        .unwrap();
    assert_eq!(reply.status, 400);
    assert!(
        reply.text().contains("recursion limit exceeded"),
        "{}",
        reply.text()
    );
    // Wrong content type.
    let reply = client
        .request(
            hook.addr,
            "POST",
            "/v1/admit",
            &fixture("reviews/pod-create-allow.json"),
            &[("content-type", "text/yaml")],
        )
        .await
        .unwrap();
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (400, "Content-Type must be application/json\n")
    );
    // Other methods and paths.
    let reply = client
        .request(hook.addr, "GET", "/v1/admit", b"", &[])
        .await
        .unwrap();
    assert_eq!(reply.status, 405);
    let reply = client
        .request(hook.addr, "POST", "/v1/validate", b"{}", &[])
        .await
        .unwrap();
    assert_eq!(reply.status, 404);

    assert_eq!(
        http_get(hook.health, "/healthz").await.unwrap(),
        (200, "ok\n".to_owned())
    );
    let m = hook.metrics_text().await;
    assert_eq!(
        sample(&m, "regard_webhook_http_responses_total{code=\"400\"}"),
        Some(16.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "regard_webhook_http_responses_total{code=\"405\"}"),
        Some(1.0)
    );
    // Nothing was admitted.
    assert!(!m.contains("decision=\"allow\""), "{m}");
}

/// A request body sent as the given chunks, without a Content-Length (chunked encoding).
struct Chunks(std::collections::VecDeque<hyper::body::Bytes>);

fn chunked(chunks: Vec<Vec<u8>>) -> Chunks {
    Chunks(chunks.into_iter().map(hyper::body::Bytes::from).collect())
}

impl hyper::body::Body for Chunks {
    type Data = hyper::body::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_closed_and_the_server_stays_healthy() {
    let setup = Setup::new("policies");
    let hook = setup.start(&[]);
    let mut tcp = TcpStream::connect(hook.addr).await.unwrap();
    tcp.write_all(b"POST /v1/admit HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let got = read_until_closed(&mut tcp).await;
    assert!(!got.starts_with(b"HTTP/"), "answered plain HTTP: {got:?}");
    // Random bytes too.
    let mut tcp = TcpStream::connect(hook.addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0, 0])
        .await
        .unwrap();
    read_until_closed(&mut tcp).await;
    assert_eq!(http_get(hook.health, "/healthz").await.unwrap().0, 200);
    let reply = hook.admit(&fixture("bad/no-uid.json")).await;
    assert_eq!(reply.status, 400);
    let m = hook.metrics_text().await;
    assert_eq!(
        sample(&m, "regard_webhook_tls_handshake_failures_total"),
        Some(2.0),
        "{m}"
    );
}

#[tokio::test]
async fn slow_clients_are_disconnected() {
    let setup = Setup::new("policies");
    let hook = setup.start(&[
        "--handshake-timeout",
        "300ms",
        "--header-read-timeout",
        "300ms",
        "--body-read-timeout",
        "300ms",
    ]);
    let client = hook.client();

    // Connects and never starts the handshake.
    let mut idle = TcpStream::connect(hook.addr).await.unwrap();
    assert!(read_until_closed(&mut idle).await.is_empty());

    // Sends half the headers, then stalls.
    let mut slow_headers = client.connect(hook.addr).await.unwrap();
    slow_headers
        .write_all(b"POST /v1/admit HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    slow_headers.flush().await.unwrap();
    let got = read_until_closed(&mut slow_headers).await;
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // Sends the headers and part of the body, then stalls.
    let mut slow_body = client.connect(hook.addr).await.unwrap();
    slow_body
        .write_all(b"POST /v1/admit HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"kind\":")
        .await
        .unwrap();
    slow_body.flush().await.unwrap();
    let got = String::from_utf8(read_until_closed(&mut slow_body).await).unwrap();
    assert!(got.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{got}");
    assert!(
        got.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{got}"
    );
    assert!(
        got.ends_with("\r\n\r\ntimed out reading the request body\n"),
        "{got}"
    );

    // The server still answers.
    assert_eq!(http_get(hook.health, "/healthz").await.unwrap().0, 200);
    assert_eq!(hook.admit(&fixture("bad/empty-uid.json")).await.status, 400);
}

#[tokio::test]
async fn mtls_rejects_clients_without_a_certificate_from_the_ca() {
    let setup = Setup::new("policies");
    let client_ca = Ca::new("apiserver client CA");
    let ca_file = setup.dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, &client_ca.pem).unwrap();
    let hook = setup.start(&["--client-ca-file", ca_file.to_str().unwrap()]);
    let body = fixture("bad/empty-uid.json");

    let anonymous = HttpsClient::new(&setup.ca.pem, None);
    let err = anonymous
        .post(hook.addr, "/v1/admit", &body)
        .await
        .unwrap_err();
    assert!(!err.is_empty());

    let stranger_ca = Ca::new("someone else");
    let stranger = HttpsClient::new(&setup.ca.pem, Some(&stranger_ca.client()));
    assert!(stranger.post(hook.addr, "/v1/admit", &body).await.is_err());

    // The right CA, but not the API server's name (--client-cn-name, default kube-apiserver).
    let other_client = HttpsClient::new(&setup.ca.pem, Some(&client_ca.client_named("kubelet")));
    assert!(
        other_client
            .post(hook.addr, "/v1/admit", &body)
            .await
            .is_err()
    );

    let apiserver = HttpsClient::new(&setup.ca.pem, Some(&client_ca.client()));
    let reply = apiserver.post(hook.addr, "/v1/admit", &body).await.unwrap();
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (400, "request.uid is missing\n")
    );

    let m = hook.metrics_text().await;
    assert_eq!(
        sample(&m, "regard_webhook_tls_handshake_failures_total"),
        Some(3.0),
        "{m}"
    );
}

#[tokio::test]
async fn client_cn_name_chooses_the_accepted_client() {
    let setup = Setup::new("policies");
    let client_ca = Ca::new("apiserver client CA");
    let ca_file = setup.dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, &client_ca.pem).unwrap();
    let body = fixture("bad/empty-uid.json");
    let post = |hook: &common::Webhook, cn: &str| {
        let client = HttpsClient::new(&setup.ca.pem, Some(&client_ca.client_named(cn)));
        let addr = hook.addr;
        let body = body.clone();
        async move {
            client
                .post(addr, "/v1/admit", &body)
                .await
                .map(|r| r.status)
        }
    };

    let named = setup.start(&[
        "--client-ca-file",
        ca_file.to_str().unwrap(),
        "--client-cn-name",
        "admission-client",
    ]);
    assert_eq!(post(&named, "admission-client").await, Ok(400));
    assert!(post(&named, "kube-apiserver").await.is_err());
    drop(named);

    // Empty: any certificate the CA issued.
    let any = setup.start(&[
        "--client-ca-file",
        ca_file.to_str().unwrap(),
        "--client-cn-name",
        "",
    ]);
    assert_eq!(post(&any, "kubelet").await, Ok(400));
    assert_eq!(post(&any, "kube-apiserver").await, Ok(400));
}

#[tokio::test]
async fn tls_min_version() {
    let setup = Setup::new("policies");
    let body = fixture("bad/empty-uid.json");
    let tls12_only = HttpsClient::with_versions(&setup.ca.pem, None, &[&rustls::version::TLS12]);

    let strict = setup.start(&[]);
    assert!(
        tls12_only
            .post(strict.addr, "/v1/admit", &body)
            .await
            .is_err()
    );
    drop(strict);

    let lenient = setup.start(&["--tls-min-version", "1.2"]);
    let reply = tls12_only
        .post(lenient.addr, "/v1/admit", &body)
        .await
        .unwrap();
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn certificate_rotation_is_picked_up_without_restart() {
    let setup = Setup::new("policies");
    let hook = setup.start(&[]);
    let body = fixture("bad/empty-uid.json");
    let m = hook.metrics_text().await;
    // Leaf from Setup expires 2090-01-01T00:00:00Z.
    assert_eq!(
        sample(
            &m,
            "regard_webhook_tls_certificate_expiry_timestamp_seconds"
        ),
        Some(3_786_912_000.0),
        "{m}"
    );

    // A connection opened before the rotation stays usable.
    let old_client = HttpsClient::new(&setup.ca.pem, None);
    let kept = old_client.connect(hook.addr).await.unwrap();

    // cert-manager issues from a new CA: write key then cert (a half-rotated pair in between).
    let new_ca = Ca::new("rotated CA");
    let leaf = new_ca.server(2091);
    write_atomic(&setup.key, leaf.key_pem.as_bytes());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Mismatched pair: still the old certificate.
    assert_eq!(
        old_client
            .post(hook.addr, "/v1/admit", &body)
            .await
            .unwrap()
            .status,
        400
    );
    write_atomic(&setup.cert, leaf.cert_pem.as_bytes());

    let new_client = HttpsClient::new(&new_ca.pem, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(reply) = new_client.post(hook.addr, "/v1/admit", &body).await {
            assert_eq!(reply.status, 400);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotation not picked up: {}",
            hook.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The old CA no longer verifies new connections.
    assert!(
        old_client
            .post(hook.addr, "/v1/admit", &body)
            .await
            .is_err()
    );
    drop(kept);

    let m = hook.metrics_text().await;
    assert_eq!(
        sample(
            &m,
            "regard_webhook_tls_certificate_expiry_timestamp_seconds"
        ),
        Some(3_818_448_000.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "regard_webhook_tls_reloads_total{result=\"success\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "regard_webhook_tls_reloads_total{result=\"failure\"}"),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test]
async fn bad_tls_files_at_startup_fail_fast() {
    let setup = Setup::new("policies");
    std::fs::write(&setup.key, "not a key").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regard-webhook"))
        .args(["--policy-dir", setup.policy_dir.to_str().unwrap()])
        .args(["--tls-cert-file", setup.cert.to_str().unwrap()])
        .args(["--tls-key-file", setup.key.to_str().unwrap()])
        .args([
            "--addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "text"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loading the TLS certificate"), "{stderr}");
    assert!(stderr.contains("tls.key"), "{stderr}");
}

#[tokio::test]
async fn watching_namespaces_without_a_cluster_fails_fast() {
    let setup = Setup::new("policies");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_regard-webhook"))
            .args(["--policy-dir", setup.policy_dir.to_str().unwrap()])
            .args(["--tls-cert-file", setup.cert.to_str().unwrap()])
            .args(["--tls-key-file", setup.key.to_str().unwrap()])
            .args(["--addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0"])
            .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "text"])
            .args(extra)
            // No KUBERNETES_SERVICE_HOST, KUBECONFIG or HOME: nothing to infer a cluster from.
            .env_clear()
            .output()
            .unwrap()
    };
    let out = run(&["--watch-namespaces"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--watch-namespaces: finding the cluster (in-cluster service account or kubeconfig)"
        ),
        "{stderr}"
    );

    let missing = setup.dir.path().join("missing-kubeconfig");
    let out = run(&[
        "--watch-namespaces",
        "--kubeconfig",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "--watch-namespaces: reading the kubeconfig {}",
            missing.display()
        )),
        "{stderr}"
    );

    let out = run(&["--audit-interval", "1m"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--audit-interval audits the objects --sync-data keeps: give --sync-data too"
        ),
        "{stderr}"
    );

    let out = run(&["--kubeconfig", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--kubeconfig is only used with --watch-namespaces, --sync-data, --cert-secret or --policy-source cluster"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn flags_come_from_the_environment_too() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regard-webhook"))
        .env_clear()
        .env("REGARD_WEBHOOK_POLICY_DIR", "/nonexistent")
        .env("REGARD_WEBHOOK_TLS_CERT_FILE", "/nonexistent/tls.crt")
        .env("REGARD_WEBHOOK_TLS_KEY_FILE", "/nonexistent/tls.key")
        .env("REGARD_WEBHOOK_EXEMPT_NAMESPACE", "kube-*,Bad*Pattern")
        .env("REGARD_WEBHOOK_LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--exempt-namespace \"Bad*Pattern\": `*` is only allowed at the start or the end"
        ),
        "{stderr}"
    );
}

/// With polling practically off (`--reload-interval 1h`), a policy edit and a certificate
/// rotation are still picked up, within seconds, from filesystem events.
#[tokio::test]
async fn filesystem_events_trigger_reloads_without_waiting_for_the_poll() {
    let setup = Setup::new("policies");
    let hook = setup.start(&["--reload-interval", "1h"]);
    hook.wait_ready().await;
    let review = fixture("reviews/pod-create-deny.json");
    let message = |reply: &common::Reply| {
        reply.json()["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        message(&hook.admit(&review).await),
        "[pod-must-have-app] Pod web-bad must have labels: app, owner"
    );

    setup.require_tier_label();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while message(&hook.admit(&review).await)
        != "[pod-must-have-app] Pod web-bad must have labels: app, owner, tier"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "policy change not picked up: {}",
            hook.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let new_ca = Ca::new("rotated CA");
    let leaf = new_ca.server(2091);
    write_atomic(&setup.key, leaf.key_pem.as_bytes());
    write_atomic(&setup.cert, leaf.cert_pem.as_bytes());
    let new_client = HttpsClient::new(&new_ca.pem, None);
    let body = fixture("bad/empty-uid.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while new_client
        .post(hook.addr, "/v1/admit", &body)
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "rotation not picked up: {}",
            hook.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
