//! AWS at the edge: the one SDK config (and the role it assumes), then the
//! preflight of everything AWS will be asked to do (the CodeBuild project,
//! each deploy target) and the registry (login, the buildx builder, the
//! repositories), all before anything is built or pushed.

use tracing::Instrument;

use crate::deploy::{Clients, Found};
use crate::error::BadInput;
use crate::image::registry::RegistryAuth;
use crate::plan::{BuilderKind, ComponentPlan, Plan};
use crate::process::Runner;
use crate::report::notify::{PhaseEnd, PhaseLog};
use crate::timings::wait;

use super::Pipeline;

/// The run's AWS configuration and the clients built from it.
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    pub ecr: aws_sdk_ecr::Client,
    /// The deploy targets' clients (their registry client comes with the login).
    pub clients: Clients,
}

impl Pipeline<'_> {
    /// The SDK config for the plan's region, with `role-to-assume`'s
    /// credentials checked now (a refused token is exit 2, before anything
    /// is built).
    pub(super) async fn connect(&self, plan: &Plan) -> anyhow::Result<Aws> {
        let s = self.settings;
        let region = plan.aws_region.as_deref();
        let (sdk, role) =
            crate::credentials::load(region, self.clock, s.assume_role.as_ref(), self.actions)
                .await;
        if sdk.region().is_none() {
            // Without it every AWS call fails with "Missing Region", after the
            // checks and as a failed deploy; it is the user's to set.
            return Err(BadInput::other(
                "no AWS region: set the `aws-region` input (or AWS_REGION or AWS_DEFAULT_REGION, or a region in the AWS profile in use)",
            )
            .into());
        }
        if role.is_none() {
            crate::credentials::check_chain(&sdk, s.context.in_actions, s.aws_profile.as_ref())
                .instrument(wait("aws"))
                .await?;
        }
        if let (Some(role), Some(assumed)) = (&role, &s.assume_role) {
            role.check().instrument(wait("aws")).await?;
            self.actions.line(&format!(
                "AWS credentials: role {} assumed with the job's web identity token (refreshed before the session ends)",
                assumed.role_arn
            ));
        }
        // Each client's requests are waits on AWS (timings).
        let ecr = crate::aws_client!(aws_sdk_ecr, &sdk);
        let clients = Clients::new(&sdk, None);
        Ok(Aws { sdk, ecr, clients })
    }

    /// The CodeBuild project and the deploy targets, validated before
    /// anything is created, built or pushed; what a target needs of the
    /// build (Lambda: one platform, its architecture) settled in the plan
    /// it returns.
    pub(super) async fn preflight(&self, aws: &Aws, plan: &Plan) -> anyhow::Result<Plan> {
        let mut resolved = plan.clone();
        let remote = plan
            .builder
            .codebuild_project
            .as_deref()
            .filter(|_| plan.builder.kind == BuilderKind::Codebuild);
        if plan.components.iter().all(|c| c.deploy.is_none()) && remote.is_none() {
            return Ok(resolved);
        }
        let phase = PhaseLog::open(self.actions, self.style, "preflight", None);
        if let Some(project) = remote {
            let codebuild = crate::aws_client!(aws_sdk_codebuild, &aws.sdk);
            let compute = plan.builder.codebuild_compute_type.as_deref();
            let facts = crate::image::codebuild::preflight(&codebuild, project, compute).await;
            let checked = facts.and_then(|f| native_builds(plan, &f).map(|()| f));
            match checked {
                Ok(f) => {
                    resolved.builder.codebuild_environment =
                        Some((f.environment_type, f.compute_type));
                }
                Err(e) => {
                    phase.close(PhaseEnd::Failed(format!("CodeBuild project `{project}`")));
                    return Err(e);
                }
            }
        }
        let cx = self.deploy_context(&aws.clients, plan);
        for c in resolved.components.iter_mut() {
            let checked = crate::deploy::preflight(&cx, c).await;
            if let Err(e) = checked.and_then(|found| self.build_for_target(c, &found)) {
                let target = c.deploy.as_ref().map(|d| d.describe()).unwrap_or_default();
                phase.close(PhaseEnd::Failed(target));
                return Err(e);
            }
        }
        phase.close(PhaseEnd::Done);
        Ok(resolved)
    }

    /// A target that takes one image for its platform (a Lambda function:
    /// its architecture) gets it built for that one. A `platforms` setting
    /// that says otherwise is the user's to fix, before anything is built.
    fn build_for_target(&self, c: &mut ComponentPlan, found: &Found) -> anyhow::Result<()> {
        if let Some(config) = &found.config {
            for d in c.deploy.iter_mut().chain(c.also.iter_mut()) {
                *d.config_mut() = config.clone();
            }
        }
        let Some(p) = &found.platform else {
            return self.build_for_runtime(c, found);
        };
        let wanted = vec![p.platform.clone()];
        if !c.build.platforms.is_empty() && c.build.platforms != wanted {
            return Err(BadInput::other(format!(
                "component `{}` sets `platforms` to {}, but {} and takes one image for {}; \
                 remove `platforms` (fastdeploy builds for the target's platform) or set it to {}",
                c.name,
                c.build.platforms.join(","),
                p.why,
                p.platform,
                p.platform
            ))
            .into());
        }
        if c.build.platforms.is_empty() {
            self.actions.line(&format!(
                "[{}] {}: building for {}",
                c.name, p.why, p.platform
            ));
        }
        c.build.platforms = wanted;
        Ok(())
    }

    /// The platforms each component builds on buildx, as the preflight left
    /// them: emulated ones noticed with their cost, ones the builder cannot
    /// run refused before anything is pushed.
    fn buildx_platforms(&self, plan: &Plan) -> anyhow::Result<()> {
        let Some(facts) = plan
            .builder
            .buildx_platforms
            .as_ref()
            .filter(|_| plan.builder.kind == BuilderKind::Buildx)
        else {
            return Ok(());
        };
        for c in &plan.components {
            let (notices, warnings) =
                crate::plan::check_buildx_platforms(facts, &c.name, &c.build.platforms)?;
            for n in notices {
                self.actions.notice(&n, &crate::gha::Location::default());
            }
            for w in warnings {
                self.actions.warning(&w, &crate::gha::Location::default());
            }
        }
        Ok(())
    }

    /// A target that runs one architecture and takes an index too (ECS on
    /// Graviton): built for it when `platforms` is not set; `platforms`
    /// without it would give the target an image it cannot run.
    fn build_for_runtime(&self, c: &mut ComponentPlan, found: &Found) -> anyhow::Result<()> {
        let Some(p) = &found.runs_on else {
            return Ok(());
        };
        if c.build.platforms.is_empty() {
            // Said even for amd64: an arm64 laptop builds arm64 otherwise.
            self.actions.line(&format!(
                "[{}] {}: building for {}",
                c.name, p.why, p.platform
            ));
            c.build.platforms = vec![p.platform.clone()];
            return Ok(());
        }
        if !c.build.platforms.contains(&p.platform) {
            return Err(BadInput::other(format!(
                "component `{}` builds for {}, but {} and cannot run it; add {} to `platforms` or remove `platforms`",
                c.name,
                c.build.platforms.join(","),
                p.why,
                p.platform
            ))
            .into());
        }
        Ok(())
    }

    /// ECR login, the buildx builder fastdeploy must create (before anything
    /// is pushed: an image that cannot be pulled is bad input), and the
    /// repositories a pushing run needs.
    pub(super) async fn registry(&self, aws: &Aws, plan: &Plan) -> anyhow::Result<RegistryAuth> {
        let s = self.settings;
        self.buildx_platforms(plan)?;
        let phase = PhaseLog::open(self.actions, self.style, "registry", None);
        let host = plan.registry.host.as_deref();
        let auth = match crate::image::ecr::login(&aws.ecr, host, s.registry_insecure, self.actions)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                phase.close(PhaseEnd::Failed("login".into()));
                return Err(e);
            }
        };
        if let Some(buildx) = &plan.builder.buildx {
            let log = self.actions.clone();
            let runner =
                Runner::with_sink(std::sync::Arc::new(move |_, line: &str| log.line(line)));
            let image = plan.builder.buildkit_image.as_deref();
            let config = s.docker_config.as_deref();
            let prepared = crate::image::docker::prepare_builder(
                buildx,
                image,
                &auth,
                &s.docker_program,
                config,
                &runner,
            )
            .await;
            if let Err(e) = prepared {
                phase.close(PhaseEnd::Failed("buildx builder".into()));
                return Err(e);
            }
        }
        if plan.target.pushes() {
            let create = plan.registry.create_repositories;
            for c in &plan.components {
                if let Err(e) =
                    crate::image::ecr::ensure_repository(&aws.ecr, &c.build, create, self.actions)
                        .await
                {
                    phase.close(PhaseEnd::Failed(format!(
                        "repository `{}`",
                        c.build.repository
                    )));
                    return Err(e);
                }
            }
        }
        phase.close(PhaseEnd::Done);
        Ok(auth)
    }
}

/// Each component built for several platforms builds each natively on
/// CodeBuild: a platform it has no builders for, or a compute type the
/// platform's environment cannot run, is bad input before any build.
fn native_builds(
    plan: &Plan,
    project: &crate::image::codebuild::ProjectFacts,
) -> anyhow::Result<()> {
    let compute = plan
        .builder
        .codebuild_compute_type
        .as_deref()
        .unwrap_or(&project.compute_type);
    for c in plan
        .components
        .iter()
        .filter(|c| c.build.platforms.len() > 1)
    {
        for p in &c.build.platforms {
            let bad = |why: String| {
                BadInput::other(format!(
                    "component `{}` builds for {} natively on CodeBuild, one build per platform: {why}",
                    c.name,
                    c.build.platforms.join(",")
                ))
            };
            let environment = crate::image::native::environment_for(p, &project.environment_type)
                .map_err(bad)?
                .map_or(project.environment_type.as_str(), |(t, _)| t);
            crate::image::codebuild::compute_fits(compute, environment)
                .map_err(|why| bad(format!("its {p} build on {environment} cannot use compute type `{compute}`, which {why}")))?;
        }
    }
    Ok(())
}
