//! What an operator sees: `/metrics` (Prometheus), the JSON access log, the dashboard page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

async fn setup(extra: &[&str]) -> (Vec<Pod>, Dir, Remora) {
    let (pods, dir) = service_dir("web", "web-5c6d7e8f9a", 3).await;
    dir.write(
        "ing.yaml",
        &IngressYaml::new("web")
            .nginx("affinity", "cookie")
            .rule(Some("shop.example.com"), "/", "web")
            .build(),
    );
    let remora = Remora::serve(&[dir.path()], extra);
    (pods, dir, remora)
}

fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_sessions_failures_and_reloads() {
    let (mut pods, _d, remora) = setup(&[]).await;
    let mut session = Session::with_host("shop.example.com");
    for _ in 0..5 {
        assert_eq!(session.get(&remora.url("/")).await.status, 200);
    }
    let garbage = [
        ("host", "shop.example.com"),
        ("cookie", "INGRESSCOOKIE=garbage"),
    ];
    assert_eq!(get(&remora.url("/"), &garbage).await.status, 200);
    assert_eq!(
        get(&remora.url("/"), &[("host", "nowhere.example.com")])
            .await
            .status,
        404
    );
    // Kill the session's pod: its next request fails over (a connect error, a retry, a re-pin).
    let pinned = session.get(&remora.url("/")).await.body;
    pods.iter_mut()
        .find(|p| pinned.contains(&p.name))
        .unwrap()
        .kill();
    assert_eq!(session.get(&remora.url("/")).await.status, 200);

    let r = get(&format!("http://{}/metrics", remora.admin), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let m = &r.body;
    let labels = r#"{ingress="default/web",service="default/web:80""#;
    assert_eq!(
        metric(
            m,
            &format!("remora_requests_total{labels},status=\"200\"}}")
        ),
        8,
        "{m}"
    );
    assert_eq!(
        metric(
            m,
            &format!("remora_sessions_total{labels},outcome=\"new\"}}")
        ),
        1,
        "{m}"
    );
    assert_eq!(
        metric(
            m,
            &format!("remora_sessions_total{labels},outcome=\"sticky\"}}")
        ),
        5,
        "{m}"
    );
    assert_eq!(
        metric(
            m,
            &format!("remora_sessions_total{labels},outcome=\"repinned\"}}")
        ),
        2,
        "{m}"
    );
    assert!(
        metric(
            m,
            &format!("remora_upstream_connect_errors_total{labels}}}")
        ) >= 1,
        "{m}"
    );
    assert!(
        metric(m, &format!("remora_upstream_retries_total{labels}}}")) >= 1,
        "{m}"
    );
    assert_eq!(
        metric(
            m,
            &format!("remora_request_duration_seconds_count{labels}}}")
        ),
        8,
        "{m}"
    );
    assert!(m.contains("remora_request_duration_seconds_bucket{"), "{m}");
    assert!(metric(m, "remora_config_reloads_total ") >= 1, "{m}");
    assert!(metric(m, "remora_config_build_seconds_count ") >= 1, "{m}");
    assert!(
        m.contains("remora_endpoint_sessions{service=\"default/web:80\""),
        "{m}"
    );
    assert!(m.contains("remora_endpoint_ready{"), "{m}");
    assert!(m.trim_end().ends_with("# EOF"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_has_one_json_line_per_request() {
    let logs = Dir::new();
    let path = logs.path().join("access.log");
    let path_arg = path.display().to_string();
    let (_p, dir, remora) = setup(&["--access-log", &path_arg]).await;
    // An Ingress whose requests are kept out of the log (enable-access-log: "false").
    let generation = remora.generation().await;
    dir.write(
        "quiet.yaml",
        &IngressYaml::new("quiet")
            .nginx("enable-access-log", "false")
            .rule(Some("quiet.example.com"), "/", "web")
            .build(),
    );
    remora.wait_generation_after(generation).await;
    assert_eq!(
        get(&remora.url("/"), &[("host", "quiet.example.com")])
            .await
            .status,
        200
    );
    let mut session = Session::with_host("shop.example.com");
    session.get(&remora.url("/a?x=1")).await;
    session.get(&remora.url("/b")).await;
    get(
        &remora.url("/"),
        &[("host", "nowhere.example.com"), ("x-request-id", "req-42")],
    )
    .await;
    let started = std::time::Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 3 {
            break lines;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(
        lines.iter().all(|l| l["host"] != "quiet.example.com"),
        "{lines:?}"
    );
    assert_eq!(lines[0]["path"], "/a?x=1");
    assert_eq!(lines[0]["host"], "shop.example.com");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["session"], "new");
    assert_eq!(lines[0]["ingress"], "default/web");
    assert_eq!(lines[0]["service"], "default/web:80");
    assert_eq!(lines[0]["tries"], 1);
    assert!(lines[0]["upstream"].as_str().unwrap().starts_with("127."));
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    assert!(lines[0]["duration_ms"].as_f64().unwrap() >= 0.0);
    // The id made for a request without one, as sent to the pod (nginx's `$request_id`).
    let id = lines[0]["request_id"].as_str().unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_ne!(lines[1]["request_id"], lines[0]["request_id"]);
    assert_eq!(lines[1]["session"], "sticky");
    assert_eq!(lines[1]["upstream"], lines[0]["upstream"]);
    assert_eq!(lines[2]["status"], 404);
    assert_eq!(lines[2]["request_id"], "req-42");
    assert!(lines[2]["upstream"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_page_and_its_data() {
    let (_p, _d, remora) = setup(&[]).await;
    let r = get(&format!("http://{}/", remora.admin), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.body.contains("<canvas id=\"plot\""));
    assert!(
        !r.body.contains("https://"),
        "served from the binary, no CDN"
    );
    let status = remora.status().await;
    let route = &status["route_list"][0];
    assert_eq!(route["host"], "shop.example.com");
    assert_eq!(route["backend"], "default/web:80");
    assert_eq!(route["cookie"], "INGRESSCOOKIE");
}

/// The dashboard as a browser renders it: headless Chromium runs the page's script against the
/// live `/status`, and the rendered DOM lists the routes and the pods with their state. Skipped
/// when Chromium is not installed (Debian package `chromium`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_in_headless_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!("skipped: Chromium is not installed");
        return;
    };
    let (pods, _d, remora) = setup(&[]).await;
    let mut session = Session::with_host("shop.example.com");
    for _ in 0..3 {
        session.get(&remora.url("/")).await;
    }
    let url = format!("http://{}/", remora.admin);
    let profile = Dir::new();
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .args([
                "60",
                chromium,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                &profile_arg,
            ])
            .args(["--virtual-time-budget=3000", "--dump-dom", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("shop.example.com"), "routes table: {dom}");
    for p in &pods {
        assert!(
            dom.contains(&p.name),
            "{} in the endpoints table: {dom}",
            p.name
        );
    }
    assert!(dom.contains("badge ready"), "endpoint state badges: {dom}");
    assert!(dom.contains("generation 1"), "summary line: {dom}");
}

/// With --admin-token-file, what shows the configuration (/status, /snapshot) needs the token;
/// the probes, /metrics and the dashboard page do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_guards_the_configuration() {
    let secrets = Dir::new();
    let token = secrets.write("admin-token", "s3cret-token\n");
    let token_arg = token.display().to_string();
    let (_p, _d, remora) = setup(&["--admin-token-file", &token_arg]).await;
    let admin = |path: &str| format!("http://{}{path}", remora.admin);
    for path in ["/status", "/snapshot"] {
        let r = get(&admin(path), &[]).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(
            r.headers["www-authenticate"],
            "Bearer realm=\"remora admin\""
        );
        assert!(!r.body.contains("shop.example.com"), "{path}: {}", r.body);
        let r = get(&admin(path), &[("authorization", "Bearer s3cret-tokeX")]).await;
        assert_eq!(r.status, 401, "{path}: wrong token");
        let r = get(&admin(path), &[("authorization", "Bearer s3cret-token")]).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body.contains("shop.example.com"), "{path}: {}", r.body);
    }
    for path in ["/healthz", "/readyz", "/metrics", "/"] {
        assert_eq!(get(&admin(path), &[]).await.status, 200, "{path}");
    }
}

/// The access log line of the last request whose line starts with `marker`, once written.
async fn log_line(path: &std::path::Path, marker: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.starts_with(marker)) {
            return line.to_owned();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no line {marker} in:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The ingress-nginx ConfigMap with `log-format-upstream` and `extra` keys (YAML single quotes:
/// the format has double quotes).
fn log_format_config_map(format: &str, extra: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remora\n  namespace: ingress-nginx\ndata:\n  log-format-upstream: '{format}'\n"
    );
    for (k, v) in extra {
        y.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    y
}

/// `log-format-upstream` replays ingress-nginx's e2e test (test/e2e/settings/log-format.go): a
/// header value with quotes is written `\x22` by default, `\"` with `log-format-escape-json` and
/// as it is with `log-format-escape-none`; an unset variable (a missing header, an unknown
/// variable, the user of a request without credentials) is `-`, or empty with either escape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_upstream_writes_nginx_lines() {
    let logs = Dir::new();
    let path = logs.path().join("access.log");
    let path_arg = path.display().to_string();
    let (pods, dir) = service_dir("web", "web-5c6d7e8f9a", 1).await;
    dir.write("ing.yaml", &web_ingress("web", "shop.example.com", &[]));
    let format = "$request_uri|$remote_addr|\"$request\"|$status|$body_bytes_sent|\"$http_user_agent\"|\"$http_x_missing\"|[$proxy_upstream_name]|[$proxy_alternative_upstream_name]|$namespace/$ingress_name|$service_name:$service_port|$upstream_status|$upstream_addr|$remote_user|$bogus|$host|$server_protocol";
    dir.write("cm.yaml", &log_format_config_map(format, &[]));
    let remora = Remora::serve(
        &[dir.path()],
        &[
            "--access-log",
            &path_arg,
            "--configmap",
            "ingress-nginx/remora",
        ],
    );
    assert!(
        remora
            .stderr_text()
            .contains("variables not supported by Remora, written as unset (\"-\"): $bogus"),
        "{}",
        remora.stderr_text()
    );
    let agent = r#"agent "q" \ x"#;
    let pod = pods[0].addr;
    let r = get(
        &remora.url("/one?x=1"),
        &[
            ("host", "Shop.Example.com"),
            ("user-agent", agent),
            // alice:secret
            ("authorization", "Basic YWxpY2U6c2VjcmV0"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let len = r.body.len();
    assert_eq!(
        log_line(&path, "/one").await,
        format!(
            r#"/one?x=1|127.0.0.1|"GET /one?x=1 HTTP/1.1"|200|{len}|"agent \x22q\x22 \x5C x"|"-"|[default-web-80]|[]|default/web|web:80|200|{pod}|alice|-|shop.example.com|HTTP/1.1"#
        )
    );
    // No route: nothing of an Ingress is set.
    let r = get(&remora.url("/none"), &[("host", "nowhere.example.com")]).await;
    assert_eq!(r.status, 404);
    let len = r.body.len();
    assert_eq!(
        log_line(&path, "/none").await,
        format!(
            r#"/none|127.0.0.1|"GET /none HTTP/1.1"|404|{len}|"-"|"-"|[-]|[-]|-/-|-:-|-|-|-|-|nowhere.example.com|HTTP/1.1"#
        )
    );
    for (key, marker, escaped) in [
        ("log-format-escape-json", "/two", r#"agent \"q\" \\ x"#),
        ("log-format-escape-none", "/three", agent),
    ] {
        let generation = remora.generation().await;
        dir.write("cm.yaml", &log_format_config_map(format, &[(key, "true")]));
        remora.wait_generation_after(generation).await;
        let r = get(
            &remora.url(marker),
            &[("host", "shop.example.com"), ("user-agent", agent)],
        )
        .await;
        assert_eq!(r.status, 200);
        let len = r.body.len();
        assert_eq!(
            log_line(&path, marker).await,
            format!(
                r#"{marker}|127.0.0.1|"GET {marker} HTTP/1.1"|200|{len}|"{escaped}"|""|[default-web-80]|[]|default/web|web:80|200|{pod}|||shop.example.com|HTTP/1.1"#
            ),
            "{key}"
        );
    }
    // Only an escape key: ingress-nginx's default format.
    let generation = remora.generation().await;
    dir.write(
        "cm.yaml",
        &config_map(&[("log-format-escape-json", "false")]),
    );
    remora.wait_generation_after(generation).await;
    let r = get(
        &remora.url("/default"),
        &[
            ("host", "shop.example.com"),
            ("user-agent", agent),
            ("referer", "http://shop.example.com/"),
            ("x-request-id", "req-7"),
        ],
    )
    .await;
    let len = r.body.len();
    let line = log_line(&path, "127.0.0.1 - - [").await;
    let (time, rest) = line
        .strip_prefix("127.0.0.1 - - [")
        .unwrap()
        .split_once("] ")
        .unwrap();
    // 01/Dec/2026:03:24:25 +0000
    assert_eq!(time.len(), 26, "{line}");
    assert!(time.ends_with(" +0000"), "{line}");
    let prefix = format!(
        r#""GET /default HTTP/1.1" 200 {len} "http://shop.example.com/" "agent \x22q\x22 \x5C x" "#
    );
    let rest = rest
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line}"));
    // $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name]
    // $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id
    let fields: Vec<&str> = rest.split(' ').collect();
    assert_eq!(fields.len(), 9, "{line}");
    assert!(fields[0].parse::<u32>().unwrap() > 50, "{line}");
    assert!(fields[1].contains('.'), "{line}");
    assert_eq!(fields[2..4], ["[default-web-80]", "[]"], "{line}");
    assert_eq!(fields[4], pod.to_string(), "{line}");
    assert_eq!(fields[5], len.to_string(), "{line}");
    assert!(fields[6].contains('.'), "{line}");
    assert_eq!(fields[7..], ["200", "req-7"], "{line}");
}
