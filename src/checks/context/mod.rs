//! Context guard: the build context exactly as BuildKit sends it (`.dockerignore` with moby semantics), its size, its largest entries and the usual offenders, checked before anything is built.
//!
//! [`scan`] lists the context (a stat-only walk, see [`walk`]), [`check_limits`]
//! turns its size into warnings or a bad-input error before any build starts,
//! [`content_hash`] hashes the file set and contents for the content tag, and
//! [`summary_line`] is the one log line.

pub mod dockerignore;
pub mod offenders;
pub mod walk;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;

pub use dockerignore::IgnoreFile;
pub use offenders::Offender;
pub use walk::{Entry, EntryKind, Matching};

use crate::error::BadInput;
use crate::outcome::Warning;

/// How many of the largest files and directories a report keeps.
const TOP: usize = 10;
/// Offenders smaller than this are listed in the report but not warned about.
const OFFENDER_WARN_BYTES: u64 = crate::units::MB;

/// What the builder would receive.
#[derive(Debug, Clone, Serialize)]
pub struct ContextReport {
    /// The context directory.
    pub root: PathBuf,
    /// The ignore file that applies (`<Dockerfile>.dockerignore` or `.dockerignore`), if any.
    pub ignore_file: Option<PathBuf>,
    pub pattern_count: usize,
    /// Bytes of regular files.
    pub total_bytes: u64,
    /// Entries that are not directories (files, symlinks, special files).
    pub file_count: u64,
    pub dir_count: u64,
    /// Largest files, biggest first: (path, bytes).
    pub largest_files: Vec<(String, u64)>,
    /// Largest directories up to two levels deep, biggest first: (path, bytes inside).
    pub largest_dirs: Vec<(String, u64)>,
    pub offenders: Vec<Offender>,
    /// Excluded directories the scan did not need to enter.
    pub skipped_dirs: u64,
    pub scan_seconds: f64,
    /// Whose reading of the patterns the file set follows.
    pub matching: Matching,
    #[serde(skip)]
    entries: Vec<Entry>,
}

impl ContextReport {
    /// Every entry the builder receives, sorted by path (directories too).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries that are not directories.
    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.kind != EntryKind::Dir)
    }
}

/// The ignore file BuildKit uses: `<Dockerfile>.dockerignore` beside the
/// Dockerfile when it exists, otherwise `.dockerignore` at the context root.
pub fn ignore_file_for(context_dir: &Path, dockerfile: &Path) -> Option<PathBuf> {
    let mut beside = dockerfile.as_os_str().to_owned();
    beside.push(".dockerignore");
    let beside = PathBuf::from(beside);
    [beside, context_dir.join(".dockerignore")]
        .into_iter()
        .find(|p| p.is_file())
}

impl From<crate::plan::BuilderKind> for Matching {
    fn from(kind: crate::plan::BuilderKind) -> Matching {
        match kind {
            crate::plan::BuilderKind::Buildah => Matching::Buildah,
            crate::plan::BuilderKind::Buildx | crate::plan::BuilderKind::Codebuild => {
                Matching::BuildKit
            }
        }
    }
}

/// Lists the build context the way BuildKit sends it and measures it.
/// User errors (a missing context directory, an ignore-file line that cannot
/// be parsed) are [`BadInput`] naming the path and line.
pub fn scan(context_dir: &Path, dockerfile: &Path) -> anyhow::Result<ContextReport> {
    scan_for(context_dir, dockerfile, Matching::BuildKit)
}

/// [`scan`] for a given builder's reading of the ignore patterns.
pub fn scan_for(
    context_dir: &Path,
    dockerfile: &Path,
    matching: Matching,
) -> anyhow::Result<ContextReport> {
    let started = Instant::now();
    match std::fs::metadata(context_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(BadInput::other(format!(
                "the build context {} is not a directory; set `context` to a directory in the repository",
                context_dir.display()
            ))
            .into());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BadInput::other(format!(
                "the build context directory {} does not exist; set `context` to a directory in the repository",
                context_dir.display()
            ))
            .into());
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "reading the build context directory {}",
                    context_dir.display()
                )
            });
        }
    }
    let ignore_path = ignore_file_for(context_dir, dockerfile);
    let ignore = match &ignore_path {
        Some(p) => IgnoreFile::read(p)?,
        None => IgnoreFile::default(),
    };
    let walked = walk::walk(context_dir, &ignore, matching)?;
    let mut report = summarise(context_dir, walked.entries);
    report.ignore_file = ignore_path;
    report.pattern_count = ignore.patterns.len();
    report.skipped_dirs = walked.skipped_dirs;
    report.matching = matching;
    report.scan_seconds = started.elapsed().as_secs_f64();
    tracing::debug!(
        files = report.file_count,
        bytes = report.total_bytes,
        skipped_dirs = report.skipped_dirs,
        seconds = report.scan_seconds,
        "scanned the build context"
    );
    Ok(report)
}

