//! AWS CodeBuild: remote builds from the same plan, with live logs, phases, cancellation and the pushed digest.
