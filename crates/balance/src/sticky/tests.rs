use super::*;

#[test]
fn random_numbers_are_distinct_balanced_and_differ_between_threads() {
    let draws: Vec<u64> = (0..10_000).map(|_| random_u64()).collect();
    let distinct: std::collections::HashSet<_> = draws.iter().collect();
    assert_eq!(distinct.len(), draws.len());
    for bit in [0, 31, 63] {
        let ones = draws.iter().filter(|v| *v >> bit & 1 == 1).count();
        assert!((4_500..5_500).contains(&ones), "bit {bit}: {ones} of 10000");
    }
    let other = std::thread::spawn(|| (0..100).map(|_| random_u64()).collect::<Vec<_>>())
        .join()
        .unwrap();
    assert!(other.iter().all(|v| !distinct.contains(v)));
}
use model::EndpointId;
use std::net::SocketAddr;

fn endpoint(i: u64, ready: bool, serving: bool, terminating: bool) -> Endpoint {
    Endpoint {
        id: EndpointId(i * 1000 + 7),
        addr: SocketAddr::from(([127, 0, 0, 10 + i as u8], 8080)),
        ready,
        serving,
        terminating,
        pod: None,
    }
}

fn backend(endpoints: Vec<Endpoint>) -> Backend {
    Backend {
        name: "default/web:80".into(),
        endpoints,
    }
}

fn ready(n: u64) -> Vec<Endpoint> {
    (0..n).map(|i| endpoint(i, true, true, false)).collect()
}

fn key() -> CookieKey {
    CookieKey::from_secret(b"k")
}

fn aff(mode: AffinityMode) -> Affinity {
    Affinity::new("c", mode)
}

#[test]
fn sliding_expiry_reissues_past_half_life_only() {
    let b = BackendBalancer::new(&backend(ready(3)), true, 0, None);
    for mode in [AffinityMode::Persistent, AffinityMode::Balanced] {
        let a = Affinity {
            max_age: Some(100),
            sliding: true,
            ..aff(mode)
        };
        let first = b.pick_sticky(&key(), &a, std::iter::empty(), 1000).unwrap();
        let c = first.new_cookie.unwrap();
        let young = b
            .pick_sticky(&key(), &a, std::iter::once(c.as_str()), 1050)
            .unwrap();
        assert_eq!((young.endpoint, young.new_cookie), (first.endpoint, None));
        let old = b
            .pick_sticky(&key(), &a, std::iter::once(c.as_str()), 1051)
            .unwrap();
        assert_eq!(old.endpoint, first.endpoint);
        let renewed = old.new_cookie.expect("re-issued");
        let s = key().decode(b.tag, &renewed).unwrap();
        assert_eq!(
            (s.pin, s.issued),
            (key().decode(b.tag, &c).unwrap().pin, 1051)
        );
        let not_sliding = Affinity {
            sliding: false,
            ..a.clone()
        };
        let p = b
            .pick_sticky(&key(), &not_sliding, std::iter::once(c.as_str()), 5000)
            .unwrap();
        assert_eq!(p.new_cookie, None);
    }
}

fn first_pick(b: &BackendBalancer, mode: AffinityMode) -> StickyPick {
    b.pick_sticky(&key(), &aff(mode), std::iter::empty(), 100)
        .unwrap()
}

#[test]
fn new_session_gets_cookie_and_returning_session_sticks() {
    for mode in [AffinityMode::Persistent, AffinityMode::Balanced] {
        let b = BackendBalancer::new(&backend(ready(5)), true, 0, None);
        let first = first_pick(&b, mode);
        let cookie = first.new_cookie.clone().unwrap();
        for _ in 0..20 {
            let again = b
                .pick_sticky(&key(), &aff(mode), std::iter::once(cookie.as_str()), 200)
                .unwrap();
            assert_eq!(again.endpoint, first.endpoint);
            assert_eq!(again.new_cookie, None);
        }
    }
}

