//! Waiting on a system outside: the one way fastdeploy polls anything (a
//! deployment, a Lambda update, an Elastic Beanstalk environment, a one-off
//! task, a CodeBuild build, an image scan).
//!
//! - [`Clock`]: the time scale. 1 in production; the sandbox's tests run
//!   faster. It reaches the code once, in the context a stage is given.
//! - [`Pace`]: the poll interval (jittered ±20 %, never above 15 s) and one
//!   deadline, built in one place with one clamp.
//! - [`Waiter::until`]: looks, pauses and looks again until a look is done,
//!   the deadline passes or the workflow is cancelled. A look that fails
//!   with an error worth retrying (throttling, a 5xx, a timeout: what
//!   [`crate::aws::AwsError::is_retryable`] says) is said and tried again at
//!   the next poll; only [`MAX_FAILED_LOOKS`] in a row end the wait, as
//!   [`Stop::Unreachable`] naming the call, how many times it failed and
//!   what AWS answered last. Any other error ends the wait at once.
//!
//! A wait that ends early is an error of type [`Stopped`] (what stopped it,
//! and what was being waited for), so the code that waits reads as a
//! sequence of steps with `?`, and the caller that decides what a stop
//! means (a deploy's driver: roll back or not) finds it with
//! `downcast_ref`.

use std::time::{Duration, Instant};

use crate::cancel::Cancel;
use crate::clock::Clock;
use crate::error::chain_message;
use crate::gha::Actions;

/// Looks that fail in a row, with an error worth retrying, before a wait
/// gives up on them. Each look is one call after the SDK's own retries
/// (six attempts over about 20 s of back-off), so ten in a row are minutes
/// of an API that does not answer.
pub const MAX_FAILED_LOOKS: u32 = 10;

/// How a wait looks: its poll interval and its deadline.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    poll: Duration,
    ceiling: Duration,
    deadline: Instant,
}

/// How soon the next look is worth making, as the last look saw it. A wait
/// never looks more often than a fixed poll every interval started with it
/// would have by then; within that budget, a wait whose end cannot be near
/// looks less often, and spends the looks it saved when its end is close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tempo {
    /// Every interval.
    Steady,
    /// Every three intervals (at most every 15 s): the end cannot be near
    /// (ECS: our tasks do not all run yet).
    Slow,
    /// Every 0.4 interval, from the looks saved earlier: the end is near
    /// (ECS: only the steady-state step is left).
    Quick,
}

impl Pace {
    /// The longest pause between two looks, whatever the poll interval.
    pub const MAX_POLL_SECONDS: f64 = 15.0;

    /// A look every `poll_seconds` (at most 15 s) until `wait_seconds` from now.
    pub fn new(clock: Clock, poll_seconds: f64, wait_seconds: f64) -> Pace {
        let ceiling = clock.of(Self::MAX_POLL_SECONDS);
        Pace {
            poll: clock.of(poll_seconds).min(ceiling),
            ceiling,
            deadline: clock.after(wait_seconds),
        }
    }

