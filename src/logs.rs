//! CloudWatch Logs: tailing a log stream with forward tokens, throttle-aware.
