//! Base images: what each `FROM` (and `COPY --from=<image>`) of the stages a
//! component builds resolves to in its registry.
//!
//! The digests go into the content tag, so a base re-pushed under the same
//! tag (a patched `python:3.12-slim`) rebuilds a component whose files did
//! not change; and the build is given the Dockerfile with each base pinned
//! (`FROM python:3.12-slim@sha256:…`), so it uses exactly what was resolved.
//! A base that cannot be resolved (a private registry without credentials)
//! is a warning and stays as written: it is then left out of the content tag,
//! as before.

use std::collections::BTreeMap;

use crate::checks::dockerfile::{Base, CopySource, Dockerfile, ImageRef, Keyword};

use super::registry::{Client, RegistryAuth};

/// Labels every build carries, so a later run can say why it rebuilt.
pub const INPUTS_LABEL: &str = "dev.fastdeploy.inputs";
pub const BASES_LABEL: &str = "dev.fastdeploy.bases";

/// One base image the Dockerfile uses, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUse {
    /// As written after ARG substitution (`python:3.12-slim`).
    pub reference: String,
    pub at: Place,
}

/// The instruction a base is named in (lines are 1-based, inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A stage's FROM: rewritten whole on its first line.
    From {
        line: usize,
        end_line: usize,
        flags: Vec<String>,
        name: Option<String>,
    },
    /// `COPY --from=<written>`: the flag's value is pinned in place.
    CopyFrom {
        line: usize,
        end_line: usize,
        written: String,
    },
}

/// A base and the digest it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    pub reference: String,
    pub digest: String,
}

/// What resolving a component's bases found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// In the order the Dockerfile names them, each once.
    pub resolved: Vec<Resolved>,
    /// One message per base that could not be resolved (it is built as written).
    pub unresolved: Vec<String>,
}

/// A build's identity beyond its files: the inputs tag (the content tag
/// without bases, which the image's label keeps), the bases resolved and
/// the Dockerfile text with them pinned (`None` when none resolved).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub inputs_tag: String,
    pub resolved: Vec<Resolved>,
    pub pinned: Option<String>,
    /// A warning per base that could not be resolved.
    pub warnings: Vec<crate::outcome::Warning>,
}

impl Identity {
    /// The labels the build carries so a later run can say why it rebuilt.
    pub fn labels(&self) -> [(String, String); 2] {
        [
            (INPUTS_LABEL.to_string(), self.inputs_tag.clone()),
            (BASES_LABEL.to_string(), label_value(&self.resolved)),
        ]
    }

    /// Why the build runs although its files did not change: the first of
    /// `tags` the registry holds was built from the same inputs on other
    /// bases. Looking is best effort: any failure says nothing.
    pub async fn why_rebuilt(
        &self,
        client: &Client,
        repo: &str,
        tags: &[String],
    ) -> Option<String> {
        for tag in tags {
            match client.manifest_digest(repo, tag).await {
                Ok(Some(_)) => {}
                Ok(None) => continue,
                Err(_) => return None,
            }
            let labels = client.labels(repo, tag).await.ok()?;
            return moved_since(&labels, &self.inputs_tag, &self.resolved)
                .map(|moved| moved_message(&moved));
        }
        None
    }
}

/// The bases of the stages built for `target`, in file order. Stages,
/// `scratch`, references already pinned by digest and references still
/// holding a variable are left out (there is nothing to resolve).
pub fn uses(df: &Dockerfile, target: Option<&str>) -> Vec<BaseUse> {
    let Ok(last) = df.final_stage(target) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for stage in df.built_stages(last) {
        if let Base::Image(r) = &stage.base
            && r.digest.is_none()
        {
            let flags = stage
                .from
                .flags
                .iter()
                .map(|f| match &f.value {
                    Some(v) => format!("--{}={v}", f.name),
                    None => format!("--{}", f.name),
                })
                .collect();
            out.push(BaseUse {
                reference: r.raw.clone(),
                at: Place::From {
                    line: stage.from.line,
                    end_line: stage.from.end_line,
                    flags,
                    name: stage.name.clone(),
                },
            });
        }
        for ins in stage
            .instructions
            .iter()
            .filter(|i| i.keyword == Keyword::Copy)
        {
            let Some(from) = ins.flag("from") else {
                continue;
            };
            if let CopySource::Image(r) = df.copy_source(from, stage)
                && r.digest.is_none()
                && !from.contains('$')
            {
                out.push(BaseUse {
                    reference: r.raw.clone(),
                    at: Place::CopyFrom {
                        line: ins.line,
                        end_line: ins.end_line,
                        written: from.to_string(),
                    },
                });
            }
        }
    }
    out
}

/// Where a reference lives: the registry host its API answers on, the
/// repository and the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// As named (`docker.io` for a bare `python`).
    pub host: String,
    pub repository: String,
    pub tag: String,
}

impl Location {
    /// Docker's normalisation: a first part with a dot, a colon or
    /// `localhost` is a registry host; otherwise Docker Hub, where a bare
    /// name lives under `library/`.
    pub fn of(reference: &str) -> Location {
        let r = ImageRef::parse(reference);
        let (host, repository) = match r.name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            Some(_) => ("docker.io".to_string(), r.name.clone()),
            None => ("docker.io".to_string(), format!("library/{}", r.name)),
        };
        Location {
            host,
            repository,
            tag: r.tag.unwrap_or_else(|| "latest".into()),
        }
    }

    /// The host the registry API answers on (Docker Hub's is not its name).
    fn api_host(&self) -> &str {
        match self.host.as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            h => h,
        }
    }
}

