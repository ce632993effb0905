//! The Dockerfile checks. Each [`Rule`] has an id (`DF001`...), a title and
//! messages that say what to change. A finding is silenced by listing its
//! id in the `ignore-checks` input or by `# fastdeploy:ignore=DF003` on the
//! line directly above the instruction it points at.
//!
//! The rules prefer silence to noise: a finding needs evidence in the file
//! (the install command, the missing cleanup in the same RUN), and the usual
//! ways of doing it right (cache mounts, `--no-cache-dir`, removal in the
//! same RUN, builder stages) all count as right. Each rule looks only where
//! acting on it pays: the stages BuildKit builds for the target, and for
//! what the image ships or how it runs, only the final image's own stages.
//! Their firing rates on real Dockerfiles are measured by
//! `tests/it/dockerfile_corpus.rs`.

use std::collections::BTreeSet;

use super::shell::{self, Command};
use super::{Args, Base, CopySource, Dockerfile, ImageRef, Instruction, Keyword, Stage};
use crate::outcome::Severity;

/// A check's identity, for docs, `ignore-checks` and the summary.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    /// `Notice` where the fix is a policy choice rather than a clear gain.
    pub severity: Severity,
    run: for<'a> fn(&Ctx<'a>, &mut Vec<Hit<'a>>),
}

/// A finding: which rule, where, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// 1-based line of the instruction to change.
    pub line: usize,
    pub message: String,
}

const WARNING: Severity = Severity::Warning;

pub const RULES: &[Rule] = &[
    Rule {
        id: "DF001",
        title: "build tools or -dev packages in the final stage",
        severity: WARNING,
        run: build_tools_in_final,
    },
    Rule {
        id: "DF002",
        title: "whole build context copied before installing dependencies",
        severity: WARNING,
        run: context_copy_before_deps,
    },
    Rule {
        id: "DF003",
        title: "package manager cache left in the layer",
        severity: WARNING,
        run: caches_left,
    },
    // Whether a container may run as root is the team's policy (and some
    // images need it), so this one is a notice, and only for pushed images.
    Rule {
        id: "DF004",
        title: "final stage runs as root",
        severity: Severity::Notice,
        run: runs_as_root,
    },
    Rule {
        id: "DF005",
        title: "base image of the final image untagged or `latest`",
        severity: WARNING,
        run: floating_base,
    },
    Rule {
        id: "DF006",
        title: "single stage installs compilers",
        severity: WARNING,
        run: single_stage_compilers,
    },
    Rule {
        id: "DF007",
        title: "a secret passed as ARG or ENV",
        severity: WARNING,
        run: secret_args,
    },
];

/// Where the image will run, as far as the checks care: `DF004` is about
/// the user a container runs as, which only matters where the image's
/// `USER` decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// Built and not pushed (a pull request's build): it never runs.
    Nowhere,
    /// As the platform's own unprivileged user, whatever the image says
    /// (Lambda runs every function as its default least-privileged user).
    AsNonRoot,
    /// As the image's `USER` says (ECS, Elastic Beanstalk, or anywhere the
    /// pushed image is pulled).
    AsImageSays,
}

/// Runs every rule not in `ignore` (ids, any case) against the image built
/// from `target` (or the last stage), an image that is pushed.
pub fn check(df: &Dockerfile, target: Option<&str>, ignore: &[String]) -> Vec<Finding> {
    check_image(df, target, Runs::AsImageSays, ignore)
}

/// Like [`check`], for an image that runs as `runs` says.
pub fn check_image(
    df: &Dockerfile,
    target: Option<&str>,
    runs: Runs,
    ignore: &[String],
) -> Vec<Finding> {
    let final_stage = df
        .final_stage(target)
        .unwrap_or_else(|_| &df.stages()[df.stages().len() - 1]);
    let ctx = Ctx {
        df,
        lineage: df.lineage(final_stage),
        built: built_stages(df, final_stage),
        final_stage,
        runs,
    };
    let mut findings = Vec::new();
    for rule in RULES {
        if ignore
            .iter()
            .any(|i| i.trim().eq_ignore_ascii_case(rule.id))
        {
            continue;
        }
        let mut hits = Vec::new();
        (rule.run)(&ctx, &mut hits);
        findings.extend(
            hits.into_iter()
                .filter(|h| !h.at.ignores(rule.id))
                .map(|h| Finding {
                    rule: rule.id,
                    severity: rule.severity,
                    line: h.at.line,
                    message: h.message,
                }),
        );
    }
    findings.sort_by(|a, b| (a.line, a.rule).cmp(&(b.line, b.rule)));
    findings.dedup();
    findings
}

