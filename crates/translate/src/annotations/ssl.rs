//! `ssl-redirect`. Accepted and validated now; the redirect itself comes with TLS termination.

use super::Reader;

pub fn parse(r: &mut Reader<'_>) -> Option<bool> {
    r.bool("ssl-redirect")
}
