//! TCP accept loop and the per-connection read/answer loop.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;

use futures::StreamExt;
use kassandra::frame::request_stream;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{Connection, Engine};

/// Serves CQL v4 on `listener` until `shutdown` completes, then drops open connections.
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = pin!(shutdown);
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    clients.spawn(client(stream, peer, engine.connection()));
                }
                // Transient (e.g. EMFILE): log and keep serving.
                Err(err) => tracing::warn!(%err, "accept failed"),
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
    tracing::info!(open = clients.len(), "closing client connections");
    clients.shutdown().await;
    Ok(())
}

async fn client(stream: TcpStream, peer: SocketAddr, mut conn: Connection) {
    tracing::debug!(%peer, "client connected");
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %err, "cannot set TCP_NODELAY");
    }
    let (read, mut write) = stream.into_split();
    let mut frames = pin!(request_stream(read));
    while let Some(item) = frames.next().await {
        match item {
            Ok((frame, opcode, body)) => {
                tracing::trace!(%peer, ?opcode, stream = frame.stream, len = body.len(), "request");
                let response = conn.answer(frame, opcode, &body);
                if let Err(err) = write.write_all(&response).await {
                    tracing::debug!(%peer, %err, "write failed, closing connection");
                    break;
                }
            }
            Err(err) => {
                tracing::warn!(%peer, %err, "undecodable frame, closing connection");
                break;
            }
        }
    }
    tracing::debug!(%peer, "client disconnected");
}
