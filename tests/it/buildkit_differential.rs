//! Differential tests against the sandbox's real BuildKit (dockerd 26.1's,
//! through buildx 0.13), beside the buildah ones in `context_guard.rs` and
//! `dockerfile.rs`:
//!
//! - the context guard's file set (`context::scan_for(.., Matching::BuildKit)`)
//!   against what BuildKit copies with `COPY . /ctx/`, on the generated trees
//!   and `.dockerignore` files of the buildah test, the image's filesystem
//!   exported with `--output type=local`;
//! - the Dockerfile parser's stages (name and `FROM` line) against
//!   `docker buildx build --print=targets,format=json` on generated
//!   Dockerfiles, including ones BuildKit rejects: both must reject.
//!
//! Each builds or asks BuildKit once per case (0.2-0.5 s); the default
//! counts keep each test well under a minute on 2 cores. More cases:
//! `BUILDKIT_DIFF_TREES=300` / `BUILDKIT_DIFF_DOCKERFILES=1000`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use fastdeploy::checks::context::{self, EntryKind, Matching};
use fastdeploy::checks::dockerfile::Dockerfile;

use crate::support::sandbox::Docker;
use crate::support::trees::{generate_ignore, generate_tree, reincluded_under_excluded_dir};

fn count(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The docker CLI on the shared daemon, with a config of this test's own.
struct Buildx {
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Buildx {
    fn new() -> Buildx {
        let dir = tempfile::tempdir().unwrap();
        let config = Docker::shared().new_config(dir.path());
        Buildx { config, _dir: dir }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Docker::shared().command(&self.config);
        cmd.env("BUILDX_EXPERIMENTAL", "1");
        cmd
    }

    /// Builds `FROM scratch` + `COPY . /ctx/` from `dir` and returns what
    /// landed under `/ctx`: (path, is_dir), symlinks as links.
    fn copied(&self, dir: &Path, out: &Path) -> BTreeSet<(String, bool)> {
        let built = self
            .cmd()
            .args(["buildx", "build", "--progress=quiet", "--provenance=false"])
            .arg("--output")
            .arg(format!("type=local,dest={}", out.display()))
            .arg("--file")
            .arg(dir.join("Dockerfile"))
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "buildx build of {}: {}",
            dir.display(),
            String::from_utf8_lossy(&built.stderr)
        );
        let mut files = BTreeSet::new();
        list(&out.join("ctx"), "", &mut files);
        files
    }
}

fn list(dir: &Path, rel: &str, out: &mut BTreeSet<(String, bool)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = entry.file_type().unwrap().is_dir();
        out.insert((path.clone(), is_dir));
        if is_dir {
            list(&entry.path(), &path, out);
        }
    }
}

fn scanned(dir: &Path, matching: Matching) -> BTreeSet<(String, bool)> {
    let report = context::scan_for(dir, &dir.join("Dockerfile"), matching).unwrap();
    report
        .entries()
        .iter()
        .map(|e| (e.path.clone(), e.kind == EntryKind::Dir))
        .collect()
}

