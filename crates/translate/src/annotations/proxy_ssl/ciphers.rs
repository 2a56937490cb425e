//! `proxy-ssl-ciphers`: an OpenSSL cipher list (`HIGH:!AES`, `ECDHE-RSA-AES128-GCM-SHA256:...`)
//! evaluated over the TLS 1.2 cipher suites rustls has, as OpenSSL evaluates it over its own:
//! each element adds the suites it names (`A+B`: those both name), `-X` removes them, `!X`
//! removes them for good, `+X` moves them to the end; `@STRENGTH` and `@SECLEVEL=n` change
//! nothing here. TLS 1.3 suites are not chosen by cipher lists (OpenSSL's `ciphersuites`), so
//! they are all offered.

use crate::annotations::Reader;

/// How a suite authenticates the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Ecdsa,
    Rsa,
}

/// Its bulk cipher.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Enc {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20,
}

/// rustls's TLS 1.2 suites (all ECDHE, all AEAD): OpenSSL's name, IANA's, authentication, cipher,
/// in rustls's order of preference.
const SUITES: [(&str, &str, Auth, Enc); 6] = [
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Auth::Ecdsa,
        Enc::Aes256Gcm,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Auth::Ecdsa,
        Enc::Aes128Gcm,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Auth::Ecdsa,
        Enc::Chacha20,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Auth::Rsa,
        Enc::Aes256Gcm,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Auth::Rsa,
        Enc::Aes128Gcm,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Auth::Rsa,
        Enc::Chacha20,
    ),
];

/// OpenSSL's names of the suites rustls has, for warnings.
pub const OPENSSL_NAMES: [&str; 6] = [
    SUITES[0].0,
    SUITES[1].0,
    SUITES[2].0,
    SUITES[3].0,
    SUITES[4].0,
    SUITES[5].0,
];

/// ingress-nginx's check of the value: `^[A-Za-z0-9\+:\_\-!]*$`.
pub fn valid(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+:_-!".contains(&b))
}

/// The TLS 1.2 suites of the listener cipher list `v`, as the ConfigMap's and the annotation's
/// `ssl-ciphers` read it: names rustls has no suite for are left out with a warning; a list that
/// is invalid or leaves none is a warning that ends with what is offered instead (`otherwise`),
/// and `None`.
pub fn listener(r: &mut Reader<'_>, v: &str, otherwise: &str) -> Option<Vec<String>> {
    const KEY: &str = "ssl-ciphers";
    match valid(v).then(|| evaluate(v)) {
        Some(e) if !e.suites.is_empty() => {
            if !e.unknown.is_empty() {
                r.warn(
                    KEY,
                    format!(
                        "{} name no TLS 1.2 suite rustls has ({}): left out",
                        e.unknown.join(", "),
                        OPENSSL_NAMES.join(", ")
                    ),
                );
            }
            Some(e.suites)
        }
        _ => {
            r.warn(
                KEY,
                format!(
                    "\"{v}\" leaves none of the TLS 1.2 suites rustls has ({}): {otherwise}",
                    OPENSSL_NAMES.join(", ")
                ),
            );
            None
        }
    }
}

/// What a cipher list leaves.
pub struct Evaluated {
    /// IANA names of the TLS 1.2 suites offered, in order.
    pub suites: Vec<String>,
    /// Elements that add suites but name none rustls has (`AES128-SHA`, `3DES`, `MEDIUM`...).
    pub unknown: Vec<String>,
}

/// Does the OpenSSL alias or cipher name `alias` cover suite `i`?
fn covers(alias: &str, i: usize) -> bool {
    let (openssl, iana, auth, enc) = SUITES[i];
    match alias {
        "ALL" | "DEFAULT" | "HIGH" | "AEAD" | "ECDHE" | "EECDH" | "kECDHE" | "kEECDH" | "SHA2" => {
            true
        }
        "aECDSA" | "ECDSA" => auth == Auth::Ecdsa,
        "aRSA" => auth == Auth::Rsa,
        "AES" | "AESGCM" => enc != Enc::Chacha20,
        "AES128" => enc == Enc::Aes128Gcm,
        "AES256" => enc == Enc::Aes256Gcm,
        "CHACHA20" => enc == Enc::Chacha20,
        "SHA256" => enc != Enc::Aes256Gcm,
        "SHA384" => enc == Enc::Aes256Gcm,
        _ => alias == openssl || alias == iana,
    }
}

/// Evaluate the cipher list `v`.
pub fn evaluate(v: &str) -> Evaluated {
    let mut list: Vec<usize> = Vec::new();
    let mut banned = [false; SUITES.len()];
    let mut unknown = Vec::new();
    for element in v.split([':', ',', ' ']).filter(|e| !e.is_empty()) {
        let (op, body) = match element.as_bytes()[0] {
            b'!' | b'-' | b'+' => (element.as_bytes()[0], &element[1..]),
            _ => (b'=', element),
        };
        if body.starts_with('@') || body.is_empty() {
            continue;
        }
        let named: Vec<usize> = (0..SUITES.len())
            .filter(|&i| body.split('+').all(|alias| covers(alias, i)))
            .collect();
        match op {
            b'!' => {
                for &i in &named {
                    banned[i] = true;
                }
                list.retain(|i| !named.contains(i));
            }
            b'-' => list.retain(|i| !named.contains(i)),
            b'+' => {
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    list.iter().partition(|i| named.contains(i));
                list = kept;
                list.extend(moved);
            }
            _ => {
                if named.is_empty() {
                    unknown.push(body.to_owned());
                }
                for i in named {
                    if !banned[i] && !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
    }
    Evaluated {
        suites: list.into_iter().map(|i| SUITES[i].1.to_owned()).collect(),
        unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suites(v: &str) -> Vec<String> {
        evaluate(v).suites
    }

    #[test]
    fn lists_as_openssl_reads_them() {
        assert_eq!(suites("DEFAULT").len(), 6);
        // ingress-nginx's e2e value: the ChaCha20 suites are what HIGH keeps without AES.
        assert_eq!(
            suites("HIGH:!AES"),
            [
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert_eq!(
            suites("ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:DES-CBC3-SHA"),
            ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
        );
        assert_eq!(
            evaluate("ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:DES-CBC3-SHA").unknown,
            ["AES128-SHA", "DES-CBC3-SHA"]
        );
        // `!` is for good, `-` may be added back; `+` moves to the end; `A+B` is both.
        assert!(suites("!CHACHA20:ALL")
            .iter()
            .all(|s| !s.contains("CHACHA")));
        assert_eq!(suites("-CHACHA20:ALL").len(), 6);
        assert_eq!(
            suites("ECDHE+AES256+aRSA"),
            ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
        );
        let moved = suites("ALL:+aRSA");
        assert!(moved[..3].iter().all(|s| s.contains("ECDSA")));
        assert!(suites("MEDIUM:LOW").is_empty());
        assert!(suites("ALL:!ALL").is_empty());
        assert!(evaluate("!3DES:ALL").unknown.is_empty());
    }

    #[test]
    fn ingress_nginx_characters_only() {
        assert!(valid("HIGH:!aNULL:!MD5"));
        assert!(valid("ECDHE-RSA-AES128-GCM-SHA256"));
        assert!(!valid("HIGH;rm"));
        assert!(!valid("@STRENGTH"));
    }
}