/// The stages BuildKit builds for `target`: its lineage and every stage it
/// takes files from (`COPY --from`, `RUN --mount=from=`), with theirs, in
/// file order. A stage outside this set is never built, so nothing in it
/// costs anything.
pub(super) fn built_stages<'a>(df: &'a Dockerfile, target: &'a Stage) -> Vec<&'a Stage> {
    let stages = df.stages();
    let mut built = vec![false; stages.len()];
    let mut todo = vec![target.index];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut built[i], true) {
            continue;
        }
        let stage = &stages[i];
        if let Base::Stage(b) = stage.base {
            todo.push(b);
        }
        for ins in &stage.instructions {
            let copied = (ins.keyword == Keyword::Copy)
                .then(|| ins.flag("from"))
                .flatten();
            let mounted = (ins.keyword == Keyword::Run)
                .then(|| ins.flag_values("mount").filter_map(mount_from))
                .into_iter()
                .flatten();
            for from in copied.into_iter().chain(mounted) {
                if let CopySource::Stage(s) = df.copy_source(from, stage) {
                    todo.push(s);
                }
            }
        }
    }
    stages.iter().filter(|s| built[s.index]).collect()
}

/// The `from=` of a `--mount` spec.
fn mount_from(spec: &str) -> Option<&str> {
    spec.split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == "from")
        .map(|(_, v)| v.trim())
}

struct Ctx<'a> {
    df: &'a Dockerfile,
    /// Stages whose layers are in the final image, root first.
    lineage: Vec<&'a Stage>,
    /// Stages built for the final image (its lineage and its builders).
    built: Vec<&'a Stage>,
    final_stage: &'a Stage,
    runs: Runs,
}

impl Ctx<'_> {
    /// True when something other than the final image's own chain is built
    /// (a builder stage): then build tools belong there.
    fn has_builder_stage(&self) -> bool {
        // Only stages the image takes files from are built; stages after
        // the target or referenced by nothing are not.
        self.lineage.iter().any(|stage| {
            stage.instructions.iter().any(|i| {
                let copied = i.keyword == Keyword::Copy
                    && i.flag("from")
                        .is_some_and(|f| self.is_other_stage(f, stage));
                let mounted = i.keyword == Keyword::Run
                    && i.flag_values("mount")
                        .filter_map(mount_from)
                        .any(|from| self.is_other_stage(from, stage));
                copied || mounted
            })
        })
    }

    fn is_other_stage(&self, from: &str, stage: &Stage) -> bool {
        match self.df.copy_source(from, stage) {
            CopySource::Stage(i) => !self.lineage.iter().any(|l| l.index == i),
            CopySource::Image(_) => false,
        }
    }
}

struct Hit<'a> {
    at: &'a Instruction,
    message: String,
}

fn runs(stage: &Stage) -> impl Iterator<Item = (&Instruction, Vec<Command>)> {
    stage
        .instructions
        .iter()
        .filter(|i| i.keyword == Keyword::Run)
        .map(|i| (i, shell::commands(&i.script())))
}

fn backticked(items: &[String]) -> String {
    items
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------- packages

/// A package-manager invocation that installs or removes packages.
struct PackageOp {
    install: bool,
    packages: Vec<String>,
    /// `apk add --virtual .build-deps ...` / `apk del .build-deps`.
    group: Option<String>,
}

/// Options that take the next word as their value, per manager.
fn value_options(manager: &str) -> &'static [&'static str] {
    match manager {
        "apt-get" | "apt" | "aptitude" => &[
            "-o",
            "-c",
            "-t",
            "--option",
            "--config-file",
            "--target-release",
            "--default-release",
        ],
        "apk" => &[
            "-t",
            "--virtual",
            "-X",
            "--repository",
            "-p",
            "--root",
            "--arch",
            "--cache-dir",
            "--keys-dir",
            "--repositories-file",
        ],
        _ => &[
            "-x",
            "--exclude",
            "--enablerepo",
            "--disablerepo",
            "--releasever",
            "--installroot",
            "-c",
            "--config",
            "--setopt",
        ],
    }
}

fn package_op(cmd: &Command) -> Option<PackageOp> {
    let manager = cmd.program_name();
    let (installs, removes): (&[&str], &[&str]) = match manager {
        "apt-get" | "apt" | "aptitude" => (&["install"], &["purge", "remove"]),
        "apk" => (&["add"], &["del"]),
        "yum" | "dnf" | "microdnf" | "tdnf" => (&["install"], &["remove", "erase", "autoremove"]),
        "zypper" => (&["install", "in"], &["remove", "rm"]),
        _ => return None,
    };
    let takes_value = value_options(manager);
    let mut sub: Option<&str> = None;
    let mut packages = Vec::new();
    let mut group = None;
    let mut args = cmd.args().iter();
    while let Some(a) = args.next() {
        if a.starts_with('-') {
            if takes_value.contains(&a.as_str()) {
                let v = args.next();
                if matches!(a.as_str(), "-t" | "--virtual") && manager == "apk" {
                    group = v.cloned();
                }
            } else if let Some(v) = a.strip_prefix("--virtual=") {
                group = Some(v.to_string());
            }
            continue;
        }
        match sub {
            None => sub = Some(a.as_str()),
            Some(_) => packages.push(a.clone()),
        }
    }
    let sub = sub?;
    let install = installs.contains(&sub);
    if !install && !removes.contains(&sub) {
        return None;
    }
    Some(PackageOp {
        install,
        packages,
        group,
    })
}

/// `libpq-dev=13.1`, `gcc>=12`, `gcc:amd64` -> the bare name.
fn package_name(spec: &str) -> String {
    let end = spec.find(['=', '<', '>', '~']).unwrap_or(spec.len());
    let name = &spec[..end];
    name.split(':').next().unwrap_or(name).to_ascii_lowercase()
}