    /// The same pace with another deadline.
    pub fn until(self, deadline: Instant) -> Pace {
        Pace { deadline, ..self }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The poll interval, never above 15 s (scaled).
    pub fn base(&self) -> Duration {
        self.poll
    }

    /// 15 s, scaled.
    pub fn ceiling(&self) -> Duration {
        self.ceiling
    }

    /// The poll interval ±20 %, never above 15 s (scaled).
    pub fn next_pause(&self) -> Duration {
        self.poll
            .mul_f64(0.8 + 0.4 * fastrand::f64())
            .min(self.ceiling)
    }

    /// The pause before the next look after `looks` looks in `elapsed`
    /// since the first, at `tempo`; `jitter` is in 0.8..=1.2. Never sooner
    /// than a fixed poll every [`Pace::base`] would make its next look, so a
    /// wait never makes more calls than that poll would have by then; never
    /// above 15 s (scaled).
    pub fn pause_after(
        &self,
        tempo: Tempo,
        elapsed: Duration,
        looks: u32,
        jitter: f64,
    ) -> Duration {
        let base = self.base();
        let nominal = match tempo {
            Tempo::Slow => base * 3,
            Tempo::Steady => base,
            Tempo::Quick => base.mul_f64(0.4),
        };
        let earliest = (base * looks).saturating_sub(elapsed);
        nominal
            .mul_f64(jitter.clamp(0.8, 1.2))
            .min(self.ceiling)
            .max(earliest)
    }
}

/// Why a wait ended before its look was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The deadline passed.
    TimedOut,
    /// The workflow was cancelled (SIGTERM/SIGINT).
    Cancelled,
    /// Looks failed [`MAX_FAILED_LOOKS`] times in a row with errors worth retrying.
    Unreachable {
        /// The call that failed (`lambda:GetFunctionConfiguration`).
        call: String,
        times: u32,
        /// What AWS answered the last time.
        last: String,
    },
    /// A CloudWatch alarm the deploy watches (`alarms`) went to ALARM.
    Alarm {
        alarm: String,
        /// CloudWatch's `StateReason`.
        reason: String,
    },
}

/// What the deploy's alarm watch says, once something must end the
/// deploy's waits: an [`Stop::Alarm`], or a [`Stop::Unreachable`] when the
/// alarms could not be read (see `deploy::alarms`).
pub type AlarmSignal = tokio::sync::watch::Receiver<Option<Stop>>;

impl Stop {
    /// The stop in words: "no verdict within 600 s (doing)", "the workflow
    /// was cancelled (doing)", "`call` failed 10 times in a row (doing), the
    /// last: ...".
    pub fn explain(&self, wait_seconds: u64, doing: &str) -> String {
        match self {
            Stop::TimedOut => format!("no verdict within {wait_seconds} s ({doing})"),
            Stop::Cancelled => format!("the workflow was cancelled ({doing})"),
            Stop::Unreachable {
                call,
                times: 1,
                last,
            } => {
                format!("`{call}` failed ({doing}); AWS answered: {last}")
            }
            Stop::Unreachable { call, times, last } => {
                format!(
                    "`{call}` failed {times} times in a row ({doing}); AWS answered last: {last}"
                )
            }
            Stop::Alarm { alarm, reason } => {
                format!("alarm `{alarm}` went to ALARM ({doing}): {reason}")
            }
        }
    }
}

/// A wait that ended early: the error a [`Waiter`] returns, found again by
/// whoever decides what the stop means.
#[derive(Debug, Clone, thiserror::Error)]
#[error("stopped while {doing}: {stop:?}")]
pub struct Stopped {
    pub stop: Stop,
    /// What was being waited for (`waiting for Lambda to apply the update`).
    pub doing: String,
}

impl Stopped {
    /// The stop in `e`'s chain, if `e` is one.
    pub fn find(e: &anyhow::Error) -> Option<&Stopped> {
        e.chain().find_map(|c| c.downcast_ref::<Stopped>())
    }
}

/// What a look found: done, or not yet (and how soon to look again).
#[derive(Debug, Clone, PartialEq)]
pub enum Poll<T> {
    Ready(T),
    Pending(Tempo),
}

/// Waits within one pace: until a look is done, the deadline, or (unless
/// settling) cancellation. Failed looks are said on `actions` (prefixed
/// with the component when it is one of several).
pub struct Waiter<'a> {
    pace: Pace,
    /// `None` while settling: a rollback's own waits are not cut short by
    /// the cancellation that started it, only by their deadline.
    cancel: Option<&'a Cancel>,
    actions: &'a Actions,
    /// The deploy's alarm watch, while its change is applied and baked.
    alarms: Option<AlarmSignal>,
}

