//! `strategy: swap`: Elastic Beanstalk blue/green by CNAME swap, the
//! zero-downtime flow EB's guide describes. `beanstalk-environment` names
//! two environments of one application and `beanstalk-cname` the live
//! CNAME's prefix. fastdeploy reads which of the two holds that CNAME,
//! deploys the image to the other (the idle one) exactly as a single
//! environment is deployed (version, update, events, Ready on our label,
//! health), fetches `smoke-test-path` at the idle environment's own URL,
//! then sends `SwapEnvironmentCNAMEs` and waits until EB says the CNAME
//! points at the idle environment. The environment that served keeps
//! running its version: putting back what served (after a failed swap, an
//! alarm in the bake, or `rollback`) is a swap back.
//!
//! Until the swap is sent nothing that serves has changed: a failure on
//! the idle environment leaves the live CNAME where it was and says so.

use aws_sdk_elasticbeanstalk::operation::RequestId;
use aws_sdk_elasticbeanstalk::types::{EnvironmentDescription, EnvironmentStatus, EventSeverity};

use super::Environment;
use crate::aws::Explained;
use crate::deploy::{
    Context, Deploy, Found, Image, PutBack, Revision, Serves, Target, Verdict, http_smoke,
};
use crate::error::BadInput;
use crate::outcome::{DeployReport, RunResult, TargetRef};
use crate::plan::{BeanstalkPlan, ComponentPlan, SwapPlan, WatchPlan};
use crate::wait::{Poll, Stopped, Tempo, Waiter};

/// A pair of Elastic Beanstalk environments, one deploy swapping them.
pub struct Swap<'p> {
    plan: &'p BeanstalkPlan,
    pair: &'p SwapPlan,
    component: &'p ComponentPlan,
    /// The plan's watch without `smoke-test-path`: the smoke test runs
    /// here, at the idle environment's URL, before the swap.
    watch: WatchPlan,
    /// The idle environment's deploy, once the pair is read.
    idle: Option<Environment<'p>>,
    /// The environment that held the CNAME when the deploy began.
    live: Option<String>,
    /// SwapEnvironmentCNAMEs was sent: the live CNAME may have moved.
    swapped: bool,
}

/// The two environments, as EB describes them now.
struct Pair {
    /// The one holding the CNAME.
    live: EnvironmentDescription,
    idle: EnvironmentDescription,
}

fn name(e: &EnvironmentDescription) -> &str {
    e.environment_name().unwrap_or_default()
}

fn label(e: &EnvironmentDescription) -> Option<String> {
    e.version_label().map(str::to_string)
}

fn url(e: &EnvironmentDescription) -> Option<String> {
    e.cname().map(|c| format!("http://{c}"))
}

