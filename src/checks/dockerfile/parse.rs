//! The Dockerfile parser, following BuildKit's `frontend/dockerfile/parser`:
//! parser directives (`# syntax=`, `# escape=`), line continuations with
//! comments and blank lines inside, exec (JSON) and shell forms, builder flags
//! (`--from=`, `--mount=`), heredocs (`<<EOF`, `<<-EOF`, several per line),
//! `ARG` before the first `FROM` with `${VAR:-default}` substitution in `FROM`,
//! and stages by name or index.
//!
//! Every rejection is a [`ParseError`] carrying the 1-based line of the
//! instruction that is wrong, so the user sees `Dockerfile:12: ...`.

use std::collections::BTreeMap;

/// A parse failure at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// Instructions BuildKit knows. Anything else is rejected, as BuildKit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word.to_ascii_lowercase().as_str() {
            "add" => Keyword::Add,
            "arg" => Keyword::Arg,
            "cmd" => Keyword::Cmd,
            "copy" => Keyword::Copy,
            "entrypoint" => Keyword::Entrypoint,
            "env" => Keyword::Env,
            "expose" => Keyword::Expose,
            "from" => Keyword::From,
            "healthcheck" => Keyword::Healthcheck,
            "label" => Keyword::Label,
            "maintainer" => Keyword::Maintainer,
            "onbuild" => Keyword::Onbuild,
            "run" => Keyword::Run,
            "shell" => Keyword::Shell,
            "stopsignal" => Keyword::Stopsignal,
            "user" => Keyword::User,
            "volume" => Keyword::Volume,
            "workdir" => Keyword::Workdir,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Add => "ADD",
            Keyword::Arg => "ARG",
            Keyword::Cmd => "CMD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Env => "ENV",
            Keyword::Expose => "EXPOSE",
            Keyword::From => "FROM",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Run => "RUN",
            Keyword::Shell => "SHELL",
            Keyword::Stopsignal => "STOPSIGNAL",
            Keyword::User => "USER",
            Keyword::Volume => "VOLUME",
            Keyword::Workdir => "WORKDIR",
        }
    }

    /// Instructions whose JSON form BuildKit recognises.
    fn takes_json(self) -> bool {
        matches!(
            self,
            Keyword::Run
                | Keyword::Cmd
                | Keyword::Entrypoint
                | Keyword::Shell
                | Keyword::Copy
                | Keyword::Add
                | Keyword::Volume
        )
    }

    /// Instructions that may carry heredocs (BuildKit's `heredocDirectives`).
    fn takes_heredocs(self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }
}

/// `--name=value` (or bare `--name`) before an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// Shell form keeps the text as written (the shell interprets it); exec
/// form is the JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    Shell(String),
    Exec(Vec<String>),
}

impl Args {
    pub fn is_exec(&self) -> bool {
        matches!(self, Args::Exec(_))
    }
}

/// A here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word without quotes (`EOF`).
    pub name: String,
    /// The body, lines joined with `\n` (leading tabs removed for `<<-`).
    pub content: String,
    /// `<<-`: leading tabs are stripped from the body and terminator.
    pub chomp: bool,
    /// False when the terminator was quoted (`<<'EOF'`): no expansion.
    pub expand: bool,
}

/// One instruction with where it sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub keyword: Keyword,
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// 1-based last line (continuations and heredoc bodies included).
    pub end_line: usize,
    pub flags: Vec<Flag>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// The instruction's logical line: continuations joined, comments dropped.
    pub text: String,
    /// Check ids silenced by `# fastdeploy:ignore=DF001,DF003` just above.
    pub ignored: Vec<String>,
    /// The file's escape token (`\\` or `` ` ``), for splitting arguments.
    pub escape: char,
}