/// Compilers and build tools, by package name across apt, apk and rpm.
fn is_build_tool(package: &str) -> bool {
    const TOOLS: &[&str] = &[
        "build-essential",
        "build-base",
        "alpine-sdk",
        "make",
        "cmake",
        "autoconf",
        "automake",
        "libtool",
        "pkg-config",
        "pkgconf",
        "pkgconfig",
        "gcc-c++",
        "ninja-build",
        "meson",
        "bison",
        "flex",
        "ccache",
        "golang",
        "golang-go",
        "go",
        "rustc",
        "cargo",
        "rust",
        "gcc",
        "g++",
        "clang",
        "llvm",
        "gfortran",
        "musl-tools",
    ];
    if TOOLS.contains(&package) || package.ends_with("-dev") || package.ends_with("-devel") {
        return true;
    }
    // Versioned compilers: gcc-12, g++-12, clang-15.
    ["gcc-", "g++-", "clang-", "llvm-"].iter().any(|p| {
        package
            .strip_prefix(p)
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// Compilers proper, which DF006 asks for before it suggests a builder
/// stage: `-dev` headers or `make` alone add little to an image, a C
/// compiler or a language toolchain adds hundreds of MB.
fn is_compiler(package: &str) -> bool {
    const COMPILERS: &[&str] = &[
        "build-essential",
        "build-base",
        "alpine-sdk",
        "gcc",
        "g++",
        "gcc-c++",
        "clang",
        "gfortran",
        "golang",
        "golang-go",
        "go",
        "rustc",
        "cargo",
        "rust",
    ];
    COMPILERS.contains(&package)
        || ["gcc-", "g++-", "clang-"].iter().any(|p| {
            package
                .strip_prefix(p)
                .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        })
}

/// Build tools a RUN installs and does not remove again in the same RUN.
fn build_tools_left(commands: &[Command]) -> Vec<String> {
    let ops: Vec<PackageOp> = commands.iter().filter_map(package_op).collect();
    let removed: BTreeSet<String> = ops
        .iter()
        .filter(|o| !o.install)
        .flat_map(|o| o.packages.iter().map(|p| package_name(p)))
        .collect();
    let mut left = Vec::new();
    for op in ops.iter().filter(|o| o.install) {
        if op
            .group
            .as_ref()
            .is_some_and(|g| removed.contains(&g.to_ascii_lowercase()))
        {
            continue;
        }
        for p in &op.packages {
            let name = package_name(p);
            if is_build_tool(&name) && !removed.contains(&name) && !left.contains(&name) {
                left.push(name);
            }
        }
    }
    left
}

/// Images that are toolchains rather than runtimes.
fn toolchain_image(image: &ImageRef) -> bool {
    matches!(
        image.short_name(),
        "golang" | "rust" | "gcc" | "buildpack-deps" | "maven" | "gradle" | "dotnet/sdk"
    )
}

/// Evidence that the final image carries build tools.
struct Evidence<'a> {
    at: &'a Instruction,
    what: String,
    /// A compiler or toolchain, not only headers or build helpers.
    compiler: bool,
}

fn build_tool_evidence<'a>(ctx: &Ctx<'a>) -> Vec<Evidence<'a>> {
    let mut out = Vec::new();
    let root = ctx.lineage[0];
    if let Base::Image(image) = &root.base
        && toolchain_image(image)
    {
        out.push(Evidence {
            at: &root.from,
            what: format!("is based on `{}`, a toolchain image", image.raw),
            compiler: true,
        });
    }
    for stage in &ctx.lineage {
        for (ins, cmds) in runs(stage) {
            let left = build_tools_left(&cmds);
            if !left.is_empty() {
                out.push(Evidence {
                    at: ins,
                    what: format!(
                        "installs {} on line {} and keeps them",
                        backticked(&left),
                        ins.line
                    ),
                    compiler: left.iter().any(|p| is_compiler(p)),
                });
            }
        }
    }
    out
}

fn build_tools_in_final<'a>(ctx: &Ctx<'a>, hits: &mut Vec<Hit<'a>>) {
    if !ctx.has_builder_stage() {
        return; // DF006's case.
    }
    let stage = ctx.final_stage.label();
    for Evidence { at, what, .. } in build_tool_evidence(ctx) {
        hits.push(Hit {
            at,
            message: format!(
                "the final image (stage `{stage}`) {what}; move the build into the builder stage and COPY --from it only what runs, \
                 or remove the tools in the same RUN (apt-get purge -y --auto-remove ..., apk add --virtual .build-deps ... && apk del .build-deps)"
            ),
        });
    }
}

fn single_stage_compilers<'a>(ctx: &Ctx<'a>, hits: &mut Vec<Hit<'a>>) {
    if ctx.has_builder_stage() {
        return; // DF001's case.
    }
    // Headers alone (`libpq-dev` for a driver) are DF001's business in a
    // multi-stage build; here, without a compiler, a builder stage would
    // save little.
    for Evidence { at, what, .. } in build_tool_evidence(ctx).into_iter().filter(|e| e.compiler) {
        hits.push(Hit {
            at,
            message: format!(
                "this single-stage Dockerfile {what}, so the image ships a compiler; build in a `FROM ... AS build` stage and \
                 `COPY --from=build` only the result into a slim runtime stage"
            ),
        });
    }
}

