//! The walk that lists the build context: stat-only, parallel across
//! directories, and never entering an excluded directory unless an
//! exception could re-include something inside it (BuildKit's `fsutil`
//! filter walk, which decides the same way).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;

use super::dockerignore::IgnoreFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// Sockets, FIFOs and devices: sent as entries without content.
    Special,
}

/// One entry the builder receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Slash-separated path relative to the context (lossy for names that are not UTF-8).
    pub path: String,
    pub kind: EntryKind,
    /// Bytes of a regular file (0 for everything else).
    pub size: u64,
    /// Permission bits (`0o7777`) as the builder copies them.
    pub mode: u32,
    /// The exact relative path, kept only when `path` had to be made lossy.
    os_path: Option<PathBuf>,
}

impl Entry {
    pub fn new(path: impl Into<String>, kind: EntryKind, size: u64, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind,
            size,
            mode,
            os_path: None,
        }
    }

    /// Where the entry is on disk.
    pub fn fs_path(&self, root: &Path) -> PathBuf {
        root.join(self.os_path.as_deref().unwrap_or(Path::new(&self.path)))
    }
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// Included entries, directories before their contents, sorted by path.
    pub entries: Vec<Entry>,
    /// Excluded directories never entered.
    pub skipped_dirs: u64,
}

/// Which builder's reading of the patterns to follow; they agree on
/// ordinary files and differ in corners.
///
/// BuildKit's walker hands each directory's per-pattern results to its
/// children (`MatchesUsingParentResults`) and a pattern is not evaluated
/// for a path already excluded, so a later exclusion matching only an
/// already-excluded ancestor does not undo an earlier exception (`a`,
/// `!a/b/c`, `a/*` sends `a/b/c`). It enters an excluded directory when an
/// exception has a wildcard, or names a path inside it.
///
/// buildah (1.28, checked against it by tests/it/context_guard.rs) tries
/// every pattern against the path and all its ancestors, where the later
/// line wins, and enters an excluded directory only when an exception's
/// text starts with the directory's path, so `!**/keep` never re-includes
/// anything inside an excluded directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Matching {
    /// docker buildx, CodeBuild (BuildKit's fsutil).
    #[default]
    BuildKit,
    Buildah,
}

/// Lists what the builder would receive from `root` under `ignore`.
pub fn walk(root: &Path, ignore: &IgnoreFile, matching: Matching) -> anyhow::Result<Walked> {
    let (mut entries, skipped_dirs) = visit(root, &Rel::root(), None, ignore, false, matching)?;
    entries.par_sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(Walked {
        entries,
        skipped_dirs,
    })
}

/// A relative path as text (for matching) and, when the text is lossy, as it is on disk.
struct Rel {
    text: String,
    os: Option<PathBuf>,
}

impl Rel {
    fn root() -> Rel {
        Rel {
            text: String::new(),
            os: None,
        }
    }

    fn child(&self, name: &OsStr) -> Rel {
        let lossy = name.to_string_lossy();
        let text = if self.text.is_empty() {
            lossy.to_string()
        } else {
            format!("{}/{lossy}", self.text)
        };
        let exact = self.os.is_none() && name.to_str().is_some();
        let os = (!exact).then(|| {
            self.os
                .clone()
                .unwrap_or_else(|| PathBuf::from(&self.text))
                .join(name)
        });
        Rel { text, os }
    }
}

/// Entries below one directory (not the directory itself) and how many
/// excluded directories below it were skipped.
fn visit(
    dir: &Path,
    rel: &Rel,
    info: Option<&[bool]>,
    ignore: &IgnoreFile,
    excluded: bool,
    matching: Matching,
) -> anyhow::Result<(Vec<Entry>, u64)> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        // fsutil tolerates unreadable directories only when they are excluded.
        Err(e) if excluded && e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Ok((Vec::new(), 0));
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("reading directory {} in the build context", dir.display())
            });
        }
    };
    let mut entries = Vec::new();
    let mut subdirs = Vec::new();
    let mut skipped = 0;
    for item in read {
        let item = item
            .with_context(|| format!("reading directory {} in the build context", dir.display()))?;
        let child = rel.child(&item.file_name());
        let file_type = item
            .file_type()
            .with_context(|| format!("reading the type of {}", item.path().display()))?;
        let (child_excluded, child_info) = match matching {
            _ if ignore.is_empty() => (false, Vec::new()),
            Matching::BuildKit => ignore.matches(&child.text, info),
            Matching::Buildah => (ignore.excludes(&child.text), Vec::new()),
        };
        if file_type.is_dir() {
            let enter = match matching {
                Matching::BuildKit => ignore.must_enter_excluded_dir(&child.text),
                Matching::Buildah => ignore.buildah_enters_excluded_dir(&child.text),
            };
            if child_excluded && !enter {
                skipped += 1;
            } else {
                subdirs.push((item.path(), child, child_info, child_excluded));
            }
            continue;
        }
        if child_excluded {
            continue;
        }
        let meta = item
            .metadata()
            .with_context(|| format!("reading the size of {}", item.path().display()))?;
        let kind = if file_type.is_file() {
            EntryKind::File
        } else if file_type.is_symlink() {
            EntryKind::Symlink
        } else {
            debug_assert!(
                file_type.is_fifo()
                    || file_type.is_socket()
                    || file_type.is_block_device()
                    || file_type.is_char_device()
            );
            EntryKind::Special
        };
        let size = if kind == EntryKind::File {
            meta.len()
        } else {
            0
        };
        entries.push(Entry {
            path: child.text,
            kind,
            size,
            mode: meta.mode() & 0o7777,
            os_path: child.os,
        });
    }
    let below: Vec<anyhow::Result<(Vec<Entry>, u64)>> = subdirs
        .into_par_iter()
        .map(|(path, child, child_info, child_excluded)| {
            let (inside, skipped) = visit(
                &path,
                &child,
                Some(&child_info),
                ignore,
                child_excluded,
                matching,
            )?;
            // An excluded directory is sent only to hold something re-included inside it.
            if child_excluded && inside.is_empty() {
                return Ok((inside, skipped));
            }
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut out = Vec::with_capacity(inside.len() + 1);
            out.push(Entry {
                path: child.text,
                kind: EntryKind::Dir,
                size: 0,
                mode: meta.mode() & 0o7777,
                os_path: child.os,
            });
            out.extend(inside);
            Ok((out, skipped))
        })
        .collect();
    for result in below {
        let (inside, n) = result?;
        entries.extend(inside);
        skipped += n;
    }
    Ok((entries, skipped))
}