impl Instruction {
    /// Values of every `--name=` flag, in order.
    pub fn flag_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |f| f.name == name)
            .filter_map(|f| f.value.as_deref())
    }

    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .filter(|f| f.name == name)
            .find_map(|f| f.value.as_deref())
    }

    /// RUN's `--mount=type=cache,target=...` targets.
    pub fn cache_mount_targets(&self) -> Vec<String> {
        self.flag_values("mount")
            .filter_map(|spec| {
                let fields: BTreeMap<String, String> = spec
                    .split(',')
                    .filter_map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    })
                    .collect();
                let is_cache = fields
                    .get("type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("cache"));
                if !is_cache {
                    return None;
                }
                fields
                    .get("target")
                    .or_else(|| fields.get("dst"))
                    .or_else(|| fields.get("destination"))
                    .cloned()
            })
            .collect()
    }

    /// The shell script a RUN executes: the command text plus heredoc bodies,
    /// or the JSON words joined (`["sh", "-c", "..."]` is still readable).
    pub fn script(&self) -> String {
        let mut s = match &self.args {
            Args::Shell(s) => s.clone(),
            Args::Exec(words) => words.join(" "),
        };
        for h in &self.heredocs {
            s.push('\n');
            s.push_str(&h.content);
        }
        s
    }

    /// COPY/ADD sources and destination: words with quotes removed, the
    /// last being the destination. Heredoc sources appear as `<<NAME`.
    pub fn copy_paths(&self) -> (Vec<String>, Option<String>) {
        let mut words = match &self.args {
            Args::Shell(s) => split_words_escaped(s, self.escape),
            Args::Exec(words) => words.clone(),
        };
        let dest = words.pop();
        (words, dest)
    }

    /// Whether the instruction is silenced for `rule`.
    pub fn ignores(&self, rule: &str) -> bool {
        self.ignored.iter().any(|r| r.eq_ignore_ascii_case(rule))
    }
}

/// A reference to a base image, split the way registries split it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// As written after substitution (`python:3.12-slim`).
    pub raw: String,
    /// Everything before the tag (`ghcr.io/org/app`).
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(raw: &str) -> ImageRef {
        let (rest, digest) = match raw.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (raw, None),
        };
        // A colon after the last slash is a tag; before it, a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        ImageRef {
            raw: raw.to_string(),
            name: name.to_string(),
            tag,
            digest,
        }
    }

    /// The repository path without registry host (`library/python` -> `python`).
    pub fn repository(&self) -> &str {
        let mut parts = self.name.splitn(2, '/');
        let first = parts.next().unwrap_or("");
        match parts.next() {
            Some(rest) if first.contains('.') || first.contains(':') || first == "localhost" => {
                rest
            }
            _ => &self.name,
        }
    }

    /// `python` for `python`, `docker.io/library/python` and `library/python`.
    pub fn short_name(&self) -> &str {
        let repo = self.repository();
        repo.strip_prefix("library/").unwrap_or(repo)
    }
}

/// Where a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    Image(ImageRef),
    /// The reference still holds a variable we cannot resolve (an ARG with
    /// no default and no build arg): nothing can be said about it.
    Unresolved(String),
}

/// One build stage: its FROM and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// Lower-cased, as BuildKit compares stage names.
    pub name: Option<String>,
    pub base: Base,
    pub platform: Option<String>,
    pub from: Instruction,
    /// Instructions after FROM, in order.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// `build` or `#1` for messages.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("#{}", self.index),
        }
    }

    pub fn line(&self) -> usize {
        self.from.line
    }
}

/// Where `COPY --from=` takes files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    Stage(usize),
    Image(ImageRef),
}

/// The parse result before the path is attached (see `super::Dockerfile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub syntax: Option<String>,
    pub escape: char,
    /// `ARG`s before the first FROM, with their defaults.
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

