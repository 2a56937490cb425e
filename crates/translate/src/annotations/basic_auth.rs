//! `auth-type: basic` or `digest` with `auth-secret`, `auth-secret-type` and `auth-realm`:
//! ingress-nginx's `auth_basic`, or `auth_digest` (the nginx-http-auth-digest module). Active only
//! when `auth-type` is set, as in ingress-nginx, which configures digest authentication for every
//! value its regex `basic|digest` finds in but `basic` itself.
//!
//! The users come from a Secret (`name` in the Ingress's namespace, or `namespace/name`): with
//! `auth-secret-type: auth-file` (the default) its `auth` key holds htpasswd lines (basic) or
//! htdigest lines (digest, `user:realm:HA1`); with `auth-map` each key is a user and its value the
//! password hash (basic) or `realm:HA1` (digest). Basic lines are read as nginx reads its user
//! file: `#` comments and empty lines skipped, `user:hash`, the hash ending at the next `:` or end
//! of line, the first line of a user the one that counts. A hash of a form Remora cannot verify
//! (see [`model::PasswordScheme`]) skips its line with a warning; a Secret with no usable user
//! answers 401 to every request, as ingress-nginx's empty password file does. Digest lines of
//! another realm than `auth-realm` never match (the module compares the realm) and are skipped
//! with a warning, as is an HA1 that is not 32 lowercase hex digits (`htdigest`'s form).
//!
//! What ingress-nginx refuses to configure is denied (every request 503, its "location denied"),
//! never served open, with a warning naming the annotation: an `auth-type` its regex does not
//! match, a missing or malformed `auth-secret`, a Secret in another namespace (unless
//! `--allow-cross-namespace-resources`, ingress-nginx's ConfigMap key of that name, default
//! false), a missing Secret or `auth` key, an invalid `auth-secret-type` or `auth-realm`. Digest
//! with an empty `auth-realm` is denied too: the module turns itself off without a realm, so
//! ingress-nginx serves such an Ingress without authentication.
//!
//! nginx quirk kept: `auth-realm: "off"` is `auth_basic "off"` (or `auth_digest "off"`), which
//! turns the authentication off; the Ingress is served without it, with a warning.

use super::Reader;
use crate::objects::Secret;
use model::{BasicAuth, DigestAuth, Location, PasswordScheme};
use std::collections::BTreeSet;

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    let Some(auth_type) = r.text("auth-type") else {
        return;
    };
    let secret_type = r.text("auth-secret-type");
    let secret_name = r.text("auth-secret");
    let realm = r.get("auth-realm").unwrap_or("").to_owned();
    let digest = auth_type != "basic";
    if digest {
        // ingress-nginx accepts any value its regex `basic|digest` finds in, and configures
        // digest authentication for every one but `basic`.
        if !auth_type.contains("basic") && !auth_type.contains("digest") {
            let why = format!("invalid value \"{auth_type}\" (expected basic or digest)");
            return deny(r, loc, "auth-type", why);
        }
        if auth_type != "digest" {
            r.warn(
                "auth-type",
                format!("\"{auth_type}\" is configured as digest authentication, as ingress-nginx does for any value but basic that contains basic or digest"),
            );
        }
    }
    let kind = if digest { "digest" } else { "basic" };
    let map = match secret_type.as_deref() {
        None | Some("auth-file") => false,
        Some("auth-map") => true,
        Some(other) => {
            let why = format!("invalid value \"{other}\" (expected auth-file or auth-map)");
            return deny(r, loc, "auth-secret-type", why);
        }
    };
    let Some(secret_name) = secret_name else {
        let why = format!("auth-type {kind} needs auth-secret, the Secret that holds the users");
        return deny(r, loc, "auth-secret", why);
    };
    let ingress_namespace = r.object().namespace.clone();
    let (namespace, name) = match split_name(&secret_name) {
        Some((ns, name)) => (ns.unwrap_or(&ingress_namespace).to_owned(), name.to_owned()),
        None => {
            let why =
                format!("invalid Secret name \"{secret_name}\" (expected name or namespace/name)");
            return deny(r, loc, "auth-secret", why);
        }
    };
    let (secret, key) = match r.secret(&namespace, &name) {
        Ok(found) => found,
        Err(why) => return deny(r, loc, "auth-secret", why),
    };
    if !realm
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/: ".contains(&b))
    {
        let why = format!(
            "invalid value \"{realm}\" (ingress-nginx allows letters, digits, spaces and -._~:/)"
        );
        return deny(r, loc, "auth-realm", why);
    }
    let file = if map {
        None
    } else {
        match value(secret, "auth") {
            None => {
                let why = format!(
                    "Secret {key} has no auth key (the {} lines of auth-secret-type auth-file)",
                    if digest { "htdigest" } else { "htpasswd" }
                );
                return deny(r, loc, "auth-secret", why);
            }
            Some(Err(e)) => {
                return deny(r, loc, "auth-secret", format!("Secret {key}: auth {e}"));
            }
            Some(Ok(text)) => Some(text),
        }
    };
    if realm == "off" {
        r.warn(
            "auth-realm",
            format!("\"off\" turns nginx's auth_{kind} off: the Ingress is served without authentication, as ingress-nginx serves it"),
        );
        return;
    }
    if digest && realm.is_empty() {
        let why = "digest authentication needs an auth-realm (without one ingress-nginx's auth_digest turns itself off and serves the Ingress open)".to_owned();
        return deny(r, loc, "auth-realm", why);
    }
    let check = if digest {
        Check::Digest(&realm)
    } else {
        Check::Basic
    };
    let users = match file {
        Some(text) => read_file(&text, &key, check, r),
        None => match read_map(secret, &key, check, r) {
            Ok(users) => users,
            Err(why) => return deny(r, loc, "auth-secret", why),
        },
    };
    if users.is_empty() {
        r.warn(
            "auth-secret",
            format!("Secret {key} holds no usable user: every request of this Ingress gets 401, as with ingress-nginx"),
        );
    }
    if digest {
        loc.digest_auth = Some(DigestAuth {
            realm,
            secret: key,
            users,
        });
    } else {
        loc.basic_auth = Some(BasicAuth {
            realm,
            secret: key,
            users,
        });
    }
}

