//! Parser and check tests. Parser cases follow BuildKit's behaviour; every
//! rule has a case that fires and the near-misses that must not.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn parse(text: &str) -> Dockerfile {
    match Dockerfile::parse(text, Path::new("Dockerfile")) {
        Ok(df) => df,
        Err(e) => panic!("parse failed: {e}\n{text}"),
    }
}

fn parse_err(text: &str) -> ParseError {
    match Dockerfile::parse(text, Path::new("Dockerfile")) {
        Ok(df) => panic!("expected an error, parsed {} stages", df.stages().len()),
        Err(e) => e,
    }
}

fn shell(ins: &Instruction) -> &str {
    match &ins.args {
        Args::Shell(s) => s,
        Args::Exec(_) => panic!("expected shell form: {}", ins.text),
    }
}

/// (rule, line) of each finding, for compact assertions.
fn found(text: &str) -> Vec<(&'static str, usize)> {
    check(&parse(text), None, &[])
        .into_iter()
        .map(|f| (f.rule, f.line))
        .collect()
}

fn found_rule(text: &str, rule: &str) -> Vec<usize> {
    check(&parse(text), None, &[])
        .into_iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.line)
        .collect()
}

// ------------------------------------------------------------------ parser

#[test]
fn continuation_lines_skip_comments_and_blank_lines_and_keep_the_start_line() {
    let df = parse(
        "FROM alpine:3.20\n\nRUN apk add \\\n    # the compiler\n\n    gcc \\\n  make\nCMD [\"sh\"]\n",
    );
    let stage = &df.stages()[0];
    let run = &stage.instructions[0];
    assert_eq!(run.keyword, Keyword::Run);
    assert_eq!((run.line, run.end_line), (3, 7));
    assert_eq!(shell(run), "apk add     gcc   make");
    assert_eq!(stage.instructions[1].line, 8);
    assert_eq!(stage.instructions[1].args, Args::Exec(vec!["sh".into()]));
}

#[test]
fn escaped_escape_token_at_end_of_line_is_not_a_continuation() {
    // BuildKit: `\\` at the end is a literal backslash, not a continuation.
    let df = parse("FROM alpine:3.20\nRUN echo a \\\\\nRUN echo b\n");
    assert_eq!(df.stages()[0].instructions.len(), 2);
}

#[test]
fn backtick_escape_directive_changes_the_continuation_character() {
    let df = parse(
        "# escape=`\n\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN dir c:\\ `\n    && echo done\n",
    );
    assert_eq!(df.escape, '`');
    let run = &df.stages()[0].instructions[0];
    assert_eq!(run.line, 4);
    assert_eq!(shell(run), "dir c:\\     && echo done");
    // Under the backtick escape, backslashes in paths are literal.
    let win = parse(
        "# escape=`\nFROM mcr.microsoft.com/windows/nanoserver:ltsc2022\nCOPY app\\bin C:\\app\\\n",
    );
    assert_eq!(
        win.stages()[0].instructions[0].copy_paths(),
        (vec!["app\\bin".to_string()], Some("C:\\app\\".to_string()))
    );
}

#[test]
fn directives_must_come_first_and_only_once() {
    let df = parse("# syntax=docker/dockerfile:1.7\n# escape=\\\nFROM alpine:3.20\n");
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    // After a comment, `# escape=` is an ordinary comment.
    let late = parse("# hello\n# escape=`\nFROM alpine:3.20\nRUN echo \\\n  x\n");
    assert_eq!(late.escape, '\\');
    assert_eq!(late.stages()[0].instructions.len(), 1);
    assert_eq!(parse_err("# escape=`\n# escape=\\\nFROM alpine\n").line, 2);
    assert!(
        parse_err("# escape=x\nFROM alpine\n")
            .message
            .contains("escape")
    );
}

#[test]
fn exec_and_shell_forms() {
    let df = parse(
        "FROM alpine:3.20\nRUN [\"apk\", \"add\", \"curl\"]\nRUN [not json\nENTRYPOINT [\"/app\"] ignored\nCMD echo hi\n",
    );
    let ins = &df.stages()[0].instructions;
    assert_eq!(
        ins[0].args,
        Args::Exec(vec!["apk".into(), "add".into(), "curl".into()])
    );
    assert_eq!(ins[1].args, Args::Shell("[not json".into()));
    assert_eq!(ins[2].args, Args::Exec(vec!["/app".into()]));
    assert_eq!(ins[3].args, Args::Shell("echo hi".into()));
    let e = parse_err("FROM alpine:3.20\n\nCMD [\"a\", 1]\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("strings"), "{e}");
}

#[test]
fn heredocs_single_multiple_chomped_quoted_and_in_copy() {
    let text = "FROM alpine:3.20\n\
RUN <<EOF\n\
apk add gcc\n\
rm -rf /var/cache/apk\n\
EOF\n\
RUN <<-ONE cat > /a && <<'TWO' cat > /b\n\
\tfirst $X\n\
\tONE\n\
second $X\n\
TWO\n\
COPY <<EOF /etc/app.conf\n\
port=80\n\
EOF\n\
USER 10001\n";
    let df = parse(text);
    let ins = &df.stages()[0].instructions;
    assert_eq!((ins[0].line, ins[0].end_line), (2, 5));
    assert_eq!(
        ins[0].heredocs[0].content,
        "apk add gcc\nrm -rf /var/cache/apk"
    );
    assert_eq!(ins[1].line, 6);
    let names: Vec<(&str, bool, bool)> = ins[1]
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.chomp, h.expand))
        .collect();
    assert_eq!(names, vec![("ONE", true, true), ("TWO", false, false)]);
    assert_eq!(ins[1].heredocs[0].content, "first $X");
    assert_eq!(ins[1].heredocs[1].content, "second $X");
    assert_eq!(ins[2].keyword, Keyword::Copy);
    assert_eq!(ins[2].line, 11);
    assert_eq!(ins[2].heredocs[0].content, "port=80");
    assert_eq!(
        ins[2].copy_paths(),
        (vec!["<<EOF".to_string()], Some("/etc/app.conf".to_string()))
    );
    assert_eq!(ins[3].line, 14);
    assert!(ins[0].script().contains("rm -rf /var/cache/apk"));
}

