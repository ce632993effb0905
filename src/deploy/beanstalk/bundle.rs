//! The source bundle of an Elastic Beanstalk application version: what goes
//! in it, the checks EB would otherwise fail a deploy on minutes later, and
//! the ZIP itself.
//!
//! - `bundle: image`: a `Dockerrun.aws.json` (version 1) naming the pushed
//!   image by digest, with the component's `.ebextensions/` and `.platform/`
//!   beside it: a few kilobytes whatever the image's size.
//! - `bundle: source`: the build context as the context guard lists it, for
//!   environments that build the `Dockerfile` on each instance. An `.ebignore`
//!   at the context's root decides instead of `.dockerignore`, as it does for
//!   the EB CLI (read with gitignore's rules, translated to the guard's).
//!   What EB needs that a `.dockerignore` keeps out of the image (the root
//!   `Dockerfile`, `.ebextensions/`, `.platform/`) goes in all the same.
//!
//! The ZIP is deterministic (sorted members, fixed times, the files' own
//! permission bits), so its SHA-256 names its content and a re-run of the
//! same content finds the application version it made before.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::checks::context::{self, Entry, EntryKind, IgnoreFile, Matching};
use crate::checks::dockerfile::{Args, Dockerfile, Keyword};
use crate::error::BadInput;

/// EB refuses a source bundle above this many bytes ("Source bundle is empty
/// or exceeds maximum allowed size: 524288000").
pub const MAX_BUNDLE_BYTES: u64 = 524_288_000;

/// Files EB's Docker platform builds or runs from, one of which must be at
/// the root of the bundle.
pub const DOCKER_ROOT_FILES: &[&str] = &["Dockerfile", "Dockerrun.aws.json", "docker-compose.yml"];

/// Directories EB reads deployment configuration from.
const EB_DIRS: &[&str] = &[".ebextensions", ".platform"];

/// One member of the ZIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Slash-separated path inside the ZIP.
    pub name: String,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    File { path: PathBuf, size: u64, mode: u32 },
    Symlink { path: PathBuf },
    Bytes { data: Vec<u8>, mode: u32 },
}

impl Member {
    fn size(&self) -> u64 {
        match &self.body {
            Body::File { size, .. } => *size,
            Body::Symlink { .. } => 0,
            Body::Bytes { data, .. } => data.len() as u64,
        }
    }

    fn mode(&self) -> u32 {
        match &self.body {
            Body::File { mode, .. } | Body::Bytes { mode, .. } => *mode,
            Body::Symlink { .. } => 0o777,
        }
    }

    fn read(&self) -> anyhow::Result<Vec<u8>> {
        match &self.body {
            Body::File { path, .. } => {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))
            }
            Body::Symlink { .. } => Ok(Vec::new()),
            Body::Bytes { data, .. } => Ok(data.clone()),
        }
    }
}

/// What a bundle holds, before it is zipped.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// Sorted by name, no duplicates.
    pub members: Vec<Member>,
    /// The ignore file that chose the members (`.ebignore` or `.dockerignore`).
    pub ignore_file: Option<PathBuf>,
    /// The directory the members come from.
    pub root: PathBuf,
}

impl Contents {
    fn from_map(
        map: BTreeMap<String, Member>,
        root: &Path,
        ignore_file: Option<PathBuf>,
    ) -> Contents {
        Contents {
            members: map.into_values().collect(),
            ignore_file,
            root: root.to_path_buf(),
        }
    }

    /// Bytes of the members' content, uncompressed.
    pub fn bytes(&self) -> u64 {
        self.members.iter().map(Member::size).sum()
    }

    fn has_root_file(&self, name: &str) -> bool {
        self.members.iter().any(|m| m.name == name)
    }
}

/// The members of every entry of `dir` (recursively, nothing ignored),
/// named `<prefix>/<path>`.
fn unfiltered(dir: &Path, prefix: &str, into: &mut BTreeMap<String, Member>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let walked = context::walk::walk(dir, &IgnoreFile::default(), Matching::BuildKit)?;
    for e in walked.entries {
        if let Some(m) = member(dir, &e, prefix) {
            into.insert(m.name.clone(), m);
        }
    }
    Ok(())
}

