//! buildx's `--progress=rawjson` stream turned back into BuildKit's plain
//! progress lines, with the build steps counted on the way.
//!
//! The stream is BuildKit's `SolveStatus` objects one after another. buildx
//! 0.13 indents each object over many lines; 0.14 and later print one object
//! per line; after a failure buildx appends plain text (the Dockerfile
//! excerpt, `ERROR: failed to solve: ...`) to the same stream. So the input is
//! read as a sequence of JSON values, whatever their line breaks, and
//! anything that is not JSON passes through as it is.
//!
//! The rendering follows BuildKit's own plain printer
//! (`util/progress/progressui/printer.go`): `#3 [build 2/4] RUN make` when a
//! step starts, `#3 0.123 <log line>`, `#3 transferring context: 130B done`,
//! then `#3 DONE 0.4s`, `#3 CACHED` or `#3 ERROR: ...`.

use std::collections::{HashMap, VecDeque};

use base64::Engine;
use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

use crate::image::Steps;

/// How many rendered lines a failed build quotes in its error.
const TAIL_LINES: usize = 40;

/// A stray `{` in plain text must not swallow the rest of the output: a
/// "value" longer than this many lines is given back as text.
const MAX_VALUE_LINES: usize = 20_000;

/// BuildKit's `client.SolveStatus`, as buildx serialises it.
#[derive(Debug, Deserialize, Default)]
struct SolveStatus {
    #[serde(default)]
    vertexes: Vec<Vertex>,
    #[serde(default)]
    statuses: Vec<VertexStatus>,
    #[serde(default)]
    logs: Vec<VertexLog>,
    #[serde(default)]
    warnings: Vec<VertexWarning>,
}

#[derive(Debug, Deserialize)]
struct Vertex {
    digest: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    started: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    completed: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    cached: bool,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VertexStatus {
    id: String,
    vertex: String,
    #[serde(default)]
    current: i64,
    #[serde(default)]
    total: i64,
    #[serde(default)]
    timestamp: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    started: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    completed: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Deserialize)]
struct VertexLog {
    vertex: String,
    #[serde(default)]
    timestamp: Option<DateTime<FixedOffset>>,
    /// Base64, as Go encodes `[]byte`.
    #[serde(default)]
    data: String,
}

#[derive(Debug, Deserialize)]
struct VertexWarning {
    #[serde(default)]
    vertex: String,
    /// Base64, as Go encodes `[]byte`.
    #[serde(default)]
    short: String,
}

/// One vertex as far as the stream has told.
#[derive(Debug, Default)]
struct VertexState {
    /// `#N`, given when the vertex first shows up in the log (0: not yet).
    number: usize,
    name: String,
    /// Start of the latest run of the vertex (log timestamps count from it).
    started: Option<DateTime<FixedOffset>>,
    /// Whether the first completion came from the cache. The first one
    /// counts: a step restored from the registry cache is announced cached,
    /// then again without `cached` while the cache is exported.
    first_completion: Option<bool>,
    /// `DONE`/`CACHED`/`ERROR` line held back while the vertex may run
    /// again (a `FROM` resolves, pulls and extracts in three runs): printed
    /// once another vertex speaks or the stream ends.
    pending_end: Option<String>,
    /// The unfinished last line of the vertex's log.
    partial_log: String,
    /// When each in-progress status was last printed, and at what count.
    status_printed: HashMap<String, (Option<DateTime<FixedOffset>>, i64)>,
}

/// Follows a `--progress=rawjson` stream: renders readable lines in place of
/// the JSON and counts the Dockerfile steps that ran and came from the cache.
#[derive(Debug, Default)]
pub struct RawProgress {
    values: JsonValues,
    vertexes: HashMap<String, VertexState>,
    next_number: usize,
    /// Vertexes with a held-back end line, in the order they ended.
    pending: Vec<String>,
    /// The last lines rendered, for the error of a failed build.
    tail: VecDeque<String>,
}