/// Whether `e`'s CNAME is `<prefix>.…`.
fn holds(e: &EnvironmentDescription, prefix: &str) -> bool {
    e.cname()
        .and_then(|c| c.split('.').next())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

impl<'p> Swap<'p> {
    pub fn new(plan: &'p BeanstalkPlan, pair: &'p SwapPlan, component: &'p ComponentPlan) -> Self {
        Swap {
            plan,
            pair,
            component,
            watch: WatchPlan {
                smoke: None,
                ..plan.watch.clone()
            },
            idle: None,
            live: None,
            swapped: false,
        }
    }

    fn one(&self, env: &str) -> Environment<'p> {
        Environment::one_of(self.plan, env, self.component)
    }

    /// Both environments; which holds the CNAME. Bad input when one is
    /// missing from the application, or not exactly one holds it.
    async fn read(&self, cx: &Context<'_>) -> anyhow::Result<Pair> {
        let (app, [a, b], cname) = (&self.plan.application, &self.pair.pair, &self.pair.cname);
        let out = cx
            .clients
            .beanstalk
            .describe_environments()
            .application_name(app)
            .environment_names(a)
            .environment_names(b)
            .include_deleted(false)
            .send()
            .await
            .explained("elasticbeanstalk:DescribeEnvironments", || {
                format!("Elastic Beanstalk environments {a} and {b}")
            })?;
        let find = |n: &str| {
            out.environments()
                .iter()
                .find(|e| e.environment_name() == Some(n) && e.status() != Some(&EnvironmentStatus::Terminated))
                .cloned()
                .ok_or_else(|| {
                    BadInput::other(format!(
                        "Elastic Beanstalk environment {n} is not in application {app}: `strategy: swap` needs both environments of `beanstalk-environment` in one application"
                    ))
                })
        };
        let (ea, eb) = (find(a)?, find(b)?);
        match (holds(&ea, cname), holds(&eb, cname)) {
            (true, false) => Ok(Pair { live: ea, idle: eb }),
            (false, true) => Ok(Pair { live: eb, idle: ea }),
            (held_a, _) => Err(BadInput::other(format!(
                "{} of {a} ({}) and {b} ({}) hold{} the CNAME `{cname}` (`beanstalk-cname`): name the prefix of the live one's CNAME",
                if held_a { "both" } else { "neither" },
                ea.cname().unwrap_or("no CNAME"),
                eb.cname().unwrap_or("no CNAME"),
                if held_a { "" } else { "s" },
            ))
            .into()),
        }
    }

    /// The smoke test at the idle environment's own URL, before the swap:
    /// `Err` the failure (the live CNAME never moved).
    async fn smoke(
        &self,
        d: &mut Deploy<'_>,
        idle: &EnvironmentDescription,
    ) -> anyhow::Result<Result<(), String>> {
        let Some(smoke) = &self.plan.watch.smoke else {
            return Ok(Ok(()));
        };
        // `environment-url` is the live site: the idle one has its own.
        let Some(url) = url(idle).map(|u| format!("{u}{}", smoke.path)) else {
            return Ok(Err(format!(
                "smoke test: environment {} has no CNAME to fetch `{}` at",
                name(idle),
                smoke.path
            )));
        };
        match http_smoke::fetch_until_good(&d.cx, &d.w, &url, smoke).await? {
            Ok(line) => {
                d.cx.actions.line(&line);
                Ok(Ok(()))
            }
            Err(why) => Ok(Err(why)),
        }
    }

    /// Sends SwapEnvironmentCNAMEs for the pair and waits until `to` holds
    /// the CNAME and both are Ready: `Err` when EB said the swap failed or
    /// it ended without moving the CNAME.
    async fn swap_to(
        &mut self,
        cx: &Context<'_>,
        w: &mut Waiter<'_>,
        to: &str,
        from: &str,
    ) -> anyhow::Result<Result<Pair, String>> {
        self.swapped = true;
        let out = cx
            .clients
            .beanstalk
            .swap_environment_cnames()
            .source_environment_name(to)
            .destination_environment_name(from)
            .send()
            .await
            .explained("elasticbeanstalk:SwapEnvironmentCNAMEs", || {
                format!("Elastic Beanstalk environments {to} and {from}")
            })?;
        let request = out.request_id().unwrap_or_default().to_string();
        cx.actions.line(&format!(
            "swapping the CNAMEs of {from} and {to}: `{}` moves to {to}",
            self.pair.cname
        ));
        let doing = format!("waiting for EB to swap the CNAMEs of {from} and {to}");
        let mut ready_looks = 0;
        w.until(&doing, async || {
            let pair = self.read(cx).await?;
            let ready = [&pair.live, &pair.idle]
                .iter()
                .all(|e| e.status() == Some(&EnvironmentStatus::Ready));
            if ready && name(&pair.live) == to {
                return Ok(Poll::Ready(Ok(pair)));
            }
            if let Some(error) = self.swap_error(cx, &request).await? {
                return Ok(Poll::Ready(Err(error)));
            }
            // EB takes the request before either environment shows it:
            // Ready on the old CNAME three looks running ended it.
            ready_looks = if ready { ready_looks + 1 } else { 0 };
            if ready_looks >= 3 {
                return Ok(Poll::Ready(Err(format!(
                    "EB ended the swap with `{}` still on {from}",
                    self.pair.cname
                ))));
            }
            Ok(Poll::Pending(Tempo::Steady))
        })
        .await
    }

    /// An ERROR event of the swap `request` on either environment (EB
    /// always answers with a RequestId; without one, none is looked for).
    async fn swap_error(&self, cx: &Context<'_>, request: &str) -> anyhow::Result<Option<String>> {
        if request.is_empty() {
            return Ok(None);
        }
        for env in &self.pair.pair {
            let out = cx
                .clients
                .beanstalk
                .describe_events()
                .application_name(&self.plan.application)
                .environment_name(env)
                .request_id(request)
                .severity(EventSeverity::Error)
                .send()
                .await
                .explained("elasticbeanstalk:DescribeEvents", || {
                    format!("Elastic Beanstalk environment {env}")
                })?;
            // Newest first: said oldest first, the cause before the end.
            let errors: Vec<String> = out.events().iter().rev().map(super::events::line).collect();
            if !errors.is_empty() {
                return Ok(Some(format!(
                    "EB did not swap the CNAMEs: {}",
                    errors.join(" ")
                )));
            }
        }
        Ok(None)
    }

    /// A failure before the swap: said with where the live CNAME is.
    fn never_moved(&self, why: String, idle: &str) -> Verdict {
        Verdict::Failed {
            reason: format!(
                "{why} (on the idle environment {idle}; the live CNAME `{}` never moved)",
                self.pair.cname
            ),
            put_back: false,
        }
    }

    /// After the swap: where the CNAME is, and what keeps running.
    fn swapped_lines(&self, cx: &Context<'_>, pair: &Pair) {
        let serves = label(&pair.live).unwrap_or_else(|| "EB's sample application".into());
        cx.actions.line(&format!(
            "swapped: `{}` points to {} (version {serves}); DNS clients follow within the record's TTL",
            self.pair.cname,
            name(&pair.live)
        ));
        cx.actions.line(&format!(
            "{} keeps running version {}: a rollback swaps back",
            name(&pair.idle),
            label(&pair.idle).unwrap_or_else(|| "-".into())
        ));
    }

    async fn deploy(&mut self, d: &mut Deploy<'_>, image: &Image) -> anyhow::Result<Verdict> {
        let cx = d.cx;
        let pair = self.read(&cx).await?;
        let (live, idle) = (name(&pair.live).to_string(), name(&pair.idle).to_string());
        cx.actions.line(&format!(
            "{live} holds `{}` (version {}); deploying to the idle environment {idle}",
            self.pair.cname,
            label(&pair.live).unwrap_or_else(|| "-".into())
        ));
        self.live = Some(live.clone());
        let mut env = self.one(&idle);
        let applied = env.apply(d, image).await;
        self.idle = Some(env);
        // The report is the live CNAME's: what served, and serves, there.
        d.report.previous_revision = label(&pair.live);
        d.report.serving_revision = label(&pair.live);
        d.report.url = url(&pair.live);
        match applied {
            Ok(Verdict::Succeeded | Verdict::Unchanged) => {}
            Ok(
                Verdict::Failed { reason, .. }
                | Verdict::Refused(reason)
                | Verdict::RolledBack(reason),
            ) => {
                return Ok(self.never_moved(reason, &idle));
            }
            Err(e) => match Stopped::find(&e) {
                Some(s) => {
                    let why = s.stop.explain(self.watch.wait_seconds, &s.doing);
                    return Ok(self.never_moved(why, &idle));
                }
                None => return Err(e),
            },
        }
        let pair = self.read(&cx).await?;
        if label(&pair.live).is_some() && label(&pair.live) == label(&pair.idle) {
            cx.actions.line(&format!(
                "{live} already serves version {}: nothing to swap",
                label(&pair.live).unwrap_or_default()
            ));
            return Ok(Verdict::Unchanged);
        }
        if let Err(why) = self.smoke(d, &pair.idle).await? {
            d.report.evidence.push(why.clone());
            return Ok(self.never_moved(why, &idle));
        }
        self.finish_swap(d, &idle, &live).await
    }

    /// Swaps the CNAME to `to` and says where it is: the verdict.
    async fn finish_swap(
        &mut self,
        d: &mut Deploy<'_>,
        to: &str,
        from: &str,
    ) -> anyhow::Result<Verdict> {
        let cx = d.cx;
        match self.swap_to(&cx, &mut d.w, to, from).await? {
            Ok(pair) => {
                self.swapped_lines(&cx, &pair);
                d.report.serving_revision = label(&pair.live);
                d.report.url = url(&pair.live);
                Ok(Verdict::Succeeded)
            }
            Err(why) => {
                d.report.evidence.push(why.clone());
                let moved = self
                    .read(&cx)
                    .await
                    .map(|p| name(&p.live) == to)
                    .unwrap_or(true);
                Ok(Verdict::Failed {
                    reason: why,
                    put_back: moved,
                })
            }
        }
    }
}

