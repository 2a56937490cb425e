//! Basic authentication (`auth-type: basic`) as nginx's `auth_basic` checks it: a route's users
//! prepared once per table, the `Authorization` header read as nginx reads it, and the password
//! checked against the user's hash (see [`model::PasswordScheme`]) with a constant-time
//! comparison.
//!
//! Verifying a bcrypt or crypt hash costs up to tens of milliseconds, which would stall every
//! connection of a worker: it runs on tokio's blocking threads, at most one per core at a time.
//! A request whose credentials were verified less than [`CACHE_TTL`] ago is let through without
//! verifying them again, so a browser, which sends them with every request, pays once a minute.
//! The cache is a fixed table of atomics shared by the workers (no lock, nothing allocated): each
//! slot holds 96 bits of a BLAKE3 hash, keyed with a random key of the process, of the route's
//! users and the header value, and when it expires. Only successes are cached; a slot taken by
//! another credential costs a verification, never a wrong answer.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use http::HeaderValue;
use model::{BasicAuth, PasswordScheme};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// How long verified credentials are let through without verifying them again.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Slots of the cache of verified credentials (a power of two): 64 KiB.
const CACHE_SLOTS: usize = 4096;

/// A route's basic authentication, prepared once per table.
pub struct BasicAuthRuntime {
    /// `WWW-Authenticate: Basic realm="<auth-realm>"`.
    pub challenge: HeaderValue,
    /// By user name; the first line of a user counts (translation dropped the others).
    users: HashMap<Box<[u8]>, Arc<Hash>>,
    /// Names the users and their hashes in the cache, so a changed Secret is verified anew.
    digest: [u8; 32],
}

impl BasicAuthRuntime {
    pub fn new(auth: &BasicAuth) -> Self {
        let challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\"", auth.realm))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"\""));
        let mut digest = blake3::Hasher::new_derive_key("remora basic-auth users v1");
        let mut users = HashMap::with_capacity(auth.users.len());
        for (user, hash) in &auth.users {
            for part in [user, hash] {
                digest.update(&(part.len() as u64).to_le_bytes());
                digest.update(part.as_bytes());
            }
            // Translation kept only hashes of known forms; one that still does not parse is
            // left out (that user gets 401).
            if let Some(h) = Hash::parse(hash) {
                users
                    .entry(user.as_bytes().into())
                    .or_insert_with(|| Arc::new(h));
            }
        }
        Self {
            challenge,
            users,
            digest: *digest.finalize().as_bytes(),
        }
    }

    /// Do these credentials (the request's `Authorization` header) name a user with its password?
    pub async fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let cache = cache();
        let fingerprint = cache.map(|c| c.fingerprint(&self.digest, value.as_bytes()));
        if let (Some(cache), Some(f)) = (cache, &fingerprint) {
            if cache.hit(f) {
                return true;
            }
        }
        let Some((credentials, colon)) = decode(value.as_bytes()) else {
            return false;
        };
        let Some(hash) = credentials.get(..colon).and_then(|u| self.users.get(u)) else {
            tracing::debug!("basic authentication: unknown user");
            return false;
        };
        let ok = if hash.is_cheap() {
            hash.verify(password(&credentials, colon))
        } else {
            let hash = Arc::clone(hash);
            // At most one verification per core at a time; the others wait their turn without
            // holding a thread. The permit goes with the work, which goes on if the client leaves.
            let Ok(permit) = verifying().acquire().await else {
                return false;
            };
            tokio::task::spawn_blocking(move || {
                let ok = hash.verify(password(&credentials, colon));
                drop(permit);
                ok
            })
            .await
            .unwrap_or(false)
        };
        if ok {
            if let (Some(cache), Some(f)) = (cache, &fingerprint) {
                cache.insert(f);
            }
        } else {
            tracing::debug!("basic authentication: password mismatch");
        }
        ok
    }
}

