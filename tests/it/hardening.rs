//! Bad input, hardened: the config parser, the event payload
//! reader, the inputs reader and settings resolution never panic, and every
//! rejection names the input or file (and, for YAML, the line). The
//! `.dockerignore` and Dockerfile parsers have their own property tests
//! (src/checks/context/tests.rs, src/checks/dockerfile/tests.rs) and are not repeated here.
//!
//! Each test is named after what it asserts. A test that pins a bug found
//! here, since fixed, says so in a `Regression:` comment with what the bug was.
//!
//! The last section runs the binary for every row of README.md (## Bad input) and
//! checks the table quotes the error text it really prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use fastdeploy::error::BadInput;
use fastdeploy::plan::BuilderProbe;
use fastdeploy::settings::Settings;
use fastdeploy::settings::config::Config;
use fastdeploy::settings::event::{RunContext, resolve_target};
use fastdeploy::settings::inputs::{INPUTS, RawInputs, env_name, env_name_hyphenated};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::sandbox::{Moto, fastdeploy, repo_root};

const CONFIG_PATH: &str = "/ws/fastdeploy.yml";
const SHA: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new(CONFIG_PATH)).map_err(|e| e.to_string())
}

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `limit` (a hang must not hang the suite; the thread is left behind).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let t = Instant::now();
        let out = f();
        let _ = tx.send((out, t.elapsed()));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
}

// ---------------------------------------------------------------------------
// Config: `Config::parse(text, path)`.

/// Messages `Config::validate` gives after a successful parse: they name the
/// key in question instead of a line.
const VALIDATION_PHRASES: &[&str] = &[
    "is not supported; use `version: 1`",
    "component name `",
    "environment name `",
    ": repository `",
    "`container` is an empty list",
    "maps to both environments",
    "which is not under `components`",
    "`defaults.",
    "`environments.",
    "outside the workspace",
    "names two deploy targets",
];

/// A config rejection names the file and, unless it is a validation message
/// naming the offending key, the line.
fn assert_config_rejection(err: &str) {
    assert!(
        err.starts_with(&format!("config file {CONFIG_PATH}: ")),
        "names the file first: {err}"
    );
    let names_line = regex::Regex::new(r"line \d+,? column \d+")
        .unwrap()
        .is_match(err);
    assert!(
        names_line || VALIDATION_PHRASES.iter().any(|p| err.contains(p)),
        "names the line (or the key): {err}"
    );
}

/// Every key of the config schema, at any level.
const SCHEMA_KEYS: &[&str] = &[
    "version",
    "defaults",
    "components",
    "environments",
    "aws-region",
    "registry",
    "builder",
    "cache",
    "platforms",
    "codebuild-project",
    "cluster",
    "max-context-mb",
    "max-image-mb",
    "context",
    "dockerfile",
    "target",
    "build-args",
    "repository",
    "service",
    "container",
    "task-definition",
    "function",
    "alias",
    "before-deploy",
    "before-deploy-container",
    "before-deploy-minutes",
    "beanstalk-application",
    "beanstalk-environment",
    "bundle",
    "allow-yellow",
    "ports",
    "branches",
    "tags",
    "url",
    "overrides",
    "backend",
    "production",
];

fn typo(key: &str, at: usize, kind: u8) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let i = at % chars.len();
    match kind % 4 {
        0 => {
            chars.remove(i);
        }
        1 => chars.insert(i, 'x'),
        2 if i + 1 < chars.len() => chars.swap(i, i + 1),
        _ => chars[i] = chars[i].to_ascii_uppercase(),
    }
    chars.into_iter().collect()
}

fn yaml_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(SCHEMA_KEYS).prop_map(str::to_string),
        2 => (prop::sample::select(SCHEMA_KEYS), any::<usize>(), any::<u8>()).prop_map(|(k, at, kind)| typo(k, at, kind)),
        1 => "[a-z][a-z0-9_-]{0,8}",
        1 => Just("<<".to_string()),
        1 => Just("? complex".to_string()),
    ]
}

fn yaml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9/._*-]{0,12}",
        "[0-9]{15,45}",
        "-[0-9]{1,20}",
        "[0-9]{1,4}\\.[0-9]{1,4}(e[+-]?[0-9]{1,4})?",
        prop::sample::select(
            &[
                "1",
                "0",
                "true",
                "no",
                "~",
                "null",
                "''",
                "\"\"",
                ".inf",
                "-.nan",
                "0x1F",
                "0o17",
                "!!str 1",
                "!!binary aGk="
            ][..]
        )
        .prop_map(str::to_string),
        "\"[a-z\\\\n\\\\t\\\\u00e9 \\\\x41]{0,10}\"",
        "'[a-z' ]{0,8}'",
        "\\*[a-c]",
        "&[a-c] [a-z]{1,5}",
        "[|>][-+]?",
    ]
}

/// A YAML-ish document: schema keys and typos, random nesting (block and
/// flow), anchors and aliases, merge keys, huge numbers.
#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    Flow(Box<Node>),
    Anchor(char, Box<Node>),
}

fn yaml_node() -> impl Strategy<Value = Node> {
    yaml_scalar().prop_map(Node::Scalar).prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            4 => prop::collection::vec((yaml_key(), inner.clone()), 0..6).prop_map(Node::Map),
            2 => prop::collection::vec(inner.clone(), 0..5).prop_map(Node::List),
            1 => inner.clone().prop_map(|n| Node::Flow(Box::new(n))),
            1 => (prop::sample::select(&['a', 'b', 'c'][..]), inner).prop_map(|(c, n)| Node::Anchor(c, Box::new(n))),
        ]
    })
}

fn flow(node: &Node) -> String {
    match node {
        Node::Scalar(s) => s.clone(),
        Node::Map(kvs) => format!(
            "{{{}}}",
            kvs.iter()
                .map(|(k, v)| format!("{k}: {}", flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Node::List(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
        Node::Flow(n) => flow(n),
        Node::Anchor(c, n) => format!("&{c} {}", flow(n)),
    }
}

/// Renders `node` as the value after `key:` / `-` at `indent`.
fn block(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Map(kvs) if !kvs.is_empty() => {
            for (k, v) in kvs {
                out.push_str(&format!("{pad}{k}:"));
                value(v, indent, out);
            }
        }
        Node::List(items) if !items.is_empty() => {
            for v in items {
                out.push_str(&format!("{pad}-"));
                value(v, indent, out);
            }
        }
        other => out.push_str(&format!("{pad}{}\n", flow(other))),
    }
}

fn value(v: &Node, indent: usize, out: &mut String) {
    match v {
        Node::Map(kvs) if !kvs.is_empty() => {
            out.push('\n');
            block(v, indent + 2, out);
        }
        Node::List(items) if !items.is_empty() => {
            out.push('\n');
            block(v, indent + 2, out);
        }
        Node::Anchor(c, inner) if matches!(**inner, Node::Map(_) | Node::List(_)) => {
            out.push_str(&format!(" &{c}\n"));
            block(inner, indent + 2, out);
        }
        other => out.push_str(&format!(" {}\n", flow(other))),
    }
}

/// One edit of a real config file.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteChar(usize),
    InsertChar(usize, char),
    DuplicateLine(usize),
    DeleteLine(usize),
    ReplaceValue(usize, String),
    RenameKey(usize, u8),
    Indent(usize, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteChar),
        (
            any::<usize>(),
            prop::sample::select(
                &[
                    ':', '-', ' ', '\t', '[', '{', '"', '\'', '#', '&', '*', '!', '|', '\n', 'é'
                ][..]
            )
        )
            .prop_map(|(at, c)| Mutation::InsertChar(at, c)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::DeleteLine),
        (any::<usize>(), yaml_scalar()).prop_map(|(at, v)| Mutation::ReplaceValue(at, v)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, k)| Mutation::RenameKey(at, k)),
        (any::<usize>(), any::<bool>()).prop_map(|(at, more)| Mutation::Indent(at, more)),
    ]
}