#[test]
fn heredoc_markers_follow_buildkit() {
    // Cases from BuildKit's parser_heredoc_test.go.
    let text = "FROM alpine:3.20\n\
RUN 3<<EMPTY2\nEMPTY2\n\
RUN \"<<NOHEREDOC\"\n\
COPY <<X <<Y /dest\nY\nX\nX\nY\n\
RUN <<eo'f'\necho foo\neof\n\
RUN <<eo\\'f\necho foo\neo'f\n\
RUN <<'one two'\necho bar\none two\n\
RUN <<$EOF\n$EOF\n\
RUN <<  EOF  > foo\nEOF\n\
RUN << -EOF\n-EOF\n\
RUN <<- EOF\n\tEOF\n";
    let df = parse(text);
    let docs: Vec<Vec<(String, String, bool)>> = df.stages()[0]
        .instructions
        .iter()
        .map(|i| {
            i.heredocs
                .iter()
                .map(|h| (h.name.clone(), h.content.clone(), h.expand))
                .collect()
        })
        .collect();
    let d = |n: &str, c: &str, e: bool| (n.to_string(), c.to_string(), e);
    assert_eq!(
        docs,
        vec![
            vec![d("EMPTY2", "", true)],
            vec![],
            vec![d("X", "Y", true), d("Y", "X", true)],
            vec![d("eof", "echo foo", false)],
            vec![d("eo'f", "echo foo", true)],
            vec![d("one two", "echo bar", false)],
            vec![d("$EOF", "", true)],
            vec![d("EOF", "", true)],
            vec![d("-EOF", "", true)],
            vec![d("EOF", "", true)],
        ]
    );
    let e = parse_err("FROM alpine:3.20\nRUN true\nRUN <<'EOF\nEOF\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("unterminated quote"), "{e}");
}

#[test]
fn heredoc_bodies_are_not_parsed_as_instructions_and_unterminated_ones_are_errors() {
    // `FROM` inside the body is text, not a new stage.
    let df = parse("FROM alpine:3.20\nRUN <<EOF\nFROM nothing\n# not a comment\nEOF\n");
    assert_eq!(df.stages().len(), 1);
    assert_eq!(
        df.stages()[0].instructions[0].heredocs[0].content,
        "FROM nothing\n# not a comment"
    );
    let e = parse_err("FROM alpine:3.20\nRUN true\nRUN <<EOF\necho\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("not terminated"), "{e}");
    // A JSON-form RUN has no heredocs: `<<EOF` is an argument.
    let json = parse("FROM alpine:3.20\nRUN [\"cat\", \"<<EOF\"]\nUSER 1\n");
    assert_eq!(json.stages()[0].instructions.len(), 2);
    // `a<<b` and `<<` alone are not heredocs.
    let plain = parse("FROM alpine:3.20\nRUN echo $((1<<2)) x<<y\nUSER 1\n");
    assert!(plain.stages()[0].instructions[0].heredocs.is_empty());
}

#[test]
fn args_before_from_substitute_into_from_with_defaults_and_build_args() {
    let text = "ARG PY=3.12\nARG VARIANT\nARG REG=docker.io\nFROM ${REG}/library/python:${PY}-${VARIANT:-slim} AS build\nFROM $REG/library/python:${PY}\n";
    let df = parse(text);
    assert_eq!(
        df.global_args[0],
        ("PY".to_string(), Some("3.12".to_string()))
    );
    let Base::Image(img) = &df.stages()[0].base else {
        panic!("image base")
    };
    assert_eq!(img.raw, "docker.io/library/python:3.12-slim");
    assert_eq!(img.tag.as_deref(), Some("3.12-slim"));
    assert_eq!(img.short_name(), "python");
    let args = BTreeMap::from([("PY".to_string(), "3.13".to_string())]);
    let over = Dockerfile::parse_with_args(text, Path::new("Dockerfile"), &args).expect("parses");
    let Base::Image(img) = &over.stages()[1].base else {
        panic!("image base")
    };
    assert_eq!(img.raw, "docker.io/library/python:3.13");
    // An ARG with no default and no build arg leaves the base unknown.
    let df = parse("ARG BASE\nFROM ${BASE}\n");
    assert!(matches!(df.stages()[0].base, Base::Unresolved(_)));
}

#[test]
fn stages_names_are_case_insensitive_and_from_refers_back() {
    let df = parse(
        "FROM golang:1.22 As Build\nRUN go build\nFROM build AS test\nFROM scratch\nCOPY --from=BUILD /app /app\nCOPY --from=0 /x /x\nCOPY --from=nginx:1.27 /etc/nginx /etc/nginx\n",
    );
    let stages = df.stages();
    assert_eq!(stages[0].name.as_deref(), Some("build"));
    assert_eq!(stages[1].base, Base::Stage(0));
    assert_eq!(stages[2].base, Base::Scratch);
    let copies = &stages[2].instructions;
    assert_eq!(
        df.copy_source(copies[0].flag("from").unwrap(), &stages[2]),
        CopySource::Stage(0)
    );
    assert_eq!(
        df.copy_source(copies[1].flag("from").unwrap(), &stages[2]),
        CopySource::Stage(0)
    );
    assert!(matches!(
        df.copy_source(copies[2].flag("from").unwrap(), &stages[2]),
        CopySource::Image(_)
    ));
    assert_eq!(df.final_stage(Some("BUILD")).unwrap().index, 0);
    assert_eq!(df.final_stage(None).unwrap().index, 2);
    let lineage: Vec<usize> = df.lineage(&stages[1]).iter().map(|s| s.index).collect();
    assert_eq!(lineage, vec![0, 1]);
    let e = df.final_stage(Some("prod")).unwrap_err().to_string();
    assert!(
        e.contains("`prod`") && e.contains("build (line 1)") && e.contains("test (line 3)"),
        "{e}"
    );
}

/// Found by the differential test against BuildKit
/// (tests/it/buildkit_differential.rs): a stage name used twice was bad
/// input here (exit 2), while BuildKit builds the file (only its
/// `DuplicateStageName` lint warns). What each name means, as dockerd
/// 26.1's BuildKit built it: `FROM x` sees the latest `x` defined so far,
/// `--target` and a `FROM` after both the later one.
#[test]
fn a_stage_name_used_twice_means_the_latest_stage_of_that_name() {
    let df = parse(
        "FROM scratch AS x\nCOPY a /a\nFROM x AS y\nFROM scratch AS X\nCOPY b /b\nFROM x AS z\n",
    );
    let names: Vec<_> = df.stages().iter().map(|s| s.name.as_deref()).collect();
    assert_eq!(names, [Some("x"), Some("y"), Some("x"), Some("z")]);
    assert_eq!(
        df.stages()[1].base,
        Base::Stage(0),
        "only the first x exists when y is defined"
    );
    assert_eq!(df.stages()[3].base, Base::Stage(2), "the later x");
    assert_eq!(
        df.final_stage(Some("x")).unwrap().index,
        2,
        "--target x builds the later x"
    );
    assert_eq!(df.copy_source("x", &df.stages()[3]), CopySource::Stage(2));
}

#[test]
fn flags_mounts_chown_and_image_instructions() {
    let df = parse(
        "FROM python:3.12-slim AS base\nWORKDIR /app\nFROM base\nRUN --mount=type=cache,target=/root/.cache/pip --mount=type=bind,source=a,target=/a pip install x\nCOPY --chown=app:app --link . .\n",
    );
    let stage = &df.stages()[1];
    let run = &stage.instructions[0];
    assert_eq!(
        run.cache_mount_targets(),
        vec!["/root/.cache/pip".to_string()]
    );
    assert_eq!(shell(run), "pip install x");
    let copy = &stage.instructions[1];
    assert_eq!(copy.flag("chown"), Some("app:app"));
    assert!(
        copy.flags
            .iter()
            .any(|f| f.name == "link" && f.value.is_none())
    );
    let lines: Vec<usize> = df
        .image_instructions(None)
        .unwrap()
        .iter()
        .map(|i| i.line)
        .collect();
    assert_eq!(lines, vec![2, 4, 5]);
}

#[test]
fn image_refs_split_registry_port_tag_and_digest() {
    let r = ImageRef::parse("localhost:5000/team/app:1.2@sha256:abc");
    assert_eq!(
        (r.name.as_str(), r.tag.as_deref(), r.digest.as_deref()),
        ("localhost:5000/team/app", Some("1.2"), Some("sha256:abc"))
    );
    assert_eq!(r.repository(), "team/app");
    let r = ImageRef::parse("localhost:5000/app");
    assert_eq!(
        (r.name.as_str(), r.tag.as_deref()),
        ("localhost:5000/app", None)
    );
    assert_eq!(
        ImageRef::parse("public.ecr.aws/docker/library/golang:1.22").short_name(),
        "docker/library/golang"
    );
    assert_eq!(ImageRef::parse("library/golang").short_name(), "golang");
}

#[test]
fn rejections_carry_the_instruction_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("FROM alpine\nFROOM x\n", 2, "unknown instruction"),
        ("RUN echo\nFROM alpine\n", 1, "before the first FROM"),
        ("\n\n# only comments\n", 3, "no instructions"),
        ("FROM a AS b c\n", 1, "optional `AS name`"),
        ("FROM a AS 1x\n", 1, "invalid stage name"),
        ("ARG X=\nFROM ${X}\n", 2, "empty image name"),
        ("FROM a\nRUN --=x true\n", 2, "no name"),
        ("ARG A=1\n\nARG B\n", 3, "no FROM"),
    ];
    for (text, line, needle) in cases {
        let e = parse_err(text);
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn load_names_the_file_and_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/Dockerfile");
    let e = load(&missing).unwrap_err();
    assert_eq!(crate::error::exit_for(&e), crate::error::Exit::BadInput);
    assert!(
        e.to_string().contains("does not exist") && e.to_string().contains("nope/Dockerfile"),
        "{e}"
    );

    let bad = dir.path().join("Dockerfile");
    std::fs::write(&bad, "FROM alpine:3.20\n\nRUNN echo\n").unwrap();
    let e = load(&bad).unwrap_err();
    assert_eq!(crate::error::exit_for(&e), crate::error::Exit::BadInput);
    assert!(
        e.to_string()
            .contains(&format!("{}, line 3: unknown instruction", bad.display())),
        "{e}"
    );

    let e = load(dir.path()).unwrap_err();
    assert_eq!(crate::error::exit_for(&e), crate::error::Exit::BadInput);
    assert!(e.to_string().contains("is a directory"), "{e}");

    std::fs::write(&bad, "\u{feff}FROM alpine:3.20\r\nUSER 1\r\n").unwrap();
    let df = load(&bad).expect("BOM and CRLF are accepted");
    assert_eq!(df.stages()[0].instructions[0].line, 2);
}

// ------------------------------------------------------------------ checks

#[test]
fn df001_build_tools_in_final_stage_of_a_multi_stage_build() {
    let text = "FROM python:3.12-slim AS build\nRUN apt-get update && apt-get install -y gcc && rm -rf /var/lib/apt/lists/*\n\
FROM python:3.12-slim\nRUN apt-get update && apt-get install -y --no-install-recommends libpq-dev=15.* curl \\\n && rm -rf /var/lib/apt/lists/*\nCOPY --from=build /w /w\nUSER 1000\n";
    let f = check(&parse(text), None, &[]);
    assert_eq!(
        f.iter().map(|f| (f.rule, f.line)).collect::<Vec<_>>(),
        vec![("DF001", 4)]
    );
    assert!(
        f[0].message.contains("`libpq-dev`") && !f[0].message.contains("curl"),
        "{}",
        f[0].message
    );
}

#[test]
fn df001_silent_for_tools_in_the_builder_or_removed_in_the_same_run() {
    // Builder stage has the compiler; final stage only copies.
    assert!(found_rule("FROM golang:1.22 AS build\nRUN apt-get update && apt-get install -y make && rm -rf /var/lib/apt/lists/*\nFROM gcr.io/distroless/static:nonroot\nCOPY --from=build /app /app\n", "DF001").is_empty());
    // Installed and purged in one RUN.
    assert!(found_rule("FROM python:3.12-slim AS b\nFROM python:3.12-slim\nCOPY --from=b /x /x\nRUN apt-get update && apt-get install -y gcc libffi-dev && pip install --no-cache-dir cffi && apt-get purge -y --auto-remove gcc libffi-dev && rm -rf /var/lib/apt/lists/*\nUSER 1\n", "DF001").is_empty());
    // Alpine virtual package removed by name.
    assert!(found_rule("FROM alpine:3.20 AS b\nFROM alpine:3.20\nCOPY --from=b /x /x\nRUN apk add --no-cache --virtual .build-deps gcc musl-dev && make && apk del .build-deps\nUSER 1\n", "DF001").is_empty());
    // A builder used through a bind mount counts as a builder.
    assert_eq!(
        found_rule(
            "FROM golang:1.22 AS build\nFROM debian:12\nRUN --mount=type=bind,from=build,source=/a,target=/a cp /a /usr/bin/a\nRUN apt-get update && apt-get install -y make && rm -rf /var/lib/apt/lists/*\nUSER 1\n",
            "DF001"
        ),
        vec![4]
    );
    // Building a target that is the builder: the final stage is the builder itself, which has no builder of its own.
    let df = parse(
        "FROM golang:1.22 AS build\nRUN go build\nFROM alpine:3.20\nCOPY --from=build /a /a\n",
    );
    assert!(
        check(&df, Some("build"), &[])
            .iter()
            .all(|f| f.rule != "DF001")
    );
}

#[test]
fn df001_toolchain_base_in_final_stage() {
    let text = "FROM golang:1.22 AS build\nRUN go build -o /app\nFROM golang:1.22\nCOPY --from=build /app /app\nUSER 1\n";
    assert_eq!(found_rule(text, "DF001"), vec![3]);
}

#[test]
fn df002_whole_context_copy_before_dependency_install() {
    let text = "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nRUN pip install --no-cache-dir -r requirements/prod.txt\nUSER 1\n";
    let f = check(&parse(text), None, &[]);
    let df002: Vec<&Finding> = f.iter().filter(|f| f.rule == "DF002").collect();
    assert_eq!(df002.len(), 1);
    assert_eq!(df002[0].line, 3);
    assert!(
        df002[0]
            .message
            .contains("COPY requirements/prod.txt first"),
        "{}",
        df002[0].message
    );

    for (install, manifest) in [
        ("npm ci", "package-lock.json"),
        ("poetry install --no-root", "poetry.lock"),
        ("go mod download", "go.sum"),
        ("bundle install", "Gemfile.lock"),
        ("npm install --omit=dev", "package-lock.json"),
    ] {
        let text = format!("FROM node:22-slim AS b\nADD ./ /src\nRUN {install}\nFROM b\nUSER 1\n");
        let f = check(&parse(&text), None, &[]);
        let hit = f
            .iter()
            .find(|f| f.rule == "DF002")
            .unwrap_or_else(|| panic!("no DF002 for {install}"));
        assert_eq!(hit.line, 2);
        assert!(hit.message.contains(manifest), "{install}: {}", hit.message);
    }
}

/// Corpus: a `dev` stage that reinstalls after `COPY . .` next to a
/// `prod` target that does it right. BuildKit never builds `dev` for
/// `--target prod`; a builder the target needs is built, and counts.
#[test]
fn df002_silent_in_stages_the_target_does_not_build() {
    let text = "FROM node:22 AS dev\nCOPY . .\nRUN npm ci\nFROM node:22-slim AS deps\nCOPY package.json package-lock.json ./\nRUN npm ci\nFROM node:22-slim AS prod\nCOPY --from=deps /node_modules /node_modules\nUSER node\n";
    assert!(
        check(&parse(text), Some("prod"), &[])
            .iter()
            .all(|f| f.rule != "DF002")
    );
    assert_eq!(
        check(&parse(text), Some("dev"), &[])
            .iter()
            .filter(|f| f.rule == "DF002")
            .map(|f| f.line)
            .collect::<Vec<_>>(),
        vec![2]
    );
    let builder = "FROM node:22 AS build\nCOPY . .\nRUN npm ci && npm run build\nFROM nginx:1.27\nCOPY --from=build /dist /usr/share/nginx/html\n";
    assert_eq!(found_rule(builder, "DF002"), vec![2]);
}

#[test]
fn df002_silent_when_manifests_come_first_or_nothing_is_installed() {
    let ok = [
        "FROM node:22-slim\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\nRUN npm run build\nUSER node\n",
        "FROM node:22-slim\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\nRUN npm ci --omit=dev\nUSER node\n",
        "FROM golang:1.22 AS b\nCOPY . .\nRUN go build -o /app\nFROM scratch\nCOPY --from=b /app /app\nUSER 1\n",
        "FROM node:22-slim AS b\nFROM node:22-slim\nCOPY --from=b . .\nRUN npm ci\nUSER node\n",
        "FROM node:22-slim\nCOPY src/ ./src\nRUN npm install left-pad\nUSER node\n",
    ];
    for text in ok {
        assert!(found_rule(text, "DF002").is_empty(), "{text}");
    }
}

#[test]
fn df003_apt_lists_left_behind() {
    assert_eq!(
        found_rule(
            "FROM debian:12\nRUN apt-get update && apt-get install -y curl\nUSER 1\n",
            "DF003"
        ),
        vec![2]
    );
    assert_eq!(
        found_rule(
            "FROM debian:12\nRUN apt-get -o Acquire::Retries=3 update\nUSER 1\n",
            "DF003"
        ),
        vec![2]
    );
    // Update in one RUN, cleanup in the next: the lists are already in a layer.
    assert_eq!(
        found_rule(
            "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl && rm -rf /var/lib/apt/lists/*\nUSER 1\n",
            "DF003"
        ),
        vec![2]
    );
    for ok in [
        "FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\nUSER 1\n",
        "FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt,sharing=locked apt-get update && apt-get install -y curl\nUSER 1\n",
        "FROM debian:12\nRUN <<EOF\nset -e\napt-get update\napt-get install -y curl\nrm -rf /var/lib/apt/lists/*\nEOF\nUSER 1\n",
        // Caches in a builder stage do not reach the image.
        "FROM debian:12 AS b\nRUN apt-get update && apt-get install -y curl\nFROM debian:12\nCOPY --from=b /usr/bin/curl /usr/bin/curl\nUSER 1\n",
    ] {
        assert!(found_rule(ok, "DF003").is_empty(), "{ok}");
    }
}

#[test]
fn df003_pip_cache() {
    assert_eq!(
        found_rule(
            "FROM python:3.12-slim\nRUN pip install flask\nUSER 1\n",
            "DF003"
        ),
        vec![2]
    );
    // `-m pip`, with a package: upgrading pip alone was noise (see below).
    assert_eq!(
        found_rule(
            "FROM python:3.12-slim\nRUN python3 -m pip install -U flask\nUSER 1\n",
            "DF003"
        ),
        vec![2]
    );
    for ok in [
        "FROM python:3.12-slim\nRUN pip install --no-cache-dir flask\nUSER 1\n",
        "FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1\nRUN pip install flask\nUSER 1\n",
        "FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR 1\nRUN pip install flask\nUSER 1\n",
        "FROM python:3.12-slim\nRUN PIP_NO_CACHE_DIR=1 pip install flask\nUSER 1\n",
        "FROM python:3.12-slim\nRUN --mount=type=cache,target=/root/.cache/pip pip install flask\nUSER 1\n",
        "FROM python:3.12-slim\nRUN pip install flask && rm -rf /root/.cache/pip\nUSER 1\n",
        "FROM python:3.12-slim\nRUN [\"pip\", \"install\", \"--no-cache-dir\", \"flask\"]\nUSER 1\n",
    ] {
        assert!(found_rule(ok, "DF003").is_empty(), "{ok}");
    }
}

/// Corpus (nextcloud): `apt-get dist-clean` (apt 2.7+, Debian 13) removes
/// the lists as `rm -rf /var/lib/apt/lists/*` does.
#[test]
fn df003_silent_for_apt_get_dist_clean() {
    assert!(
        found_rule(
            "FROM debian:13\nRUN set -ex; apt-get update; apt-get install -y --no-install-recommends rsync; apt-get dist-clean\nUSER 1\n",
            "DF003"
        )
        .is_empty()
    );
}

/// Corpus (umami): `npm install -g pnpm` caches one tool's tarball; only an
/// install from the manifest caches the dependency tree.
#[test]
fn df003_silent_for_npm_install_g_of_one_tool() {
    assert!(
        found_rule(
            "FROM node:22-alpine\nRUN apk add --no-cache curl && npm install -g pnpm\nUSER node\n",
            "DF003"
        )
        .is_empty()
    );
    assert_eq!(
        found_rule(
            "FROM node:22-alpine\nRUN npm install --production\nUSER node\n",
            "DF003"
        ),
        vec![2]
    );
}

/// Corpus (healthchecks, ArchiveBox): pip upgrading itself leaves a few MB;
/// local wheels or the project's own directory with `--no-deps` download
/// nothing; `--no-cache` is pip's accepted abbreviation of `--no-cache-dir`.
#[test]
fn df003_silent_for_pip_upgrading_itself_and_local_no_deps_installs() {
    for ok in [
        "RUN pip install --upgrade pip setuptools wheel",
        "RUN pip install --upgrade pip && pip install --no-cache /wheels/*",
        "RUN pip install --no-deps \"$CODE_DIR\"",
        "RUN pip install --no-index --find-links /wheels /wheels/*.whl",
    ] {
        assert!(
            found_rule(&format!("FROM python:3.12-slim\n{ok}\nUSER 1\n"), "DF003").is_empty(),
            "{ok}"
        );
    }
    for leaks in [
        "RUN pip install --no-deps -r /tmp/requirements.txt",
        "RUN pip install .",
        "RUN pip install -U pip torch",
    ] {
        assert_eq!(
            found_rule(
                &format!("FROM python:3.12-slim\n{leaks}\nUSER 1\n"),
                "DF003"
            ),
            vec![2],
            "{leaks}"
        );
    }
}

/// Corpus (matomo): `apk add --no-network` installs what is already there
/// and fetches no index.
#[test]
fn df003_silent_for_apk_add_no_network() {
    assert!(
        found_rule(
            "FROM alpine:3.20\nRUN apk add --no-network --virtual .rundeps $runDeps\nUSER 1\n",
            "DF003"
        )
        .is_empty()
    );
}

#[test]
fn df003_apk_npm_dnf() {
    assert_eq!(
        found_rule(
            "FROM alpine:3.20\nRUN apk update && apk add curl\nUSER 1\n",
            "DF003"
        ),
        vec![2]
    );
    assert!(
        found_rule(
            "FROM alpine:3.20\nRUN apk add --no-cache curl\nUSER 1\n",
            "DF003"
        )
        .is_empty()
    );
    assert_eq!(
        found_rule(
            "FROM node:22-slim\nCOPY package*.json ./\nRUN npm ci\nUSER node\n",
            "DF003"
        ),
        vec![3]
    );
    assert!(
        found_rule(
            "FROM node:22-slim\nRUN npm ci && npm cache clean --force\nUSER node\n",
            "DF003"
        )
        .is_empty()
    );
    assert!(
        found_rule(
            "FROM node:22-slim\nRUN --mount=type=cache,target=/root/.npm npm ci\nUSER node\n",
            "DF003"
        )
        .is_empty()
    );
    assert_eq!(
        found_rule("FROM fedora:40\nRUN dnf install -y curl\nUSER 1\n", "DF003"),
        vec![2]
    );
    assert!(
        found_rule(
            "FROM fedora:40\nRUN dnf install -y curl && dnf clean all\nUSER 1\n",
            "DF003"
        )
        .is_empty()
    );
}

#[test]
fn df004_no_user_or_root_at_the_end() {
    assert_eq!(
        found_rule(
            "FROM alpine:3.20 AS b\nFROM alpine:3.20\nCMD [\"sh\"]\n",
            "DF004"
        ),
        vec![2]
    );
    assert_eq!(
        found_rule("FROM alpine:3.20\nUSER app\nRUN true\nUSER root\n", "DF004"),
        vec![4]
    );
    // USER in the base stage carries over.
    assert!(
        found_rule(
            "FROM alpine:3.20 AS base\nUSER 10001\nFROM base\nCMD [\"sh\"]\n",
            "DF004"
        )
        .is_empty()
    );
    assert!(
        found_rule(
            "FROM alpine:3.20\nUSER root\nRUN apk add --no-cache curl\nUSER 10001:10001\n",
            "DF004"
        )
        .is_empty()
    );
    assert!(
        found_rule(
            "FROM gcr.io/distroless/static-debian12:nonroot\nCOPY app /app\n",
            "DF004"
        )
        .is_empty()
    );
    assert!(
        found_rule(
            "FROM nginxinc/nginx-unprivileged:1.27\nCOPY site /usr/share/nginx/html\n",
            "DF004"
        )
        .is_empty()
    );
    // A builder's missing USER does not matter.
    assert!(
        found_rule(
            "FROM golang:1.22 AS b\nFROM alpine:3.20\nCOPY --from=b /a /a\nUSER 1\n",
            "DF004"
        )
        .is_empty()
    );
}

/// The fix is a policy choice (and some images need root), so DF004 is a
/// notice, and only for an image that runs as its `USER` says.
#[test]
fn df004_is_a_notice_and_only_for_images_that_run_as_their_user() {
    let df = parse("FROM python:3.12-slim\nCMD [\"python\"]\n");
    let f = check(&df, None, &[]);
    assert_eq!(
        f.iter().map(|f| (f.rule, f.severity)).collect::<Vec<_>>(),
        vec![("DF004", crate::outcome::Severity::Notice)]
    );
    assert!(
        RULES
            .iter()
            .all(|r| (r.severity == crate::outcome::Severity::Notice) == (r.id == "DF004"))
    );
    // A pull request's build is never pushed; Lambda runs every image as its own unprivileged user.
    assert_eq!(check_image(&df, None, Runs::Nowhere, &[]), vec![]);
    assert_eq!(check_image(&df, None, Runs::AsNonRoot, &[]), vec![]);
    let w = to_warnings(&f, Path::new("/ws/Dockerfile"), Path::new("/ws"), None);
    assert_eq!(w[0].severity, crate::outcome::Severity::Notice);
}

/// Corpus: `FROM nginx`, `FROM php:8.3-fpm`, `FROM postgres` with no USER.
/// Their servers step down from root themselves (workers as `nginx` or
/// `www-data`, entrypoints that re-exec as `postgres`); a USER there
/// breaks the image more often than it helps.
#[test]
fn df004_silent_where_the_server_drops_root_itself() {
    for base in [
        "nginx:1.27-alpine",
        "httpd:2.4",
        "php:8.3-fpm-alpine",
        "php:8.2-apache",
        "postgres:16",
        "redis:7",
        "lscr.io/linuxserver/nginx:1.26",
    ] {
        assert!(
            found_rule(&format!("FROM {base}\nCOPY site /srv\n"), "DF004").is_empty(),
            "{base}"
        );
    }
    assert_eq!(
        found_rule("FROM php:8.3-cli\nCOPY . /app\n", "DF004"),
        vec![1],
        "the CLI image runs the script as root"
    );
}

/// Corpus: images that install gosu or su-exec and switch user in their
/// entrypoint; a `USER` would stop the entrypoint's own setup as root.
#[test]
fn df004_silent_when_the_entrypoint_steps_down_with_gosu_or_su_exec() {
    assert!(found_rule("FROM debian:12\nRUN apt-get update && apt-get install -y gosu && rm -rf /var/lib/apt/lists/*\nENTRYPOINT [\"/entrypoint.sh\"]\n", "DF004").is_empty());
    assert!(
        found_rule(
            "FROM alpine:3.20\nRUN apk add --no-cache su-exec\nUSER root\n",
            "DF004"
        )
        .is_empty()
    );
    assert!(
        found_rule(
            "FROM alpine:3.20\nENTRYPOINT [\"/sbin/su-exec\", \"app\", \"/server\"]\n",
            "DF004"
        )
        .is_empty()
    );
    // A word that merely contains the name is no evidence.
    assert_eq!(
        found_rule("FROM alpine:3.20\nRUN echo gosu-like > /x\n", "DF004"),
        vec![1]
    );
}

/// Corpus: `.devcontainer/Dockerfile` ending in `USER root` on
/// `mcr.microsoft.com/devcontainers/*`, which runs as its `remoteUser`;
/// Lambda's base images, which Lambda runs as its own user.
#[test]
fn df004_silent_for_dev_container_and_lambda_base_images() {
    assert!(found_rule("FROM mcr.microsoft.com/devcontainers/rust:2-bookworm\nUSER vscode\nRUN true\nUSER root\n", "DF004").is_empty());
    assert!(
        found_rule(
            "FROM public.ecr.aws/lambda/python:3.12\nCOPY app.py ./\nCMD [\"app.handler\"]\n",
            "DF004"
        )
        .is_empty()
    );
}

/// `FROM scratch` keeps its notice (uid 0 is root whatever the image
/// holds, and the fix is one line), with advice that works there.
#[test]
fn df004_says_how_without_useradd_where_there_is_none() {
    let message = |text: &str| {
        check(&parse(text), None, &[])
            .into_iter()
            .find(|f| f.rule == "DF004")
            .expect("DF004")
            .message
    };
    assert!(
        message("FROM golang:1.22 AS b\nFROM scratch\nCOPY --from=b /app /app\n")
            .contains("`USER 65532:65532`")
    );
    assert!(
        message("FROM gcr.io/distroless/static-debian12\nCOPY app /app\n")
            .contains("`gcr.io/distroless/static-debian12:nonroot`")
    );
    assert!(message("FROM node:22-slim\nCOPY . .\n").contains("`USER node`"));
    assert!(message("FROM python:3.12-slim\nCOPY . .\n").contains("useradd"));
}

#[test]
fn df005_untagged_or_latest_bases() {
    // The final image's own bases, and images it copies files from. (This
    // test once expected findings on every stage of one file; those stages
    // were not built for the final image, which was the noise.)
    let text = "FROM python AS a\nFROM node:latest AS b\nFROM ubuntu@sha256:0123\nFROM scratch\nCOPY --from=nginx /etc/nginx /etc/nginx\nCOPY --from=a /x /x\nFROM localhost:5000/app\nUSER 1\n";
    let lines = |target| {
        check(&parse(text), Some(target), &[])
            .into_iter()
            .filter(|f| f.rule == "DF005")
            .map(|f| f.line)
            .collect::<Vec<_>>()
    };
    assert_eq!(lines("a"), vec![1]);
    assert_eq!(lines("b"), vec![2]);
    assert_eq!(found_rule(text, "DF005"), vec![7]);
    assert_eq!(
        found_rule(
            "FROM python AS a\nFROM scratch\nCOPY --from=nginx /etc/nginx /etc/nginx\nCOPY --from=a /x /x\nUSER 1\n",
            "DF005"
        ),
        vec![3]
    );
    assert!(found_rule("FROM ubuntu@sha256:0123\nUSER 1\n", "DF005").is_empty());
    assert!(found_rule("ARG TAG=3.12-slim\nFROM python:${TAG}\nUSER 1\n", "DF005").is_empty());
    assert_eq!(
        found_rule("ARG TAG=latest\nFROM python:${TAG}\nUSER 1\n", "DF005"),
        vec![2]
    );
    assert!(found_rule("ARG BASE\nFROM ${BASE}\nUSER 1\n", "DF005").is_empty());
}

/// Corpus: `FROM golang:latest AS build` (or `composer:latest`,
/// `tonistiigi/xx`) feeding a pinned runtime. A builder's floating tag
/// shows itself as a build that breaks, before anything is deployed; a
/// stage the target does not need is never built at all.
#[test]
fn df005_silent_for_builder_stages_and_stages_not_built() {
    let text = "FROM golang:latest AS build\nRUN go build -o /app\nFROM alpine:3.20 AS prod\nCOPY --from=build /app /app\nUSER 1\nFROM rocm/dev-ubuntu-22.04 AS gpu\nUSER 1\n";
    assert!(
        check(&parse(text), Some("prod"), &[])
            .iter()
            .all(|f| f.rule != "DF005")
    );
    // Built as the target itself, `gpu` is the image: then it counts.
    assert_eq!(
        check(&parse(text), Some("gpu"), &[])
            .iter()
            .filter(|f| f.rule == "DF005")
            .map(|f| f.line)
            .collect::<Vec<_>>(),
        vec![6]
    );
    // A floating image whose files land in the final image still counts.
    assert_eq!(
        found_rule(
            "FROM python:3.12-slim\nCOPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/uv\nUSER 1\n",
            "DF005"
        ),
        vec![2]
    );
}

#[test]
fn df006_single_stage_installs_compilers() {
    let text = "FROM python:3.12-slim\nRUN apt-get update && apt-get install -y build-essential gcc-12 && rm -rf /var/lib/apt/lists/*\nRUN pip install --no-cache-dir numpy\nUSER 1\n";
    let f = check(&parse(text), None, &[]);
    assert_eq!(
        f.iter().map(|f| (f.rule, f.line)).collect::<Vec<_>>(),
        vec![("DF006", 2)]
    );
    assert!(
        f[0].message.contains("`build-essential`, `gcc-12`"),
        "{}",
        f[0].message
    );
    assert_eq!(
        found("FROM rust:1.80\nCOPY . .\nRUN cargo build --release\nUSER 1\n"),
        vec![("DF006", 1)]
    );
    assert!(
        found_rule(
            "FROM python:3.12-slim\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\nUSER 1\n",
            "DF006"
        )
        .is_empty()
    );
}

/// Corpus: `apt-get install -y libpq-dev` (or `make` alone) in a single
/// stage. Headers add a few MB, not a compiler's hundreds; a builder stage
/// would save little, so DF006 waits for a compiler.
#[test]
fn df006_silent_for_headers_or_make_without_a_compiler() {
    for ok in ["libpq-dev", "libxml2-dev libxslt1-dev", "make pkg-config"] {
        let text = format!(
            "FROM python:3.12-slim\nRUN apt-get update && apt-get install -y {ok} && rm -rf /var/lib/apt/lists/*\nUSER 1\n"
        );
        assert!(found_rule(&text, "DF006").is_empty(), "{ok}");
    }
    let text = "FROM python:3.12-slim\nRUN apt-get update && apt-get install -y gcc libpq-dev && rm -rf /var/lib/apt/lists/*\nUSER 1\n";
    let f = check(&parse(text), None, &[]);
    assert!(
        f.iter()
            .any(|f| f.rule == "DF006" && f.message.contains("`gcc`, `libpq-dev`")),
        "{f:?}"
    );
}

#[test]
fn silencing_by_input_and_by_comment() {
    let text = "FROM python AS base\n# fastdeploy:ignore=DF003\nRUN pip install flask\n# fastdeploy:ignore=df004, DF005\nFROM base\nRUN pip install x\n";
    assert_eq!(found(text), vec![("DF005", 1), ("DF003", 6)]);
    let df = parse(text);
    assert_eq!(
        check(&df, None, &["DF005".into(), " df003 ".into()]),
        vec![]
    );
    // A blank line detaches the comment from the instruction.
    assert_eq!(
        found_rule(
            "FROM python:3.12\n# fastdeploy:ignore=DF003\n\nRUN pip install flask\nUSER 1\n",
            "DF003"
        ),
        vec![4]
    );
}

#[test]
fn rules_have_unique_ids_and_titles() {
    let ids: std::collections::BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), RULES.len());
    assert!(
        RULES
            .iter()
            .all(|r| r.id.starts_with("DF") && !r.title.is_empty())
    );
}