impl Target for Swap<'_> {
    fn reference(&self) -> TargetRef {
        TargetRef::Beanstalk {
            application: self.plan.application.clone(),
            environment: self.pair.pair.join(","),
        }
    }

    fn watch(&self) -> &WatchPlan {
        &self.watch
    }

    async fn preflight(&self, cx: &Context<'_>) -> anyhow::Result<Found> {
        for env in &self.pair.pair {
            self.one(env).preflight(cx).await?;
        }
        self.read(cx).await?;
        Ok(Found::default())
    }

    async fn apply(&mut self, d: &mut Deploy<'_>, image: &Image) -> anyhow::Result<Verdict> {
        self.deploy(d, image).await
    }

    /// What the idle environment runs: a rollback swaps back to it.
    async fn earlier(&self, cx: &Context<'_>, to: Option<&str>) -> anyhow::Result<Revision> {
        let pair = self.read(cx).await?;
        let (idle, runs) = (name(&pair.idle), label(&pair.idle));
        let Some(runs) = runs else {
            return Err(BadInput::other(format!(
                "nothing to roll back to: the idle environment {idle} runs EB's sample application"
            ))
            .into());
        };
        if let Some(to) = to.filter(|t| *t != runs) {
            return Err(BadInput::other(format!(
                "`to` is {to}, but the idle environment {idle} runs version {runs}: a swap rollback puts back what the idle environment runs; deploy {to} instead"
            ))
            .into());
        }
        Ok(Revision {
            id: runs,
            image: self.one(idle).serving_image(cx).await.ok(),
            found: format!(
                "the idle environment {idle} still runs it; a rollback swaps the CNAMEs back"
            ),
            warning: None,
        })
    }

    async fn restore(&mut self, d: &mut Deploy<'_>, rev: &Revision) -> anyhow::Result<Verdict> {
        let pair = self.read(&d.cx).await?;
        let (live, idle) = (name(&pair.live).to_string(), name(&pair.idle).to_string());
        d.report.previous_revision = label(&pair.live);
        d.report.serving_revision = label(&pair.live);
        d.report.revision = Some(rev.id.clone());
        if label(&pair.idle).as_deref() != Some(rev.id.as_str()) {
            return Ok(Verdict::Refused(format!(
                "the idle environment {idle} no longer runs version {}",
                rev.id
            )));
        }
        self.live = Some(live.clone());
        self.finish_swap(d, &idle, &live).await
    }

    async fn serving_image(&self, cx: &Context<'_>) -> anyhow::Result<Image> {
        let pair = self.read(cx).await?;
        self.one(name(&pair.live)).serving_image(cx).await
    }

    fn changed(&self) -> bool {
        self.swapped
    }

    /// A swap back, when the CNAME moved.
    async fn put_back(&mut self, d: &mut Deploy<'_>, act: bool) -> PutBack {
        let cx = d.cx;
        let (Ok(pair), Some(before)) = (self.read(&cx).await, self.live.clone()) else {
            return PutBack {
                settled: false,
                note: Some(format!("where `{}` points is unknown", self.pair.cname)),
            };
        };
        d.report.serving_revision = label(&pair.live);
        if name(&pair.live) == before || !act {
            return PutBack {
                settled: true,
                note: None,
            };
        }
        let now = name(&pair.live).to_string();
        match self.swap_to(&cx, &mut d.w, &before, &now).await {
            Ok(Ok(pair)) => {
                d.report.serving_revision = label(&pair.live);
                PutBack {
                    settled: true,
                    note: None,
                }
            }
            Ok(Err(why)) => PutBack {
                settled: false,
                note: Some(why),
            },
            Err(e) => PutBack {
                settled: false,
                note: Some(crate::error::chain_message(&e)),
            },
        }
    }

    async fn observe(&self, cx: &Context<'_>, report: &mut DeployReport) {
        if let Ok(pair) = self.read(cx).await {
            report.serving_revision = label(&pair.live);
        }
    }

    fn serves(&self, revision: Option<&str>, how: Serves) -> String {
        let (still, again) = match how {
            Serves::Now => ("", ""),
            Serves::Still => ("still ", ""),
            Serves::Again => ("", " again"),
        };
        let cname = &self.pair.cname;
        match revision {
            Some(l) => format!("the live CNAME `{cname}` {still}serves version {l}{again}"),
            None => format!("the live CNAME `{cname}` serves EB's sample application"),
        }
    }

    fn left_alone(&self) -> String {
        "EB goes on with the update or the swap".into()
    }

    async fn finish(&mut self, d: &mut Deploy<'_>, result: RunResult) {
        if let Some(idle) = &mut self.idle {
            idle.finish(d, result).await;
        }
    }
}
