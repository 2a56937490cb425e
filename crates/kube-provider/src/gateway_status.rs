//! The Gateway API status of Remora's GatewayClasses, Gateways, HTTPRoutes and GRPCRoutes,
//! written by the leader only. Translation says what each should say ([`GatewayApiStatus`], a pure result);
//! this module turns it into the API's conditions and merge-patches the status subresource of
//! each object whose status differs from that.
//!
//! Conventions of the Gateway API (and of Kubernetes conditions): every condition carries the
//! `observedGeneration` of the object as translated, and a `lastTransitionTime` that moves only
//! when its status changes. A condition in its good state has the spec's positive reason
//! (`Accepted`, `Programmed`, `ResolvedRefs`, `NoConflicts`); one in its bad state the reason
//! translation gave. A route's `status.parents` is shared with other controllers: only the
//! entries whose `controllerName` is Remora's are replaced.

use crate::status::{self, Address, StatusConfig};
use crate::watch::{installed, resource};
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GRPCRoute;
use gateway_api::experimental::httproutes::HTTPRoute;
use k8s_openapi::chrono::{SecondsFormat, Utc};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::watch;
use translate::gateway_status::{
    ClassStatus, GatewayStatus, ListenerStatus, ParentStatus, Problem, RouteStatus,
};
use translate::{GatewayApiStatus, Objects};

const GROUP: &str = "gateway.networking.k8s.io";

/// Remora's own route condition: a rule's sessions are not persistent (see
/// [`ParentStatus::session_conflict`]).
const SESSION_CONDITION: &str = "remora.dev/SessionPersistence";

/// The most entries a route's `status.parents` may hold (the CRD's `maxItems`).
const MAX_PARENTS: usize = 32;

/// Write attempts that failed are tried again this soon (unless the resync comes first).
const RETRY: Duration = Duration::from_secs(5);

/// While this replica leads, keep the status of Remora's Gateway API objects equal to what
/// `wanted` (the current translation's) says. `config` gives the addresses a Gateway's
/// `status.addresses` lists (`--publish-service`, `--publish-status-address`) and how often
/// everything is written again in case someone else changed it; `controller_name` is Remora's
/// `controllerName` (`--gateway-controller-name`), the one its route status entries carry.
///
/// A change of `wanted` writes only the objects whose wanted status changed; becoming the leader
/// and each resync look at all of them.
pub async fn run(
    client: Client,
    config: StatusConfig,
    controller_name: String,
    mut leader: watch::Receiver<bool>,
    mut wanted: watch::Receiver<GatewayApiStatus>,
) {
    let writer = Writer::new(client, controller_name);
    let mut written = Written::default();
    loop {
        if leader.wait_for(|l| *l).await.is_err() {
            return;
        }
        let current = wanted.borrow_and_update().clone();
        let addresses = if current.gateways.is_empty() {
            // Not needed: no Service to read.
            written.addresses.clone()
        } else {
            match status::addresses(&writer.client, &config).await {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the addresses to publish");
                    None
                }
            }
        };
        let complete = writer
            .write(&current, addresses, &mut written, &leader)
            .await;
        let wait = if complete {
            config.resync
        } else {
            config.resync.min(RETRY)
        };
        let resync = tokio::time::sleep(wait);
        tokio::pin!(resync);
        loop {
            tokio::select! {
                r = wanted.changed() => {
                    if r.is_err() { return }
                    break;
                }
                r = leader.changed() => {
                    if r.is_err() { return }
                    // The election sends `true` again at every renewal of the Lease: only a
                    // lost leadership counts. Whoever leads meanwhile may write, so everything
                    // is looked at again once this replica leads again.
                    if !*leader.borrow_and_update() {
                        written = Written::default();
                        break;
                    }
                }
                () = &mut resync => {
                    written = Written::default();
                    break;
                }
            }
        }
    }
}

