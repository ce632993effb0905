//! Builds on CodeBuild: one build of the request, or, for several
//! platforms, one native build per platform started together and an image
//! index over what they pushed. Nothing is started when the registry holds
//! the content tag.

use crate::image::BuildRequest;
use crate::outcome::BuildReport;
use crate::plan::Plan;
use crate::process::Runner;

use super::Pipeline;
use super::build::Builds;

impl Pipeline<'_> {
    /// A CodeBuild build of the request, and its image read back from ECR;
    /// nothing is started when the registry holds the content tag.
    pub(super) async fn build_remote(
        &self,
        plan: &Plan,
        req: &BuildRequest<'_>,
        builds: &Builds<'_>,
        out: &mut BuildReport,
    ) -> anyhow::Result<()> {
        let client = crate::image::registry::Client::new(builds.auth, self.clock);
        let log = self.actions.prefixed(&format!("[{}] ", req.component));
        let runner = Runner::with_sink(std::sync::Arc::new(move |_, line: &str| log.line(line)));
        let digest = match crate::image::reuse(&client, req, &runner).await? {
            crate::image::Reuse::Existing(digest) => {
                out.skipped = true;
                digest
            }
            crate::image::Reuse::Build { because } => {
                out.rebuilt_because = because;
                self.start_remote(plan, req, builds, out).await?
            }
        };
        out.digest = Some(digest.clone());
        let details = crate::image::ecr::image_details(
            &builds.aws.ecr,
            &req.plan.repository,
            &digest,
            self.clock,
        );
        if let Ok(d) = details.await {
            out.image_bytes = d.bytes;
        }
        Ok(())
    }

    /// The project's builds as this run starts them (`environment`: a
    /// native build for another architecture than the project's).
    fn remote(
        &self,
        plan: &Plan,
        builds: &Builds<'_>,
        environment: Option<(&str, &str)>,
    ) -> crate::image::codebuild::Remote {
        let sdk = &builds.aws.sdk;
        crate::image::codebuild::Remote {
            codebuild: crate::aws_client!(aws_sdk_codebuild, sdk),
            logs: crate::aws_client!(aws_sdk_cloudwatchlogs, sdk),
            ecr: builds.aws.ecr.clone(),
            project: plan.builder.codebuild_project.clone().unwrap_or_default(),
            timeout_minutes: plan.builder.codebuild_timeout_minutes,
            compute_type: plan.builder.codebuild_compute_type.clone(),
            environment: environment.map(|(t, i)| (t.to_string(), i.to_string())),
            clock: self.clock,
        }
    }

    /// Runs the request in CodeBuild; the pushed digest. Several platforms
    /// build natively, one build each (see [`Self::start_native`]).
    async fn start_remote(
        &self,
        plan: &Plan,
        req: &BuildRequest<'_>,
        builds: &Builds<'_>,
        out: &mut BuildReport,
    ) -> anyhow::Result<String> {
        if req.plan.platforms.len() > 1 {
            return self.start_native(plan, req, builds, out).await;
        }
        let (built, build_id) = self
            .remote(plan, builds, None)
            .build(
                req,
                &plan.context.commit.sha,
                &plan.context.workspace,
                &self.cancel,
                self.actions,
            )
            .await?;
        out.codebuild_build = Some(build_id);
        out.codebuild_billing.extend(built.billing);
        out.seconds = Some(built.seconds);
        out.cached_steps = built.cached_steps;
        out.total_steps = built.total_steps;
        Ok(built.digest)
    }

    /// One CodeBuild build per platform, all started at once, each on its
    /// architecture and pushing `<content tag>-<arch>`; then the index over
    /// their images, under the plan's tags and the content tag. Any
    /// platform's failure fails the component, once every build has ended
    /// (none is left running).
    async fn start_native(
        &self,
        plan: &Plan,
        req: &BuildRequest<'_>,
        builds: &Builds<'_>,
        out: &mut BuildReport,
    ) -> anyhow::Result<String> {
        use crate::image::native;
        let project_environment = plan
            .builder
            .codebuild_environment
            .as_ref()
            .map_or("LINUX_CONTAINER", |(t, _)| t.as_str());
        let content = req.content_tag.clone().unwrap_or_default();
        let each = req.plan.platforms.iter().map(|platform| {
            let environment = native::environment_for(platform, project_environment);
            let plan_p = native::platform_plan(req.plan, platform);
            let component = format!("{}@{}", req.component, native::arch_suffix(platform));
            let work_dir = req.work_dir.join(native::arch_suffix(platform));
            let content = content.clone();
            async move {
                let environment = environment.map_err(crate::error::BadInput::other)?;
                let req_p = BuildRequest {
                    component: &component,
                    plan: &plan_p,
                    content_tag: Some(native::platform_tag(&content, platform)),
                    work_dir: &work_dir,
                    ..req.clone()
                };
                self.remote(plan, builds, environment)
                    .build(
                        &req_p,
                        &plan.context.commit.sha,
                        &plan.context.workspace,
                        &self.cancel,
                        self.actions,
                    )
                    .await
                    .map(|built| (platform.clone(), built))
            }
        });
        let ended = futures::future::join_all(each).await;
        let mut images = Vec::new();
        let mut first_error = None;
        for result in ended {
            match result {
                Ok((platform, (built, id))) => {
                    out.codebuild_build.get_or_insert(id);
                    out.codebuild_billing
                        .extend(built.billing.map(|b| b.for_platform(&platform)));
                    out.seconds = Some(out.seconds.unwrap_or(0.0).max(built.seconds));
                    images.push((platform, built.digest));
                }
                Err(e) => {
                    if let Some(f) = e.downcast_ref::<crate::image::codebuild::RemoteBuildFailed>()
                    {
                        out.codebuild_billing.extend(f.billing.clone());
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        self.write_index(req, builds, &images).await
    }

    /// Writes the index over the platform images and puts the plan's tags
    /// and the content tag on it; its digest.
    async fn write_index(
        &self,
        req: &BuildRequest<'_>,
        builds: &Builds<'_>,
        images: &[(String, String)],
    ) -> anyhow::Result<String> {
        let client = crate::image::registry::Client::new(builds.auth, self.clock);
        let repo = req.plan.repository.as_str();
        let mut manifests = Vec::new();
        for (platform, digest) in images {
            anyhow::ensure!(
                !digest.is_empty(),
                "the CodeBuild build for {platform} pushed no image to {repo}"
            );
            manifests.push((platform.clone(), client.get_manifest(repo, digest).await?));
        }
        let (bytes, media_type) = crate::image::native::index(&manifests);
        let tags: Vec<String> = req
            .plan
            .tags
            .iter()
            .chain(req.content_tag.iter())
            .cloned()
            .collect();
        let digest = client.put(repo, &bytes, media_type, &tags).await?;
        let listed: Vec<String> = images.iter().map(|(p, d)| format!("{p} {d}")).collect();
        self.actions.line(&format!(
            "[{}] {}@{digest}: an index over {}",
            req.component,
            req.image(),
            listed.join(", ")
        ));
        Ok(digest)
    }
}
