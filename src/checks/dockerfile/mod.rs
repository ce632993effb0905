//! Dockerfile parsing (continuations, heredocs, `ARG` before `FROM`, stages) and the checks that flag slow or fat images, each with an id that can be silenced.
//!
//! `load` reads and parses a Dockerfile (a missing or malformed file is
//! [`BadInput`] naming the file and line); `Dockerfile::final_stage` resolves
//! the `target` input; `check` runs the rules in [`checks`] and returns
//! findings that `to_warnings` turns into annotations (warnings, or notices
//! where the fix is a policy choice).

mod checks;
mod parse;
mod shell;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::BadInput;
use crate::outcome::Warning;

pub use checks::{Finding, RULES, Rule, Runs, check, check_image};
pub use parse::{
    Args, Base, CopySource, Flag, Heredoc, ImageRef, Instruction, Keyword, ParseError, Stage,
};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    path: PathBuf,
    /// `# syntax=` directive, when present.
    pub syntax: Option<String>,
    /// `# escape=` directive (`\` by default).
    pub escape: char,
    /// ARGs declared before the first FROM, with their defaults.
    pub global_args: Vec<(String, Option<String>)>,
    stages: Vec<Stage>,
    /// The text as read (the content tag hashes it).
    source: String,
}

/// Reads and parses the Dockerfile at `path`.
pub fn load(path: &Path) -> anyhow::Result<Dockerfile> {
    load_with_args(path, &BTreeMap::new())
}

/// Like [`load`], with build args overriding the defaults of ARGs declared
/// before the first FROM (they decide which base image FROM names).
pub fn load_with_args(
    path: &Path,
    build_args: &BTreeMap<String, String>,
) -> anyhow::Result<Dockerfile> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            BadInput::other(format!("Dockerfile {} is not UTF-8 text", path.display()))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BadInput::other(format!(
                "Dockerfile {} does not exist; set the `dockerfile` input to the file's path",
                path.display()
            ))
            .into());
        }
        Err(e) if path.is_dir() => {
            return Err(BadInput::other(format!(
                "Dockerfile {} is a directory ({e}); set the `dockerfile` input to the file inside it",
                path.display()
            ))
            .into());
        }
        Err(e) => {
            return Err(BadInput::other(format!(
                "Dockerfile {} cannot be read: {e}",
                path.display()
            ))
            .into());
        }
    };
    Dockerfile::parse_with_args(&text, path, build_args).map_err(|e| {
        BadInput::other(format!(
            "Dockerfile {}, line {}: {}",
            path.display(),
            e.line,
            e.message
        ))
        .into()
    })
}

impl Dockerfile {
    /// The Dockerfile's text, as read.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Parses `text`; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Dockerfile, ParseError> {
        Self::parse_with_args(text, path, &BTreeMap::new())
    }

    pub fn parse_with_args(
        text: &str,
        path: &Path,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Dockerfile, ParseError> {
        let parsed = parse::parse(text, build_args)?;
        Ok(Dockerfile {
            path: path.to_path_buf(),
            syntax: parsed.syntax,
            escape: parsed.escape,
            global_args: parsed.global_args,
            stages: parsed.stages,
            source: text.to_string(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stages in file order (never empty).
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage that becomes the image: `target` when given, else the last.
    pub fn final_stage(&self, target: Option<&str>) -> Result<&Stage, BadInput> {
        let Some(target) = target else {
            return self.stages.last().ok_or_else(|| {
                BadInput::other(format!("Dockerfile {} has no FROM", self.path.display()))
            });
        };
        let wanted = target.to_ascii_lowercase();
        // The latest stage of that name, as BuildKit's `--target` picks it.
        self.stages.iter().rev().find(|s| s.name.as_deref() == Some(wanted.as_str())).ok_or_else(|| {
            let known: Vec<String> =
                self.stages.iter().filter_map(|s| s.name.as_ref().map(|n| format!("{n} (line {})", s.line()))).collect();
            let known = if known.is_empty() { "none: no FROM has `AS name`".to_string() } else { known.join(", ") };
            BadInput::other(format!("target stage `{target}` is not in Dockerfile {}; its named stages are: {known}", self.path.display()))
        })
    }

    /// The stages whose layers end up in `stage`'s image: the chain of
    /// `FROM <stage>` bases, root first, `stage` last.
    pub fn lineage(&self, stage: &Stage) -> Vec<&Stage> {
        let mut chain = vec![&self.stages[stage.index]];
        while let Base::Stage(i) = chain[chain.len() - 1].base {
            // Bases always point backwards, so this terminates.
            chain.push(&self.stages[i]);
        }
        chain.reverse();
        chain
    }

    /// The instructions that make up the image of `target` (or the last
    /// stage), in build order: the base stages' instructions first. The
    /// FROM lines are left out; RUN, COPY and ADD each add one layer, WORKDIR
    /// may add one. For the image-size report, which maps history entries to
    /// the instructions that made them.
    pub fn image_instructions(&self, target: Option<&str>) -> Result<Vec<&Instruction>, BadInput> {
        let stage = self.final_stage(target)?;
        Ok(self
            .lineage(stage)
            .into_iter()
            .flat_map(|s| s.instructions.iter())
            .collect())
    }

    /// The root image the final image starts from (`None` for scratch or an
    /// unresolved reference).
    pub fn base_image(&self, stage: &Stage) -> Option<&ImageRef> {
        match &self.lineage(stage)[0].base {
            Base::Image(r) => Some(r),
            _ => None,
        }
    }

    /// The stages BuildKit builds for `target`: its lineage and every stage
    /// it takes files from, with theirs, in file order.
    pub fn built_stages<'a>(&'a self, target: &'a Stage) -> Vec<&'a Stage> {
        checks::built_stages(self, target)
    }

    /// Where a `COPY --from=` in `stage` takes its files from.
    pub fn copy_source(&self, from: &str, stage: &Stage) -> CopySource {
        parse::copy_source(from, &self.stages, stage.index)
    }
}

/// Turns findings into warnings for annotations and the summary. `workspace`
/// is the directory paths are shown relative to (GITHUB_WORKSPACE).
pub fn to_warnings(
    findings: &[Finding],
    dockerfile: &Path,
    workspace: &Path,
    component: Option<&str>,
) -> Vec<Warning> {
    let file = dockerfile
        .strip_prefix(workspace)
        .unwrap_or(dockerfile)
        .to_string_lossy()
        .replace('\\', "/");
    findings
        .iter()
        .map(|f| Warning {
            rule: Some(f.rule.to_string()),
            severity: f.severity,
            component: component.map(str::to_string),
            file: Some(file.clone()),
            line: Some(f.line),
            message: f.message.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
