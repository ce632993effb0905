//! GitHub: deployments and statuses, the pull request comment, through octocrab; never a gate.
