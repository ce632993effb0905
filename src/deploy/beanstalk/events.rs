//! Elastic Beanstalk's events of one request, as the EB CLI follows them:
//! `DescribeEvents` filtered by the `RequestId` of our `UpdateEnvironment`
//! (an environment's events carry no version label, and another deploy's or
//! a health transition's must not decide ours), each event shown once, and
//! EB's own texts read for the verdict.

use std::collections::HashSet;

use aws_sdk_elasticbeanstalk::types::{EventDescription, EventSeverity};

/// What an event says about the update it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The update completed (our version deployed, or a redeploy done).
    Completed,
    /// The update failed or was reverted.
    Failed,
    Progress,
}

/// EB's texts for an update that did not take. Instance-level failures
/// come first (the environment-level "Failed to deploy application." follows
/// a step later); a reverted configuration ends Ready with the previous
/// version and no failure of the application itself.
const FAILURE_TEXTS: &[&str] = &[
    "Failed to deploy application.",
    "Update environment operation is complete, but with errors.",
    "The environment was reverted to the previous configuration setting.",
    "Failed to deploy configuration.",
    "Instance deployment failed",
    "Command failed on instance",
    "Unsuccessful command execution on instance id(s)",
    "are missing in your source bundle",
    "Failed to pull Docker image",
    "Failed to build Docker image",
    "aborted operation",
];

/// EB's text for an update that completed.
const SUCCESS_TEXT: &str = "Environment update completed successfully.";

/// EB's text for a configuration update (option settings) that completed.
const CONFIGURATION_DEPLOYED: &str = "Successfully deployed new configuration to environment.";

/// What `message` (of `severity`) means for the update.
pub fn meaning(message: &str, severity: Option<&str>) -> Meaning {
    if message.starts_with(SUCCESS_TEXT) || message.starts_with(CONFIGURATION_DEPLOYED) {
        return Meaning::Completed;
    }
    let error = matches!(severity, Some(s) if s.eq_ignore_ascii_case("ERROR") || s.eq_ignore_ascii_case("FATAL"));
    if error || FAILURE_TEXTS.iter().any(|t| message.contains(t)) {
        Meaning::Failed
    } else {
        Meaning::Progress
    }
}

/// The events already shown, so each shows once.
#[derive(Debug, Default)]
pub struct Seen(HashSet<(i64, String)>);

impl Seen {
    fn key(e: &EventDescription) -> (i64, String) {
        let at = e
            .event_date()
            .map(|d| d.to_millis().unwrap_or_default())
            .unwrap_or_default();
        (
            at,
            format!("{} {}", severity(e), e.message().unwrap_or_default()),
        )
    }

    /// Whether `e` was seen before; marks it seen.
    pub fn first_time(&mut self, e: &EventDescription) -> bool {
        self.0.insert(Self::key(e))
    }

    pub fn contains(&self, e: &EventDescription) -> bool {
        self.0.contains(&Self::key(e))
    }
}

pub fn severity(e: &EventDescription) -> &str {
    e.severity().map(EventSeverity::as_str).unwrap_or("INFO")
}

/// `INFO Environment update is starting.`: how an event is kept in the report.
pub fn line(e: &EventDescription) -> String {
    format!("{} {}", severity(e), e.message().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eb_texts_decide_the_update() {
        assert_eq!(
            meaning("Environment update completed successfully.", Some("INFO")),
            Meaning::Completed
        );
        assert_eq!(
            meaning("Environment update is starting.", Some("INFO")),
            Meaning::Progress
        );
        assert_eq!(
            meaning("Failed to deploy application.", Some("ERROR")),
            Meaning::Failed
        );
        assert_eq!(
            meaning(
                "The environment was reverted to the previous configuration setting.",
                Some("INFO")
            ),
            Meaning::Failed
        );
        assert_eq!(
            meaning(
                "Update environment operation is complete, but with errors. For more information, see troubleshooting documentation.",
                Some("WARN")
            ),
            Meaning::Failed
        );
        assert_eq!(
            meaning("Something we have never seen.", Some("ERROR")),
            Meaning::Failed,
            "EB's ERROR events fail the update"
        );
    }

    #[test]
    fn each_event_shows_once() {
        let e = EventDescription::builder()
            .message("Deploying new version to instance(s).")
            .event_date(aws_smithy_types::DateTime::from_millis(1_700_000_000_123))
            .build();
        let mut seen = Seen::default();
        assert!(seen.first_time(&e));
        assert!(!seen.first_time(&e));
        assert!(seen.contains(&e));
        let later = EventDescription::builder()
            .message("Deploying new version to instance(s).")
            .event_date(aws_smithy_types::DateTime::from_millis(1_700_000_000_124))
            .build();
        assert!(
            seen.first_time(&later),
            "the same text later is another event"
        );
    }
}