#[test]
fn garbage_and_foreign_cookies_get_a_new_pick() {
    let b = BackendBalancer::new(&backend(ready(3)), true, 0, None);
    let other = BackendBalancer::new(
        &Backend {
            name: "default/other:80".into(),
            endpoints: ready(3),
        },
        true,
        0,
        None,
    );
    let foreign = first_pick(&other, AffinityMode::Persistent)
        .new_cookie
        .unwrap();
    for bad in ["", "garbage", &foreign[..20], &foreign] {
        let p = b
            .pick_sticky(
                &key(),
                &aff(AffinityMode::Persistent),
                std::iter::once(bad),
                1,
            )
            .unwrap();
        assert!(p.new_cookie.is_some(), "{bad:?} was honoured");
    }
}

#[test]
fn first_valid_cookie_of_several_wins() {
    let b = BackendBalancer::new(&backend(ready(3)), false, 0, None);
    let good = first_pick(&b, AffinityMode::Persistent);
    let cookie = good.new_cookie.unwrap();
    let p = b
        .pick_sticky(
            &key(),
            &aff(AffinityMode::Persistent),
            ["junk", cookie.as_str()].into_iter(),
            1,
        )
        .unwrap();
    assert_eq!((p.endpoint, p.new_cookie), (good.endpoint, None));
}

/// Persistent sessions survive any scaling as long as their endpoint exists.
#[test]
fn persistent_survives_scale_out_and_in() {
    let five = BackendBalancer::new(&backend(ready(5)), false, 0, None);
    let sessions: Vec<_> = (0..50)
        .map(|_| first_pick(&five, AffinityMode::Persistent))
        .collect();
    let eight = BackendBalancer::new(&backend(ready(8)), false, 3, None);
    let mut three = ready(5);
    three.truncate(3);
    let three = BackendBalancer::new(&backend(three), false, 1, None);
    for s in &sessions {
        let c = s.new_cookie.as_deref().unwrap();
        let p = eight
            .pick_sticky(
                &key(),
                &aff(AffinityMode::Persistent),
                std::iter::once(c),
                1,
            )
            .unwrap();
        assert_eq!((p.endpoint, p.new_cookie), (s.endpoint, None));
        let p = three
            .pick_sticky(
                &key(),
                &aff(AffinityMode::Persistent),
                std::iter::once(c),
                1,
            )
            .unwrap();
        if s.endpoint < 3 {
            assert_eq!((p.endpoint, p.new_cookie), (s.endpoint, None));
        } else {
            assert!(p.endpoint < 3 && p.new_cookie.is_some());
        }
    }
}

/// Terminating endpoints that still serve keep their sessions but get no new ones; endpoints
/// that do not serve get nothing.
#[test]
fn draining_and_not_serving_endpoints() {
    let b = BackendBalancer::new(&backend(ready(2)), false, 0, None);
    let on_zero = (0..4)
        .map(|_| first_pick(&b, AffinityMode::Persistent))
        .find(|p| p.endpoint == 0)
        .unwrap()
        .new_cookie
        .unwrap();
    let draining = BackendBalancer::new(
        &backend(vec![
            endpoint(0, false, true, true),
            endpoint(1, true, true, false),
        ]),
        false,
        0,
        None,
    );
    let p = draining
        .pick_sticky(
            &key(),
            &aff(AffinityMode::Persistent),
            std::iter::once(on_zero.as_str()),
            1,
        )
        .unwrap();
    assert_eq!((p.endpoint, p.new_cookie), (0, None));
    for _ in 0..5 {
        assert_eq!(first_pick(&draining, AffinityMode::Persistent).endpoint, 1);
        assert_eq!(draining.pick(), Some(1));
    }
    let gone = BackendBalancer::new(
        &backend(vec![
            endpoint(0, false, false, true),
            endpoint(1, true, true, false),
        ]),
        false,
        0,
        None,
    );
    let p = gone
        .pick_sticky(
            &key(),
            &aff(AffinityMode::Persistent),
            std::iter::once(on_zero.as_str()),
            1,
        )
        .unwrap();
    assert_eq!(p.endpoint, 1);
    assert!(p.new_cookie.is_some());
}

