//! What the check phase costs a run against what a builder pays to send the
//! same directory: fastdeploy's context scan (stat-only, honouring
//! `.dockerignore`) plus the content hash every run computes over the files
//! it includes (`fastdeploy::checks::context::content_hash`, which reads
//! them), against `tar -czf - . | wc -c` of everything and `tar -czf` with
//! the same exclusions, on a generated tree shaped like a Python and Node
//! repository (a `.venv` and `node_modules` of many small files, `.git`
//! packfiles, the app, a few large data files).
//!
//! Each of the three is timed the same number of times, in rounds that
//! rotate their order, warm (after one untimed pass of each) and cold (the
//! page cache dropped before every timed run with
//! `sync; echo 3 > /proc/sys/vm/drop_caches`, which needs root; where the
//! kernel refuses, the cold figures say so instead of being guessed); the
//! medians are compared. It also checks that the scan gives the same answer
//! as tar told to apply the same exclusions, and writes
//! target/bench-results/context_scan.md and context_scan.rows.md.
//!
//!     cargo bench --bench context_scan
//!     FASTDEPLOY_BENCH_CONTEXT_MB=200 cargo bench --bench context_scan   # quicker
//!     FASTDEPLOY_BENCH_CONTEXT_RUNS=5 cargo bench --bench context_scan   # more runs of each
//!
//! The tree is kept under target/bench-context/<size>mb and reused.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use fastdeploy::checks::context::{self, ContextReport, EntryKind, Matching};

const SIZE_ENV: &str = "FASTDEPLOY_BENCH_CONTEXT_MB";
const RUNS_ENV: &str = "FASTDEPLOY_BENCH_CONTEXT_RUNS";
const DEFAULT_MB: u64 = 1536;
const DEFAULT_RUNS: usize = 3;
/// Bumped when the tree's shape changes, so a cached tree is regenerated.
const TREE_VERSION: &str = "3";
const DOCKERIGNORE: &str = "# what a Python and Node project keeps out of its image\n.git\n.venv\nnode_modules\n**/__pycache__\n*.log\n";
/// The same exclusions for GNU tar (member names start with `./`).
const TAR_EXCLUDES: &[&str] = &[
    "--anchored",
    "--exclude=./.git",
    "--exclude=./.venv",
    "--exclude=./node_modules",
    "--no-anchored",
    "--exclude=__pycache__",
    "--exclude=*.log",
];
const TARGET_SPEEDUP: f64 = 50.0;
const COMMAND: &str = "cargo bench --bench context_scan";

/// What is timed.
#[derive(Clone, Copy, PartialEq)]
enum What {
    /// The scan and the content hash, as `fastdeploy run` does them.
    Check,
    TarAll,
    TarExcluded,
}

const ALL: [What; 3] = [What::Check, What::TarAll, What::TarExcluded];

/// The timed runs of one cache state.
#[derive(Default)]
struct Timed {
    check: Vec<f64>,
    /// The scan's and the hash's shares of each check run.
    scan: Vec<f64>,
    hash: Vec<f64>,
    tar_all: Vec<f64>,
    tar_excluded: Vec<f64>,
}

impl Timed {
    fn of(&self, what: What) -> &[f64] {
        match what {
            What::Check => &self.check,
            What::TarAll => &self.tar_all,
            What::TarExcluded => &self.tar_excluded,
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A ratio as the rows print it: one decimal below 100, so a ratio just
/// under the target does not print as the target itself.
fn times(r: f64) -> String {
    if r < 100.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.0}x")
    }
}

/// Seconds to three decimals under a second, two above.
fn secs(x: f64) -> String {
    if x < 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.2}")
    }
}

fn list(v: &[f64]) -> String {
    v.iter().map(|x| secs(*x)).collect::<Vec<_>>().join(", ")
}