fn mutate(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len();
    match m {
        Mutation::DeleteChar(at) => {
            let mut chars: Vec<char> = text.chars().collect();
            chars.remove(at % chars.len());
            return chars.into_iter().collect();
        }
        Mutation::InsertChar(at, c) => {
            let mut chars: Vec<char> = text.chars().collect();
            chars.insert(at % (chars.len() + 1), *c);
            return chars.into_iter().collect();
        }
        Mutation::DuplicateLine(at) => {
            let l = lines[at % n].clone();
            lines.insert(at % n, l);
        }
        Mutation::DeleteLine(at) => {
            lines.remove(at % n);
        }
        Mutation::ReplaceValue(at, v) => {
            let l = &mut lines[at % n];
            if let Some((k, _)) = l.split_once(": ") {
                *l = format!("{k}: {v}");
            }
        }
        Mutation::RenameKey(at, kind) => {
            let l = &mut lines[at % n];
            if let Some((k, rest)) = l.split_once(':') {
                let key = k.trim_start();
                if !key.is_empty() && !key.starts_with('#') {
                    let indent = &k[..k.len() - key.len()];
                    *l = format!("{indent}{}:{rest}", typo(key, *kind as usize, *kind));
                }
            }
        }
        Mutation::Indent(at, more) => {
            let l = &mut lines[at % n];
            if *more {
                l.insert_str(0, "  ");
            } else if let Some(s) = l.strip_prefix("  ") {
                *l = s.to_string();
            }
        }
    }
    lines.join("\n") + "\n"
}

const EXAMPLE: &str = include_str!("../../fastdeploy.example.yml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn config_parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse(&text) {
            assert_config_rejection(&e);
        }
    }

    #[test]
    fn config_parse_names_file_and_line_for_yamlish_documents(doc in yaml_node(), as_flow in any::<bool>()) {
        let mut text = String::new();
        if as_flow { text = flow(&doc) } else { block(&doc, 0, &mut text) }
        if let Err(e) = parse(&text) {
            assert_config_rejection(&e);
        }
    }

    #[test]
    fn config_parse_names_file_and_line_for_edits_of_the_example(edits in prop::collection::vec(mutation(), 1..4)) {
        let text = edits.iter().fold(EXAMPLE.to_string(), |t, m| mutate(&t, m));
        if let Err(e) = parse(&text) {
            assert_config_rejection(&e);
        }
    }

    #[test]
    fn a_schema_key_typo_is_named_with_its_line(at_line in 0usize..200, kind in any::<u8>()) {
        // Every key line of the example, renamed to a near miss.
        let keyed: Vec<(usize, &str)> = EXAMPLE
            .lines()
            .enumerate()
            .filter_map(|(i, l)| {
                let key = l.trim_start().split_once(':')?.0;
                (SCHEMA_KEYS.contains(&key) && !["backend", "production"].contains(&key)).then_some((i, key))
            })
            .collect();
        let (line, key) = keyed[at_line % keyed.len()];
        let bad = typo(key, kind as usize, kind);
        prop_assume!(!SCHEMA_KEYS.contains(&bad.as_str()));
        let text: String = EXAMPLE
            .lines()
            .enumerate()
            .map(|(i, l)| if i == line { l.replacen(key, &bad, 1) } else { l.to_string() } + "\n")
            .collect();
        let err = parse(&text).expect_err("a misspelt key is an error");
        assert_config_rejection(&err);
        assert!(err.contains(&format!("line {}", line + 1)), "line {}: {err}", line + 1);
        assert!(err.contains(&format!("`{bad}`")), "names the key: {err}");
    }
}

#[test]
fn deep_nesting_is_rejected_promptly_naming_file_and_line() {
    let depth = 100_000;
    let docs = [
        // Flow nesting where the schema allows a map (build-args) and at the root.
        format!(
            "components:\n  a:\n    build-args: {}{}\n",
            "{k: ".repeat(depth),
            "}".repeat(depth)
        ),
        format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        // Block nesting, deeper than the 64-level budget.
        (0..500)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect::<String>(),
        (0..500)
            .map(|i| format!("{}-\n", "  ".repeat(i)))
            .collect::<String>(),
    ];
    for doc in docs {
        let head: String = doc.chars().take(40).collect();
        let (result, took) = within(Duration::from_secs(10), "deep nesting", move || parse(&doc));
        let err = result.expect_err("deep nesting is not a config");
        assert_config_rejection(&err);
        assert!(took < Duration::from_secs(2), "{head:?}... took {took:?}");
    }
}

/// Classic exponential alias expansion, in the one place the schema takes
/// anchored maps (component bodies), and as a chain of merge keys.
fn billion_laughs() -> Vec<(&'static str, String)> {
    let mut wide = String::from("components:\n  a: &a\n    build-args: {");
    for i in 0..1000 {
        wide.push_str(&format!("k{i}: v, "));
    }
    wide.push_str("}\n");
    for i in 0..10_000 {
        wide.push_str(&format!("  b{i}: *a\n"));
    }
    let mut merges = String::from(
        "components:\n  a0:\n    build-args:\n      <<: &m0 {k0: v, k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v, k8: v, k9: v}\n",
    );
    for lvl in 1..10 {
        let refs = vec![format!("*m{}", lvl - 1); 10].join(", ");
        merges.push_str(&format!(
            "  a{lvl}:\n    build-args:\n      <<: &m{lvl}\n        <<: [{refs}]\n"
        ));
    }
    let mut lists =
        String::from("components:\n  a:\n    platforms: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for lvl in 1..10 {
        lists.push_str(&format!(
            "    container: &l{lvl} [{}]\n",
            vec![format!("*l{}", lvl - 1); 10].join(", ")
        ));
    }
    vec![
        ("10,000 aliases of a 1,000-key map", wide),
        ("merge-key chain, 10^10 keys", merges),
        ("nested list aliases", lists),
    ]
}

#[test]
fn billion_laughs_is_rejected_by_the_yaml_budget_without_eating_memory() {
    for (what, doc) in billion_laughs() {
        let bytes = doc.len();
        // Debug builds are slow; the point is that it ends, with an error.
        let (result, took) = within(Duration::from_secs(60), what, move || parse(&doc));
        let err = result.expect_err(what);
        assert_config_rejection(&err);
        eprintln!(
            "{what} ({bytes} bytes): rejected in {took:?}: {}",
            err.lines().next().unwrap_or_default()
        );
    }
}