/// The Ingress is denied: 503 to every request, and a warning that says why.
fn deny(r: &mut Reader<'_>, loc: &mut Location, annotation: &str, why: String) {
    r.deny(
        loc,
        annotation,
        &why,
        "rather than being served without authentication",
    );
}

/// client-go's `SplitMetaNamespaceKey` of a value that passed ingress-nginx's validation
/// (letters, digits, `-._~:/`): `name` or `namespace/name` (an empty namespace is the
/// Ingress's).
pub(super) fn split_name(value: &str) -> Option<(Option<&str>, &str)> {
    let valid = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:/".contains(&b));
    if !valid {
        return None;
    }
    let mut parts = value.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, _) => Some((None, name)),
        (Some(""), Some(name), None) => Some((None, name)),
        (Some(ns), Some(name), None) => Some((Some(ns), name)),
        _ => None,
    }
}

/// A key of the Secret; the error says what is wrong with its value.
fn value(secret: &Secret, key: &str) -> Option<Result<Vec<u8>, String>> {
    secret
        .value(key)
        .map(|v| v.map_err(|e| format!("is not valid base64 ({e})")))
}

/// What a user's line must hold: an htpasswd hash, or the realm and HA1 of an htdigest line.
#[derive(Clone, Copy)]
enum Check<'a> {
    Basic,
    Digest(&'a str),
}

/// The users of htpasswd (or htdigest) lines, as nginx reads its user file.
fn read_file(
    text: &[u8],
    key: &str,
    check: Check<'_>,
    r: &mut Reader<'_>,
) -> Vec<(String, String)> {
    let mut users = Users::new(check);
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        let at = format!("Secret {key}, line {}", i + 1);
        match line.first() {
            None | Some(b'#' | b'\r') => continue,
            Some(_) => {}
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            r.warn("auth-secret", format!("{at}: no user:hash, skipped"));
            continue;
        };
        users.add(&line[..colon], &line[colon + 1..], &at, r);
    }
    users.list
}

/// The users of an `auth-map` Secret: each key a user, its value the hash (ingress-nginx writes
/// them as `key:value` lines of nginx's user file).
fn read_map(
    secret: &Secret,
    key: &str,
    check: Check<'_>,
    r: &mut Reader<'_>,
) -> Result<Vec<(String, String)>, String> {
    let mut users = Users::new(check);
    let keys: BTreeSet<&String> = secret
        .data
        .keys()
        .chain(secret.string_data.keys())
        .collect();
    for user in keys {
        let hash = match value(secret, user) {
            Some(Ok(hash)) => hash,
            Some(Err(e)) => return Err(format!("Secret {key}: {user} {e}")),
            None => continue,
        };
        users.add(
            user.as_bytes(),
            &hash,
            &format!("Secret {key}, key {user}"),
            r,
        );
    }
    Ok(users.list)
}

