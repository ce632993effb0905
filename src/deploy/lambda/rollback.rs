//! Putting back what served: the alias only moves last, so after a failure
//! or a stop it still points at the previous version; what may hold our
//! code is `$LATEST`, which is set back to the previous version's image so
//! unqualified invocations stop running code that did not take.

use super::Function;
use super::watch::alias;
use crate::deploy::{Context, Deploy, PutBack};
use crate::error::chain_message;
use crate::outcome::DeployReport;
use crate::wait::Waiter;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Sets `$LATEST` back when asked (`act`) and it changed, then reads what
/// the alias serves.
pub async fn put_back(f: &mut Function<'_>, d: &mut Deploy<'_>, act: bool) -> PutBack {
    let cx = d.cx;
    let (cx, w, report) = (&cx, &mut d.w, &mut d.report);
    let mut note = match (act, f.latest_changed) {
        (true, true) => restore_latest(f, cx, w, report).await,
        _ => None,
    };
    if act && let Some(moved) = alias_back(f, cx, report).await.err() {
        note = Some(note.map_or(moved.clone(), |n| format!("{n}; {moved}")));
    }
    // The alias never moved, or was moved back; make sure of it, and of
    // what it serves.
    match alias(f, cx).await {
        Ok(now) => {
            report.serving_revision = now.map(|a| f.version_arn(&a.version));
            PutBack {
                settled: true,
                note,
            }
        }
        Err(e) => {
            let unread = format!("the alias could not be read ({})", chain_message(&e));
            PutBack {
                settled: false,
                note: Some(note.map_or(unread.clone(), |n| format!("{n}; {unread}"))),
            }
        }
    }
}

/// The alias moves last, so only a deploy that succeeded moved it; when
/// the component's other target failed after that, it goes back to the
/// version that served before. `Err`: what went wrong.
async fn alias_back(
    f: &mut Function<'_>,
    cx: &Context<'_>,
    report: &DeployReport,
) -> Result<(), String> {
    let (Some(previous), Some(ours)) = (&report.previous_revision, &report.revision) else {
        return Ok(());
    };
    let version = previous.rsplit(':').next().unwrap_or_default();
    let now = match alias(f, cx).await {
        Ok(Some(now)) => now,
        _ => return Ok(()),
    };
    let on_ours = f.version_arn(&now.version) == *ours && now.version != version;
    // A gradual shift leaves the alias on its version with a share routed
    // to ours: moved "back" to that version, the routing is cleared.
    let routed = f.shifting && now.version == version;
    if !on_ours && !routed {
        return Ok(());
    }
    match super::apply::move_alias(f, cx, Some(&now), version).await {
        Ok(()) => {
            f.moved_back = on_ours;
            Ok(())
        }
        Err(e) => Err(format!(
            "alias {} not moved back to version {version}: {}",
            f.plan.alias,
            chain_message(&e)
        )),
    }
}

/// Puts the previous version's image back on `$LATEST`, within the settle
/// budget; says what it did.
async fn restore_latest(
    f: &mut Function<'_>,
    cx: &Context<'_>,
    w: &mut Waiter<'_>,
    report: &mut DeployReport,
) -> Option<String> {
    let previous = report.previous_revision.clone()?;
    let version = previous.rsplit(':').next()?.to_string();
    let lambda = &cx.clients.lambda;
    let image = match lambda
        .get_function()
        .function_name(f.name())
        .qualifier(&version)
        .send()
        .await
    {
        Ok(out) => out
            .code()
            .and_then(|c| c.image_uri().or(c.resolved_image_uri()))
            .map(str::to_string),
        Err(e) => {
            let code = e.code().unwrap_or("error");
            return Some(format!(
                "$LATEST not restored: reading version {version} failed ({code})"
            ));
        }
    }?;
    let idle = w
        .until("setting $LATEST back", async || f.idle(cx, report).await)
        .await;
    let latest = match idle {
        Ok(c) => c,
        Err(e) => {
            let why = match crate::wait::Stopped::find(&e) {
                Some(s) if s.stop == crate::wait::Stop::TimedOut => {
                    "an update was still running".to_string()
                }
                _ => chain_message(&e),
            };
            return Some(format!("$LATEST not restored to {image}: {why}"));
        }
    };
    let sent = lambda
        .update_function_code()
        .function_name(f.name())
        .image_uri(&image)
        .set_revision_id(latest.revision_id().map(str::to_string))
        .send()
        .await;
    match sent {
        Ok(_) => {
            f.say(
                cx,
                &format!(
                    "$LATEST set back to {image} (the code of version {version}); Lambda applies it"
                ),
            );
            Some(format!(
                "$LATEST set back to the image of version {version} (Lambda accepted the update)"
            ))
        }
        Err(e) => Some(format!(
            "$LATEST not restored to {image}: {}",
            e.code().unwrap_or("error")
        )),
    }
}
