//! One shared `kassandra` engine, and per-connection request handling around it.
//!
//! Every request is processed inside [`std::panic::catch_unwind`]: a panic in the engine is
//! answered with a CQL `ServerError` carrying the panic message, and the engine lock, if the
//! panic poisoned it, is recovered for the next request.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use kassandra::KassandraSession;
use kassandra::error::DbError;
use kassandra::frame::FrameParams;
use kassandra::frame::request::{Request, RequestOpcode};
use kassandra::frame::response::error::Error as CqlError;
use kassandra::frame::response::result::{QueryResult, SetKeyspace};
use kassandra::frame::response::{Response, ResponseFrameCodec};
use tokio_util::codec::Encoder;

use super::panic;

/// The in-memory database shared by all connections (cheap to clone).
#[derive(Clone, Default)]
pub struct Engine {
    session: Arc<Mutex<KassandraSession>>,
}

impl Engine {
    /// A fresh, empty database (kassandra pre-populates its `system` tables).
    pub fn new() -> Self {
        Self::default()
    }

    /// Per-connection state for a newly accepted client.
    pub fn connection(&self) -> Connection {
        Connection {
            engine: self.clone(),
            keyspace: None,
        }
    }

    /// Locks the session, recovering (and un-poisoning) the lock if an earlier request
    /// panicked while holding it.
    fn lock(&self) -> MutexGuard<'_, KassandraSession> {
        self.session
            .lock()
            .unwrap_or_else(|poisoned: PoisonError<_>| {
                tracing::warn!("engine lock poisoned by an earlier panic; recovering it");
                self.session.clear_poison();
                poisoned.into_inner()
            })
    }
}

/// State of one client connection: the keyspace it selected with `USE`.
pub struct Connection {
    engine: Engine,
    keyspace: Option<String>,
}

impl Connection {
    /// Answers one request frame with one encoded response frame (same stream id).
    ///
    /// Never panics: engine panics become a `ServerError` response.
    pub fn answer(&mut self, frame: FrameParams, opcode: RequestOpcode, body: &[u8]) -> Bytes {
        let response = if frame.version.is_unsupported() {
            Response::unsupported_version()
        } else {
            self.guarded(opcode, |conn| conn.respond(opcode, frame, body))
        };
        encode(response, frame.stream)
    }

    /// Runs `f`, turning a panic into a `ServerError` response with the panic message.
    fn guarded(
        &mut self,
        opcode: RequestOpcode,
        f: impl FnOnce(&mut Self) -> Response,
    ) -> Response {
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(response) => response,
            Err(payload) => {
                let msg = panic::message(payload.as_ref());
                tracing::error!(?opcode, panic = %msg, "request panicked in the CQL engine");
                error(DbError::ServerError, format!("kassandra panicked: {msg}"))
            }
        }
    }

    fn respond(&mut self, opcode: RequestOpcode, frame: FrameParams, body: &[u8]) -> Response {
        if opcode == RequestOpcode::AuthResponse {
            // kassandra's decoder has no AUTH_RESPONSE support; we never send AUTHENTICATE,
            // so a client sending this is out of protocol.
            return error(
                DbError::ProtocolError,
                "AUTH_RESPONSE not expected: this server does not use authentication",
            );
        }
        let request = match Request::deserialize(opcode, body, frame.flags) {
            Ok(request) => request,
            Err(err) => return Response::Error(err),
        };
        match request {
            Request::StartUp(options) => {
                tracing::debug!(?options, "client STARTUP");
                Response::Ready
            }
            Request::Options => Response::options(),
            Request::Register { events } => {
                // Events are never pushed; acknowledging keeps drivers happy.
                tracing::debug!(?events, "client REGISTER (events are never sent)");
                Response::Ready
            }
            Request::Query(query) => self.run(|s| s.process(query)),
            Request::Prepare(query) => self.run(|s| s.prepare(query)),
            Request::Execute(execute) => self.run(|s| s.execute(execute)),
            Request::Batch(batch) => self.run(|s| s.process_batch(batch)),
            Request::AuthResponse => error(
                DbError::ProtocolError,
                "AUTH_RESPONSE not expected: this server does not use authentication",
            ),
        }
    }

    /// Runs a statement under the engine lock in this connection's keyspace.
    fn run(
        &mut self,
        f: impl FnOnce(&mut KassandraSession) -> Result<QueryResult, CqlError>,
    ) -> Response {
        let mut session = self.engine.lock();
        if let Some(keyspace) = &self.keyspace {
            session.use_keyspace(keyspace.clone());
        }
        match f(&mut session) {
            Ok(QueryResult::SetKeyspace(SetKeyspace { keyspace_name })) => {
                self.keyspace = Some(keyspace_name.clone());
                Response::Result(QueryResult::SetKeyspace(SetKeyspace { keyspace_name }))
            }
            Ok(result) => Response::Result(result),
            Err(err) => {
                tracing::debug!(%err, "statement failed");
                Response::Error(err)
            }
        }
    }
}

fn error(kind: DbError, msg: impl ToString) -> Response {
    Response::Error(CqlError::new(kind, msg))
}

/// Encodes a response frame; an encoding failure or panic becomes a `ServerError` frame.
fn encode(response: Response, stream: i16) -> Bytes {
    let mut buf = BytesMut::new();
    let attempt = catch_unwind(AssertUnwindSafe(|| {
        ResponseFrameCodec.encode((response, stream), &mut buf)
    }));
    let msg = match attempt {
        Ok(Ok(())) => return buf.freeze(),
        Ok(Err(err)) => format!("cannot encode response: {err}"),
        Err(payload) => format!(
            "kassandra panicked encoding the response: {}",
            panic::message(payload.as_ref())
        ),
    };
    tracing::error!(%msg, "response encoding failed");
    let mut buf = BytesMut::new();
    match ResponseFrameCodec.encode((error(DbError::ServerError, msg), stream), &mut buf) {
        Ok(()) => buf.freeze(),
        Err(err) => {
            tracing::error!(%err, "cannot encode an error response either");
            Bytes::new()
        }
    }
}

#[cfg(test)]
mod tests;