struct Users<'a> {
    check: Check<'a>,
    list: Vec<(String, String)>,
    seen: BTreeSet<Vec<u8>>,
}

impl<'a> Users<'a> {
    fn new(check: Check<'a>) -> Self {
        Self {
            check,
            list: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    /// One `user:rest` line: the hash is `rest` up to a `:` or the end of the line; for digest,
    /// `rest` is `realm:HA1`.
    fn add(&mut self, user: &[u8], rest: &[u8], at: &str, r: &mut Reader<'_>) {
        if let Check::Digest(realm) = self.check {
            return self.add_digest(user, rest, realm, at, r);
        }
        let end = rest
            .iter()
            .position(|b| matches!(b, b':' | b'\r' | b'\n'))
            .unwrap_or(rest.len());
        let hash = &rest[..end];
        // nginx uses the first line of a user, whatever it holds.
        if !self.seen.insert(user.to_vec()) {
            r.warn(
                "auth-secret",
                format!(
                    "{at}: user \"{}\" again, skipped (the first one counts, as in nginx)",
                    String::from_utf8_lossy(user)
                ),
            );
            return;
        }
        let (Ok(user), Ok(hash)) = (std::str::from_utf8(user), std::str::from_utf8(hash)) else {
            r.warn("auth-secret", format!("{at}: not UTF-8, skipped"));
            return;
        };
        if user.is_empty() {
            r.warn("auth-secret", format!("{at}: empty user name, skipped"));
            return;
        }
        if hash.is_empty() {
            r.warn(
                "auth-secret",
                format!("{at}: user \"{user}\" has no password hash, skipped"),
            );
            return;
        }
        if PasswordScheme::of(hash).is_none() {
            r.warn(
                "auth-secret",
                format!("{at}: user \"{user}\" has a password hash of a form Remora does not know (bcrypt, apr1, md5-crypt, sha256-crypt, sha512-crypt, {{SHA}}, {{SSHA}}, {{PLAIN}} or DES crypt), skipped"),
            );
            return;
        }
        self.list.push((user.to_owned(), hash.to_owned()));
    }

    /// One htdigest `user:realm:HA1` line, as the digest module matches it: the user, then the
    /// realm compared whole, then 32 characters of HA1 up to a `:`, `#` or the end of the line.
    fn add_digest(&mut self, user: &[u8], rest: &[u8], realm: &str, at: &str, r: &mut Reader<'_>) {
        let (Ok(user), Ok(rest)) = (std::str::from_utf8(user), std::str::from_utf8(rest)) else {
            r.warn("auth-secret", format!("{at}: not UTF-8, skipped"));
            return;
        };
        let Some((line_realm, ha1)) = rest.split_once(':') else {
            r.warn("auth-secret", format!("{at}: no user:realm:HA1, skipped"));
            return;
        };
        let ha1 = ha1.split([':', '#', '\r', '\n']).next().unwrap_or_default();
        if user.is_empty() {
            r.warn("auth-secret", format!("{at}: empty user name, skipped"));
            return;
        }
        if line_realm != realm {
            r.warn(
                "auth-secret",
                format!("{at}: user \"{user}\" is of realm \"{line_realm}\", not the auth-realm \"{realm}\": skipped (it never matches)"),
            );
            return;
        }
        if ha1.len() != 32 || !ha1.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            r.warn(
                "auth-secret",
                format!("{at}: user \"{user}\" has no HA1 of 32 lowercase hex digits (MD5 of user:realm:password, as htdigest writes it), skipped"),
            );
            return;
        }
        // The module tries the lines in order; Remora keeps the first of a user.
        if !self.seen.insert(user.as_bytes().to_vec()) {
            r.warn(
                "auth-secret",
                format!("{at}: user \"{user}\" again, skipped (the first one counts)"),
            );
            return;
        }
        self.list.push((user.to_owned(), ha1.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crate::{translate, Objects, Options};
    use serde_json::json;

    /// The users (and hashes) translation keeps of a Secret, for an Ingress with these
    /// annotations.
    fn users(secret: serde_json::Value, annotations: serde_json::Value) -> Vec<(String, String)> {
        let mut objects = Objects::default();
        objects.add_document(secret).unwrap();
        objects
            .add_document(json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "web", "namespace": "default", "annotations": annotations},
                "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "web", "port": {"number": 80}}}}
                ]}}]}
            }))
            .unwrap();
        let t = translate(&objects, &Options::default());
        let location = &t.snapshot.hosts[0].routes[0].target.location;
        assert_eq!(location.denied, None);
        location.basic_auth.as_ref().unwrap().users.clone()
    }

    fn secret(data: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "htpasswd", "namespace": "default"},
            "stringData": data
        })
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(u, h)| (u.to_string(), h.to_string()))
            .collect()
    }

    #[test]
    fn htpasswd_lines_are_read_as_nginx_reads_its_user_file() {
        let auth = "# comment\n\
            alice:{SHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQ=:the rest is no hash\r\n\
            \r\n\
            \n\
            bob:TmysUhiINs0js\n\
            alice:{PLAIN}second\n\
            carol:plaintext\n\
            :{PLAIN}nobody\n\
            no colon\n\
            dave:$apr1$Ssm1kkLK$nYlkJg0Nlsm9hQ5us.jFg.";
        let annotations = json!({
            "nginx.ingress.kubernetes.io/auth-type": "basic",
            "nginx.ingress.kubernetes.io/auth-secret": "htpasswd",
        });
        assert_eq!(
            users(secret(json!({ "auth": auth })), annotations),
            pairs(&[
                ("alice", "{SHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQ="),
                ("bob", "TmysUhiINs0js"),
                ("dave", "$apr1$Ssm1kkLK$nYlkJg0Nlsm9hQ5us.jFg."),
            ])
        );
    }

    #[test]
    fn auth_map_keys_are_users() {
        let annotations = json!({
            "nginx.ingress.kubernetes.io/auth-type": "basic",
            "nginx.ingress.kubernetes.io/auth-secret": "default/htpasswd",
            "nginx.ingress.kubernetes.io/auth-secret-type": "auth-map",
        });
        let data = json!({
            "zed": "{PLAIN}z\n",
            "amy": "$1$Qx3kP9aZ$pTKnXjzLQt.iAnL2HecS1.",
            "eve": "not a hash",
        });
        assert_eq!(
            users(secret(data), annotations),
            pairs(&[
                ("amy", "$1$Qx3kP9aZ$pTKnXjzLQt.iAnL2HecS1."),
                ("zed", "{PLAIN}z"),
            ])
        );
    }

    #[test]
    fn htdigest_lines_of_the_realm_are_users() {
        let mut objects = Objects::default();
        let auth = "# htdigest\n\
            alice:Staff:c2bad27ace59ac64fc0e2cb5a46ac131\r\n\
            bob:Other:dd26ab964f3acd0adc3a24070e71dcac\n\
            carol:Staff:0123\n\
            erin:Staff:54b6feb51d6bf6de584d46807d77f47a:comment\n\
            alice:Staff:28bb1653c06964cb6c159559e3693525";
        objects
            .add_document(secret(json!({ "auth": auth })))
            .unwrap();
        objects
            .add_document(json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "web", "namespace": "default", "annotations": {
                    "nginx.ingress.kubernetes.io/auth-type": "digest",
                    "nginx.ingress.kubernetes.io/auth-secret": "htpasswd",
                    "nginx.ingress.kubernetes.io/auth-realm": "Staff",
                }},
                "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "web", "port": {"number": 80}}}}
                ]}}]}
            }))
            .unwrap();
        let t = translate(&objects, &Options::default());
        let location = &t.snapshot.hosts[0].routes[0].target.location;
        assert_eq!(location.denied, None);
        assert_eq!(location.basic_auth, None);
        let digest = location.digest_auth.as_ref().unwrap();
        assert_eq!(digest.realm, "Staff");
        assert_eq!(
            digest.users,
            pairs(&[
                ("alice", "c2bad27ace59ac64fc0e2cb5a46ac131"),
                ("erin", "54b6feb51d6bf6de584d46807d77f47a"),
            ])
        );
    }

    #[test]
    fn secret_names() {
        use super::split_name;
        assert_eq!(split_name("htpasswd"), Some((None, "htpasswd")));
        assert_eq!(
            split_name("auth/htpasswd"),
            Some((Some("auth"), "htpasswd"))
        );
        assert_eq!(split_name("/htpasswd"), Some((None, "htpasswd")));
        for bad in ["a/b/c", "bad name", "a$b", "ns/na;me"] {
            assert_eq!(split_name(bad), None, "{bad}");
        }
    }
}
