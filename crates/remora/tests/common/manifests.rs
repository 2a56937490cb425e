//! Manifests for the tests, written as a user would: Services, Ingresses and ConfigMaps.

/// A ConfigMap `namespace/name` with `data` (values quoted as written).
pub fn config_map_in(namespace: &str, name: &str, data: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n"
    );
    for (k, v) in data {
        y.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    y
}

/// The ingress-nginx ConfigMap the tests name with `--configmap ingress-nginx/remora`.
pub fn config_map(data: &[(&str, &str)]) -> String {
    config_map_in("ingress-nginx", "remora", data)
}

/// A Service `name` with port 80 (unnamed).
pub fn service_yaml(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: 80\n"
    )
}

/// An Ingress manifest, built call by call:
/// `IngressYaml::new("web").nginx("affinity", "cookie").rule(Some("foo.com"), "/", "web").build()`.
#[derive(Clone)]
pub struct IngressYaml {
    name: String,
    annotations: Vec<(String, String)>,
    tls: Vec<(Vec<String>, String)>,
    rules: Vec<(Option<String>, String, String)>,
    port: String,
}

impl IngressYaml {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            annotations: Vec::new(),
            tls: Vec::new(),
            rules: Vec::new(),
            port: "number: 80".to_owned(),
        }
    }

    /// `nginx.ingress.kubernetes.io/<key>: "<value>"`.
    pub fn nginx(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((
            format!("nginx.ingress.kubernetes.io/{key}"),
            value.to_owned(),
        ));
        self
    }

    /// Several `nginx.ingress.kubernetes.io/` annotations.
    pub fn nginx_all(self, annotations: &[(&str, &str)]) -> Self {
        annotations.iter().fold(self, |ing, (k, v)| ing.nginx(k, v))
    }

    /// A `spec.tls` entry.
    pub fn tls(mut self, hosts: &[&str], secret: &str) -> Self {
        self.tls.push((
            hosts.iter().map(|h| h.to_string()).collect(),
            secret.to_owned(),
        ));
        self
    }

    /// A rule (`host` `None` or empty: any host) with one Prefix path to `service`.
    pub fn rule(mut self, host: Option<&str>, path: &str, service: &str) -> Self {
        self.rules.push((
            host.filter(|h| !h.is_empty()).map(str::to_owned),
            path.to_owned(),
            service.to_owned(),
        ));
        self
    }

    /// Every path refers to the Service port by this name instead of number 80.
    pub fn port_name(mut self, name: &str) -> Self {
        self.port = format!("name: {name}");
        self
    }

    pub fn build(&self) -> String {
        let mut s = format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {}\n",
            self.name
        );
        if !self.annotations.is_empty() {
            s.push_str("  annotations:\n");
            for (k, v) in &self.annotations {
                s.push_str(&format!("    {k}: \"{v}\"\n"));
            }
        }
        s.push_str("spec:\n");
        if !self.tls.is_empty() {
            s.push_str("  tls:\n");
            for (hosts, secret) in &self.tls {
                s.push_str(&format!(
                    "  - hosts: [{}]\n    secretName: {secret}\n",
                    hosts.join(", ")
                ));
            }
        }
        s.push_str("  rules:\n");
        for (host, path, service) in &self.rules {
            match host {
                Some(h) => s.push_str(&format!("  - host: \"{h}\"\n    http:\n")),
                None => s.push_str("  - http:\n"),
            }
            s.push_str(&format!(
                "      paths:\n      - path: {path}\n        pathType: Prefix\n        backend:\n          service:\n            name: {service}\n            port:\n              {}\n",
                self.port
            ));
        }
        s
    }
}

/// An Ingress `name` sending every path of `host` to the Service `web`, with these
/// `nginx.ingress.kubernetes.io/` annotations.
#[allow(dead_code)]
pub fn web_ingress(name: &str, host: &str, annotations: &[(&str, &str)]) -> String {
    IngressYaml::new(name)
        .nginx_all(annotations)
        .rule(Some(host), "/", "web")
        .build()
}

/// Remora's IngressClass, as the controller tests install it.
#[allow(dead_code)]
pub const CLASS: &str = "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: remora
spec:
  controller: remora.dev/ingress-controller
";
