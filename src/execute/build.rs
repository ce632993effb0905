//! The build phase: every component built concurrently (up to
//! `max-parallel`) with the plan's builder, its image read back; and the
//! default branch's images, for a pull request's comparison.

use std::time::Instant;

use anyhow::Context as _;
use futures::StreamExt;

use crate::error::chain_message;
use crate::image::registry::RegistryAuth;
use crate::image::{BuildOptions, BuildRequest};
use crate::outcome::{BuildReport, RunReport, RunResult};
use crate::plan::{self, BuilderKind, ComponentPlan, Plan};
use crate::process::Runner;
use crate::report::notify::{Notifier, PhaseEnd, PhaseLog};

use super::Pipeline;
use super::check::BuildInputs;
use super::connect::Aws;

/// What every build of the run shares.
pub(super) struct Builds<'a> {
    pub(super) aws: &'a Aws,
    pub(super) auth: &'a RegistryAuth,
    pub(super) opts: BuildOptions,
    pub(super) work: tempfile::TempDir,
}

impl Pipeline<'_> {
    /// Builds every component; a failed build fails its component, not the run.
    pub(super) async fn build(
        &self,
        aws: &Aws,
        auth: &RegistryAuth,
        plan: &Plan,
        checked: &[BuildInputs],
        report: &mut RunReport,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let s = self.settings;
        let builds = Builds {
            aws,
            auth,
            opts: BuildOptions {
                docker: s.docker_program.clone(),
                buildah: s.buildah_program.clone(),
                buildah_flags: s.buildah_flags.clone(),
                buildah_isolation: s.buildah_isolation.clone(),
                docker_config: s.docker_config.clone(),
                clock: self.clock,
                max_image_bytes: plan.limits.max_image_bytes,
            },
            work: tempfile::Builder::new()
                .prefix("fastdeploy-")
                .tempdir()
                .context("creating a work directory")?,
        };
        let parallel = plan.components.len() > 1 && plan.max_parallel > 1;
        let all_group = parallel.then(|| PhaseLog::open(self.actions, self.style, "build", None));
        let done = futures::stream::iter(plan.components.iter().zip(checked).enumerate())
            .map(|(i, (c, ch))| {
                let builds = &builds;
                async move { (i, self.build_logged(plan, c, ch, builds, parallel).await) }
            })
            .buffer_unordered(plan.max_parallel.max(1))
            .collect::<Vec<_>>()
            .await;
        if let Some(g) = all_group {
            let failed = done.iter().any(|(_, r)| r.is_err());
            g.close(if failed {
                PhaseEnd::Failed("see the components above".into())
            } else {
                PhaseEnd::Done
            });
        }
        for (i, mut result) in done {
            if let Ok(b) = &mut result {
                report.warnings.append(&mut b.warnings);
            }
            record(&mut report.components[i], result);
        }
        report.phases.build = Some(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// One build in its log group (alone), or its closing line among the
    /// others' (concurrent builds share one group; their lines carry the
    /// component's name).
    async fn build_logged(
        &self,
        plan: &Plan,
        c: &ComponentPlan,
        ch: &BuildInputs,
        builds: &Builds<'_>,
        parallel: bool,
    ) -> anyhow::Result<BuildReport> {
        let group =
            (!parallel).then(|| PhaseLog::open(self.actions, self.style, "build", Some(&c.name)));
        let t = Instant::now();
        let result = self.build_one(plan, c, ch, builds).await;
        let end = match &result {
            Ok(b) if b.skipped => PhaseEnd::Skipped(format!(
                "{} is already in the registry",
                b.content_tag.as_deref().unwrap_or("the content tag")
            )),
            Ok(_) => PhaseEnd::Done,
            Err(e) => PhaseEnd::Failed(chain_message(e)),
        };
        match group {
            Some(g) => {
                g.close(end);
            }
            None => self.actions.line(&crate::report::notify::closing_line(
                self.style,
                "build",
                Some(&c.name),
                &end,
                t.elapsed(),
            )),
        }
        result
    }

    /// Builds one component with the plan's builder and reads back its image.
    async fn build_one(
        &self,
        plan: &Plan,
        c: &ComponentPlan,
        ch: &BuildInputs,
        builds: &Builds<'_>,
    ) -> anyhow::Result<BuildReport> {
        let identity = self.identity(c, ch, builds.auth).await;
        let content_tag = crate::image::content_tag(
            &ch.context_hash,
            &c.build,
            &ch.dockerfile_bytes,
            &identity.resolved,
        );
        let mut build = c.build.clone();
        build.labels.extend(identity.labels());
        let work_dir = builds.work.path().join(&c.name);
        let req = BuildRequest {
            component: &c.name,
            plan: &build,
            registry: &builds.auth.host,
            content_tag: Some(content_tag.clone()),
            // Attestations make an image index, which Lambda refuses.
            provenance: plan.builder.provenance && !c.deploys_to_lambda(),
            buildx_builder: plan
                .builder
                .buildx
                .as_ref()
                .and_then(|b| b.builder.as_deref()),
            work_dir: &work_dir,
            bases: Some(&identity),
            force: plan.builder.rebuild,
        };
        let mut out = BuildReport {
            content_tag: Some(content_tag),
            image: Some(req.image()),
            tags: c.build.tags.clone(),
            bases: identity.resolved.clone(),
            warnings: identity.warnings.clone(),
            ..BuildReport::default()
        };
        match plan.builder.kind {
            BuilderKind::Codebuild => self.build_remote(plan, &req, builds, &mut out).await?,
            kind => {
                // Parallel builds share the log: each line says whose it is.
                let prefix = if plan.components.len() > 1 {
                    format!("[{}] ", c.name)
                } else {
                    String::new()
                };
                let log = self.actions.clone();
                let runner = Runner::with_sink(std::sync::Arc::new(move |_, line: &str| {
                    log.line(&format!("{prefix}{line}"))
                }));
                let built =
                    crate::image::build_component(kind, &req, builds.auth, &runner, &builds.opts)
                        .await?;
                out.digest = Some(built.digest.clone());
                out.seconds = Some(built.seconds);
                out.cached_steps = built.cached_steps;
                out.total_steps = built.total_steps;
                out.skipped = built.skipped;
                out.rebuilt_because = built.rebuilt_because;
                if let Some(size) = &built.size {
                    out.image_bytes = Some(size.bytes);
                    out.layers = Some(size.layers);
                }
            }
        }
        self.scan_gate(plan, c, builds, &out).await?;
        Ok(out)
    }

    /// What a component's bases resolve to now, logged: the identity its
    /// content tag and pinned Dockerfile come from. A base that cannot be
    /// resolved is a warning and is built as written.
    pub(super) async fn identity(
        &self,
        c: &ComponentPlan,
        ch: &BuildInputs,
        auth: &RegistryAuth,
    ) -> crate::image::bases::Identity {
        use crate::image::bases;
        let found = bases::resolve(&ch.bases, auth, self.clock).await;
        let log = self.actions.prefixed(&format!("[{}] ", c.name));
        let mut warnings = Vec::new();
        for r in &found.resolved {
            log.line(&format!("base {} is {}", r.reference, r.digest));
        }
        for message in &found.unresolved {
            let message = format!(
                "component `{}`: {message}; it is built as written and left out of the content tag, so a patched base will not trigger a rebuild (`rebuild: true` forces one)",
                c.name
            );
            self.actions
                .warning(&message, &crate::gha::Location::default());
            warnings.push(crate::outcome::Warning {
                component: Some(c.name.clone()),
                message,
                ..Default::default()
            });
        }
        let no_bases =
            crate::image::content_tag(&ch.context_hash, &c.build, &ch.dockerfile_bytes, &[]);
        let pinned = (!found.resolved.is_empty()).then(|| {
            let text = String::from_utf8_lossy(&ch.dockerfile_bytes);
            bases::pin(&text, &ch.bases, &found.resolved)
        });
        bases::Identity {
            inputs_tag: no_bases,
            resolved: found.resolved,
            pinned,
            warnings,
        }
    }

    /// The image scan's findings at or above `fail-on-severity` fail the build.
    async fn scan_gate(
        &self,
        plan: &Plan,
        c: &ComponentPlan,
        builds: &Builds<'_>,
        out: &BuildReport,
    ) -> anyhow::Result<()> {
        let (Some(severity), Some(digest)) = (&plan.registry.fail_on_severity, &out.digest) else {
            return Ok(());
        };
        if !c.build.push {
            return Ok(());
        }
        let ecr = &builds.aws.ecr;
        let findings = crate::image::ecr::check_scan(
            ecr,
            &c.build.repository,
            digest,
            severity,
            self.clock,
            &self.cancel,
            self.actions,
        )
        .await?;
        if !findings.is_empty() {
            anyhow::bail!(
                "the image scan found {} finding(s) at or above {severity}:\n{}",
                findings.len(),
                findings
                    .iter()
                    .map(|f| format!("  {f}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        Ok(())
    }

    /// The default branch's last build of each component, for the pull
    /// request comment's "change against" columns. Unknown is fine: the
    /// columns say so.
    pub(super) async fn baselines(
        &self,
        plan: &Plan,
        auth: &RegistryAuth,
        notifier: &mut Notifier<'_>,
    ) {
        let branch = plan
            .context
            .default_branch
            .clone()
            .unwrap_or_else(|| "main".into());
        let client = crate::image::registry::Client::new(auth, self.clock);
        for c in &plan.components {
            let tag = plan::sanitize_tag(&branch);
            let image_bytes = match client.manifest_digest(&c.build.repository, &tag).await {
                Ok(Some(digest)) => client
                    .image_size(&c.build.repository, &digest)
                    .await
                    .ok()
                    .map(|s| s.bytes),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!("no baseline for {}: {e:#}", c.name);
                    None
                }
            };
            if image_bytes.is_some() {
                let baseline = crate::report::summary::Baseline {
                    branch: branch.clone(),
                    image_bytes,
                    context_bytes: None,
                };
                notifier.set_baseline(&c.name, baseline);
            }
        }
    }
}

/// A build's result in the component's report. What was made is reported
/// even when the build failed: an image over the limit has a digest and a
/// size, a remote build has a link.
fn record(rep: &mut crate::outcome::ComponentReport, result: anyhow::Result<BuildReport>) {
    match result {
        Ok(b) => {
            rep.build = BuildReport {
                context_bytes: rep.build.context_bytes,
                context_files: rep.build.context_files,
                ..b
            };
            rep.result = RunResult::Built;
        }
        Err(e) => {
            if let Some(big) = e.downcast_ref::<crate::image::ImageTooLarge>() {
                rep.build.digest = Some(big.digest.clone());
                rep.build.image_bytes = Some(big.size.bytes);
                rep.build.layers = Some(big.size.layers);
            }
            if let Some(remote) = e.downcast_ref::<crate::image::codebuild::RemoteBuildFailed>() {
                rep.build.codebuild_build = Some(remote.build_id.clone());
                if rep.build.codebuild_billing.is_empty() {
                    rep.build.codebuild_billing.extend(remote.billing.clone());
                }
            }
            rep.result = RunResult::Failure;
            rep.failure = Some(chain_message(&e));
        }
    }
}