/// The check phase's work for one context, as `fastdeploy run` does it.
fn check(root: &Path) -> anyhow::Result<(ContextReport, String, f64, f64)> {
    let started = Instant::now();
    let report = context::scan_for(root, &root.join("Dockerfile"), Matching::BuildKit)?;
    let scanned = started.elapsed().as_secs_f64();
    let hash = context::content_hash(&report)?;
    Ok((
        report,
        hash,
        scanned,
        started.elapsed().as_secs_f64() - scanned,
    ))
}

/// Drops the page cache (and dentries and inodes), so the next run reads
/// from disk. An error says why it could not.
fn drop_caches() -> Result<(), String> {
    let sync = Command::new("sync")
        .status()
        .map_err(|e| format!("cannot run sync: {e}"))?;
    if !sync.success() {
        return Err(format!("sync failed ({sync})"));
    }
    std::fs::write("/proc/sys/vm/drop_caches", "3\n")
        .map_err(|e| format!("writing 3 to /proc/sys/vm/drop_caches: {e}"))
}

/// `Cached:` of /proc/meminfo in bytes.
fn page_cache_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Cached:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Whether dropping the cache works here: it must succeed and empty the
/// cache of a file just read.
fn cold_runs_possible(root: &Path) -> Result<(), String> {
    // Read some of the tree, so there is something to drop.
    Command::new("sh")
        .arg("-c")
        .arg("cat data/* > /dev/null")
        .current_dir(root)
        .status()
        .map_err(|e| e.to_string())?;
    let before = page_cache_bytes().ok_or("no Cached: line in /proc/meminfo")?;
    drop_caches()?;
    let after = page_cache_bytes().ok_or("no Cached: line in /proc/meminfo")?;
    if after >= before {
        return Err(format!(
            "the page cache did not shrink ({} before, {} after)",
            fastdeploy::units::bytes(before),
            fastdeploy::units::bytes(after)
        ));
    }
    println!(
        "dropping the page cache works: {} cached before, {} after",
        fastdeploy::units::bytes(before),
        fastdeploy::units::bytes(after)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs bench targets too (without `--bench`):
    // a 1.5 GB tree and many tar runs are a benchmark, not a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("context_scan: benchmark skipped (run it with `{COMMAND}`)");
        return Ok(());
    }
    let mb: u64 = match std::env::var(SIZE_ENV) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{SIZE_ENV}={v:?} is not a whole number of MiB"))?,
        Err(_) => DEFAULT_MB,
    };
    ensure!(mb >= 10, "{SIZE_ENV} must be at least 10");
    let runs: usize = match std::env::var(RUNS_ENV) {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{RUNS_ENV}={v:?} is not a positive whole number"))?,
        Err(_) => DEFAULT_RUNS,
    };
    let target = target_dir();
    let root = target.join("bench-context").join(format!("{mb}mb"));
    let generated = ensure_tree(&root, mb)?;

    // The same answer first (untimed): without any ignore file the walk
    // stats every file and tar agrees on the set; with the exclusions, what
    // tar sends is what the scan lists.
    let started = Instant::now();
    let everything =
        context::walk::walk(&root, &context::IgnoreFile::default(), Matching::BuildKit)?;
    let full_walk_seconds = started.elapsed().as_secs_f64();
    let tar_all = tar_list(&root, &[])?;
    ensure!(
        tar_all.len() == everything.entries.len(),
        "without exclusions tar lists {} entries and the walk {}",
        tar_all.len(),
        everything.entries.len()
    );
    let (report, hash, _, _) = check(&root)?;
    let tar_listing = tar_list(&root, TAR_EXCLUDES)?;
    let scanned: BTreeSet<String> = report
        .entries()
        .iter()
        .map(|e| {
            if e.kind == EntryKind::Dir {
                format!("{}/", e.path)
            } else {
                e.path.clone()
            }
        })
        .collect();
    if tar_listing != scanned {
        let only_tar: Vec<_> = tar_listing.difference(&scanned).take(10).collect();
        let only_scan: Vec<_> = scanned.difference(&tar_listing).take(10).collect();
        bail!(
            "the scan and tar disagree on the context: only in tar {only_tar:?}, only in the scan {only_scan:?}"
        );
    }

    let cold_possible = cold_runs_possible(&root);
    if let Err(why) = &cold_possible {
        println!("cold runs not possible: {why}");
    }
    let mut warm = Timed::default();
    let mut cold = Timed::default();
    let mut outputs = (String::new(), 0u64, 0u64);
    for (cache, timed) in [("warm", &mut warm), ("cold", &mut cold)] {
        let dropping = cache == "cold";
        if dropping && cold_possible.is_err() {
            continue;
        }
        if !dropping {
            println!("warming the page cache: one untimed run of each ...");
            check(&root)?;
            time_tar(&root, &[])?;
            time_tar(&root, TAR_EXCLUDES)?;
        }
        for round in 0..runs {
            // Rotate the order, so none always runs first or after the same one.
            for i in 0..ALL.len() {
                let what = ALL[(i + round) % ALL.len()];
                if dropping {
                    drop_caches().map_err(anyhow::Error::msg)?;
                }
                match what {
                    What::Check => {
                        let started = Instant::now();
                        let (r, h, scan, hashing) = check(&root)?;
                        timed.check.push(started.elapsed().as_secs_f64());
                        timed.scan.push(scan);
                        timed.hash.push(hashing);
                        ensure!(
                            h == hash && r.file_count == report.file_count,
                            "the check gave another answer on a re-run"
                        );
                    }
                    What::TarAll => {
                        let (seconds, bytes) = time_tar(&root, &[])?;
                        timed.tar_all.push(seconds);
                        outputs.1 = bytes;
                    }
                    What::TarExcluded => {
                        let (seconds, bytes) = time_tar(&root, TAR_EXCLUDES)?;
                        timed.tar_excluded.push(seconds);
                        outputs.2 = bytes;
                    }
                }
            }
            println!(
                "{cache} round {}: check {:.3} s, tar everything {:.2} s, tar with exclusions {:.2} s",
                round + 1,
                timed.check[round],
                timed.tar_all[round],
                timed.tar_excluded[round]
            );
        }
    }
    outputs.0 = hash;

    // Rows and the section.
    let what_check = format!(
        "the check phase as a run pays it: the stat-only scan plus the content hash of the {} files it includes ({}, read in full)",
        report.file_count,
        fastdeploy::units::bytes(report.total_bytes)
    );
    let cold_note = match &cold_possible {
        Ok(()) => None,
        Err(why) => Some(format!("cold: **not measured** ({why})")),
    };
    let figures = |what: What| -> String {
        let w = format!("warm {} s", secs(median(warm.of(what))));
        match &cold_note {
            None => format!("{w}, cold {} s", secs(median(cold.of(what)))),
            Some(note) => format!("{w}; {note}"),
        }
    };
    let mut rows = String::new();
    for (baseline, what) in [
        ("tar -czf - . \\| wc -c", What::TarAll),
        (
            "tar -czf - <the .dockerignore exclusions> . \\| wc -c",
            What::TarExcluded,
        ),
    ] {
        let ratio = |t: &Timed| median(t.of(what)) / median(&t.check);
        let warm_ratio = ratio(&warm);
        let cold_ratio = cold_possible.is_ok().then(|| ratio(&cold));
        let ratio_text = match cold_ratio {
            Some(c) => format!("warm {}, cold {} faster", times(warm_ratio), times(c)),
            None => format!("warm {} faster; cold not measured", times(warm_ratio)),
        };
        let short: Vec<String> = [("warm", Some(warm_ratio)), ("cold", cold_ratio)]
            .iter()
            .filter_map(|(k, r)| {
                r.filter(|r| *r < TARGET_SPEEDUP)
                    .map(|r| format!("{k} {}", times(r)))
            })
            .collect();
        let verdict = if !short.is_empty() {
            format!("**not met**: {}", short.join(", "))
        } else if cold_ratio.is_none() {
            "**not met**: met warm; cold not measured".to_string()
        } else {
            "met".to_string()
        };
        writeln!(
            rows,
            "| (a) | {what_check}, vs `{baseline}`; median of {runs} runs each, warm and cold cache | {} | {} | {ratio_text} | at least {TARGET_SPEEDUP:.0}x faster, warm and cold | {verdict} | `{}{COMMAND}` |",
            figures(What::Check),
            figures(what),
            if mb == DEFAULT_MB {
                String::new()
            } else {
                format!("{SIZE_ENV}={mb} ")
            },
        )?;
    }

    let mut md = String::new();
    writeln!(md, "### (a) the check phase against tar\n")?;
    writeln!(
        md,
        "Tree: {} in {} files, {} of them in `.venv`, `node_modules` and `.git` (generated by the benchmark, kept under `target/bench-context/{mb}mb`).",
        fastdeploy::units::bytes(generated.bytes),
        generated.files,
        generated.ignored_files
    )?;
    writeln!(
        md,
        "`.dockerignore`: `{}`.\n",
        DOCKERIGNORE
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("`, `")
    )?;
    writeln!(
        md,
        "Each of the three below ran {runs} times warm (after one untimed run of each) and {runs} times cold, in rounds \
         that rotate their order; the table shows the medians and every run. Cold: {}.\n",
        match &cold_possible {
            Ok(()) => "`sync; echo 3 > /proc/sys/vm/drop_caches` before every timed run (page cache, dentries and inodes; the \
                       whole machine's, so anything else running slowed down too), checked to empty the cache first. This \
                       machine is a virtual machine: a cold read goes to its virtual disk, which the host below may still \
                       cache, so cold reads can be faster here than from a physical disk"
                .to_string(),
            Err(why) => format!("**not measured**: the page cache could not be dropped ({why})"),
        }
    )?;
    writeln!(
        md,
        "| what | warm: median (runs) | cold: median (runs) | output |"
    )?;
    writeln!(md, "|---|---|---|---|")?;
    let cell = |v: &[f64]| {
        if v.is_empty() {
            "not measured".to_string()
        } else {
            format!("{} s ({})", secs(median(v)), list(v))
        }
    };
    writeln!(
        md,
        "| fastdeploy's check phase: scan + content hash | {} | {} | {} in {} files, {} excluded directories not entered; hash `{}…` |",
        cell(&warm.check),
        cell(&cold.check),
        fastdeploy::units::bytes(report.total_bytes),
        report.file_count,
        report.skipped_dirs,
        &outputs.0[..16]
    )?;
    writeln!(
        md,
        "| of which the scan (stat-only) | {} | {} | |",
        cell(&warm.scan),
        cell(&cold.scan)
    )?;
    writeln!(
        md,
        "| of which the content hash (BLAKE3: reads the files, several at once and a large one across cores) | {} | {} | |",
        cell(&warm.hash),
        cell(&cold.hash)
    )?;
    writeln!(
        md,
        "| `tar -czf - . \\| wc -c` (what sending everything costs) | {} | {} | {} compressed |",
        cell(&warm.tar_all),
        cell(&cold.tar_all),
        fastdeploy::units::bytes(outputs.1)
    )?;
    writeln!(
        md,
        "| `tar -czf - <the same exclusions> . \\| wc -c` | {} | {} | {} compressed |",
        cell(&warm.tar_excluded),
        cell(&cold.tar_excluded),
        fastdeploy::units::bytes(outputs.2)
    )?;
    writeln!(
        md,
        "| the walk with no `.dockerignore` (stats all {} entries; tar lists the same number), once, warm | {full_walk_seconds:.3} s | | |",
        everything.entries.len()
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "Same answer: tar with the same exclusions lists exactly the {} entries the scan lists.",
        scanned.len()
    )?;
    writeln!(
        md,
        "\nThe hash reads every included file ({}, mostly the data sets), so it, not the scan, is what the check \
         phase costs; against tar with the same exclusions, which reads the same files and compresses them, the \
         ratio is what a run saves by checking before sending.",
        fastdeploy::units::bytes(report.total_bytes)
    )?;
    let pace = |t: &Timed| {
        format!(
            "{}/s",
            fastdeploy::units::bytes((report.total_bytes as f64 / median(&t.hash)) as u64)
        )
    };
    if cold_possible.is_ok() {
        writeln!(
            md,
            "The hash went through the files at {} warm and {} cold: cold, the check phase waits on the disk \
             rather than on the hash, and no hash can be faster than reading the files once.",
            pace(&warm),
            pace(&cold)
        )?;
    }
    writeln!(
        md,
        "\nMachine: {} CPUs. Reproduce: `{SIZE_ENV}={mb} {RUNS_ENV}={runs} {COMMAND}`",
        cpus()
    )?;
    let out_dir = target.join("bench-results");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("context_scan.rows.md"), &rows)?;
    let out = out_dir.join("context_scan.md");
    std::fs::write(&out, &md)?;
    println!("\n{rows}\n{md}\nwritten to {}", out.display());
    println!("{}", context::summary_line(&report));
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Runs tar (with `extra` options) into `wc -c`; returns seconds and compressed bytes.
fn time_tar(root: &Path, extra: &[&str]) -> anyhow::Result<(f64, u64)> {
    let script = format!(
        "tar -czf - {} . | wc -c",
        extra
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let started = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(root)
        .output()
        .context("running tar")?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("reading wc's count")?;
    Ok((seconds, bytes))
}

/// What tar archives under `extra`, as relative paths (directories end in `/`).
fn tar_list(root: &Path, extra: &[&str]) -> anyhow::Result<BTreeSet<String>> {
    let out = Command::new("tar")
        .args(["--quoting-style=literal", "-cvf", "/dev/null"])
        .args(extra)
        .arg(".")
        .current_dir(root)
        .output()
        .context("running tar")?;
    ensure!(
        out.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter_map(|l| l.strip_prefix("./"))
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

struct Generated {
    bytes: u64,
    files: u64,
    ignored_files: u64,
}

/// Generates the tree unless a complete one of this size and version is there.
fn ensure_tree(root: &Path, mb: u64) -> anyhow::Result<Generated> {
    let marker = root.join(".bench-tree");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let parts: Vec<u64> = text
            .split_whitespace()
            .skip(1)
            .filter_map(|p| p.parse().ok())
            .collect();
        if text.starts_with(TREE_VERSION) && parts.len() == 3 {
            println!("reusing the tree in {}", root.display());
            return Ok(Generated {
                bytes: parts[0],
                files: parts[1],
                ignored_files: parts[2],
            });
        }
    }
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    println!("generating a {mb} MiB tree in {} ...", root.display());
    let started = Instant::now();
    let generated = generate(root, mb)?;
    std::fs::write(
        &marker,
        format!(
            "{TREE_VERSION} {} {} {}\n",
            generated.bytes, generated.files, generated.ignored_files
        ),
    )?;
    println!(
        "generated {} in {} files in {:.1} s",
        fastdeploy::units::bytes(generated.bytes),
        generated.files,
        started.elapsed().as_secs_f64()
    );
    Ok(generated)
}

struct Writer {
    rng: fastrand::Rng,
    bytes: u64,
    files: u64,
}

impl Writer {
    /// A source-like file: compressible text with some variety.
    fn text(&mut self, path: &Path, len: usize) -> anyhow::Result<()> {
        const WORDS: &[&str] = &[
            "import", "def", "return", "self", "value", "const", "function", "module", "exports",
            "async", "await", "None",
        ];
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            s.push_str(WORDS[self.rng.usize(..WORDS.len())]);
            s.push(if self.rng.u8(..8) == 0 { '\n' } else { ' ' });
        }
        self.write(path, s.as_bytes())
    }

    /// A binary file of incompressible bytes (packfiles, data sets).
    fn binary(&mut self, path: &Path, len: u64) -> anyhow::Result<()> {
        use std::io::Write;
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        let mut buf = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            self.rng.fill(&mut buf[..n]);
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.flush()?;
        self.bytes += len;
        self.files += 1;
        Ok(())
    }

    fn write(&mut self, path: &Path, data: &[u8]) -> anyhow::Result<()> {
        std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))?;
        self.bytes += data.len() as u64;
        self.files += 1;
        Ok(())
    }
}

