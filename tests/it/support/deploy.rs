//! Driving a deploy target straight through the library's driver, as the
//! executor does: one context (clients from the sandbox's SDK config, a
//! cancellation, the Actions runtime, a fast clock) and the target's plan.
//! The benches include it too, each using what it needs.

#![allow(dead_code)]

use fastdeploy::cancel::Cancel;
use fastdeploy::clock::Clock;
use fastdeploy::deploy::{self, Clients, Context, DeployOutcome, Image, beanstalk, ecs, lambda};
use fastdeploy::gha::Actions;
use fastdeploy::image::registry;
use fastdeploy::plan::{BeanstalkPlan, ComponentPlan, EcsPlan, LambdaPlan, TargetPlan};

/// Component `name`, built from `.` into `repository`, deploying to
/// `targets` (the first, then the others as its `targets:`).
pub fn component(name: &str, repository: &str, targets: Vec<TargetPlan>) -> ComponentPlan {
    let mut targets = targets.into_iter();
    ComponentPlan {
        name: name.into(),
        build: fastdeploy::plan::BuildPlan {
            context: ".".into(),
            dockerfile: "Dockerfile".into(),
            target: None,
            build_args: Default::default(),
            platforms: vec![],
            repository: repository.into(),
            tags: vec![],
            labels: Default::default(),
            cache: None,
            push: true,
            secrets: vec![],
        },
        deploy: targets.next(),
        also: targets.collect(),
        no_deploy_reason: None,
        promote_from: None,
        order: vec![],
    }
}

/// ECS service `name` in a new cluster `c`, on its own family `name`
/// (container `app`, one task, circuit breaker on), whose revisions after
/// the first fail (the sandbox's `fail_after`): the target of a component
/// that fails while its other targets succeed. Its plan, followed per `watch`.
pub async fn failing_service(
    moto: &super::sandbox::Moto,
    sdk: &aws_config::SdkConfig,
    name: &str,
    watch: fastdeploy::plan::WatchPlan,
) -> EcsPlan {
    service(moto, sdk, name, watch, Some(1)).await
}

/// ECS service `name` in a new cluster `c`, on its own family `name`
/// (container `app`, one task of `name:1`, circuit breaker on); with
/// `fail_after`, its revisions after that one fail (the sandbox's
/// `fail_after`). Its plan, followed per `watch`.
pub async fn service(
    moto: &super::sandbox::Moto,
    sdk: &aws_config::SdkConfig,
    name: &str,
    watch: fastdeploy::plan::WatchPlan,
    fail_after: Option<u32>,
) -> EcsPlan {
    use aws_sdk_ecs::types::{
        ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration,
    };
    let ecs = aws_sdk_ecs::Client::new(sdk);
    ecs.create_cluster().cluster_name("c").send().await.unwrap();
    let app = ContainerDefinition::builder()
        .name("app")
        .image("old:1")
        .memory(128)
        .build();
    ecs.register_task_definition()
        .family(name)
        .container_definitions(app)
        .send()
        .await
        .unwrap();
    let breaker = DeploymentCircuitBreaker::builder()
        .enable(true)
        .rollback(true)
        .build();
    let config = DeploymentConfiguration::builder()
        .deployment_circuit_breaker(breaker)
        .build();
    ecs.create_service()
        .cluster("c")
        .service_name(name)
        .task_definition(format!("{name}:1"))
        .desired_count(1)
        .deployment_configuration(config)
        .send()
        .await
        .unwrap();
    let fail = match fail_after {
        Some(n) => serde_json::json!({"step_seconds": 0.05, "fail_after": {name: n}}),
        None => serde_json::json!({"step_seconds": 0.05}),
    };
    tokio::task::block_in_place(|| moto.control("ecs/config", fail));
    EcsPlan {
        cluster: "c".into(),
        service: name.into(),
        containers: vec!["app".into()],
        task_definition_file: None,
        strategy: fastdeploy::settings::Strategy::Service,
        wait_until: fastdeploy::settings::WaitUntil::Completed,
        keep_revisions: None,
        before_deploy: None,
        config: Default::default(),
        watch,
    }
}

/// The commit a test deploy names (Elastic Beanstalk version labels).
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Everything a deploy context borrows.
pub struct Deployer {
    pub clients: Clients,
    pub cancel: Cancel,
    pub actions: Actions,
    pub clock: Clock,
    pub commit: String,
    pub run_key: String,
    pub ignore_checks: Vec<String>,
}