/// The password of decoded `user:password` credentials, up to a NUL byte: nginx hands it to
/// `crypt` as a C string.
fn password(credentials: &[u8], colon: usize) -> &[u8] {
    let password = credentials.get(colon + 1..).unwrap_or_default();
    match password.iter().position(|b| *b == 0) {
        Some(end) => &password[..end],
        None => password,
    }
}

/// nginx's `ngx_decode_base64`: the standard alphabet, read up to the first `=`, no check of the
/// padding or of the last character's unused bits.
const NGINX_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// The credentials of an `Authorization` value as nginx reads them (`ngx_http_auth_basic_user`):
/// `Basic` (any case), a space, spaces, base64 of `user:password` with a non-empty user. The
/// decoded bytes and where their first `:` is.
fn decode(value: &[u8]) -> Option<(Vec<u8>, usize)> {
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"Basic ") {
        return None;
    }
    let encoded = value[6..].trim_ascii_start();
    let end = encoded
        .iter()
        .position(|b| *b == b'=')
        .unwrap_or(encoded.len());
    let encoded = &encoded[..end];
    if encoded.is_empty() {
        return None;
    }
    let decoded = NGINX_BASE64.decode(encoded).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    (colon > 0).then_some((decoded, colon))
}

/// A stored password hash, ready to check passwords against.
enum Hash {
    /// bcrypt (`$2a$`, `$2b$`, `$2y$`), by the bcrypt crate.
    Bcrypt(String),
    /// Apache's MD5: the whole stored value and its salt.
    Apr1 { stored: String, salt: String },
    /// The C library's `crypt` schemes nginx falls back to (DES, `$1$`, `$5$`, `$6$`), by pwhash.
    Crypt(String),
    /// `{SHA}` and its base64.
    Sha1(String),
    /// `{SSHA}`: the whole stored value and the salt in it.
    SaltedSha1 { stored: String, salt: Vec<u8> },
    /// `{PLAIN}` and the password.
    Plain(String),
}

impl Hash {
    fn parse(hash: &str) -> Option<Hash> {
        Some(match PasswordScheme::of(hash)? {
            PasswordScheme::Bcrypt => Hash::Bcrypt(hash.to_owned()),
            PasswordScheme::Apr1 => {
                let salt = hash.strip_prefix("$apr1$")?.split('$').next()?;
                Hash::Apr1 {
                    stored: hash.to_owned(),
                    salt: salt.to_owned(),
                }
            }
            PasswordScheme::Md5Crypt
            | PasswordScheme::Sha256Crypt
            | PasswordScheme::Sha512Crypt
            | PasswordScheme::DesCrypt => Hash::Crypt(hash.to_owned()),
            PasswordScheme::Sha1 => Hash::Sha1(hash.to_owned()),
            PasswordScheme::SaltedSha1 => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(hash.strip_prefix("{SSHA}")?)
                    .ok()?;
                Hash::SaltedSha1 {
                    stored: hash.to_owned(),
                    salt: decoded.get(20..)?.to_vec(),
                }
            }
            PasswordScheme::Plain => Hash::Plain(hash.to_owned()),
        })
    }

    /// A single SHA-1 or none: checked on the worker itself.
    fn is_cheap(&self) -> bool {
        matches!(
            self,
            Hash::Sha1(_) | Hash::SaltedSha1 { .. } | Hash::Plain(_)
        )
    }

    /// Does `password` hash to this? As nginx: hash the password with the stored salt, compare
    /// the result with the stored value (in constant time).
    fn verify(&self, password: &[u8]) -> bool {
        let same = |computed: &[u8], stored: &str| bool::from(computed.ct_eq(stored.as_bytes()));
        match self {
            Hash::Bcrypt(stored) => bcrypt::verify(password, stored).unwrap_or(false),
            Hash::Apr1 { stored, salt } => same(apr1(password, salt).as_bytes(), stored),
            Hash::Crypt(stored) => pwhash::unix::crypt(password, stored)
                .is_ok_and(|computed| same(computed.as_bytes(), stored)),
            Hash::Sha1(stored) => {
                let digest = Sha1::digest(password);
                let computed = format!(
                    "{{SHA}}{}",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                );
                same(computed.as_bytes(), stored)
            }
            Hash::SaltedSha1 { stored, salt } => {
                let mut sha = Sha1::new();
                sha.update(password);
                sha.update(salt);
                let mut raw = sha.finalize().to_vec();
                raw.extend_from_slice(salt);
                let computed = format!(
                    "{{SSHA}}{}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                );
                same(computed.as_bytes(), stored)
            }
            Hash::Plain(stored) => {
                let computed = [b"{PLAIN}".as_slice(), password].concat();
                same(&computed, stored)
            }
        }
    }
}