fn member(root: &Path, e: &Entry, prefix: &str) -> Option<Member> {
    let name = if prefix.is_empty() {
        e.path.clone()
    } else {
        format!("{prefix}/{}", e.path)
    };
    let path = e.fs_path(root);
    let body = match e.kind {
        EntryKind::File => Body::File {
            path,
            size: e.size,
            mode: e.mode,
        },
        EntryKind::Symlink => Body::Symlink { path },
        // Directories are implied by their files; sockets and FIFOs have no content to ship.
        EntryKind::Dir | EntryKind::Special => return None,
    };
    Some(Member { name, body })
}

/// `bundle: image`: `Dockerrun.aws.json` and the component's `.ebextensions/`
/// and `.platform/` (from its context directory, whatever `.dockerignore`
/// says: they configure the environment, not the image).
pub fn image_contents(context_dir: &Path, dockerrun: &str) -> anyhow::Result<Contents> {
    let mut map = BTreeMap::new();
    for dir in EB_DIRS {
        unfiltered(&context_dir.join(dir), dir, &mut map)?;
    }
    let name = "Dockerrun.aws.json".to_string();
    map.insert(
        name.clone(),
        Member {
            name,
            body: Body::Bytes {
                data: dockerrun.as_bytes().to_vec(),
                mode: 0o644,
            },
        },
    );
    Ok(Contents::from_map(map, context_dir, None))
}

/// `bundle: source`: the build context as the context guard lists it, or as
/// `.ebignore` leaves it when there is one.
pub fn source_contents(context_dir: &Path, dockerfile: &Path) -> anyhow::Result<Contents> {
    let ebignore = context_dir.join(".ebignore");
    if ebignore.is_file() {
        let text =
            std::fs::read(&ebignore).with_context(|| format!("reading {}", ebignore.display()))?;
        let translated = gitignore_to_dockerignore(&String::from_utf8_lossy(&text));
        let ignore = IgnoreFile::parse(translated.as_bytes(), Some(ebignore.clone()))
            .map_err(|e| BadInput::other(IgnoreFile::read_error_message(&ebignore, &e)))?;
        let walked = context::walk::walk(context_dir, &ignore, Matching::BuildKit)?;
        let map = walked
            .entries
            .iter()
            .filter_map(|e| member(context_dir, e, ""))
            .map(|m| (m.name.clone(), m))
            .collect();
        return Ok(Contents::from_map(map, context_dir, Some(ebignore)));
    }
    let scan = context::scan_for(context_dir, dockerfile, Matching::BuildKit)?;
    let mut map: BTreeMap<String, Member> = scan
        .entries()
        .iter()
        .filter_map(|e| member(context_dir, e, ""))
        .map(|m| (m.name.clone(), m))
        .collect();
    // A `.dockerignore` keeps these out of the image; EB needs them in the bundle.
    for dir in EB_DIRS {
        unfiltered(&context_dir.join(dir), dir, &mut map)?;
    }
    let root_dockerfile = context_dir.join("Dockerfile");
    if !map.contains_key("Dockerfile")
        && let Ok(meta) = std::fs::metadata(&root_dockerfile)
        && meta.is_file()
    {
        use std::os::unix::fs::MetadataExt;
        let name = "Dockerfile".to_string();
        map.insert(
            name.clone(),
            Member {
                name,
                body: Body::File {
                    path: root_dockerfile,
                    size: meta.len(),
                    mode: meta.mode() & 0o7777,
                },
            },
        );
    }
    Ok(Contents::from_map(
        map,
        context_dir,
        scan.ignore_file.clone(),
    ))
}

