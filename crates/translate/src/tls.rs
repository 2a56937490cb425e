//! The `spec.tls` section: which certificate each host presents, from `kubernetes.io/tls` Secrets,
//! chosen as ingress-nginx chooses: the Secret whose `hosts` list the host, else one whose
//! certificate names cover a rule host. A host listed in `spec.tls` whose Secret is missing,
//! invalid or does not cover it gets the default certificate, with a warning.

use crate::lookup::Lookups;
use crate::objects::{Ingress, Secret};
use crate::Diagnostics;
use model::{Certificate, HostMatch, HostTls, KeyFormat, ObjectRef, PrivateKey, Severity};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Certificates loaded from Secrets so far (each Secret is decoded once per translation).
pub struct Certificates<'a> {
    lookups: &'a Lookups<'a>,
    loaded: HashMap<String, Result<usize, String>>,
    list: Vec<Certificate>,
}

impl<'a> Certificates<'a> {
    pub(crate) fn new(lookups: &'a Lookups<'a>) -> Self {
        Self {
            lookups,
            loaded: HashMap::new(),
            list: Vec::new(),
        }
    }

    pub fn finish(self) -> Vec<Certificate> {
        self.list
    }

    /// The index of the certificate of Secret `namespace/name`, or why there is none.
    pub(crate) fn load(&mut self, namespace: &str, name: &str) -> Result<usize, String> {
        let key = format!("{namespace}/{name}");
        if let Some(r) = self.loaded.get(&key) {
            return r.clone();
        }
        let result = match self.lookups.secret(namespace, name) {
            None => Err(format!("Secret {key} not found")),
            Some(secret) => decode(secret, &key).map(|c| {
                self.list.push(c);
                self.list.len() - 1
            }),
        };
        self.loaded.insert(key, result.clone());
        result
    }

    fn names(&self, i: usize) -> &[String] {
        self.list.get(i).map_or(&[], |c| &c.names[..])
    }
}

/// The certificate each host of a (non-canary) Ingress presents, for the hosts that have TLS.
pub fn resolve(
    ing: &Ingress,
    object: &ObjectRef,
    certs: &mut Certificates<'_>,
    diags: &mut Diagnostics,
) -> BTreeMap<HostMatch, HostTls> {
    let mut out = BTreeMap::new();
    if ing.spec.tls.is_empty() {
        return out;
    }
    let namespace = ing.metadata.namespace();
    let mut valid = Vec::new();
    for tls in &ing.spec.tls {
        let hosts: Vec<HostMatch> = tls
            .hosts
            .iter()
            .filter_map(|h| HostMatch::parse(h.trim()).ok())
            .collect();
        let listed = || {
            let names: Vec<String> = hosts.iter().map(ToString::to_string).collect();
            if names.is_empty() {
                "none of its hosts (spec.tls hosts is empty)".to_owned()
            } else {
                names.join(", ")
            }
        };
        let cert = match tls.secret_name.as_deref().map(str::trim) {
            None | Some("") => {
                if !hosts.is_empty() {
                    diags.push(
                        Severity::Info,
                        object,
                        None,
                        format!(
                            "spec.tls lists {} without secretName: the default certificate is served for them",
                            listed()
                        ),
                    );
                }
                None
            }
            Some(name) => match certs.load(namespace, name) {
                Ok(i) => {
                    valid.push(i);
                    Some(i)
                }
                Err(why) => {
                    diags.warn(
                        object,
                        format!("{why}: the default certificate is served for {}", listed()),
                    );
                    None
                }
            },
        };
        for host in hosts {
            let choice = match cert {
                Some(i) if covers(certs.names(i), &host) => HostTls::Certificate(i),
                Some(i) => {
                    let (secret, names) = certs
                        .list
                        .get(i)
                        .map_or(("", &[][..]), |c| (c.secret.as_str(), &c.names[..]));
                    diags.warn(
                        object,
                        format!(
                            "the certificate of Secret {secret} does not cover host {host} (it names {}): the default certificate is served for it",
                            names_list(names),
                        ),
                    );
                    HostTls::Default
                }
                None => HostTls::Default,
            };
            out.entry(host).or_insert(choice);
        }
    }
    // Rule hosts not listed in any `hosts`: a certificate of this Ingress that covers them.
    for rule in &ing.spec.rules {
        let Some(Ok(host)) = rule.host.as_deref().map(|h| HostMatch::parse(h.trim())) else {
            continue;
        };
        if out.contains_key(&host) {
            continue;
        }
        if let Some(&i) = valid.iter().find(|&&i| covers(certs.names(i), &host)) {
            out.insert(host, HostTls::Certificate(i));
        }
    }
    out
}

/// Decode and check a TLS Secret: `tls.crt` (a PEM chain, leaf first) and `tls.key` (a PEM
/// private key matching the leaf), from `data` (base64) or `stringData`.
pub(crate) fn decode(secret: &Secret, key: &str) -> Result<Certificate, String> {
    let field = |name: &str| -> Result<Vec<u8>, String> {
        secret
            .value(name)
            .ok_or_else(|| format!("Secret {key} has no {name}"))?
            .map_err(|e| format!("Secret {key}: {name} is not valid base64 ({e})"))
    };
    let crt = field("tls.crt")?;
    let pem_key = field("tls.key")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&crt)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("Secret {key}: tls.crt is not valid PEM ({e})"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("Secret {key}: tls.crt holds no certificate"));
    };
    let private = PrivateKeyDer::from_pem_slice(&pem_key)
        .map_err(|e| format!("Secret {key}: tls.key holds no private key ({e})"))?;
    let names: Vec<String> = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| format!("Secret {key}: tls.crt is not a valid X.509 certificate ({e})"))?
        .valid_dns_names()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain.clone(), private.clone_key(), &provider)
        .map_err(|e| format!("Secret {key}: tls.key does not fit tls.crt ({e})"))?;
    let format = match &private {
        PrivateKeyDer::Pkcs1(_) => KeyFormat::Pkcs1,
        PrivateKeyDer::Sec1(_) => KeyFormat::Sec1,
        _ => KeyFormat::Pkcs8,
    };
    Ok(Certificate {
        secret: key.to_owned(),
        names,
        chain: chain.iter().map(|c| Arc::from(c.as_ref())).collect(),
        key: PrivateKey {
            format,
            der: Arc::from(private.secret_der()),
        },
    })
}

/// Do certificate names (lowercase, possibly `*.suffix`) cover a host?
fn covers(names: &[String], host: &HostMatch) -> bool {
    match host {
        HostMatch::Exact(h) => names.iter().any(|n| {
            n == h
                || n.strip_prefix('*').is_some_and(|suffix| {
                    h.strip_suffix(suffix)
                        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
                })
        }),
        HostMatch::Wildcard(suffix) => names
            .iter()
            .any(|n| n.strip_prefix('*') == Some(suffix.as_str())),
        HostMatch::Any => false,
    }
}

fn names_list(names: &[String]) -> String {
    if names.is_empty() {
        "no DNS names".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_names_cover_one_label() {
        let names = vec!["*.example.com".to_owned(), "example.org".to_owned()];
        let exact = |h: &str| HostMatch::Exact(h.to_owned());
        assert!(covers(&names, &exact("shop.example.com")));
        assert!(!covers(&names, &exact("a.shop.example.com")));
        assert!(!covers(&names, &exact("example.com")));
        assert!(covers(&names, &exact("example.org")));
        assert!(covers(&names, &HostMatch::Wildcard(".example.com".into())));
        assert!(!covers(&names, &HostMatch::Wildcard(".example.org".into())));
        assert!(!covers(&names, &HostMatch::Any));
    }
}
