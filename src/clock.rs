//! The time scale every wait is counted in: real time in production, a
//! faster one in tests and benches (the sandbox's emulators run on it too),
//! reaching the code once, through the deploy context.

use std::time::{Duration, Instant};

/// The time scale: every delay fastdeploy waits is `seconds × scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    scale: f64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::REAL
    }
}

impl Clock {
    /// Real time (production).
    pub const REAL: Clock = Clock { scale: 1.0 };

    /// Time `scale` times as fast as real time is counted (tests, benches).
    pub fn scaled(scale: f64) -> Clock {
        Clock {
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            },
        }
    }

    pub fn scale(self) -> f64 {
        self.scale
    }

    /// `seconds`, scaled; never negative.
    pub fn of(self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds * self.scale).max(0.0))
    }

    /// The instant `seconds` (scaled) from now.
    pub fn after(self, seconds: f64) -> Instant {
        Instant::now() + self.of(seconds)
    }

    /// A real duration in the clock's seconds (a scaled measurement back in
    /// the seconds a real deploy would have taken).
    pub fn unscale(self, d: Duration) -> f64 {
        d.as_secs_f64() / self.scale
    }
}
