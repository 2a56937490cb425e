//! Digest authentication (`auth-type: digest`) as ingress-nginx's `auth_digest` (the
//! nginx-http-auth-digest module) checks it: RFC 7616/2617 with MD5 and `qop=auth`, the users'
//! HA1 (`MD5(user:realm:password)`, htdigest's form) prepared once per table.
//!
//! The challenge is the module's: `WWW-Authenticate: Digest algorithm="MD5", qop="auth",
//! realm="<auth-realm>", nonce="<nonce>"`, with `, stale="true"` when the right password came
//! with a nonce that is no longer valid (so clients ask again without prompting). The module keeps
//! each nonce in shared memory; Remora's nonces verify themselves: 8 hex digits of the time they
//! were issued, 16 of a serial number of the process, then 96 bits of a keyed BLAKE3 hash (a
//! random key of the process) of those and the realm. A nonce is good for [`NONCE_TIMEOUT`] (the module's `auth_digest_timeout`)
//! from when it was issued, and for `nc` below 20 (its `auth_digest_replays`). Each count of a
//! nonce is let through once, as the module does: the counts used are noted in a fixed table of
//! atomics shared by the workers (no lock, nothing allocated per request; see [`record`]).
//! Nonces of another process (a restart, another replica) are stale: clients ask again without
//! prompting.
//!
//! As the module: the `Authorization` header must carry `username`, `realm`, `nonce`, `uri`,
//! `qop`, `nc`, `cnonce` and `response`; `uri` must be the request target as sent, or its path
//! when the target has a query (the module's allowance for .NET's client); the response is
//! `MD5(HA1:nonce:nc:cnonce:qop:MD5(method:uri))`, compared in constant time. Everything else
//! (no header, another scheme, an unknown user, a wrong response) gets a fresh challenge.
//! Remora asks `qop` to be `auth` (the only one it offers) and the realm to be the route's.

use http::{HeaderValue, Method};
use md5::{Digest as _, Md5};
use model::DigestAuth;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// How long a nonce is good for after it was issued (the module's `auth_digest_timeout`).
pub const NONCE_TIMEOUT: Duration = Duration::from_secs(60);
/// The first nonce count that is refused as stale (the module's `auth_digest_replays`).
const MAX_NC: u32 = 20;

/// A route's digest authentication, prepared once per table.
pub struct DigestAuthRuntime {
    realm: String,
    /// By user name: the HA1 as 32 lowercase hex digits.
    users: HashMap<Box<[u8]>, [u8; 32]>,
}

/// Why a request is not let through: the challenge to answer with.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No valid credentials: a fresh challenge.
    Challenge,
    /// The right response with a nonce no longer valid: a fresh challenge with `stale=true`.
    Stale,
}

impl DigestAuthRuntime {
    pub fn new(auth: &DigestAuth) -> Self {
        let users = auth
            .users
            .iter()
            .filter_map(|(user, ha1)| {
                // Translation kept only 32 lowercase hex digits.
                let ha1: [u8; 32] = ha1.as_bytes().try_into().ok()?;
                Some((Box::from(user.as_bytes()), ha1))
            })
            .collect();
        Self {
            realm: auth.realm.clone(),
            users,
        }
    }

    /// The `WWW-Authenticate` header of a 401, with a nonce issued now.
    pub fn challenge(&self, refusal: &Refusal) -> HeaderValue {
        let nonce = issue(&self.realm, now());
        let stale = match refusal {
            Refusal::Stale => ", stale=\"true\"",
            Refusal::Challenge => "",
        };
        let value = format!(
            "Digest algorithm=\"MD5\", qop=\"auth\", realm=\"{}\", nonce=\"{}\"{stale}",
            self.realm,
            String::from_utf8_lossy(&nonce)
        );
        // The realm was checked by translation (letters, digits, spaces and `-._~:/`).
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Digest"))
    }

