//! Deploy targets, one folder each, behind one contract.
//!
//! Every target module (`ecs`, `lambda`, `beanstalk`) exposes the same few functions:
//!
//! - `preflight(client, plan)`: read-only, before anything is built; what
//!   the user can fix is [`crate::error::BadInput`] (exit 2);
//! - `deploy(client, plan, image, ...) -> DeployOutcome`: change the target
//!   to the pushed image by digest, watch it to a verdict within the plan's
//!   one deadline, and roll back on timeout or cancellation when asked. It
//!   never returns without saying what serves.
//!
//! The verdict types are shared ([`DeployOutcome`], and
//! [`crate::outcome::DeployReport`] inside it), so the summary, Slack and
//! GitHub need no per-target code beyond their rows. The executor matches on
//! [`crate::plan::TargetPlan`].

pub mod beanstalk;
pub mod ecs;
pub mod lambda;

use std::time::{Duration, Instant};

use crate::outcome::{DeployReport, RunResult};

/// How one component's deploy ended, whatever its target.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployOutcome {
    pub result: RunResult,
    pub report: DeployReport,
    /// One line saying why, when it did not succeed.
    pub failure: Option<String>,
}

/// How every target polls to its verdict: the plan's poll interval and
/// its one deadline, already scaled (tests run with a tiny scale).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Time between looks before jitter (clamped to 15 s).
    pub poll: Duration,
    /// Multiplier applied to the 15 s ceiling too (tests).
    pub scale: f64,
    pub deadline: Instant,
}

impl Pace {
    pub const MAX_POLL_SECONDS: f64 = 15.0;

    /// Next pause: the poll interval ±20 %, never above 15 s (scaled).
    pub fn next_pause(&self) -> Duration {
        let ceiling = self.ceiling().as_secs_f64();
        let jittered = self.base().as_secs_f64() * (0.8 + 0.4 * fastrand::f64());
        Duration::from_secs_f64(jittered.min(ceiling).max(0.0))
    }

    /// The poll interval, never above 15 s (scaled).
    pub fn base(&self) -> Duration {
        self.poll.min(self.ceiling())
    }

    /// 15 s, scaled.
    pub fn ceiling(&self) -> Duration {
        Duration::from_secs_f64((Self::MAX_POLL_SECONDS * self.scale).max(0.0))
    }
}

/// The budget a rollback gets to settle: short after cancellation (the
/// runner kills the job seconds after SIGTERM), longer after a timeout.
pub fn settle_deadline(cancelled: bool, scale: f64) -> Instant {
    let seconds = if cancelled { 6.0 } else { 300.0 };
    Instant::now() + std::time::Duration::from_secs_f64(seconds * scale)
}

/// A pace for the settle wait.
pub fn settle_pace(base: &Pace, cancelled: bool) -> Pace {
    Pace {
        deadline: settle_deadline(cancelled, base.scale),
        ..*base
    }
}

/// Why a wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    TimedOut,
    Cancelled,
}

impl Stop {
    /// The verdict line: "no verdict within N s (doing)" or "the workflow
    /// was cancelled (doing)".
    pub fn explain(self, wait_seconds: u64, doing: &str) -> String {
        match self {
            Stop::TimedOut => format!("no verdict within {wait_seconds} s ({doing})"),
            Stop::Cancelled => format!("the workflow was cancelled ({doing})"),
        }
    }
}

/// Sleeps one poll of `pace`, or stops at its deadline or on cancellation,
/// whichever comes first. The sleep is a wait span on `aws`.
pub async fn pause(pace: &Pace, cancel: &crate::cancel::Cancel) -> Result<(), Stop> {
    pause_until(pace, Some(cancel)).await
}

/// [`pause`] for a rollback's own waits: only the settle deadline in `pace`
/// ends them, not the cancellation that may have started the rollback.
pub async fn settle_pause(pace: &Pace) -> Result<(), Stop> {
    pause_until(pace, None).await
}

async fn pause_until(pace: &Pace, cancel: Option<&crate::cancel::Cancel>) -> Result<(), Stop> {
    if cancel.is_some_and(crate::cancel::Cancel::is_cancelled) {
        return Err(Stop::Cancelled);
    }
    let now = Instant::now();
    if now >= pace.deadline {
        return Err(Stop::TimedOut);
    }
    let pause = pace.next_pause().min(pace.deadline - now);
    let cancelled = async {
        match cancel {
            Some(c) => c.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = crate::timings::sleep("aws", pause) => Ok(()),
        _ = cancelled => Err(Stop::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_are_jittered_and_never_above_fifteen_seconds() {
        let pace = Pace {
            poll: Duration::from_secs(5),
            scale: 1.0,
            deadline: Instant::now(),
        };
        for _ in 0..200 {
            let p = pace.next_pause().as_secs_f64();
            assert!((4.0..=6.0).contains(&p), "{p}");
        }
        let slow = Pace {
            poll: Duration::from_secs(60),
            scale: 1.0,
            deadline: Instant::now(),
        };
        assert!(slow.next_pause().as_secs_f64() <= 15.0);
        let scaled = Pace {
            poll: Duration::from_millis(50),
            scale: 0.01,
            deadline: Instant::now(),
        };
        assert!(scaled.next_pause().as_secs_f64() <= 0.15);
    }
}