/// Parses Dockerfile text. `build_args` override the defaults of ARGs
/// declared before the first FROM when substituting into FROM.
pub fn parse(text: &str, build_args: &BTreeMap<String, String>) -> Result<Parsed, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();

    let (syntax, escape) = directives(&lines)?;
    let raw = logical_instructions(&lines, escape)?;
    if raw.is_empty() {
        return err(
            text.lines().count().max(1),
            "the file has no instructions; a Dockerfile needs at least a FROM",
        );
    }
    let last_line = raw[raw.len() - 1].line;

    let mut global_args: Vec<(String, Option<String>)> = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in raw {
        match (ins.keyword, stages.last_mut()) {
            (Keyword::From, _) => {
                let stage = from_stage(ins, &stages, &global_args, build_args)?;
                stages.push(stage);
            }
            (Keyword::Arg, None) => global_args.extend(arg_pairs(&ins)?),
            (_, None) => {
                return err(
                    ins.line,
                    format!(
                        "{} comes before the first FROM; only ARG may come before FROM",
                        ins.keyword.as_str()
                    ),
                );
            }
            (_, Some(stage)) => {
                if ins.keyword == Keyword::Arg {
                    arg_pairs(&ins)?;
                }
                stage.instructions.push(ins);
            }
        }
    }
    if stages.is_empty() {
        return err(
            last_line,
            "the file has no FROM; a Dockerfile needs at least one `FROM image`",
        );
    }
    Ok(Parsed {
        syntax,
        escape,
        global_args,
        stages,
    })
}

/// Parser directives: `# key=value` lines at the very top, before anything
/// else (a blank line, comment or instruction ends them).
fn directives(lines: &[&str]) -> Result<(Option<String>, char), ParseError> {
    let re =
        regex::Regex::new(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$").expect("static regex");
    let mut syntax = None;
    let mut escape = None;
    let mut seen_check = false;
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = re.captures(line.trim_start()) else {
            break;
        };
        let key = c[1].to_ascii_lowercase();
        let value = c[2].to_string();
        let slot_seen = match key.as_str() {
            "syntax" => syntax.replace(value.clone()).is_some(),
            "escape" => {
                if value != "\\" && value != "`" {
                    return err(
                        i + 1,
                        format!(
                            "invalid escape token {value:?}; the escape directive accepts \\ or `"
                        ),
                    );
                }
                escape
                    .replace(value.chars().next().unwrap_or('\\'))
                    .is_some()
            }
            "check" => std::mem::replace(&mut seen_check, true),
            _ => break,
        };
        if slot_seen {
            return err(
                i + 1,
                format!("only one {key} parser directive can be used"),
            );
        }
    }
    Ok((syntax, escape.unwrap_or('\\')))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing escape token (and the blanks after it) when it is a
/// line continuation: BuildKit's `([^E])E[ \t]*$|^E[ \t]*$`.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let stripped = line.trim_end_matches([' ', '\t']);
    if let Some(before) = stripped.strip_suffix(escape)
        && !before.ends_with(escape)
    {
        return (before, true);
    }
    (line, false)
}

/// Joins continuation lines, collects heredoc bodies and the ignore
/// comments above each instruction.
fn logical_instructions(lines: &[&str], escape: char) -> Result<Vec<Instruction>, ParseError> {
    let mut out = Vec::new();
    let mut ignored: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i].trim_start();
        i += 1;
        if first.starts_with('#') {
            ignored.extend(ignore_ids(first));
            continue;
        }
        if first.trim().is_empty() {
            // The ignore comment must sit directly above its instruction.
            ignored.clear();
            continue;
        }
        let start = i;
        let (head, mut continues) = trim_continuation(first, escape);
        let mut text = head.to_string();
        while continues && i < lines.len() {
            let next = lines[i];
            i += 1;
            // BuildKit skips comments and blank lines inside a continuation.
            if is_comment(next) || next.trim().is_empty() {
                continue;
            }
            let (part, more) = trim_continuation(next, escape);
            text.push_str(part);
            continues = more;
        }
        let mut ins = instruction(&text, start, escape)?;
        if (ins.keyword.takes_heredocs() && !ins.args.is_exec()) || heredoc_capable_onbuild(&ins) {
            for (name, chomp, expand) in heredoc_markers(&text).or_else(|m| err(start, m))? {
                let mut body: Vec<&str> = Vec::new();
                let mut terminated = false;
                while i < lines.len() {
                    let line = lines[i];
                    i += 1;
                    let candidate = if chomp {
                        line.trim_start_matches('\t')
                    } else {
                        line
                    };
                    if candidate == name {
                        terminated = true;
                        break;
                    }
                    body.push(if chomp { candidate } else { line });
                }
                if !terminated {
                    return err(
                        start,
                        format!(
                            "heredoc <<{name} is not terminated; end it with a line holding only {name}"
                        ),
                    );
                }
                ins.heredocs.push(Heredoc {
                    name,
                    content: body.join("\n"),
                    chomp,
                    expand,
                });
            }
        }
        ins.end_line = i.max(start);
        ins.ignored = std::mem::take(&mut ignored);
        out.push(ins);
    }
    Ok(out)
}