    /// Do these credentials (the request's `Authorization` header) answer a challenge of this
    /// route for the request `method target`?
    pub fn check(
        &self,
        method: &Method,
        target: &str,
        authorization: Option<&HeaderValue>,
    ) -> Result<(), Refusal> {
        self.check_at(method, target, authorization, now())
    }

    fn check_at(
        &self,
        method: &Method,
        target: &str,
        authorization: Option<&HeaderValue>,
        now: u64,
    ) -> Result<(), Refusal> {
        let f = authorization
            .and_then(|v| Fields::parse(v.as_bytes()))
            .ok_or(Refusal::Challenge)?;
        if *f.realm != *self.realm.as_bytes() || *f.qop != *b"auth" {
            return Err(Refusal::Challenge);
        }
        let target = target.as_bytes();
        let uri: &[u8] = &f.uri;
        let same_target = target == uri
            || (target.len() > uri.len() && target.starts_with(uri) && target[uri.len()] == b'?');
        if !same_target {
            return Err(Refusal::Challenge);
        }
        let Some(ha1) = self.users.get(&*f.username) else {
            tracing::debug!("digest authentication: unknown user");
            return Err(Refusal::Challenge);
        };
        let expected = response(ha1, method.as_str(), &f);
        if !bool::from(expected.as_slice().ct_eq(&f.response)) {
            tracing::debug!("digest authentication: wrong response");
            return Err(Refusal::Challenge);
        }
        let nc = std::str::from_utf8(&f.nc)
            .ok()
            .and_then(|nc| u32::from_str_radix(nc, 16).ok())
            .ok_or(Refusal::Challenge)?;
        if nc == 0 {
            return Err(Refusal::Challenge);
        }
        if nc >= MAX_NC {
            return Err(Refusal::Stale);
        }
        let issued = verify(&self.realm, &f.nonce).ok_or(Refusal::Challenge)?;
        if now < issued || now - issued > NONCE_TIMEOUT.as_secs() {
            return Err(Refusal::Stale);
        }
        record(&f.nonce, issued, nc, now)
    }
}

/// Slots of the record of the nonce counts used (a power of two): 512 KiB, allocated at the first
/// digest authentication.
const USED_SLOTS: usize = 1 << 16;

/// The nonce counts used, shared by the workers: one word per slot, 24 bits of a hash of the
/// nonce, the low 20 bits of the second it was issued, a bit for each count (1 to 19) used.
fn used() -> &'static [AtomicU64] {
    static USED: OnceLock<Box<[AtomicU64]>> = OnceLock::new();
    USED.get_or_init(|| (0..USED_SLOTS).map(|_| AtomicU64::new(0)).collect())
}

/// Note the use of count `nc` (1 to 19) of a nonce issued at `issued`, as the module marks each
/// count of a nonce used: `Challenge` for a count used before (a replay). A nonce has two places
/// in the table; when both are held by other nonces still valid, its use cannot be noted, and the
/// client is asked to take a fresh nonce (`Stale`) rather than let a replay go unnoticed.
fn record(nonce: &[u8], issued: u64, nc: u32, now: u64) -> Result<(), Refusal> {
    const LOW: u64 = 0xf_ffff;
    let hash = xxhash_rust::xxh3::xxh3_64(nonce);
    let tag = hash >> 40;
    let stamp = issued & LOW;
    let bit = 1u64 << nc;
    let first = hash as usize & (USED_SLOTS - 1);
    let table = used();
    let slots = [&table[first], &table[first ^ 1]];
    let mine = |word: u64| word != 0 && word >> 40 == tag && (word >> 20) & LOW == stamp;
    let free = |word: u64| {
        word == 0 || (now & LOW).wrapping_sub((word >> 20) & LOW) & LOW > NONCE_TIMEOUT.as_secs()
    };
    // Where the nonce was noted before, else a free place.
    let held = slots
        .iter()
        .find(|s| mine(s.load(Ordering::Acquire)))
        .or_else(|| slots.iter().find(|s| free(s.load(Ordering::Acquire))));
    let Some(slot) = held else {
        return Err(Refusal::Stale);
    };
    let mut word = slot.load(Ordering::Acquire);
    loop {
        let next = if mine(word) {
            if word & bit != 0 {
                tracing::debug!("digest authentication: nonce count used before");
                return Err(Refusal::Challenge);
            }
            word | bit
        } else if free(word) {
            tag << 40 | stamp << 20 | bit
        } else {
            // Taken by another nonce meanwhile.
            return Err(Refusal::Stale);
        };
        match slot.compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(current) => word = current,
        }
    }
}

