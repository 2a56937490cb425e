//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: the holder renews
//! the Lease every few seconds; another replica takes it over once it has seen no renewal for the
//! lease duration (measured on its own clock, so clock skew between nodes does not matter). A
//! leader that stops releases the Lease so the next one takes over at once.
//!
//! Every replica serves traffic; only the leader writes Ingress status and Events.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// Namespace and name of the Lease.
    pub namespace: String,
    pub name: String,
    /// This replica's name in the Lease (its pod name).
    pub identity: String,
    /// A holder not seen renewing for this long is replaced.
    pub lease_duration: Duration,
    /// How often the holder renews and the others look.
    pub retry_period: Duration,
}

/// What this replica last saw of the Lease.
struct Observed {
    record: (Option<String>, Option<String>),
    at: Instant,
}

/// Take part in the election until `shutdown` resolves; `leader` says whether this replica holds
/// the Lease. Releases it on the way out; returns whether this replica led until then.
pub async fn run(
    client: Client,
    config: ElectionConfig,
    leader: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) -> bool {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut observed: Option<Observed> = None;
    let mut last_renewal: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        match try_acquire_or_renew(&api, &config, &mut observed).await {
            Ok(true) => {
                last_renewal = Some(Instant::now());
                if !*leader.borrow() {
                    tracing::info!(identity = %config.identity, lease = %config.name, "became the leader");
                }
                leader.send_replace(true);
            }
            Ok(false) => {
                if *leader.borrow() {
                    tracing::info!("lost the leadership");
                }
                leader.send_replace(false);
            }
            Err(e) => {
                tracing::warn!(error = %e, "leader election: cannot reach the Lease");
                // Without a renewal for the lease duration, another replica may take over: stop
                // acting as leader before that can happen.
                if last_renewal.is_none_or(|t| t.elapsed() >= config.lease_duration / 2) {
                    leader.send_replace(false);
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(config.retry_period) => {}
            () = &mut shutdown => break,
        }
    }
    let led = leader.send_replace(false);
    if led {
        if let Err(e) = release(&api, &config).await {
            tracing::warn!(error = %e, "could not release the Lease");
        } else {
            tracing::info!("released the leadership");
        }
    }
    led
}

/// After this replica let the Lease go: the replica that takes it within `wait`, if any (looked
/// at every retry period).
pub async fn successor(client: Client, config: &ElectionConfig, wait: Duration) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let deadline = Instant::now() + wait;
    loop {
        match api.get_opt(&config.name).await {
            Ok(lease) => {
                let holder = lease
                    .and_then(|l| l.spec?.holder_identity)
                    .filter(|h| !h.is_empty() && *h != config.identity);
                if holder.is_some() {
                    return holder;
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the Lease"),
        }
        if Instant::now() + config.retry_period > deadline {
            return None;
        }
        tokio::time::sleep(config.retry_period).await;
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::chrono::Utc::now())
}

/// `Ok(true)` when this replica holds the Lease after the call.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &ElectionConfig,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let seconds = config.lease_duration.as_secs().max(1) as i32;
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let record = (
        holder.clone(),
        spec.renew_time.as_ref().map(|t| t.0.to_rfc3339()),
    );
    if observed.as_ref().is_none_or(|o| o.record != record) {
        *observed = Some(Observed {
            record,
            at: Instant::now(),
        });
    }
    let ours = holder.as_deref() == Some(config.identity.as_str());
    let expired = observed
        .as_ref()
        .is_some_and(|o| o.at.elapsed() >= config.lease_duration);
    if !(ours || holder.is_none() || expired) {
        return Ok(false);
    }
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(seconds),
        acquire_time: if ours { spec.acquire_time } else { Some(now()) },
        renew_time: Some(now()),
        lease_transitions: Some(transitions),
        ..spec
    });
    // The resourceVersion read above makes this a compare-and-swap: of two replicas taking over
    // at once, one gets a 409.
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

async fn release(api: &Api<Lease>, config: &ElectionConfig) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        return Ok(());
    };
    let mut spec = lease.spec.clone().unwrap_or_default();
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(now());
    lease.spec = Some(spec);
    api.replace(&config.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}