fn heredoc_capable_onbuild(ins: &Instruction) -> bool {
    let Args::Shell(rest) = &ins.args else {
        return false;
    };
    ins.keyword == Keyword::Onbuild
        && rest
            .split_whitespace()
            .next()
            .and_then(Keyword::from_word)
            .is_some_and(Keyword::takes_heredocs)
}

/// `# fastdeploy:ignore=DF001,DF003` -> ["DF001", "DF003"].
fn ignore_ids(comment: &str) -> Vec<String> {
    let body = comment.trim_start_matches('#').trim();
    let Some(rest) = body.strip_prefix("fastdeploy:ignore") else {
        return Vec::new();
    };
    let Some(ids) = rest.trim_start().strip_prefix('=') else {
        return Vec::new();
    };
    ids.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_uppercase)
        .collect()
}

/// Splits a logical line into keyword, flags and arguments.
fn instruction(text: &str, line: usize, escape: char) -> Result<Instruction, ParseError> {
    let trimmed = text.trim();
    let (word, rest) = match trimmed.find(char::is_whitespace) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim_start()),
        None => (trimmed, ""),
    };
    let Some(keyword) = Keyword::from_word(word) else {
        return err(line, format!("unknown instruction {word:?}"));
    };
    let (flags, rest) = if keyword == Keyword::Onbuild {
        (Vec::new(), rest)
    } else {
        builder_flags(rest, line)?
    };
    let args = if keyword.takes_json() && rest.starts_with('[') {
        match json_array(rest) {
            Some(Ok(words)) => Args::Exec(words),
            Some(Err(())) => {
                return err(
                    line,
                    format!(
                        "{}: when using JSON array syntax, arrays must hold only strings",
                        keyword.as_str()
                    ),
                );
            }
            None => Args::Shell(rest.to_string()),
        }
    } else {
        Args::Shell(rest.to_string())
    };
    Ok(Instruction {
        keyword,
        line,
        end_line: line,
        flags,
        args,
        heredocs: Vec::new(),
        text: text.to_string(),
        ignored: Vec::new(),
        escape,
    })
}

