//! Cookie session affinity as configured on a route.

use serde::Serialize;

/// The cookie name ingress-nginx uses when `session-cookie-name` is absent.
pub const DEFAULT_COOKIE_NAME: &str = "INGRESSCOOKIE";

/// How sessions are placed on endpoints and what happens to them when endpoints change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AffinityMode {
    /// New sessions are spread by consistent hashing of a per-session key; when endpoints come and
    /// go, only the sessions whose hash range changed hands move (about 1/n of them).
    #[default]
    Balanced,
    /// A session stays on its endpoint for as long as that endpoint exists, whatever scaling happens.
    Persistent,
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SameSite {
    None,
    Lax,
    Strict,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::None => "None",
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
        }
    }
}

/// Cookie affinity for one route: everything needed to read and write the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Affinity {
    pub cookie_name: String,
    pub mode: AffinityMode,
    /// `Expires` offset in seconds from the time the cookie is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// Cookie `Path`: the annotation, else the route's own path, as ingress-nginx does.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `Secure` even over plain HTTP (`session-cookie-secure: "true"`); over TLS it is always set.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secure: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samesite: Option<SameSite>,
    /// Leave `SameSite=None` out for the user agents that mishandle it
    /// (`session-cookie-conditional-samesite-none`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub conditional_samesite_none: bool,
    /// When the pinned endpoint fails and the request goes elsewhere, re-pin the session there with
    /// a new cookie. On unless `session-cookie-change-on-failure: "false"` is set explicitly.
    pub change_on_failure: bool,
    /// Bounded load for balanced placement, in hundredths: a new session never goes to an endpoint
    /// already above `factor / 100` times the mean load of the endpoints that may take it.
    /// `None`: plain consistent hashing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_factor: Option<u32>,
    /// Sliding expiry (`remora.dev/session-cookie-sliding`): a returning session whose cookie has
    /// less than half its lifetime left gets it re-issued, same pin, fresh `Expires`/`Max-Age`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sliding: bool,
    /// Gateway API `absoluteTimeout`, seconds: a session ends this long after it began, whatever
    /// its cookie's attributes say (enforced from the value itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absolute_timeout: Option<u64>,
    /// Gateway API `type: Header`: the session travels in this header (lowercase) of requests
    /// and responses instead of a cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Binds sessions to one route rule besides the backend ([`Affinity::scope_of`]), so two
    /// Gateway API rules that send to the same Service keep separate sessions; 0 for Ingress.
    #[serde(skip_serializing_if = "is_zero")]
    pub scope: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Affinity {
    /// Cookie affinity as ingress-nginx defaults it, under `cookie_name`: a browser-session cookie
    /// on `/`, re-pinned on failure, no bound.
    pub fn new(cookie_name: &str, mode: AffinityMode) -> Self {
        Self {
            cookie_name: cookie_name.to_owned(),
            mode,
            expires: None,
            max_age: None,
            path: "/".to_owned(),
            domain: None,
            secure: false,
            samesite: None,
            conditional_samesite_none: false,
            change_on_failure: true,
            balance_factor: None,
            sliding: false,
            absolute_timeout: None,
            header: None,
            scope: 0,
        }
    }

    /// The scope of the sessions of a route rule named `name` (FNV-1a, stable across replicas
    /// and versions; never 0).
    pub fn scope_of(name: &str) -> u64 {
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        h.max(1)
    }

    /// How long a cookie lives, in seconds: `Max-Age` when set (browsers prefer it), else
    /// `Expires`; `None` for a browser-session cookie.
    pub fn lifetime(&self) -> Option<u64> {
        self.max_age.or(self.expires)
    }
}

/// The default bound: 1.25 times the mean, as in "consistent hashing with bounded loads".
pub const DEFAULT_BALANCE_FACTOR: u32 = 125;