#[test]
fn a_merge_key_chain_is_stopped_by_the_budget_within_two_seconds() {
    // Regression: a config has hundreds of nodes; Config::parse could pass a much
    // tighter serde-saphyr Budget (max_nodes, max_merge_keys, max_aliases).
    let (_, doc) = billion_laughs().remove(1);
    let (result, took) = within(Duration::from_secs(120), "merge-key chain", move || {
        parse(&doc)
    });
    assert_config_rejection(&result.unwrap_err());
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_yaml_budget_breach_says_the_file_expands_too_far_not_rust_debug_output() {
    // Regression: a user who pasted anchors/aliases should learn the file expands too
    // far, not see an internal enum.
    let (_, doc) = billion_laughs().remove(0);
    let err = parse(&doc).unwrap_err();
    assert!(!err.contains("Nodes {"), "{err}");
    assert!(
        err.contains("alias") || err.contains("anchor") || err.contains("too large"),
        "{err}"
    );
}

#[test]
fn a_second_yaml_document_is_rejected_without_advising_a_rust_function() {
    // Regression: the advice is for the developer calling serde-saphyr, not the user.
    let err = parse("version: 1\n---\nversion: 1\n").unwrap_err();
    assert_config_rejection(&err);
    assert!(!err.contains("from_str_multiple"), "{err}");
}

#[test]
fn a_duplicate_key_is_rejected_without_advising_a_library_option() {
    // Regression: the user cannot set a serde-saphyr option; they should remove one key.
    let err = parse("components:\n  backend: {}\n  backend: {}\n").unwrap_err();
    assert_config_rejection(&err);
    assert!(!err.contains("DuplicateKeyPolicy"), "{err}");
}

#[test]
fn out_of_range_numbers_in_the_config_say_what_is_accepted() {
    // Regression: `invalid u64` does not say what is accepted (a whole number >= 0).
    for text in [
        "version: 99999999999999999999\n",
        "defaults:\n  max-context-mb: -1\n",
    ] {
        let err = parse(text).unwrap_err();
        assert_config_rejection(&err);
        assert!(!err.contains("invalid u"), "{err}");
    }
}

// ---------------------------------------------------------------------------
// Event: `RunContext::from_env(env, cwd)` and `resolve_target`.

fn event_env(
    event: &str,
    payload: Option<&[u8]>,
    dir: &Path,
    extra: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("GITHUB_ACTIONS".to_string(), "true".to_string()),
        ("GITHUB_EVENT_NAME".to_string(), event.to_string()),
        ("GITHUB_REF".to_string(), "refs/heads/main".to_string()),
        ("GITHUB_SHA".to_string(), SHA.to_string()),
        ("GITHUB_WORKSPACE".to_string(), dir.display().to_string()),
    ]);
    if let Some(p) = payload {
        let path = dir.join("event.json");
        std::fs::write(&path, p).unwrap();
        env.insert("GITHUB_EVENT_PATH".into(), path.display().to_string());
    }
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// Every JSON pointer fastdeploy reads from the payload (src/settings/event.rs).
const EVENT_POINTERS: &[&str] = &[
    "/pull_request/head/sha",
    "/pull_request/head/ref",
    "/pull_request/number",
    "/pull_request/title",
    "/pull_request/user/login",
    "/head_commit/message",
    "/head_commit/author/name",
    "/head_commit/author/username",
    "/inputs/environment",
    "/repository/default_branch",
];

fn base_payload() -> Value {
    json!({
        "pull_request": {"head": {"sha": "e5f60718293a4b5c6d7e8f901234567890123456", "ref": "feature/x"}, "number": 7, "title": "T", "user": {"login": "dana"}},
        "head_commit": {"message": "m\nbody", "author": {"name": "Dana", "username": "dana"}},
        "inputs": {"environment": "staging"},
        "repository": {"default_branch": "main"}
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Sets `pointer` (or one of its parents, to break the path higher up) to `v`.
fn set_at(payload: &mut Value, pointer: &str, depth_cut: usize, v: Value) -> String {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let keep = parts.len() - depth_cut % parts.len();
    let target = format!("/{}", parts[..keep].join("/"));
    *payload
        .pointer_mut(&target)
        .expect("base payload has every pointer") = v;
    target
}

fn event_names() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "push",
            "pull_request",
            "pull_request_target",
            "workflow_dispatch",
            "release",
            "schedule",
            "",
        ][..],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn event_reader_never_panics_on_arbitrary_files(event in event_names(), bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let dir = tempfile::tempdir().unwrap();
        let env = event_env(event, Some(&bytes), dir.path(), &[]);
        if let Err(e) = RunContext::from_env(&env, dir.path()) {
            let msg = e.to_string();
            let path = dir.path().join("event.json").display().to_string();
            assert!(msg.contains(&path), "names the event file: {msg}");
            assert!(msg.contains("GITHUB_EVENT_PATH"), "names the variable: {msg}");
        }
    }

    #[test]
    fn wrong_types_at_every_path_fastdeploy_reads(
        event in event_names(),
        pointer in prop::sample::select(EVENT_POINTERS),
        cut in 0usize..4,
        v in json_value(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut payload = base_payload();
        let target = set_at(&mut payload, pointer, cut, v.clone());
        let env = event_env(event, Some(payload.to_string().as_bytes()), dir.path(), &[]);
        let result = RunContext::from_env(&env, dir.path());
        let is_pr = event.starts_with("pull_request");
        let head_sha = payload.pointer("/pull_request/head/sha").and_then(Value::as_str);
        match result {
            Ok(ctx) => {
                // The commit that is built is always a real SHA.
                assert!(ctx.commit.sha.len() >= 7 && ctx.commit.sha.chars().all(|c| c.is_ascii_hexdigit()), "{ctx:?}");
                if is_pr {
                    assert_eq!(Some(ctx.commit.sha.as_str()), head_sha, "a pull request builds its head");
                }
                // Deciding the target never panics, whatever the payload held.
                let _ = resolve_target(&ctx, None, None);
            }
            Err(e) => {
                let msg = e.to_string();
                // A broken PR head fails, and so does a dispatch environment
                // that is not a string (it must never fall back to the branch map).
                let broken_pr = is_pr && target.starts_with("/pull_request");
                let broken_dispatch = event == "workflow_dispatch" && target.starts_with("/inputs");
                assert!(broken_pr || broken_dispatch, "only a broken PR head or dispatch input fails ({target} = {v}): {msg}");
                let names_it = msg.contains("pull_request.head.sha") || msg.contains("GITHUB_SHA") || msg.contains("inputs.environment");
                assert!(names_it && msg.contains("event file"), "names the file and the field: {msg}");
            }
        }
    }

    #[test]
    fn a_github_sha_that_is_not_a_sha_is_rejected_naming_github_sha(sha in ".{1,48}") {
        let dir = tempfile::tempdir().unwrap();
        let env = event_env("push", None, dir.path(), &[("GITHUB_SHA", &sha)]);
        match RunContext::from_env(&env, dir.path()) {
            Ok(ctx) => assert!(ctx.commit.sha.len() >= 7 && ctx.commit.sha.chars().all(|c| c.is_ascii_hexdigit())),
            Err(e) => assert!(e.to_string().contains("GITHUB_SHA"), "{e}"),
        }
    }

    #[test]
    fn resolve_target_never_panics_and_names_an_unknown_environment(
        refname in prop::sample::select(&["refs/heads/main", "refs/heads/develop", "refs/heads/feature/x", "refs/tags/v1.2", "refs/tags/x", "refs/pull/7/merge", "weird"][..]),
        event in event_names(),
        dispatch in proptest::option::of("[a-z]{1,10}"),
        explicit in proptest::option::of("[a-z]{1,10}"),
        with_config in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut payload = base_payload();
        payload["inputs"]["environment"] = dispatch.clone().map(Value::String).unwrap_or(Value::Null);
        let env = event_env(event, Some(payload.to_string().as_bytes()), dir.path(), &[("GITHUB_REF", refname)]);
        let ctx = RunContext::from_env(&env, dir.path()).unwrap();
        let config = Config::parse(EXAMPLE, Path::new("fastdeploy.yml")).unwrap();
        let config = with_config.then_some(&config);
        match resolve_target(&ctx, config, explicit.as_deref()) {
            Ok(t) => {
                if let (Some(env), Some(c)) = (t.environment(), config) {
                    assert!(c.environments.contains_key(env), "{t:?}");
                }
            }
            Err(BadInput::UnknownEnvironment { name, known }) => {
                assert!(explicit.as_deref() == Some(name.as_str()) || dispatch.as_deref() == Some(name.as_str()));
                assert!(known.contains("production") && known.contains("staging"), "{known}");
            }
            Err(other) => panic!("unexpected rejection: {other}"),
        }
    }
}

#[test]
fn event_files_that_are_not_objects_or_not_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    for (bytes, says) in [
        (&b"[]"[..], "is not a JSON object"),
        (b"\"push\"", "is not a JSON object"),
        (b"", "is not valid JSON"),
        (b"\xff\xfe{}", "cannot be read"),
        (&[b'['; 100_000][..], "is not valid JSON"),
    ] {
        let env = event_env("push", Some(bytes), dir.path(), &[]);
        let err = RunContext::from_env(&env, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&dir.path().join("event.json").display().to_string())
                && err.contains(says),
            "{err}"
        );
    }
    let mut env = event_env("push", None, dir.path(), &[]);
    env.insert("GITHUB_EVENT_PATH".into(), dir.path().display().to_string());
    let err = RunContext::from_env(&env, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot be read") && err.contains("GITHUB_EVENT_PATH"),
        "a directory: {err}"
    );
}

