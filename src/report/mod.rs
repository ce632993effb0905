//! Reporting: the Markdown job summary and PR comment ([`summary`]), Slack
//! ([`slack`]), the GitHub API ([`github`]), and the orchestration that keeps
//! every reporting failure a warning ([`notify`]).

pub mod github;
pub mod notify;
pub mod slack;
pub mod summary;
