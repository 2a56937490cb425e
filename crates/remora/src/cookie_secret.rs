//! `remora cookie-secret`: create the Secret holding the session cookie key, once, for every
//! replica to mount (deploy/ runs it as a Job). An existing Secret is left as it is, so the key, and
//! with it every session cookie, survives re-deployments. deploy/ also creates the admin port's
//! bearer token with it (`--data-key token`): any random secret text will do.

use anyhow::Context;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The key of the Secret's data that holds the cookie key by default; mounted as a file of that
/// name.
pub const DATA_KEY: &str = "cookie-secret";

#[derive(clap::Args)]
pub struct Args {
    /// The Secret to create if it does not exist.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = kube_provider::namespaced_name)]
    pub secret: (String, String),
    /// The key of the Secret's data that holds the random text (the name of the file it is
    /// mounted as).
    #[arg(long, value_name = "KEY", default_value = DATA_KEY)]
    pub data_key: String,
    /// Kubeconfig file [default: in-cluster service account, else $KUBECONFIG or ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = kube_provider::client(args.kubeconfig.as_deref()).await?;
    let (namespace, name) = &args.secret;
    let api: Api<Secret> = Api::namespaced(client, namespace);
    if api
        .get_opt(name)
        .await
        .with_context(|| format!("cannot read Secret {namespace}/{name}"))?
        .is_some()
    {
        println!("Secret {namespace}/{name} exists: kept");
        return Ok(());
    }
    // 32 random bytes, as text (base64) so the mounted file is readable and copyable.
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let text: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "remora".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            args.data_key.clone(),
            ByteString(text.into_bytes()),
        )])),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => println!("Secret {namespace}/{name} created"),
        // Another run created it meanwhile: theirs is as good.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            println!("Secret {namespace}/{name} exists: kept")
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create Secret {namespace}/{name}"))
        }
    }
    Ok(())
}