/// A new balanced session never lands on a draining endpoint, not even on its later requests.
#[test]
fn balanced_new_sessions_avoid_draining_endpoints_for_good() {
    let b = BackendBalancer::new(
        &backend(vec![
            endpoint(0, false, true, true),
            endpoint(1, true, true, false),
            endpoint(2, true, true, false),
        ]),
        true,
        0,
        None,
    );
    for _ in 0..300 {
        let p = first_pick(&b, AffinityMode::Balanced);
        assert_ne!(p.endpoint, 0);
        let c = p.new_cookie.unwrap();
        let again = b
            .pick_sticky(
                &key(),
                &aff(AffinityMode::Balanced),
                std::iter::once(c.as_str()),
                1,
            )
            .unwrap();
        assert_eq!((again.endpoint, again.new_cookie), (p.endpoint, None));
    }
}

/// Failover: a re-pick avoids the endpoints tried, and its cookie keeps leading there.
#[test]
fn repick_avoids_tried_endpoints_and_sticks() {
    for mode in [AffinityMode::Persistent, AffinityMode::Balanced] {
        let b = BackendBalancer::new(&backend(ready(3)), true, 0, None);
        for _ in 0..50 {
            let p = b.repick_sticky(&key(), &aff(mode), 1, &[0, 2]).unwrap();
            assert_eq!(p.endpoint, 1);
            let c = p.new_cookie.unwrap();
            let again = b
                .pick_sticky(&key(), &aff(mode), std::iter::once(c.as_str()), 1)
                .unwrap();
            assert_eq!((again.endpoint, again.new_cookie), (1, None));
        }
        assert_eq!(b.repick_sticky(&key(), &aff(mode), 1, &[0, 1, 2]), None);
        assert_eq!(b.pick_excluding(&[0, 1]), Some(2));
    }
}

#[test]
fn no_ready_endpoints_no_pick() {
    let b = BackendBalancer::new(
        &backend(vec![endpoint(0, false, false, false)]),
        true,
        0,
        None,
    );
    assert_eq!(b.pick(), None);
    for mode in [AffinityMode::Persistent, AffinityMode::Balanced] {
        assert_eq!(
            b.pick_sticky(&key(), &aff(mode), std::iter::empty(), 1),
            None
        );
    }
    let empty = BackendBalancer::new(&backend(vec![]), true, 0, None);
    assert_eq!(empty.pick(), None);
}

/// Max/mean sessions per endpoint over 100k new balanced sessions, without and with the load
/// bound: ring arcs are not equal, and the bound caps the busiest endpoint.
#[test]
fn bounded_load_caps_the_busiest_endpoint() {
    let n = 100_000;
    for endpoints in [5u64, 50] {
        for factor in [None, Some(125), Some(105)] {
            let b = BackendBalancer::new(&backend(ready(endpoints)), true, 0, None);
            let a = Affinity {
                balance_factor: factor,
                ..aff(AffinityMode::Balanced)
            };
            let mut counts = vec![0u32; endpoints as usize];
            for _ in 0..n {
                let p = b.pick_sticky(&key(), &a, std::iter::empty(), 1).unwrap();
                counts[p.endpoint] += 1;
            }
            let mean = n as f64 / endpoints as f64;
            let ratio = *counts.iter().max().unwrap() as f64 / mean;
            println!(
                "100k new balanced sessions, {endpoints} endpoints, bound {}: max/mean = {ratio:.3}",
                factor.map_or("none".to_owned(), |f| format!("{:.2}", f as f64 / 100.0))
            );
            if let Some(f) = factor {
                assert!(ratio <= f as f64 / 100.0 + 0.01, "{factor:?}: {counts:?}");
            }
            assert_eq!(b.loads(), counts);
        }
    }
}

