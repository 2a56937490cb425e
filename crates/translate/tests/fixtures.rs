//! Fixture-driven tests of `translate`, Traefik style.
//!
//! Every `tests/fixtures/NAME.yaml` (other than `*.expected.yaml`) is a multi-document manifest as a
//! user would write it. Each document is fed to [`Objects::add_document`], except documents of
//! `kind: FixtureOptions`, which set [`Options`] for that fixture:
//!
//! ```yaml
//! kind: FixtureOptions
//! ingressClasses: [nginx]
//! ```
//!
//! The translation, `{snapshot, diagnostics}`, is serialised to YAML and compared as text with
//! `tests/fixtures/NAME.expected.yaml`. Run with `UPDATE_FIXTURES=1` to (re)write the expected
//! files, then read them: an expected file is a claim about Kubernetes / ingress-nginx semantics,
//! not a recording of whatever the code does.
//!
//! Every fixture is also translated with its documents in other orders (reversed, and a few fixed
//! shuffles); the output must not change.

// Test code: failing loudly is the point (the workspace denies these lints for library code).
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use remora_translate::model::{Diagnostic, Snapshot};
use remora_translate::{translate, GatewayApiStatus, Objects, Options};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const UPDATE_ENV: &str = "UPDATE_FIXTURES";
const EXPECTED_SUFFIX: &str = ".expected.yaml";

/// What is compared: the whole translation.
#[derive(Serialize)]
struct Output<'a> {
    snapshot: &'a Snapshot,
    diagnostics: &'a [Diagnostic],
    /// What the status of Gateway API objects should say (when there are any).
    #[serde(skip_serializing_if = "GatewayApiStatus::is_empty")]
    gateway_status: &'a GatewayApiStatus,
}

/// The harness-only document that sets translation options.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FixtureOptions {
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    #[allow(dead_code)]
    api_version: Option<String>,
    #[serde(default)]
    ingress_classes: Vec<String>,
    #[serde(default)]
    controller: Option<String>,
    #[serde(default)]
    watch_ingress_without_class: bool,
    #[serde(default)]
    allow_cross_namespace_resources: bool,
    /// `--enable-ssl-passthrough`.
    #[serde(default)]
    enable_ssl_passthrough: bool,
    /// `NAMESPACE/NAME` of the ingress-nginx ConfigMap (`--configmap`).
    #[serde(default)]
    configmap: Option<String>,
}

struct Fixture {
    expected: PathBuf,
    docs: Vec<serde_json::Value>,
    options: Options,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn update_mode() -> bool {
    std::env::var(UPDATE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Input fixtures, sorted by name, and expected files that have no input (stale).
fn list_fixtures(dir: &Path) -> (Vec<(String, PathBuf)>, Vec<PathBuf>) {
    let mut inputs = Vec::new();
    let mut orphans = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("read_dir entry").path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if let Some(stem) = file.strip_suffix(EXPECTED_SUFFIX) {
            if !dir.join(format!("{stem}.yaml")).exists() {
                orphans.push(path.clone());
            }
        } else if let Some(stem) = file.strip_suffix(".yaml") {
            inputs.push((stem.to_owned(), path.clone()));
        }
    }
    inputs.sort();
    orphans.sort();
    (inputs, orphans)
}

fn load(name: &str, input: &Path) -> Result<Fixture, String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let mut docs = Vec::new();
    let mut options = Options::default();
    let mut saw_options = false;
    for (i, de) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let doc = serde_json::Value::deserialize(de)
            .map_err(|e| format!("document {i}: invalid YAML: {e}"))?;
        if doc.is_null() {
            continue;
        }
        if doc.get("kind").and_then(|k| k.as_str()) == Some("FixtureOptions") {
            if saw_options {
                return Err(format!("document {i}: a second FixtureOptions document"));
            }
            saw_options = true;
            let o: FixtureOptions = serde_json::from_value(doc)
                .map_err(|e| format!("document {i}: bad FixtureOptions: {e}"))?;
            options.ingress_classes = o.ingress_classes;
            options.controller = o.controller;
            options.watch_ingress_without_class = o.watch_ingress_without_class;
            options.allow_cross_namespace_resources = o.allow_cross_namespace_resources;
            options.enable_ssl_passthrough = o.enable_ssl_passthrough;
            options.configmap = o.configmap.map(|c| match c.split_once('/') {
                Some((ns, name)) => (ns.to_owned(), name.to_owned()),
                None => ("default".to_owned(), c),
            });
            continue;
        }
        docs.push(doc);
    }
    if docs.is_empty() {
        return Err("no Kubernetes documents".to_owned());
    }
    Ok(Fixture {
        expected: input.with_file_name(format!("{name}{EXPECTED_SUFFIX}")),
        docs,
        options,
    })
}