/// Resolves each distinct reference concurrently, by HEAD (which Docker
/// Hub does not count as a pull): with the run's credentials on the run's
/// registry, anonymously (the registry's token challenge) elsewhere. A
/// multi-platform base resolves to its index's digest: the builder picks
/// its platform from exactly that index, and any platform's patch moves it.
pub async fn resolve(
    uses: &[BaseUse],
    run: &RegistryAuth,
    clock: crate::clock::Clock,
) -> Resolution {
    let mut distinct: Vec<&str> = Vec::new();
    for u in uses {
        if !distinct.contains(&u.reference.as_str()) {
            distinct.push(&u.reference);
        }
    }
    let looks = distinct.iter().map(|reference| async move {
        let at = Location::of(reference);
        let client = Client::new(&auth_for(&at, run), clock);
        let found = client.manifest_digest(&at.repository, &at.tag).await;
        (reference.to_string(), at, found)
    });
    let mut out = Resolution::default();
    for (reference, at, found) in futures::future::join_all(looks).await {
        match found {
            Ok(Some(digest)) => out.resolved.push(Resolved { reference, digest }),
            Ok(None) => out.unresolved.push(format!(
                "base image `{reference}` is not in {} (no tag `{}` in `{}`)",
                at.host, at.tag, at.repository
            )),
            Err(e) => out.unresolved.push(format!(
                "base image `{reference}` cannot be resolved: {}",
                crate::error::chain_message(&e)
            )),
        }
    }
    out
}

/// The run's credentials on its own registry; none elsewhere (plain HTTP
/// only on the loopback, as docker allows it there).
fn auth_for(at: &Location, run: &RegistryAuth) -> RegistryAuth {
    if at.host == run.host {
        return run.clone();
    }
    let host = at.api_host();
    let loopback = host.starts_with("localhost") || host.starts_with("127.");
    RegistryAuth {
        host: host.to_string(),
        username: String::new(),
        password: String::new().into(),
        insecure: loopback,
    }
}

/// `text` with every resolved base pinned by digest. Line numbers are kept
/// (a FROM spread over several lines becomes one line and blank ones), so
/// the builder's messages still point at the user's file.
pub fn pin(text: &str, uses: &[BaseUse], resolved: &[Resolved]) -> String {
    let digests: BTreeMap<&str, &str> = resolved
        .iter()
        .map(|r| (r.reference.as_str(), r.digest.as_str()))
        .collect();
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let count = lines.len();
    for u in uses {
        let Some(digest) = digests.get(u.reference.as_str()) else {
            continue;
        };
        let pinned = format!("{}@{digest}", u.reference);
        match &u.at {
            Place::From {
                line,
                end_line,
                flags,
                name,
            } => {
                let mut from = vec!["FROM".to_string()];
                from.extend(flags.iter().cloned());
                from.push(pinned);
                if let Some(n) = name {
                    from.push(format!("AS {n}"));
                }
                for l in &mut lines[*line..(*end_line).min(count)] {
                    let cr = l.ends_with('\r');
                    *l = if cr { "\r".into() } else { String::new() };
                }
                let cr = lines[line - 1].ends_with('\r');
                lines[line - 1] = from.join(" ") + if cr { "\r" } else { "" };
            }
            Place::CopyFrom {
                line,
                end_line,
                written,
            } => {
                let needle = format!("--from={written}");
                if let Some(l) = lines[line - 1..(*end_line).min(count)]
                    .iter_mut()
                    .find(|l| l.contains(&needle))
                {
                    *l = l.replacen(&needle, &format!("--from={pinned}"), 1);
                }
            }
        }
    }
    lines.join("\n")
}

/// `ref@digest` pairs as the bases label holds them.
pub fn label_value(resolved: &[Resolved]) -> String {
    resolved
        .iter()
        .map(|r| format!("{}@{}", r.reference, r.digest))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a build whose files did not change runs again: the bases that moved
/// since the image `previous` labels describe. `None` when the inputs other
/// than bases changed too, or when the previous image carries no labels.
pub fn moved_since(
    previous: &BTreeMap<String, String>,
    inputs: &str,
    resolved: &[Resolved],
) -> Option<Vec<Resolved>> {
    if previous.get(INPUTS_LABEL).map(String::as_str) != Some(inputs) {
        return None;
    }
    let before: BTreeMap<&str, &str> = previous
        .get(BASES_LABEL)?
        .split_whitespace()
        .filter_map(|pair| pair.rsplit_once('@'))
        .collect();
    let moved: Vec<Resolved> = resolved
        .iter()
        .filter(|r| before.get(r.reference.as_str()) != Some(&r.digest.as_str()))
        .cloned()
        .collect();
    (!moved.is_empty()).then_some(moved)
}

/// `base `python:3.12-slim` moved to sha256:…` for each, joined.
pub fn moved_message(moved: &[Resolved]) -> String {
    moved
        .iter()
        .map(|r| format!("base `{}` moved to {}", r.reference, r.digest))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