/// Apache's MD5 (`apr_md5_encode`, nginx's `ngx_crypt_apr1`): md5-crypt with the magic `$apr1$`.
/// The whole `$apr1$salt$hash` string. No crate offers it; its building block, MD5, is the md-5
/// crate's, and the tests check it against hashes made by Apache's htpasswd and OpenSSL.
fn apr1(password: &[u8], salt: &str) -> String {
    use md5::{Digest as _, Md5};
    const MAGIC: &str = "$apr1$";
    let salt = salt.as_bytes();
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(MAGIC)
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alternate[..n]);
        left -= n;
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut sum = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(sum);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(sum);
        } else {
            c.update(password);
        }
        sum = c.finalize();
    }
    const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(MAGIC.len() + salt.len() + 23);
    out.push_str(MAGIC);
    out.push_str(std::str::from_utf8(salt).unwrap_or_default());
    out.push('$');
    let mut to64 = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    let byte = |i: usize| u32::from(sum[i]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64(byte(a) << 16 | byte(b) << 8 | byte(c), 4);
    }
    to64(byte(11), 2);
    out
}

/// At most one verification per core at a time.
fn verifying() -> &'static Semaphore {
    static VERIFYING: OnceLock<Semaphore> = OnceLock::new();
    VERIFYING
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}

/// The process's cache of verified credentials; `None` when no random key could be had (then
/// every request is verified).
fn cache() -> Option<&'static Cache> {
    static CACHE: OnceLock<Option<Cache>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).ok()?;
            Some(Cache {
                key,
                epoch: Instant::now(),
                slots: (0..CACHE_SLOTS).map(|_| Slot::default()).collect(),
            })
        })
        .as_ref()
}

struct Cache {
    key: [u8; 32],
    epoch: Instant,
    slots: Box<[Slot]>,
}

/// One verified credential: 64 bits of its fingerprint, then 32 more beside its expiry (seconds
/// since the cache's epoch). A read that races a write sees halves of two fingerprints, which
/// do not match.
#[derive(Default)]
struct Slot {
    tag: AtomicU64,
    check: AtomicU64,
}

impl Cache {
    fn fingerprint(&self, users: &[u8; 32], authorization: &[u8]) -> [u8; 32] {
        *blake3::Hasher::new_keyed(&self.key)
            .update(users)
            .update(authorization)
            .finalize()
            .as_bytes()
    }

    /// The slot, the tag and the upper check half of a fingerprint.
    fn place(&self, f: &[u8; 32]) -> (&Slot, u64, u64) {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&f[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let index = word(0) as usize & (CACHE_SLOTS - 1);
        (
            &self.slots[index],
            word(8),
            word(16) & 0xffff_ffff_0000_0000,
        )
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_secs() + 1
    }

    fn hit(&self, f: &[u8; 32]) -> bool {
        let (slot, tag, high) = self.place(f);
        if slot.tag.load(Ordering::Acquire) != tag {
            return false;
        }
        let check = slot.check.load(Ordering::Acquire);
        check & 0xffff_ffff_0000_0000 == high && check & 0xffff_ffff > self.now()
    }

    fn insert(&self, f: &[u8; 32]) {
        let (slot, tag, high) = self.place(f);
        let expires = (self.now() + CACHE_TTL.as_secs()).min(0xffff_ffff);
        slot.tag.store(tag, Ordering::Release);
        slot.check.store(high | expires, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