/// An `.ebignore` line (gitignore's rules, as the EB CLI reads it) as the
/// `.dockerignore` line that selects the same paths: a pattern without a
/// slash matches at any depth (`**/`), a leading slash anchors it to the
/// root, a trailing slash (directories only) is dropped. Line numbers stay.
pub fn gitignore_to_dockerignore(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_end();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(trimmed);
            out.push('\n');
            continue;
        }
        let (bang, pattern) = match trimmed.strip_prefix('!') {
            Some(rest) => ("!", rest),
            None => ("", trimmed),
        };
        let pattern = pattern.strip_prefix('\\').unwrap_or(pattern);
        let body = pattern.trim_end_matches('/');
        let translated = if let Some(anchored) = body.strip_prefix('/') {
            anchored.to_string()
        } else if body.contains('/') || body.starts_with("**") {
            body.to_string()
        } else {
            format!("**/{body}")
        };
        out.push_str(bang);
        out.push_str(&translated);
        out.push('\n');
    }
    out
}

/// `Dockerrun.aws.json` version 1 for the image, by digest.
pub fn dockerrun(image_uri: &str, ports: &[u16]) -> String {
    let ports: Vec<serde_json::Value> = ports
        .iter()
        .map(|p| serde_json::json!({ "ContainerPort": p }))
        .collect();
    let doc = serde_json::json!({
        "AWSEBDockerrunVersion": "1",
        "Image": { "Name": image_uri, "Update": "true" },
        "Ports": ports,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// The TCP ports the image's final stage (`target`, else the last) exposes,
/// from its `EXPOSE` lines and those of the stages it is built on, in order.
/// `Err` names an `EXPOSE` word that cannot be read without building
/// (`EXPOSE $PORT`).
pub fn exposed_ports(df: &Dockerfile, target: Option<&str>) -> Result<Vec<u16>, String> {
    let stage = df.final_stage(target).map_err(|e| e.to_string())?;
    let mut ports = Vec::new();
    let mut unresolved = None;
    for s in df.lineage(stage) {
        for i in s
            .instructions
            .iter()
            .filter(|i| i.keyword == Keyword::Expose)
        {
            let words = match &i.args {
                Args::Shell(text) => text
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>(),
                Args::Exec(words) => words.clone(),
            };
            for w in words {
                let (port, proto) = w.split_once('/').unwrap_or((w.as_str(), "tcp"));
                if !proto.eq_ignore_ascii_case("tcp") {
                    continue;
                }
                let first = port.split('-').next().unwrap_or(port);
                match first.parse::<u16>() {
                    Ok(p) if p > 0 => {
                        if !ports.contains(&p) {
                            ports.push(p);
                        }
                    }
                    _ => {
                        unresolved = unresolved.or(Some(format!("`EXPOSE {w}` (line {})", i.line)))
                    }
                }
            }
        }
    }
    match (ports.is_empty(), unresolved) {
        (true, Some(w)) => Err(w),
        _ => Ok(ports),
    }
}

// ---------------------------------------------------------------------------
// Checks: what EB would refuse or fail on, found before anything is uploaded.

/// The checks of both kinds of bundle: `.platform` hooks and `.ebextensions`
/// files. `what` names the bundle in messages.
pub fn check_config(contents: &Contents, what: &str) -> Result<(), BadInput> {
    check_ebextensions(contents, what)?;
    check_hooks(contents, what)
}

/// The checks of a source bundle: size, what is at its root, then
/// [`check_config`]. `component` and `dockerfile` name what to fix.
pub fn check_source(
    contents: &Contents,
    component: &str,
    dockerfile: &Path,
    what: &str,
) -> Result<(), BadInput> {
    let ignore = match &contents.ignore_file {
        Some(p) => p.clone(),
        None => contents.root.join(".dockerignore"),
    };
    let root_dockerfile = contents.root.join("Dockerfile");
    if dockerfile != root_dockerfile {
        return Err(BadInput::other(format!(
            "{what}: `bundle: source` ships the build context, and Elastic Beanstalk builds the `Dockerfile` at its root, \
             but component `{component}` builds {}; move it to {} (or set `context` to its directory), or use `bundle: image`",
            dockerfile.display(),
            root_dockerfile.display()
        )));
    }
    if !DOCKER_ROOT_FILES.iter().any(|f| contents.has_root_file(f)) {
        // A parent folder at the top: everything one level down.
        let tops: std::collections::BTreeSet<&str> = contents
            .members
            .iter()
            .map(|m| m.name.split('/').next().unwrap_or(""))
            .collect();
        let nested = contents.members.iter().find(|m| {
            DOCKER_ROOT_FILES
                .iter()
                .any(|f| m.name.ends_with(&format!("/{f}")))
        });
        let why = match (tops.len(), nested) {
            (1, Some(m)) => format!(
                "its files are all under a parent folder at the top ({}/, which holds {}), and EB looks at the root only",
                tops.iter().next().unwrap_or(&""),
                m.name
            ),
            _ => format!("its root holds none of {}", DOCKER_ROOT_FILES.join(", ")),
        };
        let excluded = if ignore.is_file() {
            format!(
                "; check that {} does not exclude the Dockerfile",
                ignore.display()
            )
        } else {
            String::new()
        };
        return Err(BadInput::other(format!(
            "{what} has no Dockerfile at its root: {why}; Elastic Beanstalk's Docker platform would fail the deploy \
             (\"Both 'Dockerfile' and 'Dockerrun.aws.json' are missing in your source bundle\"){excluded}, or use `bundle: image`"
        )));
    }
    let total = contents.bytes();
    if total > MAX_BUNDLE_BYTES {
        let entries: Vec<Entry> = contents
            .members
            .iter()
            .map(|m| Entry::new(m.name.clone(), EntryKind::File, m.size(), m.mode()))
            .collect();
        let offenders = context::offenders::find(&entries);
        let mut dirs: BTreeMap<&str, u64> = BTreeMap::new();
        for m in &contents.members {
            if let Some((top, _)) = m.name.split_once('/') {
                *dirs.entry(top).or_default() += m.size();
            }
        }
        let mut dirs: Vec<(&str, u64)> = dirs.into_iter().collect();
        dirs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let largest: Vec<String> = dirs
            .iter()
            .take(3)
            .map(|(d, b)| format!("{d}/ {}", crate::units::bytes(*b)))
            .collect();
        let fixes: Vec<String> = offenders
            .iter()
            .take(5)
            .map(|o| format!("`{}` ({})", o.fix_line, crate::units::bytes(o.bytes)))
            .collect();
        let fix = if fixes.is_empty() {
            format!(
                "exclude what the instances do not need to build the image in {}",
                ignore.display()
            )
        } else {
            format!(
                "add these lines to {}: {}",
                ignore.display(),
                fixes.join(", ")
            )
        };
        return Err(BadInput::other(format!(
            "{what} would hold {} in {} files, above Elastic Beanstalk's limit of 524,288,000 bytes ({}) for a source bundle \
             (\"Source bundle is empty or exceeds maximum allowed size: 524288000\"); the largest directories: {}; {fix}; \
             or use `bundle: image` (a Dockerrun.aws.json of a few kilobytes, whatever the image's size)",
            crate::units::bytes(total),
            contents.members.len(),
            crate::units::bytes(MAX_BUNDLE_BYTES),
            if largest.is_empty() {
                "none".to_string()
            } else {
                largest.join(", ")
            }
        )));
    }
    check_config(contents, what)
}

/// Budgets for `.ebextensions` files, as for the config: a hostile file
/// stops in milliseconds.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 64;
    budget.max_nodes = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_documents = 1;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// `.ebextensions/*.config` (the only files EB reads there, in alphanumeric
/// order) must be YAML or JSON holding a mapping; EB fails the application
/// version otherwise ("configuration files didn't pass validation").
fn check_ebextensions(contents: &Contents, what: &str) -> Result<(), BadInput> {
    for m in &contents.members {
        let Some(file) = m.name.strip_prefix(".ebextensions/") else {
            continue;
        };
        if file.contains('/') || !file.ends_with(".config") {
            continue;
        }
        let data = m
            .read()
            .map_err(|e| BadInput::other(format!("{what}: {e:#}")))?;
        let shown = match &m.body {
            Body::File { path, .. } => path.display().to_string(),
            _ => m.name.clone(),
        };
        let text = String::from_utf8(data).map_err(|_| {
            BadInput::other(format!("{shown} is not UTF-8 text; Elastic Beanstalk reads .ebextensions files as YAML or JSON"))
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let parsed: Result<BTreeMap<String, serde::de::IgnoredAny>, _> =
            serde_saphyr::from_str_with_options(&text, yaml_options());
        if let Err(e) = parsed {
            let message = e.to_string();
            let first = message
                .trim_start_matches("error: ")
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            return Err(BadInput::other(format!(
                "{shown}: {first}; Elastic Beanstalk would fail the application version (\"configuration files didn't pass validation\"): \
                 fix the file so it is valid YAML or JSON holding a mapping (option_settings, packages, files, commands, container_commands, Resources...)"
            )));
        }
    }
    Ok(())
}

/// `.platform/hooks/**` and `.platform/confighooks/**` run as programs on
/// every instance: each must be executable and have LF line endings (a CRLF
/// `#!` line names an interpreter `bash\r` that does not exist).
fn check_hooks(contents: &Contents, what: &str) -> Result<(), BadInput> {
    let mut not_executable = Vec::new();
    let mut crlf = Vec::new();
    for m in &contents.members {
        if !(m.name.starts_with(".platform/hooks/") || m.name.starts_with(".platform/confighooks/"))
        {
            continue;
        }
        let Body::File { path, mode, .. } = &m.body else {
            continue;
        };
        if mode & 0o111 == 0 {
            not_executable.push(m.name.clone());
        }
        let mut head = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
            .map_err(|e| BadInput::other(format!("{what}: reading {}: {e}", path.display())))?;
        if head.windows(2).any(|w| w == b"\r\n") {
            crlf.push(m.name.clone());
        }
    }
    let mut problems = Vec::new();
    if !not_executable.is_empty() {
        problems.push(format!(
            "not executable: {} (run `chmod +x` on them and commit the mode, e.g. `git update-index --chmod=+x {}`)",
            not_executable.join(", "),
            not_executable[0]
        ));
    }
    if !crlf.is_empty() {
        problems.push(format!(
            "CRLF line endings: {} (convert them to LF, e.g. `sed -i 's/\\r$//' {}`, and add `.platform/** text eol=lf` to .gitattributes)",
            crlf.join(", "),
            crlf[0]
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(BadInput::other(format!(
        "{what}: Elastic Beanstalk runs the files under .platform/hooks and .platform/confighooks as programs, and these would fail the deploy: {}",
        problems.join("; ")
    )))
}

// ---------------------------------------------------------------------------
// The ZIP.

/// A written bundle.
#[derive(Debug, Clone)]
pub struct Zipped {
    pub path: PathBuf,
    pub bytes: u64,
    /// Hex SHA-256 of the ZIP.
    pub sha256: String,
    pub members: usize,
}

/// Writes the ZIP to `out`: members sorted, times fixed at 1980-01-01, each
/// member's permission bits kept (hooks stay executable), deflate at level 6.
pub fn write_zip(contents: &Contents, out: &Path) -> anyhow::Result<Zipped> {
    use zip::write::SimpleFileOptions;
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let base = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(6))
        .last_modified_time(zip::DateTime::default());
    for m in &contents.members {
        match &m.body {
            Body::File { path, mode, .. } => {
                zip.start_file(m.name.as_str(), base.unix_permissions(*mode))?;
                let mut f = std::fs::File::open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                std::io::copy(&mut f, &mut zip)
                    .with_context(|| format!("zipping {}", path.display()))?;
            }
            Body::Bytes { data, mode } => {
                zip.start_file(m.name.as_str(), base.unix_permissions(*mode))?;
                zip.write_all(data)?;
            }
            Body::Symlink { path } => {
                let target = std::fs::read_link(path)
                    .with_context(|| format!("reading the link {}", path.display()))?;
                zip.add_symlink(m.name.as_str(), target.to_string_lossy(), base)?;
            }
        }
    }
    let mut writer = zip.finish().context("finishing the ZIP")?;
    writer.flush()?;
    drop(writer);
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(out)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Zipped {
        path: out.to_path_buf(),
        bytes,
        sha256: hex::encode(hasher.finalize()),
        members: contents.members.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ebignore_lines_select_what_gitignore_selects() {
        let text = "# comment\nnode_modules/\n/build\ndocs/*.md\n!keep.txt\n*.log\n\n";
        assert_eq!(
            gitignore_to_dockerignore(text),
            "# comment\n**/node_modules\nbuild\ndocs/*.md\n!**/keep.txt\n**/*.log\n\n"
        );
        let ignore = IgnoreFile::parse(gitignore_to_dockerignore(text).as_bytes(), None).unwrap();
        assert!(ignore.excludes("node_modules/x.js"));
        assert!(ignore.excludes("web/node_modules"));
        assert!(ignore.excludes("build"));
        assert!(
            !ignore.excludes("app/build"),
            "a leading slash anchors the pattern"
        );
        assert!(ignore.excludes("a/b/debug.log"));
    }

    #[test]
    fn dockerrun_names_the_image_by_digest_with_its_ports() {
        let text = dockerrun(
            "1.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:abc",
            &[8080, 9090],
        );
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["AWSEBDockerrunVersion"], "1");
        assert_eq!(
            doc["Image"]["Name"],
            "1.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:abc"
        );
        assert_eq!(
            doc["Ports"],
            serde_json::json!([{"ContainerPort": 8080}, {"ContainerPort": 9090}])
        );
    }

    #[test]
    fn exposed_ports_follow_the_final_stage_and_its_bases() {
        let df = Dockerfile::parse(
            "FROM busybox AS base\nEXPOSE 9000/udp 8000\nFROM base AS app\nEXPOSE 8080/tcp 8000 8443-8444\nFROM busybox AS other\nEXPOSE 1\n",
            Path::new("Dockerfile"),
        )
        .unwrap();
        assert_eq!(exposed_ports(&df, Some("app")), Ok(vec![8000, 8080, 8443]));
        assert_eq!(exposed_ports(&df, None), Ok(vec![1]));
        let df =
            Dockerfile::parse("FROM busybox\nEXPOSE $PORT\n", Path::new("Dockerfile")).unwrap();
        assert_eq!(
            exposed_ports(&df, None),
            Err("`EXPOSE $PORT` (line 2)".to_string())
        );
        let df = Dockerfile::parse("FROM busybox\n", Path::new("Dockerfile")).unwrap();
        assert_eq!(exposed_ports(&df, None), Ok(vec![]));
    }

    fn tree(files: &[(&str, &[u8], u32)]) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for (path, data, mode) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, data).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        dir
    }

    #[test]
    fn the_zip_is_the_same_for_the_same_content_and_keeps_hooks_executable() {
        let dir = tree(&[
            (
                ".ebextensions/01-env.config",
                b"option_settings:\n  - option_name: A\n    value: b\n",
                0o644,
            ),
            (
                ".platform/hooks/predeploy/01.sh",
                b"#!/bin/sh\necho hi\n",
                0o755,
            ),
            ("app/main.py", b"print(1)\n", 0o644),
        ]);
        let contents = image_contents(dir.path(), &dockerrun("r/x@sha256:1", &[80])).unwrap();
        let names: Vec<&str> = contents.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                ".ebextensions/01-env.config",
                ".platform/hooks/predeploy/01.sh",
                "Dockerrun.aws.json"
            ]
        );
        check_config(&contents, "the bundle").unwrap();
        let out = tempfile::tempdir().unwrap();
        let a = write_zip(&contents, &out.path().join("a.zip")).unwrap();
        // Other times on disk change nothing.
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(".ebextensions/01-env.config"))
            .unwrap()
            .set_modified(
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000),
            )
            .unwrap();
        let b = write_zip(&contents, &out.path().join("b.zip")).unwrap();
        assert_eq!(a.sha256, b.sha256);
        let mut z = zip::ZipArchive::new(std::fs::File::open(&a.path).unwrap()).unwrap();
        let hook = z.by_name(".platform/hooks/predeploy/01.sh").unwrap();
        assert_eq!(hook.unix_mode().map(|m| m & 0o777), Some(0o755));
    }

    #[test]
    fn hooks_without_the_executable_bit_or_with_crlf_are_named_with_the_fix() {
        let dir = tree(&[
            (
                ".platform/hooks/prebuild/01.sh",
                b"#!/bin/bash\r\necho hi\r\n",
                0o755,
            ),
            (
                ".platform/confighooks/postdeploy/02.sh",
                b"#!/bin/sh\necho hi\n",
                0o644,
            ),
            (".platform/nginx/conf.d/x.conf", b"server {}\r\n", 0o644),
        ]);
        let contents = image_contents(dir.path(), "{}").unwrap();
        let err = check_config(&contents, "the bundle")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not executable: .platform/confighooks/postdeploy/02.sh"),
            "{err}"
        );
        assert!(
            err.contains("CRLF line endings: .platform/hooks/prebuild/01.sh"),
            "{err}"
        );
        assert!(!err.contains("nginx"), "only hooks run as programs: {err}");
    }

    #[test]
    fn an_ebextensions_file_that_is_not_yaml_is_named_with_its_line() {
        let dir = tree(&[
            (
                ".ebextensions/01-ok.config",
                b"{\"option_settings\": []}\n",
                0o644,
            ),
            (
                ".ebextensions/02-bad.config",
                b"option_settings:\n  - option_name: A\n   value: [b\n",
                0o644,
            ),
            (".ebextensions/readme.txt", b": not read by EB :\n", 0o644),
        ]);
        let contents = image_contents(dir.path(), "{}").unwrap();
        let err = check_config(&contents, "the bundle")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("02-bad.config") && err.contains("line 3"),
            "{err}"
        );
        assert!(!err.contains("01-ok"), "{err}");
    }

    #[test]
    fn a_source_bundle_needs_the_dockerfile_at_its_root_and_ships_eb_config_a_dockerignore_leaves_out()
     {
        let dir = tree(&[
            ("Dockerfile", b"FROM busybox\n", 0o644),
            (
                ".dockerignore",
                b"Dockerfile\n.ebextensions\n.platform\nnode_modules\n",
                0o644,
            ),
            (".ebextensions/01.config", b"commands: {}\n", 0o644),
            (".platform/hooks/predeploy/01.sh", b"#!/bin/sh\n", 0o755),
            ("node_modules/a.js", b"1", 0o644),
            ("app.py", b"1", 0o644),
        ]);
        let df = dir.path().join("Dockerfile");
        let contents = source_contents(dir.path(), &df).unwrap();
        let names: Vec<&str> = contents.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                ".ebextensions/01.config",
                ".platform/hooks/predeploy/01.sh",
                "Dockerfile",
                "app.py"
            ]
        );
        check_source(&contents, "app", &df, "the bundle").unwrap();

        // With an .ebignore, it decides alone (as for the EB CLI).
        std::fs::write(dir.path().join(".ebignore"), "node_modules/\nDockerfile\n").unwrap();
        let contents = source_contents(dir.path(), &df).unwrap();
        assert!(
            contents
                .members
                .iter()
                .all(|m| !m.name.starts_with("node_modules"))
        );
        let err = check_source(&contents, "app", &df, "the bundle")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has no Dockerfile at its root") && err.contains(".ebignore"),
            "{err}"
        );

        let err = check_source(
            &contents,
            "app",
            &dir.path().join("docker/Dockerfile"),
            "the bundle",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("builds the `Dockerfile` at its root"), "{err}");
    }
}