#[test]
fn warnings_carry_rule_file_relative_to_workspace_and_line() {
    let df = parse("FROM python:3.12-slim\nRUN pip install x\nUSER 1\n");
    let w = to_warnings(
        &check(&df, None, &[]),
        Path::new("/ws/services/api/Dockerfile"),
        Path::new("/ws"),
        Some("api"),
    );
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].rule.as_deref(), Some("DF003"));
    assert_eq!(w[0].file.as_deref(), Some("services/api/Dockerfile"));
    assert_eq!(w[0].line, Some(2));
    assert_eq!(w[0].component.as_deref(), Some("api"));
}

#[test]
fn a_typical_fat_python_dockerfile_snapshot() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dockerfiles/fat-python.Dockerfile"
    ))
    .expect("fixture");
    let df = parse(&text);
    insta::assert_json_snapshot!(check(&df, None, &[]));
}

#[test]
fn a_well_built_multi_stage_dockerfile_has_no_findings() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dockerfiles/good-multistage.Dockerfile"
    ))
    .expect("fixture");
    assert_eq!(check(&parse(&text), None, &[]), vec![]);
}

// ------------------------------------------------------------------ properties

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Fragments that reach the parser's corners: continuations, heredocs,
    /// directives, JSON, flags, variables.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("FROM alpine:3.20 AS b\n".to_string()),
            Just("FROM ${BASE:-x}\n".to_string()),
            Just("ARG BASE=python\n".to_string()),
            Just("RUN echo \\\n".to_string()),
            Just("RUN <<EOF\n".to_string()),
            Just("RUN <<-'A' cat <<B\n".to_string()),
            Just("EOF\n".to_string()),
            Just("\tA\n".to_string()),
            Just("# escape=`\n".to_string()),
            Just("# fastdeploy:ignore=DF001\n".to_string()),
            Just("COPY --from=b . .\n".to_string()),
            Just("CMD [\"a\", 1]\n".to_string()),
            Just("RUN [\"sh\"\n".to_string()),
            Just("RUN --mount=type=cache,target=/x apt-get update\n".to_string()),
            Just("\n".to_string()),
            Just("`\n".to_string()),
            "[ -~\t]{0,20}\n",
        ]
    }

    fn check_result(text: &str) -> Result<(), TestCaseError> {
        match Dockerfile::parse(text, Path::new("Dockerfile")) {
            Ok(df) => {
                prop_assert!(!df.stages().is_empty());
                let _ = check(&df, None, &[]);
                let _ = check(&df, Some("b"), &[]);
            }
            Err(e) => {
                let lines = text.split('\n').count().max(1);
                prop_assert!(
                    e.line >= 1 && e.line <= lines,
                    "line {} of {}: {}",
                    e.line,
                    lines,
                    e.message
                );
                prop_assert!(!e.message.is_empty());
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
            check_result(&text)?;
        }

        #[test]
        fn never_panics_on_dockerfile_like_text(parts in proptest::collection::vec(fragment(), 0..16)) {
            check_result(&parts.concat())?;
        }
    }
}