// ---------------------------------------------------------------- DF002

/// Dependency installers and the manifests to copy before them.
fn dependency_install(cmd: &Command) -> Option<(&'static str, String)> {
    let args: Vec<&str> = cmd.args().iter().map(String::as_str).collect();
    let name = cmd.program_name();
    let pip_args: Option<&[&str]> = if name.starts_with("pip") {
        Some(&args[..])
    } else if name.starts_with("python") && args.len() >= 2 && args[0] == "-m" && args[1] == "pip" {
        Some(&args[2..])
    } else if name == "uv" && args.first() == Some(&"pip") {
        Some(&args[1..])
    } else {
        None
    };
    if let Some(a) = pip_args {
        if a.first() != Some(&"install") {
            return (name == "uv" && a.first() == Some(&"sync"))
                .then(|| ("uv", "pyproject.toml and uv.lock".to_string()));
        }
        let mut it = a.iter();
        while let Some(w) = it.next() {
            if *w == "-r" || *w == "--requirement" {
                let file = it.next().copied().unwrap_or("requirements.txt");
                return Some(("pip", file.to_string()));
            }
            if let Some(file) = w
                .strip_prefix("--requirement=")
                .or_else(|| w.strip_prefix("-r").filter(|f| !f.is_empty()))
            {
                return Some(("pip", file.to_string()));
            }
        }
        return None;
    }
    let sub = args.first().copied().unwrap_or("");
    let found = match (name, sub) {
        ("poetry", "install") => ("poetry", "pyproject.toml and poetry.lock"),
        ("pipenv", "install" | "sync") => ("pipenv", "Pipfile and Pipfile.lock"),
        ("uv", "sync") => ("uv", "pyproject.toml and uv.lock"),
        ("npm", "ci") => ("npm", "package.json and package-lock.json"),
        // `npm install <pkg>` adds one package; only a bare install reads the manifest.
        ("npm", "install" | "i") if args[1..].iter().all(|a| a.starts_with('-')) => {
            ("npm", "package.json and package-lock.json")
        }
        ("yarn", "install") | ("yarn", "") => ("yarn", "package.json and yarn.lock"),
        ("pnpm", "install" | "i") => ("pnpm", "package.json and pnpm-lock.yaml"),
        ("go", "mod") if args.get(1) == Some(&"download") => ("go", "go.mod and go.sum"),
        ("bundle", "install") | ("bundle", "") => ("bundle", "Gemfile and Gemfile.lock"),
        ("composer", "install") => ("composer", "composer.json and composer.lock"),
        ("mix", "deps.get") => ("mix", "mix.exs and mix.lock"),
        ("cargo", "fetch") => ("cargo", "Cargo.toml and Cargo.lock"),
        _ => return None,
    };
    Some((found.0, found.1.to_string()))
}

fn is_context_copy(ins: &Instruction) -> bool {
    if !matches!(ins.keyword, Keyword::Copy | Keyword::Add) || ins.flag("from").is_some() {
        return false;
    }
    let (sources, _) = ins.copy_paths();
    sources
        .iter()
        .any(|s| matches!(s.as_str(), "." | "./" | "./." | "*" | "./*"))
}