/// The tree, scaled to `mb`: at 1536 MiB about 45k `.venv` files, 60k
/// `node_modules` files, 400 MiB of packfiles and 750 MiB of data sets.
fn generate(root: &Path, mb: u64) -> anyhow::Result<Generated> {
    let scale = mb as f64 / DEFAULT_MB as f64;
    let n = |full: f64| ((full * scale).round() as usize).max(1);
    let mut w = Writer {
        rng: fastrand::Rng::with_seed(1536),
        bytes: 0,
        files: 0,
    };
    let mkdir =
        |p: &Path| std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()));

    // .venv: packages of small modules with bytecode caches.
    let site = root.join(".venv/lib/python3.12/site-packages");
    for pkg in 0..n(450.0) {
        let dir = site.join(format!("pkg{pkg}"));
        mkdir(&dir.join("__pycache__"))?;
        for m in 0..50 {
            let len = 1000 + w.rng.usize(..6000);
            w.text(&dir.join(format!("mod{m}.py")), len)?;
            if m % 2 == 0 {
                w.binary(
                    &dir.join(format!("__pycache__/mod{m}.cpython-312.pyc")),
                    2000,
                )?;
            }
        }
    }
    // node_modules: nested packages of small files.
    for pkg in 0..n(1000.0) {
        let dir = root.join(format!("node_modules/pkg{pkg}/lib"));
        mkdir(&dir)?;
        w.text(
            &root.join(format!("node_modules/pkg{pkg}/package.json")),
            600,
        )?;
        for m in 0..59 {
            let len = 500 + w.rng.usize(..5000);
            w.text(&dir.join(format!("file{m}.js")), len)?;
        }
    }
    let ignored_files = w.files;
    // .git: a few packfiles and loose objects.
    mkdir(&root.join(".git/objects/pack"))?;
    for (i, size) in [250u64, 100, 50].into_iter().enumerate() {
        let len = ((size as f64) * scale * 1024.0 * 1024.0) as u64;
        w.binary(
            &root.join(format!(".git/objects/pack/pack-{i}.pack")),
            len.max(4096),
        )?;
    }
    for i in 0..200 {
        let dir = root.join(format!(".git/objects/{:02x}", i));
        mkdir(&dir)?;
        w.binary(&dir.join("0123456789abcdef0123456789abcdef012345"), 300)?;
    }
    let ignored_files = ignored_files + 3 + 200;
    // The app.
    for module in 0..300 {
        let dir = root.join(format!("app/pkg{}", module % 12));
        mkdir(&dir.join("__pycache__"))?;
        let len = 2000 + w.rng.usize(..8000);
        w.text(&dir.join(format!("module{module}.py")), len)?;
        w.binary(
            &dir.join(format!("__pycache__/module{module}.cpython-312.pyc")),
            3000,
        )?;
    }
    mkdir(&root.join("web/src"))?;
    for c in 0..150 {
        let len = 1000 + w.rng.usize(..4000);
        w.text(&root.join(format!("web/src/component{c}.tsx")), len)?;
    }
    w.text(&root.join("requirements.txt"), 800)?;
    w.text(&root.join("package.json"), 900)?;
    w.text(&root.join("debug.log"), 50_000)?;
    // Data sets that the image may or may not need: the scan names them.
    mkdir(&root.join("data"))?;
    for (i, size) in [400u64, 250, 100].into_iter().enumerate() {
        let len = ((size as f64) * scale * 1024.0 * 1024.0) as u64;
        w.binary(&root.join(format!("data/train-{i}.parquet")), len.max(4096))?;
    }
    w.write(
        &root.join("Dockerfile"),
        b"FROM python:3.12-slim\nCOPY . /app\nRUN pip install -r /app/requirements.txt\n",
    )?;
    w.write(&root.join(".dockerignore"), DOCKERIGNORE.as_bytes())?;
    Ok(Generated {
        bytes: w.bytes,
        files: w.files,
        ignored_files,
    })
}