#[test]
fn a_pull_request_head_sha_of_the_wrong_type_is_named_as_not_a_string() {
    // Regression: "without `pull_request.head.sha`" sends the user looking for a key
    // that is there; the message should say it is not a string.
    let dir = tempfile::tempdir().unwrap();
    let mut payload = base_payload();
    payload["pull_request"]["head"]["sha"] = json!(123);
    let env = event_env(
        "pull_request",
        Some(payload.to_string().as_bytes()),
        dir.path(),
        &[],
    );
    let err = RunContext::from_env(&env, dir.path())
        .unwrap_err()
        .to_string();
    assert!(!err.contains("without"), "{err}");
    assert!(
        err.contains("pull_request.head.sha") && err.contains("string"),
        "{err}"
    );
}

#[test]
fn a_dispatch_environment_of_the_wrong_type_stops_the_run_instead_of_deploying_by_branch() {
    // Regression: dispatching from main with a malformed environment deploys to
    // production (the branch map) instead of stopping.
    let dir = tempfile::tempdir().unwrap();
    let mut payload = base_payload();
    payload["inputs"]["environment"] = json!(["staging"]);
    let env = event_env(
        "workflow_dispatch",
        Some(payload.to_string().as_bytes()),
        dir.path(),
        &[],
    );
    let result =
        RunContext::from_env(&env, dir.path()).and_then(|ctx| resolve_target(&ctx, None, None));
    match result {
        Err(e) => assert!(e.to_string().contains("inputs.environment"), "{e}"),
        Ok(t) => panic!("decided {t:?} from a payload whose inputs.environment is a list"),
    }
}

// ---------------------------------------------------------------------------
// Inputs: `RawInputs::from_env`, the typed parsers, `Settings::resolve` and
// the pure `plan::build` after it.

fn input_key() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = INPUTS.iter().map(|s| s.name).collect();
    prop_oneof![
        prop::sample::select(names.clone()).prop_map(env_name),
        prop::sample::select(names).prop_map(env_name_hyphenated),
        "INPUT_[A-Z_-]{0,12}",
    ]
}

fn input_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,16}",
        "[0-9]{1,25}",
        "-?[0-9]{1,3}(\\.[0-9]{1,3})?(e[0-9]{1,3})?",
        prop::sample::select(
            &[
                "true",
                "false",
                "TRUE",
                "yes",
                "0",
                "1",
                "NaN",
                "inf",
                "-0",
                "+5",
                " 30 ",
                "\n",
                "auto",
                "buildah",
                "codebuild",
                "registry",
                "none",
                "blue-green",
                "traffic-shifted",
                "critical",
                "backend",
                "backend,lambda",
                "production",
                "qa",
                "../..",
                "/",
                "linux/amd64",
                "amd64",
                "KEY=VALUE",
                "=x",
                "https://hooks.slack.com/services/T/B/X",
                "hooks.slack.com",
            ][..]
        )
        .prop_map(str::to_string),
    ]
}

/// What a rejection must name: an input (`` `name` ``), an environment
/// variable, the config file or a component/environment of the config.
fn names_its_source(msg: &str, env: &BTreeMap<String, String>) -> bool {
    INPUTS
        .iter()
        .any(|s| msg.contains(&format!("`{}`", s.name)))
        || env
            .keys()
            .any(|k| !k.starts_with("INPUT_") && msg.contains(k.as_str()))
        || msg.contains("config file")
        || msg.starts_with("unknown component")
        || msg.starts_with("unknown environment")
        || msg.starts_with("repository for component `")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn raw_inputs_and_settings_never_panic_and_an_input_error_quotes_the_value(
        pairs in prop::collection::btree_map(input_key(), input_value(), 0..12),
    ) {
        let raw = RawInputs::from_env(&pairs);
        for spec in INPUTS {
            if let Some(v) = raw.get(spec.name) {
                assert!(!v.is_empty() && v.trim() == v, "values are trimmed, empty is unset: {v:?}");
            }
        }
        // The real resolution, not a copy of its ranges.
        let dir = tempfile::tempdir().unwrap();
        let mut env = event_env("push", None, dir.path(), &[("GITHUB_REPOSITORY", "acme/shop")]);
        env.extend(pairs);
        if let Err(e) = Settings::resolve(RawInputs::from_env(&env), &env, dir.path()) {
            let msg = e.to_string();
            match INPUTS.iter().find(|s| msg.contains(&format!("input `{}` is ", s.name))) {
                Some(spec) => {
                    // The value, or for a list the item at fault, as given.
                    let value = raw.get_or_default(spec.name).unwrap_or_default();
                    let items = fastdeploy::settings::inputs::split_list(value);
                    let quoted = std::iter::once(value.to_string()).chain(items).any(|v| msg.contains(&format!("{v:?}")));
                    assert!(quoted, "quotes the value {value:?}: {msg}");
                }
                None => assert!(names_its_source(&msg, &env), "names no input, variable or file: {msg}"),
            }
        }
    }

    #[test]
    fn settings_and_plan_never_panic_on_random_inputs(
        pairs in prop::collection::btree_map(input_key(), input_value(), 0..10),
        with_config in any::<bool>(),
        extra in prop::collection::btree_map(
            prop::sample::select(&["USE_CODEBUILD", "FASTDEPLOY_DELAY_SCALE", "GITHUB_RUN_ATTEMPT", "GITHUB_REF"][..]),
            input_value(), 0..2),
    ) {
        let dir = tempfile::tempdir().unwrap();
        if with_config {
            std::fs::write(dir.path().join("fastdeploy.yml"), EXAMPLE).unwrap();
        }
        let mut env = event_env("push", None, dir.path(), &[("GITHUB_REPOSITORY", "acme/shop")]);
        env.extend(pairs);
        env.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        let raw = RawInputs::from_env(&env);
        let result = Settings::resolve(raw, &env, dir.path())
            .and_then(|s| fastdeploy::plan::build(&s, &BuilderProbe { docker_buildx: false, buildah: true, docker: None }));
        if let Err(e) = result {
            let msg = e.to_string();
            assert!(names_its_source(&msg, &env), "names no input, variable or file: {msg}");
        }
    }
}