impl RawProgress {
    /// Feeds one line of buildx's output; returns the lines to log instead.
    pub fn observe(&mut self, _stream: crate::process::Stream, line: &str) -> Vec<String> {
        let mut out = Vec::new();
        for piece in self.values.push_line(line) {
            match piece {
                Piece::Json(text) => match serde_json::from_str::<SolveStatus>(&text) {
                    Ok(status) => self.render(status, &mut out),
                    Err(_) => self.text(&text, &mut out),
                },
                Piece::Text(text) => self.text(&text, &mut out),
            }
        }
        self.remember(&out);
        out
    }

    /// The end of the stream: what was held back.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(text) = self.values.take() {
            self.text(&text, &mut out);
        }
        self.flush_pending(None, &mut out);
        self.remember(&out);
        out
    }

    /// The last rendered lines (what a failed build's error quotes).
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    /// Dockerfile instructions other than `FROM` that finished, and how many
    /// of them came from the cache.
    pub fn steps(&self) -> Steps {
        let mut steps = Steps::default();
        for v in self
            .vertexes
            .values()
            .filter(|v| is_instruction_step(&v.name))
        {
            if let Some(cached) = v.first_completion {
                steps.total += 1;
                steps.cached += u32::from(cached);
            }
        }
        steps
    }

    fn remember(&mut self, lines: &[String]) {
        for l in lines {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(l.clone());
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<String>) {
        self.flush_pending(None, out);
        out.extend(text.lines().map(str::to_string));
    }

    fn render(&mut self, status: SolveStatus, out: &mut Vec<String>) {
        for v in status.vertexes {
            self.vertex(v, out);
        }
        for s in status.statuses {
            self.status(s, out);
        }
        for l in status.logs {
            self.log(l, out);
        }
        for w in status.warnings {
            let short = decode(&w.short);
            let n = self.speak(&w.vertex, out);
            self.emit(&w.vertex, format!("#{n} WARN: {}", short.trim_end()), out);
        }
    }

    /// Vertex `digest`'s number, given (with its `#N name` line) the first
    /// time it has something to show.
    fn speak(&mut self, digest: &str, out: &mut Vec<String>) -> usize {
        let next = self.next_number + 1;
        let state = self.vertexes.entry(digest.to_string()).or_default();
        if state.number == 0 {
            state.number = next;
            self.next_number = next;
            let line = format!("#{next} {}", state.name);
            self.emit(digest, line, out);
        }
        self.vertexes[digest].number
    }

    /// Logs a line of vertex `digest`, after the other vertexes' held-back
    /// end lines (as BuildKit's printer closes one vertex before the next).
    fn emit(&mut self, digest: &str, line: String, out: &mut Vec<String>) {
        self.flush_pending(Some(digest), out);
        out.push(line);
    }

    fn vertex(&mut self, v: Vertex, out: &mut Vec<String>) {
        let state = self.vertexes.entry(v.digest.clone()).or_default();
        if !v.name.is_empty() {
            state.name = v.name.clone();
        }
        let Some(started) = v.started else {
            // Announced, not started: nothing to show yet.
            return;
        };
        let restarted = state.started != Some(started);
        state.started = Some(started);
        let n = self.speak(&v.digest, out);
        let Some(completed) = v.completed else {
            if restarted
                && self
                    .vertexes
                    .get_mut(&v.digest)
                    .and_then(|s| s.pending_end.take())
                    .is_some()
            {
                self.pending.retain(|d| d != &v.digest);
            }
            return;
        };
        let state = self
            .vertexes
            .get_mut(&v.digest)
            .expect("spoken vertex exists");
        let first = *state.first_completion.get_or_insert(v.cached);
        let end = match &v.error {
            Some(e) if e.ends_with("context canceled") => format!("#{n} CANCELED"),
            Some(e) => format!("#{n} ERROR: {e}"),
            None if v.cached || first => format!("#{n} CACHED"),
            None => format!("#{n} DONE {:.1}s", seconds(completed - started)),
        };
        let had_pending = state.pending_end.take().is_some();
        if had_pending {
            self.pending.retain(|d| d != &v.digest);
        }
        if v.error.is_some() {
            // An error is news: said at once, after what the step logged.
            let state = self
                .vertexes
                .get_mut(&v.digest)
                .expect("spoken vertex exists");
            if !state.partial_log.is_empty() {
                let rest = format!("#{n} {}", std::mem::take(&mut state.partial_log));
                self.emit(&v.digest, rest, out);
            }
            self.emit(&v.digest, end, out);
        } else {
            self.vertexes
                .get_mut(&v.digest)
                .expect("spoken vertex exists")
                .pending_end = Some(end);
            self.pending.push(v.digest);
        }
    }

    fn status(&mut self, s: VertexStatus, out: &mut Vec<String>) {
        let state = self.vertexes.entry(s.vertex.clone()).or_default();
        // As BuildKit's plain printer: a status in progress is shown again
        // only after 5 s or 5 % more of its total.
        if s.completed.is_none()
            && let Some((at, current)) = state.status_printed.get(&s.id)
        {
            let progressed = s.total > 0 && (s.current - current) as f64 / s.total as f64 >= 0.05;
            let waited = match (s.timestamp, at) {
                (Some(now), Some(at)) => seconds(now - *at) >= 5.0,
                _ => false,
            };
            if !progressed && !waited {
                return;
            }
        }
        if s.completed.is_none() && s.current == 0 && s.total == 0 {
            // "exporting layers" with nothing to say yet: its `done` will come.
            state.status_printed.insert(s.id, (s.timestamp, 0));
            return;
        }
        state
            .status_printed
            .insert(s.id.clone(), (s.timestamp, s.current));
        let n = self.speak(&s.vertex, out);
        let bytes = if s.total != 0 {
            format!(" {} / {}", progress_size(s.current), progress_size(s.total))
        } else if s.current != 0 {
            format!(" {}", progress_size(s.current))
        } else {
            String::new()
        };
        let mut tm = String::new();
        if let (Some(start), Some(end)) = (s.started, s.completed.or(s.timestamp)) {
            let d = seconds(end - start);
            if d > 0.01 {
                tm = format!(" {d:.1}s");
            }
        }
        if s.completed.is_some() {
            tm.push_str(" done");
        }
        self.emit(&s.vertex, format!("#{n} {}{bytes}{tm}", s.id), out);
    }

    fn log(&mut self, l: VertexLog, out: &mut Vec<String>) {
        let data = decode(&l.data);
        if data.is_empty() {
            return;
        }
        let n = self.speak(&l.vertex, out);
        let state = self
            .vertexes
            .get_mut(&l.vertex)
            .expect("spoken vertex exists");
        let offset = match (l.timestamp, state.started) {
            (Some(at), Some(start)) => seconds(at - start),
            _ => 0.0,
        };
        // BuildKit's precision: 0.123, 12.34, 123.4.
        let ts = if offset < 10.0 {
            format!("{offset:.3}")
        } else if offset < 100.0 {
            format!("{offset:.2}")
        } else {
            format!("{offset:.1}")
        };
        let mut segments: Vec<&str> = data.split('\n').collect();
        // The text after the last newline: a line still being written.
        let unfinished = segments.pop().filter(|rest| !rest.is_empty());
        let mut lines = Vec::new();
        for seg in segments {
            let seg = seg.trim_end_matches('\r');
            // The first piece may end a line started in an earlier event
            // (timed by that event).
            let line = match std::mem::take(&mut state.partial_log) {
                started if !started.is_empty() => format!("{started}{seg}"),
                _ => format!("{ts} {seg}"),
            };
            lines.push(format!("#{n} {line}"));
        }
        if let Some(rest) = unfinished {
            if state.partial_log.is_empty() {
                state.partial_log = format!("{ts} {rest}");
            } else {
                state.partial_log.push_str(rest);
            }
        }
        for line in lines {
            self.emit(&l.vertex, line, out);
        }
    }

    /// Prints the held-back end lines of every vertex but `except`.
    fn flush_pending(&mut self, except: Option<&str>, out: &mut Vec<String>) {
        let mut keep = Vec::new();
        for digest in std::mem::take(&mut self.pending) {
            if Some(digest.as_str()) == except {
                keep.push(digest);
                continue;
            }
            if let Some(state) = self.vertexes.get_mut(&digest) {
                if !state.partial_log.is_empty() {
                    out.push(format!(
                        "#{} {}",
                        state.number,
                        std::mem::take(&mut state.partial_log)
                    ));
                }
                if let Some(end) = state.pending_end.take() {
                    out.push(end);
                }
            }
        }
        self.pending = keep;
    }
}

