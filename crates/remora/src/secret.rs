//! The session cookie key: from `--cookie-secret-file`, or random for this process.

use anyhow::{bail, Context};
use balance::CookieKey;
use std::path::Path;

pub fn load(file: Option<&Path>) -> anyhow::Result<CookieKey> {
    match file {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read --cookie-secret-file {}", path.display()))?;
            let secret = bytes.trim_ascii();
            if secret.len() < 16 {
                bail!(
                    "--cookie-secret-file {} holds {} bytes; use at least 16 random bytes (e.g. head -c 32 /dev/urandom | base64)",
                    path.display(),
                    secret.len()
                );
            }
            Ok(CookieKey::from_secret(secret))
        }
        None => {
            tracing::info!("no --cookie-secret-file: session cookies use a random key, so they are not honoured after a restart nor by other Remora replicas");
            CookieKey::random().context("cannot generate a random cookie key")
        }
    }
}
