//! The two-way byte stream of a switched protocol (WebSocket and other `Upgrade`s) between the
//! client and the upstream, closed when either side closes or nothing moves for the idle timeout;
//! also the relay of an `ssl-passthrough` connection (`passthrough.rs`), without one.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Wait for both sides to switch, then relay until one closes or `idle` passes without a byte.
pub async fn run(client: OnUpgrade, upstream: OnUpgrade, idle: Duration) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "protocol switch failed");
            return;
        }
    };
    relay(TokioIo::new(client), TokioIo::new(upstream), Some(idle)).await;
}

/// Relay bytes both ways until both sides have closed (each end's close is passed on as a
/// shutdown of the other's writing), either fails, or `idle` (if any) passes without a byte.
pub(crate) async fn relay<A, B>(a: A, b: B, idle: Option<Duration>)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let mut a_buf = vec![0u8; 16 * 1024];
    let mut b_buf = vec![0u8; 16 * 1024];
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        let step = async {
            tokio::select! {
                n = a_read.read(&mut a_buf), if a_open => match n {
                    Ok(0) | Err(_) => {
                        a_open = false;
                        b_write.shutdown().await
                    }
                    Ok(n) => b_write.write_all(&a_buf[..n]).await,
                },
                n = b_read.read(&mut b_buf), if b_open => match n {
                    Ok(0) | Err(_) => {
                        b_open = false;
                        a_write.shutdown().await
                    }
                    Ok(n) => a_write.write_all(&b_buf[..n]).await,
                },
            }
        };
        let step = match idle {
            Some(idle) => tokio::time::timeout(idle, step).await,
            None => Ok(step.await),
        };
        match step {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::debug!(?idle, "upgraded connection idle, closed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relays_both_ways_and_closes_when_idle() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, mut upstream_peer) = tokio::io::duplex(64);
        let relay = tokio::spawn(relay(client, upstream, Some(Duration::from_millis(200))));
        client_peer.write_all(b"ping").await.ok();
        let mut buf = [0u8; 4];
        upstream_peer.read_exact(&mut buf).await.ok();
        assert_eq!(&buf, b"ping");
        upstream_peer.write_all(b"pong").await.ok();
        client_peer.read_exact(&mut buf).await.ok();
        assert_eq!(&buf, b"pong");
        // Nothing more: the relay ends on its own after the idle timeout.
        assert!(tokio::time::timeout(Duration::from_secs(5), relay)
            .await
            .is_ok());
    }
}
