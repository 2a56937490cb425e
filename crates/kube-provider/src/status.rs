//! `status.loadBalancer.ingress` of the served Ingresses, written by the leader only: the
//! addresses of `--publish-service` (its load balancer, else its external IPs, else its cluster
//! IP) and `--publish-status-address`, as ingress-nginx does.
//! The same addresses go into the Gateways' `status.addresses` (`gateway_status`).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use model::ObjectRef;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, Default)]
pub struct StatusConfig {
    /// `namespace/name` of the Service clients reach Remora through.
    pub publish_service: Option<(String, String)>,
    /// Fixed addresses (IPs or host names).
    pub publish_addresses: Vec<String>,
    /// Everything is checked again this often, in case someone else changed a status.
    pub resync: Duration,
}

/// While this replica leads, keep the status of every served Ingress equal to the published
/// addresses. `served` is the list of the current configuration.
pub async fn run(
    client: Client,
    config: StatusConfig,
    mut leader: watch::Receiver<bool>,
    mut served: watch::Receiver<Vec<ObjectRef>>,
) {
    if config.publish_service.is_none() && config.publish_addresses.is_empty() {
        return;
    }
    loop {
        if leader.wait_for(|l| *l).await.is_err() {
            return;
        }
        let refs = served.borrow_and_update().clone();
        match addresses(&client, &config).await {
            Ok(addrs) if !addrs.is_empty() => {
                let addrs: Vec<Value> = addrs.iter().map(Address::ingress).collect();
                for r in &refs {
                    if let Err(e) = update(&client, r, &addrs).await {
                        tracing::warn!(ingress = %r, error = %e, "cannot update the Ingress status");
                    }
                }
            }
            Ok(_) => tracing::debug!("no address to publish yet"),
            Err(e) => tracing::warn!(error = %e, "cannot read the addresses to publish"),
        }
        tokio::select! {
            r = served.changed() => if r.is_err() { return },
            r = leader.changed() => if r.is_err() { return },
            () = tokio::time::sleep(config.resync) => {}
        }
    }
}

/// On the way out of the replica that led: unless another replica takes the Lease within `wait`
/// (and so keeps the status), nobody will serve the published addresses any more, so they are
/// removed from the status of the served Ingresses (ingress-nginx's `--update-status-on-shutdown`),
/// and DNS controllers stop pointing at them.
pub async fn clear_on_shutdown(
    client: Client,
    config: &StatusConfig,
    election: &crate::ElectionConfig,
    served: &[ObjectRef],
    wait: Duration,
) {
    if config.publish_service.is_none() && config.publish_addresses.is_empty() {
        return;
    }
    if let Some(next) = crate::leader::successor(client.clone(), election, wait).await {
        tracing::info!(leader = %next, "another replica leads: the Ingress status stays");
        return;
    }
    for r in served {
        if let Err(e) = update(&client, r, &[]).await {
            tracing::warn!(ingress = %r, error = %e, "cannot clear the Ingress status");
        }
    }
}

/// One published address: what `--publish-service` and `--publish-status-address` give, for the
/// Ingress status (`{ip}`/`{hostname}`) and the Gateway status (`{type, value}`) alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    Ip(String),
    Hostname(String),
}

impl Address {
    /// An entry of an Ingress's `status.loadBalancer.ingress`.
    fn ingress(&self) -> Value {
        match self {
            Address::Ip(ip) => json!({ "ip": ip }),
            Address::Hostname(h) => json!({ "hostname": h }),
        }
    }

    /// An entry of a Gateway's `status.addresses`.
    pub(crate) fn gateway(&self) -> Value {
        match self {
            Address::Ip(ip) => json!({ "type": "IPAddress", "value": ip }),
            Address::Hostname(h) => json!({ "type": "Hostname", "value": h }),
        }
    }
}

/// The addresses to publish: `--publish-service`'s (its load balancer, else its external IPs,
/// else its cluster IP), then `--publish-status-address`'s.
pub(crate) async fn addresses(
    client: &Client,
    config: &StatusConfig,
) -> Result<Vec<Address>, kube::Error> {
    let mut out = Vec::new();
    if let Some((ns, name)) = &config.publish_service {
        let svc = Api::<Service>::namespaced(client.clone(), ns)
            .get(name)
            .await?;
        let lb: Vec<Address> = svc
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| match (i.ip, i.hostname) {
                (Some(ip), _) => Some(Address::Ip(ip)),
                (None, Some(h)) => Some(Address::Hostname(h)),
                _ => None,
            })
            .collect();
        let spec = svc.spec.unwrap_or_default();
        if !lb.is_empty() {
            out.extend(lb);
        } else if let Some(ips) = spec.external_ips.filter(|v| !v.is_empty()) {
            out.extend(ips.into_iter().map(Address::Ip));
        } else if let Some(ip) = spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None") {
            out.push(Address::Ip(ip));
        }
    }
    for a in &config.publish_addresses {
        out.push(if a.parse::<std::net::IpAddr>().is_ok() {
            Address::Ip(a.clone())
        } else {
            Address::Hostname(a.clone())
        });
    }
    Ok(out)
}

/// Patch one Ingress's status if it differs.
async fn update(client: &Client, r: &ObjectRef, addrs: &[Value]) -> Result<(), kube::Error> {
    let api = Api::<Ingress>::namespaced(client.clone(), &r.namespace);
    let Some(ing) = api.get_opt(&r.name).await? else {
        return Ok(());
    };
    let current = serde_json::to_value(
        ing.status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    if current == Value::Array(addrs.to_vec()) {
        return Ok(());
    }
    let patch = json!({ "status": { "loadBalancer": { "ingress": addrs } } });
    api.patch_status(&r.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::info!(ingress = %r, "status updated");
    Ok(())
}