fn context_copy_before_deps<'a>(ctx: &Ctx<'a>, hits: &mut Vec<Hit<'a>>) {
    // Builders count (their reinstall is build time too); stages the target
    // does not need are never built.
    for stage in &ctx.built {
        let mut copy: Option<&Instruction> = None;
        let mut installed_before: BTreeSet<&'static str> = BTreeSet::new();
        'instructions: for ins in &stage.instructions {
            if copy.is_none() && is_context_copy(ins) {
                copy = Some(ins);
                continue;
            }
            if ins.keyword != Keyword::Run {
                continue;
            }
            for cmd in shell::commands(&ins.script()) {
                let Some((tool, manifest)) = dependency_install(&cmd) else {
                    continue;
                };
                match copy {
                    None => {
                        installed_before.insert(tool);
                    }
                    Some(at) if !installed_before.contains(tool) => {
                        let kw = at.keyword.as_str();
                        hits.push(Hit {
                            at,
                            message: format!(
                                "{kw} of the whole context on line {} comes before `{}` on line {}, so every source change \
                                 reinstalls the dependencies; COPY {manifest} first, run the install, then {kw} the rest",
                                at.line,
                                cmd.words.join(" "),
                                ins.line
                            ),
                        });
                        break 'instructions;
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

// ---------------------------------------------------------------- DF007

/// Whether a variable's name says it holds a secret: `*_TOKEN`,
/// `*_PASSWORD`, `*_SECRET`, `*_KEY` (not public keys and key ids, nor the
/// release-signing key fingerprints official images put in `GPG_KEY`).
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    let secret = ["_TOKEN", "_PASSWORD", "_SECRET", "_KEY"]
        .iter()
        .any(|s| n.ends_with(s))
        || matches!(n.as_str(), "TOKEN" | "PASSWORD" | "SECRET");
    let public = n.ends_with("PUBLIC_KEY")
        || n.ends_with("PUB_KEY")
        || n.ends_with("GPG_KEY")
        || n.ends_with("PGP_KEY");
    secret && !public
}

/// The names an ARG or ENV instruction sets.
fn set_names(ins: &Instruction) -> Vec<String> {
    let Args::Shell(text) = &ins.args else {
        return Vec::new();
    };
    let words = super::parse::split_words_escaped(text, ins.escape);
    if ins.keyword == Keyword::Env && words.first().is_some_and(|w| !w.contains('=')) {
        return words.first().cloned().into_iter().collect(); // `ENV NAME value`
    }
    words
        .iter()
        .map(|w| w.split_once('=').map_or(w.as_str(), |(k, _)| k).to_string())
        .collect()
}

fn secret_args<'a>(ctx: &Ctx<'a>, hits: &mut Vec<Hit<'a>>) {
    // Every stage BuildKit builds: a build argument's value is recorded in
    // the history of the layers that use it, and an ENV in the image config,
    // for anyone who can pull the image (or its cache).
    for stage in &ctx.built {
        for ins in stage
            .instructions
            .iter()
            .filter(|i| matches!(i.keyword, Keyword::Arg | Keyword::Env))
        {
            for name in set_names(ins).into_iter().filter(|n| secret_name(n)) {
                let id = name.to_ascii_lowercase();
                let kind = ins.keyword.as_str();
                hits.push(Hit {
                    at: ins,
                    message: format!(
                        "`{kind} {name}` looks like a secret, and its value stays in the image's {} for anyone who can pull it; \
                         mount it for the one RUN that needs it instead: `RUN --mount=type=secret,id={id} {name}=$(cat /run/secrets/{id}) ...`, \
                         passed with the `build-secrets` input (`{id}={name}`)",
                        if ins.keyword == Keyword::Env { "config" } else { "history" }
                    ),
                });
            }
        }
    }
}

// ---------------------------------------------------------------- DF003

/// Names set by ENV or ARG in the stages up to `upto`.
fn env_names(lineage: &[&Stage], upto: &Instruction) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    'stages: for stage in lineage {
        for ins in &stage.instructions {
            if std::ptr::eq(ins, upto) {
                break 'stages;
            }
            if !matches!(ins.keyword, Keyword::Env | Keyword::Arg) {
                continue;
            }
            let Args::Shell(text) = &ins.args else {
                continue;
            };
            let words = super::parse::split_words_escaped(text, ins.escape);
            if ins.keyword == Keyword::Env && words.first().is_some_and(|w| !w.contains('=')) {
                names.extend(words.first().cloned()); // `ENV NAME value`
            } else {
                names.extend(
                    words
                        .iter()
                        .map(|w| w.split_once('=').map_or(w.as_str(), |(k, _)| k).to_string()),
                );
            }
        }
    }
    names
}

struct RunFacts<'a> {
    commands: &'a [Command],
    cache_targets: Vec<String>,
    env: BTreeSet<String>,
}

impl RunFacts<'_> {
    /// An `rm` of a path containing `fragment`.
    fn removes(&self, fragment: &str) -> bool {
        self.commands.iter().any(|c| {
            c.program_name() == "rm"
                && c.args()
                    .iter()
                    .any(|a| !a.starts_with('-') && a.contains(fragment))
        })
    }

    /// A cache mount whose target is `path` or holds it (`/var/lib/apt` holds `/var/lib/apt/lists`).
    fn mounts(&self, path: &str) -> bool {
        self.cache_targets.iter().any(|t| {
            let t = t.trim_end_matches('/');
            !t.is_empty() && (path == t || path.starts_with(&format!("{t}/")) || t.ends_with(path))
        })
    }

    fn runs(&self, program: &str, first_args: &[&str]) -> bool {
        self.commands.iter().any(|c| {
            c.program_name() == program
                && c.args().iter().take(first_args.len()).eq(first_args.iter())
        })
    }

    fn env_set(&self, name: &str) -> bool {
        self.env.contains(name)
            || self.commands.iter().any(|c| {
                c.env.iter().any(|(k, _)| k == name)
                    || (c.program() == "export"
                        && c.args().iter().any(|a| a.starts_with(&format!("{name}="))))
            })
    }
}

/// The subcommand: the first word that is neither an option nor an
/// option's value (`apt-get -o Acquire::Retries=3 update` -> `update`).
fn first_operand(cmd: &Command) -> Option<&str> {
    let takes_value = value_options(cmd.program_name());
    let mut args = cmd.args().iter();
    while let Some(a) = args.next() {
        if !a.starts_with('-') {
            return Some(a);
        }
        if takes_value.contains(&a.as_str()) {
            args.next();
        }
    }
    None
}

fn is_pip_install(cmd: &Command) -> bool {
    let name = cmd.program_name();
    let args = cmd.args();
    let rest = if name.starts_with("pip")
        && !name.starts_with("pipenv")
        && !name.starts_with("pipx")
    {
        args
    } else if name.starts_with("python") && args.len() >= 2 && args[0] == "-m" && args[1] == "pip" {
        &args[2..]
    } else {
        return false;
    };
    rest.first().is_some_and(|a| a == "install")
}