impl<'a> Waiter<'a> {
    /// A waiter on `pace`, stopped by `cancel` too.
    pub fn new(pace: Pace, cancel: &'a Cancel, actions: &'a Actions) -> Waiter<'a> {
        Waiter {
            pace,
            cancel: Some(cancel),
            actions,
            alarms: None,
        }
    }

    /// A waiter for putting back what served: only `deadline` ends it.
    pub fn settling(&self, deadline: Instant) -> Waiter<'a> {
        Waiter {
            pace: self.pace.until(deadline),
            cancel: None,
            actions: self.actions,
            alarms: None,
        }
    }

    /// The same waiter, its waits also ended by `alarms` (or no longer,
    /// with `None`).
    pub fn watching(&mut self, alarms: Option<AlarmSignal>) {
        self.alarms = alarms;
    }

    pub fn pace(&self) -> &Pace {
        &self.pace
    }

    /// Moves the deadline `by` later: time spent on something with a budget
    /// of its own (a one-off task's) is not this wait's.
    pub fn postpone(&mut self, by: Duration) {
        self.pace.deadline += by;
    }

    /// A waiter with the same cancellation and lines on another pace (a
    /// one-off task's own deadline).
    pub fn with_pace(&self, pace: Pace) -> Waiter<'a> {
        Waiter {
            pace,
            cancel: self.cancel,
            actions: self.actions,
            alarms: self.alarms.clone(),
        }
    }

    fn say(&self, line: &str) {
        self.actions.line(line);
    }

    /// Whether the wait must end now (cancelled, or past its deadline).
    pub fn stop_now(&self) -> Option<Stop> {
        let alarm = self.alarms.as_ref().and_then(|a| a.borrow().clone());
        if self.cancel.is_some_and(Cancel::is_cancelled) {
            Some(Stop::Cancelled)
        } else if alarm.is_some() {
            alarm
        } else if Instant::now() >= self.pace.deadline {
            Some(Stop::TimedOut)
        } else {
            None
        }
    }

    /// Errs with [`Stopped`] when the wait must end now, without pausing:
    /// the last check before a step that changes something.
    pub fn check(&self, doing: &str) -> anyhow::Result<()> {
        match self.stop_now() {
            Some(stop) => Err(Stopped {
                stop,
                doing: doing.to_string(),
            }
            .into()),
            None => Ok(()),
        }
    }

    /// One pause of the pace, ended early by cancellation; errs with
    /// [`Stopped`] when the wait must end (before or during the pause).
    pub async fn pause(&self, doing: &str) -> anyhow::Result<()> {
        self.sleep(self.pace.next_pause(), doing).await
    }

    async fn sleep(&self, pause: Duration, doing: &str) -> anyhow::Result<()> {
        self.check(doing)?;
        let pause = pause.min(self.pace.deadline.saturating_duration_since(Instant::now()));
        let cancelled = async {
            match self.cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let stopped = |stop| Stopped {
            stop,
            doing: doing.to_string(),
        };
        tokio::select! {
            _ = crate::timings::sleep("aws", pause) => Ok(()),
            _ = cancelled => Err(stopped(Stop::Cancelled).into()),
            stop = signalled(self.alarms.clone()) => Err(stopped(stop).into()),
        }
    }

    /// Waits for `event` (another target's step), ended by the deadline
    /// or cancellation as any wait is; errs with [`Stopped`] when it must end.
    pub async fn within<T>(
        &self,
        doing: &str,
        event: impl Future<Output = T>,
    ) -> anyhow::Result<T> {
        self.check(doing)?;
        let left = self.pace.deadline.saturating_duration_since(Instant::now());
        let cancelled = async {
            match self.cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let stopped = |stop| Stopped {
            stop,
            doing: doing.to_string(),
        };
        tokio::select! {
            v = event => Ok(v),
            _ = crate::timings::sleep("aws", left) => Err(stopped(Stop::TimedOut).into()),
            _ = cancelled => Err(stopped(Stop::Cancelled).into()),
            stop = signalled(self.alarms.clone()) => Err(stopped(stop).into()),
        }
    }

    /// Looks until `look` is done. The first look comes at once; a look
    /// that fails with an error worth retrying is said and made again at the
    /// next poll, and [`MAX_FAILED_LOOKS`] in a row stop the wait; any
    /// other error ends it. Errs with [`Stopped`] (carrying `doing`) at the
    /// deadline, on cancellation or when the looks keep failing.
    pub async fn until<T>(
        &mut self,
        doing: &str,
        mut look: impl AsyncFnMut() -> anyhow::Result<Poll<T>>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        let (mut looks, mut failed) = (0u32, 0u32);
        loop {
            looks += 1;
            let tempo = match look().await {
                Ok(Poll::Ready(v)) => return Ok(v),
                Ok(Poll::Pending(tempo)) => {
                    failed = 0;
                    tempo
                }
                Err(e) => {
                    let Some(aws) = crate::aws::retryable(&e) else {
                        return Err(e);
                    };
                    failed += 1;
                    if failed >= MAX_FAILED_LOOKS {
                        let (call, last) = (aws.action.clone(), aws.answer());
                        let stop = Stop::Unreachable {
                            call,
                            times: failed,
                            last,
                        };
                        return Err(Stopped {
                            stop,
                            doing: doing.to_string(),
                        }
                        .into());
                    }
                    let last = chain_message(&e);
                    self.say(&format!(
                        "could not look ({last}); trying again ({failed} of {MAX_FAILED_LOOKS} in a row)"
                    ));
                    // A throttled API is not helped by the same pace: each
                    // failed look doubles the next pause, up to 15 s (scaled).
                    let backoff = self.pace.base().saturating_mul(1 << (failed - 1).min(6));
                    let jitter = 0.8 + 0.4 * fastrand::f64();
                    self.sleep(backoff.mul_f64(jitter).min(self.pace.ceiling()), doing)
                        .await?;
                    continue;
                }
            };
            let jitter = 0.8 + 0.4 * fastrand::f64();
            let pause = self
                .pace
                .pause_after(tempo, started.elapsed(), looks, jitter);
            self.sleep(pause, doing).await?;
        }
    }
}

/// The stop `alarms` signals, when it does; never without a watch.
async fn signalled(alarms: Option<AlarmSignal>) -> Stop {
    if let Some(mut rx) = alarms
        && let Ok(stop) = rx.wait_for(Option::is_some).await
        && let Some(stop) = stop.clone()
    {
        return stop;
    }
    std::future::pending().await
}

/// The budget a rollback gets to settle: short after cancellation (the
/// runner kills the job seconds after SIGTERM), longer after a timeout.
pub fn settle_deadline(clock: Clock, cancelled: bool) -> Instant {
    clock.after(if cancelled { 6.0 } else { 300.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `within`: the event when it comes first, else the deadline, else
    /// cancellation, each said as a stop naming what it waited for.
    #[tokio::test]
    async fn a_wait_for_an_event_ends_at_the_event_the_deadline_or_cancellation() {
        let actions = Actions::default();
        let (handle, cancel) = Cancel::new();
        let w = Waiter::new(
            Pace::new(Clock::scaled(0.001), 5.0, 60.0),
            &cancel,
            &actions,
        );
        assert_eq!(w.within("waiting", async { 7 }).await.unwrap(), 7);
        let never = std::future::pending::<()>();
        let e = w
            .within("waiting for before-deploy", never)
            .await
            .unwrap_err();
        let stopped = Stopped::find(&e).expect("a stop");
        assert_eq!(
            (stopped.stop.clone(), stopped.doing.as_str()),
            (Stop::TimedOut, "waiting for before-deploy")
        );
        let long = Waiter::new(Pace::new(Clock::REAL, 5.0, 600.0), &cancel, &actions);
        let waiting = long.within("waiting", std::future::pending::<()>());
        let cancelling = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            handle.cancel();
        };
        let (e, ()) = tokio::join!(waiting, cancelling);
        assert_eq!(
            Stopped::find(&e.unwrap_err()).map(|s| s.stop.clone()),
            Some(Stop::Cancelled)
        );
    }

    fn pace(base: f64) -> Pace {
        Pace::new(Clock::REAL, base, 0.0)
    }

    #[test]
    fn pauses_are_jittered_and_never_above_fifteen_seconds() {
        for _ in 0..200 {
            let p = pace(5.0).next_pause().as_secs_f64();
            assert!((4.0..=6.0).contains(&p), "{p}");
        }
        assert!(pace(60.0).next_pause().as_secs_f64() <= 15.0);
        let scaled = Pace::new(Clock::scaled(0.01), 0.05, 0.0);
        assert!(scaled.next_pause().as_secs_f64() <= 0.15);
        // A negative interval is no interval, not a panic.
        assert_eq!(
            Pace::new(Clock::REAL, -1.0, 0.0).next_pause(),
            Duration::ZERO
        );
    }

    #[test]
    fn the_pace_follows_the_tempo_within_the_fixed_polls_budget() {
        let (p, s) = (pace(5.0), Duration::from_secs_f64);
        // Budget to spare (the first look was 20 s ago): the tempo decides.
        assert_eq!(p.pause_after(Tempo::Slow, s(20.0), 2, 1.0), s(15.0));
        assert_eq!(p.pause_after(Tempo::Steady, s(20.0), 2, 1.0), s(5.0));
        assert_eq!(p.pause_after(Tempo::Quick, s(20.0), 2, 1.0), s(2.0));
        // No looks saved: the next one waits for the fixed poll's next look.
        assert_eq!(p.pause_after(Tempo::Quick, s(4.0), 2, 1.0), s(6.0));
        // Jitter stays within ±20 %, and no pause is above 15 s.
        assert_eq!(p.pause_after(Tempo::Steady, s(20.0), 2, 5.0), s(6.0));
        assert_eq!(
            pace(15.0).pause_after(Tempo::Slow, s(100.0), 2, 1.2),
            s(15.0)
        );
        assert_eq!(
            pace(60.0).pause_after(Tempo::Slow, s(100.0), 2, 1.0),
            s(15.0)
        );
    }

    /// Whatever the tempos, a wait never has more looks behind it than a
    /// fixed poll every `poll` started with it, and saved looks make the
    /// last step's looks come faster than that poll's.
    #[test]
    fn a_wait_never_looks_more_often_than_a_fixed_poll() {
        let p = pace(5.0);
        let tempos = [Tempo::Slow, Tempo::Steady, Tempo::Quick];
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut t = 0.0;
            for looks in 1..60u32 {
                let tempo = tempos[rng.usize(..tempos.len())];
                let jitter = 0.8 + 0.4 * rng.f64();
                t += p
                    .pause_after(tempo, Duration::from_secs_f64(t), looks, jitter)
                    .as_secs_f64();
                // The look about to be made is number looks + 1.
                let fixed = (t / 5.0 + 1e-9).floor() as u32 + 1;
                assert!(
                    looks < fixed,
                    "seed {seed}: look {} at {t:.2} s, a fixed poll had made {fixed}",
                    looks + 1
                );
            }
        }
        // Eleven looks in 150 s while slow (a fixed poll makes 31): the
        // quick looks then come every 2 s.
        let mut t = 0.0;
        for looks in 1..=10 {
            t += p
                .pause_after(Tempo::Slow, Duration::from_secs_f64(t), looks, 1.0)
                .as_secs_f64();
        }
        let quick = p.pause_after(Tempo::Quick, Duration::from_secs_f64(t), 11, 1.0);
        assert_eq!(quick, Duration::from_secs(2));
    }

    fn throttled(call: &str) -> anyhow::Error {
        crate::aws::AwsFailure {
            kind: crate::aws::FailureKind::Throttled,
            code: Some("ThrottlingException".into()),
            message: "Rate exceeded".into(),
            status: Some(400),
        }
        .explain(call, "a resource")
    }

    #[tokio::test]
    async fn throttled_looks_are_retried_and_only_a_run_of_them_stops_the_wait() {
        let (captured, actions) = Actions::capture();
        let cancel = Cancel::never();
        let fast = || Pace::new(Clock::scaled(0.0001), 5.0, 600.0);
        let actions = actions.prefixed("[x] ");
        let mut w = Waiter::new(fast(), &cancel, &actions);
        // Seven throttled looks, then done: the wait goes on through them.
        let mut n = 0;
        let got = w
            .until("waiting", async || {
                n += 1;
                if n <= 7 {
                    Err(throttled("lambda:GetFunctionConfiguration"))
                } else {
                    Ok(Poll::Ready(n))
                }
            })
            .await
            .unwrap();
        assert_eq!(got, 8);
        let text = captured.lines().join("\n");
        assert!(text.contains("[x] could not look"), "{text}");
        // A run of MAX_FAILED_LOOKS ends it, naming the call and the throttle.
        let mut w = Waiter::new(fast(), &cancel, &actions);
        let err = w
            .until(
                "waiting for the update",
                async || -> anyhow::Result<Poll<()>> {
                    Err(throttled("elasticbeanstalk:DescribeEnvironments"))
                },
            )
            .await
            .unwrap_err();
        let stopped = Stopped::find(&err).expect("a stop");
        assert_eq!(stopped.doing, "waiting for the update");
        let Stop::Unreachable { call, times, last } = &stopped.stop else {
            panic!("{stopped:?}")
        };
        assert_eq!(
            (call.as_str(), *times),
            ("elasticbeanstalk:DescribeEnvironments", MAX_FAILED_LOOKS)
        );
        assert!(
            last.contains("ThrottlingException") && last.contains("Rate exceeded"),
            "{last}"
        );
        // A failure not worth retrying ends the wait at once, as itself.
        let mut looks = 0;
        let err = w
            .until("waiting", async || -> anyhow::Result<Poll<()>> {
                looks += 1;
                anyhow::bail!("no such function")
            })
            .await
            .unwrap_err();
        assert!(Stopped::find(&err).is_none() && looks == 1, "{err:#}");
    }

    #[tokio::test]
    async fn a_wait_stops_at_its_deadline_and_on_cancellation_but_a_settling_one_only_at_its_deadline()
     {
        let actions = Actions::default();
        let (handle, cancel) = Cancel::new();
        let pace = Pace::new(Clock::scaled(0.001), 5.0, 0.5);
        let mut w = Waiter::new(pace, &cancel, &actions);
        let err = w
            .until("waiting", async || Ok(Poll::<()>::Pending(Tempo::Steady)))
            .await
            .unwrap_err();
        assert_eq!(Stopped::find(&err).map(|s| &s.stop), Some(&Stop::TimedOut));
        handle.cancel();
        let mut w = Waiter::new(
            pace.until(Instant::now() + Duration::from_secs(60)),
            &cancel,
            &actions,
        );
        let err = w
            .until("waiting", async || Ok(Poll::<()>::Pending(Tempo::Steady)))
            .await
            .unwrap_err();
        assert_eq!(Stopped::find(&err).map(|s| &s.stop), Some(&Stop::Cancelled));
        let mut settle = w.settling(Instant::now() + Duration::from_millis(30));
        let mut looks = 0;
        let got = settle
            .until("settling", async || {
                looks += 1;
                Ok(if looks < 3 {
                    Poll::Pending(Tempo::Steady)
                } else {
                    Poll::Ready(looks)
                })
            })
            .await
            .unwrap();
        assert_eq!(got, 3, "the cancellation does not end a settling wait");
    }
}
