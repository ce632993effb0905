//! The Dockerfile checks against real Dockerfiles: how often each check
//! fires on the corpus in `tests/fixtures/dockerfiles/corpus/` (its README
//! says how it was gathered; `MANIFEST.tsv` names each file's repository,
//! path, commit and hash). A check that fires on most real files is one
//! users learn to ignore, so each rate must stay within the bounds below,
//! and so must the share of files the parser rejects: a regression that
//! makes a check noisy again, or silences it, fails here.
//!
//! The files themselves are the projects' own and are not committed (see
//! the corpus README); without them this test says so and measures nothing.
//! With them, every file must be there with the hash the manifest gives.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fastdeploy::checks::dockerfile::{self, Dockerfile};
use sha2::{Digest, Sha256};

use crate::support::sandbox::repo_root;

/// Per check: the lowest and highest share of parsed corpus files it may
/// fire on, in percent. Measured on the 361-file corpus after the precision
/// work (README, "Checks before anything is spent": DF001 4.2, DF002 6.6,
/// DF003 35.2, DF004 67.9, DF005 13.3, DF006 11.1), with a margin of about
/// two points: each upper bound is below the rate before that work (DF003
/// 42.1, DF004 85.3, DF005 16.6, DF006 18.0), and a lower bound catches a
/// check that went quiet.
const BOUNDS: &[(&str, f64, f64)] = &[
    ("DF001", 2.0, 6.5),
    ("DF002", 4.5, 9.0),
    ("DF003", 32.0, 39.0),
    ("DF004", 64.0, 72.0),
    ("DF005", 10.5, 15.5),
    ("DF006", 8.5, 14.0),
    ("DF007", 0.5, 3.0),
];

/// The parser follows BuildKit; a real Dockerfile it rejects is a parser
/// bug or a file BuildKit rejects too. None of the corpus fails today.
const MAX_PARSE_FAILURES_PERCENT: f64 = 1.0;

struct Entry {
    file: String,
    repository: String,
    path: String,
    sha256: String,
}

fn corpus_dir() -> PathBuf {
    repo_root().join("tests/fixtures/dockerfiles/corpus")
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv"))
        .expect("the corpus manifest is committed");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("MANIFEST.tsv has no `{name}` column"))
    };
    let (file, repository, path, sha256) =
        (col("file"), col("repository"), col("path"), col("sha256"));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Entry {
                file: f[file].into(),
                repository: f[repository].into(),
                path: f[path].into(),
                sha256: f[sha256].into(),
            }
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    /// Files with at least one finding of the check.
    files: usize,
    findings: usize,
}

/// Ignored by default, not silently passed: the files are not committed
/// (the corpus README says why and how to gather them), so a run without
/// them would measure nothing. Run it with `cargo test --test it -- --ignored
/// dockerfile_corpus` once they are in place; it fails if any is missing.
#[test]
#[ignore = "needs the corpus files, which are not committed: gather them as tests/fixtures/dockerfiles/corpus/README.md says"]
fn each_check_fires_on_a_bounded_share_of_real_dockerfiles() {
    let entries = manifest();
    assert!(
        entries.len() >= 300,
        "the corpus names {} files; it is meant to hold a few hundred",
        entries.len()
    );
    let files = corpus_dir().join("files");
    let present: Vec<&Entry> = entries
        .iter()
        .filter(|e| files.join(&e.file).is_file())
        .collect();
    assert_eq!(
        present.len(),
        entries.len(),
        "the corpus files are not all in {}: gather them as the corpus README says (a partial corpus would skew the rates)",
        files.display()
    );

    let mut tally: BTreeMap<&str, Tally> = dockerfile::RULES
        .iter()
        .map(|r| (r.id, Tally::default()))
        .collect();
    let mut failures = Vec::new();
    let mut per_file = String::new();
    for e in &present {
        let bytes = std::fs::read(files.join(&e.file)).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            e.sha256,
            "{} is not the file the manifest names",
            e.file
        );
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|_| "not UTF-8 text".to_string())
            .and_then(|text| {
                Dockerfile::parse(text, Path::new(&e.path))
                    .map_err(|err| format!("line {}: {}", err.line, err.message))
            });
        let df = match parsed {
            Ok(df) => df,
            Err(why) => {
                failures.push(format!("{} {}: {why}", e.repository, e.path));
                continue;
            }
        };
        let findings = dockerfile::check(&df, None, &[]);
        for f in &findings {
            let _ = writeln!(
                per_file,
                "{}\t{}\t{}\t{}\t{}",
                e.file,
                f.rule,
                f.line,
                f.severity.as_str(),
                f.message
            );
        }
        for (id, t) in tally.iter_mut() {
            let n = findings.iter().filter(|f| f.rule == *id).count();
            t.findings += n;
            t.files += usize::from(n > 0);
        }
    }

    let parsed = present.len() - failures.len();
    let rate = |n: usize| 100.0 * n as f64 / parsed.max(1) as f64;
    let mut table = format!(
        "{} files from the corpus, {} parsed\n\n",
        present.len(),
        parsed
    );
    let _ = writeln!(
        table,
        "| check | shown as | fires on | findings | bounds |\n|---|---|---|---|---|"
    );
    for rule in dockerfile::RULES {
        let t = &tally[rule.id];
        let (_, lo, hi) = BOUNDS
            .iter()
            .find(|(id, ..)| *id == rule.id)
            .unwrap_or_else(|| panic!("no bounds for {}", rule.id));
        let _ = writeln!(
            table,
            "| `{}` | {} | {} files ({:.1} %) | {} | {lo}-{hi} % |",
            rule.id,
            rule.severity.as_str(),
            t.files,
            rate(t.files),
            t.findings
        );
    }
    let _ = writeln!(
        table,
        "\nparse failures: {} ({:.1} %)",
        failures.len(),
        100.0 * failures.len() as f64 / present.len() as f64
    );
    for f in &failures {
        let _ = writeln!(table, "- {f}");
    }
    // The table for the README and every finding, for reviewing what fires.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(out.join("dockerfile-corpus-rates.md"), &table).unwrap();
    std::fs::write(out.join("dockerfile-corpus-findings.tsv"), &per_file).unwrap();
    println!("{table}");

    let failed = 100.0 * failures.len() as f64 / present.len() as f64;
    assert!(
        failed <= MAX_PARSE_FAILURES_PERCENT,
        "{failed:.1} % of the corpus does not parse\n{table}"
    );
    for (id, lo, hi) in BOUNDS {
        let r = rate(tally[id].files);
        assert!(
            (*lo..=*hi).contains(&r),
            "{id} fires on {r:.1} % of the corpus, outside {lo}-{hi} %\n{table}"
        );
    }
}
