//! The Markdown job summary and PR comment body rendered from a run report.
