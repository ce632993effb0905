//! Which builder runs the builds: the `builder` input, or what `auto`
//! finds on this machine; and for buildx, which builder it builds on.

use super::*;

pub fn choose_builder(
    settings: &Settings,
    probe: &BuilderProbe,
) -> Result<BuilderChoice, BadInput> {
    let (kind, reason) = match settings.builder {
        BuilderInput::Buildx => (BuilderKind::Buildx, settings.builder_source.clone()),
        BuilderInput::Buildah => (BuilderKind::Buildah, settings.builder_source.clone()),
        BuilderInput::Codebuild => (BuilderKind::Codebuild, settings.builder_source.clone()),
        BuilderInput::Auto => {
            if probe.docker_buildx {
                (
                    BuilderKind::Buildx,
                    "auto: a docker daemon with buildx answered".to_string(),
                )
            } else if probe.buildah {
                (
                    BuilderKind::Buildah,
                    "auto: no docker daemon answered; buildah is installed".to_string(),
                )
            } else if settings.codebuild_project.is_some() {
                (
                    BuilderKind::Codebuild,
                    "auto: no docker daemon and no buildah here; a CodeBuild project is configured"
                        .to_string(),
                )
            } else {
                return Err(BadInput::other(
                    "no builder is available: no docker daemon with buildx answered, buildah is not installed and no `codebuild-project` is set; \
                     install docker with buildx (https://docs.docker.com/build/), or buildah (apt-get install buildah), or set `codebuild-project`",
                ));
            }
        }
    };
    if kind == BuilderKind::Codebuild && settings.codebuild_project.is_none() {
        return Err(BadInput::Missing {
            name: "codebuild-project".into(),
            why: format!(
                "to build on CodeBuild ({reason}); name the project, or choose another builder"
            ),
        });
    }
    if kind == BuilderKind::Buildx
        && let Some(unavailable) = probe.docker.as_ref().and_then(|d| d.unavailable.as_ref())
    {
        return Err(BadInput::other(format!(
            "`builder: buildx` ({reason}) cannot build here: {unavailable}; start a docker daemon with the buildx plugin, point DOCKER_HOST at one, or choose `builder: buildah` or `codebuild`"
        )));
    }
    Ok(BuilderChoice {
        kind,
        reason,
        buildx_builder: settings.buildx_builder.clone(),
        buildkit_image: settings.buildkit_image.clone(),
        buildx: None,
        codebuild_project: settings.codebuild_project.clone(),
        codebuild_timeout_minutes: settings.codebuild_timeout_minutes,
        codebuild_compute_type: settings.codebuild_compute_type.clone(),
        codebuild_environment: None,
        buildx_platforms: None,
        provenance: settings.provenance,
        rebuild: settings.rebuild,
    })
}