/// Whether a `pip install` leaves pip's cache behind: it downloads or
/// builds something, without `--no-cache-dir` (or the `--no-cache`
/// abbreviation pip accepts). Two installs that leave next to nothing do
/// not count: pip upgrading itself (a few MB of its own wheels), and local
/// wheels or directories with `--no-deps`/`--no-index` (nothing downloaded,
/// and pip never caches a wheel it builds from a local directory).
fn pip_caches(cmd: &Command) -> bool {
    const TAKES_VALUE: &[&str] = &[
        "-c",
        "--constraint",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "-t",
        "--target",
        "--prefix",
        "--root",
        "--trusted-host",
        "--upgrade-strategy",
        "--platform",
        "--python-version",
    ];
    if !is_pip_install(cmd) {
        return false;
    }
    let mut packages = Vec::new();
    let (mut requirements, mut offline) = (false, false);
    let mut args = cmd.args().iter().skip_while(|a| *a != "install").skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            a if a.starts_with("--no-cache") => return false,
            "-r" | "--requirement" | "-e" | "--editable" => requirements = true,
            "--no-deps" | "--no-index" => offline = true,
            a if a.starts_with("--requirement=")
                || (a.starts_with("-r") && !a.starts_with("--")) =>
            {
                requirements = true
            }
            a if TAKES_VALUE.contains(&a) => {
                args.next();
            }
            a if !a.starts_with('-') => packages.push(a),
            _ => {}
        }
    }
    if requirements {
        return true;
    }
    let self_upgrade = packages
        .iter()
        .all(|p| matches!(package_name(p).as_str(), "pip" | "setuptools" | "wheel"));
    let local_only = offline
        && packages
            .iter()
            .all(|p| p.starts_with(['/', '.', '$', '~']) || p.ends_with(".whl"));
    let leaves_next_to_nothing = packages.is_empty() || self_upgrade || local_only;
    !leaves_next_to_nothing
}

/// One message per package manager whose cache a RUN leaves behind.
fn cache_leaks(run: &Instruction, facts: &RunFacts<'_>) -> Vec<String> {
    let rpm = ["yum", "dnf", "microdnf", "tdnf"].map(|manager| rpm_cache_leak(run, facts, manager));
    [
        apt_lists_leak(run, facts),
        apk_index_leak(run, facts),
        pip_cache_leak(run, facts),
        uv_cache_leak(run, facts),
        npm_cache_leak(run, facts),
    ]
    .into_iter()
    .chain(rpm)
    .flatten()
    .collect()
}

/// The cache-mount form of RUN a message offers instead of cleaning up.
fn mount_hint(target: &str) -> String {
    format!("RUN --mount=type=cache,target={target}")
}

/// The message for apt's package lists left in the layer, if they are.
fn apt_lists_leak(run: &Instruction, facts: &RunFacts<'_>) -> Option<String> {
    let apt = |c: &Command, sub: &str| {
        matches!(c.program_name(), "apt-get" | "apt" | "aptitude") && first_operand(c) == Some(sub)
    };
    let apt_update = facts.commands.iter().any(|c| apt(c, "update"));
    // `apt-get dist-clean` (apt 2.7+, Debian 13) removes the lists too.
    let apt_clean = facts.removes("/var/lib/apt/lists")
        || facts.removes("/var/lib/apt/*")
        || facts.mounts("/var/lib/apt/lists")
        || facts.commands.iter().any(|c| apt(c, "dist-clean"));
    (apt_update && !apt_clean).then(|| {
        format!(
            "RUN on line {} runs apt-get update but leaves /var/lib/apt/lists in the layer; end the same RUN with \
             `&& rm -rf /var/lib/apt/lists/*` or use `{}`",
            run.line,
            mount_hint("/var/lib/apt/lists")
        )
    })
}

/// The message for apk's index left in /var/cache/apk, if it is.
fn apk_index_leak(run: &Instruction, facts: &RunFacts<'_>) -> Option<String> {
    // `--no-network` installs from what is already there: nothing is fetched.
    let apk = facts.commands.iter().any(|c| {
        c.program_name() == "apk"
            && matches!(first_operand(c), Some("add" | "update"))
            && !c.has("--no-cache")
            && !c.has("--no-network")
    });
    let cleaned = facts.removes("/var/cache/apk")
        || facts.mounts("/var/cache/apk")
        || facts.mounts("/etc/apk/cache");
    (apk && !cleaned).then(|| {
        format!(
            "RUN on line {} runs apk without --no-cache and leaves the index in /var/cache/apk; use `apk add --no-cache` \
             or `{}`",
            run.line,
            mount_hint("/var/cache/apk")
        )
    })
}

/// The message for pip's cache left in the layer, if it is.
fn pip_cache_leak(run: &Instruction, facts: &RunFacts<'_>) -> Option<String> {
    let pip = facts.commands.iter().any(pip_caches);
    let pip_clean = facts.env_set("PIP_NO_CACHE_DIR")
        || facts.removes(".cache/pip")
        || facts.removes("/root/.cache")
        || facts.runs("pip", &["cache", "purge"])
        || facts.runs("pip3", &["cache", "purge"])
        || facts.mounts("/root/.cache/pip")
        || facts.cache_targets.iter().any(|t| t.contains(".cache/pip"));
    (pip && !pip_clean).then(|| {
        format!(
            "RUN on line {} runs pip install without --no-cache-dir, leaving pip's cache in the layer; add --no-cache-dir, \
             set `ENV PIP_NO_CACHE_DIR=1`, or use `{}`",
            run.line,
            mount_hint("/root/.cache/pip")
        )
    })
}

