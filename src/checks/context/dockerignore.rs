//! `.dockerignore` files read and matched the way BuildKit does it, so the
//! file set we measure and hash is the file set the builder receives.
//!
//! Reading follows moby's `ignorefile.ReadAll` (a `#` in the first column is
//! a comment, whitespace is trimmed, `!` marks an exception, each pattern is
//! cleaned like Go's `filepath.Clean` and loses one leading `/`); compiling
//! and matching follow `patternmatcher` (a syntax check with Go's
//! `filepath.Match` rules, then exact, prefix, suffix or regular-expression
//! matching, the last matching pattern winning), and [`IgnoreFile::matches`]
//! is `MatchesUsingParentResults`, the variant BuildKit's `fsutil` walker
//! calls with the parent directory's results.
//!
//! Where moby builds a Go regular expression we build the same expression and
//! translate it to the `regex` crate's dialect (see [`go_regex_to_rust`]).
//! Expressions Go would reject when BuildKit first matches a path are
//! rejected here when the file is read, with its line number.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::BadInput;

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern without its `!` (moby's `cleanedPattern`).
    pub text: String,
    /// A `!` line: re-includes what earlier lines excluded.
    pub exception: bool,
    /// 1-based line in the ignore file.
    pub line: usize,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    /// `foo/**`: everything starting with the text minus its `**`.
    Prefix,
    /// `**/foo` (and `**`): everything ending with the text minus its `**`.
    Suffix,
    Regex(regex::Regex),
}

impl Pattern {
    /// Whether this one pattern matches a slash-separated relative path.
    pub fn is_match(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.text[2..];
                path.ends_with(suffix) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    /// The pattern with a trailing `/**` or `/*` removed (fsutil's
    /// `patternWithoutTrailingGlob`), used to decide whether an exception
    /// can reach inside an excluded directory.
    fn without_trailing_glob(&self) -> &str {
        let t = self.text.strip_suffix("/**").unwrap_or(&self.text);
        t.strip_suffix("/*").unwrap_or(t)
    }

    /// The line as it reads after cleaning, with its `!`.
    pub fn display(&self) -> String {
        if self.exception {
            format!("!{}", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// Why a line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    /// The line as written (trimmed).
    pub text: String,
    pub reason: String,
}

/// The patterns of one ignore file (or none).
#[derive(Debug, Clone, Default)]
pub struct IgnoreFile {
    /// Where the patterns came from; `None` when the context has no ignore file.
    pub path: Option<PathBuf>,
    pub patterns: Vec<Pattern>,
    has_exceptions: bool,
    /// True when no exception has a wildcard before its trailing glob: then an
    /// excluded directory need not be entered unless an exception names a
    /// path inside it (fsutil's `onlyPrefixExcludeExceptions`).
    exceptions_are_prefixes: bool,
}

/// Per-pattern results for a directory, handed to its children.
pub type MatchInfo = Vec<bool>;

impl IgnoreFile {
    /// Parses ignore-file text. Never panics; every rejection names the line.
    pub fn parse(text: &[u8], path: Option<PathBuf>) -> Result<IgnoreFile, LineError> {
        let mut patterns = Vec::new();
        for (line, raw) in read_lines(text)? {
            if let Some(p) = compile_line(&raw, line)? {
                patterns.push(p);
            }
        }
        let has_exceptions = patterns.iter().any(|p| p.exception);
        let exceptions_are_prefixes = !patterns.iter().filter(|p| p.exception).any(|p| {
            p.without_trailing_glob()
                .contains(['*', '[', ']', '?', '^', '\\'])
        });
        Ok(IgnoreFile {
            path,
            patterns,
            has_exceptions,
            exceptions_are_prefixes,
        })
    }

    /// Reads the file, turning a bad line into a [`BadInput`] naming the file and line.
    pub fn read(path: &Path) -> anyhow::Result<IgnoreFile> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        IgnoreFile::parse(&text, Some(path.to_path_buf()))
            .map_err(|e| BadInput::other(Self::read_error_message(path, &e)).into())
    }

    /// The message for a line that cannot be used.
    pub fn read_error_message(path: &Path, e: &LineError) -> String {
        format!(
            "{} line {}: the pattern `{}` cannot be used: {}; fix or remove the line",
            path.display(),
            e.line,
            e.text,
            e.reason
        )
    }

    /// `MatchesUsingParentResults`: whether `path` (slash-separated,
    /// relative to the context) is excluded, given the results of its parent
    /// directory (`None` for entries at the top of the context). Returns the
    /// results to hand to `path`'s children when it is a directory.
    pub fn matches(&self, path: &str, parent: Option<&[bool]>) -> (bool, MatchInfo) {
        let mut info = vec![false; self.patterns.len()];
        let mut excluded = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|m| m[i]);
            if !hit {
                // An exclusion can only change an included path, an exception
                // only an excluded one; the others are not evaluated.
                if p.exception != excluded {
                    continue;
                }
                hit = p.is_match(path);
                if !hit && parent.is_none() {
                    hit = parent_dirs(path).any(|d| p.is_match(d));
                }
            }
            info[i] = hit;
            if hit {
                excluded = !p.exception;
            }
        }
        (excluded, info)
    }

    /// buildah's test for entering an excluded directory: some exception,
    /// trimmed of slashes and given a trailing one, starts with the
    /// directory's path (a plain string prefix, so `a` also enters for `!ab/c`).
    pub fn buildah_enters_excluded_dir(&self, dir: &str) -> bool {
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| format!("{}/", p.text.trim_matches('/')).starts_with(dir.trim_matches('/')))
    }

