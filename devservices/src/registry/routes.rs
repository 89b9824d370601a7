//! The REST API: axum routes over a shared [`Registry`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use super::api::{
    ApiJson, CompatibilityResponse, ConfigResponse, ConfigUpdate, IdResponse, SchemaRequest,
    SchemaString, SubjectVersion,
};
use super::error::ApiError;
use super::level::Level;
use super::persist;
use super::store::{Registry, VersionSel};

type Params = Query<HashMap<String, String>>;
type ApiResult<T> = Result<ApiJson<T>, ApiError>;

/// Shared state of the HTTP server: the registry and where to persist it, if anywhere.
#[derive(Clone)]
pub struct AppState {
    registry: Arc<Mutex<Registry>>,
    data: Option<Arc<PathBuf>>,
}

impl AppState {
    /// Serves `registry`; with `data`, every change is written to that file.
    pub fn new(registry: Registry, data: Option<PathBuf>) -> Self {
        Self {
            registry: Arc::new(Mutex::new(registry)),
            data: data.map(Arc::new),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Registry operations validate before mutating, so the state is consistent even if
        // a handler panicked while holding the lock.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read<T>(&self, f: impl FnOnce(&Registry) -> Result<T, ApiError>) -> ApiResult<T> {
        f(&self.lock()).map(ApiJson)
    }

    /// Applies a change and persists the registry when it succeeded.
    fn write<T>(&self, f: impl FnOnce(&mut Registry) -> Result<T, ApiError>) -> ApiResult<T> {
        let mut registry = self.lock();
        let out = f(&mut registry)?;
        if let Some(path) = &self.data {
            persist::save(path, &registry).map_err(|err| {
                tracing::error!(err = format!("{err:#}"), "cannot persist the registry");
                ApiError::store(format!("Error while persisting the registry: {err:#}"))
            })?;
        }
        Ok(ApiJson(out))
    }
}

/// The router for all supported endpoints; unknown paths answer 404 / error_code 404.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_default),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_version),
        )
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config)
                .put(set_subject_config)
                .delete(delete_subject_config),
        )
        .fallback(no_route)
        .with_state(state)
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn root() -> ApiJson<serde_json::Value> {
    ApiJson(serde_json::json!({}))
}

async fn no_route() -> ApiError {
    ApiError::no_route()
}

async fn schema_types() -> ApiJson<[&'static str; 1]> {
    ApiJson(["AVRO"])
}

async fn schema_by_id(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<SchemaString> {
    let id: u32 = id.parse().map_err(|_| ApiError::no_route())?;
    st.read(|r| r.schema_by_id(id))
}

async fn subjects(State(st): State<AppState>) -> ApiResult<Vec<String>> {
    st.read(|r| Ok(r.subjects()))
}

async fn versions(State(st): State<AppState>, Path(subject): Path<String>) -> ApiResult<Vec<u32>> {
    st.read(|r| r.versions(&subject))
}

async fn version(
    State(st): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult<SubjectVersion> {
    let sel = VersionSel::parse(&version)?;
    st.read(|r| r.version(&subject, sel))
}

async fn register(
    State(st): State<AppState>,
    Path(subject): Path<String>,
    bytes: Bytes,
) -> ApiResult<IdResponse> {
    let req: SchemaRequest = body(&bytes)?;
    let out = st.write(|r| r.register(&subject, &req).map(|id| IdResponse { id }));
    match &out {
        Ok(ApiJson(IdResponse { id })) => tracing::info!(%subject, id, "registered"),
        Err(err) => tracing::info!(%subject, code = err.code, "registration refused"),
    }
    out
}

async fn lookup(
    State(st): State<AppState>,
    Path(subject): Path<String>,
    bytes: Bytes,
) -> ApiResult<SubjectVersion> {
    let req: SchemaRequest = body(&bytes)?;
    st.read(|r| r.lookup(&subject, &req))
}

async fn check_default(
    State(st): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
    bytes: Bytes,
) -> ApiResult<CompatibilityResponse> {
    check(&st, &subject, None, &params, &bytes)
}

async fn check_version(
    State(st): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
    bytes: Bytes,
) -> ApiResult<CompatibilityResponse> {
    let sel = VersionSel::parse(&version)?;
    check(&st, &subject, Some(sel), &params, &bytes)
}

fn check(
    st: &AppState,
    subject: &str,
    sel: Option<VersionSel>,
    params: &HashMap<String, String>,
    bytes: &Bytes,
) -> ApiResult<CompatibilityResponse> {
    let req: SchemaRequest = body(bytes)?;
    let verbose = flag(params, "verbose");
    st.read(|r| {
        let problems = r.check(subject, sel, &req)?;
        Ok(CompatibilityResponse {
            is_compatible: problems.is_empty(),
            messages: verbose.then_some(problems),
        })
    })
}

fn level_response(level: Level) -> ConfigResponse {
    ConfigResponse {
        compatibility_level: level.to_string(),
    }
}

fn parse_level(bytes: &Bytes) -> Result<Level, ApiError> {
    let update: ConfigUpdate = body(bytes)?;
    update
        .compatibility
        .parse()
        .map_err(ApiError::invalid_level)
}

async fn global_config(State(st): State<AppState>) -> ApiResult<ConfigResponse> {
    st.read(|r| r.level(None, true).map(level_response))
}

async fn set_global_config(State(st): State<AppState>, bytes: Bytes) -> ApiResult<ConfigUpdate> {
    let level = parse_level(&bytes)?;
    st.write(|r| {
        r.set_level(None, level);
        Ok(ConfigUpdate {
            compatibility: level.to_string(),
        })
    })
}

async fn subject_config(
    State(st): State<AppState>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> ApiResult<ConfigResponse> {
    let fallback = flag(&params, "defaultToGlobal");
    st.read(|r| r.level(Some(&subject), fallback).map(level_response))
}

async fn set_subject_config(
    State(st): State<AppState>,
    Path(subject): Path<String>,
    bytes: Bytes,
) -> ApiResult<ConfigUpdate> {
    let level = parse_level(&bytes)?;
    st.write(|r| {
        r.set_level(Some(&subject), level);
        Ok(ConfigUpdate {
            compatibility: level.to_string(),
        })
    })
}

async fn delete_subject_config(
    State(st): State<AppState>,
    Path(subject): Path<String>,
) -> ApiResult<ConfigResponse> {
    st.write(|r| r.delete_level(&subject).map(level_response))
}

#[cfg(test)]
mod tests;
