//! What the sandbox benches share: rounds, the median, and writing their
//! results where `scripts/bench` reads them. Included with
//! `#[path = "support/common.rs"] mod common;` beside the sandbox module.

#![allow(dead_code)]

use std::path::PathBuf;

/// `FASTDEPLOY_BENCH_ROUNDS` (a whole number above 0), else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("FASTDEPLOY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Writes `<name>.rows.md` (its rows of the summary table) and `<name>.md`
/// (its section) to target/bench-results, and prints both.
pub fn write_results(name: &str, repo_root: PathBuf, rows: &str, md: &str) {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root.join("target"))
        .join("bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.rows.md")), rows).unwrap();
    std::fs::write(dir.join(format!("{name}.md")), md).unwrap();
    println!("\n{rows}\n{md}");
}