#[test]
fn loads_carry_over_and_decay() {
    let b = BackendBalancer::new(&backend(ready(3)), true, 0, None);
    for _ in 0..30 {
        first_pick(&b, AffinityMode::Balanced);
    }
    let before = b.loads();
    assert_eq!(before.iter().sum::<u32>(), 30);
    let mut four = ready(4);
    four.rotate_left(1); // a different order: loads follow ids, not positions
    let next = BackendBalancer::new(&backend(four), true, 0, Some(&b));
    let by_id = |bb: &BackendBalancer| {
        let mut v: Vec<(u64, u32)> = bb
            .endpoints()
            .iter()
            .map(|e| e.id.0)
            .zip(bb.loads())
            .collect();
        v.sort();
        v
    };
    let carried = by_id(&next);
    assert_eq!(carried.iter().map(|x| x.1).sum::<u32>(), 30);
    assert_eq!(&carried[..3], &by_id(&b)[..]);
    next.decay();
    assert_eq!(
        next.loads().iter().sum::<u32>(),
        before.iter().map(|v| v / 2).sum::<u32>()
    );
}

/// Balanced sessions: scaling 5 -> 6 moves about 1/6 of them, 6 -> 5 moves back only those.
#[test]
fn balanced_moves_few_sessions_on_scaling() {
    let five = BackendBalancer::new(&backend(ready(5)), true, 0, None);
    let six = BackendBalancer::new(&backend(ready(6)), true, 0, None);
    let n = 3000;
    let sessions: Vec<_> = (0..n)
        .map(|_| first_pick(&five, AffinityMode::Balanced))
        .collect();
    let mut moved = 0;
    for s in &sessions {
        let c = s.new_cookie.as_deref().unwrap();
        let p = six
            .pick_sticky(&key(), &aff(AffinityMode::Balanced), std::iter::once(c), 1)
            .unwrap();
        assert_eq!(p.new_cookie, None, "a valid balanced cookie is kept");
        if p.endpoint != s.endpoint {
            assert_eq!(p.endpoint, 5);
            moved += 1;
        }
        let back = five
            .pick_sticky(&key(), &aff(AffinityMode::Balanced), std::iter::once(c), 1)
            .unwrap();
        assert_eq!(back.endpoint, s.endpoint);
    }
    let f = moved as f64 / n as f64;
    println!("balanced 5 -> 6: {:.1}% of sessions moved", f * 100.0);
    assert!((0.08..0.26).contains(&f), "{f}");
}

/// Two Gateway API rules sending to the same backend keep separate sessions: a value issued for
/// one scope is neither honoured nor recognized in another, while scope 0 (Ingress) keeps the
/// backend's own tag, so Ingress cookies issued before scopes existed stay valid.
#[test]
fn scopes_separate_sessions_of_one_backend() {
    let b = BackendBalancer::new(&backend(ready(3)), false, 0, None);
    let rule = |name: &str| Affinity {
        scope: Affinity::scope_of(name),
        ..aff(AffinityMode::Persistent)
    };
    let (one, two) = (rule("default/shop/rule/0"), rule("default/shop/rule/1"));
    assert_ne!(one.scope, two.scope);
    let cookie = b
        .pick_sticky(&key(), &one, std::iter::empty(), 10)
        .unwrap()
        .new_cookie
        .unwrap();
    assert!(b.recognizes(&key(), &one, &cookie, 10));
    assert!(!b.recognizes(&key(), &two, &cookie, 10));
    assert!(!b.recognizes(&key(), &aff(AffinityMode::Persistent), &cookie, 10));
    let other_rule = b
        .pick_sticky(&key(), &two, std::iter::once(cookie.as_str()), 10)
        .unwrap();
    assert!(other_rule.new_cookie.is_some(), "honoured across scopes");
    let same_rule = b
        .pick_sticky(&key(), &one, std::iter::once(cookie.as_str()), 10)
        .unwrap();
    assert_eq!(same_rule.new_cookie, None);
    // Scope 0 is the backend's tag: values encoded before scopes existed still decode.
    let ingress = aff(AffinityMode::Persistent);
    let old = key().encode(
        b.tag,
        &Session {
            pin: Pin::Endpoint(b.endpoints()[1].id),
            issued: 5,
        },
    );
    let p = b
        .pick_sticky(&key(), &ingress, std::iter::once(old.as_str()), 10)
        .unwrap();
    assert_eq!((p.endpoint, p.new_cookie), (1, None));
}