/// Totals, the largest entries and offenders of a sorted entry list.
fn summarise(root: &Path, entries: Vec<Entry>) -> ContextReport {
    let mut total_bytes = 0;
    let mut file_count = 0;
    let mut dir_count = 0;
    let mut dirs: HashMap<&str, u64> = HashMap::new();
    for e in &entries {
        if e.kind == EntryKind::Dir {
            dir_count += 1;
            continue;
        }
        file_count += 1;
        total_bytes += e.size;
        // Credit the file to its ancestors up to two levels deep.
        for (i, _) in e.path.match_indices('/').take(2) {
            *dirs.entry(&e.path[..i]).or_default() += e.size;
        }
    }
    let mut largest_dirs: Vec<(String, u64)> =
        dirs.into_iter().map(|(d, b)| (d.to_string(), b)).collect();
    largest_dirs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    largest_dirs.truncate(TOP);
    let mut largest_files: Vec<(String, u64)> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| (e.path.clone(), e.size))
        .collect();
    largest_files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    largest_files.truncate(TOP);
    ContextReport {
        root: root.to_path_buf(),
        ignore_file: None,
        pattern_count: 0,
        total_bytes,
        file_count,
        dir_count,
        largest_files,
        largest_dirs,
        offenders: offenders::find(&entries),
        skipped_dirs: 0,
        scan_seconds: 0.0,
        matching: Matching::BuildKit,
        entries,
    }
}

/// Warning id: the context is above `warn-context-mb`.
pub const RULE_TOO_LARGE: &str = "CTX001";
/// Warning id: a usual offender (`.venv/`, `node_modules/`, ...) is in the context.
pub const RULE_OFFENDER: &str = "CTX002";
/// Every context warning id, for `ignore-checks`.
pub const RULE_IDS: &[&str] = &[RULE_TOO_LARGE, RULE_OFFENDER];

/// Warns above `warn_bytes` and about sizeable offenders; fails with a
/// [`BadInput`] above `max_bytes`, naming the size, the limit, the biggest
/// parts and the lines that would exclude them.
pub fn check_limits(
    report: &ContextReport,
    warn_bytes: u64,
    max_bytes: u64,
) -> anyhow::Result<Vec<Warning>> {
    let ignore = report
        .ignore_file
        .clone()
        .unwrap_or_else(|| report.root.join(".dockerignore"));
    let size = format!(
        "{} in {} files",
        crate::units::bytes(report.total_bytes),
        report.file_count
    );
    if report.total_bytes > max_bytes {
        return Err(BadInput::other(format!(
            "the build context {} is {size}, above max-context-mb ({}); {}; or raise max-context-mb",
            report.root.display(),
            crate::units::bytes(max_bytes),
            advice(report, &ignore)
        ))
        .into());
    }
    let mut warnings = Vec::new();
    if report.total_bytes > warn_bytes {
        warnings.push(Warning {
            rule: Some(RULE_TOO_LARGE.into()),
            severity: crate::outcome::Severity::Warning,
            component: None,
            file: None,
            line: None,
            message: format!(
                "the build context {} is {size}, above warn-context-mb ({}); {}",
                report.root.display(),
                crate::units::bytes(warn_bytes),
                advice(report, &ignore)
            ),
        });
    }
    for o in report
        .offenders
        .iter()
        .filter(|o| o.bytes >= OFFENDER_WARN_BYTES)
    {
        warnings.push(Warning {
            rule: Some(RULE_OFFENDER.into()),
            severity: crate::outcome::Severity::Warning,
            component: None,
            file: None,
            line: None,
            message: format!(
                "{} ({}, {} files) is in the build context: {}; add `{}` to {}",
                o.path,
                crate::units::bytes(o.bytes),
                o.files,
                o.why,
                o.fix_line,
                ignore.display()
            ),
        });
    }
    Ok(warnings)
}

