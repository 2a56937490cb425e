//! One shutdown signal (Ctrl-C or SIGTERM) shared by every server of the process, in two stages:
//! [`Shutdown::draining`] at the signal (the proxy drains: `/readyz` fails, connections are asked
//! to close between requests, the listeners still accept), then [`Shutdown::wait`] once the
//! grace period (`--shutdown-grace-period`) is over or a second signal comes (the listeners
//! close, in-flight requests finish).

use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    signalled: watch::Receiver<bool>,
    stopping: watch::Receiver<bool>,
}

impl Shutdown {
    /// Start listening for Ctrl-C and SIGTERM; the servers stop `grace_period` after the first.
    pub fn on_signals(grace_period: Duration) -> Self {
        let (signalled_tx, signalled) = watch::channel(false);
        let (stopping_tx, stopping) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            if grace_period.is_zero() {
                tracing::info!("shutting down");
            } else {
                tracing::info!(
                    grace_period = grace_period.as_secs(),
                    "shutting down: draining, then the listeners close (a second signal: now)"
                );
            }
            let _ = signalled_tx.send(true);
            if !grace_period.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(grace_period) => {}
                    () = wait_for_signal() => tracing::info!("second signal: closing the listeners now"),
                }
            }
            let _ = stopping_tx.send(true);
        });
        Self {
            signalled,
            stopping,
        }
    }

    /// Resolves once shutdown was asked for (the drain begins).
    pub async fn draining(mut self) {
        let _ = self.signalled.wait_for(|s| *s).await;
    }

    /// Resolves once the servers are to stop: the grace period after the signal is over.
    pub async fn wait(mut self) {
        let _ = self.stopping.wait_for(|stop| *stop).await;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
