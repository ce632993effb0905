//! Any target of a plan, as one type: the one place a [`TargetPlan`] is
//! matched to its implementation. A component with several targets holds
//! them in one list of these, and the single-target entry points
//! (`preflight`, `earlier`, `serving_image`, `deploy`) build one.

use super::{
    Change, Context, Deploy, Found, Image, PutBack, Revision, Serves, Target, Verdict, beanstalk,
    ecs, lambda, trigger,
};
use crate::outcome::{DeployReport, RunResult, TargetRef};
use crate::plan::{ComponentPlan, TargetPlan, WatchPlan};

/// One target of a component, whichever its kind.
pub enum Any<'p> {
    Ecs(ecs::Service<'p>),
    Lambda(lambda::Function<'p>),
    Beanstalk(beanstalk::Environment<'p>),
    Swap(beanstalk::Swap<'p>),
    Trigger(trigger::Trigger<'p>),
}

impl<'p> Any<'p> {
    pub fn new(plan: &'p TargetPlan, component: &'p ComponentPlan) -> Any<'p> {
        match plan {
            TargetPlan::Ecs(p) => Any::Ecs(ecs::Service::new(p)),
            TargetPlan::Lambda(p) => Any::Lambda(lambda::Function::new(p)),
            TargetPlan::Beanstalk(p) => match &p.swap {
                Some(pair) => Any::Swap(beanstalk::Swap::new(p, pair, component)),
                None => Any::Beanstalk(beanstalk::Environment::new(p, component)),
            },
            TargetPlan::Rule(p) => Any::Trigger(trigger::Trigger::rule(p)),
            TargetPlan::Schedule(p) => Any::Trigger(trigger::Trigger::schedule(p)),
        }
    }

    /// Rules and schedules move after the other targets succeed: they run
    /// the revision those rolled out.
    pub fn follows(&self) -> bool {
        matches!(self, Any::Trigger(_))
    }

    /// Whether this target runs the component's `before-deploy`, which
    /// every other target waits for.
    pub fn runs_before_deploy(&self) -> bool {
        self.before_deploy_seconds().is_some()
    }

    /// The budget of the `before-deploy` this target runs, if it runs it.
    pub fn before_deploy_seconds(&self) -> Option<u64> {
        match self {
            Any::Ecs(s) => s.before_deploy_seconds(),
            _ => None,
        }
    }
}

/// Calls `$call` on whichever target `$any` holds.
macro_rules! each {
    ($any:expr, $t:ident => $call:expr) => {
        match $any {
            Any::Ecs($t) => $call,
            Any::Lambda($t) => $call,
            Any::Beanstalk($t) => $call,
            Any::Swap($t) => $call,
            Any::Trigger($t) => $call,
        }
    };
}

impl Target for Any<'_> {
    fn reference(&self) -> TargetRef {
        each!(self, t => t.reference())
    }

    fn watch(&self) -> &WatchPlan {
        each!(self, t => t.watch())
    }

    async fn preflight(&self, cx: &Context<'_>) -> anyhow::Result<Found> {
        each!(self, t => t.preflight(cx).await)
    }

    async fn prepare(&mut self, cx: &Context<'_>, change: &Change) {
        each!(self, t => t.prepare(cx, change).await)
    }

    async fn apply(&mut self, d: &mut Deploy<'_>, image: &Image) -> anyhow::Result<Verdict> {
        each!(self, t => t.apply(d, image).await)
    }

    async fn earlier(&self, cx: &Context<'_>, to: Option<&str>) -> anyhow::Result<Revision> {
        each!(self, t => t.earlier(cx, to).await)
    }

    async fn restore(&mut self, d: &mut Deploy<'_>, rev: &Revision) -> anyhow::Result<Verdict> {
        each!(self, t => t.restore(d, rev).await)
    }

    async fn serving_image(&self, cx: &Context<'_>) -> anyhow::Result<Image> {
        each!(self, t => t.serving_image(cx).await)
    }

    fn changed(&self) -> bool {
        each!(self, t => t.changed())
    }

    async fn put_back(&mut self, d: &mut Deploy<'_>, act: bool) -> PutBack {
        each!(self, t => t.put_back(d, act).await)
    }

    async fn observe(&self, cx: &Context<'_>, report: &mut DeployReport) {
        each!(self, t => t.observe(cx, report).await)
    }

    fn serves(&self, revision: Option<&str>, how: Serves) -> String {
        each!(self, t => t.serves(revision, how))
    }

    fn left_alone(&self) -> String {
        each!(self, t => t.left_alone())
    }

    async fn finish(&mut self, d: &mut Deploy<'_>, result: RunResult) {
        each!(self, t => t.finish(d, result).await)
    }
}
