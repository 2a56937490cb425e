//! Phase 3, nginx's `satisfy` over the access checks (the `satisfy` annotation): how the verdicts
//! of digest authentication, the source ranges, basic authentication and the authentication
//! service combine, in that order (nginx's access phase runs the dynamic digest module first, then
//! `allow`/`deny`, `auth_basic`, `auth_request`).
//!
//! Each check grants access (`Ok(true)`: a user's credentials, an allow-list entry, a 2xx of the
//! service), has no say (`Ok(false)`: not configured, or no source rule matches the client), or
//! refuses (401, 403, the redirect to `auth-signin`). With `all` (the default) the first refusal
//! is the answer. With `any`, the first grant lets the request through and the checks after it
//! are not run; refusals are kept, and when nothing granted access the answer is the last 401
//! (or sign-in redirect), else the 403 (nginx's `access_code`). A denylisted client is refused by
//! the access module as any other, so under `any` a user's password lets it through, as in nginx.
//! Any other failure (the service could not be asked: 500) ends the request either way. Without
//! any check configured, nothing is refused.

use super::Reject;
use http::StatusCode;
use model::Location;

pub struct Satisfy {
    any: bool,
    granted: bool,
    refused: Option<Reject>,
}

impl Satisfy {
    pub fn new(location: &Location) -> Self {
        Self {
            any: location.satisfy_any,
            granted: false,
            refused: None,
        }
    }

    /// Whether the next check still has a say: under `any`, none has once one granted access.
    pub fn pending(&self) -> bool {
        !self.granted
    }

    /// One check's verdict.
    pub fn judge(&mut self, verdict: Result<bool, Reject>) -> Result<(), Reject> {
        match verdict {
            Ok(true) if self.any => self.granted = true,
            Ok(_) => {}
            Err(reject) if self.any => match (refusal(&reject), &self.refused) {
                (None, _) => return Err(reject),
                // A 403 does not replace a 401.
                (Some(false), Some(kept)) if refusal(kept) == Some(true) => {}
                (Some(_), _) => self.refused = Some(reject),
            },
            Err(reject) => return Err(reject),
        }
        Ok(())
    }

    /// The verdict of a check that grants with a value (the authentication service's answer).
    pub fn judge_with<T>(
        &mut self,
        verdict: Result<Option<T>, Reject>,
    ) -> Result<Option<T>, Reject> {
        match verdict {
            Ok(found) => {
                self.judge(Ok(found.is_some()))?;
                Ok(found)
            }
            Err(reject) => self.judge(Err(reject)).map(|()| None),
        }
    }

    /// After the last check: let through, or the refusal that stands.
    pub fn end(self) -> Result<(), Reject> {
        match self.refused {
            Some(reject) if !self.granted => Err(reject),
            _ => Ok(()),
        }
    }
}

/// Whether a rejection is an access refusal `satisfy any` may overrule: `Some(true)` for 401 (or
/// its redirect to sign in), `Some(false)` for 403, `None` for any other.
fn refusal(reject: &Reject) -> Option<bool> {
    match reject {
        Reject::Unauthorized(_) => Some(true),
        Reject::SourceNotAllowed => Some(false),
        Reject::Auth(denial) => match denial.status {
            StatusCode::UNAUTHORIZED | StatusCode::FOUND => Some(true),
            StatusCode::FORBIDDEN => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn unauthorized() -> Reject {
        Reject::Unauthorized(HeaderValue::from_static("Basic realm=\"\""))
    }

    fn run(any: bool, verdicts: Vec<Result<bool, Reject>>) -> Result<(), StatusCode> {
        let location = Location {
            satisfy_any: any,
            ..Location::default()
        };
        let mut gate = Satisfy::new(&location);
        let run = || {
            for v in verdicts {
                if gate.pending() {
                    gate.judge(v)?;
                }
            }
            Ok::<(), Reject>(())
        };
        run().map_err(|r| r.status())?;
        gate.end().map_err(|r| r.status())
    }

    #[test]
    fn all_needs_each_any_needs_one() {
        use StatusCode as S;
        let forbidden = || Err(Reject::SourceNotAllowed);
        // all: the first refusal answers.
        assert_eq!(run(false, vec![Ok(true), Ok(false), Ok(true)]), Ok(()));
        assert_eq!(
            run(false, vec![Err(unauthorized()), forbidden()]),
            Err(S::UNAUTHORIZED)
        );
        assert_eq!(run(false, vec![Ok(true), forbidden()]), Err(S::FORBIDDEN));
        // any: one grant is enough, whatever the others say.
        assert_eq!(run(true, vec![forbidden(), Ok(true)]), Ok(()));
        assert_eq!(run(true, vec![Err(unauthorized()), Ok(true)]), Ok(()));
        assert_eq!(run(true, vec![Ok(false), Ok(false)]), Ok(()));
        // Nothing granted: a 401 wins over a 403.
        assert_eq!(
            run(true, vec![forbidden(), Err(unauthorized())]),
            Err(S::UNAUTHORIZED)
        );
        assert_eq!(
            run(true, vec![Err(unauthorized()), forbidden()]),
            Err(S::UNAUTHORIZED)
        );
        assert_eq!(run(true, vec![forbidden(), Ok(false)]), Err(S::FORBIDDEN));
        // Other failures end the request.
        assert_eq!(
            run(true, vec![Err(Reject::AuthUnavailable), Ok(true)]),
            Err(S::INTERNAL_SERVER_ERROR)
        );
    }
}