/// The message for uv's cache left in the layer, if it is.
fn uv_cache_leak(run: &Instruction, facts: &RunFacts<'_>) -> Option<String> {
    let uv = facts.commands.iter().any(|c| {
        c.program_name() == "uv"
            && matches!(c.args().first().map(String::as_str), Some("sync" | "pip"))
            && !c.has("--no-cache")
            && !c.has("-n")
    });
    let uv_clean = facts.env_set("UV_NO_CACHE")
        || facts.env_set("UV_CACHE_DIR")
        || facts.removes(".cache/uv")
        || facts.removes("/root/.cache")
        || facts.runs("uv", &["cache", "clean"])
        || facts.mounts("/root/.cache/uv")
        || facts.cache_targets.iter().any(|t| t.contains(".cache/uv"));
    (uv && !uv_clean).then(|| {
        format!(
            "RUN on line {} runs uv without --no-cache, leaving uv's cache in the layer; add --no-cache, set \
             `ENV UV_NO_CACHE=1`, or use `{}`",
            run.line,
            mount_hint("/root/.cache/uv")
        )
    })
}

/// The message for npm's cache (~/.npm) left in the layer, if it is.
fn npm_cache_leak(run: &Instruction, facts: &RunFacts<'_>) -> Option<String> {
    // Only an install from the manifest caches the whole dependency tree;
    // `npm install -g pnpm` caches one tool's tarball.
    let npm = facts
        .commands
        .iter()
        .any(|c| c.program_name() == "npm" && dependency_install(c).is_some());
    let npm_clean = facts.runs("npm", &["cache", "clean"])
        || facts.removes(".npm")
        || facts.env_set("NPM_CONFIG_CACHE")
        || facts.env_set("npm_config_cache")
        || facts
            .cache_targets
            .iter()
            .any(|t| t.trim_end_matches('/').ends_with(".npm"));
    (npm && !npm_clean).then(|| {
        format!(
            "RUN on line {} runs npm without cleaning its cache (~/.npm) in the same RUN; append \
             `&& npm cache clean --force` or use `{}`",
            run.line,
            mount_hint("/root/.npm")
        )
    })
}

/// The message for the cache an RPM package manager (`yum`, `dnf`,
/// `microdnf`, `tdnf`) leaves in /var/cache, if it does.
fn rpm_cache_leak(run: &Instruction, facts: &RunFacts<'_>, manager: &str) -> Option<String> {
    let cmds = facts.commands;
    let installs = cmds
        .iter()
        .any(|c| c.program_name() == manager && first_operand(c) == Some("install"));
    let cache = if manager == "yum" {
        "/var/cache/yum"
    } else {
        "/var/cache/dnf"
    };
    let cleaned = facts.runs(manager, &["clean", "all"])
        || cmds
            .iter()
            .any(|c| c.program_name() == manager && first_operand(c) == Some("clean"))
        || facts.removes(cache)
        || facts.removes("/var/cache/")
        || facts.mounts(cache);
    (installs && !cleaned).then(|| {
        format!(
            "RUN on line {} runs {manager} install without `{manager} clean all` in the same RUN, leaving {cache} \
             in the layer; append `&& {manager} clean all` or use `{}`",
            run.line,
            mount_hint(cache)
        )
    })
}

fn caches_left<'a>(ctx: &Ctx<'a>, hits: &mut Vec<Hit<'a>>) {
    for stage in &ctx.lineage {
        for (ins, commands) in runs(stage) {
            let facts = RunFacts {
                commands: &commands,
                cache_targets: ins.cache_mount_targets(),
                env: env_names(&ctx.lineage, ins),
            };
            for message in cache_leaks(ins, &facts) {
                hits.push(Hit { at: ins, message });
            }
        }
    }
}

// ---------------------------------------------------------------- DF004

/// Base images that already run as a non-root user.
fn nonroot_image(image: &ImageRef) -> bool {
    let tag = image.tag.as_deref().unwrap_or("");
    tag.contains("nonroot")
        || tag.contains("rootless")
        || image.name.starts_with("cgr.dev/chainguard/")
        || image.repository().starts_with("bitnami/")
        || image.name.contains("unprivileged")
        || image.name.contains("rootless")
}

/// Base images whose platform picks the user, whatever `USER` says: dev
/// containers run as their `remoteUser`, Lambda runs its base images as
/// its own unprivileged user.
fn platform_picks_user(image: &ImageRef) -> bool {
    [
        "mcr.microsoft.com/devcontainers/",
        "mcr.microsoft.com/vscode/devcontainers/",
        "public.ecr.aws/lambda/",
    ]
    .iter()
    .any(|p| image.name.starts_with(p))
}

