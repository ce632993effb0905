//! The GitHub Actions runtime contract: step outputs (`$GITHUB_OUTPUT`), the
//! job summary (`$GITHUB_STEP_SUMMARY`) and workflow commands on stdout
//! (`::group::`, `::warning::`, `::error::`, `::add-mask::`).
//!
//! Outside Actions the same calls print plain, readable lines, so a laptop
//! run shows the same information without the runner's syntax.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;

/// Handle on the runner's files and stdout. Clones share the mask list and
/// the stdout lock, so builder output streamed from other tasks is scrubbed
/// and never interleaves mid-line.
#[derive(Debug, Default, Clone)]
pub struct Actions {
    /// Inside Actions: print workflow commands. Outside: plain lines.
    pub in_actions: bool,
    pub output_file: Option<PathBuf>,
    pub summary_file: Option<PathBuf>,
    /// Values to scrub from anything we print ourselves (the runner scrubs
    /// its log after `::add-mask::`, but a laptop run has no runner).
    masked: Arc<Mutex<Vec<String>>>,
    /// Serialises writes so lines from parallel components never interleave.
    stdout: Arc<Mutex<()>>,
    /// When set, lines go here instead of stdout ([`Actions::capture`]).
    captured: Option<Captured>,
    /// Put before every plain line ([`Actions::prefixed`]).
    prefix: Option<Arc<str>>,
}

/// The lines an [`Actions`] made by [`Actions::capture`] printed.
#[derive(Debug, Default, Clone)]
pub struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A location for an annotation.
#[derive(Debug, Clone, Default)]
pub struct Location<'a> {
    pub file: Option<&'a str>,
    pub line: Option<usize>,
    pub title: Option<&'a str>,
}

impl Actions {
    pub fn new(
        in_actions: bool,
        output_file: Option<PathBuf>,
        summary_file: Option<PathBuf>,
    ) -> Self {
        Actions {
            in_actions,
            output_file,
            summary_file,
            masked: Arc::default(),
            stdout: Arc::default(),
            captured: None,
            prefix: None,
        }
    }

    /// The same runtime, every plain line starting with `prefix` (`[web] `):
    /// what one of several concurrent components prints, in the group they
    /// share.
    pub fn prefixed(&self, prefix: &str) -> Actions {
        Actions {
            prefix: Some(prefix.into()),
            ..self.clone()
        }
    }

    /// An Actions runtime (workflow commands on) whose lines are kept instead
    /// of printed, for tests that read what a run said.
    pub fn capture() -> (Captured, Actions) {
        let captured = Captured::default();
        (
            captured.clone(),
            Actions {
                in_actions: true,
                captured: Some(captured),
                ..Actions::default()
            },
        )
    }