/// The buildx builder: the `buildx-builder` input's; else the current one
/// when its driver does what the builds ask (export registry cache, build
/// several platforms), which costs nothing and pulls nothing; else a
/// `docker-container` builder fastdeploy creates once and reuses.
pub fn choose_buildx(
    settings: &Settings,
    probe: &BuilderProbe,
    components: &[ComponentPlan],
) -> Result<BuildxChoice, BadInput> {
    let exports_cache = components.iter().any(|c| {
        c.build
            .cache
            .as_ref()
            .is_some_and(|cache| cache.to_tag.is_some())
    });
    let platforms = components.iter().any(|c| c.build.platforms.len() > 1);
    let needs = match (exports_cache, platforms) {
        (true, true) => "registry cache export and several platforms",
        (true, false) => "registry cache export",
        (false, true) => "several platforms",
        (false, false) => "",
    };
    let docker = probe.docker.as_ref();
    if let Some(name) = &settings.buildx_builder {
        let builder = match docker.and_then(|d| d.named.clone()) {
            Some(Err(said)) => {
                return Err(BadInput::other(format!(
                    "input `buildx-builder` names `{name}`, but docker has no builder by that name ({said}); create it first (docker buildx create --name {name} ...) or remove the input to let fastdeploy choose"
                )));
            }
            Some(Ok(b)) => b,
            None => {
                return Ok(BuildxChoice {
                    builder: Some(name.clone()),
                    create: false,
                    reason: "the `buildx-builder` input".into(),
                });
            }
        };
        if !needs.is_empty() && !builder.exports_cache() {
            return Err(BadInput::other(format!(
                "input `buildx-builder` names {}, which cannot do {needs}; name a builder of the docker-container, remote or kubernetes driver, or remove the input to let fastdeploy choose",
                builder.describe()
            )));
        }
        return Ok(BuildxChoice {
            builder: Some(name.clone()),
            create: false,
            reason: format!("the `buildx-builder` input: {}", builder.describe()),
        });
    }
    let current = docker.and_then(|d| d.current.as_ref());
    match current {
        Some(b) if needs.is_empty() => Ok(BuildxChoice {
            builder: None,
            create: false,
            reason: format!(
                "the current builder {}: the builds need nothing more",
                b.describe()
            ),
        }),
        Some(b) if b.exports_cache() => Ok(BuildxChoice {
            builder: None,
            create: false,
            reason: format!("the current builder {} does {needs}", b.describe()),
        }),
        None if needs.is_empty() => Ok(BuildxChoice {
            builder: None,
            create: false,
            reason: "the current builder".into(),
        }),
        _ => {
            let image = settings.buildkit_image.as_deref();
            let why = match current {
                Some(b) => format!("the current builder {} cannot do {needs}", b.describe()),
                None => format!("the builds need {needs} and the current builder is unknown"),
            };
            let from = match image {
                Some(i) => format!("{i} (the `buildkit-image` input)"),
                None => format!(
                    "{DEFAULT_BUILDKIT_IMAGE} (set `buildkit-image` to a mirror where Docker Hub is out of reach)"
                ),
            };
            Ok(BuildxChoice {
                builder: Some(created_buildx_builder(image)),
                create: true,
                reason: format!(
                    "{why}: a docker-container builder from {from}, created once and reused"
                ),
            })
        }
    }
}

/// What the builds' buildx builder can build: the named or current builder
/// as inspected (a builder fastdeploy creates runs on the same daemon, so
/// the current one stands in for it, inexactly). `None` when unknown.
pub fn platforms_of(choice: &BuildxChoice, probe: &BuilderProbe) -> Option<BuilderPlatforms> {
    let docker = probe.docker.as_ref()?;
    let builder = match (&choice.builder, choice.create) {
        (Some(_), false) => docker.named.as_ref()?.as_ref().ok()?,
        _ => docker.current.as_ref()?,
    };
    (!builder.platforms.is_empty()).then(|| BuilderPlatforms {
        all: builder.platforms.clone(),
        native: builder.native.clone(),
        exact: !choice.create,
        builder: builder.name.clone(),
    })
}

/// `linux/arm64` against a listed `linux/arm64` or `linux/arm64/v8`.
fn lists(listed: &[String], platform: &str) -> bool {
    listed
        .iter()
        .any(|l| l == platform || l.strip_prefix(platform).is_some_and(|v| v.starts_with('/')))
}

/// Each platform a component builds on buildx: native on the builder, or
/// emulated (a notice of what that costs), or neither (bad input naming the
/// fix; only a warning when the builder is inferred). Returns the notices
/// and warnings to show, in that order.
pub fn check_buildx_platforms(
    facts: &BuilderPlatforms,
    component: &str,
    platforms: &[String],
) -> Result<(Vec<String>, Vec<String>), BadInput> {
    let (mut notices, mut warnings) = (Vec::new(), Vec::new());
    for p in platforms {
        if lists(&facts.native, p) {
            continue;
        }
        if lists(&facts.all, p) {
            notices.push(format!(
                "component `{component}`: {p} builds under QEMU emulation on buildx builder `{}` (native: {}); emulated builds run several times slower, and `builder: codebuild` builds each platform natively",
                facts.builder,
                facts.native.join(", ")
            ));
            continue;
        }
        let message = format!(
            "component `{component}` builds for {p}, which buildx builder `{}` cannot run (its platforms: {}); register QEMU emulation on the runner (docker/setup-qemu-action, or `docker run --privileged --rm tonistiigi/binfmt --install {}`), or build natively with `builder: codebuild`",
            facts.builder,
            facts.all.join(", "),
            p.split('/').nth(1).unwrap_or(p)
        );
        if facts.exact {
            return Err(BadInput::other(message));
        }
        warnings.push(message);
    }
    Ok((notices, warnings))
}