/// A session is honoured up to its absolute timeout after it was issued, then placed anew (and
/// not recognized), and sliding expiry never extends it.
#[test]
fn absolute_timeout_ends_sessions_from_their_issue_time() {
    let b = BackendBalancer::new(&backend(ready(4)), true, 0, None);
    for mode in [AffinityMode::Persistent, AffinityMode::Balanced] {
        let a = Affinity {
            absolute_timeout: Some(60),
            max_age: Some(60),
            sliding: true,
            ..aff(mode)
        };
        let first = b
            .pick_sticky(&key(), &a, std::iter::empty(), 1_000)
            .unwrap();
        let cookie = first.new_cookie.unwrap();
        for now in [1_000, 1_031, 1_060] {
            let p = b
                .pick_sticky(&key(), &a, std::iter::once(cookie.as_str()), now)
                .unwrap();
            assert_eq!((p.endpoint, p.new_cookie), (first.endpoint, None), "{now}");
            assert!(b.recognizes(&key(), &a, &cookie, now));
        }
        assert!(!b.recognizes(&key(), &a, &cookie, 1_061));
        let late = b
            .pick_sticky(&key(), &a, std::iter::once(cookie.as_str()), 1_061)
            .unwrap();
        let renewed = late.new_cookie.expect("a new session");
        assert_eq!(key().decode(b.tag, &renewed).unwrap().issued, 1_061);
        // Without the limit the same value is honoured for ever.
        let unlimited = Affinity {
            absolute_timeout: None,
            sliding: false,
            ..a.clone()
        };
        let p = b
            .pick_sticky(&key(), &unlimited, std::iter::once(cookie.as_str()), 99_999)
            .unwrap();
        assert_eq!(p.new_cookie, None);
    }
}

/// Header sessions (Gateway API `type: Header`): the value travels in the header, is honoured
/// from it like a cookie's, and cookies of the same name are not read.
#[test]
fn header_sessions_are_read_from_their_header_only() {
    let b = BackendBalancer::new(&backend(ready(5)), false, 0, None);
    let a = Affinity {
        header: Some("x-session".into()),
        ..aff(AffinityMode::Persistent)
    };
    let first = b.pick_sticky(&key(), &a, std::iter::empty(), 10).unwrap();
    let value = first.new_cookie.unwrap();
    let cookie_line = format!("c={value}");
    let header_line = format!("junk, {value}");
    let from = |cookies: &[&str], header: &[&str]| {
        let values: Vec<String> = crate::cookie::session_values(
            &a,
            cookies.iter().map(|c| c.as_bytes()),
            header.iter().map(|h| h.as_bytes()),
        )
        .map(str::to_owned)
        .collect();
        b.pick_sticky(&key(), &a, values.iter().map(String::as_str), 20)
            .unwrap()
    };
    let sticky = from(&[], &[header_line.as_str()]);
    assert_eq!((sticky.endpoint, sticky.new_cookie), (first.endpoint, None));
    let cookie_only = from(&[cookie_line.as_str()], &[]);
    assert!(
        cookie_only.new_cookie.is_some(),
        "a cookie carried a header session"
    );
}