    /// `MatchesOrParentMatches` for a path on its own (no walk state): used
    /// to check what a suggested line would exclude.
    pub fn excludes(&self, path: &str) -> bool {
        self.matches(path, None).0
    }

    /// Whether an excluded directory must still be entered because an
    /// exception could re-include something inside it.
    pub fn must_enter_excluded_dir(&self, dir: &str) -> bool {
        if !self.has_exceptions {
            return false;
        }
        if !self.exceptions_are_prefixes {
            return true;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash))
    }

    pub fn has_exceptions(&self) -> bool {
        self.has_exceptions
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Every proper ancestor of a relative path, shortest first: `a`, `a/b` for `a/b/c`.
fn parent_dirs(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices()
        .filter(|&(_, c)| c == '/')
        .map(move |(i, _)| &path[..i])
}

/// Splits like Go's `bufio.Scanner` with `ScanLines`: `\n` ends a line, a
/// trailing `\r` is dropped, a UTF-8 byte-order mark on the first line is
/// dropped, and a line of 64 KiB or more is an error.
fn read_lines(text: &[u8]) -> Result<Vec<(usize, String)>, LineError> {
    const MAX_LINE: usize = 64 * 1024;
    let mut out = Vec::new();
    let mut rest = text;
    let mut line = 0;
    while !rest.is_empty() {
        line += 1;
        let (mut raw, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if raw.len() >= MAX_LINE {
            return Err(LineError {
                line,
                text: String::from_utf8_lossy(&raw[..40]).into_owned() + "...",
                reason: format!(
                    "the line is {} bytes long; lines must be shorter than {MAX_LINE} bytes",
                    raw.len()
                ),
            });
        }
        raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line == 1 {
            raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        }
        out.push((line, String::from_utf8_lossy(raw).into_owned()));
        rest = next;
    }
    Ok(out)
}

/// One line through `ReadAll` and `patternmatcher.New`: `None` for comments and blank lines.
fn compile_line(raw: &str, line: usize) -> Result<Option<Pattern>, LineError> {
    // The comment check comes before trimming: ` # x` is a pattern.
    if raw.starts_with('#') {
        return Ok(None);
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let err = |reason: String| LineError {
        line,
        text: trimmed.to_string(),
        reason,
    };
    // ReadAll: normalise the pattern, keeping its `!`.
    let invert = trimmed.starts_with('!');
    let mut body = if invert {
        trimmed[1..].trim().to_string()
    } else {
        trimmed.to_string()
    };
    if !body.is_empty() {
        body = clean(&body);
        if body.len() > 1 && body.starts_with('/') {
            body.remove(0);
        }
    }
    let read = if invert { format!("!{body}") } else { body };
    // New: trim and clean again (so `./!x` becomes an exception, as in moby).
    let cleaned = clean(read.trim());
    let (exception, text) = match cleaned.strip_prefix('!') {
        Some("") => {
            return Err(err(
                "a `!` needs a pattern after it (moby: illegal exclusion pattern \"!\")".into(),
            ));
        }
        Some(rest) => (true, rest.to_string()),
        None => (false, cleaned),
    };
    check_glob_syntax(&text).map_err(|why| err(format!("{why} (Go filepath.Match syntax)")))?;
    let kind = compile(&text).map_err(err)?;
    Ok(Some(Pattern {
        text,
        exception,
        line,
        kind,
    }))
}

/// Go's `filepath.Clean` for slash-separated paths.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The errors Go's `filepath.Match` reports for a pattern (on Unix): an
/// unfinished `[...]` class, a bad range, or a trailing `\`. The pattern is
/// split into chunks at `*` outside classes, and each chunk is checked.
fn check_glob_syntax(pattern: &str) -> Result<(), String> {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b'*' {
            i += 1;
        }
        let start = i;
        let mut in_range = false;
        while i < b.len() {
            match b[i] {
                b'\\' if i + 1 < b.len() => i += 1,
                b'[' => in_range = true,
                b']' => in_range = false,
                b'*' if !in_range => break,
                _ => {}
            }
            i += 1;
        }
        check_chunk(&b[start..i])?;
    }
    Ok(())
}

fn check_chunk(c: &[u8]) -> Result<(), String> {
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            b'[' => {
                i += 1;
                if c.get(i) == Some(&b'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if c.get(i) == Some(&b']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    i = class_char(c, i)?;
                    if c[i] == b'-' {
                        i = class_char(c, i + 1)?;
                    }
                    ranges += 1;
                }
            }
            b'\\' => {
                if i + 1 >= c.len() {
                    return Err("a trailing `\\` escapes nothing".into());
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) character of a class; returns the
/// index after it, which must not be the end of the chunk.
fn class_char(c: &[u8], mut i: usize) -> Result<usize, String> {
    let unfinished = || {
        Err("a `[...]` character class is not closed or has an empty or reversed range".to_string())
    };
    match c.get(i) {
        None | Some(b'-') | Some(b']') => return unfinished(),
        Some(b'\\') => {
            i += 1;
            if i >= c.len() {
                return unfinished();
            }
        }
        _ => {}
    }
    // Input is valid UTF-8, so the character's length is its leading byte's.
    let len = match c[i] {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    };
    i += len;
    if i >= c.len() { unfinished() } else { Ok(i) }
}

/// patternmatcher's `compile`: decides the match kind and, for wildcards,
/// builds the same regular expression moby builds.
fn compile(pattern: &str) -> Result<Kind, String> {
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut kind = T::Exact;
    let mut pos = 0;
    let mut first = true;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    if kind == T::Exact {
                        kind = T::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = T::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = T::Regex;
                }
                if first {
                    kind = T::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = T::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = T::Regex;
            }
            // moby escapes these five; `|`, `{`, `}` and `^` reach the regex as they are.
            '.' | '+' | '(' | ')' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                // A trailing `\` was rejected by the syntax check.
                if let Some(&next) = chars.get(pos) {
                    pos += 1;
                    re.push('\\');
                    re.push(next);
                    kind = T::Regex;
                }
            }
            '[' | ']' => {
                re.push(ch);
                kind = T::Regex;
            }
            _ => re.push(ch),
        }
        first = false;
    }
    Ok(match kind {
        T::Exact => Kind::Exact,
        T::Prefix => Kind::Prefix,
        T::Suffix => Kind::Suffix,
        T::Regex => {
            re.push('$');
            let rust = go_regex_to_rust(&re)?;
            Kind::Regex(regex::RegexBuilder::new(&rust).size_limit(1 << 20).build().map_err(|e| {
                format!("it is not a valid pattern once translated to a regular expression ({re}): {}", one_line(&e.to_string()))
            })?)
        }
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Translates a Go (RE2) expression as moby builds it into the `regex`
/// crate's dialect. The dialects differ where moby passes pattern text
/// through unescaped: Go reads `{` as a literal unless it forms a repeat
/// count, and Go classes have no nesting (`[[]`) or set operators
/// (`&&`, `--`, `~~`). Escapes Go does not share with `regex` (`\Q..\E`,
/// octal, `\C`) are rejected.
pub fn go_regex_to_rust(go: &str) -> Result<String, String> {
    let c: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < c.len() {
        let ch = c[i];
        if ch == '\\' {
            let Some(&e) = c.get(i + 1) else {
                return Err("a trailing `\\` escapes nothing".into());
            };
            i += 2;
            if e.is_ascii_punctuation() {
                push_literal(&mut out, e);
            } else if "afnrtvdDsSwW".contains(e) || (!in_class && "bBAz".contains(e)) {
                out.push('\\');
                out.push(e);
            } else if e == 'p' || e == 'P' || e == 'x' {
                out.push('\\');
                out.push(e);
                if c.get(i) == Some(&'{') {
                    while i < c.len() && c[i] != '}' {
                        out.push(c[i]);
                        i += 1;
                    }
                    if i < c.len() {
                        out.push('}');
                        i += 1;
                    }
                }
            } else {
                return Err(format!(
                    "`\\{e}` is an escape that BuildKit's Go regular expressions reject or read differently"
                ));
            }
            continue;
        }
        if in_class {
            match ch {
                ']' => in_class = false,
                '[' if c.get(i + 1) == Some(&':') => {
                    // A POSIX class `[:alpha:]` reads the same in both dialects.
                    let rest: String = c[i..].iter().collect();
                    if let Some(end) = rest.find(":]").filter(|&e| e > 1) {
                        out.push_str(&rest[..end + 2]);
                        i += rest[..end + 2].chars().count();
                        continue;
                    }
                    out.push('\\');
                }
                '[' | '&' | '~' => out.push('\\'),
                '-' if c.get(i + 1) == Some(&'-') => out.push('\\'),
                _ => {}
            }
            out.push(ch);
            i += 1;
            continue;
        }
        match ch {
            '[' => {
                in_class = true;
                out.push('[');
                // `^` right after `[` negates; a `]` right after that is a literal.
                if c.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if c.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            '{' => match repeat_len(&c[i..]) {
                Some(n) => {
                    out.extend(&c[i..i + n]);
                    i += n;
                    continue;
                }
                None => out.push_str("\\{"),
            },
            '}' => out.push_str("\\}"),
            ']' => out.push_str("\\]"),
            _ => out.push(ch),
        }
        i += 1;
    }
    if in_class {
        return Err("a `[...]` character class is not closed".into());
    }
    Ok(out)
}

/// Pushes a literal character escaped for `regex` when it needs it.
fn push_literal(out: &mut String, ch: char) {
    if regex_syntax_meta(ch) {
        out.push('\\');
    }
    out.push(ch);
}

fn regex_syntax_meta(ch: char) -> bool {
    "\\.+*?()|[]{}^$#&-~".contains(ch)
}

/// Length of a Go repeat count at the start of `c` (`{n}`, `{n,}`,
/// `{n,m}`), or `None` when Go would read the `{` as a literal.
fn repeat_len(c: &[char]) -> Option<usize> {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < c.len() && c[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if c.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    (c.get(i) == Some(&'}')).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> IgnoreFile {
        IgnoreFile::parse(text.as_bytes(), None).unwrap()
    }

    /// Cases from moby/patternmatcher's tests and the Dockerfile reference.
    #[test]
    fn matches_like_moby() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("/foo", "foo", true),
            ("./foo", "foo", true),
            ("foo/", "foo", true),
            ("foo/../bar", "bar", true),
        ];
        for &(pattern, path, want) in cases {
            // moby's table is checked with MatchesOrParentMatches.
            assert_eq!(
                ignore(pattern).excludes(path),
                want,
                "pattern {pattern:?} against {path:?}"
            );
        }
    }

    #[test]
    fn the_last_matching_line_wins_and_parents_count() {
        let f = ignore("docs\n!docs/README.md\n*.md\n!keep.md\n");
        assert!(
            f.excludes("docs/guide.txt"),
            "a file inside an excluded directory is excluded"
        );
        assert!(
            !f.excludes("docs/README.md"),
            "the exception re-includes it"
        );
        assert!(f.excludes("notes.md"));
        assert!(!f.excludes("keep.md"));
        assert!(
            !f.excludes("sub/notes.md"),
            "`*.md` only matches at the top"
        );
    }

    #[test]
    fn reading_follows_ignorefile_read_all() {
        let f = ignore(
            "\u{feff}# comment\n  # not a comment\r\n\n  /abs/path/  \n! spaced \n./!bang\n//twice\n/\nfoo/**/\n",
        );
        let got: Vec<String> = f.patterns.iter().map(Pattern::display).collect();
        assert_eq!(
            got,
            [
                "# not a comment",
                "abs/path",
                "!spaced",
                "!bang",
                "twice",
                "/",
                "foo/**"
            ]
        );
        assert_eq!(f.patterns[0].line, 2);
        assert_eq!(f.patterns[6].line, 9);
    }

    #[test]
    fn bad_patterns_name_the_line() {
        for (text, line) in [
            ("ok\n[abc\n", 2),
            ("!\n", 1),
            ("a\\\n", 1),
            ("x\n\n!/\n", 3),
            ("[]\n", 1),
            ("[]a]\n", 1),
            ("[a-]\n", 1),
            ("*[z-a\n", 1),
        ] {
            let e = IgnoreFile::parse(text.as_bytes(), None).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(!e.reason.is_empty());
        }
        // A reversed range passes Go's glob syntax check, but the regular
        // expression moby builds from it fails when BuildKit first matches a
        // path; here it fails when the file is read.
        let e = IgnoreFile::parse(b"[z-a]\n", None).unwrap_err();
        assert!(e.reason.contains("regular expression"), "{e:?}");
    }

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("a//b", "a/b"),
            ("a/./b/", "a/b"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("./", "."),
            ("../../a/../b", "../../b"),
            ("!a/..", "."),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }

    #[test]
    fn go_only_regex_syntax_is_translated() {
        // Go reads a `{` that is not a repeat count literally.
        let f = ignore("a{b*\n");
        assert!(f.patterns[0].is_match("a{bc"));
        // `|` is not escaped by moby: the expression becomes an alternation.
        let f = ignore("x|y*\n");
        assert!(f.patterns[0].is_match("x"));
        assert!(f.patterns[0].is_match("yz"));
        // A nested-looking class is a flat class in Go.
        let f = ignore("[[]*\n");
        assert!(f.patterns[0].is_match("[x"));
    }

    #[test]
    fn exceptions_decide_whether_an_excluded_dir_is_entered() {
        let f = ignore("node_modules\n.git\n!node_modules/keep/**\n");
        assert!(f.must_enter_excluded_dir("node_modules"));
        assert!(!f.must_enter_excluded_dir(".git"));
        let f = ignore("node_modules\n!**/keep\n");
        assert!(
            f.must_enter_excluded_dir("node_modules"),
            "a wildcard exception can match anywhere"
        );
        assert!(!ignore("node_modules\n").must_enter_excluded_dir("node_modules"));
    }
}