/// Add to `status` an entry without parents for each route of `objects` whose status has an
/// entry of `controller` but which translation no longer reports on (it references none of
/// Remora's Gateways any more): the writer then takes Remora's entries out of its status.
/// Read from the routes' own status, so this holds across restarts and leader changes.
pub fn add_departed_routes(status: &mut GatewayApiStatus, objects: &Objects, controller: &str) {
    let reported: BTreeSet<(String, String)> = status
        .routes
        .iter()
        .map(|r| (r.namespace.clone(), r.name.clone()))
        .collect();
    for r in &objects.http_routes {
        let meta = &r.route.metadata;
        let ours = r
            .route
            .status
            .as_ref()
            .is_some_and(|s| s.parents.iter().any(|p| p.controller_name == controller));
        let key = (
            meta.namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            meta.name.clone().unwrap_or_default(),
        );
        if ours && !reported.contains(&key) {
            status.routes.push(RouteStatus {
                kind: r.kind().to_owned(),
                namespace: key.0,
                name: key.1,
                generation: meta.generation,
                parents: Vec::new(),
            });
        }
    }
}

/// What was written (or found already right) since the last full pass: the same wanted status
/// is not written again until the next one.
#[derive(Default)]
struct Written {
    classes: BTreeMap<String, ClassStatus>,
    gateways: BTreeMap<(String, String), GatewayStatus>,
    routes: BTreeMap<(String, String), RouteStatus>,
    /// The addresses the Gateways were written with; `None` when they could not be read (the
    /// Gateways' addresses were then left as they were).
    addresses: Option<Vec<Address>>,
    /// Whether the GRPCRoute CRD is installed, asked once per full pass: a listener's
    /// `supportedKinds` names GRPCRoute only then (Remora watches GRPCRoutes only then).
    grpc_routes: Option<bool>,
}

struct Writer {
    client: Client,
    controller_name: String,
    classes: ApiResource,
    gateways: ApiResource,
    routes: ApiResource,
    grpc_routes: ApiResource,
}

impl Writer {
    fn new(client: Client, controller_name: String) -> Self {
        Self {
            client,
            controller_name,
            classes: resource::<GatewayClass>(),
            gateways: resource::<Gateway>(),
            routes: resource::<HTTPRoute>(),
            grpc_routes: resource::<GRPCRoute>(),
        }
    }

    /// Write every object of `wanted` whose wanted status is not in `written` (and record it
    /// there once written); stops early when this replica stops leading. Whether everything
    /// was written.
    async fn write(
        &self,
        wanted: &GatewayApiStatus,
        addresses: Option<Vec<Address>>,
        written: &mut Written,
        leader: &watch::Receiver<bool>,
    ) -> bool {
        // Only Gateways' listeners need to know (not asked while there are none).
        let grpc_routes = match written.grpc_routes {
            Some(g) => Some(g),
            None if wanted.gateways.is_empty() => None,
            None => Some(installed(&self.client, &self.grpc_routes, false).await),
        };
        let mut next = Written {
            addresses: addresses.clone(),
            grpc_routes,
            ..Written::default()
        };
        let mut complete = true;
        let leads = || *leader.borrow();
        for c in &wanted.classes {
            if written.classes.get(&c.name) != Some(c) {
                if !leads() {
                    return false;
                }
                if let Err(e) = self.class(c).await {
                    tracing::warn!(gatewayclass = %c.name, error = %e, "cannot update the GatewayClass status");
                    complete = false;
                    continue;
                }
            }
            next.classes.insert(c.name.clone(), c.clone());
        }
        let same_addresses = written.addresses == addresses;
        for g in &wanted.gateways {
            let key = (g.namespace.clone(), g.name.clone());
            if !same_addresses || written.gateways.get(&key) != Some(g) {
                if !leads() {
                    return false;
                }
                if let Err(e) = self
                    .gateway(g, addresses.as_deref(), grpc_routes.unwrap_or(false))
                    .await
                {
                    tracing::warn!(gateway = %format!("{}/{}", g.namespace, g.name), error = %e, "cannot update the Gateway status");
                    complete = false;
                    continue;
                }
            }
            next.gateways.insert(key, g.clone());
        }
        for r in &wanted.routes {
            let key = (r.namespace.clone(), r.name.clone());
            if written.routes.get(&key) != Some(r) {
                if !leads() {
                    return false;
                }
                if let Err(e) = self.route(r).await {
                    tracing::warn!(kind = %r.kind, route = %format!("{}/{}", r.namespace, r.name), error = %e, "cannot update the route status");
                    complete = false;
                    continue;
                }
            }
            next.routes.insert(key, r.clone());
        }
        *written = next;
        complete
    }