#[test]
fn file_set_equals_what_buildkit_copies_on_generated_trees() {
    let buildx = Buildx::new();
    let trees = count("BUILDKIT_DIFF_TREES", 60);
    let (mut failures, mut tricky, mut buildah_differs) = (Vec::new(), 0, 0);
    let work = tempfile::tempdir().unwrap();
    for seed in 0..trees {
        // The buildah test's trees, seed for seed.
        let mut rng = fastrand::Rng::with_seed(seed);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let paths = generate_tree(root, &mut rng);
        std::fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY . /ctx/\n").unwrap();
        let ignore = generate_ignore(&paths, &mut rng);
        if seed % 4 == 3 {
            std::fs::write(root.join("Dockerfile.dockerignore"), &ignore).unwrap();
            std::fs::write(root.join(".dockerignore"), "*\n").unwrap();
        } else {
            std::fs::write(root.join(".dockerignore"), &ignore).unwrap();
        }
        let ours = scanned(root, Matching::BuildKit);
        let theirs = buildx.copied(root, &work.path().join(seed.to_string()));
        tricky += usize::from(reincluded_under_excluded_dir(&ignore, &ours));
        buildah_differs += usize::from(scanned(root, Matching::Buildah) != ours);
        if ours != theirs {
            let only_ours: Vec<_> = ours.difference(&theirs).collect();
            let only_theirs: Vec<_> = theirs.difference(&ours).collect();
            failures.push(format!(
                "seed {seed}: ignore file:\n{ignore}only in our scan: {only_ours:?}\nonly in BuildKit's image: {only_theirs:?}\ntree: {paths:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {trees} trees differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "{buildah_differs} of {trees} trees: buildah's reading of the patterns sends a different set than BuildKit's"
    );
    assert!(
        tricky >= 10,
        "only {tricky} trees re-include something under an excluded directory; the generator lost its edge"
    );
}

/// Stage names BuildKit takes and some it refuses (a digit first, a slash,
/// a space), in the cases people write them.
const NAMES: &[&str] = &[
    "build",
    "Build",
    "BUILD",
    "deps",
    "test-runner",
    "a.b",
    "x_1",
    "runtime",
    "final",
    "base",
    "1abc",
    "a/b",
    "two words",
];

/// Instructions for a stage's body; `{c}` is the line continuation
/// character, `{prev}` an earlier stage's name.
const BODY: &[&str] = &[
    "RUN echo hi",
    "run echo lower-case keyword",
    "RUN echo a {c}\n  && echo b",
    "RUN echo a {c}\n# a comment inside the continuation\n\n  && echo b",
    "RUN <<EOF\necho from a heredoc\nFROM inside the heredoc is not an instruction\nEOF",
    "COPY <<EOF /etc/motd\nFROM scratch AS not-a-stage\nEOF",
    "COPY --from={prev} /a /b",
    "ENV A=1 B=\"two words\"",
    "LABEL x=y {c}\n      z=w",
    "WORKDIR /app",
    "# FROM scratch AS commented-out",
    "",
    "ONBUILD RUN echo later",
    "HEALTHCHECK NONE",
    "CMD [\"sh\", \"-c\", \"echo hi\"]",
    "ARG V=1",
];

/// A generated Dockerfile; most are valid, some are not (an unknown
/// instruction, an invalid stage name, no FROM, an instruction before it).
fn generate_dockerfile(rng: &mut fastrand::Rng) -> String {
    let mut out = String::new();
    let escape = if rng.u8(0..8) == 0 { '`' } else { '\\' };
    if escape == '`' {
        out.push_str("# escape=`\n");
    }
    if rng.bool() {
        out.push_str("# a comment before everything\n");
    }
    let global_b = rng.bool();
    if global_b {
        out.push_str(if rng.bool() {
            "ARG B=scratch\n"
        } else {
            "ARG B=alpine:3.20\n"
        });
    }
    match rng.u8(0..40) {
        0 => return out, // no FROM at all
        1 => out.push_str("RUN echo before any FROM\n"),
        _ => {}
    }
    let mut names: Vec<String> = Vec::new();
    for _ in 0..rng.usize(1..=4) {
        let from = ["FROM", "from", "From"][rng.usize(..3)];
        let base = match rng.u8(0..6) {
            0 if !names.is_empty() => names[rng.usize(..names.len())].clone(),
            1 if global_b => "${B}".to_string(),
            2 => "alpine:3.20".to_string(),
            _ => "scratch".to_string(),
        };
        let platform = if rng.u8(0..6) == 0 {
            " --platform=$BUILDPLATFORM"
        } else {
            ""
        };
        out.push_str(&format!("{from}{platform} {base}"));
        if rng.u8(0..4) != 0 {
            // Mostly valid names; now and then one BuildKit refuses.
            let name = if rng.u8(0..12) == 0 {
                NAMES[rng.usize(..NAMES.len())]
            } else {
                NAMES[rng.usize(..10)]
            };
            let as_ = ["AS", "as", "As"][rng.usize(..3)];
            out.push_str(&format!(" {as_} {name}"));
            names.push(name.to_ascii_lowercase());
        }
        out.push('\n');
        for _ in 0..rng.usize(0..4) {
            let prev = names.last().cloned().unwrap_or_else(|| "0".into());
            let line = BODY[rng.usize(..BODY.len())]
                .replace("{c}", &escape.to_string())
                .replace("{prev}", &prev);
            out.push_str(&line);
            out.push('\n');
        }
        if rng.u8(0..30) == 0 {
            out.push_str("RUNN echo typo\n");
        }
    }
    out
}

/// What BuildKit makes of a Dockerfile: its stages as (name, FROM line), or
/// its error.
fn buildkit_targets(buildx: &Buildx, dir: &Path) -> Result<Vec<(Option<String>, usize)>, String> {
    let out = buildx
        .cmd()
        .args([
            "buildx",
            "build",
            "--progress=quiet",
            "--print=targets,format=json",
            "--file",
        ])
        .arg(dir.join("Dockerfile"))
        .arg(dir)
        .output()
        .unwrap();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let error = stderr
            .lines()
            .find(|l| l.starts_with("ERROR"))
            .unwrap_or(stderr.trim())
            .to_string();
        return Err(error);
    }
    // `--progress=quiet` prints the (dangling) image's id before the JSON.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout[stdout.find('{').unwrap_or(0)..])
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    // Only `ARG`s and no `FROM`: the targets request answers `null` where a
    // build fails (no stage to build). Both count as rejecting the file.
    let Some(targets) = json["targets"].as_array().filter(|t| !t.is_empty()) else {
        return Err("no build stage (targets: null)".into());
    };
    Ok(targets
        .iter()
        .map(|t| {
            (
                t["name"].as_str().map(str::to_string),
                t["location"]["ranges"][0]["start"]["line"]
                    .as_u64()
                    .unwrap() as usize,
            )
        })
        .collect())
}

fn ours(text: &str) -> Result<Vec<(Option<String>, usize)>, String> {
    let df = Dockerfile::parse(text, Path::new("Dockerfile"))
        .map_err(|e| format!("line {}: {}", e.line, e.message))?;
    Ok(df
        .stages()
        .iter()
        .map(|s| (s.name.clone(), s.line()))
        .collect())
}

#[test]
fn stages_equal_buildkits_targets_on_generated_dockerfiles() {
    let buildx = Buildx::new();
    let n = count("BUILDKIT_DIFF_DOCKERFILES", 120);
    let dir = tempfile::tempdir().unwrap();
    let (mut failures, mut rejected) = (Vec::new(), 0);
    for seed in 0..n {
        let mut rng = fastrand::Rng::with_seed(seed);
        let text = generate_dockerfile(&mut rng);
        std::fs::write(dir.path().join("Dockerfile"), &text).unwrap();
        let (ours, theirs) = (ours(&text), buildkit_targets(&buildx, dir.path()));
        rejected += usize::from(theirs.is_err());
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(_), Err(_)) => {}
            _ => failures.push(format!(
                "seed {seed}:\n{text}---\nours:     {ours:?}\nBuildKit: {theirs:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} Dockerfiles read differently:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(
        rejected >= 5 && rejected < n as usize / 2,
        "{rejected} of {n} rejected: the generator should make some bad ones, not mostly"
    );
}
