//! Subprocesses as values: builders (docker, buildah) build a
//! [`CommandSpec`]; tests assert its arguments; one runner executes it,
//! streams its output line by line into the log and keeps the exit status
//! and the tail of stderr for error messages.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A command to run, fully described before it runs.
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment for the child.
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Fed to stdin and then closed (registry passwords go here, never in args).
    pub stdin: Option<SecretString>,
}

impl CommandSpec {
    pub fn new(program: impl Into<String>) -> Self {
        CommandSpec {
            program: program.into(),
            ..Default::default()
        }
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    pub fn stdin(mut self, secret: SecretString) -> Self {
        self.stdin = Some(secret);
        self
    }

    /// Shell-like rendering for logs and error messages. Arguments are
    /// quoted when needed; stdin is never shown.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quotes an argument for display (POSIX shell rules).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone)]
pub struct Finished {
    pub success: bool,
    pub code: Option<i32>,
    /// All of stdout (builders print digests and JSON there).
    pub stdout: String,
    /// The last lines of stderr, for error messages.
    pub stderr_tail: Vec<String>,
}

impl Finished {
    /// Turns a failed command into an error carrying its last stderr lines.
    pub fn check(self, spec: &CommandSpec) -> anyhow::Result<Finished> {
        if self.success {
            return Ok(self);
        }
        let code = self
            .code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "a signal".into());
        anyhow::bail!(
            "`{}` exited with {code}; its last output:\n{}",
            crate::process::shorten(&spec.display(), 300),
            self.stderr_tail.join("\n")
        )
    }
}

/// Receives each output line as it arrives (the log, or a test recorder).
pub type LineSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Runs commands. `sink` sees every line; `scrub` is applied first.
#[derive(Clone)]
pub struct Runner {
    pub sink: LineSink,
    /// How many stderr lines to keep for errors.
    pub tail_lines: usize,
}

impl Default for Runner {
    fn default() -> Self {
        Runner {
            sink: Arc::new(|_, line| eprintln!("{line}")),
            tail_lines: 40,
        }
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("tail_lines", &self.tail_lines)
            .finish()
    }
}

impl Runner {
    pub fn with_sink(sink: LineSink) -> Self {
        Runner {
            sink,
            tail_lines: 40,
        }
    }

    /// Runs the command to completion. Fails only when it cannot be started;
    /// a non-zero exit is reported in [`Finished`] (use [`Finished::check`]).
    pub async fn run(&self, spec: &CommandSpec) -> anyhow::Result<Finished> {
        // Held, not entered: it measures the command's whole lifetime (timings).
        let _wait = crate::timings::wait("builder");
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(if spec.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!("; `{}` is not installed or not on PATH", spec.program)
            } else {
                String::new()
            };
            anyhow::anyhow!("cannot start `{}`: {e}{hint}", spec.program)
        })?;
        if let Some(secret) = &spec.stdin {
            let mut stdin = child.stdin.take().context("child stdin")?;
            stdin
                .write_all(secret.expose_secret().as_bytes())
                .await
                .context("writing to the command's stdin")?;
            drop(stdin);
        }
        let stdout = child.stdout.take().context("child stdout")?;
        let stderr = child.stderr.take().context("child stderr")?;
        let sink_out = self.sink.clone();
        let out_task = tokio::spawn(async move {
            let mut all = String::new();
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink_out(Stream::Stdout, &line);
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let sink_err = self.sink.clone();
        let keep = self.tail_lines;
        let err_task = tokio::spawn(async move {
            let mut tail = VecDeque::with_capacity(keep);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink_err(Stream::Stderr, &line);
                if tail.len() == keep {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            tail.into_iter().collect::<Vec<_>>()
        });
        let status = child
            .wait()
            .await
            .with_context(|| format!("waiting for `{}`", spec.program))?;
        let stdout = out_task.await.unwrap_or_default();
        let stderr_tail = err_task.await.unwrap_or_default();
        Ok(Finished {
            success: status.success(),
            code: status.code(),
            stdout,
            stderr_tail,
        })
    }
}

/// Cuts a string to `max` characters with a marker.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn runner_streams_lines_and_keeps_the_stderr_tail() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let runner = Runner::with_sink(Arc::new(move |stream, line| {
            s.lock().unwrap().push((stream, line.to_string()))
        }));
        let spec = CommandSpec::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]);
        let done = runner.run(&spec).await.unwrap();
        assert!(!done.success);
        assert_eq!(done.code, Some(3));
        assert_eq!(done.stdout, "out\n");
        assert_eq!(done.stderr_tail, vec!["err".to_string()]);
        let err = done.check(&spec).unwrap_err().to_string();
        assert!(
            err.contains("exited with 3") && err.contains("err"),
            "{err}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn stdin_secret_is_fed_and_never_displayed() {
        let spec = CommandSpec::new("cat").stdin(SecretString::from("s3cret-pass"));
        assert!(!spec.display().contains("s3cret"));
        let done = Runner::with_sink(Arc::new(|_, _| {}))
            .run(&spec)
            .await
            .unwrap();
        assert_eq!(done.stdout, "s3cret-pass\n");
    }

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let err = Runner::default()
            .run(&CommandSpec::new("no-such-builder-xyz"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such-builder-xyz") && err.contains("not installed"),
            "{err}"
        );
    }

    #[test]
    fn display_quotes_what_needs_quoting() {
        let spec = CommandSpec::new("docker").args(["build", "--label", "a=b c", "."]);
        assert_eq!(spec.display(), "docker build --label 'a=b c' .");
    }
}