/// `MD5(HA1:nonce:nc:cnonce:qop:MD5(method:uri))` in lowercase hex.
fn response(ha1: &[u8; 32], method: &str, f: &Fields<'_>) -> [u8; 32] {
    let ha2 = hex(&Md5::new()
        .chain_update(method)
        .chain_update(b":")
        .chain_update(&*f.uri)
        .finalize()
        .into());
    hex(&Md5::new()
        .chain_update(ha1)
        .chain_update(b":")
        .chain_update(&*f.nonce)
        .chain_update(b":")
        .chain_update(&*f.nc)
        .chain_update(b":")
        .chain_update(&*f.cnonce)
        .chain_update(b":")
        .chain_update(&*f.qop)
        .chain_update(b":")
        .chain_update(ha2)
        .finalize()
        .into())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The process's nonce key; `None` when no random key could be had (then no nonce verifies:
/// every request gets 401).
fn key() -> Option<&'static [u8; 32]> {
    static KEY: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).ok().map(|()| key)
    })
    .as_ref()
}

/// 96 bits of the keyed hash of a nonce's time, serial number and realm.
fn mac(key: &[u8; 32], realm: &str, issued: u32, serial: u64) -> [u8; 12] {
    let hash = blake3::Hasher::new_keyed(key)
        .update(b"remora digest nonce v1")
        .update(&issued.to_be_bytes())
        .update(&serial.to_be_bytes())
        .update(realm.as_bytes())
        .finalize();
    let mut out = [0u8; 12];
    out.copy_from_slice(&hash.as_bytes()[..12]);
    out
}

/// The length of a nonce: the time (8 hex digits), a serial number of the process (16), the MAC
/// (24).
const NONCE_LEN: usize = 48;

/// A nonce issued at `now`. Each is another (the serial number), so that the counts each client
/// uses are its own.
fn issue(realm: &str, now: u64) -> [u8; NONCE_LEN] {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let issued = u32::try_from(now).unwrap_or(u32::MAX);
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let mut nonce = [b'0'; NONCE_LEN];
    let mut put = |at: usize, bytes: &[u8]| {
        for (i, b) in bytes.iter().enumerate() {
            nonce[at + 2 * i..at + 2 * i + 2].copy_from_slice(&hex_byte(*b));
        }
    };
    put(0, &issued.to_be_bytes());
    put(8, &serial.to_be_bytes());
    // Without a key the nonce carries zeros, which nothing verifies.
    if let Some(key) = key() {
        put(24, &mac(key, realm, issued, serial));
    }
    nonce
}

/// When a nonce of this process and realm was issued; `None` for any other value.
fn verify(realm: &str, nonce: &[u8]) -> Option<u64> {
    let key = key()?;
    if nonce.len() != NONCE_LEN {
        return None;
    }
    let hex_number =
        |digits: &[u8]| u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok();
    let issued = u32::try_from(hex_number(&nonce[..8])?).ok()?;
    let serial = hex_number(&nonce[8..24])?;
    let mut expected = [0u8; 24];
    for (i, b) in mac(key, realm, issued, serial).iter().enumerate() {
        expected[2 * i..2 * i + 2].copy_from_slice(&hex_byte(*b));
    }
    bool::from(expected.ct_eq(&nonce[24..])).then_some(u64::from(issued))
}