/// Images whose server steps down from root by itself: nginx, httpd and
/// PHP's apache and fpm variants run their request-handling workers as an
/// unprivileged user; the official database and broker images' entrypoints
/// re-exec as their own user; linuxserver.io images run the app as `abc`.
/// A `USER` there breaks the image more often than it helps.
fn drops_root_itself(image: &ImageRef) -> bool {
    let tag = image.tag.as_deref().unwrap_or("");
    match image.short_name() {
        "nginx" | "httpd" | "postgres" | "mysql" | "mariadb" | "mongo" | "redis" | "rabbitmq" => {
            true
        }
        "php" => tag.contains("apache") || tag.contains("fpm"),
        _ => image.repository().starts_with("linuxserver/"),
    }
}

/// Programs that start a process as another user: an entrypoint that uses
/// one drops root at start, which a `USER` would break.
const STEP_DOWN: &[&str] = &[
    "gosu",
    "su-exec",
    "setpriv",
    "s6-setuidgid",
    "chpst",
    "runuser",
    "setuser",
];

fn steps_down(lineage: &[&Stage]) -> bool {
    lineage.iter().flat_map(|s| s.instructions.iter()).any(|i| {
        let text = if i.keyword == Keyword::Run {
            i.script()
        } else {
            i.text.clone()
        };
        text.split(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '[' | ']' | ';' | '&' | '|' | '=')
        })
        .any(|w| STEP_DOWN.contains(&w.rsplit('/').next().unwrap_or(w)))
    })
}

fn is_root(user: &str) -> bool {
    let who = user.split(':').next().unwrap_or(user).trim();
    who == "root" || who == "0"
}

fn runs_as_root<'a>(ctx: &Ctx<'a>, hits: &mut Vec<Hit<'a>>) {
    if ctx.runs != Runs::AsImageSays || steps_down(&ctx.lineage) {
        return;
    }
    let base = match &ctx.lineage[0].base {
        Base::Image(image) if platform_picks_user(image) || drops_root_itself(image) => return,
        Base::Image(image) => Some(image),
        _ => None,
    };
    let last_user = ctx
        .lineage
        .iter()
        .flat_map(|s| s.instructions.iter())
        .rfind(|i| i.keyword == Keyword::User);
    match last_user {
        Some(user) => {
            let Args::Shell(who) = &user.args else { return };
            if is_root(who) {
                hits.push(Hit {
                    at: user,
                    message: format!(
                        "the final image runs as root: USER {} on line {} is the last USER; switch to an unprivileged user \
                         (`USER 10001` or a user created with useradd) after the steps that need root",
                        who.trim(),
                        user.line
                    ),
                });
            }
        }
        None => {
            if base.is_some_and(nonroot_image) {
                return;
            }
            let line = ctx.final_stage.line();
            let how = match base {
                // No /etc/passwd and no useradd there: a numeric id needs neither.
                None if matches!(ctx.lineage[0].base, Base::Scratch) => {
                    "add `USER 65532:65532` (a numeric id needs no /etc/passwd) unless the process must bind a port below 1024".to_string()
                }
                Some(image) if image.name.starts_with("gcr.io/distroless/") => {
                    format!("use the `:nonroot` variant (`{}:nonroot`) or add `USER 65532:65532`", image.name)
                }
                Some(image) if image.short_name() == "node" => {
                    "add `USER node` (the node image's unprivileged user) before CMD".to_string()
                }
                _ => "add `RUN useradd --system --uid 10001 app` (or `adduser -S -u 10001 app` on Alpine) and `USER 10001` \
                      before CMD"
                    .to_string(),
            };
            hits.push(Hit {
                at: &ctx.final_stage.from,
                message: format!("the final stage (FROM on line {line}) has no USER, so the container runs as root; {how}"),
            });
        }
    }
}

// ---------------------------------------------------------------- DF005

fn floating(image: &ImageRef) -> Option<&'static str> {
    if image.digest.is_some() {
        return None;
    }
    match image.tag.as_deref() {
        None => Some("has no tag, so it means `latest`"),
        Some(t) if t.eq_ignore_ascii_case("latest") => Some("is tagged `latest`"),
        Some(_) => None,
    }
}

fn floating_base<'a>(ctx: &Ctx<'a>, hits: &mut Vec<Hit<'a>>) {
    let pin = "pin a version tag (e.g. `python:3.12-slim`) or a digest so builds are repeatable and the layer cache holds";
    // Only what ends up in the image: a floating runtime changes what runs
    // without a change in the repository, while a builder's floating tag
    // shows itself as a build that breaks, before anything is deployed.
    for stage in &ctx.lineage {
        if let Base::Image(image) = &stage.base
            && let Some(why) = floating(image)
        {
            hits.push(Hit {
                at: &stage.from,
                message: format!("base image `{}` {why}; {pin}", image.raw),
            });
        }
        for ins in stage
            .instructions
            .iter()
            .filter(|i| i.keyword == Keyword::Copy)
        {
            if let Some(from) = ins.flag("from")
                && let CopySource::Image(image) = ctx.df.copy_source(from, stage)
                && !from.contains('$')
                && let Some(why) = floating(&image)
            {
                hits.push(Hit {
                    at: ins,
                    message: format!("COPY --from image `{}` {why}; {pin}", image.raw),
                });
            }
        }
    }
}
