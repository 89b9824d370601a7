//! CQL native protocol v4 probe: `OPTIONS` → `SUPPORTED`, then `STARTUP` → `READY`.

use anyhow::{Context, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OP_ERROR: u8 = 0x00;
const OP_STARTUP: u8 = 0x01;
const OP_READY: u8 = 0x02;
const OP_OPTIONS: u8 = 0x05;
const OP_SUPPORTED: u8 = 0x06;

/// Probes the CQL server at `addr` (`host:port`).
pub async fn probe(addr: &str) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let op = exchange(&mut stream, OP_OPTIONS, 1, &[]).await?;
    ensure!(op == OP_SUPPORTED, "OPTIONS answered with opcode {op:#04x}");
    let op = exchange(&mut stream, OP_STARTUP, 2, &startup_body()).await?;
    ensure!(op != OP_ERROR, "STARTUP answered with an ERROR");
    ensure!(op == OP_READY, "STARTUP answered with opcode {op:#04x}");
    Ok(())
}

fn startup_body() -> Vec<u8> {
    let mut body = 1_u16.to_be_bytes().to_vec();
    for s in ["CQL_VERSION", "3.0.0"] {
        body.extend_from_slice(&(s.len() as u16).to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    body
}

/// Sends one v4 request frame and returns the response opcode (body discarded).
async fn exchange(stream: &mut TcpStream, opcode: u8, id: i16, body: &[u8]) -> anyhow::Result<u8> {
    let mut frame = vec![0x04, 0];
    frame.extend_from_slice(&id.to_be_bytes());
    frame.push(opcode);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame).await?;

    let mut header = [0_u8; 9];
    stream
        .read_exact(&mut header)
        .await
        .context("connection closed before a response")?;
    ensure!(
        header[0] == 0x84,
        "not a CQL v4 response (version byte {:#04x})",
        header[0]
    );
    let got = i16::from_be_bytes([header[2], header[3]]);
    ensure!(got == id, "response for stream {got}, expected {id}");
    let len = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
    ensure!(len <= 16 << 20, "implausible frame length {len}");
    let mut rest = vec![0; len];
    stream.read_exact(&mut rest).await?;
    Ok(header[4])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probes the real CQL node `scripts/services` started (`DOORSTEP_CQL_NODES`), then a
    /// port nothing listens on.
    #[tokio::test]
    async fn probes_the_real_cql_node_and_fails_on_a_closed_port() -> anyhow::Result<()> {
        let nodes =
            std::env::var("DOORSTEP_CQL_NODES").unwrap_or_else(|_| "127.0.0.1:19042".into());
        let first = nodes.split(',').next().unwrap_or_default().to_string();
        probe(&first).await?;
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = closed.local_addr()?.to_string();
        drop(closed);
        assert!(
            probe(&addr).await.is_err(),
            "a closed port answered the probe"
        );
        Ok(())
    }
}