impl Deployer {
    /// Clients from `sdk`, never cancelled, actions printed, time `scale`
    /// times as fast.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        registry: Option<registry::Client>,
        scale: f64,
    ) -> Deployer {
        Deployer {
            clients: Clients::new(sdk, registry),
            cancel: Cancel::never(),
            actions: Actions::default(),
            clock: Clock::scaled(scale),
            commit: COMMIT.into(),
            run_key: "acme/shop/1001/1".into(),
            ignore_checks: Vec::new(),
        }
    }

    pub fn with_actions(mut self, actions: Actions) -> Deployer {
        self.actions = actions;
        self
    }

    pub fn with_cancel(mut self, cancel: Cancel) -> Deployer {
        self.cancel = cancel;
        self
    }

    pub fn cx(&self) -> Context<'_> {
        Context {
            clients: &self.clients,
            cancel: &self.cancel,
            actions: &self.actions,
            clock: self.clock,
            commit: &self.commit,
            run_key: &self.run_key,
            region: Some(super::sandbox::REGION),
            ignore_checks: &self.ignore_checks,
        }
    }

    /// Drives `t` as the executor drives a component's target, its lines
    /// prefixed with the target's name (a test has no component).
    async fn drive<T: deploy::Target>(&self, t: &mut T, image: &Image) -> DeployOutcome {
        self.drive_change(t, &deploy::Change::Image(image.clone()))
            .await
    }

    async fn drive_change<T: deploy::Target>(
        &self,
        t: &mut T,
        change: &deploy::Change,
    ) -> DeployOutcome {
        let actions = self
            .actions
            .prefixed(&format!("[{}] ", t.reference().short()));
        let cx = Context {
            actions: &actions,
            ..self.cx()
        };
        deploy::drive(&cx, t, change).await
    }

    /// `rollback` through the driver: the target's earlier revision (or
    /// `to`), found read-only, then put back.
    pub async fn roll_back<T: deploy::Target>(
        &self,
        t: &mut T,
        to: Option<&str>,
    ) -> anyhow::Result<DeployOutcome> {
        let rev = t.earlier(&self.cx(), to).await?;
        Ok(self.drive_change(t, &deploy::Change::Revision(rev)).await)
    }

    pub async fn lambda(&self, plan: &LambdaPlan, image: &Image) -> DeployOutcome {
        self.drive(&mut lambda::Function::new(plan), image).await
    }

    pub async fn ecs(&self, plan: &EcsPlan, image: &Image) -> DeployOutcome {
        self.drive(&mut ecs::Service::new(plan), image).await
    }

    pub async fn beanstalk(
        &self,
        plan: &BeanstalkPlan,
        component: &ComponentPlan,
        image: &Image,
    ) -> DeployOutcome {
        self.drive(&mut beanstalk::Environment::new(plan, component), image)
            .await
    }

    /// `strategy: swap`: the idle one of `plan`'s pair, then the CNAMEs.
    pub async fn swap(
        &self,
        plan: &BeanstalkPlan,
        component: &ComponentPlan,
        image: &Image,
    ) -> DeployOutcome {
        let pair = plan.swap.as_ref().expect("a plan with strategy: swap");
        self.drive(&mut beanstalk::Swap::new(plan, pair, component), image)
            .await
    }
}

/// An image in `registry` by digest (`sha256:...`).
pub fn image(registry: &str, repository: &str, digest: &str) -> Image {
    Image::new(registry, repository, digest, None)
}

impl Deployer {
    /// The Lambda target's preflight, as the executor runs it before building.
    pub async fn preflight_lambda(&self, plan: &LambdaPlan) -> anyhow::Result<deploy::Found> {
        use fastdeploy::deploy::Target;
        lambda::Function::new(plan).preflight(&self.cx()).await
    }
}

/// `registry/repository@sha256:...` as an [`Image`].
pub fn image_of(uri: &str) -> Image {
    let (name, digest) = uri.split_once('@').expect("an image by digest");
    let (registry, repository) = name
        .split_once('/')
        .expect("a registry host and a repository");
    Image::new(registry, repository, digest, None)
}

/// A deployer whose clients come from no endpoint, for a client of one
/// service swapped in by the test (aws-smithy-mocks).
pub fn offline(scale: f64) -> Deployer {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(super::sandbox::REGION))
        .build();
    Deployer::new(&sdk, None, scale)
}