/// Translate documents in the given order and render the result as YAML.
fn render(docs: &[&serde_json::Value], options: &Options) -> Result<String, String> {
    let mut objects = Objects::default();
    for (i, doc) in docs.iter().enumerate() {
        objects
            .add_document((*doc).clone())
            .map_err(|e| format!("add_document failed on document {i}: {e}"))?;
    }
    let t = translate(&objects, options);
    serde_yaml::to_string(&Output {
        snapshot: &t.snapshot,
        diagnostics: &t.diagnostics,
        gateway_status: &t.gateway_status,
    })
    .map_err(|e| format!("cannot serialise the translation: {e}"))
}

/// Deterministic permutations of `0..n` other than the identity: reversed, and shuffles from a
/// fixed-seed generator (so a failure reproduces).
fn permutations(n: usize) -> Vec<(String, Vec<usize>)> {
    let mut out = vec![("reversed".to_owned(), (0..n).rev().collect::<Vec<_>>())];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 1..=3 {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            let j = (r % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        out.push((format!("shuffle #{round} {order:?}"), order));
    }
    // Drop the identity and repeats (likely with few documents).
    let mut seen = vec![(0..n).collect::<Vec<_>>()];
    out.retain(|(_, o)| {
        let fresh = !seen.contains(o);
        seen.push(o.clone());
        fresh
    });
    out
}

/// A line diff (longest common subsequence), `-` for expected, `+` for actual, with 3 lines of
/// context around each change.
fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // (tag, line number in expected or actual, text)
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            ops.push(('+', j + 1, b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let near = |k: usize| changed.iter().any(|&c| c.abs_diff(k) <= CONTEXT);
    let mut out = String::new();
    let mut skipped = false;
    for (k, (tag, line, text)) in ops.iter().enumerate() {
        if near(k) {
            if skipped {
                out.push_str("    ...\n");
                skipped = false;
            }
            let _ = writeln!(out, "{tag} {line:>4} | {text}");
        } else {
            skipped = true;
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Check one fixture; `Err` holds a readable failure report.
fn check(f: &Fixture, update: bool) -> Result<(), String> {
    let in_order: Vec<&serde_json::Value> = f.docs.iter().collect();
    let actual = render(&in_order, &f.options)?;
    let mut problems = Vec::new();

    for (label, order) in permutations(f.docs.len()) {
        let docs: Vec<&serde_json::Value> = order.iter().map(|&i| &f.docs[i]).collect();
        let other = render(&docs, &f.options)?;
        if other != actual {
            problems.push(format!(
                "output depends on document order: with documents {label}, the output differs \
                 (- file order, + {label}):\n{}",
                line_diff(&actual, &other)
            ));
        }
    }

    if update {
        let old = std::fs::read_to_string(&f.expected).ok();
        if old.as_deref() != Some(actual.as_str()) {
            std::fs::write(&f.expected, &actual)
                .map_err(|e| format!("{}: {e}", f.expected.display()))?;
            eprintln!("updated {}", f.expected.display());
        }
    } else {
        match std::fs::read_to_string(&f.expected) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => problems.push(format!(
                "output differs from {} (- expected, + actual):\n{}\n  expected:\n{}\n  actual:\n{}",
                f.expected.display(),
                line_diff(&expected, &actual),
                indent(&expected),
                indent(&actual),
            )),
            Err(e) => problems.push(format!(
                "cannot read {} ({e}); run with {UPDATE_ENV}=1 to create it. Actual output:\n{}",
                f.expected.display(),
                indent(&actual)
            )),
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn fixtures() {
    let dir = fixtures_dir();
    let update = update_mode();
    let (inputs, orphans) = list_fixtures(&dir);
    assert!(!inputs.is_empty(), "no fixtures in {}", dir.display());

    let mut failures = Vec::new();
    for (name, input) in &inputs {
        let result = load(name, input).and_then(|f| check(&f, update));
        match result {
            Ok(()) => eprintln!("fixture {name}: ok"),
            Err(why) => {
                eprintln!("fixture {name}: FAILED");
                failures.push(format!("=== fixture {name} ({})\n{why}", input.display()));
            }
        }
    }
    for orphan in &orphans {
        failures.push(format!(
            "=== {}: expected file without an input fixture",
            orphan.display()
        ));
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} fixtures failed ({UPDATE_ENV}=1 rewrites the expected files):\n\n{}",
            failures.len(),
            inputs.len(),
            failures.join("\n\n")
        );
    }
}

/// The harness itself: the diff shows what changed, and permutations are real permutations.
#[test]
fn harness_helpers() {
    let d = line_diff("a\nb\nc\n", "a\nB\nc\n");
    assert!(d.contains("-    2 | b"), "{d}");
    assert!(d.contains("+    2 | B"), "{d}");
    assert_eq!(line_diff("same\n", "same\n"), "");
    for n in [1, 2, 5, 9] {
        for (label, order) in permutations(n) {
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "{label}");
        }
    }
    assert!(permutations(1).is_empty());
}