    fn emit(&self, line: &str) {
        if let Some(c) = &self.captured {
            c.0.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.scrub(line));
            return;
        }
        let _guard = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.scrub(line));
        let _ = out.flush();
    }

    /// Registers a secret: the runner masks it in the log from now on, and
    /// everything we print ourselves is scrubbed of it too.
    pub fn add_mask(&self, secret: &str) {
        let secret = secret.trim();
        // Masking very short values would scrub ordinary words from the log.
        if secret.len() < 4 {
            return;
        }
        {
            let mut masked = self.masked.lock().unwrap_or_else(|e| e.into_inner());
            if masked.iter().any(|m| m == secret) {
                return;
            }
            masked.push(secret.to_string());
        }
        if self.in_actions {
            // Each line of a multi-line secret is masked separately by the runner.
            for line in secret.lines().filter(|l| !l.trim().is_empty()) {
                let _guard = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "::add-mask::{}",
                    escape_data(line)
                );
            }
        }
    }

    /// Replaces every registered secret with `***`.
    pub fn scrub(&self, text: &str) -> String {
        let masked = self.masked.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for m in masked.iter() {
            if out.contains(m.as_str()) {
                out = out.replace(m.as_str(), "***");
            }
        }
        out
    }

    pub fn group(&self, title: &str) {
        if self.in_actions {
            self.emit(&format!("::group::{}", escape_data(title)));
        } else {
            self.emit(&format!("── {title}"));
        }
    }

    pub fn end_group(&self) {
        if self.in_actions {
            self.emit("::endgroup::");
        }
    }

    /// Runs `f` inside a log group, closing it however `f` ends.
    pub fn in_group<T>(&self, title: &str, f: impl FnOnce() -> T) -> T {
        self.group(title);
        let out = f();
        self.end_group();
        out
    }

    pub fn warning(&self, message: &str, at: &Location<'_>) {
        self.annotation("warning", message, at);
    }

    pub fn error(&self, message: &str, at: &Location<'_>) {
        self.annotation("error", message, at);
    }

    pub fn notice(&self, message: &str, at: &Location<'_>) {
        self.annotation("notice", message, at);
    }

    fn annotation(&self, level: &str, message: &str, at: &Location<'_>) {
        if self.in_actions {
            let mut props = Vec::new();
            if let Some(f) = at.file {
                props.push(format!("file={}", escape_property(f)));
            }
            if let Some(l) = at.line {
                props.push(format!("line={l}"));
            }
            if let Some(t) = at.title {
                props.push(format!("title={}", escape_property(t)));
            }
            let props = if props.is_empty() {
                String::new()
            } else {
                format!(" {}", props.join(","))
            };
            self.emit(&format!("::{level}{props}::{}", escape_data(message)));
        } else {
            let place = match (at.file, at.line) {
                (Some(f), Some(l)) => format!("{f}:{l}: "),
                (Some(f), None) => format!("{f}: "),
                _ => String::new(),
            };
            self.emit(&format!("{level}: {place}{message}"));
        }
    }

    /// Plain log line (goes to stdout so it sits inside the current group).
    pub fn line(&self, text: &str) {
        match &self.prefix {
            Some(p) => self.emit(&format!("{p}{text}")),
            None => self.emit(text),
        }
    }

    /// Writes one step output. Uses the heredoc form with a random
    /// delimiter so multi-line values (JSON) are safe.
    pub fn set_output(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let Some(path) = &self.output_file else {
            return Ok(());
        };
        let value = self.scrub(value);
        let delimiter = loop {
            let d = format!("ghadelimiter_{:016x}", fastrand::u64(..));
            if !value.contains(&d) {
                break d;
            }
        };
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening GITHUB_OUTPUT file {}", path.display()))?;
        write!(f, "{name}<<{delimiter}\n{value}\n{delimiter}\n")
            .with_context(|| format!("writing output `{name}` to {}", path.display()))?;
        Ok(())
    }

    /// Appends Markdown to the job summary.
    pub fn append_summary(&self, markdown: &str) -> anyhow::Result<()> {
        let Some(path) = &self.summary_file else {
            return Ok(());
        };
        let markdown = self.scrub(markdown);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening GITHUB_STEP_SUMMARY file {}", path.display()))?;
        f.write_all(markdown.as_bytes())
            .with_context(|| format!("writing the job summary to {}", path.display()))?;
        if !markdown.ends_with('\n') {
            f.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// Writes `text` to stdout as data (a plan, JSON, `init`'s report). A reader
/// that has gone (`fastdeploy plan --json | head -1`) is no error: the rest
/// is dropped quietly, as Rust CLIs such as ripgrep do, instead of `print!`'s
/// panic; any other failure is.
pub fn print_data(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Escapes a workflow command's message (as @actions/core does).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Parses a `$GITHUB_OUTPUT` file back into pairs (tests and the re-run
/// logic read what a step wrote).
pub fn parse_output_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.push((name.to_string(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_string(), value.to_string()));
        }
    }
    out
}

/// Every step output, with its description (the source of `action.yml`'s
/// `outputs:`; a test keeps the two equal).
pub const OUTPUTS: &[(&str, &str)] = &[
    (
        "environment",
        "Environment deployed to (empty for build-only runs).",
    ),
    (
        "result",
        "success | failure | rolled-back | built | skipped.",
    ),
    (
        "image",
        "Image reference of the first component (the first in the config, or the only one), by digest (registry/repository@sha256:...).",
    ),
    ("digest", "Digest of the first component's image."),
    (
        "images",
        "JSON object: per component, in the config's order, the image, digest, tags, sizes, the base images by digest (and why an unchanged component was rebuilt), deploy target, revisions (deployed, previous, serving), the target's URL when it has one, and result; with `targets:`, a `targets` list with each target's result and revisions.",
    ),
    (
        "revision",
        "What the first deployed component was deployed as: its task definition ARN (ECS), its version ARN (Lambda), its application version label (Elastic Beanstalk).",
    ),
    (
        "previous-revision",
        "What served the first deployed component before this run.",
    ),
    (
        "serving-revision",
        "What serves the first deployed component now, as last observed (the previous revision after a rollback).",
    ),
    (
        "task-definition-arn",
        "Task definition registered (and deployed) for the first ECS component.",
    ),
    (
        "previous-task-definition-arn",
        "Task definition that was serving the first ECS component before this deploy.",
    ),
    (
        "deployment-id",
        "ECS service deployment started by this run.",
    ),
    (
        "build-seconds",
        "Seconds spent building (all components, wall time).",
    ),
    (
        "deploy-seconds",
        "Seconds spent deploying (all components, wall time).",
    ),
    (
        "context-bytes",
        "Build context size of the first component, in bytes.",
    ),
    (
        "image-bytes",
        "Compressed image size of the first component, in bytes.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_multiline_safe_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let a = Actions::new(true, Some(path.clone()), None);
        a.set_output("images", "{\n  \"backend\": 1\n}").unwrap();
        a.set_output("result", "success").unwrap();
        let parsed = parse_output_file(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(
            parsed,
            vec![
                ("images".into(), "{\n  \"backend\": 1\n}".into()),
                ("result".into(), "success".into())
            ]
        );
    }

    #[test]
    fn masked_values_never_reach_outputs_or_summary() {
        let dir = tempfile::tempdir().unwrap();
        let a = Actions::new(
            false,
            Some(dir.path().join("o")),
            Some(dir.path().join("s")),
        );
        a.add_mask("hunter2-secret");
        a.set_output("x", "token hunter2-secret here").unwrap();
        a.append_summary("| hunter2-secret |").unwrap();
        let o = std::fs::read_to_string(dir.path().join("o")).unwrap();
        let s = std::fs::read_to_string(dir.path().join("s")).unwrap();
        assert!(!o.contains("hunter2") && o.contains("token *** here"));
        assert!(!s.contains("hunter2"));
    }

    #[test]
    fn command_escaping_matches_actions_core() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
