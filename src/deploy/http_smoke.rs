//! `smoke-test-path`: a rollout the platform calls healthy is not yet a
//! deploy that works. Right after it, the environment's URL and the path
//! (`https://shop.example.com/health`, or an Elastic Beanstalk
//! environment's own CNAME) are fetched until they answer 2xx or 3xx, within
//! `smoke-test-seconds`; a 4xx/5xx throughout, or no answer, fails the
//! deploy and the driver rolls it back as any failed change. Redirects are
//! not followed: a 3xx is an answer from the new revision. Every pause goes
//! through the deploy's waiter, so its deadline and a cancellation end it.

use std::time::{Duration, Instant};

use super::{Context, Deploy, Target, Verdict};
use crate::plan::HttpSmoke;
use crate::wait::Waiter;

/// One fetch may take this long (scaled by the clock in tests).
const FETCH_SECONDS: f64 = 10.0;

/// What one fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx or 3xx: the deploy works.
    Good(u16),
    /// Another status, with the start of its body.
    Bad(u16, String),
    /// No answer: refused, reset, timed out.
    Nothing(String),
}

impl Answer {
    pub fn text(&self) -> String {
        match self {
            Answer::Good(s) => format!("answered {s}"),
            Answer::Bad(s, body) if body.is_empty() => format!("answered {s}"),
            Answer::Bad(s, body) => format!("answered {s} ({body})"),
            Answer::Nothing(why) => format!("did not answer ({why})"),
        }
    }
}

/// After a rollout that succeeded, the smoke test; any other verdict, or
/// no `smoke-test-path`, passes through.
pub(crate) async fn gate<T: Target>(
    t: &T,
    d: &mut Deploy<'_>,
    applied: anyhow::Result<Verdict>,
) -> anyhow::Result<Verdict> {
    let (Ok(Verdict::Succeeded), Some(smoke)) = (&applied, t.watch().smoke.clone()) else {
        return applied;
    };
    // A rule or schedule serves no URL: its runs are not behind it.
    if matches!(
        t.reference(),
        crate::outcome::TargetRef::Rule { .. } | crate::outcome::TargetRef::Schedule { .. }
    ) {
        return applied;
    }
    let Some(url) = smoke.url(d.report.url.as_deref()) else {
        let why = format!(
            "smoke test: {} has no URL to fetch `{}` at",
            t.reference().describe(),
            smoke.path
        );
        return Ok(Verdict::Failed {
            reason: why,
            put_back: true,
        });
    };
    match fetch_until_good(&d.cx, &d.w, &url, &smoke).await? {
        Ok(line) => {
            d.cx.actions.line(&line);
            Ok(Verdict::Succeeded)
        }
        Err(why) => {
            d.report.evidence.push(why.clone());
            Ok(Verdict::Failed {
                reason: why,
                put_back: true,
            })
        }
    }
}

/// GET `url` until it answers 2xx/3xx (`Ok`, the line to log) or the
/// smoke test's time is up (`Err`, what it answered last and how often).
pub(crate) async fn fetch_until_good(
    cx: &Context<'_>,
    w: &Waiter<'_>,
    url: &str,
    smoke: &HttpSmoke,
) -> anyhow::Result<Result<String, String>> {
    let clock = cx.clock;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(clock.of(FETCH_SECONDS).max(Duration::from_millis(200)))
        .user_agent(concat!(
            "fastdeploy/",
            env!("CARGO_PKG_VERSION"),
            " smoke-test"
        ))
        .build()?;
    let budget = clock.of(smoke.seconds as f64);
    let started = Instant::now();
    cx.actions.line(&format!(
        "smoke test: GET {url} until it answers 2xx or 3xx (up to {} s)",
        smoke.seconds
    ));
    let mut tries = 0u32;
    loop {
        tries += 1;
        let answer = fetch(&client, url).await;
        if let Answer::Good(status) = answer {
            return Ok(Ok(format!(
                "smoke test: GET {url} answered {status} ({} tr{})",
                tries,
                if tries == 1 { "y" } else { "ies" }
            )));
        }
        if started.elapsed() >= budget {
            return Ok(Err(format!(
                "smoke test: GET {url} {} after {} s and {tries} tries",
                answer.text(),
                smoke.seconds
            )));
        }
        cx.actions.line(&format!(
            "smoke test: GET {url} {}; trying again",
            answer.text()
        ));
        w.pause(&format!("the smoke test of {url}")).await?;
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Answer {
    match client.get(url).send().await {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() || status.is_redirection() {
                return Answer::Good(status.as_u16());
            }
            let body = resp.text().await.unwrap_or_default();
            let body = crate::process::shorten(body.trim(), 200);
            Answer::Bad(status.as_u16(), body.replace(['\n', '\r'], " "))
        }
        Err(e) => Answer::Nothing(crate::error::chain_message(&anyhow::Error::new(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_as_the_run_says_them() {
        assert_eq!(Answer::Good(204).text(), "answered 204");
        assert_eq!(
            Answer::Bad(500, "db down".into()).text(),
            "answered 500 (db down)"
        );
        assert_eq!(Answer::Bad(404, String::new()).text(), "answered 404");
        assert!(
            Answer::Nothing("connection refused".into())
                .text()
                .contains("did not answer")
        );
    }

    #[test]
    fn the_url_is_the_environments_or_the_targets_own() {
        let smoke = HttpSmoke {
            path: "/health".into(),
            base: Some("https://shop.example.com/".into()),
            seconds: 60,
        };
        assert_eq!(
            smoke.url(Some("http://eb.example")).as_deref(),
            Some("https://shop.example.com/health")
        );
        let own = HttpSmoke {
            base: None,
            ..smoke
        };
        assert_eq!(
            own.url(Some("http://shop-prod.eu-west-1.elasticbeanstalk.com"))
                .as_deref(),
            Some("http://shop-prod.eu-west-1.elasticbeanstalk.com/health")
        );
        assert_eq!(own.url(None), None);
    }
}
