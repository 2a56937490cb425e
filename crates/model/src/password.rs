//! The password hashes nginx's `auth_basic` checks, recognised by their form: what an htpasswd
//! line (or an `auth-map` value) may hold. `translate` keeps the users whose hash has a known
//! form; the proxy verifies them. No cryptography here, only the shapes.

/// A password hash scheme, as nginx's `ngx_crypt` (and the C library's `crypt` it falls back to)
/// tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordScheme {
    /// `$2a$`, `$2b$`, `$2y$`: bcrypt (`htpasswd -B`).
    Bcrypt,
    /// `$apr1$`: Apache's MD5 (`htpasswd -m`, the htpasswd default).
    Apr1,
    /// `$1$`: md5-crypt.
    Md5Crypt,
    /// `$5$`: sha256-crypt.
    Sha256Crypt,
    /// `$6$`: sha512-crypt.
    Sha512Crypt,
    /// `{SHA}`: base64 of the password's SHA-1, unsalted (`htpasswd -s`).
    Sha1,
    /// `{SSHA}`: base64 of SHA-1 of the password and a salt, then the salt.
    SaltedSha1,
    /// `{PLAIN}`: the password itself.
    Plain,
    /// Traditional DES crypt: 13 characters, the first two the salt (`htpasswd -d`).
    DesCrypt,
}

impl PasswordScheme {
    /// The scheme of a stored hash, if its form is one of the known ones.
    pub fn of(hash: &str) -> Option<Self> {
        use PasswordScheme::*;
        if hash.starts_with("{PLAIN}") {
            return Some(Plain);
        }
        if let Some(b64) = hash.strip_prefix("{SHA}") {
            // 20 bytes.
            return (b64.len() == 28 && b64.ends_with('=') && is_base64(b64)).then_some(Sha1);
        }
        if let Some(b64) = hash.strip_prefix("{SSHA}") {
            // 20 bytes and a salt.
            return (b64.len() > 28 && b64.len() % 4 == 0 && is_base64(b64)).then_some(SaltedSha1);
        }
        if let Some(rest) = ["$2a$", "$2b$", "$2y$"]
            .iter()
            .find_map(|p| hash.strip_prefix(p))
        {
            // `NN$` and 53 characters: 22 of salt, 31 of hash.
            let (cost, body) = rest.split_at_checked(2)?;
            let body = body.strip_prefix('$')?;
            let cost: u32 = cost
                .parse()
                .ok()
                .filter(|_| cost.bytes().all(|b| b.is_ascii_digit()))?;
            return ((4..=31).contains(&cost) && body.len() == 53 && is_crypt64(body))
                .then_some(Bcrypt);
        }
        if let Some(rest) = hash.strip_prefix("$apr1$") {
            return md5_shape(rest).then_some(Apr1);
        }
        if let Some(rest) = hash.strip_prefix("$1$") {
            return md5_shape(rest).then_some(Md5Crypt);
        }
        if let Some(rest) = hash.strip_prefix("$5$") {
            return sha_crypt_shape(rest, 43).then_some(Sha256Crypt);
        }
        if let Some(rest) = hash.strip_prefix("$6$") {
            return sha_crypt_shape(rest, 86).then_some(Sha512Crypt);
        }
        (hash.len() == 13 && is_crypt64(hash)).then_some(DesCrypt)
    }

    /// How htpasswd and nginx's documentation name it.
    pub fn name(self) -> &'static str {
        match self {
            PasswordScheme::Bcrypt => "bcrypt",
            PasswordScheme::Apr1 => "apr1",
            PasswordScheme::Md5Crypt => "md5-crypt",
            PasswordScheme::Sha256Crypt => "sha256-crypt",
            PasswordScheme::Sha512Crypt => "sha512-crypt",
            PasswordScheme::Sha1 => "{SHA}",
            PasswordScheme::SaltedSha1 => "{SSHA}",
            PasswordScheme::Plain => "{PLAIN}",
            PasswordScheme::DesCrypt => "crypt (DES)",
        }
    }
}

/// The alphabet of crypt's base64: `./0-9A-Za-z`.
fn is_crypt64(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

/// Standard base64 with padding.
fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// `salt$hash` of md5-crypt and apr1: a salt of at most 8 characters, 22 of hash.
fn md5_shape(rest: &str) -> bool {
    match rest.split_once('$') {
        Some((salt, hash)) => {
            salt.len() <= 8 && !salt.is_empty() && hash.len() == 22 && is_crypt64(hash)
        }
        None => false,
    }
}

/// `[rounds=N$]salt$hash` of sha-crypt, with a hash of `len` characters.
fn sha_crypt_shape(rest: &str, len: usize) -> bool {
    let rest = match rest.strip_prefix("rounds=") {
        Some(r) => match r.split_once('$') {
            Some((n, r)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => r,
            _ => return false,
        },
        None => rest,
    };
    match rest.rsplit_once('$') {
        Some((salt, hash)) => {
            salt.len() <= 16 && !salt.contains('$') && hash.len() == len && is_crypt64(hash)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::PasswordScheme::{self, *};

    #[test]
    fn schemes_by_form() {
        // Made with Apache's htpasswd and openssl passwd.
        let known = [
            (
                "$2y$05$2zAgYripa1YnrEEEeg6BbOsMV.d94nTSIgHBmEmw6iLNkxRhY/pei",
                Bcrypt,
            ),
            (
                "$2b$04$2zAgYripa1YnrEEEeg6BbOsMV.d94nTSIgHBmEmw6iLNkxRhY/pei",
                Bcrypt,
            ),
            ("$apr1$Ssm1kkLK$nYlkJg0Nlsm9hQ5us.jFg.", Apr1),
            ("$1$Qx3kP9aZ$pTKnXjzLQt.iAnL2HecS1.", Md5Crypt),
            (
                "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
                Sha256Crypt,
            ),
            (
                "$5$rounds=5000$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
                Sha256Crypt,
            ),
            ("{SHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQ=", Sha1),
            ("{SSHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQsYWx0", SaltedSha1),
            ("{PLAIN}hunter2", Plain),
            ("TmysUhiINs0js", DesCrypt),
        ];
        for (hash, scheme) in known {
            assert_eq!(PasswordScheme::of(hash), Some(scheme), "{hash}");
        }
        for bad in [
            "",
            "secret",
            "$2y$05$short",
            "$2y$99$2zAgYripa1YnrEEEeg6BbOsMV.d94nTSIgHBmEmw6iLNkxRhY/pei",
            "$2x$05$2zAgYripa1YnrEEEeg6BbOsMV.d94nTSIgHBmEmw6iLNkxRhY/pei",
            "$apr1$nosalthash",
            "$apr1$toolongsalt$nYlkJg0Nlsm9hQ5us.jFg.",
            "{SHA}notbase64!",
            "$7$something",
            "TmysUhiINs0j$",
            "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        ] {
            assert_eq!(PasswordScheme::of(bad), None, "{bad}");
        }
    }
}
