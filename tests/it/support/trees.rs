//! Generated build-context trees and `.dockerignore` files that exercise
//! moby's matching rules, for the differential tests against buildah and
//! BuildKit.

use std::collections::BTreeSet;
use std::path::Path;

use fastdeploy::checks::context;

const NAMES: &[&str] = &[
    "a",
    "b",
    "src",
    "app",
    "node_modules",
    ".venv",
    ".git",
    "data",
    "with space",
    ".hidden",
    "keep",
    "__pycache__",
    "build",
    "dist",
    "x.py",
    "y.txt",
    "z.log",
    "db.sqlite",
    "a b.md",
    "-dash",
    "ü.txt",
];

/// A generated tree: files and directories (some empty, some symlinks) up
/// to four levels deep. Returns every relative path created.
pub fn generate_tree(root: &Path, rng: &mut fastrand::Rng) -> Vec<String> {
    let mut made = Vec::new();
    fn fill(dir: &Path, rel: &str, depth: usize, rng: &mut fastrand::Rng, made: &mut Vec<String>) {
        let count = rng.usize(1..=if depth == 0 { 9 } else { 5 });
        for _ in 0..count {
            let name = NAMES[rng.usize(..NAMES.len())];
            let path = dir.join(name);
            if path.symlink_metadata().is_ok() {
                continue;
            }
            let child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            match rng.u8(0..10) {
                0..=3 if depth < 4 => {
                    std::fs::create_dir(&path).unwrap();
                    fill(&path, &child, depth + 1, rng, made);
                }
                4 if depth < 4 => std::fs::create_dir(&path).unwrap(),
                5 => std::os::unix::fs::symlink("../elsewhere", &path).unwrap(),
                _ => std::fs::write(&path, name.repeat(rng.usize(0..5))).unwrap(),
            }
            made.push(child);
        }
    }
    fill(root, "", 0, rng, &mut made);
    made
}

/// Fixed lines that exercise moby's rules, and lines derived from the tree.
const LINES: &[&str] = &[
    "node_modules",
    "**/node_modules",
    "/.git",
    "./data",
    "build/",
    "*.log",
    "**/*.txt",
    "src/**/x.py",
    "a/*",
    "**/__pycache__",
    "*/keep",
    "a?",
    ".*",
    "!**/keep",
    "!node_modules/keep",
    "!data/*.txt",
    "with space",
    "!with space/y.txt",
    "# a comment",
    "   padded   ",
    "a/../b",
    "**",
    "!src/**",
    "*",
    "!a",
    "!.dockerignore",
    "!Dockerfile",
    "dist/**",
    "**/a/**/y.txt",
    "[ab]",
    "[^a]*",
    "!*.py",
    "\\-dash",
    "ü.txt",
];

pub fn generate_ignore(paths: &[String], rng: &mut fastrand::Rng) -> String {
    let mut lines = Vec::new();
    // Half the files exclude a top directory and re-include something deep inside it.
    if let Some(deep) = rng
        .bool()
        .then(|| {
            paths
                .iter()
                .filter(|p| p.matches('/').count() >= 2)
                .collect::<Vec<_>>()
        })
        .filter(|d| !d.is_empty())
    {
        let path = deep[rng.usize(..deep.len())];
        let top = path.split('/').next().unwrap();
        lines.push(if rng.bool() {
            top.to_string()
        } else {
            format!("{top}/**")
        });
        lines.push(format!("!{path}"));
    }
    for _ in 0..rng.usize(1..10) {
        if rng.bool() || paths.is_empty() {
            lines.push(LINES[rng.usize(..LINES.len())].to_string());
            continue;
        }
        let path = &paths[rng.usize(..paths.len())];
        let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
        if parts.len() > 1 && rng.u8(0..3) == 0 {
            let i = rng.usize(..parts.len() - 1);
            parts[i] = if rng.bool() { "*".into() } else { "**".into() };
        }
        let mut line = parts.join("/");
        match rng.u8(0..6) {
            0 => line.insert(0, '/'),
            1 => line.insert_str(0, "./"),
            2 => line.push('/'),
            3 => line.push_str("/**"),
            _ => {}
        }
        if rng.u8(0..3) == 0 {
            line.insert(0, '!');
        }
        lines.push(line);
    }
    lines.join("\n") + "\n"
}

/// Whether something sent lies inside a directory the patterns exclude.
pub fn reincluded_under_excluded_dir(ignore: &str, sent: &BTreeSet<(String, bool)>) -> bool {
    let f = context::IgnoreFile::parse(ignore.as_bytes(), None).unwrap();
    sent.iter()
        .any(|(p, _)| p.match_indices('/').any(|(i, _)| f.excludes(&p[..i])))
}
