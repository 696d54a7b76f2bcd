//! `regard-webhook --bundle oci://…`: a real registry on loopback (Debian's
//! `docker-registry`), the webhook pulling at start, refreshing to a new
//! digest of the tag, and keeping the last good set when the new bundle does
//! not compile or the registry is gone, and recovering when it returns.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Setup, fixture, http_get, sample};

const DENY_LABELS: &str = "[pod-must-have-app] Pod web-bad must have labels: app, owner";
const DENY_TIER: &str = "[pod-must-have-app] Pod web-bad must have labels: app, owner, tier";

/// A registry on a free loopback port, stopped on drop.
struct Registry {
    child: Child,
    addr: String,
    config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let binary = "docker-registry";
        if Command::new(binary).arg("--version").output().is_err() {
            panic!(
                "cannot start the test registry: `{binary}` is not installed \
                 (Debian package docker-registry; .ci/run installs it with apt-get)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n  secret: regard-test\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = serve(&config, &addr);
        Registry {
            child,
            addr,
            config,
            _dir: dir,
        }
    }

    /// Starts the stopped registry again: same address, same storage.
    fn restart(&mut self) {
        self.stop();
        self.child = serve(&self.config, &self.addr);
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path, addr: &str) -> Child {
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the test registry did not start on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pushes the files of `dir` (titled by file name) in conftest's layout.
async fn push(dir: &Path, target: &str) -> String {
    let files = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            policy_source::oci::BundleFile {
                title: e.file_name().to_string_lossy().into_owned(),
                media_type: policy_source::oci::DATA_LAYER_MEDIA_TYPE,
                data: std::fs::read(e.path()).unwrap(),
            }
        })
        .collect();
    policy_source::push_files(target, files, &policy_source::Options::default())
        .await
        .unwrap()
        .digest
}

#[tokio::test]
async fn webhook_serves_and_refreshes_an_oci_bundle() {
    let mut registry = Registry::start();
    let setup = Setup::new("policies");
    let target = format!("{}/webhook/policies:live", registry.addr);
    push(&setup.policy_dir, &target).await;
    let files = std::fs::read_dir(&setup.policy_dir).unwrap().count() as f64;

    let bundle = format!("oci://{target}");
    let hook = setup.start_with(&["--bundle", &bundle], &["--bundle-refresh", "200ms"]);
    hook.wait_ready().await;
    let body = fixture("reviews/pod-create-deny.json");
    let reply = hook.admit(&body).await;
    assert_eq!(reply.json()["response"]["status"]["message"], DENY_LABELS);

    // A new digest under the same tag is picked up.
    setup.require_tier_label();
    push(&setup.policy_dir, &target).await;
    hook.wait_message(&body, DENY_TIER, "refresh not picked up")
        .await;

    // A bundle that does not compile keeps the last good set.
    std::fs::write(
        setup.policy_dir.join("zz-broken.yaml"),
        "kind: ConstraintTemplate\napiVersion: templates.gatekeeper.sh/v1\nmetadata: {name: broken}\nspec:\n  crd: {spec: {names: {kind: Broken}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package broken\n        violation[{\"msg\": msg}] {\n",
    )
    .unwrap();
    push(&setup.policy_dir, &target).await;
    hook.wait_log("policy reload failed; keeping the last good policy set")
        .await;
    let reply = hook.admit(&body).await;
    assert_eq!(reply.json()["response"]["status"]["message"], DENY_TIER);

    // The registry going away is logged and counted; serving goes on.
    registry.stop();
    hook.wait_log("bundle refresh failed; keeping the last good bundle")
        .await;
    let reply = hook.admit(&body).await;
    assert_eq!(reply.json()["response"]["status"]["message"], DENY_TIER);
    assert_eq!(http_get(hook.health, "/readyz").await.unwrap().0, 200);
    let m = hook.metrics_text().await;
    assert_eq!(
        sample(&m, "regard_webhook_bundle_pulls_total{result=\"success\"}"),
        Some(3.0),
        "{m}"
    );
    assert!(
        sample(&m, "regard_webhook_bundle_pulls_total{result=\"failure\"}").unwrap_or(0.0) >= 1.0,
        "{m}"
    );
    // Layers are content-addressed: the second pull downloaded only the edited file, the third
    // only the added one; the others came from the layers kept from the pull before.
    assert_eq!(
        sample(&m, "regard_webhook_bundle_layers_total{from=\"registry\"}"),
        Some(files + 2.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "regard_webhook_bundle_layers_total{from=\"cache\"}"),
        Some(2.0 * files - 1.0),
        "{m}"
    );

    // The registry back on the same address: the failed checks dropped the kept client, a new
    // one connects, and a new version (the first one's files again) is served.
    registry.restart();
    std::fs::remove_file(setup.policy_dir.join("zz-broken.yaml")).unwrap();
    let constraints = setup.policy_dir.join("constraints.yaml");
    let text = std::fs::read_to_string(&constraints).unwrap();
    std::fs::write(
        &constraints,
        text.replace("[\"app\", \"owner\", \"tier\"]", "[\"app\", \"owner\"]"),
    )
    .unwrap();
    push(&setup.policy_dir, &target).await;
    hook.wait_message(
        &body,
        DENY_LABELS,
        "no recovery after the registry came back",
    )
    .await;
}

#[tokio::test]
async fn webhook_is_not_ready_before_the_first_pull() {
    let setup = Setup::new("policies");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bundle = format!("oci://127.0.0.1:{port}/nothing/here:v1");
    let hook = setup.start_with(&["--bundle", &bundle], &["--bundle-refresh", "200ms"]);
    hook.wait_log("bundle pull failed; not ready until it loads")
        .await;
    assert_eq!(http_get(hook.health, "/readyz").await.unwrap().0, 503);
}