fn decode(b64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds().map_or(0.0, |us| us as f64 / 1e6)
}

/// Byte counts as BuildKit prints them (`tonistiigi/units`, `%.2f`): plain
/// bytes below 1 kB (`538B`), else two decimals of a decimal unit (`1.09MB`).
fn progress_size(n: i64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n.unsigned_abs() < 1000 {
        return format!("{n}B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    while value.abs() >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

/// `[build 2/4] RUN make` or `[2/3] COPY . .`: a Dockerfile step; not
/// `[internal] ...`, not `exporting to image`, not the `FROM` steps.
pub(crate) fn is_instruction_step(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('[') else {
        return false;
    };
    let Some((bracket, instruction)) = rest.split_once("] ") else {
        return false;
    };
    let counter = bracket.rsplit(' ').next().unwrap_or("");
    let numbered = counter
        .split_once('/')
        .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
    numbered
        && !instruction
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("FROM ")
}

/// What one line of input turned out to hold.
#[derive(Debug, PartialEq)]
enum Piece {
    /// One whole JSON value (maybe spread over several lines).
    Json(String),
    /// Text that is not JSON.
    Text(String),
}

/// Cuts a stream of lines into JSON values and plain text: a value starts
/// with `{` outside any value and ends where its braces balance (braces
/// inside strings do not count), whatever the line breaks in between.
#[derive(Debug, Default)]
struct JsonValues {
    buf: String,
    lines: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl JsonValues {
    fn push_line(&mut self, line: &str) -> Vec<Piece> {
        let mut out = Vec::new();
        if self.depth == 0 && !line.trim_start().starts_with('{') {
            out.push(Piece::Text(line.to_string()));
            return out;
        }
        let mut from = 0;
        for (i, c) in line.char_indices() {
            if self.depth == 0 {
                if c.is_whitespace() {
                    continue;
                }
                if c != '{' {
                    // Text after a value on the same line.
                    out.push(Piece::Text(line[i..].to_string()));
                    return out;
                }
                from = i;
            }
            if self.in_string {
                match c {
                    _ if self.escaped => self.escaped = false,
                    '\\' => self.escaped = true,
                    '"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => self.in_string = true,
                '{' | '[' => self.depth += 1,
                '}' | ']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.buf.push_str(&line[from..=i]);
                        out.push(Piece::Json(std::mem::take(&mut self.buf)));
                        self.lines = 0;
                    }
                }
                _ => {}
            }
        }
        if self.depth > 0 {
            self.buf.push_str(&line[from..]);
            self.buf.push('\n');
            self.lines += 1;
            if self.lines > MAX_VALUE_LINES
                && let Some(text) = self.take()
            {
                out.push(Piece::Text(text));
            }
        }
        out
    }

    /// An unfinished value, given back as text (the stream ended inside it).
    fn take(&mut self) -> Option<String> {
        let text = std::mem::take(&mut self.buf);
        *self = JsonValues::default();
        (!text.is_empty()).then(|| text.trim_end_matches('\n').to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Stream;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/buildx")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Feeds `text` line by line, as the runner does; returns what is logged.
    fn feed(p: &mut RawProgress, text: &str) -> Vec<String> {
        let mut logged = Vec::new();
        for line in text.lines() {
            logged.extend(p.observe(Stream::Stderr, line));
        }
        logged.extend(p.finish());
        logged
    }

    /// buildx ≥ 0.14's shape from 0.13's: each value compacted onto one line,
    /// whitespace outside strings dropped and the text otherwise untouched
    /// (Go's `json.Compact`), which is what the newer buildx prints for
    /// the same events. Text after the values stays as it is.
    fn one_value_per_line(text: &str) -> String {
        let mut out = String::new();
        let mut values = JsonValues::default();
        for line in text.lines() {
            for piece in values.push_line(line) {
                match piece {
                    Piece::Json(v) => {
                        let mut in_string = false;
                        let mut escaped = false;
                        for c in v.chars() {
                            if in_string {
                                in_string = c != '"' || escaped;
                                escaped = c == '\\' && !escaped;
                            } else if c == '"' {
                                in_string = true;
                            } else if c.is_whitespace() {
                                continue;
                            }
                            out.push(c);
                        }
                        out.push('\n');
                    }
                    Piece::Text(t) => {
                        out.push_str(&t);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    #[test]
    fn a_cold_build_runs_every_step_and_reads_as_buildkit_plain_output() {
        let mut p = RawProgress::default();
        let logged = feed(&mut p, &fixture("rawjson-0.13-cold.json"));
        assert_eq!(
            p.steps(),
            Steps {
                cached: 0,
                total: 7
            },
            "5 steps of `build`, 2 of the final stage:\n{}",
            logged.join("\n")
        );
        let text = logged.join("\n");
        assert!(
            logged
                .iter()
                .all(|l| !l.trim_start().starts_with('{') && !l.contains("\"vertexes\"")),
            "no JSON in the log:\n{text}"
        );
        // Numbered as BuildKit numbers them: in the order they show up.
        assert_eq!(
            logged[0],
            "#1 [internal] load build definition from Dockerfile"
        );
        assert!(
            logged.contains(&"#1 transferring dockerfile: 538B done".to_string()),
            "{text}"
        );
        let run = number_of(
            &logged,
            "[build 4/6] RUN for part in parser checker emitter; do echo \"compiling $part\"; done",
        );
        for l in ["compiling parser", "compiling checker", "compiling emitter"] {
            assert!(
                logged
                    .iter()
                    .any(|x| x.starts_with(&format!("#{run} 0.")) && x.ends_with(l)),
                "the RUN's log line `{l}`, timed from the step's start:\n{text}"
            );
        }
        assert!(
            logged
                .iter()
                .any(|l| l.starts_with(&format!("#{run} DONE ")) && l.ends_with('s')),
            "{text}"
        );
        assert!(
            !logged
                .iter()
                .any(|l| l.ends_with(" CACHED") && !l.contains("FROM")),
            "nothing came from the cache:\n{text}"
        );
        // The missing cache is a vertex error in a build that succeeds.
        let import = number_of(
            &logged,
            "importing cache manifest from 127.0.0.1:59893/fixture:cache-main",
        );
        assert!(
            logged.contains(&format!(
                "#{import} ERROR: failed to configure registry cache importer: 127.0.0.1:59893/fixture:cache-main: not found"
            )),
            "{text}"
        );
        // A pulled layer shows its size as BuildKit prints it.
        let from = logged
            .iter()
            .find(|l| l.contains("[build 1/6] FROM"))
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        assert!(
            logged
                .iter()
                .any(|l| l.starts_with(&format!("{from} sha256:07af8778"))
                    && l.contains("1.09MB / 1.09MB")),
            "{text}"
        );
        assert!(
            logged
                .iter()
                .any(|l| l.ends_with("exporting cache to registry")),
            "{text}"
        );
        // Every step is named once and ends once.
        for name in [
            "[build 2/6] WORKDIR /src",
            "[stage-1 2/3] COPY --from=build /src/app.sh /usr/local/bin/app",
        ] {
            let n = number_of(&logged, name);
            assert_eq!(
                logged
                    .iter()
                    .filter(|l| l.starts_with(&format!("#{n} DONE")))
                    .count(),
                1,
                "{name}:\n{text}"
            );
        }
    }

    #[test]
    fn a_one_file_change_counts_the_steps_before_it_as_cached() {
        let mut p = RawProgress::default();
        let logged = feed(&mut p, &fixture("rawjson-0.13-cached.json"));
        let text = logged.join("\n");
        assert_eq!(
            p.steps(),
            Steps {
                cached: 3,
                total: 7
            },
            "WORKDIR, COPY greeting.txt and the first RUN:\n{text}"
        );
        for name in [
            "[build 2/6] WORKDIR /src",
            "[build 3/6] COPY greeting.txt ./",
        ] {
            let n = number_of(&logged, name);
            assert!(logged.contains(&format!("#{n} CACHED")), "{name}:\n{text}");
        }
        let changed = number_of(&logged, "[build 5/6] COPY main.sh ./");
        assert!(
            logged
                .iter()
                .any(|l| l.starts_with(&format!("#{changed} DONE "))),
            "{text}"
        );
        let installed = number_of(
            &logged,
            "[stage-1 3/3] RUN echo \"installed $(wc -c < /usr/local/bin/app) bytes\"",
        );
        assert!(
            logged
                .iter()
                .any(|l| l.starts_with(&format!("#{installed} 0."))
                    && l.ends_with(" installed 81 bytes")),
            "{text}"
        );
    }

    #[test]
    fn a_failed_run_keeps_its_log_and_the_plain_error_text_in_the_tail() {
        let mut p = RawProgress::default();
        let logged = feed(&mut p, &fixture("rawjson-0.13-failed.json"));
        let text = logged.join("\n");
        let n = number_of(&logged, "[2/2] RUN echo boom && exit 3");
        let at = |needle: &str| {
            logged
                .iter()
                .position(|l| l == needle || l.ends_with(needle))
                .unwrap_or_else(|| panic!("{needle}:\n{text}"))
        };
        let boom = at(" boom");
        assert!(logged[boom].starts_with(&format!("#{n} 0.")), "{text}");
        let error = at(&format!(
            "#{n} ERROR: process \"/bin/sh -c echo boom && exit 3\" did not complete successfully: exit code: 3"
        ));
        let excerpt = at("   3 | >>> RUN echo boom && exit 3");
        let solve = at(
            "ERROR: failed to solve: process \"/bin/sh -c echo boom && exit 3\" did not complete successfully: exit code: 3",
        );
        assert!(
            boom < error && error < excerpt && excerpt < solve,
            "in order:\n{text}"
        );
        let tail = p.tail();
        assert_eq!(
            tail.last(),
            logged.last(),
            "the tail ends where the log does"
        );
        assert!(
            tail.iter().any(|l| l.ends_with(" boom")),
            "the step's last log line is in the error:\n{}",
            tail.join("\n")
        );
        assert_eq!(
            p.steps(),
            Steps {
                cached: 0,
                total: 1
            }
        );
    }

    #[test]
    fn one_value_per_line_reads_the_same_as_indented_values() {
        // buildx 0.14 and later print each SolveStatus on one line.
        for name in [
            "rawjson-0.13-cold.json",
            "rawjson-0.13-cached.json",
            "rawjson-0.13-failed.json",
        ] {
            let indented = fixture(name);
            let compact = one_value_per_line(&indented);
            assert!(
                compact.lines().count() < indented.lines().count() / 5,
                "{name} was compacted"
            );
            assert!(
                compact
                    .lines()
                    .filter(|l| l.starts_with('{'))
                    .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            );
            let (mut a, mut b) = (RawProgress::default(), RawProgress::default());
            assert_eq!(feed(&mut a, &indented), feed(&mut b, &compact), "{name}");
            assert_eq!(a.steps(), b.steps(), "{name}");
        }
    }

    #[test]
    fn text_passes_through_and_braces_in_strings_do_not_end_a_value() {
        let mut p = RawProgress::default();
        assert_eq!(
            p.observe(Stream::Stderr, "WARNING: no output specified"),
            ["WARNING: no output specified"]
        );
        let value = r#"{"vertexes": [{"digest": "sha256:a", "name": "[1/2] RUN echo '}{' \"q\"", "started": "2024-01-01T00:00:00Z"}]}"#;
        let (head, rest) = value.split_at(value.find("\"name\"").unwrap());
        assert!(
            p.observe(Stream::Stderr, head).is_empty(),
            "an unfinished value waits"
        );
        assert_eq!(
            p.observe(Stream::Stderr, rest),
            [r#"#1 [1/2] RUN echo '}{' "q""#]
        );
        // Not JSON after all: given back as text, nothing lost.
        assert!(p.observe(Stream::Stderr, "{ not json").is_empty());
        assert_eq!(p.observe(Stream::Stderr, "}"), ["{ not json", "}"]);
        // A stream that ends inside a value gives it back too.
        assert!(p.observe(Stream::Stderr, "{ \"unterminated").is_empty());
        assert_eq!(p.finish(), ["{ \"unterminated"]);
        assert_eq!(
            p.steps(),
            Steps::default(),
            "a step that never ended is not counted"
        );
    }

    #[test]
    fn log_lines_split_across_events_are_joined() {
        let mut p = RawProgress::default();
        let event = |data: &str, ts: &str| {
            let data = base64::engine::general_purpose::STANDARD.encode(data);
            format!(
                r#"{{"logs": [{{"vertex": "sha256:a", "stream": 1, "data": "{data}", "timestamp": "{ts}"}}]}}"#
            )
        };
        let start = r#"{"vertexes": [{"digest": "sha256:a", "name": "[1/1] RUN make", "started": "2024-01-01T00:00:00Z"}]}"#;
        assert_eq!(p.observe(Stream::Stderr, start), ["#1 [1/1] RUN make"]);
        assert!(
            p.observe(Stream::Stderr, &event("compil", "2024-01-01T00:00:00.5Z"))
                .is_empty()
        );
        assert_eq!(
            p.observe(
                Stream::Stderr,
                &event("ing\nlinking\nhalf", "2024-01-01T00:00:12.25Z")
            ),
            ["#1 0.500 compiling", "#1 12.25 linking"]
        );
        let end = r#"{"vertexes": [{"digest": "sha256:a", "name": "[1/1] RUN make", "started": "2024-01-01T00:00:00Z", "completed": "2024-01-01T00:00:13Z"}]}"#;
        assert!(
            p.observe(Stream::Stderr, end).is_empty(),
            "the end line waits in case the step runs again"
        );
        assert_eq!(p.finish(), ["#1 12.25 half", "#1 DONE 13.0s"]);
        assert_eq!(
            p.steps(),
            Steps {
                cached: 0,
                total: 1
            }
        );
    }

    #[test]
    fn the_first_completion_decides_whether_a_step_was_cached() {
        // A step restored from the registry cache is announced cached, then
        // again without `cached` while the cache is exported.
        let mut p = RawProgress::default();
        let v = |cached: bool, at: &str| {
            format!(
                r#"{{"vertexes": [{{"digest": "sha256:b", "name": "[2/3] COPY . .", "started": "{at}", "completed": "{at}", "cached": {cached}}}]}}"#
            )
        };
        let mut logged = p.observe(Stream::Stderr, &v(true, "2024-01-01T00:00:01Z"));
        logged.extend(p.observe(Stream::Stderr, &v(false, "2024-01-01T00:00:09Z")));
        logged.extend(p.finish());
        assert_eq!(
            p.steps(),
            Steps {
                cached: 1,
                total: 1
            }
        );
        assert_eq!(logged, ["#1 [2/3] COPY . .", "#1 CACHED"]);
    }

    #[test]
    fn byte_counts_read_as_buildkit_writes_them() {
        assert_eq!(progress_size(0), "0B");
        assert_eq!(progress_size(538), "538B");
        assert_eq!(progress_size(1087658), "1.09MB");
        assert_eq!(progress_size(1000), "1.00kB");
        assert_eq!(progress_size(2_500_000_000), "2.50GB");
    }

    #[test]
    fn step_names() {
        assert!(is_instruction_step("[build 2/4] RUN make"));
        assert!(is_instruction_step("[2/3] COPY . ."));
        assert!(is_instruction_step("[linux/arm64 build 2/4] RUN make"));
        assert!(!is_instruction_step(
            "[build 1/4] FROM docker.io/library/golang:1.22@sha256:abc"
        ));
        assert!(!is_instruction_step(
            "[internal] load build definition from Dockerfile"
        ));
        assert!(!is_instruction_step("exporting to image"));
    }

    /// `#N` of the vertex named `name` in the log.
    fn number_of(logged: &[String], name: &str) -> String {
        logged
            .iter()
            .find_map(|l| {
                l.strip_suffix(name)
                    .and_then(|head| head.strip_prefix('#'))
                    .map(|n| n.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no line names `{name}`:\n{}", logged.join("\n")))
    }
}