/// Resolves settings and the plan for a push to main in a fresh workspace.
pub(crate) fn resolve(
    env_pairs: &[(&str, &str)],
    config: Option<&str>,
) -> Result<fastdeploy::plan::Plan, String> {
    let dir = tempfile::tempdir().unwrap();
    if let Some(c) = config {
        std::fs::write(dir.path().join("fastdeploy.yml"), c).unwrap();
    }
    let mut env = event_env(
        "push",
        None,
        dir.path(),
        &[("GITHUB_REPOSITORY", "acme/shop")],
    );
    env.extend(
        env_pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let raw = RawInputs::from_env(&env);
    let settings = Settings::resolve(raw, &env, dir.path()).map_err(|e| e.to_string())?;
    fastdeploy::plan::build(
        &settings,
        &BuilderProbe {
            docker_buildx: false,
            buildah: true,
            docker: None,
        },
    )
    .map_err(|e| e.to_string())
}

/// Like `resolve`, but a panic is an outcome to assert on, not a crash.
fn resolve_caught(
    env_pairs: &[(&str, &str)],
    config: Option<&str>,
) -> std::thread::Result<Result<fastdeploy::plan::Plan, String>> {
    let env_pairs: Vec<(String, String)> = env_pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = config.map(str::to_string);
    std::panic::catch_unwind(move || {
        let pairs: Vec<(&str, &str)> = env_pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        resolve(&pairs, config.as_deref())
    })
}

#[test]
fn huge_megabyte_limits_in_the_config_are_rejected_naming_the_key() {
    // Regression: the inputs were range-checked (1-1000000) but the config's
    // defaults were not, and the megabytes-to-bytes product overflowed (a
    // debug panic; in release a tiny limit that failed every build).
    for key in ["max-image-mb", "max-context-mb"] {
        let config =
            format!("defaults:\n  {key}: 18446744073709551615\ncomponents:\n  app: {{}}\n");
        let outcome = resolve_caught(&[], Some(&config));
        let result =
            outcome.unwrap_or_else(|_| panic!("defaults.{key}: 18446744073709551615 panicked"));
        let err = result.expect_err("a limit of 2^64 MB is not a limit");
        assert!(err.contains("config file") && err.contains(key), "{err}");
    }
}

#[test]
fn config_megabyte_limits_follow_the_input_range() {
    // Regression: `max-context-mb: 0` in the config makes every build context "too
    // large"; the same value as an input is rejected up front.
    let err = resolve(
        &[],
        Some("defaults:\n  max-context-mb: 0\ncomponents:\n  app: {}\n"),
    )
    .expect_err("0 MB is out of range");
    assert!(
        err.contains("config file") && err.contains("max-context-mb"),
        "{err}"
    );
}

#[test]
fn config_defaults_errors_name_the_file_and_key_not_an_input() {
    // Regression: `input `builder` is "kaniko"` sends the user to the workflow file
    // when the typo is in fastdeploy.yml's `defaults.builder`.
    for (key, value) in [
        ("builder", "kaniko"),
        ("cache", "s3"),
        ("registry", "https://x.example"),
        ("aws-region", "Eu-West-1"),
    ] {
        let err = resolve(&[], Some(&format!("defaults:\n  {key}: {value}\n"))).expect_err(key);
        assert!(
            err.contains("fastdeploy.yml") && err.contains(&format!("defaults.{key}")),
            "{key}: {err}"
        );
    }
}

#[test]
fn an_aws_region_variable_error_names_aws_region() {
    // Regression: the user set no input; the message should name AWS_REGION.
    let err = resolve(&[("AWS_REGION", "EU-WEST-1")], None).expect_err("uppercase region");
    assert!(err.contains("AWS_REGION"), "{err}");
}

#[test]
fn an_empty_region_in_the_config_never_reaches_the_plan() {
    // Regression: an empty region was accepted, and the SDK then failed later with an endpoint error instead of the
    // config naming the key now.
    match resolve(&[], Some("defaults:\n  aws-region: ''\n")) {
        Ok(plan) => assert_ne!(
            plan.aws_region.as_deref(),
            Some(""),
            "an empty region reached the plan"
        ),
        Err(e) => assert!(e.contains("aws-region"), "{e}"),
    }
}

#[test]
fn a_config_context_outside_the_workspace_names_the_config_key() {
    // Regression: the message blamed the `context` input when the value came
    // from `components.<name>.context` in fastdeploy.yml.
    let err = resolve(&[], Some("components:\n  app:\n    context: ../outside\n"))
        .expect_err("outside the workspace");
    assert!(
        err.contains("fastdeploy.yml") || err.contains("components.app.context"),
        "{err}"
    );
}

#[test]
fn derived_repository_names_are_made_valid_for_ecr() {
    // Regression: GitHub allows `my--app` and `.github`, ECR does not; the default
    // used to be rejected as if the user had set `repository` (fixed in 61fe5bd).
    for repo in ["acme/my--app", "acme/.github", "acme/My_App_"] {
        let plan =
            resolve(&[("GITHUB_REPOSITORY", repo)], None).unwrap_or_else(|e| panic!("{repo}: {e}"));
        let name = &plan.components[0].build.repository;
        assert!(
            fastdeploy::settings::config::check_repository(name).is_ok(),
            "{repo} -> {name}"
        );
    }
}

#[test]
fn an_invalid_repository_names_the_component_and_the_rule() {
    // Regression: the message used to read `it accepts `a--b` is not a valid ECR
    // repository name` (a sentence inside a sentence).
    let err = resolve(&[("INPUT_REPOSITORY", "acme//backend")], None).expect_err("double slash");
    assert!(!err.contains("but it accepts `"), "{err}");
    assert!(
        err.contains("component `app`")
            && err.contains("`acme//backend` is not a valid ECR repository name"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// README.md (## Bad input): every row's error text is what the binary prints.

const DOC: &str = include_str!("../../README.md");

struct Workspace {
    ws: tempfile::TempDir,
    tmp: tempfile::TempDir,
}

impl Workspace {
    /// The example config with a Dockerfile per component, as in tests/it/plan.rs.
    fn new() -> Workspace {
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("fastdeploy.yml"), EXAMPLE).unwrap();
        for dir in ["backend", "lambda", "admin"] {
            std::fs::create_dir_all(ws.path().join(dir)).unwrap();
            std::fs::write(
                ws.path().join(dir).join("Dockerfile"),
                "FROM scratch AS runtime\nCOPY . /app\n",
            )
            .unwrap();
        }
        Workspace {
            ws,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.ws.path().join(rel)
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(rel)).unwrap();
        assert!(text.contains(from), "{rel} has no {from:?}");
        std::fs::write(self.path(rel), text.replacen(from, to, 1)).unwrap();
    }

    /// `fastdeploy <command>` for a push to main, as the runner starts it.
    fn run(&self, command: &str, env: &[(String, String)]) -> Output {
        let mut cmd = fastdeploy(self.ws.path());
        cmd.args(command.split_whitespace())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "push")
            .env(
                "GITHUB_EVENT_PATH",
                repo_root().join("tests/fixtures/events/push-main.json"),
            )
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_SHA", SHA)
            .env("GITHUB_REPOSITORY", "acme/shop")
            .env("GITHUB_WORKSPACE", self.ws.path())
            .env("INPUT_BUILDER", "buildah")
            .envs(env.iter().map(|(k, v)| (k, v)));
        cmd.output().unwrap()
    }

    /// The `error:` line(s) with the temporary directories written as the
    /// table writes them.
    fn error_text(&self, out: &Output) -> String {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let start = stderr
            .find("error: ")
            .unwrap_or_else(|| panic!("no error printed: {stderr}"));
        let text = stderr[start + "error: ".len()..]
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        text.replace(&self.ws.path().display().to_string(), "$GITHUB_WORKSPACE")
            .replace(&self.tmp.path().display().to_string(), "$RUNNER_TEMP")
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The table cell quoting `text`: a double-backtick code span (the texts hold
/// backticks) with `|` escaped for the table.
fn cell(text: &str) -> String {
    format!("`` {} ``", text.replace('|', "\\|"))
}

/// Checks the exit code and that the table quotes `text` in a row ending in
/// that exit code; returns what is wrong, so one run lists every stale row.
fn check_documented(row: &str, out: &Output, text: &str, exit: i32) -> Option<String> {
    if out.status.code() != Some(exit) {
        return Some(format!(
            "{row}: exit {:?}, not {exit}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let quoted = cell(text);
    match DOC.lines().find(|l| l.contains(&quoted)) {
        None => Some(format!("{row}: no row quotes\n{quoted}")),
        Some(line) if !line.trim_end().ends_with(&format!("| {exit} |")) => {
            Some(format!("{row}: the row says another exit code: {line}"))
        }
        Some(_) => None,
    }
}

fn assert_all_documented(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "README.md (## Bad input) is stale:\n{}",
        problems.join("\n")
    );
}

/// Prepares a workspace for one row and returns the extra environment.
type Setup = dyn Fn(&Workspace) -> Vec<(String, String)>;

#[test]
fn the_bad_input_table_quotes_what_the_binary_prints() {
    let plan = |setup: &Setup, command: &str| {
        let w = Workspace::new();
        let extra = setup(&w);
        let out = w.run(command, &extra);
        let text = if out.status.success() {
            String::new()
        } else {
            w.error_text(&out)
        };
        (out, text)
    };
    let rows: Vec<(&str, &str, Box<Setup>)> = vec![
        (
            "missing config",
            "plan",
            Box::new(|_| env(&[("INPUT_CONFIG", "deploy/fastdeploy.yml")])),
        ),
        (
            "unreadable config",
            "plan",
            Box::new(|w| {
                std::fs::write(w.path("fastdeploy.yml"), b"version: 1\n\xff\xfe\n").unwrap();
                vec![]
            }),
        ),
        (
            "YAML typo",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "    service: backend ",
                    "    servce: backend ",
                );
                vec![]
            }),
        ),
        (
            "unknown component",
            "plan",
            Box::new(|_| env(&[("INPUT_COMPONENTS", "frontend")])),
        ),
        (
            "`smoke-test-path` without a URL",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_ENVIRONMENT", "staging"),
                    ("INPUT_COMPONENTS", "lambda"),
                    ("INPUT_SMOKE_TEST_PATH", "/health"),
                ])
            }),
        ),
        (
            "unknown CodeBuild compute type",
            "plan",
            Box::new(|_| env(&[("INPUT_CODEBUILD_COMPUTE_TYPE", "BUILD_GENERAL1_HUGE")])),
        ),
        (
            "unknown environment",
            "plan",
            Box::new(|_| env(&[("INPUT_ENVIRONMENT", "qa")])),
        ),
        (
            "malformed event file",
            "plan",
            Box::new(|w| {
                let p = w.tmp.path().join("event.json");
                std::fs::write(&p, "{ \"ref\": \"refs/heads/main\",\n").unwrap();
                vec![("GITHUB_EVENT_PATH".into(), p.display().to_string())]
            }),
        ),
        (
            "input out of range",
            "plan",
            Box::new(|_| env(&[("INPUT_WAIT_MINUTES", "0")])),
        ),
        (
            "bad boolean",
            "plan",
            Box::new(|_| env(&[("INPUT_ROLLBACK", "yes")])),
        ),
        (
            "bad builder",
            "plan",
            Box::new(|_| env(&[("INPUT_BUILDER", "kaniko")])),
        ),
        (
            "promote without promote-from",
            "plan",
            Box::new(|_| env(&[("INPUT_COMMAND", "promote")])),
        ),
        (
            "promote from an unknown environment",
            "plan",
            Box::new(|_| env(&[("INPUT_COMMAND", "promote"), ("INPUT_PROMOTE_FROM", "qa")])),
        ),
        (
            "`to` without rollback",
            "plan",
            Box::new(|_| env(&[("INPUT_TO", "41")])),
        ),
        (
            "rollback on a pull request",
            "plan",
            Box::new(|_| {
                let event = repo_root().join("tests/fixtures/events/pull_request.json");
                vec![
                    ("INPUT_COMMAND".into(), "rollback".into()),
                    ("GITHUB_EVENT_NAME".into(), "pull_request".into()),
                    ("GITHUB_EVENT_PATH".into(), event.display().to_string()),
                ]
            }),
        ),
        (
            "`to` for several components",
            "plan",
            Box::new(|_| env(&[("INPUT_COMMAND", "rollback"), ("INPUT_TO", "41")])),
        ),
        (
            "context outside workspace",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("INPUT_CONTEXT", "../outside"),
                ])
            }),
        ),
        (
            "missing Dockerfile",
            "run",
            Box::new(|w| {
                std::fs::remove_file(w.path("backend/Dockerfile")).unwrap();
                env(&[("INPUT_COMPONENTS", "backend")])
            }),
        ),
        (
            "missing target stage",
            "run",
            Box::new(|w| {
                w.edit("fastdeploy.yml", "target: runtime", "target: runtim");
                env(&[("INPUT_COMPONENTS", "backend")])
            }),
        ),
        (
            "unparsable .dockerignore line",
            "run",
            Box::new(|w| {
                std::fs::write(w.path("backend/.dockerignore"), "node_modules\n[z-a]\n").unwrap();
                env(&[("INPUT_COMPONENTS", "backend")])
            }),
        ),
        (
            "codebuild without a project",
            "plan",
            Box::new(|_| env(&[("INPUT_BUILDER", "codebuild")])),
        ),
        (
            "repository name ECR rejects",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("INPUT_REPOSITORY", "acme//backend"),
                ])
            }),
        ),
        (
            "two deploy targets",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "    function: acme-thumbnails ",
                    "    service: thumbs\n    function: acme-thumbnails ",
                );
                vec![]
            }),
        ),
        (
            "`targets` beside a single-target key",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "    function: acme-thumbnails ",
                    "    targets:\n      - rule: nightly\n    function: acme-thumbnails ",
                );
                vec![]
            }),
        ),
        (
            "two targets in one `targets` item",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "    function: acme-thumbnails  # Lambda function, package type Image: new version, alias moved\n    alias: live\n",
                    "    targets:\n      - function: acme-thumbnails\n        rule: nightly\n",
                );
                vec![]
            }),
        ),
        (
            "secret spelled neither ssm: nor secretsmanager:",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "DATABASE_URL: ssm:/acme/production/database-url",
                    "DATABASE_URL: vault:/acme/db",
                );
                vec![]
            }),
        ),
        (
            "env value that is not a string",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "      LOG_LEVEL: info",
                    "      LOG_LEVEL: [info]",
                );
                vec![]
            }),
        ),
        (
            "the same name in env and secrets",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "      DJANGO_SETTINGS_MODULE: shop.settings",
                    "      DATABASE_URL: postgres://db/shop",
                );
                vec![]
            }),
        ),
        (
            "a name Lambda reserves",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "      THUMBNAIL_SIZE: \"256\"",
                    "      AWS_REGION: eu-west-1",
                );
                vec![]
            }),
        ),
        (
            "secrets for a Lambda function",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "      THUMBNAIL_SIZE: \"256\"",
                    "      THUMBNAIL_SIZE: \"256\"\n    secrets:\n      API_KEY: ssm:/acme/thumbs/api-key",
                );
                vec![]
            }),
        ),
        (
            "smoke-test-event that is not JSON",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "lambda"),
                    ("INPUT_SMOKE_TEST_EVENT", "{bucket: uploads}"),
                ])
            }),
        ),
        (
            "smoke-test-event on an ECS component",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("INPUT_SMOKE_TEST_EVENT", "{}"),
                ])
            }),
        ),
        (
            "lambda-shift that is not a share and minutes",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "lambda"),
                    ("INPUT_LAMBDA_SHIFT", "10%"),
                ])
            }),
        ),
        (
            "lambda-shift on an ECS component",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("INPUT_LAMBDA_SHIFT", "10%/5m"),
                ])
            }),
        ),
        (
            "bake-minutes without alarms",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("INPUT_BAKE_MINUTES", "10"),
                ])
            }),
        ),
        (
            "an alarm that is only `*`",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("INPUT_ALARMS", "api-5xx, *"),
                ])
            }),
        ),
        (
            "alias name Lambda rejects",
            "plan",
            Box::new(|_| env(&[("INPUT_COMPONENTS", "lambda"), ("INPUT_ALIAS", "42")])),
        ),
        (
            "before-deploy on a Lambda component",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "lambda"),
                    ("INPUT_BEFORE_DEPLOY", "python manage.py migrate"),
                ])
            }),
        ),
        (
            "empty before-deploy",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("INPUT_BEFORE_DEPLOY", "''"),
                ])
            }),
        ),
        (
            "role-to-assume not a role ARN",
            "plan",
            Box::new(|_| env(&[("INPUT_ROLE_TO_ASSUME", "deploy")])),
        ),
        (
            "build-secrets line",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("INPUT_BUILD_SECRETS", "npm"),
                ])
            }),
        ),
        (
            "build secret from an unset variable",
            "plan",
            Box::new(|_| {
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("INPUT_BUILD_SECRETS", "npm=NPM_TOKEN"),
                ])
            }),
        ),
        (
            "role-duration-seconds out of range",
            "plan",
            Box::new(|_| {
                env(&[
                    (
                        "INPUT_ROLE_TO_ASSUME",
                        "arn:aws:iam::123456789012:role/deploy",
                    ),
                    ("INPUT_ROLE_DURATION_SECONDS", "86400"),
                ])
            }),
        ),
        (
            "no id-token: write permission",
            "plan",
            Box::new(|_| {
                env(&[(
                    "INPUT_ROLE_TO_ASSUME",
                    "arn:aws:iam::123456789012:role/deploy",
                )])
            }),
        ),
        (
            "no AWS region",
            "run",
            Box::new(|w| {
                w.edit("fastdeploy.yml", "  aws-region: eu-west-1\n", "");
                let missing = w.tmp.path().join("no-aws-config").display().to_string();
                env(&[
                    ("INPUT_COMPONENTS", "backend"),
                    ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE0000000000"),
                    ("AWS_SECRET_ACCESS_KEY", "testing"),
                    ("AWS_CONFIG_FILE", &missing),
                    ("AWS_SHARED_CREDENTIALS_FILE", &missing),
                    ("AWS_EC2_METADATA_DISABLED", "true"),
                ])
            }),
        ),
        (
            "Beanstalk environment without its application",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "    service: admin",
                    "    beanstalk-environment: shop-prod",
                );
                env(&[("INPUT_COMPONENTS", "admin-frontend")])
            }),
        ),
        (
            "strategy: swap with one environment",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "    service: admin",
                    "    beanstalk-application: shop\n    beanstalk-environment: shop-blue",
                );
                env(&[
                    ("INPUT_COMPONENTS", "admin-frontend"),
                    ("INPUT_STRATEGY", "swap"),
                ])
            }),
        ),
        (
            "strategy: swap without beanstalk-cname",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "    service: admin",
                    "    beanstalk-application: shop\n    beanstalk-environment: shop-blue,shop-green",
                );
                env(&[
                    ("INPUT_COMPONENTS", "admin-frontend"),
                    ("INPUT_STRATEGY", "swap"),
                ])
            }),
        ),
        (
            "two Beanstalk environments without strategy: swap",
            "plan",
            Box::new(|w| {
                w.edit(
                    "fastdeploy.yml",
                    "    service: admin",
                    "    beanstalk-application: shop\n    beanstalk-environment: shop-blue,shop-green",
                );
                env(&[("INPUT_COMPONENTS", "admin-frontend")])
            }),
        ),
        (
            "strategy: swap on an ECS component",
            "plan",
            Box::new(|_| env(&[("INPUT_COMPONENTS", "backend"), ("INPUT_STRATEGY", "swap")])),
        ),
    ];
    let mut problems = Vec::new();
    for (row, command, setup) in rows {
        let (out, text) = plan(setup.as_ref(), command);
        problems.extend(check_documented(row, &out, &text, 2));
    }
    assert_all_documented(problems);
}

