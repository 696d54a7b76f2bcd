//! The connection to the Kubernetes API server, for what the webhook reads from the cluster
//! (`--watch-namespaces`, `--sync-data`). Nothing else talks to it, and nothing is written.

use std::path::Path;

use anyhow::Context as _;
use kube::Client;

/// A client for the cluster: `kubeconfig` if given, else kube's usual inference (in-cluster
/// service account, then `$KUBECONFIG` or `~/.kube/config`).
pub async fn connect(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .with_context(|| format!("using the kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("finding the cluster (in-cluster service account or kubeconfig)")?,
    };
    Client::try_from(config).context("creating the Kubernetes client")
}
