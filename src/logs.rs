//! CloudWatch Logs: tailing a log stream with forward tokens, throttle-aware.
//!
//! A CodeBuild build writes its log to a stream that may not exist yet when
//! the build starts; [`LogTail::poll`] treats that as "nothing yet". Each
//! poll reads every page from where the last one stopped (GetLogEvents with
//! `nextForwardToken`; the same token coming back means "caught up").

use std::collections::VecDeque;

use crate::aws::{FailureKind, classify};

/// Lines kept for error messages (a failed build's last lines).
pub const TAIL_LINES: usize = 30;
/// Pages read per poll at most, so a chatty build cannot starve the status poll.
const MAX_PAGES: usize = 20;

/// What one poll produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Polled {
    pub lines: Vec<String>,
    /// CloudWatch throttled us: the caller should back off before the next poll.
    pub throttled: bool,
}

/// Follows one log stream.
#[derive(Debug)]
pub struct LogTail {
    pub group: String,
    pub stream: String,
    token: Option<String>,
    last: VecDeque<String>,
}

impl LogTail {
    pub fn new(group: impl Into<String>, stream: impl Into<String>) -> Self {
        LogTail {
            group: group.into(),
            stream: stream.into(),
            token: None,
            last: VecDeque::with_capacity(TAIL_LINES),
        }
    }

    /// Reads what was written since the last poll. A stream that does not
    /// exist yet yields nothing; throttling yields what was read so far and
    /// `throttled`; other failures are errors naming the stream.
    pub async fn poll(&mut self, logs: &aws_sdk_cloudwatchlogs::Client) -> anyhow::Result<Polled> {
        let mut out = Polled::default();
        for _ in 0..MAX_PAGES {
            let res = logs
                .get_log_events()
                .log_group_name(&self.group)
                .log_stream_name(&self.stream)
                .start_from_head(true)
                .set_next_token(self.token.clone())
                .send()
                .await;
            let page = match res {
                Ok(page) => page,
                Err(e) => {
                    let failure = classify(&e);
                    match failure.kind {
                        FailureKind::NotFound => break,
                        FailureKind::Throttled | FailureKind::Transient => {
                            out.throttled = failure.kind == FailureKind::Throttled;
                            tracing::debug!(group = %self.group, stream = %self.stream, code = ?failure.code, "log tail: retrying later");
                            break;
                        }
                        _ => {
                            return Err(failure.explain(
                                "logs:GetLogEvents",
                                &format!("log stream {}/{}", self.group, self.stream),
                            ));
                        }
                    }
                }
            };
            for event in page.events() {
                let message = event.message().unwrap_or_default();
                for line in message.trim_end_matches(['\n', '\r']).split('\n') {
                    let line = line.trim_end_matches('\r').to_string();
                    if self.last.len() == TAIL_LINES {
                        self.last.pop_front();
                    }
                    self.last.push_back(line.clone());
                    out.lines.push(line);
                }
            }
            let next = page.next_forward_token().map(str::to_string);
            let caught_up = next.is_none() || next == self.token || page.events().is_empty();
            if next.is_some() {
                self.token = next;
            }
            if caught_up {
                break;
            }
        }
        Ok(out)
    }

    /// The last lines read (up to [`TAIL_LINES`]).
    pub fn last_lines(&self) -> Vec<String> {
        self.last.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::operation::get_log_events::{
        GetLogEventsError, GetLogEventsOutput,
    };
    use aws_sdk_cloudwatchlogs::types::OutputLogEvent;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn event(m: &str) -> OutputLogEvent {
        OutputLogEvent::builder().message(m).timestamp(1).build()
    }

    #[tokio::test]
    async fn follows_forward_tokens_and_survives_throttling() {
        let first = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                GetLogEventsOutput::builder()
                    .events(event("one\n"))
                    .events(event("two\nthree"))
                    .next_forward_token("f/1")
                    .build()
            });
        let caught_up = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
            .match_requests(|r| r.next_token() == Some("f/1"))
            .then_output(|| {
                GetLogEventsOutput::builder()
                    .next_forward_token("f/1")
                    .build()
            });
        let throttled =
            mock!(aws_sdk_cloudwatchlogs::Client::get_log_events).then_http_response(|| {
                aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                    aws_smithy_types::body::SdkBody::from(
                        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                    ),
                )
            });
        let later = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
            .match_requests(|r| r.next_token() == Some("f/1"))
            .then_output(|| {
                GetLogEventsOutput::builder()
                    .events(event("four"))
                    .next_forward_token("f/2")
                    .build()
            });
        let done = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events).then_output(|| {
            GetLogEventsOutput::builder()
                .next_forward_token("f/2")
                .build()
        });
        let client = mock_client!(
            aws_sdk_cloudwatchlogs,
            RuleMode::Sequential,
            [&first, &caught_up, &throttled, &later, &done]
        );

        let mut tail = LogTail::new("/aws/codebuild/p", "s");
        let a = tail.poll(&client).await.unwrap();
        assert_eq!(
            a,
            Polled {
                lines: vec!["one".into(), "two".into(), "three".into()],
                throttled: false
            }
        );
        let b = tail.poll(&client).await.unwrap();
        assert_eq!(
            b,
            Polled {
                lines: vec![],
                throttled: true
            }
        );
        let c = tail.poll(&client).await.unwrap();
        assert_eq!(c.lines, vec!["four".to_string()]);
        assert_eq!(tail.last_lines(), ["one", "two", "three", "four"]);
        let _: Option<GetLogEventsError> = None;
    }
}