#[test]
fn df007_flags_secrets_passed_as_arg_or_env_with_the_secret_mount_fix() {
    let text = "FROM node:22-slim AS build\nARG NPM_TOKEN\nRUN npm ci\nFROM node:22-slim\nENV DB_PASSWORD=hunter2 PORT=8080\nCOPY --from=build /app /app\nUSER node\n";
    assert_eq!(found_rule(text, "DF007"), [2, 5]);
    let df = parse(text);
    let msg = &check(&df, None, &[])
        .into_iter()
        .find(|f| f.rule == "DF007")
        .unwrap()
        .message;
    assert!(
        msg.contains("`ARG NPM_TOKEN` looks like a secret")
            && msg.contains("RUN --mount=type=secret,id=npm_token"),
        "{msg}"
    );
    assert!(
        msg.contains("`build-secrets` input (`npm_token=NPM_TOKEN`)"),
        "{msg}"
    );
    // The legacy `ENV NAME value` form too.
    assert_eq!(
        found_rule(
            "FROM alpine:3.20\nENV API_SECRET s3cr3t\nUSER 1000\n",
            "DF007"
        ),
        [2]
    );
}

/// Official images put the release-signing key's fingerprint in `GPG_KEY`
/// (python's does): public, not a secret.
#[test]
fn df007_ignores_public_keys_key_ids_and_fingerprints() {
    let text = "FROM debian:12-slim\nENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D\nARG SSH_PUBLIC_KEY\nARG AWS_ACCESS_KEY_ID\nARG TOKEN_URL\nUSER 1000\n";
    assert_eq!(found_rule(text, "DF007"), Vec::<usize>::new());
}

/// A stage the target never builds costs nothing, secrets included.
#[test]
fn df007_ignores_stages_not_built_and_can_be_silenced() {
    let text = "FROM alpine:3.20 AS unused\nARG GITHUB_TOKEN\nFROM alpine:3.20\nUSER 1000\n";
    assert_eq!(found_rule(text, "DF007"), Vec::<usize>::new());
    let silenced = "FROM alpine:3.20\n# fastdeploy:ignore=DF007\nARG GITHUB_TOKEN\nUSER 1000\n";
    assert_eq!(found_rule(silenced, "DF007"), Vec::<usize>::new());
}
