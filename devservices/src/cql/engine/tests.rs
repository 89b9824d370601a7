//! Tests of request handling, fed with hand-encoded CQL v4 request bodies.

use kassandra::frame::{FrameFlags, ProtocolVersion};

use super::*;

const OP_ERROR: u8 = 0x00;
const OP_READY: u8 = 0x02;
const OP_SUPPORTED: u8 = 0x06;
const OP_RESULT: u8 = 0x08;

fn frame(stream: i16) -> FrameParams {
    FrameParams {
        version: ProtocolVersion::V4,
        flags: FrameFlags::empty(),
        stream,
    }
}

/// QUERY body: `<long string><consistency ONE><flags 0>`.
fn query_body(cql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(cql.len() as i32).to_be_bytes());
    body.extend_from_slice(cql.as_bytes());
    body.extend_from_slice(&1_u16.to_be_bytes());
    body.push(0);
    body
}

fn query(conn: &mut Connection, cql: &str) -> Bytes {
    conn.answer(frame(1), RequestOpcode::Query, &query_body(cql))
}

fn opcode(resp: &[u8]) -> u8 {
    resp[4]
}

/// `(code, message)` of an ERROR frame.
fn error_of(resp: &[u8]) -> (i32, String) {
    assert_eq!(opcode(resp), OP_ERROR, "not an error frame: {resp:?}");
    let code = i32::from_be_bytes([resp[9], resp[10], resp[11], resp[12]]);
    let len = u16::from_be_bytes([resp[13], resp[14]]) as usize;
    (
        code,
        String::from_utf8_lossy(&resp[15..15 + len]).into_owned(),
    )
}

fn assert_ok(resp: &[u8]) {
    assert_eq!(opcode(resp), OP_RESULT, "expected RESULT, got {resp:?}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn answers_options_and_startup_with_the_request_stream_id() {
    let mut conn = Engine::new().connection();
    let resp = conn.answer(frame(42), RequestOpcode::Options, &[]);
    assert_eq!(resp[0], 0x84);
    assert_eq!(i16::from_be_bytes([resp[2], resp[3]]), 42);
    assert_eq!(opcode(&resp), OP_SUPPORTED);

    // STARTUP body: string map {"CQL_VERSION": "3.0.0"}.
    let mut body = 1_u16.to_be_bytes().to_vec();
    for s in ["CQL_VERSION", "3.0.0"] {
        body.extend_from_slice(&(s.len() as u16).to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    let resp = conn.answer(frame(1), RequestOpcode::Startup, &body);
    assert_eq!(opcode(&resp), OP_READY);
}

#[test]
fn auth_response_is_a_protocol_error_not_a_panic() {
    let mut conn = Engine::new().connection();
    let resp = conn.answer(frame(3), RequestOpcode::AuthResponse, &[0, 0, 0, 0]);
    let (code, msg) = error_of(&resp);
    assert_eq!(code, DbError::ProtocolError.code());
    assert!(msg.contains("AUTH_RESPONSE"), "{msg}");
}

#[test]
fn unsupported_protocol_version_gets_a_protocol_error() {
    let mut conn = Engine::new().connection();
    let mut params = frame(1);
    params.version = ProtocolVersion::Unsupported(5);
    let resp = conn.answer(params, RequestOpcode::Options, &[]);
    assert_eq!(error_of(&resp).0, DbError::ProtocolError.code());
}

#[test]
fn malformed_body_is_an_error_response() {
    let mut conn = Engine::new().connection();
    let resp = conn.answer(frame(1), RequestOpcode::Query, &[0xff, 0xff]);
    assert_eq!(opcode(&resp), OP_ERROR);
}

#[test]
fn ddl_insert_and_select_round_trip() {
    let mut conn = Engine::new().connection();
    assert_ok(&query(
        &mut conn,
        "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    ));
    assert_ok(&query(
        &mut conn,
        "CREATE TABLE IF NOT EXISTS ks.t (id text PRIMARY KEY, v text)",
    ));
    assert_ok(&query(
        &mut conn,
        "INSERT INTO ks.t (id, v) VALUES ('a', 'hello-doorstep')",
    ));
    let resp = query(&mut conn, "SELECT v FROM ks.t WHERE id = 'a'");
    assert_ok(&resp);
    assert!(contains(&resp, b"hello-doorstep"));
}

#[test]
fn use_keyspace_is_remembered_per_connection() {
    let engine = Engine::new();
    let mut a = engine.connection();
    let mut b = engine.connection();
    for ks in ["ka", "kb"] {
        assert_ok(&query(
            &mut a,
            &format!(
                "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
        ));
        assert_ok(&query(
            &mut a,
            &format!("CREATE TABLE {ks}.t (id text PRIMARY KEY, v text)"),
        ));
    }
    assert_ok(&query(&mut a, "USE ka"));
    assert_ok(&query(&mut b, "USE kb"));
    // `a` writes after `b` switched the engine's keyspace: it must still land in `ka`.
    assert_ok(&query(
        &mut a,
        "INSERT INTO t (id, v) VALUES ('x', 'in-ka')",
    ));
    let resp = query(&mut b, "SELECT v FROM kb.t WHERE id = 'x'");
    assert_ok(&resp);
    assert!(!contains(&resp, b"in-ka"), "write leaked into kb");
    let resp = query(&mut b, "SELECT v FROM ka.t WHERE id = 'x'");
    assert!(contains(&resp, b"in-ka"));
}

#[test]
fn a_panic_under_the_lock_becomes_a_server_error_and_the_engine_recovers() {
    let engine = Engine::new();
    let mut conn = engine.connection();
    let resp = conn.guarded(RequestOpcode::Query, |c| {
        let _guard = c.engine.lock();
        panic!("boom in the engine");
    });
    let resp = encode(resp, 9);
    let (code, msg) = error_of(&resp);
    assert_eq!(code, DbError::ServerError.code());
    assert!(msg.contains("boom in the engine"), "{msg}");

    // The lock was poisoned by the panic; the next request must still be served.
    assert!(engine.session.is_poisoned());
    let mut other = engine.connection();
    assert_ok(&query(
        &mut other,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    ));
    assert!(!engine.session.is_poisoned());
}
