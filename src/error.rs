//! Error kinds that decide the exit code, and the exit codes themselves.
//!
//! Low-level failures are `anyhow` errors with context added at each seam;
//! anything the user can fix by changing an input, the config or an event is
//! a [`BadInput`] somewhere in the chain, which maps to exit code 2.

use std::path::PathBuf;

/// Exit codes, documented in README.md and action.yml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Built, pushed and (when asked) deployed; or the plan was printed.
    Success = 0,
    /// The build or deploy failed, or ECS rolled it back.
    Failed = 1,
    /// Bad input or configuration: nothing was changed.
    BadInput = 2,
    /// `plan --diff --exit-code`: a deploy would change something, or a
    /// target drifted since fastdeploy's last deploy.
    Changes = 3,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// Input the user can fix. Every message names the input, file or resource
/// and what would be accepted.
#[derive(Debug, thiserror::Error)]
pub enum BadInput {
    #[error("input `{name}` is {value:?}, but it accepts {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: String,
    },

    #[error("unknown input `{name}`; the inputs are listed in action.yml and `fastdeploy --help`")]
    UnknownInput { name: String },

    #[error("input `{name}` is required {why}")]
    Missing { name: String, why: String },

    #[error("config file {path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("event file {path} (GITHUB_EVENT_PATH): {message}")]
    Event { path: PathBuf, message: String },

    #[error("unknown component `{name}`; the config defines: {known}")]
    UnknownComponent { name: String, known: String },

    #[error("unknown environment `{name}`; {known}")]
    UnknownEnvironment { name: String, known: String },

    /// Any other problem with what the user gave us (a Dockerfile that does
    /// not exist, a context outside the workspace, ...).
    #[error("{0}")]
    Other(String),
}

impl BadInput {
    pub fn invalid(name: &str, value: &str, expected: &str) -> Self {
        BadInput::Invalid {
            name: name.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }
    pub fn other(message: impl Into<String>) -> Self {
        BadInput::Other(message.into())
    }
}

/// Exit code for an error: 2 when the cause is something the user gave us.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    if err.chain().any(|e| e.is::<BadInput>()) {
        Exit::BadInput
    } else {
        Exit::Failed
    }
}

/// A `std::error::Error` and its sources, outermost first: `a: b: c` (for
/// errors of HTTP clients, whose useful detail is often a source or two down).
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Formats an error chain once, outermost first: `a: b: c`.
pub fn chain_message(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        // anyhow's context often repeats the source's text; print each once.
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn bad_input_anywhere_in_the_chain_exits_2() {
        let err = Err::<(), _>(BadInput::other("no such file"))
            .context("reading the config")
            .unwrap_err();
        assert_eq!(exit_for(&err), Exit::BadInput);
        assert_eq!(exit_for(&anyhow::anyhow!("ecs said no")), Exit::Failed);
        assert_eq!(chain_message(&err), "reading the config: no such file");
    }
}