/// "the largest parts: ...; add to <file>: `x`, `y`" for limit messages.
fn advice(report: &ContextReport, ignore: &Path) -> String {
    let parts: Vec<String> = report
        .largest_dirs
        .iter()
        .take(3)
        .map(|(d, b)| format!("{d}/ {}", crate::units::bytes(*b)))
        .collect();
    let mut out = if parts.is_empty() {
        let files: Vec<String> = report
            .largest_files
            .iter()
            .take(3)
            .map(|(f, b)| format!("{f} {}", crate::units::bytes(*b)))
            .collect();
        format!("the largest files: {}", files.join(", "))
    } else {
        format!("the largest directories: {}", parts.join(", "))
    };
    let fixes: Vec<String> = report
        .offenders
        .iter()
        .take(5)
        .map(|o| format!("`{}` ({})", o.fix_line, crate::units::bytes(o.bytes)))
        .collect();
    if fixes.is_empty() {
        out.push_str(&format!(
            "; exclude what the image does not need in {}",
            ignore.display()
        ));
    } else {
        out.push_str(&format!(
            "; add these lines to {}: {}",
            ignore.display(),
            fixes.join(", ")
        ));
    }
    out
}

/// Hex BLAKE3 over the context's entries: for each, in path order, its
/// kind, path, permission bits and content (file bytes or link target).
/// Timestamps and owners are left out: builders do not copy them from the
/// context, so they cannot change the image.
///
/// BLAKE3 rather than SHA-256 because this hash reads every byte the builder
/// would receive on every run: it hashes several times faster per core, and
/// one large file (a data set, a model) is spread over every core instead of
/// pacing the whole check phase on one. The hash only names the context in
/// the content tag; nothing outside fastdeploy has to recompute it.
pub fn content_hash(report: &ContextReport) -> anyhow::Result<String> {
    let root = &report.root;
    let lines: Vec<anyhow::Result<Vec<u8>>> = report
        .entries
        .par_iter()
        .map(|e| {
            let path = e.fs_path(root);
            let (kind, content) = match e.kind {
                EntryKind::File => ('f', hash_file(&path)?),
                EntryKind::Dir => ('d', String::new()),
                EntryKind::Symlink => {
                    let target = std::fs::read_link(&path)
                        .with_context(|| format!("reading the link {}", path.display()))?;
                    ('l', hex::encode(target.as_os_str().as_encoded_bytes()))
                }
                EntryKind::Special => ('s', String::new()),
            };
            let mut line = Vec::with_capacity(e.path.len() + 80);
            line.push(kind as u8);
            line.push(0);
            line.extend_from_slice(e.fs_path(Path::new("")).as_os_str().as_encoded_bytes());
            line.extend_from_slice(
                format!(
                    "\0{:o}\0{content}\n",
                    if e.kind == EntryKind::Symlink {
                        0
                    } else {
                        e.mode
                    }
                )
                .as_bytes(),
            );
            Ok(line)
        })
        .collect();
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"fastdeploy-context-v2\n");
    for line in lines {
        hasher.update(&line?);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Reads of this size go to BLAKE3's multithreaded update: below about
/// 128 KiB splitting costs more than it saves (the blake3 crate's docs).
const PARALLEL_READ: usize = 1024 * 1024;

fn hash_file(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("opening {} in the build context", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; PARALLEL_READ];
    loop {
        let n = read_full(&mut file, &mut buf)
            .with_context(|| format!("reading {} in the build context", path.display()))?;
        if n == PARALLEL_READ {
            hasher.update_rayon(&buf);
        } else {
            hasher.update(&buf[..n]);
        }
        if n < buf.len() {
            break;
        }
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Fills `buf` unless the file ends first; returns how much it read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// One line for the log: size, where the patterns came from, the largest
/// parts and the offenders with their fixes.
pub fn summary_line(report: &ContextReport) -> String {
    let ignore = match &report.ignore_file {
        Some(p) => {
            format!(
                "{} ({} patterns)",
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                report.pattern_count
            )
        }
        None => "no .dockerignore".to_string(),
    };
    let mut line = format!(
        "build context: {} in {} files, {}, scanned in {:.2} s",
        crate::units::bytes(report.total_bytes),
        report.file_count,
        ignore,
        report.scan_seconds
    );
    if let Some((dir, bytes)) = report.largest_dirs.first() {
        line.push_str(&format!(
            "; largest directory {dir}/ {}",
            crate::units::bytes(*bytes)
        ));
    }
    if let Some((file, bytes)) = report.largest_files.first() {
        line.push_str(&format!(
            "; largest file {file} {}",
            crate::units::bytes(*bytes)
        ));
    }
    if !report.offenders.is_empty() {
        let o: Vec<String> = report
            .offenders
            .iter()
            .take(4)
            .map(|o| {
                format!(
                    "{} {} (add `{}`)",
                    o.path,
                    crate::units::bytes(o.bytes),
                    o.fix_line
                )
            })
            .collect();
        line.push_str(&format!("; offenders: {}", o.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests;