    /// A GatewayClass of Remora's: `Accepted`.
    async fn class(&self, c: &ClassStatus) -> Result<(), kube::Error> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &self.classes);
        let Some(obj) = api.get_opt(&c.name).await? else {
            return Ok(());
        };
        let current = obj.data.get("status").unwrap_or(&Value::Null);
        let conditions = render(
            &[Condition::good(
                "Accepted",
                "Accepted",
                "Remora serves the Gateways of this class",
            )],
            c.generation,
            &current["conditions"],
        );
        if current["conditions"] == conditions {
            return Ok(());
        }
        patch_status(
            &api,
            &c.name,
            json!({ "status": { "conditions": conditions } }),
        )
        .await?;
        tracing::info!(gatewayclass = %c.name, "status updated");
        Ok(())
    }

    /// A Gateway of Remora's classes: its conditions, its listeners' and its addresses (left
    /// as they are when `addresses` is `None`: they could not be read). A listener's
    /// `supportedKinds` names GRPCRoute only when its CRD is installed (`grpc_routes`).
    async fn gateway(
        &self,
        g: &GatewayStatus,
        addresses: Option<&[Address]>,
        grpc_routes: bool,
    ) -> Result<(), kube::Error> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &g.namespace, &self.gateways);
        let Some(obj) = api.get_opt(&g.name).await? else {
            return Ok(());
        };
        let current = obj.data.get("status").unwrap_or(&Value::Null);
        let mut wanted = Map::new();
        wanted.insert(
            "conditions".to_owned(),
            render(&gateway_conditions(g), g.generation, &current["conditions"]),
        );
        let listeners: Vec<Value> = g
            .listeners
            .iter()
            .map(|l| {
                let existing = current["listeners"]
                    .as_array()
                    .and_then(|ls| ls.iter().find(|e| e["name"] == l.name.as_str()))
                    .map_or(&Value::Null, |e| &e["conditions"]);
                json!({
                    "name": l.name,
                    "supportedKinds": l
                        .supported_kinds
                        .iter()
                        .filter(|k| grpc_routes || k.as_str() != "GRPCRoute")
                        .map(|k| json!({ "group": GROUP, "kind": k }))
                        .collect::<Vec<_>>(),
                    "attachedRoutes": l.attached_routes,
                    "conditions": render(&listener_conditions(l), g.generation, existing),
                })
            })
            .collect();
        wanted.insert("listeners".to_owned(), Value::Array(listeners));
        if let Some(addresses) = addresses {
            wanted.insert(
                "addresses".to_owned(),
                addresses.iter().map(Address::gateway).collect(),
            );
        }
        let unchanged = wanted.iter().all(|(k, v)| match (k.as_str(), &current[k]) {
            // An empty list and none are the same.
            ("addresses", Value::Null) => v.as_array().is_some_and(Vec::is_empty),
            (_, c) => c == v,
        });
        if unchanged {
            return Ok(());
        }
        patch_status(&api, &g.name, json!({ "status": wanted })).await?;
        tracing::info!(gateway = %format!("{}/{}", g.namespace, g.name), "status updated");
        Ok(())
    }

    /// A route (HTTPRoute or GRPCRoute) attached to Remora's Gateways (or no longer): its
    /// `status.parents` entries
    /// of Remora's controller replaced, the others kept. The patch carries the resourceVersion
    /// read, so an entry another controller writes meanwhile is not lost: on a conflict the
    /// route is read again.
    async fn route(&self, r: &RouteStatus) -> Result<(), kube::Error> {
        let resource = if r.kind == "GRPCRoute" {
            &self.grpc_routes
        } else {
            &self.routes
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &r.namespace, resource);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(obj) = api.get_opt(&r.name).await? else {
                return Ok(());
            };
            let current = obj.data["status"]["parents"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let (ours, mut parents): (Vec<Value>, Vec<Value>) = current
                .iter()
                .cloned()
                .partition(|p| p["controllerName"] == self.controller_name.as_str());
            for p in &r.parents {
                let parent_ref = parent_ref(p);
                let existing = ours
                    .iter()
                    .find(|e| e["parentRef"] == parent_ref)
                    .map_or(&Value::Null, |e| &e["conditions"]);
                parents.push(json!({
                    "parentRef": parent_ref,
                    "controllerName": self.controller_name,
                    "conditions": render(&route_conditions(p), r.generation, existing),
                }));
            }
            parents.truncate(MAX_PARENTS);
            if parents == current {
                return Ok(());
            }
            let mut patch = json!({ "status": { "parents": parents } });
            if let (Some(rv), Some(fields)) =
                (&obj.metadata.resource_version, patch.as_object_mut())
            {
                fields.insert("metadata".to_owned(), json!({ "resourceVersion": rv }));
            }
            match patch_status(&api, &r.name, patch).await {
                Ok(()) => {
                    tracing::info!(kind = %r.kind, route = %format!("{}/{}", r.namespace, r.name), "status updated");
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 409 && attempts < 3 => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

async fn patch_status(
    api: &Api<DynamicObject>,
    name: &str,
    patch: Value,
) -> Result<(), kube::Error> {
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// A route's `parentRef` for one of its parents: as the route gave it, with the group, kind
/// and namespace spelled out.
fn parent_ref(p: &ParentStatus) -> Value {
    let mut r = json!({
        "group": GROUP,
        "kind": "Gateway",
        "namespace": p.gateway_namespace,
        "name": p.gateway_name,
    });
    if let Some(fields) = r.as_object_mut() {
        if let Some(s) = &p.section_name {
            fields.insert("sectionName".to_owned(), json!(s));
        }
        if let Some(port) = p.port {
            fields.insert("port".to_owned(), json!(port));
        }
    }
    r
}

/// A condition as wanted, before its generation and transition time.
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    type_: String,
    status: &'static str,
    reason: String,
    message: String,
}

impl Condition {
    fn good(type_: &str, reason: &str, message: &str) -> Self {
        Self {
            type_: type_.to_owned(),
            status: "True",
            reason: reason.to_owned(),
            message: message.to_owned(),
        }
    }

    /// The condition in its bad state (`status`: `False`, or `True` for a negative-polarity
    /// condition such as `Conflicted`), with the problem's reason and message.
    fn bad(type_: &str, status: &'static str, p: &Problem) -> Self {
        Self {
            type_: type_.to_owned(),
            status,
            reason: p.reason.clone(),
            message: p.message.clone(),
        }
    }

    /// Good when there is no problem, else bad with it.
    fn positive(type_: &str, problem: Option<&Problem>, message: &str) -> Self {
        match problem {
            None => Self::good(type_, type_, message),
            Some(p) => Self::bad(type_, "False", p),
        }
    }
}

/// A Gateway is `Accepted` (reason `ListenersNotValid` when some listener is not served), and
/// `Programmed` when some listener is served.
fn gateway_conditions(g: &GatewayStatus) -> Vec<Condition> {
    let not_served: Vec<&str> = g
        .listeners
        .iter()
        .filter(|l| !l.served)
        .map(|l| l.name.as_str())
        .collect();
    let accepted = if not_served.is_empty() {
        Condition::good("Accepted", "Accepted", "Remora serves this Gateway")
    } else {
        Condition::good(
            "Accepted",
            "ListenersNotValid",
            &format!(
                "listeners not served (see their conditions): {}",
                not_served.join(", ")
            ),
        )
    };
    let programmed = if g.programmed() {
        Condition::good("Programmed", "Programmed", "Remora serves its listeners")
    } else {
        Condition::bad(
            "Programmed",
            "False",
            &Problem::new("Invalid", "no listener can be served"),
        )
    };
    vec![accepted, programmed]
}

fn listener_conditions(l: &ListenerStatus) -> Vec<Condition> {
    let programmed = if l.served {
        Condition::good("Programmed", "Programmed", "Remora serves this listener")
    } else {
        Condition::bad(
            "Programmed",
            "False",
            &Problem::new(
                "Invalid",
                "the listener is not served (see its other conditions)",
            ),
        )
    };
    let conflicted = match &l.conflicted {
        Some(p) => Condition::bad("Conflicted", "True", p),
        None => Condition {
            type_: "Conflicted".to_owned(),
            status: "False",
            reason: "NoConflicts".to_owned(),
            message: "no conflict with another listener".to_owned(),
        },
    };
    vec![
        Condition::positive("Accepted", l.accepted.as_ref(), "the listener is valid"),
        programmed,
        Condition::positive(
            "ResolvedRefs",
            l.resolved_refs.as_ref(),
            "every reference is resolved",
        ),
        conflicted,
    ]
}

fn route_conditions(p: &ParentStatus) -> Vec<Condition> {
    let mut out = vec![
        Condition::positive(
            "Accepted",
            p.accepted.as_ref(),
            "the route is attached to the Gateway",
        ),
        Condition::positive(
            "ResolvedRefs",
            p.resolved_refs.as_ref(),
            "every reference is resolved",
        ),
    ];
    if let Some(s) = &p.session_conflict {
        out.push(Condition::bad(SESSION_CONDITION, "False", s));
    }
    out
}

/// The conditions as the API holds them: each with `observedGeneration` (when known) and a
/// `lastTransitionTime` kept from the `existing` condition of its type when its status is the
/// same, else now.
fn render(wanted: &[Condition], generation: Option<i64>, existing: &Value) -> Value {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    wanted
        .iter()
        .map(|c| {
            let since = existing
                .as_array()
                .and_then(|e| e.iter().find(|e| e["type"] == c.type_.as_str()))
                .filter(|e| e["status"] == c.status)
                .and_then(|e| e["lastTransitionTime"].as_str())
                .unwrap_or(&now);
            let mut v = json!({
                "type": c.type_,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": since,
            });
            if let (Some(g), Some(fields)) = (generation, v.as_object_mut()) {
                fields.insert("observedGeneration".to_owned(), json!(g));
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(reason: &str) -> Option<Problem> {
        Some(Problem::new(reason, "why"))
    }

    #[test]
    fn conditions_keep_their_transition_time_while_their_status_holds() {
        let existing = json!([
            {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
             "lastTransitionTime": "2020-01-01T00:00:00Z", "observedGeneration": 1},
            {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "",
             "lastTransitionTime": "2020-01-01T00:00:00Z", "observedGeneration": 1},
        ]);
        let p = ParentStatus {
            gateway_namespace: "default".to_owned(),
            gateway_name: "web".to_owned(),
            section_name: None,
            port: None,
            accepted: None,
            resolved_refs: problem("BackendNotFound"),
            session_conflict: problem("SessionNameConflict"),
        };
        let out = render(&route_conditions(&p), Some(2), &existing);
        let out = out.as_array().unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(out[0]["observedGeneration"], 2);
        assert_eq!(out[1]["status"], "False");
        assert_eq!(out[1]["reason"], "BackendNotFound");
        assert_ne!(out[1]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(out[2]["type"], SESSION_CONDITION);
        assert_eq!(out[2]["status"], "False");
    }

    #[test]
    fn listener_conditions_by_polarity() {
        let l = ListenerStatus {
            name: "https".to_owned(),
            port: 443,
            served: false,
            attached_routes: 0,
            supported_kinds: vec!["HTTPRoute".to_owned()],
            accepted: None,
            resolved_refs: None,
            conflicted: problem("HostnameConflict"),
        };
        let c = listener_conditions(&l);
        let by_type = |t: &str| c.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(
            (
                by_type("Accepted").status,
                by_type("Accepted").reason.as_str()
            ),
            ("True", "Accepted")
        );
        assert_eq!(
            (
                by_type("Programmed").status,
                by_type("Programmed").reason.as_str()
            ),
            ("False", "Invalid")
        );
        assert_eq!(
            (
                by_type("Conflicted").status,
                by_type("Conflicted").reason.as_str()
            ),
            ("True", "HostnameConflict")
        );
        let g = GatewayStatus {
            namespace: "default".to_owned(),
            name: "web".to_owned(),
            generation: Some(1),
            listeners: vec![l],
        };
        let c = gateway_conditions(&g);
        assert_eq!(
            (c[0].status, c[0].reason.as_str()),
            ("True", "ListenersNotValid")
        );
        assert_eq!((c[1].status, c[1].reason.as_str()), ("False", "Invalid"));
    }

    #[test]
    fn parent_refs_spell_out_what_the_route_left_implicit() {
        let p = ParentStatus {
            gateway_namespace: "infra".to_owned(),
            gateway_name: "web".to_owned(),
            section_name: Some("http".to_owned()),
            port: None,
            accepted: None,
            resolved_refs: None,
            session_conflict: None,
        };
        assert_eq!(
            parent_ref(&p),
            json!({"group": GROUP, "kind": "Gateway", "namespace": "infra", "name": "web", "sectionName": "http"})
        );
    }
}
