//! CQL native protocol v4 probe: `OPTIONS` → `SUPPORTED`, `STARTUP` → `READY`, then a real
//! query, `SELECT release_version FROM system.local` → one row, so a node that accepts
//! connections but cannot serve reads yet is not taken for ready.

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wire::Reader;

const OP_ERROR: u8 = 0x00;
const OP_STARTUP: u8 = 0x01;
const OP_READY: u8 = 0x02;
const OP_OPTIONS: u8 = 0x05;
const OP_SUPPORTED: u8 = 0x06;
const OP_QUERY: u8 = 0x07;
const OP_RESULT: u8 = 0x08;
/// `RESULT` kind of a rows answer.
const KIND_ROWS: i32 = 2;
/// Rows metadata flag: one keyspace and table for every column.
const GLOBAL_TABLES_SPEC: i32 = 0x0001;
/// Rows metadata flag: a paging state follows the counts.
const HAS_MORE_PAGES: i32 = 0x0002;
/// Rows metadata flag: no column specifications.
const NO_METADATA: i32 = 0x0004;
/// Consistency `ONE`.
const CONSISTENCY_ONE: u16 = 0x0001;
const VERSION_QUERY: &str = "SELECT release_version FROM system.local";

/// Probes the CQL server at `addr` (`host:port`); returns its `release_version`.
pub async fn probe(addr: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let (op, _) = exchange(&mut stream, OP_OPTIONS, 1, &[]).await?;
    ensure!(op == OP_SUPPORTED, "OPTIONS answered with opcode {op:#04x}");
    let (op, _) = exchange(&mut stream, OP_STARTUP, 2, &startup_body()).await?;
    ensure!(op != OP_ERROR, "STARTUP answered with an ERROR");
    ensure!(op == OP_READY, "STARTUP answered with opcode {op:#04x}");
    let (op, body) = exchange(&mut stream, OP_QUERY, 3, &query_body(VERSION_QUERY)).await?;
    if op == OP_ERROR {
        let mut r = Reader::new(&body);
        let code = r.i32()?;
        bail!("query refused: error {code:#06x}: {}", r.string16()?);
    }
    ensure!(op == OP_RESULT, "QUERY answered with opcode {op:#04x}");
    first_text_cell(&body)
}

fn startup_body() -> Vec<u8> {
    let mut body = 1_u16.to_be_bytes().to_vec();
    for s in ["CQL_VERSION", "3.0.0"] {
        body.extend_from_slice(&(s.len() as u16).to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    body
}

/// A v4 `QUERY` body: the statement as a long string, consistency ONE, no flags.
fn query_body(query: &str) -> Vec<u8> {
    let mut body = (query.len() as u32).to_be_bytes().to_vec();
    body.extend_from_slice(query.as_bytes());
    body.extend_from_slice(&CONSISTENCY_ONE.to_be_bytes());
    body.push(0);
    body
}

/// The first cell of a rows result whose columns are all of a simple type, as text.
fn first_text_cell(body: &[u8]) -> anyhow::Result<String> {
    let mut r = Reader::new(body);
    let kind = r.i32()?;
    ensure!(
        kind == KIND_ROWS,
        "the query answered result kind {kind}, not rows"
    );
    let flags = r.i32()?;
    let columns = r.i32()?;
    if flags & HAS_MORE_PAGES != 0 {
        let len = r.i32()?;
        r.take(usize::try_from(len).unwrap_or(0))?;
    }
    if flags & NO_METADATA == 0 {
        if flags & GLOBAL_TABLES_SPEC != 0 {
            r.string16()?;
            r.string16()?;
        }
        for _ in 0..columns {
            if flags & GLOBAL_TABLES_SPEC == 0 {
                r.string16()?;
                r.string16()?;
            }
            r.string16()?;
            // A simple type is one [short] id; release_version is varchar.
            let id = r.i16()?;
            ensure!(id < 0x20, "column type {id:#06x} is not a simple type");
        }
    }
    let rows = r.i32()?;
    ensure!(rows >= 1, "system.local returned no row");
    let len = r.i32()?;
    ensure!(len >= 0, "release_version is null");
    let cell = r.take(usize::try_from(len).unwrap_or(0))?;
    Ok(String::from_utf8_lossy(cell).into_owned())
}

/// Sends one v4 request frame and returns the response opcode and body.
async fn exchange(
    stream: &mut TcpStream,
    opcode: u8,
    id: i16,
    body: &[u8],
) -> anyhow::Result<(u8, Vec<u8>)> {
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
    Ok((header[4], rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probes the real CQL node `scripts/services` started (`DOORSTEP_CQL_NODES`): it must
    /// answer the query with a version; then a port nothing listens on must fail.
    #[tokio::test]
    async fn probes_the_real_cql_node_and_fails_on_a_closed_port() -> anyhow::Result<()> {
        let nodes =
            std::env::var("DOORSTEP_CQL_NODES").unwrap_or_else(|_| "127.0.0.1:19042".into());
        let first = nodes.split(',').next().unwrap_or_default().to_string();
        let version = probe(&first).await?;
        assert!(
            version.split('.').count() >= 2
                && version.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "release_version {version:?} is not a version"
        );
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = closed.local_addr()?.to_string();
        drop(closed);
        assert!(
            probe(&addr).await.is_err(),
            "a closed port answered the probe"
        );
        Ok(())
    }

    #[test]
    fn a_rows_result_with_global_spec_yields_its_first_cell() {
        let mut body = Vec::new();
        body.extend_from_slice(&KIND_ROWS.to_be_bytes());
        body.extend_from_slice(&GLOBAL_TABLES_SPEC.to_be_bytes());
        body.extend_from_slice(&1_i32.to_be_bytes());
        for s in ["system", "local", "release_version"] {
            body.extend_from_slice(&(s.len() as i16).to_be_bytes());
            body.extend_from_slice(s.as_bytes());
        }
        body.extend_from_slice(&0x000d_i16.to_be_bytes());
        body.extend_from_slice(&1_i32.to_be_bytes());
        body.extend_from_slice(&5_i32.to_be_bytes());
        body.extend_from_slice(b"5.0.9");
        assert_eq!(first_text_cell(&body).ok().as_deref(), Some("5.0.9"));
        assert!(
            first_text_cell(&body[..body.len() - 2]).is_err(),
            "truncation"
        );
    }
}
