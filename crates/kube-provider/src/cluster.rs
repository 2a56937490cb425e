//! Reaching the cluster, and the conventions of a pod running in it: the client (from a
//! kubeconfig, else in-cluster or the standard kubeconfig rules), `NAMESPACE/NAME` arguments, and
//! the namespace and name a replica gets from its pod (Downward API, service account).
//!
//! Pure helpers with no state of their own; the `remora` commands call them to turn their flags
//! into a [`kube::Client`] and the identities the election needs.

use kube::config::{InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use std::path::{Path, PathBuf};

/// The file where Kubernetes mounts the namespace of a pod's service account.
pub const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Why [`client`] could not build a client. The messages name `--kubeconfig`, the option of the
/// `remora` commands that takes the file; the underlying kube-rs error is the
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file given could not be read or parsed.
    #[error("cannot read the kubeconfig {}", path.display())]
    ReadKubeconfig {
        path: PathBuf,
        source: KubeconfigError,
    },
    /// The kubeconfig file given was read but does not describe a usable cluster (no current
    /// context, no server URL, unreadable credentials...).
    #[error("invalid kubeconfig {}", path.display())]
    InvalidKubeconfig {
        path: PathBuf,
        source: KubeconfigError,
    },
    /// No kubeconfig given, and none found: not in a cluster, no `$KUBECONFIG`, no
    /// `~/.kube/config`.
    #[error("no Kubernetes configuration found (in-cluster, $KUBECONFIG or ~/.kube/config); use --kubeconfig")]
    NoConfig(#[source] InferConfigError),
    /// The configuration was found but kube-rs could not build a client from it (TLS set-up...).
    #[error("cannot build the Kubernetes client")]
    Build(#[source] kube::Error),
}

/// A client for the cluster: from the kubeconfig file `kubeconfig` (its current context) when
/// given, else by the standard rules (in-cluster service account, else `$KUBECONFIG`, else
/// `~/.kube/config`).
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    let config = match kubeconfig {
        Some(path) => {
            let file =
                Kubeconfig::read_from(path).map_err(|source| ClientError::ReadKubeconfig {
                    path: path.to_owned(),
                    source,
                })?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|source| ClientError::InvalidKubeconfig {
                    path: path.to_owned(),
                    source,
                })?
        }
        None => Config::infer().await.map_err(ClientError::NoConfig)?,
    };
    Client::try_from(config).map_err(ClientError::Build)
}

/// Parse `NAMESPACE/NAME` (both non-empty, the name without `/`) into `(namespace, name)`; the
/// error says what was expected. Fits clap's `value_parser`.
///
/// ```
/// assert_eq!(
///     remora_kube::namespaced_name("ingress/remora"),
///     Ok(("ingress".to_owned(), "remora".to_owned()))
/// );
/// assert!(remora_kube::namespaced_name("remora").is_err());
/// assert!(remora_kube::namespaced_name("a/b/c").is_err());
/// ```
pub fn namespaced_name(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err("expected NAMESPACE/NAME".to_owned()),
    }
}

/// The namespace this replica runs in: `explicit` if given, else `$POD_NAMESPACE` (the Downward
/// API), else the service account's namespace ([`SERVICE_ACCOUNT_NAMESPACE_FILE`]); trimmed, and
/// `default` when that leaves nothing.
pub fn pod_namespace(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .or_else(|| std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE_FILE).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

/// This replica's pod name: `explicit` if given, else `$POD_NAME` (the Downward API), else
/// `$HOSTNAME` (a pod's host name is its name); `None` when that leaves nothing (the caller picks
/// a name of its own, unique enough for a Lease holder).
pub fn pod_name(explicit: Option<&str>) -> Option<String> {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.is_empty())
}
