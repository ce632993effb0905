//! Cancellation: SIGTERM/SIGINT (the runner cancelling the workflow) turned
//! into a signal every long wait can select on, so a CodeBuild build is
//! stopped and a deployment rolled back instead of being abandoned.

use tokio::sync::watch;

/// Cheap to clone; every clone sees the same cancellation.
#[derive(Debug, Clone)]
pub struct Cancel {
    rx: watch::Receiver<bool>,
}

/// The sending side, kept by whoever decides to cancel.
#[derive(Debug)]
pub struct CancelHandle {
    tx: watch::Sender<bool>,
}

impl Cancel {
    /// A pair that is cancelled only when `handle.cancel()` is called.
    pub fn new() -> (CancelHandle, Cancel) {
        let (tx, rx) = watch::channel(false);
        (CancelHandle { tx }, Cancel { rx })
    }

    /// Never cancelled (tests, `plan`).
    pub fn never() -> Cancel {
        let (handle, cancel) = Cancel::new();
        // Keep the sender alive forever so `cancelled()` stays pending.
        std::mem::forget(handle);
        cancel
    }

    /// Cancelled on SIGTERM or SIGINT.
    pub fn on_signals() -> Cancel {
        let (handle, cancel) = Cancel::new();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::warn!(
                "cancellation requested (SIGTERM/SIGINT): stopping what runs and cleaning up"
            );
            handle.cancel();
            // A second signal is left to the default: the runner escalates.
            std::future::pending::<()>().await;
        });
        cancel
    }

    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|c| *c).await;
        if !*rx.borrow() {
            // The sender is gone without cancelling: never resolve.
            std::future::pending::<()>().await;
        }
    }
}

impl CancelHandle {
    pub fn cancel(&self) {
        let _ = self.tx.send(true);
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_reaches_every_clone() {
        let (handle, cancel) = Cancel::new();
        let other = cancel.clone();
        assert!(!other.is_cancelled());
        handle.cancel();
        other.cancelled().await;
        assert!(cancel.is_cancelled());
    }

    #[tokio::test]
    async fn never_stays_pending() {
        let c = Cancel::never();
        let r = tokio::time::timeout(std::time::Duration::from_millis(20), c.cancelled()).await;
        assert!(r.is_err());
    }
}
