use super::*;
use std::path::Path;

fn parsed(text: &str, args: &[(&str, &str)]) -> Dockerfile {
    let args = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Dockerfile::parse_with_args(text, Path::new("Dockerfile"), &args).unwrap()
}

fn refs(uses: &[BaseUse]) -> Vec<&str> {
    uses.iter().map(|u| u.reference.as_str()).collect()
}

const MULTI: &str = "ARG BASE=python:3.12-slim\n\
FROM ${BASE} AS build\n\
RUN pip wheel .\n\
FROM node:22-alpine AS unused\n\
FROM --platform=$BUILDPLATFORM \\\n  golang:1.23 AS tools\n\
FROM build AS runtime\n\
COPY --from=tools /go/bin/x /x\n\
COPY --from=ghcr.io/acme/certs:1 /certs /certs\n\
COPY --from=alpine@sha256:0123 /etc/x /x\n\
FROM scratch AS last\n";

#[test]
fn uses_are_the_bases_of_the_stages_built() {
    let df = parsed(MULTI, &[]);
    let uses = uses(&df, Some("runtime"));
    // `unused` is never built, `scratch` and stages are not images, a
    // digest is already pinned.
    assert_eq!(
        refs(&uses),
        ["python:3.12-slim", "golang:1.23", "ghcr.io/acme/certs:1"]
    );
    // A build arg decides which base FROM names.
    let df = parsed(MULTI, &[("BASE", "python:3.13-slim")]);
    assert_eq!(refs(&uses_of(&df))[0], "python:3.13-slim");
    // The last stage (no target): scratch, nothing to resolve.
    assert!(super::uses(&df, None).is_empty());
}

fn uses_of(df: &Dockerfile) -> Vec<BaseUse> {
    uses(df, Some("runtime"))
}

#[test]
fn pin_rewrites_each_resolved_base_and_keeps_the_line_numbers() {
    let df = parsed(MULTI, &[]);
    let uses = uses(&df, Some("runtime"));
    let resolved = vec![
        Resolved {
            reference: "python:3.12-slim".into(),
            digest: "sha256:aaa".into(),
        },
        Resolved {
            reference: "golang:1.23".into(),
            digest: "sha256:bbb".into(),
        },
        Resolved {
            reference: "ghcr.io/acme/certs:1".into(),
            digest: "sha256:ccc".into(),
        },
    ];
    let pinned = pin(MULTI, &uses, &resolved);
    let lines: Vec<&str> = pinned.lines().collect();
    assert_eq!(lines.len(), MULTI.lines().count());
    assert_eq!(lines[1], "FROM python:3.12-slim@sha256:aaa AS build");
    assert_eq!(
        lines[3], "FROM node:22-alpine AS unused",
        "not built: as written"
    );
    assert_eq!(
        lines[4],
        "FROM --platform=$BUILDPLATFORM golang:1.23@sha256:bbb AS tools"
    );
    assert_eq!(lines[5], "", "the continuation is now blank");
    assert_eq!(lines[7], "COPY --from=tools /go/bin/x /x");
    assert_eq!(
        lines[8],
        "COPY --from=ghcr.io/acme/certs:1@sha256:ccc /certs /certs"
    );
    // What the pinned file says is what the parser reads back.
    let again = parsed(&pinned, &[]);
    assert!(uses_of(&again).is_empty(), "every base is pinned now");
}

#[test]
fn an_unresolved_base_stays_as_written() {
    let text = "FROM a:1\r\nRUN x\r\n";
    let df = parsed(text, &[]);
    assert_eq!(pin(text, &uses(&df, None), &[]), text);
    let pinned = pin(
        text,
        &uses(&df, None),
        &[Resolved {
            reference: "a:1".into(),
            digest: "sha256:d".into(),
        }],
    );
    assert_eq!(pinned, "FROM a:1@sha256:d\r\nRUN x\r\n", "CRLF kept");
}

#[test]
fn locations_follow_dockers_normalisation() {
    let at = |r: &str| {
        let l = Location::of(r);
        (l.host, l.repository, l.tag)
    };
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        at("python:3.12-slim"),
        s("docker.io", "library/python", "3.12-slim")
    );
    assert_eq!(
        at("bitnami/redis"),
        s("docker.io", "bitnami/redis", "latest")
    );
    assert_eq!(at("ghcr.io/acme/app:1"), s("ghcr.io", "acme/app", "1"));
    assert_eq!(
        at("127.0.0.1:5000/base:1"),
        s("127.0.0.1:5000", "base", "1")
    );
    assert_eq!(at("localhost/x"), s("localhost", "x", "latest"));
    assert_eq!(Location::of("python").api_host(), "registry-1.docker.io");
}

#[test]
fn the_run_registry_keeps_its_credentials_and_others_are_anonymous() {
    let run = RegistryAuth {
        host: "1.dkr.ecr.eu-west-1.amazonaws.com".into(),
        username: "AWS".into(),
        password: "secret".to_string().into(),
        insecure: false,
    };
    let own = auth_for(
        &Location::of("1.dkr.ecr.eu-west-1.amazonaws.com/base:1"),
        &run,
    );
    assert_eq!(own.username, "AWS");
    let hub = auth_for(&Location::of("python:3"), &run);
    assert_eq!(
        (hub.host.as_str(), hub.username.as_str(), hub.insecure),
        ("registry-1.docker.io", "", false)
    );
    assert!(auth_for(&Location::of("localhost:5000/x"), &run).insecure);
}

#[test]
fn moved_bases_are_named_only_when_nothing_else_changed() {
    let now = vec![
        Resolved {
            reference: "python:3.12-slim".into(),
            digest: "sha256:new".into(),
        },
        Resolved {
            reference: "node:22".into(),
            digest: "sha256:same".into(),
        },
    ];
    let labels = |inputs: &str| {
        BTreeMap::from([
            (INPUTS_LABEL.to_string(), inputs.to_string()),
            (
                BASES_LABEL.to_string(),
                "python:3.12-slim@sha256:old node:22@sha256:same".to_string(),
            ),
        ])
    };
    let moved = moved_since(&labels("content-1"), "content-1", &now).unwrap();
    assert_eq!(moved, vec![now[0].clone()]);
    assert_eq!(
        moved_message(&moved),
        "base `python:3.12-slim` moved to sha256:new"
    );
    assert_eq!(
        moved_since(&labels("content-0"), "content-1", &now),
        None,
        "files changed too"
    );
    assert_eq!(
        moved_since(&BTreeMap::new(), "content-1", &now),
        None,
        "an older image"
    );
    let same = vec![now[1].clone()];
    assert_eq!(moved_since(&labels("content-1"), "content-1", &same), None);
}
