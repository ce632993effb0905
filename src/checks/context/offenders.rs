//! The usual reasons a build context is too big (virtualenvs, `node_modules`,
//! `.git`, caches, local databases, data sets, build output), found among the
//! entries the builder would receive, each with the `.dockerignore` line that
//! excludes it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::walk::{Entry, EntryKind};

/// Something in the context that usually should not be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offender {
    /// Where it is: the first occurrence, and how many more there are.
    pub path: String,
    /// Bytes and files the builder receives from it.
    pub bytes: u64,
    pub files: u64,
    pub why: String,
    /// The line to append to the ignore file to exclude every occurrence.
    pub fix_line: String,
}

/// Directory names that are offenders wherever they are.
const DIRS: &[(&str, &str)] = &[
    (
        ".git",
        "git history: it changes with every commit, so the build cache never hits, and it is never needed in the image",
    ),
    (
        ".venv",
        "a Python virtualenv built for this machine; install dependencies inside the image instead",
    ),
    (
        "venv",
        "a Python virtualenv built for this machine; install dependencies inside the image instead",
    ),
    (
        "node_modules",
        "npm packages built for this machine; run the install inside the image instead",
    ),
    ("__pycache__", "Python bytecode caches, rebuilt at run time"),
    (
        "dist",
        "build output; rebuild it inside the image (or keep it only if the Dockerfile copies it on purpose)",
    ),
    (
        "build",
        "build output; rebuild it inside the image (or keep it only if the Dockerfile copies it on purpose)",
    ),
];

/// File extensions of local databases.
const DATABASES: &[&str] = &["db", "sqlite", "sqlite3"];

/// File extensions of data sets; flagged when a file is at least [`DATA_SET_MIN_BYTES`].
const DATA_SETS: &[&str] = &[
    "csv", "tsv", "parquet", "feather", "arrow", "h5", "hdf5", "npy", "npz", "pkl", "pickle",
    "jsonl", "ndjson", "tfrecord", "avro", "orc",
];
const DATA_SET_MIN_BYTES: u64 = 1024 * 1024;

#[derive(Default)]
struct Found {
    why: &'static str,
    /// Occurrences (the offending directory or file), in path order.
    roots: Vec<String>,
    bytes: u64,
    files: u64,
    nested: bool,
}

/// Finds offenders among `entries` (sorted by path, directories first).
/// Everything inside an offending directory counts towards it alone.
pub fn find(entries: &[Entry]) -> Vec<Offender> {
    // Keyed by the suggested line, so every occurrence shares one fix.
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    for entry in entries {
        let parts: Vec<&str> = entry.path.split('/').collect();
        let dir_hit = parts.iter().enumerate().find_map(|(i, name)| {
            let is_dir = i + 1 < parts.len() || entry.kind == EntryKind::Dir;
            DIRS.iter()
                .find(|(n, _)| is_dir && n == name)
                .map(|&(name, why)| (i, name, why))
        });
        let (key, root, why, nested) = if let Some((i, name, why)) = dir_hit {
            (format!("**/{name}"), parts[..=i].join("/"), why, i > 0)
        } else if entry.kind == EntryKind::File {
            let Some(ext) = extension(parts[parts.len() - 1]) else {
                continue;
            };
            let why = if DATABASES.contains(&ext.as_str()) {
                "a local database file; the image should reach its database over the network or create it at start"
            } else if DATA_SETS.contains(&ext.as_str()) && entry.size >= DATA_SET_MIN_BYTES {
                "a data set; load it from object storage at run time, or copy only the files the image needs"
            } else {
                continue;
            };
            (
                format!("**/*.{ext}"),
                entry.path.clone(),
                why,
                parts.len() > 1,
            )
        } else {
            continue;
        };
        let f = found.entry(key).or_insert_with(|| Found {
            why,
            ..Found::default()
        });
        if f.roots.last() != Some(&root) {
            f.roots.push(root);
        }
        f.nested |= nested;
        if entry.kind != EntryKind::Dir {
            f.bytes += entry.size;
            f.files += 1;
        }
    }
    let mut out: Vec<Offender> = found
        .into_iter()
        .map(|(key, f)| {
            // A top-level-only directory is fixed by its bare name; once it
            // also appears deeper, the `**/` form covers every occurrence.
            let fix_line = match key.strip_prefix("**/") {
                Some(name) if !f.nested && !name.starts_with('*') && name != "__pycache__" => {
                    name.to_string()
                }
                _ => key,
            };
            let more = f.roots.len() - 1;
            let path = if more == 0 {
                f.roots[0].clone()
            } else {
                format!("{} (+{more} more)", f.roots[0])
            };
            Offender {
                path,
                bytes: f.bytes,
                files: f.files,
                why: f.why.to_string(),
                fix_line,
            }
        })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    out
}

/// Lower-case extension of a file name (`data.CSV` -> `csv`), none for dotfiles.
fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}