/// The docker rows, against the sandbox's dockerd and its docker CLI: a
/// builder that does not exist and a daemon that does not answer stop the
/// plan itself.
#[test]
fn the_bad_input_table_quotes_what_the_binary_prints_against_docker() {
    let docker = crate::support::sandbox::Docker::shared().env();
    let with_docker = |extra: &[(&str, &str)]| {
        let mut e = docker.clone();
        e.push(("INPUT_BUILDER".into(), "buildx".into()));
        e.extend(env(extra));
        e
    };
    let mut problems = Vec::new();
    for (row, extra) in [
        (
            "buildx builder that does not exist",
            &[("INPUT_BUILDX_BUILDER", "team-fleet")][..],
        ),
        (
            "docker daemon that does not answer",
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")][..],
        ),
    ] {
        let w = Workspace::new();
        let out = w.run("plan", &with_docker(extra));
        let text = w.error_text(&out);
        problems.extend(check_documented(row, &out, &text, 2));
    }
    assert_all_documented(problems);
}

/// The AWS rows, against moto: ECS preflight errors and the task definition
/// file, all before anything is built.
#[test]
fn the_bad_input_table_quotes_what_the_binary_prints_against_aws() {
    let moto = Moto::start();
    moto.control("ecs/config", json!({"step_seconds": 0.05}));
    block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config().await);
        ecs.create_cluster()
            .cluster_name("prod")
            .send()
            .await
            .unwrap();
        ecs.register_task_definition()
            .family("backend")
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("app")
                    .image("nginx")
                    .memory(128)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        for s in ["admin", "going"] {
            ecs.create_service()
                .cluster("prod")
                .service_name(s)
                .task_definition("backend:1")
                .desired_count(1)
                .send()
                .await
                .unwrap();
        }
    });
    moto.control(
        "ecs/service-status",
        json!({"cluster": "prod", "service": "going", "status": "DRAINING"}),
    );
    let aws = |extra: &[(&str, &str)]| {
        let mut e = moto.env();
        e.push((
            "INPUT_AWS_REGION".into(),
            crate::support::sandbox::REGION.into(),
        ));
        e.push(("FASTDEPLOY_DELAY_SCALE".into(), "0.01".into()));
        e.extend(env(extra));
        e
    };
    let problems = std::cell::RefCell::new(Vec::new());
    let go = |row: &str, w: &Workspace, extra: &[(&str, &str)]| {
        let out = w.run("run", &aws(extra));
        let text = w.error_text(&out);
        problems
            .borrow_mut()
            .extend(check_documented(row, &out, &text, 2));
    };

    let w = Workspace::new();
    w.edit("fastdeploy.yml", "cluster: prod", "cluster: nope");
    go(
        "cluster that does not exist",
        &w,
        &[("INPUT_COMPONENTS", "backend")],
    );
    go(
        "service that does not exist",
        &Workspace::new(),
        &[("INPUT_COMPONENTS", "backend")],
    );
    go(
        "DRAINING service",
        &Workspace::new(),
        &[("INPUT_COMPONENTS", "backend"), ("INPUT_SERVICE", "going")],
    );
    go(
        "parameter that does not exist",
        &Workspace::new(),
        &[("INPUT_COMPONENTS", "backend"), ("INPUT_SERVICE", "admin")],
    );
    go(
        "before-deploy container not in the task definition",
        &Workspace::new(),
        &[
            ("INPUT_COMPONENTS", "admin-frontend"),
            ("INPUT_BEFORE_DEPLOY", "migrate"),
            ("INPUT_BEFORE_DEPLOY_CONTAINER", "worker"),
        ],
    );
    go(
        "CodeBuild project that does not exist",
        &Workspace::new(),
        &[
            ("INPUT_COMPONENTS", "lambda"),
            ("INPUT_BUILDER", "codebuild"),
            ("INPUT_CODEBUILD_PROJECT", "shop-images"),
        ],
    );
    go(
        "Lambda function that does not exist",
        &Workspace::new(),
        &[("INPUT_COMPONENTS", "lambda")],
    );
    block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config().await);
        ecr.create_repository()
            .repository_name("acme/backend")
            .send()
            .await
            .unwrap();
    });
    let out = Workspace::new().run(
        "cache prune",
        &aws(&[
            ("INPUT_COMPONENTS", "backend"),
            ("INPUT_CACHE_REPOSITORY", "acme/backend"),
        ]),
    );
    let text = Workspace::new().error_text(&out);
    problems.borrow_mut().extend(check_documented(
        "cache prune on a repository without cache",
        &out,
        &text,
        2,
    ));
    block_on(crate::support::sandbox::create_codebuild_project(
        &moto,
        "shop-builds",
    ));
    go(
        "platform CodeBuild has no machines for",
        &Workspace::new(),
        &[
            ("INPUT_COMPONENTS", "backend"),
            ("INPUT_BUILDER", "codebuild"),
            ("INPUT_CODEBUILD_PROJECT", "shop-builds"),
            ("INPUT_PLATFORMS", "linux/amd64,linux/s390x"),
        ],
    );
    crate::support::sandbox::create_role(&moto, "thumbs");
    block_on(async {
        let lambda = aws_sdk_lambda::Client::new(&moto.sdk_config().await);
        lambda
            .create_function()
            .function_name("acme-thumbnails")
            .runtime(aws_sdk_lambda::types::Runtime::Python312)
            .handler("app.handler")
            .role("arn:aws:iam::123456789012:role/thumbs")
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(
                        crate::lambda::zip_with_one_file(),
                    ))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    go(
        "Zip function",
        &Workspace::new(),
        &[("INPUT_COMPONENTS", "lambda")],
    );

    // Elastic Beanstalk: application `shop` with `shop-prod` (Docker),
    // `shop-py` (Python) and `shop-old` (terminated); `admin-frontend`
    // deploys there instead of to ECS.
    block_on(async {
        crate::beanstalk::seed(&moto, vec![]).await;
        let eb = aws_sdk_elasticbeanstalk::Client::new(&moto.sdk_config().await);
        let python = "64bit Amazon Linux 2023 v4.3.0 running Python 3.11";
        eb.create_environment()
            .application_name("shop")
            .environment_name("shop-py")
            .solution_stack_name(python)
            .send()
            .await
            .unwrap();
        let docker = "64bit Amazon Linux 2023 v4.3.0 running Docker";
        eb.create_environment()
            .application_name("shop")
            .environment_name("shop-old")
            .solution_stack_name(docker)
            .send()
            .await
            .unwrap();
        eb.terminate_environment()
            .environment_name("shop-old")
            .send()
            .await
            .unwrap();
    });
    let beanstalk = |application: &str, environment: &str, more: &str| {
        let w = Workspace::new();
        let keys = format!(
            "    beanstalk-application: {application}\n    beanstalk-environment: {environment}\n    ports: [8080]{more}"
        );
        w.edit("fastdeploy.yml", "    service: admin", &keys);
        w
    };
    let admin = [("INPUT_COMPONENTS", "admin-frontend")];
    go(
        "Elastic Beanstalk application that does not exist",
        &beanstalk("shopp", "shop-prod", ""),
        &admin,
    );
    go(
        "Elastic Beanstalk environment that does not exist",
        &beanstalk("shop", "shop-production", ""),
        &admin,
    );
    go(
        "Elastic Beanstalk environment on another platform",
        &beanstalk("shop", "shop-py", ""),
        &admin,
    );
    go(
        "terminated Elastic Beanstalk environment",
        &beanstalk("shop", "shop-old", ""),
        &admin,
    );
    let w = beanstalk("shop", "shop-prod", "");
    std::fs::create_dir_all(w.path("admin/.ebextensions")).unwrap();
    std::fs::write(
        w.path("admin/.ebextensions/01-packages.config"),
        "packages:\n  yum:\n    git: []\n   jq: []\n",
    )
    .unwrap();
    go("unparsable .ebextensions file", &w, &admin);
    let w = beanstalk("shop", "shop-prod", "");
    std::fs::create_dir_all(w.path("admin/.platform/hooks/predeploy")).unwrap();
    std::fs::write(
        w.path("admin/.platform/hooks/predeploy/01-migrate.sh"),
        "#!/bin/sh\n./manage.py migrate\n",
    )
    .unwrap();
    go(".platform hook that is not executable", &w, &admin);
    // `bundle: source`: the context (what .dockerignore leaves, as the
    // context guard measured it) is small; `.ebignore`, which decides the
    // bundle as it does for the EB CLI, lets a 600 MB virtualenv and
    // node_modules in (sparse files: no disk, no time).
    let w = beanstalk("shop", "shop-prod", "\n    bundle: source");
    for (path, mb) in [
        ("admin/.venv/lib/libtorch_cpu.so", 320u64),
        ("admin/node_modules/swc/next-swc.node", 280),
    ] {
        std::fs::create_dir_all(w.path(path).parent().unwrap()).unwrap();
        std::fs::File::create(w.path(path))
            .unwrap()
            .set_len(mb * 1_000_000)
            .unwrap();
    }
    std::fs::write(w.path("admin/.dockerignore"), ".venv\nnode_modules\n").unwrap();
    std::fs::write(w.path("admin/.ebignore"), "*.log\n").unwrap();
    go("source bundle over EB's limit", &w, &admin);
    let w = beanstalk("shop", "shop-prod", "\n    bundle: source");
    std::fs::write(w.path("admin/.ebignore"), "Dockerfile*\n").unwrap();
    go("source bundle without a Dockerfile at its root", &w, &admin);
    for (row, text) in [
        (
            "task definition: unknown field",
            r#"{"family": "backend", "containerDefinitions": [{"name": "app", "image": "x"}], "memry": "512"}"#,
        ),
        ("task definition: not JSON", "{\"family\": \"backend\",\n"),
    ] {
        let w = Workspace::new();
        std::fs::write(w.path("td.json"), text).unwrap();
        go(
            row,
            &w,
            &[
                ("INPUT_COMPONENTS", "admin-frontend"),
                ("INPUT_TASK_DEFINITION", "td.json"),
            ],
        );
    }

    // A Slack webhook URL without a scheme is a warning; the run (a
    // build-only component on CodeBuild) still succeeds.
    block_on(async {
        crate::support::sandbox::create_codebuild_project(&moto, "builds").await;
    });
    let digest = format!("sha256:{}", "ab".repeat(32));
    moto.control(
        "codebuild/config",
        json!({"phase_seconds": 0.01, "outcome": "SUCCEEDED", "exported": {"FASTDEPLOY_IMAGE_DIGEST": digest}}),
    );
    let w = Workspace::new();
    // A build-only component: the example's lambda without its function.
    w.edit(
        "fastdeploy.yml",
        "    function: acme-thumbnails ",
        "    # function: acme-thumbnails ",
    );
    w.edit("fastdeploy.yml", "    alias: live", "    # alias: live");
    for line in [
        "    smoke-test-event:",
        "      bucket: acme-uploads",
        "      key: smoke/sample.jpg",
    ] {
        w.edit("fastdeploy.yml", line, &format!("#{line}"));
    }
    let out = w.run(
        "run",
        &aws(&[
            ("INPUT_COMPONENTS", "lambda"),
            ("INPUT_BUILDER", "codebuild"),
            ("INPUT_CODEBUILD_PROJECT", "builds"),
            (
                "INPUT_SLACK_WEBHOOK_URL",
                "hooks.slack.com/services/T0/B0/XXXX",
            ),
        ]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let warning = stdout
        .lines()
        .find_map(|l| l.strip_prefix("::warning title=fastdeploy%3A Slack reporting::"))
        .unwrap_or_else(|| panic!("no Slack warning: {stdout}"))
        .to_string();
    problems
        .borrow_mut()
        .extend(check_documented("bad Slack webhook URL", &out, &warning, 0));
    assert_all_documented(problems.into_inner());
}