/// `Some(Ok)` for a JSON array of strings, `Some(Err)` for a JSON array with
/// other values (BuildKit rejects it), `None` when it is not JSON (shell form).
/// Like Go's `json.Decoder`, text after the array is ignored.
fn json_array(rest: &str) -> Option<Result<Vec<String>, ()>> {
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(serde_json::Value::Array(items))) => Some(
            items
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(s),
                    _ => Err(()),
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Leading `--name[=value]` words (BuildKit's `extractBuilderFlags`): quotes
/// are removed, a bare `--` ends the flags.
fn builder_flags(rest: &str, line: usize) -> Result<(Vec<Flag>, &str), ParseError> {
    let mut flags = Vec::new();
    let mut pos = 0;
    let bytes = rest.as_bytes();
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if !rest[pos..].starts_with("--") {
            return Ok((flags, &rest[pos..]));
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = rest[pos..].char_indices();
        let mut end = rest.len();
        while let Some((off, c)) = chars.next() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                Some(_) => word.push(c),
                None if c.is_whitespace() => {
                    end = pos + off;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                None => word.push(c),
            }
        }
        pos = end;
        if word == "--" {
            return Ok((flags, rest[pos..].trim_start()));
        }
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        if name.is_empty() {
            return err(line, format!("flag {word:?} has no name"));
        }
        flags.push(Flag {
            name: name.to_ascii_lowercase(),
            value,
        });
    }
}

/// Shell-like words with quotes and escapes removed (for COPY paths, ARG,
/// FROM). Unbalanced quotes run to the end of the text.
pub fn split_words(text: &str) -> Vec<String> {
    split_words_escaped(text, '\\')
}

/// [`split_words`] with the file's escape token (`` ` `` under `# escape=```).
pub fn split_words_escaped(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == escape => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            Some(_) => word.push(c),
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                match c {
                    '\'' | '"' => quote = Some(c),
                    c if c == escape => {
                        if let Some(n) = chars.next() {
                            word.push(n);
                        }
                    }
                    _ => word.push(c),
                }
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Heredoc markers in a line: words (quotes kept) matching BuildKit's
/// `^(\d*)<<(-?)([^<]*)$`; blanks may separate `<<`/`<<-` from the word
/// (`<< EOF`). Returns (terminator, chomp, expand); a marker with an
/// unbalanced quote (`<<'EOF`) is an error, as in BuildKit.
fn heredoc_markers(text: &str) -> Result<Vec<(String, bool, bool)>, String> {
    let mut out = Vec::new();
    let words = raw_words(text);
    let mut i = 0;
    while i < words.len() {
        let raw = words[i];
        i += 1;
        let digits = raw.bytes().take_while(u8::is_ascii_digit).count();
        let Some(after) = raw[digits..].strip_prefix("<<") else {
            continue;
        };
        let (chomp, mut word) = match after.strip_prefix('-') {
            Some(w) => (true, w),
            None => (false, after),
        };
        if word.is_empty() {
            let Some(next) = words.get(i) else { continue };
            word = next;
            i += 1;
        }
        if word.contains('<') {
            continue;
        }
        // Quotes that are not escaped decide both validity and expansion.
        let mut quote: Option<char> = None;
        let mut quoted = false;
        let mut chars = word.chars();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '\\') | (Some('"'), '\\') => {
                    chars.next();
                }
                (None, '\'' | '"') => {
                    quote = Some(c);
                    quoted = true;
                }
                (Some(q), c) if c == q => quote = None,
                _ => {}
            }
        }
        if quote.is_some() {
            return Err(format!("heredoc marker <<{word} has an unterminated quote"));
        }
        let unquoted = split_words(word);
        if unquoted.len() != 1 || unquoted[0].is_empty() {
            continue;
        }
        out.push((unquoted[0].clone(), chomp, !quoted));
    }
    Ok(out)
}

/// Words split on unquoted whitespace, quotes and escapes kept as written.
fn raw_words(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    words.push(&text[s..i]);
                }
            }
            None => {
                start.get_or_insert(i);
                if c == '\\' {
                    escaped = true;
                } else if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(s) = start {
        words.push(&text[s..]);
    }
    words
}

/// `ARG a b=1 c="x y"` -> [(a, None), (b, 1), (c, x y)].
fn arg_pairs(ins: &Instruction) -> Result<Vec<(String, Option<String>)>, ParseError> {
    let Args::Shell(rest) = &ins.args else {
        return err(ins.line, "ARG takes names, not a JSON array");
    };
    let words = split_words_escaped(rest, ins.escape);
    if words.is_empty() {
        return err(
            ins.line,
            "ARG needs at least one name, as in `ARG VERSION=1.0`",
        );
    }
    Ok(words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect())
}

