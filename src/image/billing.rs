//! What a CodeBuild build costs: the minutes CodeBuild bills and the
//! on-demand price of its compute type.
//!
//! CodeBuild bills a build's duration "from the time you submit your build
//! until your build is terminated, rounded up to the nearest minute" (the
//! CodeBuild pricing page), so the minutes are the build's start to end
//! (every phase from SUBMITTED to COMPLETED), rounded up. Prices change and
//! differ by region: the table below is small and dated, names its source,
//! and a compute type it does not hold is reported as minutes only.

use aws_sdk_codebuild::types::Build;

/// Linux on-demand prices (EC2 compute), USD per build minute, in the region
/// they were read for. Source: the CodeBuild prices the teams' deployment
/// guide quotes ("Monitor costs": $0.005 per build minute for
/// general1.small, $0.01 for general1.medium), as of 2026-12. Other compute
/// types and the ARM prices were not in a source available here and are
/// left out rather than guessed.
pub const PRICES: &[(&str, &str, f64)] = &[
    ("LINUX_CONTAINER", "BUILD_GENERAL1_SMALL", 0.005),
    ("LINUX_CONTAINER", "BUILD_GENERAL1_MEDIUM", 0.01),
];
/// The region the table's prices are for, and when they were read.
pub const PRICES_REGION: &str = "us-east-1";
pub const PRICES_AS_OF: &str = "2026-12";

/// One build's billed minutes and, when the table has its compute type, cost.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Billing {
    pub compute_type: String,
    pub environment_type: String,
    /// Start to end, in seconds, as the build reports them.
    pub seconds: f64,
    pub billed_minutes: u32,
    /// `billed_minutes` at the table's price; `None` when it has none.
    pub cost_usd: Option<f64>,
    /// The region whose price was used (the table's; a run elsewhere pays
    /// that region's price, which the report says).
    pub price_region: &'static str,
    /// The platform a native build built (one build per platform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

impl Billing {
    pub fn for_platform(self, platform: &str) -> Billing {
        Billing {
            platform: Some(platform.to_string()),
            ..self
        }
    }
}

/// Whole minutes, rounded up; a build that ran at all bills one.
pub fn billed_minutes(seconds: f64) -> u32 {
    ((seconds.max(0.0) / 60.0).ceil() as u32).max(1)
}

pub fn price_per_minute(environment_type: &str, compute_type: &str) -> Option<f64> {
    PRICES
        .iter()
        .find(|(e, c, _)| *e == environment_type && *c == compute_type)
        .map(|(_, _, p)| *p)
}

/// The billing of a finished (or failed) build, from BatchGetBuilds: `None`
/// while it has no end time.
pub fn of_build(b: &Build) -> Option<Billing> {
    let (start, end) = (b.start_time()?, b.end_time()?);
    let seconds = (end.as_secs_f64() - start.as_secs_f64()).max(0.0);
    let env = b.environment();
    let compute_type = env
        .map(|e| e.compute_type().as_str().to_string())
        .unwrap_or_default();
    let environment_type = env
        .map(|e| e.r#type().as_str().to_string())
        .unwrap_or_default();
    let billed = billed_minutes(seconds);
    let cost_usd =
        price_per_minute(&environment_type, &compute_type).map(|p| p * f64::from(billed));
    Some(Billing {
        compute_type,
        environment_type,
        seconds,
        billed_minutes: billed,
        cost_usd,
        price_region: PRICES_REGION,
        platform: None,
    })
}

/// `$0.015` (or `no price for BUILD_GENERAL1_LARGE in fastdeploy's table`).
pub fn cost_text(b: &Billing) -> String {
    match b.cost_usd {
        Some(c) => format!("${c:.3}"),
        None => format!("no price for {} in fastdeploy's table", b.compute_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codebuild::primitives::DateTime;
    use aws_sdk_codebuild::types::{ComputeType, EnvironmentType, ProjectEnvironment};

    fn build(seconds: i64, compute: ComputeType) -> Build {
        Build::builder()
            .start_time(DateTime::from_secs(1_000))
            .end_time(DateTime::from_secs(1_000 + seconds))
            .environment(
                ProjectEnvironment::builder()
                    .r#type(EnvironmentType::LinuxContainer)
                    .image("aws/codebuild/standard:7.0")
                    .compute_type(compute)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[test]
    fn minutes_are_rounded_up_and_a_short_build_bills_one() {
        assert_eq!(billed_minutes(0.4), 1);
        assert_eq!(billed_minutes(60.0), 1);
        assert_eq!(billed_minutes(60.5), 2);
        assert_eq!(billed_minutes(299.0), 5);
    }

    #[test]
    fn a_build_is_billed_start_to_end_at_its_compute_types_price() {
        let b = of_build(&build(130, ComputeType::BuildGeneral1Medium)).unwrap();
        assert_eq!((b.billed_minutes, b.seconds), (3, 130.0));
        assert_eq!(b.cost_usd, Some(0.03));
        assert_eq!(cost_text(&b), "$0.030");
        let large = of_build(&build(30, ComputeType::BuildGeneral1Large)).unwrap();
        assert_eq!(large.cost_usd, None, "not in the table: minutes only");
        assert!(cost_text(&large).contains("BUILD_GENERAL1_LARGE"));
        assert_eq!(of_build(&Build::builder().build()), None, "not ended");
    }
}