fn hex_byte(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]
}

/// Lowercase hex of an MD5 digest.
fn hex(digest: &[u8; 16]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&hex_byte(*b));
    }
    out
}

/// The parameters of a `Digest` `Authorization` value, each present and non-empty.
struct Fields<'a> {
    username: Cow<'a, [u8]>,
    realm: Cow<'a, [u8]>,
    nonce: Cow<'a, [u8]>,
    uri: Cow<'a, [u8]>,
    qop: Cow<'a, [u8]>,
    nc: Cow<'a, [u8]>,
    cnonce: Cow<'a, [u8]>,
    response: Cow<'a, [u8]>,
}

/// RFC 7230's `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Fields<'a> {
    /// As the module reads them: `Digest` (any case), a space, then `name=value` parameters
    /// (a token or a quoted string with `\` escapes) separated by commas and spaces. A
    /// parameter given twice counts with its last value; unknown ones are skipped.
    fn parse(value: &'a [u8]) -> Option<Self> {
        let mut p = value;
        while p.first().copied().is_some_and(is_space) {
            p = &p[1..];
        }
        let scheme = p.iter().position(|b| !is_token(*b)).unwrap_or(p.len());
        if !p[..scheme].eq_ignore_ascii_case(b"Digest") || p.get(scheme) != Some(&b' ') {
            return None;
        }
        p = &p[scheme..];
        let mut found: [Option<Cow<'a, [u8]>>; 8] = Default::default();
        const NAMES: [&[u8]; 8] = [
            b"username",
            b"realm",
            b"nonce",
            b"uri",
            b"qop",
            b"nc",
            b"cnonce",
            b"response",
        ];
        let mut first = true;
        loop {
            let mut commas = 0;
            while let Some(&b) = p.first() {
                if b == b',' {
                    commas += 1;
                } else if !is_space(b) {
                    break;
                }
                p = &p[1..];
            }
            if p.is_empty() {
                break;
            }
            if !first && commas == 0 {
                return None;
            }
            first = false;
            let name_end = p.iter().position(|b| !is_token(*b)).unwrap_or(p.len());
            if name_end == 0 || p.get(name_end) != Some(&b'=') {
                return None;
            }
            let name = &p[..name_end];
            p = &p[name_end + 1..];
            let value: Cow<'a, [u8]> = if p.first() == Some(&b'"') {
                let mut i = 1;
                let mut escaped = false;
                loop {
                    let b = *p.get(i)?;
                    if b < 0x20 || b == 0x7f {
                        return None;
                    }
                    if b == b'\\' {
                        escaped = true;
                        i += 2;
                        continue;
                    }
                    if b == b'"' {
                        break;
                    }
                    i += 1;
                }
                let raw = &p[1..i];
                p = &p[i + 1..];
                if escaped {
                    let mut out = Vec::with_capacity(raw.len());
                    let mut it = raw.iter();
                    while let Some(&b) = it.next() {
                        if b == b'\\' {
                            if let Some(&next) = it.next() {
                                out.push(next);
                            }
                        } else {
                            out.push(b);
                        }
                    }
                    Cow::Owned(out)
                } else {
                    Cow::Borrowed(raw)
                }
            } else {
                let end = p.iter().position(|b| !is_token(*b)).unwrap_or(p.len());
                if end == 0 {
                    return None;
                }
                let raw = &p[..end];
                p = &p[end..];
                Cow::Borrowed(raw)
            };
            if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) {
                found[i] = Some(value);
            }
        }
        let [username, realm, nonce, uri, qop, nc, cnonce, response] =
            found.map(|v| v.filter(|v| !v.is_empty()));
        Some(Fields {
            username: username?,
            realm: realm?,
            nonce: nonce?,
            uri: uri?,
            qop: qop?,
            nc: nc?,
            cnonce: cnonce?,
            response: response?,
        })
    }
}

#[cfg(test)]
mod tests;