/// FROM [--platform=..] image [AS name].
fn from_stage(
    from: Instruction,
    earlier: &[Stage],
    global_args: &[(String, Option<String>)],
    build_args: &BTreeMap<String, String>,
) -> Result<Stage, ParseError> {
    let line = from.line;
    let Args::Shell(rest) = &from.args else {
        return err(line, "FROM takes an image, not a JSON array");
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (image, name) = match words.as_slice() {
        [image] => (*image, None),
        [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
            (*image, Some(name.to_ascii_lowercase()))
        }
        _ => {
            return err(
                line,
                format!("FROM takes an image and an optional `AS name`, got {rest:?}"),
            );
        }
    };
    if let Some(n) = &name {
        let valid = n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && n.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            });
        if !valid {
            return err(
                line,
                format!("invalid stage name {n:?}: use a letter then letters, digits, -, _ or ."),
            );
        }
        // A name used twice is not an error to BuildKit (only its
        // `DuplicateStageName` lint): a later `FROM name`, `--target` and
        // `COPY --from` see the latest stage of that name.
    }
    let scope: BTreeMap<&str, Option<&str>> = global_args
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                build_args.get(k).map(String::as_str).or(v.as_deref()),
            )
        })
        .collect();
    let (resolved, complete) = substitute(image, &scope);
    let base = if !complete {
        Base::Unresolved(resolved)
    } else if resolved.is_empty() {
        return err(
            line,
            format!("FROM {image} resolves to an empty image name; give the ARG a default"),
        );
    } else if resolved.eq_ignore_ascii_case("scratch") {
        Base::Scratch
    } else if let Some(s) = earlier
        .iter()
        .rev()
        .find(|s| s.name.as_deref() == Some(resolved.to_ascii_lowercase().as_str()))
    {
        Base::Stage(s.index)
    } else {
        Base::Image(ImageRef::parse(&resolved))
    };
    let platform = from.flag("platform").map(str::to_string);
    Ok(Stage {
        index: earlier.len(),
        name,
        base,
        platform,
        from,
        instructions: Vec::new(),
    })
}

/// Substitutes `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:+a}`,
/// `${VAR+a}` from `scope`. Returns the text and whether every variable was
/// resolvable (declared, with a value or a default).
pub fn substitute(text: &str, scope: &BTreeMap<&str, Option<&str>>) -> (String, bool) {
    let mut out = String::new();
    let mut complete = true;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c != '$' || i + 1 >= chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        if chars[i + 1] == '{' {
            let Some(close) = chars[i + 2..].iter().position(|&c| c == '}') else {
                out.extend(&chars[i..]);
                return (out, false);
            };
            let inner: String = chars[i + 2..i + 2 + close].iter().collect();
            i += close + 3;
            let name_len = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            let (name, op) = inner.split_at(name_len);
            let value = scope.get(name).copied().flatten();
            let (modifier, word) = if let Some(w) = op.strip_prefix(":-") {
                (":-", w)
            } else if let Some(w) = op.strip_prefix(":+") {
                (":+", w)
            } else if let Some(w) = op.strip_prefix('-') {
                ("-", w)
            } else if let Some(w) = op.strip_prefix('+') {
                ("+", w)
            } else {
                (op, "")
            };
            let declared = scope.contains_key(name);
            match modifier {
                "" => match value {
                    Some(v) => out.push_str(v),
                    None => complete = false,
                },
                ":-" => out.push_str(value.filter(|v| !v.is_empty()).unwrap_or(word)),
                "-" => out.push_str(value.unwrap_or(word)),
                ":+" => {
                    if value.is_some_and(|v| !v.is_empty()) {
                        out.push_str(word)
                    } else if !declared {
                        complete = false
                    }
                }
                "+" => {
                    if value.is_some() {
                        out.push_str(word)
                    } else if !declared {
                        complete = false
                    }
                }
                _ => complete = false,
            }
        } else {
            let name: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .collect();
            if name.is_empty() {
                out.push('$');
                i += 1;
                continue;
            }
            i += 1 + name.chars().count();
            match scope.get(name.as_str()).copied().flatten() {
                Some(v) => out.push_str(v),
                None => complete = false,
            }
        }
    }
    (out, complete)
}

/// Resolves `COPY --from=` against the stages before `current`.
pub fn copy_source(from: &str, stages: &[Stage], current: usize) -> CopySource {
    let lower = from.to_ascii_lowercase();
    if let Some(s) = stages[..current.min(stages.len())]
        .iter()
        .rev()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return CopySource::Stage(s.index);
    }
    if let Ok(i) = from.parse::<usize>()
        && i < current
    {
        return CopySource::Stage(i);
    }
    CopySource::Image(ImageRef::parse(from))
}
