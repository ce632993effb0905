//! Slack: Block Kit messages by webhook or bot token, with retries; never a gate.
